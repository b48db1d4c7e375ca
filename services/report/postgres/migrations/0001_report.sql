-- Public keys that sign report manifests. Rows are never removed: a version
-- signed before a key rotation stays verifiable.
CREATE TABLE signing_keys (
	key_id     text PRIMARY KEY,
	algorithm  text NOT NULL DEFAULT 'ed25519',
	public_key bytea NOT NULL CHECK (length(public_key) = 32),
	created_at timestamptz NOT NULL DEFAULT now()
);

-- The development signing key (REPORT_DEV_SIGNING_KEY=true only). A single row.
CREATE TABLE dev_signing_key (
	singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	seed       bytea NOT NULL CHECK (length(seed) = 32),
	created_at timestamptz NOT NULL DEFAULT now()
);

-- One report per incident; its id is a UUIDv5 of the incident id.
CREATE TABLE reports (
	report_id   uuid PRIMARY KEY,
	incident_id uuid NOT NULL UNIQUE,
	created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every rendered version, with the exact PDF bytes, their digest and the signed
-- manifest. Immutable: the trigger below refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE report_versions (
	report_id     uuid NOT NULL REFERENCES reports,
	version       integer NOT NULL CHECK (version >= 1),
	incident_id   uuid NOT NULL,
	review_id     text NOT NULL,
	event_id      text NOT NULL,
	pdf_sha256    text NOT NULL CHECK (pdf_sha256 ~ '^[0-9a-f]{64}$'),
	data_sha256   text NOT NULL CHECK (data_sha256 ~ '^[0-9a-f]{64}$'),
	size_bytes    bigint NOT NULL,
	pages         integer NOT NULL,
	object_bucket text NOT NULL,
	object_key    text NOT NULL,
	signature     bytea NOT NULL CHECK (length(signature) = 64),
	key_id        text NOT NULL REFERENCES signing_keys,
	published_at  timestamptz NOT NULL,
	pdf           bytea NOT NULL,
	PRIMARY KEY (report_id, version)
);
CREATE INDEX report_versions_pdf_sha256 ON report_versions (pdf_sha256);
CREATE INDEX report_versions_data_sha256 ON report_versions (report_id, data_sha256);

CREATE FUNCTION report_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'report versions are immutable: % refused', TG_OP
		USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER report_versions_immutable BEFORE UPDATE OR DELETE ON report_versions
	FOR EACH ROW EXECUTE FUNCTION report_versions_immutable();
CREATE TRIGGER report_versions_no_truncate BEFORE TRUNCATE ON report_versions
	FOR EACH STATEMENT EXECUTE FUNCTION report_versions_immutable();

-- Reviews whose report could not be rendered (permanent; the event is dead-lettered too).
CREATE TABLE render_failures (
	event_id    text PRIMARY KEY,
	incident_id text NOT NULL,
	reason      text NOT NULL,
	failed_at   timestamptz NOT NULL DEFAULT now()
);

-- Read model for programme metrics.
CREATE TABLE incidents (
	incident_id  uuid PRIMARY KEY,
	revision     integer NOT NULL,
	severity     text NOT NULL,
	category     text NOT NULL DEFAULT '',
	exercise     boolean NOT NULL DEFAULT false,
	started_at   timestamptz,
	detected_at  timestamptz,
	closed_at    timestamptz NOT NULL,
	registered_at timestamptz NOT NULL
);
CREATE INDEX incidents_closed_at ON incidents (closed_at);

CREATE TABLE review_completions (
	incident_id  uuid PRIMARY KEY,
	review_id    text NOT NULL,
	completed_at timestamptz NOT NULL
);

CREATE TABLE actions (
	action_id   uuid PRIMARY KEY,
	incident_id uuid NOT NULL,
	category    text NOT NULL DEFAULT '',
	priority    text NOT NULL DEFAULT '',
	due_date    date,
	status      text NOT NULL,
	status_at   timestamptz NOT NULL,
	created_at  timestamptz,
	overdue_at  timestamptz
);
CREATE INDEX actions_created_at ON actions (created_at);
