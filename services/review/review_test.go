package review

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/review/postgres"
)

type fixture struct {
	t     *testing.T
	svc   *Service
	pool  *pgxpool.Pool
	clock *servicetest.Clock
}

var testInvites = Invites{Secret: []byte("test-invite-secret-0123456789"), TTL: 90 * 24 * time.Hour}

func setup(t *testing.T) *fixture {
	t.Helper()
	return setupWith(t, nil)
}

// setupWith is setup with the service configuration changed by configure.
func setupWith(t *testing.T, configure func(*ServiceConfig)) *fixture {
	t.Helper()
	pool := pgtest.New(t, pgtest.Migration{Schema: postgres.Schema, FS: postgres.Migrations()})
	policy, err := ParsePolicy(DefaultPolicy)
	if err != nil {
		t.Fatal(err)
	}
	c := servicetest.NewClock(time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC))
	cfg := ServiceConfig{
		Policy: policy, Questionnaire: DefaultQuestionnaire, Invites: testInvites,
		PublicURL: "http://review.test/", Now: c.Now,
	}
	if configure != nil {
		configure(&cfg)
	}
	svc, err := NewService(postgres.New(pool), cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, svc: svc, pool: pool, clock: c}
}

// registered returns the example incident.registered event with a fresh incident id.
func registered(t *testing.T) events.IncidentRegistered {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.incident.registered.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	var e events.IncidentRegistered
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	e.IncidentID = uuid.Must(uuid.NewV7()).String()
	return e
}

func (f *fixture) handle(e events.IncidentRegistered) (string, OpenOutcome) {
	f.t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	out, err := f.svc.HandleIncidentRegistered(context.Background(), id, e)
	if err != nil {
		f.t.Fatal(err)
	}
	return id, out
}

func (f *fixture) open(e events.IncidentRegistered) Review {
	f.t.Helper()
	if _, out := f.handle(e); out != OutcomeOpened {
		f.t.Fatalf("outcome = %s, want opened", out)
	}
	return f.only(e.IncidentID)
}

func (f *fixture) only(incidentID string) Review {
	f.t.Helper()
	rs, err := f.svc.Reviews(context.Background(), incidentID)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(rs) != 1 {
		f.t.Fatalf("reviews of incident = %d, want 1", len(rs))
	}
	return rs[0]
}

// outbox returns the data of every outbox event of type typ, oldest first, each checked against its schema.
func (f *fixture) outbox(typ string) []json.RawMessage {
	f.t.Helper()
	return servicetest.Outbox(f.t, f.pool, typ)
}

func dur(h int) *time.Duration { d := time.Duration(h) * time.Hour; return &d }

func TestOpenAppliesPolicy(t *testing.T) {
	t.Parallel()
	f := setup(t)
	cases := []struct {
		severity events.Severity
		exercise bool
		due      *time.Duration
	}{
		{events.SeverityCritical, false, dur(72)},
		{events.SeverityHigh, false, dur(120)},
		{events.SeverityMedium, false, dur(240)},
		{events.SeverityLow, false, nil},
		{events.SeverityInformational, false, nil},
		{events.SeverityCritical, true, nil},
	}
	for _, c := range cases {
		e := registered(t)
		e.Incident.Severity, e.Incident.Exercise = c.severity, c.exercise
		r := f.open(e)
		if c.due == nil {
			if r.Required || r.DueAt != nil {
				t.Errorf("%s exercise=%v: required=%v due=%v, want optional without due date", c.severity, c.exercise, r.Required, r.DueAt)
			}
			continue
		}
		want := e.Incident.Timestamps.ClosedAt.Add(*c.due)
		if !r.Required || r.DueAt == nil || !r.DueAt.Equal(want) {
			t.Errorf("%s: required=%v due=%v, want required, due %v", c.severity, r.Required, r.DueAt, want)
		}
	}
	if n := len(f.outbox(events.TypeReviewOpened)); n != len(cases) {
		t.Errorf("review.opened events = %d, want %d (optional reviews are opened too)", n, len(cases))
	}
}

