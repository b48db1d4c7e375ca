package tracker

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/tracker/bridge"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// githubWebhook returns the documented "issues" fixture for action (marker
// label), issue number n, action act and update time at, with its headers.
func githubWebhook(t *testing.T, file, actionID string, n int, at time.Time, delivery string) (http.Header, []byte) {
	t.Helper()
	raw, err := os.ReadFile("bridge/testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	issue := p["issue"].(map[string]any)
	issue["number"] = n
	issue["updated_at"] = at.UTC().Format(time.RFC3339)
	labels := []any{map[string]any{"name": "category:detection"}}
	if actionID != "" {
		labels = append(labels, map[string]any{"name": bridge.Marker(actionID)})
	}
	issue["labels"] = labels
	body, _ := json.Marshal(p)
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write(body)
	h := http.Header{}
	h.Set("X-GitHub-Event", "issues")
	h.Set("X-GitHub-Delivery", delivery)
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	return h, body
}

func TestGitHubWebhookAppliesStatus(t *testing.T) {
	t.Parallel()
	f, _ := bridged(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	f.drain(f.deliverer(f.svc))
	ctx := context.Background()
	id := ActionID(rc.ReviewID, rc.ActionItems[0].Key)
	t0 := f.clock.Now().Add(-time.Minute)

	h, body := githubWebhook(t, "github_issues_closed.json", id, 1, t0, "d-1")
	res, err := f.svc.ReceiveWebhook(ctx, "gh", h, body)
	if err != nil || res.Outcome != store.OutcomeChanged || res.ActionID != id {
		t.Fatalf("closed: %+v %v", res, err)
	}
	if a, _ := f.action(id); a.Status != events.StatusDone {
		t.Errorf("status %s, want done", a.Status)
	}
	// The change came from GitHub: nothing to send back there.
	if dl := f.delivery(id); dl.State != store.DeliveryDelivered || dl.RemoteUpdatedAt == nil || !dl.RemoteUpdatedAt.Equal(t0) {
		t.Errorf("delivery after the webhook = %+v", dl)
	}
	if res, err := f.svc.ReceiveWebhook(ctx, "gh", h, body); err != nil || res.Outcome != OutcomeDuplicate {
		t.Errorf("redelivery: %+v %v", res, err)
	}

	// Reopened, but GitHub dated it before the close we applied: recorded, not applied.
	h, body = githubWebhook(t, "github_issues_reopened.json", id, 1, t0.Add(-30*time.Second), "d-2")
	if res, err := f.svc.ReceiveWebhook(ctx, "gh", h, body); err != nil || res.Outcome != store.OutcomeStale {
		t.Errorf("older reopen: %+v %v, want stale", res, err)
	}
	a, history := f.action(id)
	if a.Status != events.StatusDone || history[len(history)-1].Outcome != store.OutcomeStale {
		t.Errorf("after the stale update: %s, last history %+v", a.Status, history[len(history)-1])
	}
	// Found by the issue number alone (no marker label), and newer: applied.
	h, body = githubWebhook(t, "github_issues_reopened.json", "", 1, t0.Add(30*time.Second), "d-3")
	if res, err := f.svc.ReceiveWebhook(ctx, "gh", h, body); err != nil || res.Outcome != store.OutcomeChanged {
		t.Errorf("newer reopen: %+v %v", res, err)
	}
	a, history = f.action(id)
	if a.Status != events.StatusInProgress || history[len(history)-2].Status != events.StatusOpen {
		t.Errorf("status %s, want in_progress after reopening (history %+v)", a.Status, history)
	}

	// An issue nobody knows goes to the unmatched list.
	h, body = githubWebhook(t, "github_issues_closed.json", "", 999, t0, "d-4")
	if res, err := f.svc.ReceiveWebhook(ctx, "gh", h, body); err != nil || res.Outcome != OutcomeUnmatched {
		t.Errorf("unknown issue: %+v %v", res, err)
	}
	us, _ := f.svc.Unmatched(ctx, "gh", 10)
	if len(us) != 1 || us[0].Kind != KindUnknownAction || us[0].ExternalKey != "999" || us[0].Subject != "bridge.gh" {
		t.Errorf("unmatched = %+v", us)
	}

	// A forged signature is refused and leaves no trace.
	h, body = githubWebhook(t, "github_issues_closed.json", id, 1, t0, "d-5")
	h.Set("X-Hub-Signature-256", "sha256=00")
	if _, err := f.svc.ReceiveWebhook(ctx, "gh", h, body); !errors.Is(err, bridge.ErrSignature) {
		t.Errorf("forged: %v", err)
	}
	if us, _ := f.svc.Unmatched(ctx, "", 10); len(us) != 1 {
		t.Errorf("%d unmatched after a forged webhook, want still 1", len(us))
	}
	if _, err := f.svc.ReceiveWebhook(ctx, "nope", h, body); !errors.Is(err, ErrUnknownBridge) {
		t.Errorf("unknown bridge: %v", err)
	}
}

// TestFutureChangedAtDoesNotFreezeStatus: one update dated in the future
// (a sender's skewed clock) must not make every later update stale.
func TestFutureChangedAtDoesNotFreezeStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	id := ActionID(rc.ReviewID, rc.ActionItems[0].Key)
	ctx := context.Background()
	future := f.clock.Now().AddDate(3, 0, 0)
	if _, err := f.svc.ApplyStatus(ctx, status(id, events.StatusInProgress, future, "skewed")); err != nil {
		t.Fatal(err)
	}
	a, _ := f.action(id)
	if !a.StatusChangedAt.Equal(f.clock.Now()) {
		t.Errorf("status changed at %s, want now (%s), not the sender's future time", a.StatusChangedAt, f.clock.Now())
	}
	f.clock.Advance(time.Hour)
	res, err := f.svc.ApplyStatus(ctx, status(id, events.StatusDone, f.clock.Now(), "finished"))
	if err != nil || res.Outcome != store.OutcomeChanged {
		t.Fatalf("later update: %+v %v, want changed", res, err)
	}
	if a, _ := f.action(id); a.Status != events.StatusDone {
		t.Errorf("status %s, want done", a.Status)
	}
}

func TestWeeklyDigest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	ctx := context.Background()
	done := ActionID(rc.ReviewID, rc.ActionItems[3].Key)
	// Tuesday 2026-04-28: items due 2026-04-24 and earlier are overdue; due
	// by 2026-05-05 is "due soon"; one was done on Monday.
	f.clock.Set(time.Date(2026, 4, 27, 10, 0, 0, 0, time.UTC))
	if _, err := f.svc.ApplyStatus(ctx, status(done, events.StatusDone, f.clock.Now(), "")); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(time.Date(2026, 4, 28, 6, 0, 0, 0, time.UTC))
	if n, err := f.svc.SendDigests(ctx, time.Wednesday); err != nil || n != 0 {
		t.Fatalf("before the digest day: %d, %v", n, err)
	}
	n, err := f.svc.SendDigests(ctx, time.Monday)
	if err != nil || n == 0 {
		t.Fatalf("digests: %d, %v", n, err)
	}
	if again, err := f.svc.SendDigests(ctx, time.Monday); err != nil || again != 0 {
		t.Errorf("second run this week sent %d (%v), want 0", again, err)
	}
	var digests []events.ActionDigest
	for _, raw := range f.outbox(events.TypeActionDigest) {
		var d events.ActionDigest
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if len(digests) != n {
		t.Fatalf("%d digest events for %d sent", len(digests), n)
	}
	var facilitator *events.ActionDigest
	items := 0
	for i, d := range digests {
		if d.Week != "2026-W18" || d.Today != "2026-04-28" {
			t.Errorf("digest %+v: wrong week", d)
		}
		if d.Role == events.DigestRoleFacilitator {
			facilitator = &digests[i]
			continue
		}
		items += d.OverdueCount + d.DueSoonCount + d.DoneCount
		for _, it := range d.Overdue {
			if it.Owner == nil || !strings.EqualFold(it.Owner.Email, d.Recipient.Email) || it.DaysOverdue < 1 {
				t.Errorf("owner digest of %s lists %+v", d.Recipient.Email, it)
			}
		}
	}
	if facilitator == nil || facilitator.Recipient.Name != rc.Facilitator.Name {
		t.Fatalf("no facilitator digest for %s in %+v", rc.Facilitator.Name, digests)
	}
	if facilitator.DoneCount != 1 || facilitator.DoneThisWeek[0].ActionID != done {
		t.Errorf("facilitator digest done = %+v", facilitator.DoneThisWeek)
	}
	total := facilitator.OverdueCount + facilitator.DueSoonCount + facilitator.DoneCount
	if total == 0 || items > total {
		t.Errorf("facilitator sees %d items, owners %d", total, items)
	}
}
