-- The rest of the programme figures (NIST SP 800-61 §3.4.2) and the
-- programme report.
--
-- incidents gains what the figures measure beyond the milestones of 0020:
-- the other milestones, the earliest notification of management and of an
-- outside party, labour, cost, the initial and final impact, and what finds
-- recurrences (root cause, affected assets) and the playbook followed. Filled
-- from incident.registered and review.completed for the revision the row holds.
ALTER TABLE incidents
	ADD COLUMN reported_at            timestamptz,
	ADD COLUMN impact_assessed_at     timestamptz,
	ADD COLUMN eradicated_at          timestamptz,
	ADD COLUMN resolved_at            timestamptz,
	ADD COLUMN management_notified_at timestamptz,
	ADD COLUMN external_notified_at   timestamptz,
	ADD COLUMN labour_hours           double precision,
	ADD COLUMN cost_amount            text NOT NULL DEFAULT '',
	ADD COLUMN cost_currency          text NOT NULL DEFAULT '',
	ADD COLUMN impact_initial         text NOT NULL DEFAULT '',
	ADD COLUMN impact_final           text NOT NULL DEFAULT '',
	ADD COLUMN records_affected       bigint,
	ADD COLUMN downtime_minutes       bigint,
	ADD COLUMN root_cause             text NOT NULL DEFAULT '',
	ADD COLUMN assets                 text[] NOT NULL DEFAULT '{}',
	ADD COLUMN playbook               text NOT NULL DEFAULT '';

-- The choice answers of the latest completion (or amendment) of each
-- incident's review, counted per question and choice ("were the documented
-- procedures followed?" is the one the figures read).
CREATE TABLE review_choices (
	incident_id uuid NOT NULL,
	question_id text NOT NULL,
	choice      text NOT NULL,
	answers     integer NOT NULL CHECK (answers > 0),
	PRIMARY KEY (incident_id, question_id, choice)
);

-- Every published programme report version: the period it covers, the exact
-- PDF bytes, their digest and the signed manifest. Immutable like
-- report_versions. report_id is a UUIDv5 of the period, so publishing a period
-- again adds a version.
CREATE TABLE programme_reports (
	report_id     uuid NOT NULL,
	version       integer NOT NULL CHECK (version >= 1),
	period        text NOT NULL CHECK (period IN ('month', 'quarter')),
	label         text NOT NULL,
	period_start  timestamptz NOT NULL,
	period_end    timestamptz NOT NULL CHECK (period_end > period_start),
	incidents     integer NOT NULL,
	event_id      text NOT NULL,
	pdf_sha256    text NOT NULL CHECK (pdf_sha256 ~ '^[0-9a-f]{64}$'),
	data_sha256   text NOT NULL CHECK (data_sha256 ~ '^[0-9a-f]{64}$'),
	size_bytes    bigint NOT NULL,
	pages         integer NOT NULL,
	object_bucket text NOT NULL,
	object_key    text NOT NULL,
	signature     bytea NOT NULL CHECK (length(signature) = 64),
	key_id        text NOT NULL REFERENCES signing_keys,
	cert_sha256   text NOT NULL REFERENCES signing_certificates,
	published_at  timestamptz NOT NULL,
	pdf           bytea NOT NULL,
	PRIMARY KEY (report_id, version)
);
CREATE INDEX programme_reports_pdf_sha256 ON programme_reports (pdf_sha256);

CREATE FUNCTION programme_reports_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'programme reports are immutable: % refused', TG_OP
		USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER programme_reports_immutable BEFORE UPDATE OR DELETE ON programme_reports
	FOR EACH ROW EXECUTE FUNCTION programme_reports_immutable();
CREATE TRIGGER programme_reports_no_truncate BEFORE TRUNCATE ON programme_reports
	FOR EACH STATEMENT EXECUTE FUNCTION programme_reports_immutable();

-- The runtime role (see 0005_runtime_role.sql) replaces an incident's choice
-- counts and adds programme report versions; it never changes one.
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
		EXECUTE format('GRANT SELECT, INSERT, DELETE ON review_choices TO %I', runtime);
		EXECUTE format('GRANT SELECT, INSERT ON programme_reports TO %I', runtime);
	END LOOP;
END $$;
