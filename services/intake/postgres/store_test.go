package postgres_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/intake"
	"github.com/afteraction/afteraction/services/intake/postgres"
)

func newStore(t testing.TB) (*postgres.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.New(t, pgtest.Migration{Schema: postgres.Schema, FS: postgres.Migrations()})
	return postgres.New(pool), pool
}

// example returns the rich example incident, changed by edit.
func example(t testing.TB, edit func(*events.IncidentClosed)) []byte {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS(), "events/examples/incident.closed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return b
	}
	var inc events.IncidentClosed
	if err := json.Unmarshal(b, &inc); err != nil {
		t.Fatal(err)
	}
	edit(&inc)
	out, err := json.MarshalIndent(inc, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// msg checks raw like the consumer does and wraps it as a message of eventID.
func msg(t testing.TB, eventID string, raw []byte) postgres.Message {
	t.Helper()
	m := postgres.Message{EventID: eventID, Subject: "incidents.closed.jira", ReceivedAt: time.Now(), Raw: raw}
	rev, err := intake.Parse(raw, "", "jira")
	var inv *intake.Invalid
	switch {
	case err == nil:
		m.Accepted = rev
	case errors.As(err, &inv):
		m.Rejected = &postgres.Rejection{Source: "jira", Reason: inv.Reason, Problems: inv.Problems}
	default:
		t.Fatal(err)
	}
	return m
}

func apply(t testing.TB, s *postgres.Store, msgs ...postgres.Message) []postgres.Result {
	t.Helper()
	res, err := s.Apply(context.Background(), msgs)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if len(res) != len(msgs) {
		t.Fatalf("apply: %d results for %d messages", len(res), len(msgs))
	}
	return res
}

type outboxRow struct {
	Type string
	Data []byte
}

func outbox(t testing.TB, pool *pgxpool.Pool) []outboxRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT ce_type, data FROM outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.Type, &r.Data); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func count(t testing.TB, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func registered(t testing.TB, rows []outboxRow) []events.IncidentRegistered {
	t.Helper()
	var out []events.IncidentRegistered
	for _, r := range rows {
		if r.Type != events.TypeIncidentRegistered {
			continue
		}
		if err := events.Validate(r.Type, r.Data); err != nil {
			t.Fatalf("registered event does not match its schema: %v", err)
		}
		var e events.IncidentRegistered
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestApplyRegistersNewIncident(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	raw := example(t, nil)
	res := apply(t, s, msg(t, "ev-1", raw))
	id := intake.IncidentID("jira", "SEC-2026-0142")
	if want := (postgres.Result{Outcome: postgres.Registered, IncidentID: id, Revision: 1}); res[0] != want {
		t.Fatalf("result = %+v, want %+v", res[0], want)
	}
	inc, err := s.Incident(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Revision != 1 || inc.Source != "jira" || inc.ExternalID != "SEC-2026-0142" || inc.Severity != "high" || len(inc.Revisions) != 1 {
		t.Fatalf("incident = %+v", inc)
	}
	var canonical events.IncidentClosed
	if err := json.Unmarshal(inc.Canonical, &canonical); err != nil {
		t.Fatal(err)
	}
	if canonical.People[0].Name != "Kemal Yıldız" || len(canonical.Timeline) != 15 {
		t.Fatalf("canonical incident lost data: %+v", canonical.People[0])
	}
	got, err := s.RawRevision(context.Background(), id, 1)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("raw revision 1 differs from the payload (err %v)", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM incident_timeline WHERE incident_id = $1`, id); n != 15 {
		t.Errorf("timeline rows = %d, want 15", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM incident_people WHERE incident_id = $1 AND role = 'commander'`, id); n != 1 {
		t.Errorf("commander rows = %d, want 1", n)
	}
	evs := registered(t, outbox(t, pool))
	if len(evs) != 1 || evs[0].IncidentID != id || evs[0].Revision != 1 || evs[0].Incident.Title != canonical.Title {
		t.Fatalf("registered events = %+v", evs)
	}
}

func TestApplyIgnoresIdenticalResend(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	apply(t, s, msg(t, "ev-1", example(t, nil)))
	// Same content, other whitespace and a new event id: not a change.
	res := apply(t, s, msg(t, "ev-2", example(t, func(*events.IncidentClosed) {})))
	if res[0].Outcome != postgres.Unchanged || res[0].Revision != 1 {
		t.Fatalf("identical resend = %+v, want ignored at revision 1", res[0])
	}
	// The same event again: a duplicate.
	res = apply(t, s, msg(t, "ev-1", example(t, nil)))
	if res[0].Outcome != postgres.Duplicate {
		t.Fatalf("redelivery = %+v, want duplicate", res[0])
	}
	if n := len(registered(t, outbox(t, pool))); n != 1 {
		t.Fatalf("%d registered events, want 1", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM incident_revisions`); n != 1 {
		t.Fatalf("%d revisions, want 1", n)
	}
}

func TestApplyStoresChangedResendAsNewRevision(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	first := example(t, nil)
	apply(t, s, msg(t, "ev-1", first))
	res := apply(t, s, msg(t, "ev-2", example(t, func(inc *events.IncidentClosed) {
		inc.Title = "Phishing led to a compromised finance mailbox"
		inc.Timeline = inc.Timeline[:3]
	})))
	id := intake.IncidentID("jira", "SEC-2026-0142")
	if want := (postgres.Result{Outcome: postgres.Revised, IncidentID: id, Revision: 2}); res[0] != want {
		t.Fatalf("result = %+v, want %+v", res[0], want)
	}
	inc, err := s.Incident(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Revision != 2 || inc.Title != "Phishing led to a compromised finance mailbox" || len(inc.Revisions) != 2 ||
		inc.Revisions[0].Revision != 1 || inc.Revisions[1].Revision != 2 || inc.Revisions[0].ContentSHA256 == inc.Revisions[1].ContentSHA256 {
		t.Fatalf("incident = %+v", inc)
	}
	if got, err := s.RawRevision(context.Background(), id, 1); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("revision 1 was not kept (err %v)", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM incident_timeline WHERE incident_id = $1`, id); n != 3 {
		t.Errorf("timeline rows = %d, want the 3 of revision 2", n)
	}
	evs := registered(t, outbox(t, pool))
	if len(evs) != 2 || evs[1].Revision != 2 || evs[1].Incident.Title != inc.Title {
		t.Fatalf("registered events = %+v", evs)
	}
	// Back to the first content is a change too: revision 3.
	if res := apply(t, s, msg(t, "ev-3", first)); res[0].Revision != 3 {
		t.Fatalf("revert = %+v, want revision 3", res[0])
	}
}

func TestApplyMixedBatch(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	a1 := example(t, nil)
	a2 := example(t, func(inc *events.IncidentClosed) { inc.Severity = events.SeverityCritical })
	b1 := example(t, func(inc *events.IncidentClosed) { inc.ExternalID = "SEC-2026-0143" })
	early := example(t, func(inc *events.IncidentClosed) {
		inc.ExternalID = "SEC-2026-0144"
		inc.Timestamps.ClosedAt = inc.Timestamps.DetectedAt.Add(-time.Minute)
	})
	batch := []postgres.Message{
		msg(t, "a1", a1),
		msg(t, "bad-json", []byte(`{"source": "jira",`)),
		msg(t, "a2", a2),
		msg(t, "a1", a1), // the same event twice in one batch
		msg(t, "b1", b1),
		msg(t, "early", early),
		msg(t, "a2-again", a2),
		msg(t, "bad-severity", bytes.Replace(b1, []byte(`"high"`), []byte(`"catastrophic"`), 1)),
	}
	res := apply(t, s, batch...)
	a, b := intake.IncidentID("jira", "SEC-2026-0142"), intake.IncidentID("jira", "SEC-2026-0143")
	want := []postgres.Result{
		{Outcome: postgres.Registered, IncidentID: a, Revision: 1},
		{Outcome: postgres.Rejected},
		{Outcome: postgres.Revised, IncidentID: a, Revision: 2},
		{Outcome: postgres.Duplicate},
		{Outcome: postgres.Registered, IncidentID: b, Revision: 1},
		{Outcome: postgres.Rejected},
		{Outcome: postgres.Unchanged, IncidentID: a, Revision: 2},
		{Outcome: postgres.Rejected},
	}
	for i := range want {
		got := res[i]
		if got.Outcome == postgres.Rejected && got.RejectID == "" {
			t.Errorf("message %d: rejected without a reject id", i)
		}
		got.RejectID = ""
		if got != want[i] {
			t.Errorf("message %d: %+v, want %+v", i, got, want[i])
		}
	}
	inc, err := s.Incident(context.Background(), a)
	if err != nil || inc.Revision != 2 || inc.Severity != "critical" {
		t.Fatalf("incident a = %+v (err %v), want revision 2, critical", inc, err)
	}

	rejects, err := s.Rejects(context.Background(), 10)
	if err != nil || len(rejects) != 3 {
		t.Fatalf("rejects = %+v (err %v), want 3", rejects, err)
	}
	byEvent := map[string]postgres.Reject{}
	for _, r := range rejects {
		byEvent[*r.EventID] = r
	}
	if r := byEvent["early"]; r.Reason != intake.ReasonClosedEarly || !bytes.Contains(r.Problems, []byte(`"/timestamps/closed_at"`)) {
		t.Errorf("closure before detection: %+v", r)
	}
	if r := byEvent["bad-severity"]; !bytes.Contains(r.Problems, []byte(`"/severity"`)) {
		t.Errorf("unknown severity: %+v problems %s", r, r.Problems)
	}
	full, err := s.Reject(context.Background(), byEvent["bad-json"].ID)
	if err != nil || !bytes.Equal(full.Raw, []byte(`{"source": "jira",`)) || full.Subject != "incidents.closed.jira" {
		t.Fatalf("bad JSON reject = %+v (err %v)", full, err)
	}

	rows := outbox(t, pool)
	evs := registered(t, rows)
	if len(evs) != 3 || evs[0].Revision != 1 || evs[1].Revision != 2 || evs[1].IncidentID != a || evs[2].IncidentID != b {
		t.Fatalf("registered events = %+v", evs)
	}
	var rejected int
	for _, r := range rows {
		if r.Type == events.TypeIncidentRejected {
			rejected++
			if err := events.Validate(r.Type, r.Data); err != nil {
				t.Errorf("rejected event does not match its schema: %v", err)
			}
		}
	}
	if rejected != 3 {
		t.Fatalf("%d rejected events, want 3", rejected)
	}

	// The whole batch redelivered changes nothing.
	for i, r := range apply(t, s, batch...) {
		if r.Outcome != postgres.Duplicate {
			t.Errorf("redelivered message %d: %+v, want duplicate", i, r)
		}
	}
	if n := len(outbox(t, pool)); n != len(rows) {
		t.Fatalf("redelivery enqueued %d more events", n-len(rows))
	}
}

func TestRejectTextIsMadeStorable(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	raw := append([]byte("\xff\x00{"), bytes.Repeat([]byte("é"), 3000)...)
	res := apply(t, s, postgres.Message{
		Subject: "POST /v1/webhooks/x\x00", Raw: raw,
		Rejected: &postgres.Rejection{Source: "x\xff", Reason: "bad \x00 input",
			Problems: []events.Problem{{Field: "/a\x00", Reason: "value \"\x00\" is wrong"}},
			Headers:  map[string][]string{"X-Test": {"\x00"}}},
	})
	r, err := s.Reject(context.Background(), res[0].RejectID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Raw, raw) || r.Reason != "bad \uFFFD input" {
		t.Fatalf("reject = %+v", r)
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 10, "abc"},
		{"aé", 2, "a"}, // é is two bytes: never cut inside it
		{"a\xffb", 10, "a\uFFFDb"},
	} {
		if got := postgres.Excerpt([]byte(tc.in), tc.n); got != tc.want {
			t.Errorf("Excerpt(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// msgOn is msg for a payload of source arriving on incidents.closed.<source>.
func msgOn(t testing.TB, source, eventID string, raw []byte) postgres.Message {
	t.Helper()
	rev, err := intake.Parse(raw, "", source)
	if err != nil {
		t.Fatal(err)
	}
	return postgres.Message{EventID: eventID, Subject: "incidents.closed." + source, ReceivedAt: time.Now(), Raw: raw, Accepted: rev}
}

// A message is unique by (subject, id, bytes): two sources may both use
// INC-1 as their message id, and a source reusing an id for other content
// sends another message, applied and flagged, never dropped as a duplicate.
func TestApplyKeysMessagesBySourceIDAndContent(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	of := func(source, ext string) []byte {
		return example(t, func(i *events.IncidentClosed) { i.Source, i.ExternalID = source, ext })
	}
	outcomes := func(res []postgres.Result) (out []string) {
		for _, r := range res {
			o := string(r.Outcome)
			if r.ReusedID {
				o += "+reused"
			}
			out = append(out, o)
		}
		return out
	}
	res := apply(t, s, msgOn(t, "jira", "INC-1", of("jira", "J-1")), msgOn(t, "pagerduty", "INC-1", of("pagerduty", "P-1")))
	if got := outcomes(res); !slices.Equal(got, []string{"registered", "registered"}) {
		t.Fatalf("same id from two sources: %v", got)
	}
	// The same id from jira again, for another incident: applied, flagged.
	res = apply(t, s, msgOn(t, "jira", "INC-1", of("jira", "J-2")))
	if got := outcomes(res); !slices.Equal(got, []string{"registered+reused"}) {
		t.Fatalf("reused id: %v", got)
	}
	// Redeliveries of either content are duplicates.
	res = apply(t, s, msgOn(t, "jira", "INC-1", of("jira", "J-1")), msgOn(t, "jira", "INC-1", of("jira", "J-2")))
	if got := outcomes(res); !slices.Equal(got, []string{"duplicate", "duplicate"}) {
		t.Fatalf("redeliveries: %v", got)
	}
	// Within one batch: a copy is a duplicate, other bytes under the same id are applied and flagged.
	res = apply(t, s, msgOn(t, "jira", "M-9", of("jira", "J-3")), msgOn(t, "jira", "M-9", of("jira", "J-3")),
		msgOn(t, "jira", "M-9", of("jira", "J-4")))
	if got := outcomes(res); !slices.Equal(got, []string{"registered", "duplicate", "registered+reused"}) {
		t.Fatalf("one batch: %v", got)
	}
}
