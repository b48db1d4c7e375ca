-- incidents: the current revision of every incident intake has registered.
-- (source, external_id) is the identity; id is derived from it (UUIDv5).
CREATE TABLE incidents (
	id             uuid PRIMARY KEY,
	source         text NOT NULL,
	external_id    text NOT NULL,
	revision       integer NOT NULL CHECK (revision >= 1),
	title          text NOT NULL,
	severity       text NOT NULL,
	category       text NOT NULL DEFAULT '',
	exercise       boolean NOT NULL DEFAULT false,
	closed_at      timestamptz NOT NULL,
	detected_at    timestamptz,
	registered_at  timestamptz NOT NULL,
	updated_at     timestamptz NOT NULL,
	content_sha256 text NOT NULL,
	canonical      jsonb NOT NULL,
	UNIQUE (source, external_id)
);
CREATE INDEX incidents_updated_at ON incidents (updated_at DESC, id);

-- incident_revisions: every distinct content an incident has had, never
-- overwritten, with the payload exactly as it arrived.
CREATE TABLE incident_revisions (
	incident_id    uuid NOT NULL REFERENCES incidents (id),
	revision       integer NOT NULL CHECK (revision >= 1),
	content_sha256 text NOT NULL,
	canonical      jsonb NOT NULL,
	raw            bytea NOT NULL,
	received_at    timestamptz NOT NULL,
	event_id       text,
	PRIMARY KEY (incident_id, revision)
);

-- incident_timeline and incident_people: the current revision's timeline and
-- people as rows, for querying; replaced whenever a new revision arrives.
CREATE TABLE incident_timeline (
	incident_id uuid NOT NULL REFERENCES incidents (id),
	seq         integer NOT NULL,
	at          timestamptz NOT NULL,
	actor       text NOT NULL DEFAULT '',
	phase       text NOT NULL,
	action      text NOT NULL,
	detail      text NOT NULL DEFAULT '',
	PRIMARY KEY (incident_id, seq)
);

CREATE TABLE incident_people (
	incident_id uuid NOT NULL REFERENCES incidents (id),
	seq         integer NOT NULL,
	name        text NOT NULL,
	email       text NOT NULL DEFAULT '',
	role        text NOT NULL,
	team        text NOT NULL DEFAULT '',
	PRIMARY KEY (incident_id, seq)
);
CREATE INDEX incident_people_email ON incident_people (lower(email)) WHERE email <> '';

-- rejects: every inbound payload intake refused, with the reason and the bytes
-- as received (never dropped silently).
CREATE TABLE rejects (
	id             uuid PRIMARY KEY,
	source         text NOT NULL DEFAULT '',
	subject        text NOT NULL,
	received_at    timestamptz NOT NULL,
	reason         text NOT NULL,
	problems       jsonb NOT NULL DEFAULT '[]',
	raw            bytea NOT NULL,
	headers        jsonb,
	payload_sha256 text NOT NULL,
	event_id       text
);
CREATE INDEX rejects_received_at ON rejects (received_at DESC, id);
