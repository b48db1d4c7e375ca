-- A reminder is sent at most once per participant, reason and due date: when a
-- revised incident moves the due date, participants who have not answered are
-- reminded of the new one.
ALTER TABLE reminders ADD COLUMN due_at timestamptz;
UPDATE reminders m SET due_at = coalesce(r.due_at, m.reminded_at) FROM reviews r WHERE r.review_id = m.review_id;
ALTER TABLE reminders ALTER COLUMN due_at SET NOT NULL;
ALTER TABLE reminders DROP CONSTRAINT reminders_pkey;
ALTER TABLE reminders ADD PRIMARY KEY (participant_id, reason, due_at);
