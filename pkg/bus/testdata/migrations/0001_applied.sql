CREATE TABLE applied (
	event_id   text NOT NULL,
	note       text NOT NULL DEFAULT '',
	applied_at timestamptz NOT NULL DEFAULT now()
);
