package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/intake"
	"github.com/afteraction/afteraction/services/intake/postgres"
)

// TestPurgeRemovesPayloadsAndKeepsDedupe: an expired incident loses its raw
// payloads (and webhook body) up to the announced revision, once, with an
// audit line; another incident keeps its own; a late copy of the purged
// incident stays a duplicate.
func TestPurgeRemovesPayloadsAndKeepsDedupe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	first := example(t, nil)
	second := example(t, func(inc *events.IncidentClosed) { inc.Title = "Phishing led to a compromised finance mailbox" })
	other := example(t, func(inc *events.IncidentClosed) { inc.ExternalID = "SEC-2026-0999" })
	webhookBody := []byte(`{"issue": {"key": "SEC-2026-0142", "fields": {"summary": "Phishing"}}}`)
	if err := s.RecordDelivery(ctx, "ev-2", "jira", time.Now(), map[string][]string{"X-Atlassian-Webhook-Identifier": {"1"}}, webhookBody); err != nil {
		t.Fatal(err)
	}
	apply(t, s, msg(t, "ev-1", first))
	apply(t, s, msg(t, "ev-2", second))
	apply(t, s, msg(t, "ev-9", other))
	id, otherID := intake.IncidentID("jira", "SEC-2026-0142"), intake.IncidentID("jira", "SEC-2026-0999")
	registeredBefore := len(registered(t, outbox(t, pool)))

	now := time.Date(2031, 3, 6, 0, 0, 0, 0, time.UTC)
	e := events.EvidenceExpired{IncidentID: id, IncidentRevision: 2, Severity: events.SeverityHigh, Rule: "default=5y",
		ClosedAt: now.AddDate(-5, 0, -1), RetainUntil: now.AddDate(0, 0, -1), ExpiredAt: now}
	p, fresh, err := s.Purge(ctx, "expired-1", e, now)
	if err != nil || !fresh {
		t.Fatalf("purge: fresh %v, err %v", fresh, err)
	}
	if want := int64(len(first) + len(second) + len(webhookBody)); p.Revisions != 2 || p.WebhookBodies != 1 || p.Bytes != want {
		t.Errorf("purged %+v, want 2 revisions, 1 webhook body, %d bytes", p, want)
	}
	for n := 1; n <= 2; n++ {
		if _, err := s.RawRevision(ctx, id, n); !errors.Is(err, postgres.ErrPurged) {
			t.Errorf("raw revision %d after purge: err = %v, want ErrPurged", n, err)
		}
	}
	if got, err := s.RawRevision(ctx, otherID, 1); err != nil || !bytes.Equal(got, other) {
		t.Errorf("the other incident's payload changed (err %v)", err)
	}
	inc, err := s.Incident(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r := inc.Revisions; len(r) != 2 || r[0].PurgedAt == nil || !r[1].PurgedAt.Equal(now) {
		t.Errorf("revisions after purge = %+v, want both marked purged", r)
	}
	var canonical map[string]any
	if err := json.Unmarshal(inc.Canonical, &canonical); err != nil {
		t.Fatal(err)
	}
	if canonical["people"] != nil || canonical["timeline"] != nil || canonical["title"] != "Phishing led to a compromised finance mailbox" ||
		canonical["external_id"] != "SEC-2026-0142" {
		t.Errorf("canonical after purge = %v, want only what identifies the incident", canonical)
	}
	if n := count(t, pool, `SELECT count(*) FROM incident_people WHERE incident_id = $1`, id); n != 0 {
		t.Errorf("people rows after purge = %d, want 0", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM incident_people WHERE incident_id = $1`, otherID); n == 0 {
		t.Error("the other incident lost its people")
	}

	// A redelivery of the expiry does nothing more.
	if _, fresh, err := s.Purge(ctx, "expired-1", e, now.Add(time.Hour)); err != nil || fresh {
		t.Errorf("redelivered expiry: fresh %v, err %v; want a no-op", fresh, err)
	}
	var removed map[string]int64
	if err := pool.QueryRow(ctx, `SELECT removed FROM purges WHERE incident_id = $1 AND rule = 'default=5y'`, id).Scan(&removed); err != nil {
		t.Fatalf("audit line: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM purges`); n != 1 || removed["revision_payloads"] != 2 || removed["webhook_bodies"] != 1 {
		t.Errorf("audit lines = %d, removed %v; want one line with the counts", n, removed)
	}

	// A late copy of the purged incident: the same message is a duplicate,
	// the same content under a new id unchanged; nothing is registered anew.
	if res := apply(t, s, msg(t, "ev-2", second)); res[0].Outcome != postgres.Duplicate {
		t.Errorf("redelivery after purge = %+v, want duplicate", res[0])
	}
	if res := apply(t, s, msg(t, "ev-2-resent", second)); res[0].Outcome != postgres.Unchanged || res[0].Revision != 2 {
		t.Errorf("resend after purge = %+v, want ignored at revision 2", res[0])
	}
	if n := len(registered(t, outbox(t, pool))); n != registeredBefore {
		t.Errorf("registered events %d after the late copies, want %d", n, registeredBefore)
	}
}
