-- webhook_deliveries: the ticketing system's own request body for every
-- accepted webhook, keyed by the id of the incident.closed event it was
-- published as. A revision registered from that event serves this body as its
-- raw payload, so a report can cite the original and a re-mapping can be replayed.
CREATE TABLE webhook_deliveries (
	event_id    text PRIMARY KEY,
	source      text NOT NULL,
	received_at timestamptz NOT NULL,
	headers     jsonb NOT NULL DEFAULT '{}',
	body        bytea NOT NULL
);
