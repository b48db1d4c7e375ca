-- Programme metrics (NIST SP 800-61 §3.4.2) and the case library (§3.4.1).
--
-- incidents gains the milestones and the subcategory the programme figures
-- group and measure by; they are filled from incident.registered and
-- review.completed for the revision the row holds.
ALTER TABLE incidents
	ADD COLUMN subcategory  text NOT NULL DEFAULT '',
	ADD COLUMN contained_at timestamptz,
	ADD COLUMN recovered_at timestamptz;

-- The rating answers of the latest completion (or amendment) of each
-- incident's review, summed per question.
CREATE TABLE review_ratings (
	incident_id  uuid NOT NULL,
	question_id  text NOT NULL,
	topic        text NOT NULL DEFAULT '',
	rating_sum   bigint NOT NULL,
	rating_count integer NOT NULL CHECK (rating_count > 0),
	PRIMARY KEY (incident_id, question_id)
);

-- One searchable entry per reviewed incident: what its latest review
-- concluded. The library lists an entry only once a report version exists.
CREATE TABLE library_entries (
	incident_id  uuid PRIMARY KEY,
	review_id    text NOT NULL,
	amendment    integer NOT NULL,
	title        text NOT NULL,
	summary      text NOT NULL DEFAULT '',
	findings     text NOT NULL DEFAULT '',
	lessons      text NOT NULL DEFAULT '',
	category     text NOT NULL DEFAULT '',
	subcategory  text NOT NULL DEFAULT '',
	severity     text NOT NULL,
	exercise     boolean NOT NULL DEFAULT false,
	tags         text[] NOT NULL DEFAULT '{}',
	assets       text[] NOT NULL DEFAULT '{}',
	closed_at    timestamptz NOT NULL,
	completed_at timestamptz NOT NULL,
	document     tsvector GENERATED ALWAYS AS (
		setweight(to_tsvector('english', title), 'A') ||
		setweight(to_tsvector('english', summary), 'B') ||
		setweight(to_tsvector('english', findings), 'C') ||
		setweight(to_tsvector('english', lessons), 'C')) STORED
);
CREATE INDEX library_entries_document ON library_entries USING gin (document);
CREATE INDEX library_entries_tags ON library_entries USING gin (tags);
CREATE INDEX library_entries_assets ON library_entries USING gin (assets);
CREATE INDEX library_entries_closed_at ON library_entries (closed_at);

-- The service's runtime role (see 0005_runtime_role.sql) upserts library
-- entries and replaces an incident's ratings; nothing else.
DO $$
DECLARE
	runtime text;
BEGIN
	FOR runtime IN
		SELECT a.grantee::regrole::text
		FROM pg_namespace n, aclexplode(n.nspacl) a
		WHERE n.nspname = current_schema() AND a.privilege_type = 'USAGE'
			AND a.grantee <> n.nspowner AND a.grantee <> 0
	LOOP
		EXECUTE format('GRANT SELECT, INSERT, UPDATE ON library_entries TO %I', runtime);
		EXECUTE format('GRANT SELECT, INSERT, DELETE ON review_ratings TO %I', runtime);
	END LOOP;
END $$;
