package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/tracker/bridge"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// fakeGitHub answers the Issues API as GitHub documents it (create, list by
// label, update), keeping the issues in memory; fail, when set, answers
// instead.
type fakeGitHub struct {
	mu       sync.Mutex
	issues   []map[string]any
	requests int
	fail     func(r *http.Request) (int, http.Header, string)
}

func (g *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.requests++
	if g.fail != nil {
		if code, h, body := g.fail(r); code != 0 {
			for k, v := range h {
				w.Header()[k] = v
			}
			w.WriteHeader(code)
			io.WriteString(w, body)
			return
		}
	}
	var req map[string]any
	_ = json.NewDecoder(r.Body).Decode(&req)
	if ls, ok := req["labels"].([]any); ok { // GitHub takes names and answers label objects
		objs := []any{}
		for _, l := range ls {
			objs = append(objs, map[string]any{"name": l})
		}
		req["labels"] = objs
	}
	base := "/repos/acme/security/issues"
	switch {
	case r.Method == http.MethodPost && r.URL.Path == base:
		n := len(g.issues) + 1
		issue := map[string]any{"number": n, "html_url": fmt.Sprintf("https://github.com/acme/security/issues/%d", n),
			"title": req["title"], "body": req["body"], "labels": req["labels"], "state": "open", "state_reason": nil}
		g.issues = append(g.issues, issue)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(issue)
	case r.Method == http.MethodGet && r.URL.Path == base:
		want := r.URL.Query().Get("labels")
		out := []any{}
		for _, is := range g.issues {
			for _, l := range is["labels"].([]any) {
				if l.(map[string]any)["name"] == want {
					out = append(out, is)
				}
			}
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, base+"/"):
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, base+"/"))
		if n < 1 || n > len(g.issues) {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/issues/issues#update-an-issue","status":"404"}`)
			return
		}
		for k, v := range req {
			g.issues[n-1][k] = v
		}
		json.NewEncoder(w).Encode(g.issues[n-1])
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not Found"}`)
	}
}

// withMarker counts the issues carrying the marker of actionID.
func (g *fakeGitHub) withMarker(actionID string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, is := range g.issues {
		for _, l := range is["labels"].([]any) {
			if l.(map[string]any)["name"] == bridge.Marker(actionID) {
				n++
			}
		}
	}
	return n
}

func (g *fakeGitHub) count() (issues, requests int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.issues), g.requests
}

const hookSecret = "webhook-secret"

// bridged returns a fixture whose actions all go to a GitHub bridge "gh"
// answered by a fake GitHub.
func bridged(t *testing.T) (*fixture, *fakeGitHub) {
	t.Helper()
	f := newFixture(t)
	gh := &fakeGitHub{}
	srv := httptest.NewServer(gh)
	t.Cleanup(srv.Close)
	f.svc.SetBridges(NewBridges(Routes{Default: "gh"}, 0, bridge.NewGitHub(bridge.GitHubConfig{
		Name: "gh", APIURL: srv.URL, Repo: "acme/security", Token: "t", WebhookSecret: []byte(hookSecret),
		Assignees: map[string]string{"zoe.agren@nordlicht-logistik.example": "zagren"}})))
	return f, gh
}

func (f *fixture) deliverer(s *Service) *deliverer {
	b, _ := s.bridges.Get("gh")
	return &deliverer{svc: s, b: b, opts: DeliveryOptions{}.withDefaults()}
}

