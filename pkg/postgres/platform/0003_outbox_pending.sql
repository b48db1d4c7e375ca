-- outbox_pending: the narrow marker of an outbox row not yet published. The
-- trigger below adds one for every inserted outbox row; the relay claims rows
-- through it (FOR UPDATE OF the marker, SKIP LOCKED) and deletes the marker once
-- JetStream has acknowledged the event. The wide outbox row (its data can be a
-- MiB) is thus written once and never rewritten on its way out.
--
-- attempts counts failed publishes that JetStream answered (a failure of the
-- message, not an outage). After the relay's MaxAttempts the row is set aside:
-- outbox.dead_at, attempts and last_error are set and the marker is removed, so
-- it no longer holds up the rows behind it. Set-aside rows stay for an
-- operator (postgres.SetAsideOutbox lists them, postgres.RequeueOutbox sends
-- them again) and the metric afteraction_outbox_set_aside alerts on them.
CREATE TABLE outbox_pending (
	id         bigint PRIMARY KEY,
	attempts   integer NOT NULL DEFAULT 0,
	last_error text
);
INSERT INTO outbox_pending (id, attempts, last_error)
	SELECT id, attempts, last_error FROM outbox WHERE sent_at IS NULL AND dead_at IS NULL;

-- Sent is now "no marker": the column and the two indexes that kept it are
-- gone, which also makes every insert cheaper.
DROP INDEX outbox_unsent;
DROP INDEX outbox_sent_at;
ALTER TABLE outbox DROP COLUMN sent_at;
CREATE INDEX outbox_set_aside ON outbox (id) WHERE dead_at IS NOT NULL;
-- Pruning finds old rows by creation time; a BRIN index costs next to nothing on insert.
CREATE INDEX outbox_created_at ON outbox USING brin (created_at);

-- One statement trigger both marks the inserted rows pending and wakes the relay.
DROP TRIGGER outbox_notify ON outbox;
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('INSERT INTO %I.outbox_pending (id) SELECT id FROM inserted', TG_TABLE_SCHEMA);
	PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
	RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox REFERENCING NEW TABLE AS inserted
	FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
