-- The chain of custody of every report: who rendered, published, downloaded,
-- verified and delivered each version. Append-only: each entry carries the
-- SHA-256 of the one before it (see package custody), and the trigger below
-- refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE custody_log (
	report_id    uuid NOT NULL REFERENCES reports,
	seq          bigint NOT NULL CHECK (seq >= 1),
	at           timestamptz NOT NULL,
	action       text NOT NULL CHECK (action IN ('rendered', 'published', 'downloaded', 'verified', 'delivered')),
	version      integer NOT NULL,
	actor        text NOT NULL,
	detail       text NOT NULL,
	pdf_sha256   text NOT NULL,
	prev_sha256  text NOT NULL CHECK (prev_sha256 ~ '^[0-9a-f]{64}$'),
	entry_sha256 text NOT NULL CHECK (entry_sha256 ~ '^[0-9a-f]{64}$'),
	PRIMARY KEY (report_id, seq)
);
CREATE FUNCTION custody_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the custody log is append-only: % refused', TG_OP
		USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER custody_log_append_only BEFORE UPDATE OR DELETE ON custody_log
	FOR EACH ROW EXECUTE FUNCTION custody_log_append_only();
CREATE TRIGGER custody_log_no_truncate BEFORE TRUNCATE ON custody_log
	FOR EACH STATEMENT EXECUTE FUNCTION custody_log_append_only();
