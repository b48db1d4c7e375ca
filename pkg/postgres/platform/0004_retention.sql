-- Retention (postgres.Prune): handled event ids and dead letters are deleted
-- in batches by age; these indexes keep each batch from scanning the table.
CREATE INDEX processed_events_handled_at ON processed_events (handled_at);
CREATE INDEX dead_letters_dead_at ON dead_letters (dead_at);
