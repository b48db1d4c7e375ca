package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/intake"
)

// publishRaw publishes data as it is on incidents.closed.<source>, with id as
// its Nats-Msg-Id and ce-id.
func (e *env) publishRaw(source, id string, data []byte) {
	e.t.Helper()
	e.publishWithIDs(source, id, id, data)
}

// publishWithIDs publishes data on incidents.closed.<source> with the given
// ce-id and Nats-Msg-Id (the stream deduplicates on the latter alone).
func (e *env) publishWithIDs(source, ceID, msgID string, data []byte) {
	e.t.Helper()
	m := nats.NewMsg(events.SubjectIncidentClosedPrefix + source)
	m.Header.Set("Nats-Msg-Id", msgID)
	m.Header.Set("ce-id", ceID)
	m.Data = data
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		e.t.Fatalf("publish %s: %v", ceID, err)
	}
}

// hostile is a schema-invalid incident of ~210 KB: ~100 unknown property
// names made of '<', which JSON escapes to six bytes each.
func hostile(t *testing.T, source string) []byte {
	t.Helper()
	b, err := json.Marshal(incident(t, source, "HOSTILE-1"))
	if err != nil {
		t.Fatal(err)
	}
	var extra strings.Builder
	for i := range 100 {
		fmt.Fprintf(&extra, `,"%s%d":true`, strings.Repeat("<", 2090), i)
	}
	return append(b[:len(b)-1], extra.String()+"}"...)
}

// A hostile payload in a batch of valid incidents is rejected alone: every
// valid incident is registered, nothing is dead-lettered.
func TestRunHostilePayloadInABatch(t *testing.T) {
	e := start(t, nil)
	var ids []string
	for i := range 20 {
		inc := incident(t, "jira", fmt.Sprintf("OPS-%d", i))
		b, _ := json.Marshal(inc)
		if i == 10 {
			e.publishRaw("jira", "hostile", hostile(t, "jira"))
		}
		e.publishRaw("jira", fmt.Sprintf("valid-%d", i), b)
		ids = append(ids, intake.IncidentID("jira", inc.ExternalID))
	}
	e.settle()
	for _, id := range ids {
		var got incidentView
		if status := e.getJSON("/v1/incidents/"+id, &got); status != http.StatusOK {
			t.Errorf("incident %s: %d, want registered", id, status)
		}
	}
	var rejects struct {
		Rejects []struct {
			ID          string `json:"reject_id"`
			PayloadSize int    `json:"payload_size"`
		} `json:"rejects"`
	}
	if status := e.getJSON("/v1/rejects", &rejects); status != http.StatusOK || len(rejects.Rejects) != 1 ||
		rejects.Rejects[0].PayloadSize < 200<<10 {
		t.Fatalf("rejects: %d %+v, want the hostile payload", status, rejects)
	}
	_, data := e.lastEvent(events.SubjectIncidentRejected)
	var ev events.IncidentRejected
	if err := json.Unmarshal(data, &ev); err != nil || ev.RejectID != rejects.Rejects[0].ID {
		t.Fatalf("rejected event %.200s: %v", data, err)
	}
	var dead int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM dead_letters`).Scan(&dead); err != nil || dead != 0 {
		t.Fatalf("%d dead letters (%v), want 0", dead, err)
	}
}

// Out-of-range times are refused with a 422 naming the field over HTTP and a
// reject over NATS, never a 500, a retry or the DLQ; so is a closure more
// than a day in the future, which would make closed→review negative.
func TestRunTimesOutOfRange(t *testing.T) {
	e := start(t, nil)
	for i, tc := range []struct{ name, closedAt string }{
		{"year 10000 in UTC", "9999-12-31T23:00:00-05:00"},
		{"before 1970", "1969-07-20T20:17:40Z"},
		{"two days ahead", time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			b, err := json.Marshal(incident(t, "jira", fmt.Sprintf("TIME-%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			raw := bytes.Replace(b, []byte(`"closed_at":"2026-03-05T10:12:37.5Z"`), []byte(`"closed_at":"`+tc.closedAt+`"`), 1)
			if bytes.Equal(raw, b) {
				t.Fatal("closed_at not replaced")
			}
			status, body := e.do(http.MethodPost, "/v1/incidents", submitToken, raw)
			var p problem
			_ = json.Unmarshal(body, &p)
			if status != http.StatusUnprocessableEntity || len(p.Errors) == 0 || p.Errors[0].Field != "/timestamps/closed_at" {
				t.Fatalf("POST: %d %s, want 422 naming /timestamps/closed_at", status, body)
			}
			e.settle() // the HTTP reject's own event
			before := e.published(events.SubjectIncidentRejected)
			e.publishRaw("jira", fmt.Sprintf("time-%d", i), raw)
			e.settle()
			if n := e.published(events.SubjectIncidentRejected); n != before+1 {
				t.Fatalf("%d rejected events after publishing on NATS, want %d", n, before+1)
			}
			_, data := e.lastEvent(events.SubjectIncidentRejected)
			var ev events.IncidentRejected
			if err := json.Unmarshal(data, &ev); err != nil || ev.Subject != "incidents.closed.jira" ||
				len(ev.Problems) == 0 || ev.Problems[0].Field != "/timestamps/closed_at" {
				t.Fatalf("rejected event %s: %v", data, err)
			}
		})
	}
	var dead int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM dead_letters`).Scan(&dead); err != nil || dead != 0 {
		t.Fatalf("%d dead letters (%v), want 0", dead, err)
	}
}

// Two sources that both use INC-1 as their message id, and a source that
// reuses an id for another ticket, lose nothing: every incident is
// registered and the reuse is counted.
func TestRunSameMessageIDFromTwoSources(t *testing.T) {
	e := start(t, nil)
	sends := []struct{ source, ext, msgID string }{
		{"jira", "J-1", "a"}, {"pagerduty", "P-1", "b"}, {"jira", "J-2", "c"},
	}
	for _, s := range sends {
		b, err := json.Marshal(incident(t, s.source, s.ext))
		if err != nil {
			t.Fatal(err)
		}
		e.publishWithIDs(s.source, "INC-1", s.msgID, b)
		e.settle() // one at a time: the reuse is across batches
	}
	for _, s := range sends {
		var got incidentView
		if status := e.getJSON("/v1/incidents/"+intake.IncidentID(s.source, s.ext), &got); status != http.StatusOK {
			t.Errorf("%s %s: %d, want registered", s.source, s.ext, status)
		}
	}
	status, body := e.do(http.MethodGet, "/metrics", "", nil)
	if status != http.StatusOK || !strings.Contains(string(body), "afteraction_intake_reused_message_ids_total 1\n") {
		t.Fatalf("metrics: %d, want one reused id counted", status)
	}
}
