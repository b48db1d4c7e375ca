package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/schemas"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

type fixture struct {
	t     *testing.T
	pool  *pgxpool.Pool
	svc   *Service
	clock *servicetest.Clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.New(t, pgtest.Migration{Schema: store.Schema, FS: store.Migrations()})
	c := servicetest.NewClock(time.Date(2026, 3, 21, 9, 0, 0, 0, time.UTC))
	return &fixture{t: t, pool: pool, svc: NewService(store.New(pool), zaptest.NewLogger(t), c.Now, nil), clock: c}
}

// exampleReview is the schema's example of review.completed (5 action items).
func exampleReview(t *testing.T) events.ReviewCompleted {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.review.completed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := events.Decode[events.ReviewCompleted](events.TypeReviewCompleted, b)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// outbox returns the data of every outbox event of type typ, oldest first, each checked against its schema.
func (f *fixture) outbox(typ string) []json.RawMessage {
	f.t.Helper()
	return servicetest.Outbox(f.t, f.pool, typ)
}

func (f *fixture) create(rc events.ReviewCompleted, eventID string) int {
	f.t.Helper()
	n, err := f.svc.CreateFromReview(context.Background(), eventID, rc)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) action(id string) (Action, []HistoryEntry) {
	f.t.Helper()
	a, h, err := f.svc.Action(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return a, h
}

func TestCreateFromReview(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := exampleReview(t)
	if n := f.create(rc, "ev-1"); n != len(rc.ActionItems) {
		t.Fatalf("created %d actions, want %d", n, len(rc.ActionItems))
	}
	// Redelivery (same event id) and a republished copy (new id) create nothing.
	if n := f.create(rc, "ev-1"); n != 0 {
		t.Errorf("redelivery created %d actions", n)
	}
	if n := f.create(rc, "ev-2"); n != 0 {
		t.Errorf("republished review created %d actions", n)
	}
	actions, err := f.svc.Actions(context.Background(), Filter{IncidentID: rc.IncidentID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(actions) != len(rc.ActionItems) {
		t.Fatalf("listed %d actions, want %d", len(actions), len(rc.ActionItems))
	}
	for i, a := range actions {
		item := rc.ActionItems[i]
		due := item.DueDate
		if due == "" {
			// Undated items are dated by the default policy from the completion day.
			due = DefaultDuePolicy().DueDate(item.Priority, rc.CompletedAt.UTC().Format(time.DateOnly))
		}
		if a.Key != item.Key || a.Title != item.Title || a.Status != events.StatusOpen || a.DueDate != due || due == "" ||
			a.Priority != item.Priority || a.IncidentTitle != rc.Incident.Title {
			t.Errorf("action %d = %+v, want item %+v open with incident title", i, a, item)
		}
		if want := uuid.NewSHA1(actionNamespace, []byte(rc.ReviewID+"/"+item.Key)).String(); a.ActionID != want {
			t.Errorf("action id %s, want UUIDv5 %s", a.ActionID, want)
		}
		if (item.Owner == nil) != (a.Owner == nil) || (item.Owner != nil && *item.Owner != *a.Owner) {
			t.Errorf("owner %v, want %v", a.Owner, item.Owner)
		}
	}
	created := f.outbox(events.TypeActionCreated)
	if len(created) != len(rc.ActionItems) {
		t.Fatalf("%d action.created events in the outbox, want %d", len(created), len(rc.ActionItems))
	}
	var first events.ActionCreated
	if err := json.Unmarshal(created[0], &first); err != nil {
		t.Fatal(err)
	}
	if first.ActionID != actions[0].ActionID || first.ReviewID != rc.ReviewID || first.Status != events.StatusOpen {
		t.Errorf("first action.created = %+v", first)
	}

	// A review finalised again with one more item creates just that one.
	rc.ActionItems = append(rc.ActionItems, events.ActionItem{Key: "new-item", Title: "Added later", Category: events.CategoryTooling})
	if n := f.create(rc, "ev-3"); n != 1 {
		t.Errorf("re-finalised review created %d actions, want 1", n)
	}
}

func status(actionID string, st events.Status, at time.Time, note string) StatusUpdate {
	return StatusUpdate{EventID: uuid.NewString(), ActionID: actionID, Tracker: "jira", Status: st, ChangedAt: at, Note: note, ChangedBy: "zoe"}
}

func TestStatusTransitions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	id := ActionID(rc.ReviewID, rc.ActionItems[0].Key)
	t0 := time.Date(2026, 3, 22, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		to      events.Status
		note    string
		outcome Outcome
		wantErr error
		want    events.Status
	}{
		{events.StatusInProgress, "started", store.OutcomeChanged, nil, events.StatusInProgress},
		{events.StatusInProgress, "halfway", store.OutcomeNoted, nil, events.StatusInProgress},
		{events.StatusInProgress, "", store.OutcomeUnchanged, nil, events.StatusInProgress},
		{events.StatusDone, "", store.OutcomeChanged, nil, events.StatusDone},
		{events.StatusInProgress, "", "", ErrInvalidTransition, events.StatusDone},
		{events.StatusOpen, "regressed", store.OutcomeChanged, nil, events.StatusOpen},
		{events.StatusWontDo, "", store.OutcomeChanged, nil, events.StatusWontDo},
		{events.StatusDone, "", "", ErrInvalidTransition, events.StatusWontDo},
		{events.StatusOpen, "", store.OutcomeChanged, nil, events.StatusOpen},
	}
	for i, s := range steps {
		res, err := f.svc.ApplyStatus(context.Background(), status(id, s.to, t0.Add(time.Duration(i)*time.Hour), s.note))
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("step %d (%s): error %v, want %v", i, s.to, err, s.wantErr)
		}
		if err == nil && res.Outcome != s.outcome {
			t.Errorf("step %d (%s): outcome %s, want %s", i, s.to, res.Outcome, s.outcome)
		}
		if a, _ := f.action(id); a.Status != s.want {
			t.Errorf("step %d (%s): status %s, want %s", i, s.to, a.Status, s.want)
		}
	}
	_, history := f.action(id)
	// created + every accepted step (the two refused ones leave no trace here).
	if want := 1 + len(steps) - 2; len(history) != want {
		t.Fatalf("history has %d entries, want %d: %+v", len(history), want, history)
	}
	if h := history[2]; h.Outcome != store.OutcomeNoted || h.Note != "halfway" || h.ChangedBy != "zoe" || h.Tracker != "jira" {
		t.Errorf("history[2] = %+v", h)
	}
	// action.updated for changed and noted updates, not for unchanged ones.
	updated := f.outbox(events.TypeActionUpdated)
	if want := len(steps) - 2 - 1; len(updated) != want {
		t.Errorf("%d action.updated events, want %d", len(updated), want)
	}
	var last events.ActionUpdated
	if err := json.Unmarshal(updated[len(updated)-1], &last); err != nil {
		t.Fatal(err)
	}
	if last.Status != events.StatusOpen || last.PreviousStatus != events.StatusWontDo || last.IncidentID != rc.IncidentID {
		t.Errorf("last action.updated = %+v", last)
	}
}

func TestStaleUpdateIsRecordedButKeepsStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	id := ActionID(rc.ReviewID, rc.ActionItems[1].Key)
	t1 := time.Date(2026, 4, 2, 12, 0, 0, 0, time.UTC)
	f.clock.Set(t1.Add(time.Hour))
	if _, err := f.svc.ApplyStatus(context.Background(), status(id, events.StatusDone, t1, "shipped")); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.ApplyStatus(context.Background(), status(id, events.StatusInProgress, t1.Add(-time.Hour), "late"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != store.OutcomeStale {
		t.Errorf("outcome %s, want stale", res.Outcome)
	}
	a, history := f.action(id)
	if a.Status != events.StatusDone || !a.StatusChangedAt.Equal(t1) {
		t.Errorf("status %s since %s, want done since %s", a.Status, a.StatusChangedAt, t1)
	}
	last := history[len(history)-1]
	if last.Outcome != store.OutcomeStale || last.Status != events.StatusInProgress || last.Note != "late" {
		t.Errorf("last history entry = %+v, want the stale update", last)
	}
	if n := len(f.outbox(events.TypeActionUpdated)); n != 1 {
		t.Errorf("%d action.updated events, want 1 (none for the stale update)", n)
	}
}

func TestReceiveStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	id := ActionID(rc.ReviewID, rc.ActionItems[0].Key)
	other := ActionID(rc.ReviewID, rc.ActionItems[1].Key)
	ctx := context.Background()
	body := func(v map[string]any) []byte {
		v["changed_at"] = "2026-04-01T10:00:00Z"
		b, _ := json.Marshal(v)
		return b
	}
	receive := func(eventID, subject, ceType string, data []byte) error {
		return f.svc.ReceiveStatus(ctx, StatusMessage{EventID: eventID, Subject: subject, Type: ceType, Data: data})
	}

	// Plain JSON (no ce-type) carrying both ids links the key.
	if err := receive("m1", "actions.status.jira", "", body(map[string]any{
		"action_id": id, "external_key": "SEC-1", "tracker": "jira", "status": "in_progress",
	})); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.action(id); a.Tracker != "jira" || a.ExternalKey != "SEC-1" || a.Status != events.StatusInProgress {
		t.Fatalf("after linking: %+v", a)
	}
	// Later updates name the action by its external key alone.
	if err := receive("m2", "actions.status.jira", events.TypeActionStatus, body(map[string]any{
		"external_key": "SEC-1", "tracker": "jira", "status": "done", "note": "deployed",
	})); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.action(id); a.Status != events.StatusDone {
		t.Errorf("status %s, want done", a.Status)
	}

	rejected := []struct {
		name, eventID, subject, ceType string
		data                           []byte
		kind                           string
	}{
		{"unknown external key", "m3", "actions.status.jira", "",
			body(map[string]any{"external_key": "SEC-999", "tracker": "jira", "status": "done"}), KindUnknownAction},
		{"unknown action id", "m4", "actions.status.jira", "",
			body(map[string]any{"action_id": uuid.NewString(), "tracker": "jira", "status": "done"}), KindUnknownAction},
		{"same key in another tracker", "m5", "actions.status.github", "",
			body(map[string]any{"external_key": "SEC-1", "tracker": "github", "status": "done"}), KindUnknownAction},
		{"key linked to another action", "m6", "actions.status.jira", "",
			body(map[string]any{"action_id": other, "external_key": "SEC-1", "tracker": "jira", "status": "done"}), KindLinkConflict},
		{"tracker differs from subject", "m7", "actions.status.github", "",
			body(map[string]any{"action_id": id, "tracker": "jira", "status": "done"}), KindTrackerMismatch},
		{"schema violation", "m8", "actions.status.jira", "",
			body(map[string]any{"action_id": id, "tracker": "jira", "status": "finished"}), KindInvalid},
		{"not JSON", "m9", "actions.status.jira", "", []byte("status=done"), KindInvalid},
		{"wrong ce-type", "m10", "actions.status.jira", events.TypeActionUpdated,
			body(map[string]any{"action_id": id, "tracker": "jira", "status": "done"}), KindInvalid},
		{"forbidden transition", "m11", "actions.status.jira", "",
			body(map[string]any{"action_id": id, "tracker": "jira", "status": "in_progress"}), KindInvalidTransition},
	}
	for _, r := range rejected {
		// Twice: a redelivery is refused again and recorded once.
		for range 2 {
			err := receive(r.eventID, r.subject, r.ceType, r.data)
			var rej *RejectedError
			if !errors.As(err, &rej) || rej.Kind != r.kind {
				t.Errorf("%s: error %v, want a rejection of kind %s", r.name, err, r.kind)
			}
		}
	}
	unmatched, err := f.svc.Unmatched(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(unmatched) != len(rejected) {
		t.Fatalf("%d unmatched rows, want %d", len(unmatched), len(rejected))
	}
	byEvent := map[string]Unmatched{}
	for _, u := range unmatched {
		byEvent[u.EventID] = u
	}
	for _, r := range rejected {
		u := byEvent[r.eventID]
		if u.Kind != r.kind || u.Subject != r.subject || string(u.Payload) != string(r.data) || u.Reason == "" {
			t.Errorf("%s: recorded %+v", r.name, u)
		}
	}
	if u := byEvent["m3"]; u.ExternalKey != "SEC-999" || u.Tracker != "jira" {
		t.Errorf("unknown key recorded as %+v", u)
	}
	// Refused updates changed nothing.
	if a, _ := f.action(other); a.Status != events.StatusOpen || a.ExternalKey != "" {
		t.Errorf("other action changed: %+v", a)
	}
}

func TestOverdueOncePerDay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := exampleReview(t) // due 2026-03-31, 04-30, 05-15, 06-30 and one without a date
	f.create(rc, "ev-1")
	ctx := context.Background()
	chase := func(want int) {
		t.Helper()
		n, err := f.svc.ChaseOverdue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("on %s: emitted %d overdue events, want %d", f.clock.Now().Format(time.DateOnly), n, want)
		}
	}
	f.clock.Set(time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC))
	chase(0) // due today is not overdue yet
	f.clock.Set(time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC))
	chase(2)
	f.clock.Set(time.Date(2026, 5, 1, 20, 0, 0, 0, time.UTC))
	chase(0) // same day: already sent
	// Finishing one takes it off the list.
	done := ActionID(rc.ReviewID, rc.ActionItems[0].Key)
	if _, err := f.svc.ApplyStatus(ctx, status(done, events.StatusDone, f.clock.Now(), "")); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(time.Date(2026, 5, 2, 8, 0, 0, 0, time.UTC))
	chase(1)

	overdue := f.outbox(events.TypeActionOverdue)
	if len(overdue) != 3 {
		t.Fatalf("%d overdue events in the outbox, want 3", len(overdue))
	}
	var last events.ActionOverdue
	if err := json.Unmarshal(overdue[2], &last); err != nil {
		t.Fatal(err)
	}
	if want := ActionID(rc.ReviewID, rc.ActionItems[1].Key); last.ActionID != want || last.DaysOverdue != 2 || last.DueDate != "2026-04-30" {
		t.Errorf("last overdue = %+v, want %s 2 days past 2026-04-30", last, want)
	}
	listed, err := f.svc.Actions(ctx, Filter{OverdueOn: f.svc.Today(), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 {
		t.Errorf("overdue filter listed %d actions, want 1", len(listed))
	}
}

func TestOverdueConcurrentReplicas(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	// Past every due date: the undated low-priority item is due 180 days after the completion (2026-09-16).
	f.clock.Set(time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC))
	// Two services on the same database stand in for two replicas.
	other := NewService(store.New(f.pool), zaptest.NewLogger(t), f.clock.Now, nil)
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, s := range []*Service{f.svc, other} {
		wg.Go(func() {
			n, err := s.ChaseOverdue(context.Background())
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	// Four dated items and the fifth, dated by the due policy, are all past due.
	if counts[0]+counts[1] != 5 {
		t.Errorf("replicas emitted %v, want 5 in total", counts)
	}
	if n := len(f.outbox(events.TypeActionOverdue)); n != 5 {
		t.Errorf("%d overdue events in the outbox, want 5", n)
	}
}

func TestCanTransition(t *testing.T) {
	t.Parallel()
	all := []events.Status{events.StatusOpen, events.StatusInProgress, events.StatusDone, events.StatusWontDo}
	allowed := map[string]bool{
		"open>in_progress": true, "open>done": true, "open>wont_do": true,
		"in_progress>open": true, "in_progress>done": true, "in_progress>wont_do": true,
		"done>open": true, "done>wont_do": true,
		"wont_do>open": true,
	}
	for _, from := range all {
		for _, to := range all {
			if from == to {
				continue
			}
			key := fmt.Sprintf("%s>%s", from, to)
			if got := CanTransition(from, to); got != allowed[key] {
				t.Errorf("CanTransition(%s) = %v, want %v", key, got, allowed[key])
			}
		}
	}
}

func TestOverdueInTimeZone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		zone      string
		now       time.Time
		wantToday string
		wantDays  int // days_overdue of the action due 2026-03-31; 0: not overdue
	}{
		{"UTC", time.Date(2026, 3, 31, 23, 0, 0, 0, time.UTC), "2026-03-31", 0},
		{"UTC", time.Date(2026, 4, 1, 5, 0, 0, 0, time.UTC), "2026-04-01", 1},
		// 01:00 on 1 April in Auckland: overdue there, not yet in UTC.
		{"Pacific/Auckland", time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC), "2026-04-01", 1},
		{"Pacific/Auckland", time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC), "2026-04-02", 2},
		// 22:00 on 31 March in Los Angeles: due today there, though 1 April in UTC.
		{"America/Los_Angeles", time.Date(2026, 4, 1, 5, 0, 0, 0, time.UTC), "2026-03-31", 0},
	}
	for _, tt := range tests {
		t.Run(tt.zone+" at "+tt.now.Format(time.RFC3339), func(t *testing.T) {
			t.Parallel()
			zone, err := time.LoadLocation(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t)
			f.svc = NewService(store.New(f.pool), zaptest.NewLogger(t), f.clock.Now, zone)
			rc := exampleReview(t)
			f.create(rc, "ev-1")
			f.clock.Set(tt.now)
			if got := f.svc.Today(); got != tt.wantToday {
				t.Errorf("Today = %s, want %s", got, tt.wantToday)
			}
			n, err := f.svc.ChaseOverdue(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			wantN := 0
			if tt.wantDays > 0 {
				wantN = 1
			}
			if n != wantN {
				t.Fatalf("emitted %d overdue events, want %d", n, wantN)
			}
			listed, err := f.svc.Actions(context.Background(), Filter{OverdueOn: f.svc.Today(), Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if len(listed) != wantN {
				t.Errorf("overdue filter listed %d actions, want %d", len(listed), wantN)
			}
			if wantN == 0 {
				return
			}
			var e events.ActionOverdue
			if err := json.Unmarshal(f.outbox(events.TypeActionOverdue)[0], &e); err != nil {
				t.Fatal(err)
			}
			if e.DueDate != "2026-03-31" || e.DaysOverdue != tt.wantDays {
				t.Errorf("overdue event = %+v, want due 2026-03-31 and %d days overdue", e, tt.wantDays)
			}
		})
	}
}
