package report_test

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/report"
	reportpg "github.com/afteraction/afteraction/services/report/postgres"
)

// The set-based path (RecordIncidents under bus.InOneTxSet) leaves the read
// model, every column of every incident, as handling the batch one message at
// a time does: new incidents recorded together, an older revision that
// changes nothing, a later revision of an incident of the batch and a
// redelivered event.
func TestRecordIncidentsInABatchMatchesOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.incident.registered.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	base, err := events.Decode[events.IncidentRegistered](events.TypeIncidentRegistered, raw)
	if err != nil {
		t.Fatal(err)
	}
	incident := func(rev int, sub string) events.IncidentRegistered {
		e := base
		e.Revision, e.Incident.Subcategory = rev, sub
		contained := e.Incident.Timestamps.ClosedAt.Add(-time.Duration(rev) * time.Hour)
		e.Incident.Timestamps.ContainedAt = &contained
		return e
	}
	x1, y3 := incident(1, "x1"), incident(3, "y3")
	x1.IncidentID, y3.IncidentID = uuid.NewString(), uuid.NewString()
	x2, y2, z1 := incident(2, "x2"), incident(2, "y2"), incident(1, "z1")
	x2.IncidentID, y2.IncidentID, z1.IncidentID = x1.IncidentID, y3.IncidentID, uuid.NewString()
	ids := map[string]string{}
	for _, k := range []string{"x1", "x2", "y3", "y2", "z1"} {
		ids[k] = uuid.NewString()
	}
	state := func(useSet bool) (string, []string) {
		pool := pgtest.New(t, pgtest.Migration{Schema: reportpg.Schema, FS: reportpg.Migrations()})
		store := report.NewPostgresStore(pool)
		sub := report.Subscriptions(nil, report.Projector{Model: store})[1]
		if err := store.ApplyIncidentRegistered(ctx, ids["y3"], y3); err != nil { // before the batch, redelivered in it
			t.Fatal(err)
		}
		var ms []*bus.Message
		for _, x := range []struct {
			id string
			e  events.IncidentRegistered
		}{{ids["x1"], x1}, {ids["y2"], y2}, {ids["x2"], x2}, {ids["z1"], z1}, {ids["y3"], y3}} {
			ms = append(ms, &bus.Message{Subject: events.SubjectIncidentRegistered,
				Envelope: events.Envelope{ID: x.id, Type: events.TypeIncidentRegistered}, Prepared: x.e})
		}
		var mu sync.Mutex
		var handled []string
		h := func(ctx context.Context, m *bus.Message) error {
			mu.Lock()
			handled = append(handled, m.Envelope.ID)
			mu.Unlock()
			return sub.Handler(ctx, m)
		}
		bh := bus.InOneTx(pool, h)
		if useSet {
			bh = bus.InOneTxSet(pool, sub.Write, h)
		}
		for i, err := range bh(ctx, ms) {
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		var out string
		rows, err := pool.Query(ctx, `SELECT to_jsonb(i)::text FROM incidents i ORDER BY incident_id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatal(err)
			}
			out += row + "\n"
		}
		var processed int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&processed); err != nil {
			t.Fatal(err)
		}
		return out + fmt.Sprintf("processed %d\n", processed), handled
	}
	one, handledOne := state(false)
	set, handledSet := state(true)
	if one != set {
		t.Errorf("batch state differs from one at a time:\n--- one at a time\n%s--- set-based\n%s", one, set)
	}
	if len(handledOne) != 5 {
		t.Errorf("one at a time: the handler got %d messages, want 5", len(handledOne))
	}
	if want := []string{ids["x2"], ids["y3"]}; !slices.Equal(handledSet, want) {
		t.Errorf("set-based: the handler got %v, want only the later messages of an incident of the batch %v", handledSet, want)
	}
}
