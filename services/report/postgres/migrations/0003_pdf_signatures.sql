-- Certificates that sign report PDFs inside the file (PAdES). Rows are never
-- removed or changed: a version signed before a certificate rotation keeps
-- naming the certificate it was signed with. Which certificates verify is
-- configuration (REPORT_TRUSTED_CERTS_FILE), not this table.
CREATE TABLE signing_certificates (
	cert_sha256 text PRIMARY KEY CHECK (cert_sha256 ~ '^[0-9a-f]{64}$'),
	subject     text NOT NULL,
	not_after   timestamptz NOT NULL,
	der         bytea NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION signing_certificates_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'signing certificates are immutable: % refused', TG_OP
		USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER signing_certificates_immutable BEFORE UPDATE OR DELETE ON signing_certificates
	FOR EACH ROW EXECUTE FUNCTION signing_certificates_immutable();
CREATE TRIGGER signing_certificates_no_truncate BEFORE TRUNCATE ON signing_certificates
	FOR EACH STATEMENT EXECUTE FUNCTION signing_certificates_immutable();

-- The certificate whose signature is inside a version's PDF. NULL only for
-- versions published before PDFs were signed.
ALTER TABLE report_versions ADD COLUMN cert_sha256 text REFERENCES signing_certificates;

-- The development certificate and key (REPORT_DEV_SIGNING_KEY=true only). A single row.
CREATE TABLE dev_signing_cert (
	singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	cert_der   bytea NOT NULL,
	key_pkcs8  bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
