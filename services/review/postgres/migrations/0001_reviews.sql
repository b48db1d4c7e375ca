-- questionnaires: every version of the lessons-learned questionnaire, immutable
-- once published; a review records the version it was opened with.
CREATE TABLE questionnaires (
	version    text PRIMARY KEY,
	questions  jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- reviews: one lessons-learned review per incident.
CREATE TABLE reviews (
	review_id             uuid PRIMARY KEY,
	incident_id           uuid NOT NULL UNIQUE,
	incident_revision     integer NOT NULL,
	status                text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'completed')),
	required              boolean NOT NULL,
	exercise              boolean NOT NULL,
	due_at                timestamptz,
	opened_at             timestamptz NOT NULL,
	completed_at          timestamptz,
	title                 text NOT NULL,
	severity              text NOT NULL,
	questionnaire_version text NOT NULL REFERENCES questionnaires (version),
	facilitator_name      text NOT NULL DEFAULT '',
	facilitator_email     text NOT NULL DEFAULT '',
	-- the canonical incident (incident.closed.v1) of the latest revision seen while open
	incident              jsonb NOT NULL,
	summary               text NOT NULL DEFAULT '',
	findings              jsonb NOT NULL DEFAULT '[]',
	action_items          jsonb NOT NULL DEFAULT '[]',
	completed_event_id    text
);
CREATE INDEX reviews_open_due ON reviews (due_at) WHERE status = 'open' AND due_at IS NOT NULL;

-- participants: the people invited to answer; key is the lower-cased e-mail, or
-- else the lower-cased name, so the same person is never invited twice.
CREATE TABLE participants (
	participant_id uuid PRIMARY KEY,
	review_id      uuid NOT NULL REFERENCES reviews (review_id),
	key            text NOT NULL,
	name           text NOT NULL,
	email          text NOT NULL DEFAULT '',
	role           text NOT NULL DEFAULT '',
	position       integer NOT NULL,
	added_at       timestamptz NOT NULL,
	UNIQUE (review_id, key)
);

-- responses: each participant's current answers (a resubmission replaces them).
CREATE TABLE responses (
	participant_id uuid PRIMARY KEY REFERENCES participants (participant_id),
	review_id      uuid NOT NULL REFERENCES reviews (review_id),
	answers        jsonb NOT NULL,
	submitted_at   timestamptz NOT NULL,
	submitted_by   text NOT NULL
);
CREATE INDEX responses_review ON responses (review_id);

-- response_submissions: the audit log, every submission ever made, never updated.
CREATE TABLE response_submissions (
	id             bigserial PRIMARY KEY,
	review_id      uuid NOT NULL REFERENCES reviews (review_id),
	participant_id uuid NOT NULL REFERENCES participants (participant_id),
	submitted_at   timestamptz NOT NULL,
	submitted_by   text NOT NULL,
	channel        text NOT NULL CHECK (channel IN ('api', 'form')),
	body           json NOT NULL
);
CREATE INDEX response_submissions_review ON response_submissions (review_id, id);

-- reminders: at most one reminder per participant and reason, claimed in the
-- same transaction as the outbox write, so restarts and replicas never double-send.
CREATE TABLE reminders (
	participant_id uuid NOT NULL REFERENCES participants (participant_id),
	reason         text NOT NULL CHECK (reason IN ('due_soon', 'overdue')),
	review_id      uuid NOT NULL REFERENCES reviews (review_id),
	reminded_at    timestamptz NOT NULL,
	event_id       text NOT NULL,
	PRIMARY KEY (participant_id, reason)
);
