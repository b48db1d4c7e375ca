package review

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
)

// amendedEvent is what a consumer sees of a review.completed emitted by an amendment.
type amendedEvent struct {
	events.ReviewCompleted
	Amendment       int    `json:"amendment"`
	AmendmentReason string `json:"amendment_reason"`
}

func hasProblem(err error, field string) bool {
	var verr *ValidationError
	return errors.As(err, &verr) && slices.ContainsFunc(verr.Problems, func(p httpapi.FieldError) bool { return p.Field == field })
}

func actionKeys(items []events.ActionItem) []string {
	keys := make([]string, 0, len(items))
	for _, a := range items {
		keys = append(keys, a.Key)
	}
	return keys
}

func TestAmendOnlyCompletedReviews(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	r := f.open(registered(t))
	req := AmendRequest{Reason: "cost corrected", CompleteRequest: CompleteRequest{Summary: "x"}}
	if _, err := f.svc.Amend(ctx, r.ReviewID, "role:facilitator", req, nil); !errors.Is(err, ErrNotCompleted) {
		t.Errorf("amending an open review: %v, want ErrNotCompleted", err)
	}
	if _, err := f.svc.Amend(ctx, "0195b4e0-0000-7000-8000-000000000000", "role:facilitator", req, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("amending an unknown review: %v, want ErrNotFound", err)
	}
	if got, _ := f.svc.Amendments(ctx, r.ReviewID); len(got) != 0 || len(f.outbox(events.TypeReviewCompleted)) != 0 {
		t.Errorf("a refused amendment left %d amendments or an event", len(got))
	}
}

func TestAmendValidation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	r := f.open(registered(t))
	items := []events.ActionItem{
		{Key: "mfa", Title: "Enforce number matching", Category: events.CategoryPreventive},
		{Key: "rules", Title: "Alert on forwarding rules", Category: events.CategoryDetection},
	}
	if _, err := f.svc.Complete(ctx, r.ReviewID, CompleteRequest{Summary: "s", ActionItems: items}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		req   AmendRequest
		field string
	}{
		{"reason missing", AmendRequest{CompleteRequest: CompleteRequest{Summary: "s"}}, "reason"},
		{"reason blank", AmendRequest{Reason: " \n\t", CompleteRequest: CompleteRequest{Summary: "s"}}, "reason"},
		{"reason too long", AmendRequest{Reason: strings.Repeat("x", 2001)}, "reason"},
		{"finding without summary", AmendRequest{Reason: "r", CompleteRequest: CompleteRequest{
			Findings: []events.Finding{{Topic: "training"}}}}, "findings[0].summary"},
		{"bad category", AmendRequest{Reason: "r", CompleteRequest: CompleteRequest{
			ActionItems: append(slices.Clone(items), events.ActionItem{Key: "new", Title: "t", Category: "wishful"})}}, "action_items[2].category"},
		{"duplicate key", AmendRequest{Reason: "r", CompleteRequest: CompleteRequest{
			ActionItems: append(slices.Clone(items), items[0])}}, "action_items[2].key"},
		{"existing action item dropped", AmendRequest{Reason: "r", CompleteRequest: CompleteRequest{
			ActionItems: items[:1]}}, "action_items"},
		{"bad facilitator e-mail (schema)", AmendRequest{Reason: "r", CompleteRequest: CompleteRequest{
			Facilitator: &events.Contact{Name: "X", Email: "not an address"}}}, "facilitator.email"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := f.svc.Amend(ctx, r.ReviewID, "role:facilitator", c.req, nil); !hasProblem(err, c.field) {
				t.Errorf("err = %v, want a validation error on %s", err, c.field)
			}
		})
	}
	if got, _ := f.svc.Amendments(ctx, r.ReviewID); len(got) != 0 {
		t.Errorf("invalid amendments were stored: %d", len(got))
	}
	if n := len(f.outbox(events.TypeReviewCompleted)); n != 1 {
		t.Errorf("review.completed events = %d, want only the completion", n)
	}
}

