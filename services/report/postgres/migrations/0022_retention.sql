-- Evidence retention (NIST SP 800-61 §3.4.3): the report service owns the
-- legal holds and decides when an incident's evidence has expired; intake and
-- review delete their raw payloads and answers on afteraction.evidence.expired.

-- legal_holds: every legal hold placed on or lifted from an incident, with who
-- and why. Append-only like the custody log: an incident is under hold when its
-- last row is 'placed'. Nothing can lift a hold without leaving a row.
CREATE TABLE legal_holds (
	incident_id uuid NOT NULL,
	seq         integer NOT NULL CHECK (seq >= 1),
	action      text NOT NULL CHECK (action IN ('placed', 'lifted')),
	at          timestamptz NOT NULL,
	by          text NOT NULL,
	reason      text NOT NULL,
	PRIMARY KEY (incident_id, seq)
);
CREATE TRIGGER legal_holds_append_only BEFORE UPDATE OR DELETE ON legal_holds
	FOR EACH ROW EXECUTE FUNCTION custody_log_append_only();
CREATE TRIGGER legal_holds_no_truncate BEFORE TRUNCATE ON legal_holds
	FOR EACH STATEMENT EXECUTE FUNCTION custody_log_append_only();

-- current_holds: the holds in force, one row per held incident.
CREATE VIEW current_holds AS
SELECT incident_id, at, by, reason FROM (
	SELECT DISTINCT ON (incident_id) incident_id, action, at, by, reason
	FROM legal_holds ORDER BY incident_id, seq DESC) last
WHERE action = 'placed';

-- purges: the audit line of every expiry the service decided: which incident
-- (up to which revision), by which rule, the retention date, and the event
-- that told intake and review to delete. The report service itself removes
-- nothing (removed is {}): signed versions, custody chain and read model stay.
CREATE TABLE purges (
	incident_id       uuid NOT NULL,
	incident_revision integer NOT NULL,
	rule              text NOT NULL,
	retain_until      timestamptz NOT NULL,
	purged_at         timestamptz NOT NULL,
	event_id          text NOT NULL,
	removed           jsonb NOT NULL DEFAULT '{}',
	PRIMARY KEY (incident_id, incident_revision)
);
CREATE TRIGGER purges_append_only BEFORE UPDATE OR DELETE ON purges
	FOR EACH ROW EXECUTE FUNCTION custody_log_append_only();
CREATE TRIGGER purges_no_truncate BEFORE TRUNCATE ON purges
	FOR EACH STATEMENT EXECUTE FUNCTION custody_log_append_only();

-- The custody chain of a report records its holds and the expiry of the
-- evidence behind it.
ALTER TABLE custody_log DROP CONSTRAINT custody_log_action_check;
ALTER TABLE custody_log ADD CONSTRAINT custody_log_action_check CHECK (action IN
	('rendered', 'published', 'downloaded', 'verified', 'delivered', 'hold_placed', 'hold_lifted', 'evidence_expired'));

-- The service's role may read and add holds and purge lines, never change or
-- remove them (see 0005_runtime_role.sql).
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
		EXECUTE format('GRANT SELECT, INSERT ON legal_holds, purges TO %I', runtime);
		EXECUTE format('GRANT SELECT ON current_holds TO %I', runtime);
	END LOOP;
END $$;
