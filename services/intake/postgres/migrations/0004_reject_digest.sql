-- A webhook request that failed authentication (401 bad signature, 404 unknown
-- source) is kept as a bounded digest, not its body: raw holds only its first
-- bytes (raw_truncated), payload_sha256 and payload_size describe the whole.
-- Anyone who can reach intake can send those, so they must not fill the database.
ALTER TABLE rejects ADD COLUMN payload_size bigint, ADD COLUMN raw_truncated boolean NOT NULL DEFAULT false;
