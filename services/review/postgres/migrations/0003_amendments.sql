-- A completed review follows later incident revisions: incident_revision is
-- the latest revision seen, completed_incident_revision the one the latest
-- completion or amendment was based on. A completed review whose incident has
-- moved on is stale until it is amended.
ALTER TABLE reviews ADD COLUMN completed_incident_revision integer;
UPDATE reviews SET completed_incident_revision = incident_revision WHERE status = 'completed';

-- amendments: every correction of a completed review, numbered from 1 per
-- review, with who made it, why, and the request exactly as received. Never
-- updated or deleted: together with the completion they are the audit trail
-- of every review.completed event the review emitted.
CREATE TABLE amendments (
	review_id         uuid NOT NULL REFERENCES reviews (review_id),
	number            integer NOT NULL CHECK (number >= 1),
	amended_at        timestamptz NOT NULL,
	amended_by        text NOT NULL,
	reason            text NOT NULL,
	incident_revision integer NOT NULL,
	event_id          text NOT NULL,
	body              json NOT NULL,
	PRIMARY KEY (review_id, number)
);
