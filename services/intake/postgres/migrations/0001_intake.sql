-- incidents: the current revision of every incident intake has registered.
-- (source, external_id) is the identity; id is derived from it (UUIDv5). The
-- canonical JSON lives only in incident_revisions (written once per revision).
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
	UNIQUE (source, external_id)
);
CREATE INDEX incidents_updated_at ON incidents (updated_at DESC, id);

-- incident_revisions: every distinct content an incident has had, never
-- overwritten, with the payload exactly as it arrived.
CREATE TABLE incident_revisions (
	incident_id    uuid NOT NULL,
	revision       integer NOT NULL CHECK (revision >= 1),
	content_sha256 text NOT NULL,
	canonical      json NOT NULL,
	raw            bytea NOT NULL,
	received_at    timestamptz NOT NULL,
	event_id       text,
	PRIMARY KEY (incident_id, revision)
);

-- incident_timeline and incident_people: the current revision's timeline and
-- people as rows, for querying. They are views over the canonical JSON rather
-- than tables: writing ~10 extra rows per incident would cost intake most of its
-- batched throughput, and the JSON is already stored once per revision.
CREATE VIEW incident_timeline AS
SELECT i.id AS incident_id, (t.ord - 1)::integer AS seq, (t.e ->> 'at')::timestamptz AS at,
	coalesce(t.e ->> 'actor', '') AS actor, t.e ->> 'phase' AS phase, t.e ->> 'action' AS action,
	coalesce(t.e ->> 'detail', '') AS detail
FROM incidents i
JOIN incident_revisions r ON r.incident_id = i.id AND r.revision = i.revision
CROSS JOIN LATERAL json_array_elements(coalesce(r.canonical -> 'timeline', '[]')) WITH ORDINALITY AS t(e, ord);

CREATE VIEW incident_people AS
SELECT i.id AS incident_id, (p.ord - 1)::integer AS seq, p.e ->> 'name' AS name,
	coalesce(p.e ->> 'email', '') AS email, p.e ->> 'role' AS role, coalesce(p.e ->> 'team', '') AS team
FROM incidents i
JOIN incident_revisions r ON r.incident_id = i.id AND r.revision = i.revision
CROSS JOIN LATERAL json_array_elements(coalesce(r.canonical -> 'people', '[]')) WITH ORDINALITY AS p(e, ord);

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
