-- The redacted rendition of each version, for external distribution: rendered
-- and signed with the version, never replacing it. Immutable like the version.
CREATE TABLE report_redactions (
	report_id   uuid NOT NULL,
	version     integer NOT NULL,
	pdf_sha256  text NOT NULL CHECK (pdf_sha256 ~ '^[0-9a-f]{64}$'),
	data_sha256 text NOT NULL CHECK (data_sha256 ~ '^[0-9a-f]{64}$'),
	cert_sha256 text NOT NULL REFERENCES signing_certificates,
	size_bytes  bigint NOT NULL,
	pages       integer NOT NULL,
	pdf         bytea NOT NULL,
	created_at  timestamptz NOT NULL,
	PRIMARY KEY (report_id, version),
	FOREIGN KEY (report_id, version) REFERENCES report_versions
);
CREATE TRIGGER report_redactions_immutable BEFORE UPDATE OR DELETE ON report_redactions
	FOR EACH ROW EXECUTE FUNCTION report_versions_immutable();
CREATE TRIGGER report_redactions_no_truncate BEFORE TRUNCATE ON report_redactions
	FOR EACH STATEMENT EXECUTE FUNCTION report_versions_immutable();

-- The service's role may read and add renditions (see 0005_runtime_role.sql).
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
		EXECUTE format('GRANT SELECT, INSERT ON report_redactions TO %I', runtime);
	END LOOP;
END $$;
