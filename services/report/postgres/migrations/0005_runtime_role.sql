-- Least privilege: the service runs as a role that does not own the schema
-- (deploy/postgres/roles.sql). That role is whoever was granted USAGE on this
-- schema; the owner, which runs the migrations, grants it here what the
-- service needs and nothing more:
--   * SELECT and INSERT on every table: a new report version, key,
--     certificate or custody entry can be added,
--   * UPDATE and DELETE only on the bookkeeping that changes by design (the
--     platform's outbox, inbox and dead letters, render failures and the
--     metrics read model),
--   * UPDATE of reports.created_at only, because SELECT ... FOR UPDATE (how a
--     report is locked) needs an UPDATE privilege; nothing of a report's
--     identity or its versions can be changed.
-- Never UPDATE, DELETE or TRUNCATE on report_versions, signing_keys,
-- signing_certificates or custody_log, and, not owning them, it cannot ALTER
-- them or drop or disable their triggers. A later migration that adds a table
-- grants what the runtime role needs on it in the same way.
-- Without such a role (development: one role owns and runs) this does nothing.
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
		EXECUTE format('GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA %I TO %I', current_schema(), runtime);
		EXECUTE format('REVOKE INSERT ON schema_migrations FROM %I', runtime);
		EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', current_schema(), runtime);
		EXECUTE format('GRANT UPDATE, DELETE ON outbox, outbox_pending, processed_events, dead_letters TO %I', runtime);
		EXECUTE format('GRANT UPDATE ON render_failures, incidents, review_completions, actions TO %I', runtime);
		EXECUTE format('GRANT UPDATE (created_at) ON reports TO %I', runtime);
	END LOOP;
END $$;