// drain delivers until nothing is due.
func (f *fixture) drain(d *deliverer) int {
	f.t.Helper()
	total := 0
	for i := 0; i < 100; i++ {
		n, err := d.once(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total++
	}
	f.t.Fatal("deliveries never ran out")
	return total
}

func (f *fixture) delivery(actionID string) Delivery {
	f.t.Helper()
	ds, err := f.svc.Deliveries(context.Background(), actionID, "", 10)
	if err != nil || len(ds) != 1 {
		f.t.Fatalf("deliveries of %s: %v %v", actionID, ds, err)
	}
	return ds[0]
}

func TestDeliveryCreatesAndUpdates(t *testing.T) {
	t.Parallel()
	f, gh := bridged(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	d := f.deliverer(f.svc)
	if n := f.drain(d); n != len(rc.ActionItems) {
		t.Fatalf("%d deliveries, want %d", n, len(rc.ActionItems))
	}
	if issues, _ := gh.count(); issues != len(rc.ActionItems) {
		t.Fatalf("%d remote issues, want %d", issues, len(rc.ActionItems))
	}
	id := ActionID(rc.ReviewID, rc.ActionItems[0].Key)
	dl := f.delivery(id)
	if dl.State != store.DeliveryDelivered || dl.ExternalID != "1" || dl.DeliveredVersion != 1 {
		t.Errorf("delivery = %+v", dl)
	}
	a, _ := f.action(id)
	if a.Tracker != "gh" || a.ExternalKey != "1" {
		t.Errorf("action not linked to its issue: %+v", a)
	}

	// A change made here goes out as an update that closes the issue.
	if _, err := f.svc.ApplyStatus(context.Background(), status(id, events.StatusDone, f.clock.Now(), "")); err != nil {
		t.Fatal(err)
	}
	if n := f.drain(d); n != 1 {
		t.Fatalf("%d deliveries after the change, want 1", n)
	}
	gh.mu.Lock()
	state, reason := gh.issues[0]["state"], gh.issues[0]["state_reason"]
	gh.mu.Unlock()
	if state != "closed" || reason != "completed" {
		t.Errorf("issue 1 is %v/%v, want closed/completed", state, reason)
	}
	if dl := f.delivery(id); dl.State != store.DeliveryDelivered || dl.DeliveredVersion != 2 {
		t.Errorf("delivery after update = %+v", dl)
	}
}

// TestCrashBetweenRemoteAnswerAndCommit kills the delivery after GitHub
// answered 201 and before the outcome is committed, restarts it (a new
// service on the same database, after the lease), and counts exactly one
// remote issue per action.
func TestCrashBetweenRemoteAnswerAndCommit(t *testing.T) {
	t.Parallel()
	f, gh := bridged(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	first := ActionID(rc.ReviewID, rc.ActionItems[0].Key)

	crashing := f.deliverer(f.svc)
	f.svc.afterRemote = func(Delivery) error { return errCrashed }
	if _, err := crashing.once(context.Background()); !errors.Is(err, errCrashed) {
		t.Fatalf("first delivery: %v, want the simulated crash", err)
	}
	if issues, _ := gh.count(); issues != 1 {
		t.Fatalf("%d remote issues after the crash, want 1", issues)
	}
	if dl := f.delivery(first); dl.ExternalID != "" || dl.State != store.DeliveryPending || dl.CreateCalls != 1 {
		t.Fatalf("after the crash the delivery is %+v, want pending without an external id", dl)
	}

	// The restarted service waits for the crashed one's lease, then searches
	// for the marker before creating again.
	restarted := NewService(store.New(f.pool), zaptest.NewLogger(t), f.clock.Now, nil)
	restarted.SetBridges(f.svc.bridges)
	f.clock.Advance(DeliveryOptions{}.withDefaults().Lease + time.Second)
	if n := f.drain(f.deliverer(restarted)); n != len(rc.ActionItems) {
		t.Fatalf("%d deliveries after the restart, want %d", n, len(rc.ActionItems))
	}
	for _, item := range rc.ActionItems {
		id := ActionID(rc.ReviewID, item.Key)
		if n := gh.withMarker(id); n != 1 {
			t.Errorf("action %s has %d remote issues, want exactly 1", item.Key, n)
		}
	}
	if issues, _ := gh.count(); issues != len(rc.ActionItems) {
		t.Errorf("%d remote issues in all, want %d", issues, len(rc.ActionItems))
	}
	if dl := f.delivery(first); dl.ExternalID != "1" || dl.State != store.DeliveryDelivered {
		t.Errorf("adopted delivery = %+v, want issue 1 delivered", dl)
	}
}

func TestDeliveryRateLimitAndOutage(t *testing.T) {
	t.Parallel()
	f, gh := bridged(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	d := f.deliverer(f.svc)
	ctx := context.Background()

	// 429 with Retry-After: the delivery waits at least that long, and so
	// does the whole bridge.
	gh.fail = func(*http.Request) (int, http.Header, string) {
		return http.StatusTooManyRequests, http.Header{"Retry-After": {"120"}}, `{"message":"API rate limit exceeded","status":"429"}`
	}
	if n, err := d.once(ctx); n != 1 || err != nil {
		t.Fatalf("once = %d, %v", n, err)
	}
	ds, _ := f.svc.Deliveries(ctx, "", store.DeliveryPending, 10)
	var limited Delivery
	for _, dl := range ds {
		if dl.LastStatus == http.StatusTooManyRequests {
			limited = dl
		}
	}
	if wait := limited.NextAttemptAt.Sub(f.clock.Now()); wait < 120*time.Second || !strings.Contains(limited.LastError, "rate limit") {
		t.Errorf("rate-limited delivery waits %s with error %q, want at least 120s", wait, limited.LastError)
	}
	if !d.paused() {
		t.Error("bridge not paused after 429")
	}

	// An outage (500s) costs one probe per back-off period, not one request
	// per pending delivery; its end brings deliveries one at a time.
	gh.fail = func(*http.Request) (int, http.Header, string) { return 500, nil, `{"message":"Server Error"}` }
	_, before := gh.count()
	probes := 0
	for i := 0; i < 6; i++ {
		f.clock.Advance(3 * time.Minute)
		if !d.paused() {
			if _, err := d.once(ctx); err != nil {
				t.Fatal(err)
			}
			probes++
		}
		for j := 0; j < 3 && !d.paused(); j++ { // a storm would send more here
			if _, err := d.once(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, after := gh.count(); after-before != probes || probes == 0 || probes > 6 {
		t.Errorf("%d requests during the outage for %d probes", after-before, probes)
	}
	gh.fail = nil
	f.clock.Advance(time.Hour)
	if n := f.drain(d); n != len(rc.ActionItems) {
		t.Errorf("%d deliveries after the outage, want %d", n, len(rc.ActionItems))
	}
	if issues, _ := gh.count(); issues != len(rc.ActionItems) {
		t.Errorf("%d remote issues, want %d", issues, len(rc.ActionItems))
	}
}

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 12; n++ {
		d := backoff(time.Second, time.Minute, n)
		full := min(time.Second<<(n-1), time.Minute)
		if d < full/2 || d > full {
			t.Errorf("backoff(%d) = %s, want within [%s, %s]", n, d, full/2, full)
		}
	}
}

func TestDeliveryPermanentFailureIsListed(t *testing.T) {
	t.Parallel()
	f, gh := bridged(t)
	rc := exampleReview(t)
	f.create(rc, "ev-1")
	gh.fail = func(*http.Request) (int, http.Header, string) {
		return http.StatusUnprocessableEntity, nil,
			`{"message":"Validation Failed","errors":[{"value":"zagren","resource":"Issue","field":"assignees","code":"invalid"}],"documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"422"}`
	}
	d := f.deliverer(f.svc)
	if n, err := d.once(context.Background()); n != 1 || err != nil {
		t.Fatalf("once = %d, %v", n, err)
	}
	fs, err := f.svc.Failures(context.Background(), "gh", 10)
	if err != nil || len(fs) != 1 {
		t.Fatalf("failures = %+v, %v", fs, err)
	}
	if fs[0].HTTPStatus != 422 || !strings.Contains(fs[0].Message, "Issue assignees: invalid") || fs[0].Intent != "create" {
		t.Errorf("failure = %+v", fs[0])
	}
	if dl := f.delivery(fs[0].ActionID); dl.State != store.DeliveryFailed {
		t.Errorf("delivery = %+v, want failed", dl)
	}
	var subject string
	var data []byte
	err = f.pool.QueryRow(context.Background(), `SELECT subject, data FROM tracker.outbox WHERE ce_type = $1`, TypeDeliveryFailed).Scan(&subject, &data)
	if err != nil || subject != "dlq.tracker.bridge.gh" || !strings.Contains(string(data), "Validation Failed") {
		t.Errorf("DLQ copy %q %s: %v", subject, data, err)
	}
	if err := events.Validate(TypeDeliveryFailed, data); err != nil {
		t.Errorf("DLQ copy against its schema: %v", err)
	}
	// A failed delivery is not retried until the action changes or an operator retries it.
	gh.fail = nil
	if n := f.drain(d); n != len(rc.ActionItems)-1 {
		t.Errorf("%d further deliveries, want %d", n, len(rc.ActionItems)-1)
	}
	if _, err := f.svc.RetryDelivery(context.Background(), fs[0].ActionID, "other"); !errors.Is(err, ErrNoDelivery) {
		t.Errorf("retry to an unknown bridge: %v", err)
	}
	if dl, err := f.svc.RetryDelivery(context.Background(), fs[0].ActionID, "gh"); err != nil || dl.State != store.DeliveryPending {
		t.Fatalf("retry: %+v %v", dl, err)
	}
	if n := f.drain(d); n != 1 {
		t.Errorf("%d deliveries after the retry, want 1", n)
	}
	if _, err := f.svc.ApplyStatus(context.Background(), status(fs[0].ActionID, events.StatusInProgress, f.clock.Now(), "")); err != nil {
		t.Fatal(err)
	}
	if n := f.drain(d); n != 1 {
		t.Errorf("%d deliveries after the action changed, want 1", n)
	}
	if dl := f.delivery(fs[0].ActionID); dl.State != store.DeliveryDelivered || dl.ExternalID == "" || dl.DeliveredVersion != 3 {
		t.Errorf("delivery after the change = %+v", dl)
	}
}
