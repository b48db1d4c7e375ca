-- Evidence retention: when the report service announces that an incident's
-- evidence has expired (afteraction.evidence.expired), review deletes the
-- participants' answers to the incident's review: the answers of the current
-- responses (emptied: who answered when stays, so nobody is reminded again),
-- the drafts, and the free text of every submission in the audit log, which
-- keeps who submitted when (purged_at marks a blanked body).
ALTER TABLE response_submissions ADD COLUMN purged_at timestamptz;

-- purges: the audit line of every purge: which incident, by which rule and
-- retention date, and how much was removed.
CREATE TABLE purges (
	incident_id       uuid NOT NULL,
	incident_revision integer NOT NULL,
	rule              text NOT NULL,
	retain_until      timestamptz NOT NULL,
	purged_at         timestamptz NOT NULL,
	event_id          text NOT NULL UNIQUE,
	removed           jsonb NOT NULL,
	PRIMARY KEY (incident_id, incident_revision)
);