// TestAmendAfterRevisionEmitsNewCompletion is the correction path: an incident
// revised after its review was completed makes the review stale; an amendment
// emits a second review.completed with the latest incident, every answer and
// the amended outcome, keeps existing action item keys, and is numbered and
// audited.
func TestAmendAfterRevisionEmitsNewCompletion(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	e := registered(t)
	r := f.open(e)
	if _, err := f.submit(r, 1, events.Answer{QuestionID: "what_happened.account", Text: "Saw the alert at 09:12."}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.submit(r, 2, events.Answer{QuestionID: "team_performance.performance", Rating: ptr(4)}); err != nil {
		t.Fatal(err)
	}
	items := []events.ActionItem{
		{Key: "mfa", Title: "Enforce number matching", Category: events.CategoryPreventive},
		{Key: "rules", Title: "Alert on forwarding rules", Category: events.CategoryDetection},
	}
	completedAt := f.clock.Now()
	first, err := f.svc.Complete(ctx, r.ReviewID, CompleteRequest{
		Summary: "Original summary.", Findings: []events.Finding{{Topic: "what_happened", Summary: "No money was lost."}},
		ActionItems: items,
	})
	if err != nil {
		t.Fatal(err)
	}

	// The ticket is reopened and closed again with the final cost corrected.
	e.Revision = 2
	e.Incident.Title = e.Incident.Title + " (cost corrected)"
	e.Incident.Severity = events.SeverityCritical
	if _, out := f.handle(e); out != OutcomeBehind {
		t.Fatalf("revision 2 of a completed review: %s, want %s", out, OutcomeBehind)
	}
	if got := f.only(e.IncidentID); !got.Stale || got.IncidentRevision != 2 || got.Amendment != 0 {
		t.Fatalf("after revision 2: stale %v, revision %d, amendment %d; want stale at revision 2", got.Stale, got.IncidentRevision, got.Amendment)
	}

	f.clock.Set(completedAt.Add(72 * time.Hour))
	withNew := append(slices.Clone(items), events.ActionItem{Key: "vendor-callback", Title: "Call back before bank-detail changes",
		Category: events.CategoryProcess, Priority: events.PriorityCritical})
	amended, err := f.svc.Amend(ctx, r.ReviewID, "role:facilitator", AmendRequest{
		Reason: "  Final cost corrected upstream; one payment was lost after all.  ",
		CompleteRequest: CompleteRequest{
			Summary:     "Amended summary.",
			Findings:    []events.Finding{{Topic: "what_happened", Summary: "One fraudulent payment of EUR 18,450 went out."}},
			ActionItems: withNew,
		},
	}, []byte(`{"reason":"as received"}`))
	if err != nil {
		t.Fatal(err)
	}
	if amended.Amendment != 1 || amended.AmendmentReason != "Final cost corrected upstream; one payment was lost after all." {
		t.Errorf("amendment %d %q, want 1 with the trimmed reason", amended.Amendment, amended.AmendmentReason)
	}

	emitted := f.outbox(events.TypeReviewCompleted) // each validated against the schema
	if len(emitted) != 2 {
		t.Fatalf("review.completed events = %d, want 2 (completion and amendment)", len(emitted))
	}
	var ev amendedEvent
	if err := json.Unmarshal(emitted[1], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Amendment != 1 || ev.AmendmentReason != amended.AmendmentReason {
		t.Errorf("event amendment %d %q, want 1 and the reason", ev.Amendment, ev.AmendmentReason)
	}
	if ev.IncidentRevision != 2 || ev.Incident.Title != e.Incident.Title || ev.Incident.Severity != events.SeverityCritical {
		t.Errorf("event incident = revision %d %q %s, want the latest snapshot", ev.IncidentRevision, ev.Incident.Title, ev.Incident.Severity)
	}
	if len(ev.Responses) != 2 || len(ev.Questions) < 20 || ev.Facilitator != first.Facilitator {
		t.Errorf("event has %d responses, %d questions, facilitator %+v; want all answers and the completion's facilitator",
			len(ev.Responses), len(ev.Questions), ev.Facilitator)
	}
	if ev.Summary != "Amended summary." || len(ev.Findings) != 1 || !strings.Contains(ev.Findings[0].Summary, "18,450") {
		t.Errorf("event outcome = %q %+v, want the amended one", ev.Summary, ev.Findings)
	}
	if got, want := actionKeys(ev.ActionItems), []string{"mfa", "rules", "vendor-callback"}; !slices.Equal(got, want) {
		t.Errorf("event action item keys = %q, want %q (existing keys kept, one new)", got, want)
	}
	if !ev.CompletedAt.Equal(completedAt) {
		t.Errorf("event completed_at = %v, want the original completion %v", ev.CompletedAt, completedAt)
	}

	got := f.only(e.IncidentID)
	if got.Stale || got.Amendment != 1 || *got.CompletedIncidentRevision != 2 || got.Summary != "Amended summary." ||
		len(got.ActionItems) != 3 || got.Status != "completed" {
		t.Errorf("review after amendment: stale %v, amendment %d, completed revision %d, summary %q, %d action items",
			got.Stale, got.Amendment, *got.CompletedIncidentRevision, got.Summary, len(got.ActionItems))
	}

	// A second amendment without action items keeps the current ones.
	f.clock.Set(completedAt.Add(96 * time.Hour))
	second, err := f.svc.Amend(ctx, r.ReviewID, "role:admin", AmendRequest{
		Reason:          "Finding wording corrected.",
		CompleteRequest: CompleteRequest{Summary: "Amended again.", Findings: ev.Findings},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if second.Amendment != 2 || !slices.Equal(actionKeys(second.ActionItems), []string{"mfa", "rules", "vendor-callback"}) {
		t.Errorf("second amendment = %d with %q, want 2 keeping the action items", second.Amendment, actionKeys(second.ActionItems))
	}

	rows, err := f.pool.Query(ctx, `SELECT event_id FROM outbox WHERE ce_type = $1 ORDER BY id`, events.TypeReviewCompleted)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if len(ids) != 3 || ids[0] == ids[1] || ids[1] == ids[2] {
		t.Fatalf("review.completed event ids = %q, want three distinct", ids)
	}

	log, err := f.svc.Amendments(ctx, r.ReviewID)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 {
		t.Fatalf("amendment log = %d entries, want 2", len(log))
	}
	if a := log[0]; a.Number != 1 || a.AmendedBy != "role:facilitator" || a.EventID != ids[1] || a.IncidentRevision != 2 ||
		!a.AmendedAt.Equal(completedAt.Add(72*time.Hour)) || a.Reason != amended.AmendmentReason || string(a.Body) != `{"reason":"as received"}` {
		t.Errorf("amendment 1 = %+v", a)
	}
	if a := log[1]; a.Number != 2 || a.AmendedBy != "role:admin" || a.EventID != ids[2] || !strings.Contains(string(a.Body), "Finding wording corrected.") {
		t.Errorf("amendment 2 = %+v", a)
	}
	detail, err := f.svc.Review(ctx, r.ReviewID)
	if err != nil {
		t.Fatal(err)
	}
	if len(detail.Amendments) != 2 || detail.Amendment != 2 {
		t.Errorf("GET review shows %d amendments, latest %d; want 2", len(detail.Amendments), detail.Amendment)
	}
}
