-- A review opened for an incident that closed longer ago than REVIEW_MAX_AGE
-- (typically an import of history) is historical: not required, without a due
-- date, so the reminder job never picks it up.
ALTER TABLE reviews ADD COLUMN historical boolean NOT NULL DEFAULT false;
ALTER TABLE reviews ADD CONSTRAINT reviews_historical_unscheduled
	CHECK (NOT historical OR (NOT required AND due_at IS NULL));
