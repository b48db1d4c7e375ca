package tracker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/tracker"
	"github.com/afteraction/afteraction/services/tracker/bridge"
)

const token = "test-token-admin"

type runEnv struct {
	t    *testing.T
	base string
	js   jetstream.JetStream
	bus  *bus.Bus
}

// startRun starts tracker.Run against a fresh database and an in-process
// NATS server and stops it when the test ends.
func startRun(t *testing.T) *runEnv {
	t.Helper()
	return startRunWith(t, nil)
}

// startRunWith is startRun with extra environment variables.
func startRunWith(t *testing.T, env map[string]string) *runEnv {
	t.Helper()
	srv := bustest.New(t)
	cfg, err := tracker.LoadConfig(func(name string) string {
		if v, ok := env[name]; ok {
			return v
		}
		switch name {
		case "DATABASE_URL":
			return pgtest.NewDatabase(t)
		case "NATS_URL":
			return srv.URL()
		case "API_TOKENS":
			return "admin:" + token
		case "TRACKER_OVERDUE_INTERVAL":
			return "200ms"
		case "TRACKER_OVERDUE_DELAY":
			return "0s"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	base := servicetest.Start(t, func(ctx context.Context, ln net.Listener) error {
		return tracker.Run(ctx, cfg, tracker.Deps{Log: log, Listener: ln})
	})

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Connect(context.Background(), srv.URL(), "test", log, bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return &runEnv{t: t, base: base, js: js, bus: b}
}

// collect reads messages on subject from stream until n have arrived or the
// timeout passes, and returns them.
func (e *runEnv) collect(stream, subject string, n int, timeout time.Duration) []jetstream.Msg {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cons, err := e.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < n {
		msgs, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			e.t.Fatal(err)
		}
		for m := range msgs.Messages() {
			out = append(out, m)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

func (e *runEnv) get(path string, dst any) int {
	e.t.Helper()
	resp, body := servicetest.Do(e.t, http.MethodGet, e.base+path, token, "", nil)
	if dst != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, dst); err != nil {
			e.t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

type actionsBody struct {
	Actions []tracker.Action `json:"actions"`
}

func TestRun(t *testing.T) {
	t.Parallel()
	e := startRun(t)
	ctx := context.Background()

	example, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.review.completed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := events.Decode[events.ReviewCompleted](events.TypeReviewCompleted, example)
	if err != nil {
		t.Fatal(err)
	}
	n := len(rc.ActionItems)
	if _, err := e.bus.PublishEvent(ctx, events.TypeReviewCompleted, rc.ReviewID, json.RawMessage(example)); err != nil {
		t.Fatal(err)
	}
	// The same review again under a new event id creates nothing more.
	if _, err := e.bus.PublishEvent(ctx, events.TypeReviewCompleted, rc.ReviewID, json.RawMessage(example)); err != nil {
		t.Fatal(err)
	}

	created := e.collect(bus.StreamAfteraction, events.SubjectActionCreated, n, 20*time.Second)
	if len(created) != n {
		t.Fatalf("%d action.created events, want %d", len(created), n)
	}
	for _, m := range created {
		if ce := m.Headers().Get(bus.HeaderType); ce != events.TypeActionCreated {
			t.Errorf("ce-type %q", ce)
		}
		if _, err := events.Decode[events.ActionCreated](events.TypeActionCreated, m.Data()); err != nil {
			t.Error(err)
		}
	}

	var list actionsBody
	servicetest.Eventually(t, "actions listed", func() bool {
		return e.get("/v1/actions?incident="+rc.IncidentID, &list) == http.StatusOK && len(list.Actions) == n
	})
	first := list.Actions[0]
	if first.Key != rc.ActionItems[0].Key || first.Status != events.StatusOpen || first.ReviewID != rc.ReviewID {
		t.Errorf("first action = %+v", first)
	}

	// A tracker sends a plain-JSON status change that links its key.
	body := fmt.Sprintf(`{"action_id":%q,"external_key":"SEC-2211","tracker":"jira","status":"in_progress","changed_at":%q,"changed_by":"zoe.agren"}`,
		first.ActionID, time.Now().UTC().Format(time.RFC3339))
	if err := e.bus.PublishRaw(ctx, events.SubjectActionStatusPrefix+"jira", "", []byte(body)); err != nil {
		t.Fatal(err)
	}
	updated := e.collect(bus.StreamAfteraction, events.SubjectActionUpdated, 1, 20*time.Second)
	if len(updated) != 1 {
		t.Fatalf("%d action.updated events, want 1", len(updated))
	}
	au, err := events.Decode[events.ActionUpdated](events.TypeActionUpdated, updated[0].Data())
	if err != nil {
		t.Fatal(err)
	}
	if au.ActionID != first.ActionID || au.Status != events.StatusInProgress || au.PreviousStatus != events.StatusOpen ||
		au.ExternalKey != "SEC-2211" || au.Tracker != "jira" {
		t.Errorf("action.updated = %+v", au)
	}
	var detail struct {
		tracker.Action
		History []tracker.HistoryEntry `json:"history"`
	}
	if code := e.get("/v1/actions/"+first.ActionID, &detail); code != http.StatusOK {
		t.Fatalf("GET action: %d", code)
	}
	if detail.Status != events.StatusInProgress || detail.ExternalKey != "SEC-2211" || len(detail.History) != 2 {
		t.Errorf("action after update = %+v", detail)
	}

	// A status for an action nobody knows is dead-lettered and listed.
	unknown := `{"external_key":"SEC-404","tracker":"jira","status":"done","changed_at":"2026-05-05T15:48:10+02:00"}`
	if err := e.bus.PublishRaw(ctx, events.SubjectActionStatusPrefix+"jira", "", []byte(unknown)); err != nil {
		t.Fatal(err)
	}
	dlq := e.collect(bus.StreamDLQ, bus.DLQSubject(tracker.ServiceName, "actions.status.jira"), 1, 20*time.Second)
	if len(dlq) != 1 {
		t.Fatalf("%d DLQ messages, want 1", len(dlq))
	}
	if string(dlq[0].Data()) != unknown || !strings.Contains(dlq[0].Headers().Get(bus.HeaderDLQReason), "unknown") {
		t.Errorf("DLQ message %q with reason %q", dlq[0].Data(), dlq[0].Headers().Get(bus.HeaderDLQReason))
	}
	var um struct {
		Unmatched []struct {
			Kind        string          `json:"kind"`
			ExternalKey string          `json:"external_key"`
			Payload     json.RawMessage `json:"payload"`
		} `json:"unmatched"`
	}
	if code := e.get("/v1/unmatched", &um); code != http.StatusOK {
		t.Fatalf("GET unmatched: %d", code)
	}
	if len(um.Unmatched) != 1 || um.Unmatched[0].Kind != tracker.KindUnknownAction || um.Unmatched[0].ExternalKey != "SEC-404" {
		t.Errorf("unmatched = %+v", um.Unmatched)
	}

	// The chaser (every 200ms here) announces each overdue action once a day:
	// the four dated items and the fifth, dated by the due policy, are past
	// due by the real clock.
	time.Sleep(time.Second)
	overdue := e.collect(bus.StreamAfteraction, events.SubjectActionOverdue, 6, 3*time.Second)
	if len(overdue) != 5 {
		t.Errorf("%d action.overdue events, want 5", len(overdue))
	}

	if again := e.collect(bus.StreamAfteraction, events.SubjectActionCreated, n+1, time.Second); len(again) != n {
		t.Errorf("%d action.created events in all, want %d", len(again), n)
	}

	var metrics string
	servicetest.Eventually(t, "metrics", func() bool {
		resp, err := http.Get(e.base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		metrics = string(b)
		return resp.StatusCode == http.StatusOK
	})
	for _, want := range []string{
		`afteraction_tracker_actions{status="open"} 4`,
		`afteraction_tracker_actions{status="in_progress"} 1`,
		`afteraction_tracker_overdue_emitted_total 5`,
		`afteraction_messages_total{consumer="tracker-action-status",outcome="dead_letter"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestRunHTTPStatus(t *testing.T) {
	t.Parallel()
	e := startRun(t)
	ctx := context.Background()
	example, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.review.completed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := events.Decode[events.ReviewCompleted](events.TypeReviewCompleted, example)
	if _, err := e.bus.PublishEvent(ctx, events.TypeReviewCompleted, rc.ReviewID, json.RawMessage(example)); err != nil {
		t.Fatal(err)
	}
	var list actionsBody
	servicetest.Eventually(t, "actions", func() bool {
		return e.get("/v1/actions?incident="+rc.IncidentID, &list) == http.StatusOK && len(list.Actions) == len(rc.ActionItems)
	})
	id := list.Actions[2].ActionID

	post := func(id, body string) (int, httpapi.Problem) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.base+"/v1/actions/"+id+"/status", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p httpapi.Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p
	}
	cases := []struct {
		name, id, body string
		code           int
		field          string
	}{
		{"applied", id, `{"status":"done","note":"callback process live"}`, http.StatusOK, ""},
		{"invalid status", id, `{"status":"finished"}`, http.StatusUnprocessableEntity, "status"},
		{"bad time", id, `{"status":"open","changed_at":"yesterday"}`, http.StatusUnprocessableEntity, "changed_at"},
		{"key without tracker", id, `{"status":"open","external_key":"X-1"}`, http.StatusUnprocessableEntity, "tracker"},
		{"unknown field", id, `{"status":"open","colour":"red"}`, http.StatusBadRequest, "colour"},
		{"forbidden transition", id, `{"status":"in_progress"}`, http.StatusConflict, ""},
		{"unknown action", "0195a5d0-0000-7000-8000-000000000000", `{"status":"done"}`, http.StatusNotFound, ""},
		{"not an id", "nope", `{"status":"done"}`, http.StatusNotFound, ""},
	}
	for _, c := range cases {
		code, p := post(c.id, c.body)
		if code != c.code {
			t.Errorf("%s: status %d, want %d (%+v)", c.name, code, c.code, p)
		}
		if c.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != c.field) {
			t.Errorf("%s: problem %+v does not name %s", c.name, p, c.field)
		}
	}
	var detail struct {
		tracker.Action
		History []tracker.HistoryEntry `json:"history"`
	}
	e.get("/v1/actions/"+id, &detail)
	if detail.Status != events.StatusDone || len(detail.History) != 2 || detail.History[1].Note != "callback process live" {
		t.Errorf("after POST: %+v", detail)
	}
	if code := e.get("/v1/actions?status=done", &list); code != http.StatusOK || len(list.Actions) != 1 {
		t.Errorf("status filter: %d, %d actions", code, len(list.Actions))
	}
	req, _ := http.NewRequest(http.MethodGet, e.base+"/v1/actions", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", resp.StatusCode)
	}
}

// receiver is a generic-webhook receiver that verifies each delivery as the
// README tells receivers to, and keeps the ones that verify.
type receiver struct {
	mu         sync.Mutex
	secret     []byte
	deliveries []bridge.WebhookDelivery
	refused    int
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if err := bridge.Verify(rv.secret, r.Header, body, time.Now()); err != nil {
		rv.refused++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var d bridge.WebhookDelivery
	if err := json.Unmarshal(body, &d); err != nil || d.ID != r.Header.Get(bridge.HeaderDelivery) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rv.deliveries = append(rv.deliveries, d)
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"REC-%d","url":"https://receiver.example/%d"}`, len(rv.deliveries), len(rv.deliveries))
}

func (rv *receiver) got() []bridge.WebhookDelivery {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]bridge.WebhookDelivery(nil), rv.deliveries...)
}

// TestRunWebhookBridge: with a generic webhook bridge configured, every
// action is POSTed, signed, to the receiver; the receiver's signed status
// comes back through POST /v1/bridges/{name}/webhook and changes the action,
// whose change goes out again.
func TestRunWebhookBridge(t *testing.T) {
	t.Parallel()
	secret := "receiver-secret"
	rv := &receiver{secret: []byte(secret)}
	hook := httptest.NewServer(rv)
	t.Cleanup(hook.Close)
	e := startRunWith(t, map[string]string{
		"TRACKER_BRIDGES":     `{"bridges":[{"name":"hook","kind":"webhook","url":"` + hook.URL + `","secret_env":"HOOK_SECRET"}],"routes":{"default":"hook"}}`,
		"HOOK_SECRET":         secret,
		"TRACKER_BRIDGE_POLL": "50ms",
	})
	ctx := context.Background()
	example, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.review.completed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := events.Decode[events.ReviewCompleted](events.TypeReviewCompleted, example)
	if _, err := e.bus.PublishEvent(ctx, events.TypeReviewCompleted, rc.ReviewID, json.RawMessage(example)); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "every action delivered to the receiver", func() bool { return len(rv.got()) == len(rc.ActionItems) })
	first := rv.got()[0]
	if first.Type != "action.created" || first.Action.Title == "" || first.Action.DueDate == "" || first.Version != 1 {
		t.Errorf("first delivery = %+v", first)
	}
	var ds struct {
		Deliveries []tracker.Delivery `json:"deliveries"`
	}
	servicetest.Eventually(t, "deliveries recorded", func() bool {
		return e.get("/v1/bridges/deliveries?state=delivered", &ds) == http.StatusOK && len(ds.Deliveries) == len(rc.ActionItems)
	})

	// The receiver closes one action with a signed status; an unsigned one is refused.
	id := first.Action.ActionID
	body := []byte(fmt.Sprintf(`{"action_id":%q,"status":"done","updated_at":%q,"changed_by":"receiver"}`,
		id, time.Now().UTC().Format(time.RFC3339)))
	post := func(sign bool) int {
		req, _ := http.NewRequest(http.MethodPost, e.base+"/v1/bridges/hook/webhook", bytes.NewReader(body))
		now := time.Now()
		req.Header.Set(bridge.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(bridge.HeaderDelivery, "status-1")
		if sign {
			req.Header.Set(bridge.HeaderSignature, bridge.Sign([]byte(secret), now, body))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(false); code != http.StatusUnauthorized {
		t.Errorf("unsigned status: %d, want 401", code)
	}
	signed := func(path string, b []byte) int {
		req, _ := http.NewRequest(http.MethodPost, e.base+path, bytes.NewReader(b))
		now := time.Now()
		req.Header.Set(bridge.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(bridge.HeaderDelivery, "bad-1")
		req.Header.Set(bridge.HeaderSignature, bridge.Sign([]byte(secret), now, b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := signed("/v1/bridges/nope/webhook", body); code != http.StatusNotFound {
		t.Errorf("unknown bridge: %d, want 404", code)
	}
	if code := signed("/v1/bridges/hook/webhook", []byte(`{"status":"finished"}`)); code != http.StatusUnprocessableEntity {
		t.Errorf("invalid status body: %d, want 422", code)
	}
	var um struct {
		Unmatched []tracker.Unmatched `json:"unmatched"`
	}
	if code := e.get("/v1/unmatched?tracker=hook", &um); code != http.StatusOK || len(um.Unmatched) != 1 || um.Unmatched[0].Kind != tracker.KindInvalid {
		t.Errorf("unmatched after the invalid body: %d %+v", code, um.Unmatched)
	}
	if code := post(true); code != http.StatusOK {
		t.Fatalf("signed status: %d", code)
	}
	var detail struct {
		tracker.Action
		Deliveries []tracker.Delivery `json:"deliveries"`
	}
	if code := e.get("/v1/actions/"+id, &detail); code != http.StatusOK || detail.Status != events.StatusDone || detail.Tracker != "hook" {
		t.Errorf("after the receiver's status: %d %+v", code, detail.Action)
	}
	if len(detail.Deliveries) != 1 || detail.Deliveries[0].ExternalURL == "" || detail.Deliveries[0].RemoteUpdatedAt == nil {
		t.Errorf("deliveries of the action: %+v", detail.Deliveries)
	}
	var fl struct {
		Failures []tracker.Failure `json:"failures"`
	}
	if code := e.get("/v1/bridges/failures", &fl); code != http.StatusOK || len(fl.Failures) != 0 {
		t.Errorf("failures: %d %+v", code, fl.Failures)
	}
	var bl struct {
		Bridges []map[string]string `json:"bridges"`
	}
	if code := e.get("/v1/bridges", &bl); code != http.StatusOK || len(bl.Bridges) != 1 || bl.Bridges[0]["kind"] != "webhook" {
		t.Errorf("bridges: %d %+v", code, bl)
	}
	if rv.refused != 0 {
		t.Errorf("receiver refused %d deliveries", rv.refused)
	}
}
