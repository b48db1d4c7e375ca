-- Evidence retention: when the report service announces that an incident's
-- evidence has expired (afteraction.evidence.expired), intake deletes the raw
-- payloads of its revisions up to the announced one: the bytes as received
-- (raw, and the webhook body they came from) and the canonical JSON, cut down
-- to what identifies the incident. It keeps the incidents row and every
-- revision's content_sha256 (with the inbox keys), so a late copy of a purged
-- incident is a duplicate, never a new incident.
ALTER TABLE incident_revisions ADD COLUMN purged_at timestamptz;

-- purges: the audit line of every purge: which incident, up to which
-- revision, by which rule and retention date, and how much was removed.
CREATE TABLE purges (
	incident_id       uuid NOT NULL,
	incident_revision integer NOT NULL,
	rule              text NOT NULL,
	retain_until      timestamptz NOT NULL,
	purged_at         timestamptz NOT NULL,
	event_id          text NOT NULL UNIQUE,
	removed           jsonb NOT NULL,
	PRIMARY KEY (incident_id, incident_revision)
);
