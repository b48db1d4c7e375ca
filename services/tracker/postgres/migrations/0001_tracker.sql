-- actions: one improvement action per (review, action item key). The id is a
-- UUIDv5 of review_id/key, so the same item always gets the same id.
CREATE TABLE actions (
	action_id         uuid PRIMARY KEY,
	seq               bigserial NOT NULL UNIQUE,
	incident_id       uuid NOT NULL,
	incident_title    text NOT NULL DEFAULT '',
	review_id         uuid NOT NULL,
	key               text NOT NULL,
	title             text NOT NULL,
	description       text NOT NULL DEFAULT '',
	category          text NOT NULL,
	owner_name        text NOT NULL DEFAULT '',
	owner_email       text NOT NULL DEFAULT '',
	due_date          date,
	priority          text NOT NULL DEFAULT '',
	status            text NOT NULL CHECK (status IN ('open', 'in_progress', 'done', 'wont_do')),
	-- when the current status took effect (the sender's changed_at); older updates are stale
	status_changed_at timestamptz NOT NULL,
	tracker           text,
	external_key      text,
	created_at        timestamptz NOT NULL,
	updated_at        timestamptz NOT NULL,
	UNIQUE (review_id, key),
	CHECK ((tracker IS NULL) = (external_key IS NULL))
);
CREATE UNIQUE INDEX actions_external_key ON actions (tracker, external_key) WHERE external_key IS NOT NULL;
CREATE INDEX actions_incident ON actions (incident_id, seq);
CREATE INDEX actions_unfinished_due ON actions (due_date) WHERE status IN ('open', 'in_progress');

-- action_history: every status update accepted for an action, including the
-- ones that changed nothing (stale, same status), with who sent it and when.
CREATE TABLE action_history (
	id              bigserial PRIMARY KEY,
	action_id       uuid NOT NULL REFERENCES actions ON DELETE CASCADE,
	event_id        text NOT NULL,
	outcome         text NOT NULL CHECK (outcome IN ('created', 'changed', 'noted', 'linked', 'unchanged', 'stale')),
	status          text NOT NULL,
	previous_status text NOT NULL DEFAULT '',
	note            text NOT NULL DEFAULT '',
	tracker         text NOT NULL DEFAULT '',
	external_key    text NOT NULL DEFAULT '',
	changed_at      timestamptz NOT NULL,
	changed_by      text NOT NULL DEFAULT '',
	recorded_at     timestamptz NOT NULL
);
CREATE INDEX action_history_action ON action_history (action_id, id);

-- unmatched_status_updates: status updates that were not applied (unknown
-- action, invalid payload, tracker mismatch, forbidden transition), kept with
-- the reason and the raw payload; the message itself goes to the DLQ.
CREATE TABLE unmatched_status_updates (
	id           bigserial PRIMARY KEY,
	event_id     text NOT NULL UNIQUE,
	subject      text NOT NULL,
	kind         text NOT NULL,
	reason       text NOT NULL,
	tracker      text NOT NULL DEFAULT '',
	action_id    text NOT NULL DEFAULT '',
	external_key text NOT NULL DEFAULT '',
	ce_type      text NOT NULL DEFAULT '',
	payload      bytea NOT NULL,
	received_at  timestamptz NOT NULL
);
CREATE INDEX unmatched_status_updates_received ON unmatched_status_updates (id DESC);

-- overdue_notices: one row per action and day an overdue event was emitted,
-- claimed in the transaction that writes the event to the outbox.
CREATE TABLE overdue_notices (
	action_id  uuid NOT NULL REFERENCES actions ON DELETE CASCADE,
	day        date NOT NULL,
	event_id   text NOT NULL,
	claimed_at timestamptz NOT NULL,
	PRIMARY KEY (action_id, day)
);
