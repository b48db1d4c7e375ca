-- processed_events: ids of events this service has handled, written in the same
-- transaction as the state change, so a redelivery is recognised and skipped.
CREATE TABLE processed_events (
	event_id   text PRIMARY KEY,
	handled_at timestamptz NOT NULL DEFAULT now()
);

-- outbox: events this service emits, written in the same transaction as the
-- state change and published by the relay, which sets sent_at after the PubAck.
CREATE TABLE outbox (
	id          bigserial PRIMARY KEY,
	event_id    text NOT NULL UNIQUE,
	subject     text NOT NULL,
	ce_type     text NOT NULL,
	ce_source   text NOT NULL,
	ce_subject  text NOT NULL DEFAULT '',
	ce_time     timestamptz NOT NULL,
	data        bytea NOT NULL,
	created_at  timestamptz NOT NULL DEFAULT now(),
	sent_at     timestamptz,
	attempts    integer NOT NULL DEFAULT 0,
	last_error  text
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- A wake-up for the relay: one notification per inserting statement, on commit.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
	RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
	FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
