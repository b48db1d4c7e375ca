-- meetings: the debrief (lessons-learned) meeting of a review, at most one.
-- uid is stable; sequence grows with every change that attendees are sent
-- (RFC 5545 SEQUENCE); a cancelled meeting keeps its row (status cancelled).
CREATE TABLE meetings (
	review_id        uuid PRIMARY KEY REFERENCES reviews (review_id),
	uid              text NOT NULL UNIQUE,
	sequence         integer NOT NULL DEFAULT 0,
	status           text NOT NULL CHECK (status IN ('scheduled', 'cancelled')),
	starts_at        timestamptz NOT NULL,
	duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 5 AND 1440),
	location         text NOT NULL DEFAULT '',
	video_url        text NOT NULL DEFAULT '',
	guests           jsonb NOT NULL DEFAULT '[]',
	attended         jsonb NOT NULL DEFAULT '[]',
	minutes          text NOT NULL DEFAULT '',
	updated_at       timestamptz NOT NULL
);