func TestOpenInvitesPeopleOnceWithCommanderAsFacilitator(t *testing.T) {
	t.Parallel()
	f := setup(t)
	e := registered(t)
	people := e.Incident.People
	e.Incident.People = append(people,
		events.Person{Name: "Zoë Ågren (SOC)", Email: "ZOE.AGREN@nordlicht-logistik.example", Role: events.RoleObserver},
		events.Person{Name: "Night  Shift Operator", Role: events.RoleResponder},
		events.Person{Name: "night shift operator", Role: events.RoleObserver},
	)
	r := f.open(e)
	if got, want := len(r.Participants), len(people)+1; got != want {
		t.Fatalf("participants = %d, want %d (same e-mail or, without one, same name counts once)", got, want)
	}
	if r.Facilitator == nil || r.Facilitator.Name != "Kemal Yıldız" {
		t.Errorf("facilitator = %+v, want the commander", r.Facilitator)
	}
	if r.QuestionnaireVersion != DefaultQuestionnaire || r.Status != "open" || r.Title != e.Incident.Title {
		t.Errorf("review = %+v", r)
	}
	for _, p := range r.Participants {
		if pid, _, err := testInvites.Verify(r.ReviewID, p.InvitationToken, f.clock.Now()); err != nil || pid != p.ParticipantID {
			t.Errorf("invitation of %s: participant %q, %v", p.Name, pid, err)
		}
		if !strings.HasPrefix(p.FormURL, "http://review.test/review/"+r.ReviewID+"?token=") {
			t.Errorf("form url = %s", p.FormURL)
		}
	}
	var opened events.ReviewOpened
	if err := json.Unmarshal(f.outbox(events.TypeReviewOpened)[0], &opened); err != nil {
		t.Fatal(err)
	}
	if opened.Facilitator == nil || opened.Facilitator.Name != "Kemal Yıldız" || len(opened.Participants) != len(r.Participants) {
		t.Errorf("opened event = %+v", opened)
	}
}

func TestDuplicateEventOpensOneReview(t *testing.T) {
	t.Parallel()
	f := setup(t)
	e := registered(t)
	id, _ := f.handle(e)
	if out, err := f.svc.HandleIncidentRegistered(context.Background(), id, e); err != nil || out != OutcomeDuplicate {
		t.Fatalf("redelivery: %s, %v; want duplicate", out, err)
	}
	if _, out := f.handle(e); out != OutcomeStale {
		t.Fatalf("same revision under another event id: %s, want stale_revision", out)
	}
	f.only(e.IncidentID)
	if n := len(f.outbox(events.TypeReviewOpened)); n != 1 {
		t.Errorf("review.opened events = %d, want 1", n)
	}
}

