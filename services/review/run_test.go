package review_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/review"
)

const facilitatorToken = "facilitator-token-123"

// TestRun starts the service for real: an incident.registered event in gives a
// review.opened event and a review over HTTP; answers and completion over HTTP
// give a review.completed event on the stream.
func TestRun(t *testing.T) {
	t.Parallel()
	srv := bustest.New(t)
	dsn := pgtest.NewDatabase(t)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	base := servicetest.Start(t, func(ctx context.Context, ln net.Listener) error {
		env := map[string]string{
			"DATABASE_URL":         dsn,
			"NATS_URL":             srv.URL(),
			"API_TOKENS":           "facilitator:" + facilitatorToken + ",compliance:compliance-token-1",
			"REVIEW_INVITE_SECRET": "run-test-secret-0123456789",
			"REVIEW_PUBLIC_URL":    "http://" + ln.Addr().String(),
		}
		cfg, err := review.LoadConfig(func(k string) string { return env[k] })
		if err != nil {
			return err
		}
		return review.Run(ctx, cfg, review.Deps{Log: log, Listener: ln})
	})

	// An incident is registered.
	b, err := bus.Connect(context.Background(), srv.URL(), "test", log, bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	reg := exampleRegistered(t)
	reg.Incident.Timestamps.ClosedAt = time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	if _, err := b.PublishEvent(context.Background(), events.TypeIncidentRegistered, reg.IncidentID, reg); err != nil {
		t.Fatal(err)
	}

	js := jetstreamOf(t, srv.URL())
	opened := lastEvent(t, js, events.SubjectReviewOpened, events.TypeReviewOpened)
	var o events.ReviewOpened
	if err := json.Unmarshal(opened, &o); err != nil {
		t.Fatal(err)
	}
	if o.IncidentID != reg.IncidentID || !o.Required || o.DueAt == nil {
		t.Fatalf("review.opened = %+v", o)
	}

	var list struct {
		Reviews []review.Review `json:"reviews"`
	}
	if code := status(t, "GET", base+"/v1/reviews?incident_id="+reg.IncidentID, facilitatorToken, &list); code != 200 || len(list.Reviews) != 1 {
		t.Fatalf("GET /v1/reviews: %d, %d reviews", code, len(list.Reviews))
	}
	if rv := list.Reviews[0]; rv.Historical || !rv.Required {
		t.Errorf("review of an incident closed an hour ago: historical %v, required %v", rv.Historical, rv.Required)
	}

	// An incident closed long ago (an import of history; REVIEW_MAX_AGE
	// defaults to 30 days) opens a historical review: optional, no due date.
	old := reg
	old.IncidentID = uuid.NewString()
	old.Incident.Timestamps.ClosedAt = time.Now().UTC().Add(-60 * 24 * time.Hour).Truncate(time.Millisecond)
	if _, err := b.PublishEvent(context.Background(), events.TypeIncidentRegistered, old.IncidentID, old); err != nil {
		t.Fatal(err)
	}
	var historical struct {
		Reviews []review.Review `json:"reviews"`
	}
	servicetest.Eventually(t, "the historical review", func() bool {
		return status(t, "GET", base+"/v1/reviews?incident_id="+old.IncidentID, facilitatorToken, &historical) == 200 &&
			len(historical.Reviews) == 1
	})
	if h := historical.Reviews[0]; !h.Historical || h.Required || h.DueAt != nil {
		t.Errorf("review of an incident closed 60 days ago: historical %v, required %v, due %v; want historical, optional, no due date",
			h.Historical, h.Required, h.DueAt)
	}
	if code := status(t, "GET", base+"/v1/reviews?incident_id="+reg.IncidentID, "", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/reviews without a token: %d, want 401", code)
	}
	rv := list.Reviews[0]
	if rv.ReviewID != o.ReviewID || rv.Status != "open" || len(rv.Participants) != len(reg.Incident.People) {
		t.Fatalf("review = %+v", rv)
	}
	p := rv.Participants[1]
	answersURL := base + "/v1/reviews/" + rv.ReviewID + "/responses/" + p.ParticipantID

	// A participant answers with their invitation; a wrong answer names its field.
	bad := `{"answers":[{"question_id":"what_happened.account","text":"a"},{"question_id":"training.needs","items":["x"]},
		{"question_id":"what_happened.timeline_accurate","yes":true},{"question_id":"team_performance.performance","rating":9}]}`
	var problem struct {
		Errors []struct{ Field string } `json:"errors"`
	}
	if code := send(t, "PUT", answersURL, p.InvitationToken, bad, &problem); code != 422 || len(problem.Errors) != 1 || problem.Errors[0].Field != "answers[3].rating" {
		t.Errorf("invalid answers: %d %+v, want 422 naming answers[3].rating", code, problem)
	}
	if code := send(t, "PUT", answersURL, rv.Participants[2].InvitationToken, `{"answers":[]}`, nil); code != http.StatusForbidden {
		t.Errorf("another participant's invitation: %d, want 403", code)
	}
	if code := send(t, "PUT", answersURL, p.InvitationToken, `{"answers":[],"extra":1}`, nil); code != http.StatusBadRequest {
		t.Errorf("unknown field: %d, want 400", code)
	}
	good := `{"answers":[{"question_id":"preventive_measures.actions","items":["Enforce number matching for MFA"]},
		{"question_id":"team_performance.performance","rating":4}]}`
	var stored review.Response
	if code := send(t, "PUT", answersURL, p.InvitationToken, good, &stored); code != 200 || len(stored.Answers) != 2 {
		t.Fatalf("PUT answers: %d %+v", code, stored)
	}

	// Another participant answers through the web form.
	formURL, err := url.Parse(rv.Participants[2].FormURL)
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, "GET", formURL.String(), "", "")
	if !strings.Contains(page, "Łukasz Wiśniewski") || !strings.Contains(page, `name="readiness_structure.readiness"`) {
		t.Errorf("form page lacks the participant or a question:\n%.500s", page)
	}
	form := url.Values{"readiness_structure.readiness": {"2"}, "training.needs": {"Phishing drills\nReporting <script>"}}
	thanks := body(t, "POST", formURL.String(), "application/x-www-form-urlencoded", form.Encode())
	if !strings.Contains(thanks, "Thank you") {
		t.Errorf("form post:\n%.500s", thanks)
	}

	// The facilitator completes the review.
	completeURL := base + "/v1/reviews/" + rv.ReviewID + "/complete"
	completion := `{"facilitator":{"name":"Kemal Yıldız","email":"kemal.yildiz@nordlicht-logistik.example"},
		"summary":"MFA fatigue.","findings":[{"topic":"preventive_measures","summary":"Number matching was missing."}]}`
	amendURL := base + "/v1/reviews/" + rv.ReviewID + "/amendments"
	amendment := `{"reason":"Finding corrected: number matching was enabled but bypassed.","summary":"MFA fatigue.",
		"findings":[{"topic":"preventive_measures","summary":"Number matching was bypassed by a legacy protocol."}]}`
	if code := send(t, "POST", amendURL, facilitatorToken, amendment, &problem); code != http.StatusConflict {
		t.Errorf("amendment of an open review: %d, want 409", code)
	}
	var completed events.ReviewCompleted
	if code := send(t, "POST", completeURL, p.InvitationToken, completion, nil); code != http.StatusUnauthorized {
		t.Errorf("complete with an invitation: %d, want 401", code)
	}
	if code := send(t, "POST", completeURL, facilitatorToken, completion, &completed); code != 200 {
		t.Fatalf("complete: %d", code)
	}
	if code := send(t, "POST", completeURL, facilitatorToken, completion, nil); code != http.StatusConflict {
		t.Errorf("second completion: %d, want 409", code)
	}
	if code := send(t, "PUT", answersURL, p.InvitationToken, good, nil); code != http.StatusConflict {
		t.Errorf("answers after completion: %d, want 409", code)
	}

	var detail review.ReviewDetail
	if code := status(t, "GET", base+"/v1/reviews/"+rv.ReviewID, "compliance-token-1", &detail); code != 200 ||
		detail.Status != "completed" || len(detail.Responses) != 2 || len(detail.Questions) < 20 || detail.CompletedAt == nil {
		t.Errorf("GET /v1/reviews/{id}: %d, status %s, %d responses, %d questions", code, detail.Status, len(detail.Responses), len(detail.Questions))
	}

	data := lastEvent(t, js, events.SubjectReviewCompleted, events.TypeReviewCompleted)
	var ev events.ReviewCompleted
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ReviewID != rv.ReviewID || len(ev.Responses) != 2 || len(ev.ActionItems) != 3 || ev.Incident.Title != reg.Incident.Title {
		t.Errorf("review.completed = %d responses, %d action items: %+v", len(ev.Responses), len(ev.ActionItems), ev.ActionItems)
	}

	// The facilitator corrects a finding: an amendment emits a second review.completed.
	if code := send(t, "POST", amendURL, "compliance-token-1", amendment, nil); code != http.StatusForbidden {
		t.Errorf("amendment with the compliance role: %d, want 403", code)
	}
	problem.Errors = nil
	if code := send(t, "POST", amendURL, facilitatorToken, `{"summary":"no reason"}`, &problem); code != 422 ||
		len(problem.Errors) != 1 || problem.Errors[0].Field != "reason" {
		t.Errorf("amendment without a reason: %d %+v, want 422 naming reason", code, problem)
	}
	if code := send(t, "POST", amendURL, facilitatorToken, `{"reason":"x","extra":1}`, nil); code != http.StatusBadRequest {
		t.Errorf("amendment with an unknown field: %d, want 400", code)
	}
	var amended struct {
		events.ReviewCompleted
		Amendment       int    `json:"amendment"`
		AmendmentReason string `json:"amendment_reason"`
	}
	if code := send(t, "POST", amendURL, facilitatorToken, amendment, &amended); code != http.StatusCreated || amended.Amendment != 1 {
		t.Fatalf("amendment: %d, amendment %d; want 201 and amendment 1", code, amended.Amendment)
	}
	servicetest.Eventually(t, "the amended review.completed", func() bool {
		data := lastEvent(t, js, events.SubjectReviewCompleted, events.TypeReviewCompleted)
		var got struct {
			events.ReviewCompleted
			Amendment       int    `json:"amendment"`
			AmendmentReason string `json:"amendment_reason"`
		}
		return json.Unmarshal(data, &got) == nil && got.Amendment == 1 &&
			got.AmendmentReason == amended.AmendmentReason && strings.Contains(got.Findings[0].Summary, "legacy protocol") &&
			len(got.ActionItems) == 3
	})
	if code := status(t, "GET", base+"/v1/reviews/"+rv.ReviewID, "compliance-token-1", &detail); code != 200 || detail.Amendment != 1 ||
		len(detail.Amendments) != 1 || detail.Amendments[0].AmendedBy != "role:facilitator" {
		t.Errorf("GET /v1/reviews/{id} after the amendment: %d, amendment %d, log %+v", code, detail.Amendment, detail.Amendments)
	}

	// The report service's expiry of the incident's evidence: the answers go,
	// an audit line stays.
	expired := events.EvidenceExpired{IncidentID: reg.IncidentID, IncidentRevision: reg.Revision, Severity: reg.Incident.Severity,
		ClosedAt: reg.Incident.Timestamps.ClosedAt, Rule: "default=1d", RetainUntil: reg.Incident.Timestamps.ClosedAt.AddDate(0, 0, 1),
		ExpiredAt: time.Now().UTC()}
	if _, err := b.PublishEvent(context.Background(), events.TypeEvidenceExpired, reg.IncidentID, expired); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	servicetest.Eventually(t, "the answers purged", func() bool {
		var lines, answered int
		err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM review.purges WHERE incident_id = $1),
	(SELECT count(*) FROM review.responses WHERE review_id = $2 AND answers <> '[]'::jsonb)`, reg.IncidentID, rv.ReviewID).Scan(&lines, &answered)
		return err == nil && lines == 1 && answered == 0
	})
}

func jetstreamOf(t *testing.T, u string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// lastEvent waits for a message on subject in the AFTERACTION stream, checks
// its ce-type and schema, and returns its data.
func lastEvent(t *testing.T, js jetstream.JetStream, subject, typ string) []byte {
	t.Helper()
	var msg *jetstream.RawStreamMsg
	servicetest.Eventually(t, subject, func() bool {
		s, err := js.Stream(context.Background(), bus.StreamAfteraction)
		if err != nil {
			return false
		}
		msg, err = s.GetLastMsgForSubject(context.Background(), subject)
		return err == nil
	})
	if got := msg.Header.Get(bus.HeaderType); got != typ {
		t.Errorf("%s: ce-type %q, want %q", subject, got, typ)
	}
	if err := events.Validate(typ, msg.Data); err != nil {
		t.Errorf("%s: %v", subject, err)
	}
	return msg.Data
}

func status(t *testing.T, method, u, token string, out any) int {
	t.Helper()
	return send(t, method, u, token, "", out)
}

func send(t *testing.T, method, u, token, reqBody string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewBufferString(reqBody))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Errorf("%s %s: decode: %v", method, u, err)
		}
	}
	return resp.StatusCode
}

func body(t *testing.T, method, u, contentType, reqBody string) string {
	t.Helper()
	_, b := servicetest.Do(t, method, u, "", contentType, []byte(reqBody))
	return string(b)
}

// TestShutdownRelaysWhatInFlightWorkCommits stops the service while a
// completion is still in its transaction: the outbox relay must make its final
// pass only after that request has committed, so its review.completed still
// reaches the stream before Run returns.
func TestShutdownRelaysWhatInFlightWorkCommits(t *testing.T) {
	t.Parallel()
	srv := bustest.New(t)
	dsn := pgtest.NewDatabase(t)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	env := map[string]string{
		"DATABASE_URL":         dsn,
		"NATS_URL":             srv.URL(),
		"API_TOKENS":           "facilitator:" + facilitatorToken,
		"REVIEW_INVITE_SECRET": "run-test-secret-0123456789",
	}
	cfg, err := review.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- review.Run(ctx, cfg, review.Deps{Log: log, Listener: ln}) }()
	servicetest.Eventually(t, "readiness", func() bool { return status(t, "GET", base+"/readyz", "", nil) == 200 })

	b, err := bus.Connect(context.Background(), srv.URL(), "test", log, bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	reg := exampleRegistered(t)
	if _, err := b.PublishEvent(context.Background(), events.TypeIncidentRegistered, reg.IncidentID, reg); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Reviews []review.Review `json:"reviews"`
	}
	servicetest.Eventually(t, "the review", func() bool {
		return status(t, "GET", base+"/v1/reviews?incident_id="+reg.IncidentID, facilitatorToken, &list) == 200 &&
			len(list.Reviews) == 1
	})
	reviewID := list.Reviews[0].ReviewID
	js := jetstreamOf(t, srv.URL())
	lastEvent(t, js, events.SubjectReviewOpened, events.TypeReviewOpened)

	// Hold the review's row lock so the completion blocks inside its transaction.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	lock, err := conn.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(context.Background(), `SELECT 1 FROM review.reviews WHERE review_id = $1 FOR UPDATE`, reviewID); err != nil {
		t.Fatal(err)
	}
	completed := make(chan int, 1)
	go func() {
		completed <- send(t, "POST", base+"/v1/reviews/"+reviewID+"/complete", facilitatorToken, `{"summary":"done"}`, nil)
	}()
	servicetest.Eventually(t, "the completion waiting for the lock", func() bool {
		var waiting int
		err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		return err == nil && waiting > 0
	})

	// Shut down while the completion is in flight. A relay stopped together
	// with HTTP makes its final pass right away, before the completion
	// commits; give it ample time to do so before letting the completion go.
	cancel()
	time.Sleep(time.Second)
	if err := lock.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code := <-completed; code != http.StatusOK {
		t.Fatalf("in-flight completion: %d, want 200", code)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(servicetest.Timeout):
		t.Fatal("Run did not stop")
	}

	s, err := js.Stream(context.Background(), bus.StreamAfteraction)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(context.Background(), events.SubjectReviewCompleted)
	if err != nil {
		t.Fatalf("review.completed committed during shutdown was not relayed before Run returned: %v", err)
	}
	var ev events.ReviewCompleted
	if err := json.Unmarshal(msg.Data, &ev); err != nil || ev.ReviewID != reviewID {
		t.Errorf("review.completed = %+v, %v; want review %s", ev, err, reviewID)
	}
}

// exampleRegistered is the example incident.registered event under a new incident id.
func exampleRegistered(t *testing.T) events.IncidentRegistered {
	t.Helper()
	raw, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.incident.registered.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	var reg events.IncidentRegistered
	if err := json.Unmarshal(raw, &reg); err != nil {
		t.Fatal(err)
	}
	reg.IncidentID = uuid.NewString()
	return reg
}
