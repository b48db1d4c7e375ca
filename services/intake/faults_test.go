package intake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/intake"
)

// publishRaw publishes data as it is on incidents.closed.<source>, with id as
// its Nats-Msg-Id and ce-id.
func (e *env) publishRaw(source, id string, data []byte) {
	e.t.Helper()
	m := nats.NewMsg(events.SubjectIncidentClosedPrefix + source)
	m.Header.Set("Nats-Msg-Id", id)
	m.Header.Set("ce-id", id)
	m.Data = data
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		e.t.Fatalf("publish %s: %v", id, err)
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
