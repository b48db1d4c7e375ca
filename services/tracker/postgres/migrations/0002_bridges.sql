-- bridge_deliveries: one row per action and bridge. The row is the intent:
-- written in the transaction that creates or changes the action, before any
-- remote call, and worked off by the delivery loop. version counts the
-- changes to deliver, delivered_version the last one the remote took.
-- attempts counts calls made for the current intent; a create whose attempts
-- are above zero may have reached the remote, so the loop searches for the
-- marker before creating again.
CREATE TABLE bridge_deliveries (
	action_id          uuid NOT NULL REFERENCES actions ON DELETE CASCADE,
	bridge             text NOT NULL,
	external_id        text NOT NULL DEFAULT '',
	external_url       text NOT NULL DEFAULT '',
	version            bigint NOT NULL DEFAULT 1,
	delivered_version  bigint NOT NULL DEFAULT 0,
	state              text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts           integer NOT NULL DEFAULT 0,
	-- create calls made (counted before each call): above one, search first
	create_calls       integer NOT NULL DEFAULT 0,
	next_attempt_at    timestamptz NOT NULL,
	lease_until        timestamptz,
	last_status        integer NOT NULL DEFAULT 0,
	last_error         text NOT NULL DEFAULT '',
	-- the remote's own update time of the last status update applied from it
	remote_updated_at  timestamptz,
	created_at         timestamptz NOT NULL,
	updated_at         timestamptz NOT NULL,
	PRIMARY KEY (action_id, bridge)
);
CREATE INDEX bridge_deliveries_due ON bridge_deliveries (bridge, next_attempt_at) WHERE state = 'pending';
CREATE UNIQUE INDEX bridge_deliveries_external ON bridge_deliveries (bridge, external_id) WHERE external_id <> '';

-- bridge_failures: every delivery the remote refused for good (a 4xx that
-- will not succeed), with the remote's message; listed by GET /v1/bridges/failures.
CREATE TABLE bridge_failures (
	id            bigserial PRIMARY KEY,
	action_id     uuid NOT NULL REFERENCES actions ON DELETE CASCADE,
	bridge        text NOT NULL,
	intent        text NOT NULL,
	version       bigint NOT NULL,
	http_status   integer NOT NULL,
	message       text NOT NULL,
	attempts      integer NOT NULL,
	failed_at     timestamptz NOT NULL
);
CREATE INDEX bridge_failures_recent ON bridge_failures (id DESC);

-- facilitator of the review each action came from: the digest goes to them too.
ALTER TABLE actions ADD COLUMN facilitator_name text NOT NULL DEFAULT '';
ALTER TABLE actions ADD COLUMN facilitator_email text NOT NULL DEFAULT '';

-- digest_notices: one weekly digest per recipient and ISO week.
CREATE TABLE digest_notices (
	recipient  text NOT NULL,
	role       text NOT NULL,
	week       text NOT NULL,
	event_id   text NOT NULL,
	claimed_at timestamptz NOT NULL,
	PRIMARY KEY (recipient, role, week)
);