func TestLaterRevisionUpdatesSnapshotAndCompletedReviewGoesStale(t *testing.T) {
	t.Parallel()
	f := setup(t)
	e := registered(t)
	first := f.open(e)

	e.Revision = 2
	e.Incident.Title = "Phishing led to compromised finance mailbox (revised)"
	e.Incident.Severity = events.SeverityCritical
	e.Incident.People = append(e.Incident.People, events.Person{Name: "Ada Auditor", Email: "ada@example.com", Role: events.RoleObserver})
	if _, out := f.handle(e); out != OutcomeUpdated {
		t.Fatalf("revision 2: %s, want updated", out)
	}
	r := f.only(e.IncidentID)
	if r.ReviewID != first.ReviewID || r.Title != e.Incident.Title || r.Severity != events.SeverityCritical || r.IncidentRevision != 2 {
		t.Errorf("after revision 2: %+v", r)
	}
	if len(r.Participants) != len(first.Participants)+1 || r.Participants[len(r.Participants)-1].Name != "Ada Auditor" {
		t.Errorf("participants after revision 2 = %d, want one more (Ada Auditor)", len(r.Participants))
	}
	if _, err := f.svc.Complete(context.Background(), r.ReviewID, CompleteRequest{}); err != nil {
		t.Fatal(err)
	}
	var snapshot events.ReviewCompleted
	if err := json.Unmarshal(f.outbox(events.TypeReviewCompleted)[0], &snapshot); err != nil {
		t.Fatal(err)
	}
	if snapshot.Incident.Title != e.Incident.Title || snapshot.IncidentRevision != 2 {
		t.Errorf("completed event carries revision %d %q, want the latest", snapshot.IncidentRevision, snapshot.Incident.Title)
	}

	if r := f.only(e.IncidentID); r.Stale || r.CompletedIncidentRevision == nil || *r.CompletedIncidentRevision != 2 {
		t.Errorf("just completed: stale %v, completed revision %v; want current at 2", r.Stale, r.CompletedIncidentRevision)
	}

	e.Revision = 3
	e.Incident.Title = "after completion"
	e.Incident.People = append(e.Incident.People, events.Person{Name: "Late Larry", Email: "larry@example.com", Role: events.RoleObserver})
	if _, out := f.handle(e); out != OutcomeBehind {
		t.Fatalf("revision 3: %s, want completed_review_behind", out)
	}
	r = f.only(e.IncidentID)
	if r.Title != "after completion" || r.IncidentRevision != 3 || r.Status != "completed" || !r.Stale ||
		*r.CompletedIncidentRevision != 2 {
		t.Errorf("after revision 3 of a completed review: title %q, revision %d, status %s, stale %v, completed revision %d; "+
			"want the new snapshot, still completed, stale", r.Title, r.IncidentRevision, r.Status, r.Stale, *r.CompletedIncidentRevision)
	}
	if len(r.Participants) != len(first.Participants)+1 {
		t.Errorf("participants after revision 3 = %d, want nobody invited to a completed review", len(r.Participants))
	}
	e.Revision = 2
	if _, out := f.handle(e); out != OutcomeStale {
		t.Errorf("an older revision of a completed review: %s, want stale_revision", out)
	}
	if n := len(f.outbox(events.TypeReviewOpened)); n != 1 {
		t.Errorf("review.opened events = %d, want 1", n)
	}
	if n := len(f.outbox(events.TypeReviewCompleted)); n != 1 {
		t.Errorf("review.completed events = %d, want 1 (a revision alone emits nothing)", n)
	}
}

func ptr[T any](v T) *T { return &v }

func (f *fixture) submit(r Review, i int, answers ...events.Answer) (Response, error) {
	f.t.Helper()
	body, _ := json.Marshal(map[string]any{"answers": answers})
	return f.svc.SubmitResponse(context.Background(), Submission{
		ReviewID: r.ReviewID, ParticipantID: r.Participants[i].ParticipantID, By: "participant",
		Channel: ChannelAPI, Answers: answers, Body: body,
	})
}

