-- inbox: every distinct message intake consumed from NATS, keyed by what makes
-- it unique for intake: the subject it came on (which names the source), the
-- sender's message id, and the SHA-256 of its bytes. A redelivery (same key)
-- is a duplicate; the same id with other bytes is another message, applied and
-- counted as a reused id. processed_events, keyed on the id alone, made a
-- second source's INC-1, or a reused id, vanish as a "duplicate".
CREATE TABLE inbox (
	subject        text NOT NULL,
	message_id     text NOT NULL,
	payload_sha256 text NOT NULL,
	received_at    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (subject, message_id, payload_sha256)
);
-- For retention by age, as processed_events has (postgres.Prune).
CREATE INDEX inbox_received_at ON inbox (received_at);

-- What was handled before this table existed: the revisions and rejects that
-- kept their event id (a message that changed nothing left no content behind).
INSERT INTO inbox (subject, message_id, payload_sha256, received_at)
SELECT 'incidents.closed.' || i.source, r.event_id, encode(sha256(r.raw), 'hex'), r.received_at
FROM incident_revisions r JOIN incidents i ON i.id = r.incident_id
WHERE r.event_id IS NOT NULL
UNION
SELECT subject, event_id, payload_sha256, received_at FROM rejects WHERE event_id IS NOT NULL
ON CONFLICT DO NOTHING;
