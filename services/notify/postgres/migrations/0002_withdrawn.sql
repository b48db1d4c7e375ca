-- withdrawn: a delivery that carried a participant's form link, still pending
-- when the facilitator revoked the invitation or removed the participant. It
-- is never sent (the link no longer works) and never retried.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
	CHECK (status IN ('pending', 'sending', 'sent', 'dead', 'withdrawn'));

-- invitees.withdrawn_at: when the invitation was withdrawn (form_url is then
-- ''); a later resend clears it.
ALTER TABLE invitees ADD COLUMN withdrawn_at timestamptz;
