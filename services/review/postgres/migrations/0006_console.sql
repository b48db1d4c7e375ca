-- The facilitator console (issue 7): sessions of people signed in, failed
-- sign-ins for throttling, participants managed by hand or by rule with
-- revocable invitations, participants' drafts, and the sign-off of a
-- completion with an optional second approval.

-- console_sessions: one row per signed-in browser; id_hash is the SHA-256 of
-- the session cookie (the cookie itself is never stored).
CREATE TABLE console_sessions (
	id_hash    bytea PRIMARY KEY,
	login      text NOT NULL,
	name       text NOT NULL,
	email      text NOT NULL DEFAULT '',
	roles      text[] NOT NULL,
	csrf       text NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- console_login_failures: failed sign-ins, counted per login and per client
-- address over a window to throttle password guessing across replicas.
CREATE TABLE console_login_failures (
	login     text NOT NULL,
	client    text NOT NULL,
	failed_at timestamptz NOT NULL
);
CREATE INDEX console_login_failures_login ON console_login_failures (login, failed_at);
CREATE INDEX console_login_failures_client ON console_login_failures (client, failed_at);

-- added_by: 'incident' (from the incident's people), 'rule:<name>' or
-- 'person:<login>'; removed participants stay for the audit (and their
-- responses' foreign keys) but are no longer invited. invitation_generation
-- is signed into the invitation token: revoking or resending bumps it, which
-- invalidates that one participant's earlier links and nobody else's.
ALTER TABLE participants
	ADD COLUMN added_by text NOT NULL DEFAULT 'incident',
	ADD COLUMN removed_at timestamptz,
	ADD COLUMN invitation_generation integer NOT NULL DEFAULT 0,
	ADD COLUMN invitation_revoked_at timestamptz,
	ADD COLUMN invited_at timestamptz;
UPDATE participants SET invited_at = added_at;
ALTER TABLE participants ALTER COLUMN invited_at SET NOT NULL;

-- participant_changes: the audit of managing participants, never updated.
CREATE TABLE participant_changes (
	id             bigserial PRIMARY KEY,
	review_id      uuid NOT NULL REFERENCES reviews (review_id),
	participant_id uuid NOT NULL REFERENCES participants (participant_id),
	at             timestamptz NOT NULL,
	by             text NOT NULL,
	change         text NOT NULL CHECK (change IN ('added', 'removed', 'resent', 'revoked')),
	detail         text NOT NULL DEFAULT ''
);
CREATE INDEX participant_changes_review ON participant_changes (review_id, id);

-- drafts: answers a participant saved without submitting; submitting clears it.
CREATE TABLE drafts (
	participant_id uuid PRIMARY KEY REFERENCES participants (participant_id),
	review_id      uuid NOT NULL REFERENCES reviews (review_id),
	answers        jsonb NOT NULL,
	saved_at       timestamptz NOT NULL
);

-- Sign-off: the person who completes signs off; where a second approval is
-- required the review waits in 'awaiting_approval' with the outcome in
-- pending_completion until an approver signs (then it is completed) or
-- rejects it with a reason (then it is open again).
ALTER TABLE reviews DROP CONSTRAINT reviews_status_check;
ALTER TABLE reviews ADD CONSTRAINT reviews_status_check CHECK (status IN ('open', 'awaiting_approval', 'completed'));
ALTER TABLE reviews
	ADD COLUMN signed_off_by text NOT NULL DEFAULT '',
	ADD COLUMN signed_off_at timestamptz,
	ADD COLUMN pending_completion jsonb,
	ADD COLUMN approved_by text NOT NULL DEFAULT '',
	ADD COLUMN approved_at timestamptz,
	ADD COLUMN rejected_by text NOT NULL DEFAULT '',
	ADD COLUMN rejected_at timestamptz,
	ADD COLUMN rejection_reason text NOT NULL DEFAULT '';
