-- An outbox row JetStream refuses for good (larger than the server's maximum
-- payload, or failing attempt after attempt) is set aside with dead_at instead
-- of blocking every row behind it; it stays for an operator to inspect.
ALTER TABLE outbox ADD COLUMN dead_at timestamptz;
DROP INDEX outbox_unsent;
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL AND dead_at IS NULL;

-- dead_letters: every message a consumer of this service gave up on, with the
-- reason, recorded next to the copy on the DLQ stream (dlq.<service>.<subject>).
CREATE TABLE dead_letters (
	id         bigserial PRIMARY KEY,
	consumer   text NOT NULL,
	subject    text NOT NULL,
	event_id   text NOT NULL,
	stream     text NOT NULL,
	stream_seq bigint NOT NULL,
	delivered  integer NOT NULL,
	reason     text NOT NULL,
	headers    jsonb NOT NULL DEFAULT '{}',
	data       bytea NOT NULL,
	dead_at    timestamptz NOT NULL DEFAULT now(),
	UNIQUE (consumer, stream, stream_seq)
);
