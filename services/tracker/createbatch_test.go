package tracker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/tracker/bridge"
)

// The set-based path (createActions under bus.InOneTxSet) leaves the tracker
// in the same state as handling the batch one message at a time: two reviews'
// actions created together (with their bridge intents), an amendment of one of
// them in the same batch and a redelivered review handled by the handler.
func TestCreateActionsInABatchMatchesOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r1, r2, r3 := exampleReview(t), exampleReview(t), exampleReview(t)
	for _, rc := range []*events.ReviewCompleted{&r1, &r2, &r3} {
		rc.ReviewID, rc.IncidentID = uuid.NewString(), uuid.NewString()
	}
	amended := r1
	amended.ActionItems = append(slices.Clone(r1.ActionItems), events.ActionItem{Key: "AI-NEW", Title: "Added by the amendment",
		Category: r1.ActionItems[0].Category, Priority: r1.ActionItems[0].Priority})
	ids := map[string]string{"r1": uuid.NewString(), "r2": uuid.NewString(), "amended": uuid.NewString(), "r3": uuid.NewString()}
	state := func(useSet bool) (string, []string) {
		f := newFixture(t)
		f.svc.SetBridges(NewBridges(Routes{Default: "gh"}, 0, bridge.NewGitHub(bridge.GitHubConfig{
			Name: "gh", APIURL: "http://127.0.0.1:1", Repo: "acme/ops", Token: "t"})))
		f.create(r3, ids["r3"]) // handled before the batch, redelivered in it
		var ms []*bus.Message
		for _, x := range []struct {
			id string
			rc events.ReviewCompleted
		}{{ids["r1"], r1}, {ids["r2"], r2}, {ids["amended"], amended}, {ids["r3"], r3}} {
			ms = append(ms, &bus.Message{Subject: events.SubjectReviewCompleted,
				Envelope: events.Envelope{ID: x.id, Type: events.TypeReviewCompleted}, Prepared: x.rc})
		}
		var mu sync.Mutex
		var handled []string
		h := bus.Typed(events.TypeReviewCompleted, func(ctx context.Context, m *bus.Message, rc events.ReviewCompleted) error {
			mu.Lock()
			handled = append(handled, m.Envelope.ID)
			mu.Unlock()
			return f.svc.onReviewCompleted(ctx, m, rc)
		})
		bh := bus.InOneTx(f.pool, h)
		if useSet {
			bh = bus.InOneTxSet(f.pool, f.svc.createActions, h)
		}
		for i, err := range bh(ctx, ms) {
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		var out string
		rows, err := f.pool.Query(ctx, `SELECT a.action_id::text, a.key, a.title, a.status, coalesce(a.due_date::text, ''),
	a.owner_email, (SELECT string_agg(h.outcome || '/' || h.event_id, ',' ORDER BY h.id) FROM action_history h WHERE h.action_id = a.action_id),
	(SELECT string_agg(d.bridge || '/' || d.state || '/' || d.version, ',') FROM bridge_deliveries d WHERE d.action_id = a.action_id)
FROM actions a ORDER BY a.action_id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, key, title, st, due, owner, history, deliveries string
			if err := rows.Scan(&id, &key, &title, &st, &due, &owner, &history, &deliveries); err != nil {
				t.Fatal(err)
			}
			out += fmt.Sprintf("%s %s %q %s due %s owner %s history %s deliveries %s\n", id, key, title, st, due, owner, history, deliveries)
		}
		var processed, created int
		if err := f.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM processed_events),
	(SELECT count(*) FROM outbox WHERE ce_type = $1)`, events.TypeActionCreated).Scan(&processed, &created); err != nil {
			t.Fatal(err)
		}
		return out + fmt.Sprintf("processed %d, action.created %d\n", processed, created), handled
	}
	one, handledOne := state(false)
	set, handledSet := state(true)
	if one != set {
		t.Errorf("batch state differs from one at a time:\n--- one at a time\n%s--- set-based\n%s", one, set)
	}
	if len(handledOne) != 4 {
		t.Errorf("one at a time: the handler got %d messages, want 4", len(handledOne))
	}
	if want := []string{ids["amended"]}; !slices.Equal(handledSet, want) {
		t.Errorf("set-based: the handler got %v, want only the amendment %v", handledSet, want)
	}
}