func TestResubmissionReplacesAnswersAndKeepsAudit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.open(registered(t))
	if _, err := f.submit(r, 1, events.Answer{QuestionID: "team_performance.performance", Rating: ptr(3)}); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(f.clock.Now().Add(time.Hour))
	resp, err := f.submit(r, 1,
		events.Answer{QuestionID: "team_performance.performance", Rating: ptr(4)},
		events.Answer{QuestionID: "what_happened.timeline_accurate", Yes: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.SubmittedAt.Equal(f.clock.Now()) || len(resp.Answers) != 2 {
		t.Errorf("response = %+v", resp)
	}
	got, err := f.svc.Review(context.Background(), r.ReviewID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Responses) != 1 || len(got.Responses[0].Answers) != 2 || *got.Responses[0].Answers[0].Rating != 4 {
		t.Errorf("responses = %+v, want only the resubmission", got.Responses)
	}
	if got.Participants[1].SubmittedAt == nil || got.Participants[0].SubmittedAt != nil {
		t.Errorf("submitted_at not tracked per participant")
	}
	audit, err := f.svc.Submissions(context.Background(), r.ReviewID)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 2 || !strings.Contains(string(audit[0].Body), `"rating":3`) || !strings.Contains(string(audit[1].Body), `"rating":4`) {
		t.Errorf("audit log = %+v, want both submissions with their bodies", audit)
	}
}

func TestAnswerValidation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.open(registered(t))
	ok := events.Answer{QuestionID: "what_happened.account", Text: "We saw the alert."}
	cases := []struct {
		name   string
		answer events.Answer
		field  string
	}{
		{"unknown question", events.Answer{QuestionID: "nope", Text: "x"}, "answers[1].question_id"},
		{"rating out of range", events.Answer{QuestionID: "team_performance.performance", Rating: ptr(6)}, "answers[1].rating"},
		{"rating zero", events.Answer{QuestionID: "readiness_structure.readiness", Rating: ptr(0)}, "answers[1].rating"},
		{"wrong kind", events.Answer{QuestionID: "team_performance.performance", Text: "good"}, "answers[1].text"},
		{"missing yes", events.Answer{QuestionID: "business_information.prompt"}, "answers[1].yes"},
		{"choice not offered", events.Answer{QuestionID: "team_performance.procedures_followed", Choice: "sometimes"}, "answers[1].choice"},
		{"empty items", events.Answer{QuestionID: "training.needs", Items: []string{" "}}, "answers[1].items"},
		{"answered twice", ok, "answers[1].question_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.submit(r, 0, ok, c.answer)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("err = %v, want a validation error", err)
			}
			if !slices.ContainsFunc(verr.Problems, func(p httpapi.FieldError) bool { return p.Field == c.field }) {
				t.Errorf("problems = %+v, want one for %s", verr.Problems, c.field)
			}
		})
	}
	if got, _ := f.svc.Submissions(context.Background(), r.ReviewID); len(got) != 0 {
		t.Errorf("invalid submissions were stored: %d", len(got))
	}
}

func TestCompleteEmitsValidEventOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.open(registered(t))
	ctx := context.Background()
	if _, err := f.submit(r, 1,
		events.Answer{QuestionID: "preventive_measures.actions", Items: []string{"Enforce number matching", "Block auto-forwarding"}},
		events.Answer{QuestionID: "tools_resources.needed", Items: []string{"Mailbox rule alerting"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.submit(r, 2,
		events.Answer{QuestionID: "preventive_measures.actions", Items: []string{"enforce  number matching"}},
		events.Answer{QuestionID: "training.needs", Items: []string{"MFA fatigue awareness"}},
		events.Answer{QuestionID: "training.junior_lessons", Text: "Check inbox rules first."}); err != nil {
		t.Fatal(err)
	}

	bad := CompleteRequest{ActionItems: []events.ActionItem{
		{Key: "a", Title: "x", Category: "wishful"},
		{Key: "a", Title: "y", Category: events.CategoryTooling, Priority: "urgent", DueDate: "31.12.2026"},
	}}
	var verr *ValidationError
	if _, err := f.svc.Complete(ctx, r.ReviewID, bad); !errors.As(err, &verr) {
		t.Fatalf("invalid completion: %v, want a validation error", err)
	}
	for _, field := range []string{"action_items[0].category", "action_items[1].key", "action_items[1].priority", "action_items[1].due_date"} {
		if !slices.ContainsFunc(verr.Problems, func(p httpapi.FieldError) bool { return p.Field == field }) {
			t.Errorf("problems %+v lack %s", verr.Problems, field)
		}
	}
	_, err := f.svc.Complete(ctx, r.ReviewID, CompleteRequest{Facilitator: &events.Contact{Name: "X", Email: "not an address"}})
	if !errors.As(err, &verr) || verr.Problems[0].Field != "facilitator.email" {
		t.Errorf("bad facilitator e-mail: %v, want a validation error on facilitator.email", err)
	}

	f.clock.Set(f.clock.Now().Add(48 * time.Hour))
	done, err := f.svc.Complete(ctx, r.ReviewID, CompleteRequest{
		Summary:  "MFA fatigue let a phished password in.",
		Findings: []events.Finding{{Topic: "preventive_measures", Summary: "Push MFA without number matching is not enough."}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, a := range done.ActionItems {
		keys = append(keys, a.Key+":"+string(a.Category)+":"+a.Title)
	}
	want := []string{"preventive-1:preventive:Enforce number matching", "preventive-2:preventive:Block auto-forwarding",
		"tooling-1:tooling:Mailbox rule alerting", "training-1:training:MFA fatigue awareness"}
	if !slices.Equal(keys, want) {
		t.Errorf("derived action items = %q, want %q", keys, want)
	}
	if done.Facilitator.Name != "Kemal Yıldız" || len(done.Responses) != 2 || len(done.Questions) < 20 || !done.CompletedAt.Equal(f.clock.Now()) {
		t.Errorf("completed = facilitator %+v, %d responses, %d questions, at %v", done.Facilitator, len(done.Responses), len(done.Questions), done.CompletedAt)
	}
	emitted := f.outbox(events.TypeReviewCompleted) // validated against the schema
	if len(emitted) != 1 {
		t.Fatalf("review.completed events = %d, want 1", len(emitted))
	}
	var ev events.ReviewCompleted
	if err := json.Unmarshal(emitted[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Incident.Title != r.Title || len(ev.Incident.Timeline) == 0 || ev.ReviewID != r.ReviewID {
		t.Errorf("completed event lacks the full incident: %+v", ev.Incident)
	}

	if _, err := f.svc.Complete(ctx, r.ReviewID, CompleteRequest{}); !errors.Is(err, ErrCompleted) {
		t.Errorf("second completion: %v, want ErrCompleted", err)
	}
	if _, err := f.submit(r, 3, events.Answer{QuestionID: "what_happened.account", Text: "late"}); !errors.Is(err, ErrCompleted) {
		t.Errorf("answer after completion: %v, want ErrCompleted", err)
	}
	if n := len(f.outbox(events.TypeReviewCompleted)); n != 1 {
		t.Errorf("review.completed events = %d, want 1", n)
	}
}

func TestRemindersOncePerParticipantAndReason(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	e := registered(t)
	e.Incident.Severity = events.SeverityHigh // due 120h after closure
	e.Incident.Timestamps.ClosedAt = f.clock.Now()
	r := f.open(e)
	optional := registered(t)
	optional.Incident.Severity = events.SeverityLow
	f.open(optional)
	if _, err := f.submit(r, 0, events.Answer{QuestionID: "what_happened.account", Text: "done"}); err != nil {
		t.Fatal(err)
	}
	unanswered := len(r.Participants) - 1

	send := func(at time.Time, want int) {
		t.Helper()
		f.clock.Set(at)
		if n, err := f.svc.SendReminders(ctx); err != nil || n != want {
			t.Fatalf("reminders at %v: %d, %v; want %d", at, n, err, want)
		}
	}
	due := *r.DueAt
	send(due.Add(-25*time.Hour), 0)
	send(due.Add(-23*time.Hour), unanswered)
	send(due.Add(-time.Hour), 0)

	// Two replicas at once, past due: each overdue reminder goes out once.
	f.clock.Set(due.Add(time.Hour))
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i := range counts {
		wg.Go(func() {
			n, err := f.svc.SendReminders(ctx)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if counts[0]+counts[1] != unanswered {
		t.Errorf("overdue reminders = %v, want %d in total", counts, unanswered)
	}
	send(due.Add(48*time.Hour), 0)

	var reminders []events.ReviewReminder
	for _, b := range f.outbox(events.TypeReviewReminder) {
		var m events.ReviewReminder
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.Participant.ParticipantID == r.Participants[0].ParticipantID {
			t.Errorf("reminded %s, who answered", m.Participant.Name)
		}
		reminders = append(reminders, m)
	}
	if len(reminders) != 2*unanswered {
		t.Fatalf("reminder events = %d, want %d", len(reminders), 2*unanswered)
	}
	if reminders[0].Reason != events.ReminderDueSoon || reminders[len(reminders)-1].Reason != events.ReminderOverdue {
		t.Errorf("reasons = %s ... %s", reminders[0].Reason, reminders[len(reminders)-1].Reason)
	}
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	p, err := ParsePolicy("critical=24h, low=optional, exercise=48h")
	if err != nil {
		t.Fatal(err)
	}
	if *p.Due[events.SeverityCritical] != 24*time.Hour || p.Due[events.SeverityLow] != nil || *p.Exercise != 48*time.Hour {
		t.Errorf("policy = %s", p)
	}
	for _, bad := range []string{"severe=24h", "high=soon", "high", "high=-1h"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", bad)
		}
	}
}

func TestInviteTokens(t *testing.T) {
	t.Parallel()
	now := time.Now()
	rid, pid := uuid.NewString(), uuid.NewString()
	tok := testInvites.Token(rid, pid, 0, now.Add(time.Hour))
	if got, gen, err := testInvites.Verify(rid, tok, now); err != nil || got != pid || gen != 0 {
		t.Fatalf("Verify = %q, %d, %v", got, gen, err)
	}
	tok3 := testInvites.Token(rid, pid, 3, now.Add(time.Hour))
	if got, gen, err := testInvites.Verify(rid, tok3, now); err != nil || got != pid || gen != 3 || tok3 == tok {
		t.Fatalf("Verify of generation 3 = %q, %d, %v", got, gen, err)
	}
	other := Invites{Secret: []byte("another-secret-0123456789")}
	verify := func(iv Invites, rid, tok string, at time.Time) error {
		_, _, err := iv.Verify(rid, tok, at)
		return err
	}
	for name, check := range map[string]func() error{
		"other review":   func() error { return verify(testInvites, uuid.NewString(), tok, now) },
		"expired":        func() error { return verify(testInvites, rid, tok, now.Add(2*time.Hour)) },
		"other secret":   func() error { return verify(other, rid, tok, now) },
		"tampered":       func() error { return verify(testInvites, rid, tok[:10]+string(tok[10]^1)+tok[11:], now) },
		"generation cut": func() error { return verify(testInvites, rid, tok3[:len(tok)], now) },
		"not a token":    func() error { return verify(testInvites, rid, "hello", now) },
		"empty":          func() error { return verify(testInvites, rid, "", now) },
	} {
		if err := check(); !errors.Is(err, ErrInvalidInvite) {
			t.Errorf("%s: %v, want ErrInvalidInvite", name, err)
		}
	}
}

func TestMovedDueDateRemindsAgain(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	e := registered(t)
	e.Incident.Severity = events.SeverityHigh // due 120h after closure
	e.Incident.Timestamps.ClosedAt = f.clock.Now()
	r := f.open(e)
	n := len(r.Participants)
	send := func(at time.Time, want int) {
		t.Helper()
		f.clock.Set(at)
		if got, err := f.svc.SendReminders(ctx); err != nil || got != want {
			t.Fatalf("reminders at %v: %d, %v; want %d", at, got, err, want)
		}
	}
	first := *r.DueAt
	send(first.Add(time.Hour), n) // overdue
	// The ticket is reopened and closed again two days later: the due date moves.
	e.Revision++
	e.Incident.Timestamps.ClosedAt = first.Add(48 * time.Hour)
	f.handle(e)
	moved := *f.only(e.IncidentID).DueAt
	if !moved.After(first) {
		t.Fatalf("due date %v did not move after %v", moved, first)
	}
	send(moved.Add(-time.Hour), n) // due soon, for the new date
	send(moved.Add(time.Hour), n)  // overdue again, for the new date
	send(moved.Add(2*time.Hour), 0)
}
