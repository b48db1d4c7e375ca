-- reviews: what notify has learned of each review from its events.
CREATE TABLE reviews (
	review_id         uuid PRIMARY KEY,
	incident_id       uuid NOT NULL,
	title             text NOT NULL DEFAULT '',
	facilitator_name  text NOT NULL DEFAULT '',
	facilitator_email text NOT NULL DEFAULT '',
	due_at            timestamptz,
	completed_at      timestamptz
);

-- invitees: every invited participant with their personal form link. The link
-- is a bearer capability: it is kept here (for reminders) and in the mails
-- sent, and nowhere else; the deliveries API never shows it.
CREATE TABLE invitees (
	review_id        uuid NOT NULL,
	participant_id   uuid NOT NULL,
	name             text NOT NULL DEFAULT '',
	email            text NOT NULL DEFAULT '',
	form_url         text NOT NULL DEFAULT '',
	expires_at       timestamptz,
	invited_at       timestamptz,
	answered_at      timestamptz,
	reminders        integer NOT NULL DEFAULT 0,
	last_reminded_at timestamptz,
	PRIMARY KEY (review_id, participant_id)
);
CREATE INDEX invitees_unanswered ON invitees (coalesce(last_reminded_at, invited_at))
	WHERE answered_at IS NULL AND form_url <> '';

-- deliveries: one row per person, reason and channel (dedupe_key, channel),
-- with the rendered message and its status:
--   pending  waiting for its next attempt (next_attempt_at)
--   sending  claimed by a sender, recorded BEFORE the SMTP transaction or HTTP
--            request; a row still sending after the lease is reconciled
--            (sent again, reclaims + 1)
--   sent     the server accepted it
--   dead     given up on: refused for good (5xx on RCPT/DATA, webhook 4xx), no
--            address, or max attempts; never retried unless an operator asks
CREATE TABLE deliveries (
	delivery_id     uuid PRIMARY KEY,
	dedupe_key      text NOT NULL,
	channel         text NOT NULL,
	reason          text NOT NULL,
	review_id       uuid,
	action_id       uuid,
	recipient_name  text NOT NULL DEFAULT '',
	recipient_email text NOT NULL DEFAULT '',
	subject         text NOT NULL,
	body_text       text NOT NULL,
	body_html       text NOT NULL,
	chat_text       text NOT NULL,
	ics             text NOT NULL DEFAULT '',
	ics_method      text NOT NULL DEFAULT '',
	source_event_id text NOT NULL,
	status          text NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'dead')),
	attempts        integer NOT NULL DEFAULT 0,
	reclaims        integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL,
	claimed_at      timestamptz,
	sent_at         timestamptz,
	dead_at         timestamptz,
	last_error      text NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL,
	UNIQUE (dedupe_key, channel)
);
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_sending ON deliveries (claimed_at) WHERE status = 'sending';
CREATE INDEX deliveries_review ON deliveries (review_id, created_at);
CREATE INDEX deliveries_created ON deliveries (created_at);
