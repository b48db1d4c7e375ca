package review

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
)

// The set-based path (openReviews under bus.InOneTxSet) leaves the service in
// the same state as handling the batch one message at a time: new incidents
// opened together, a later revision of one of them, a revision of an incident
// reviewed before the batch and a redelivered event handled by the handler.
func TestOpenReviewsInABatchMatchesOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b, c, d := registered(t), registered(t), registered(t), registered(t)
	a2 := a
	a2.Revision, a2.Incident.Title = a.Revision+1, "revised "+a.Incident.Title
	c2 := c
	c2.Revision = c.Revision + 1
	b.Incident.People = append(slices.Clone(b.Incident.People), events.Person{Name: "Extra Person", Email: "extra@example.com"})
	ids := map[string]string{}
	for _, k := range []string{"a", "b", "a2", "c", "c2", "d"} {
		ids[k] = uuid.Must(uuid.NewV7()).String()
	}
	batch := func() []*bus.Message {
		var ms []*bus.Message
		for _, x := range []struct {
			id string
			e  events.IncidentRegistered
		}{{ids["a"], a}, {ids["b"], b}, {ids["a2"], a2}, {ids["c2"], c2}, {ids["d"], d}} {
			ms = append(ms, &bus.Message{Subject: events.SubjectIncidentRegistered,
				Envelope: events.Envelope{ID: x.id, Type: events.TypeIncidentRegistered}, Prepared: x.e})
		}
		return ms
	}
	state := func(useSet bool) (string, []string) {
		f := setup(t)
		for _, k := range []string{"c", "d"} { // reviewed before the batch; d is redelivered in it
			e := map[string]events.IncidentRegistered{"c": c, "d": d}[k]
			if _, err := f.svc.HandleIncidentRegistered(ctx, ids[k], e); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		var handled []string
		h := bus.Typed(events.TypeIncidentRegistered, func(ctx context.Context, m *bus.Message, e events.IncidentRegistered) error {
			mu.Lock()
			handled = append(handled, m.Envelope.ID)
			mu.Unlock()
			return f.svc.onIncidentRegistered(ctx, m, e)
		})
		bh := bus.InOneTx(f.pool, h)
		if useSet {
			bh = bus.InOneTxSet(f.pool, f.svc.openReviews, h)
		}
		for i, err := range bh(ctx, batch()) {
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		var out string
		for _, e := range []events.IncidentRegistered{a, b, c, d} {
			r := f.only(e.IncidentID)
			out += fmt.Sprintf("%s rev %d %q %s required=%v due=%v historical=%v\n", e.IncidentID, r.IncidentRevision,
				r.Title, r.Status, r.Required, r.DueAt, r.Historical)
			for _, p := range r.Participants {
				out += fmt.Sprintf("  %s <%s> %s %s\n", p.Name, p.Email, p.Role, p.AddedBy)
			}
		}
		rows, err := f.pool.Query(ctx, `SELECT ce_type, count(*) FROM outbox GROUP BY ce_type ORDER BY ce_type`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var typ string
			var n int
			if err := rows.Scan(&typ, &n); err != nil {
				t.Fatal(err)
			}
			out += fmt.Sprintf("outbox %s: %d\n", typ, n)
		}
		var processed int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&processed); err != nil {
			t.Fatal(err)
		}
		return out + fmt.Sprintf("processed: %d\n", processed), handled
	}
	one, handledOne := state(false)
	set, handledSet := state(true)
	if one != set {
		t.Errorf("batch state differs from one at a time:\n--- one at a time\n%s--- set-based\n%s", one, set)
	}
	if len(handledOne) != 5 {
		t.Errorf("one at a time: the handler got %d messages, want 5", len(handledOne))
	}
	if want := []string{ids["a2"], ids["c2"], ids["d"]}; !slices.Equal(handledSet, want) {
		t.Errorf("set-based: the handler got %v, want only the later revision, the reviewed incident and the redelivery %v", handledSet, want)
	}
}
