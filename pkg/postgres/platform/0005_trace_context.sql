-- Tracing (pkg/tracing): every outbox row keeps the W3C trace context of the
-- span that wrote it (empty when there was none), so the relay, publishing
-- later from another goroutine or process, continues that trace and sends it
-- on as the CloudEvents distributed-tracing extension (ce-traceparent,
-- ce-tracestate).
ALTER TABLE outbox ADD COLUMN traceparent text NOT NULL DEFAULT '',
	ADD COLUMN tracestate text NOT NULL DEFAULT '';

-- subject_traces: the trace in which the first traced event about each
-- ce-subject (an incident, a review) was written. Work a person does on that
-- subject much later (a review completed in the console) resumes that trace
-- (postgres.SubjectTrace, tracing.Resume), so one incident is one trace from
-- intake to its report. Pruned with processed_events (postgres.Prune).
CREATE TABLE subject_traces (
	subject     text PRIMARY KEY,
	traceparent text NOT NULL,
	tracestate  text NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subject_traces_created_at ON subject_traces USING brin (created_at);

-- The outbox trigger also records the first trace of each subject; untraced
-- inserts skip that statement.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('INSERT INTO %I.outbox_pending (id) SELECT id FROM inserted', TG_TABLE_SCHEMA);
	IF EXISTS (SELECT 1 FROM inserted WHERE traceparent <> '' AND ce_subject <> '') THEN
		EXECUTE format('INSERT INTO %I.subject_traces (subject, traceparent, tracestate)
			SELECT DISTINCT ON (ce_subject) ce_subject, traceparent, tracestate FROM inserted
			WHERE traceparent <> '''' AND ce_subject <> '''' ORDER BY ce_subject, id
			ON CONFLICT DO NOTHING', TG_TABLE_SCHEMA);
	END IF;
	PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
	RETURN NULL;
END $$;

-- A runtime role that does not own the schema (report's: see its migration
-- 0005_runtime_role.sql) writes outbox rows, so the trigger writes here as it.
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
		EXECUTE format('GRANT SELECT, INSERT, DELETE ON subject_traces TO %I', runtime);
	END LOOP;
END $$;
