package report_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/report/custody"
	"github.com/afteraction/afteraction/services/report/pades"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
)

func TestParseRetentionPolicy(t *testing.T) {
	t.Parallel()
	closed := time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)
	policy := "default=3y; Category:Malware=5y;severity:critical=7y;category:fraud=indefinite;severity:low=18mo;category:phish=6w"
	p, err := report.ParseRetentionPolicy(policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		category string
		severity events.Severity
		rule     string
		until    time.Time // zero: indefinite
	}{
		{"", events.SeverityMedium, "default=3y", time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)},
		{"malware", events.SeverityMedium, "category:malware=5y", time.Date(2029, 3, 1, 10, 0, 0, 0, time.UTC)},
		{"MALWARE ", events.SeverityMedium, "category:malware=5y", time.Date(2029, 3, 1, 10, 0, 0, 0, time.UTC)},
		// the longest matching rule wins, whichever is written first
		{"malware", events.SeverityCritical, "severity:critical=7y", time.Date(2031, 3, 1, 10, 0, 0, 0, time.UTC)},
		{"fraud", events.SeverityCritical, "category:fraud=indefinite", time.Time{}},
		// a shorter rule never shortens what the default keeps
		{"", events.SeverityLow, "default=3y", time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)},
		{"phish", events.SeverityLow, "default=3y", time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)},
	} {
		r := p.For(tc.category, tc.severity, closed)
		if r.Rule != tc.rule || !r.Until.Equal(tc.until) || r.Indefinite != tc.until.IsZero() {
			t.Errorf("For(%q, %s) = %+v, want rule %s until %s", tc.category, tc.severity, r, tc.rule, tc.until)
		}
	}
	if got := p.String(); got != "default=3y;category:malware=5y;severity:critical=7y;category:fraud=indefinite;severity:low=18mo;category:phish=6w" {
		t.Errorf("String() = %q", got)
	}

	only, err := report.ParseRetentionPolicy("category:malware=30d")
	if err != nil {
		t.Fatal(err)
	}
	if r := only.For("other", events.SeverityHigh, closed); !r.Indefinite || r.Rule != "" {
		t.Errorf("no matching rule: %+v, want indefinite", r)
	}
	for _, s := range []string{"", " ; ", "category:fraud=indefinite"} {
		p, err := report.ParseRetentionPolicy(s)
		if err != nil || p.Enabled() {
			t.Errorf("%q: enabled %v, err %v; want a policy that never expires anything", s, p.Enabled(), err)
		}
	}

	for _, tc := range []struct{ policy, want string }{
		{"default=3y;category:malware", `rule 2 "category:malware": want <match>=<period>`},
		{"default=3x", `rule 1 "default=3x": period "3x": unknown unit "x"`},
		{"default=3m", `unit m is ambiguous: write mo for months`},
		{"default=y", `rule 1 "default=y": period "y": want a whole number and a unit`},
		{"default=0d", `want a whole number of at least 1`},
		{"default=101y", `longer than 100 years`},
		{"severity:urgent=5y", `rule 1 "severity:urgent=5y": unknown severity "urgent"`},
		{"category:=5y", `"category:" needs a category name`},
		{"owner:bob=5y", `unknown match "owner:bob"`},
		{"default:x=5y", `"default" takes no value`},
		{"default=3y;DEFAULT=5y", `rule 2 "DEFAULT=5y": default is given twice`},
		{"category:Malware=3y;category:malware=5y", `rule 2 "category:malware=5y": category:malware is given twice`},
	} {
		_, err := report.ParseRetentionPolicy(tc.policy)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to say %q", tc.policy, err, tc.want)
		}
	}

	_, err = report.LoadConfig(func(k string) string {
		return map[string]string{"REPORT_DEV_SIGNING_KEY": "true", "EVIDENCE_RETENTION": "default=3y;severity:urgent=5y"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), `EVIDENCE_RETENTION: rule 2 "severity:urgent=5y"`) {
		t.Errorf("LoadConfig: err = %v, want it to name EVIDENCE_RETENTION and the bad rule", err)
	}
}

// registerIncident puts an incident into the read model, as incident.registered does.
func registerIncident(t *testing.T, f *fixture, category string, severity events.Severity, closedAt time.Time) string {
	t.Helper()
	id := uuid.NewString()
	err := f.store.ApplyIncidentRegistered(context.Background(), "registered-"+id, events.IncidentRegistered{
		IncidentID: id, Revision: 1, Source: "jira", ExternalID: id, RegisteredAt: closedAt,
		Incident: events.IncidentClosed{Source: "jira", ExternalID: id, Title: "t", Severity: severity, Category: category,
			Timestamps: events.Timestamps{ClosedAt: closedAt}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// publishReport publishes a signed report version for the example review
// moved to a new incident of category, and returns the incident id.
func publishReport(t *testing.T, f *fixture, category string) string {
	t.Helper()
	rv := exampleReview(t)
	rv.IncidentID, rv.Incident.Category = uuid.NewString(), category
	if err := f.svc.HandleReviewCompleted(context.Background(), message("completed-"+rv.IncidentID), rv); err != nil {
		t.Fatal(err)
	}
	return rv.IncidentID
}

// flat joins the lines pdftotext wrapped, so phrases can be found whole.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

func latestPDF(t *testing.T, f *fixture, incidentID string) []byte {
	t.Helper()
	_, pdf, err := f.store.VersionPDF(context.Background(), report.ReportIDFor(incidentID), 1)
	if err != nil {
		t.Fatal(err)
	}
	return pdf
}

func custodyActions(t *testing.T, f *fixture, incidentID string) []string {
	t.Helper()
	entries, err := f.store.Custody(context.Background(), report.ReportIDFor(incidentID))
	if err != nil {
		t.Fatal(err)
	}
	if c := custody.Verify(entries); !c.Valid {
		t.Errorf("custody chain of %s broken: %s", incidentID, c.Reason)
	}
	actions := make([]string, len(entries))
	for i, e := range entries {
		actions[i] = e.Action
	}
	return actions
}

// TestEvidenceExpiresPastRetentionExceptUnderHold runs the expiry with a
// fixed clock over incidents past, under and not yet at their retention date.
func TestEvidenceExpiresPastRetentionExceptUnderHold(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	policy, err := report.ParseRetentionPolicy("default=3y;category:malware=5y;severity:critical=7y")
	if err != nil {
		t.Fatal(err)
	}
	f.svc.RetainWith(policy)
	closed := exampleReview(t).Incident.Timestamps.ClosedAt.UTC()
	clock := servicetest.NewClock(closed.AddDate(6, 0, 0))
	ev := &report.Evidence{Store: f.store, Policy: policy, Log: zaptest.NewLogger(t), Now: clock.Now, Batch: 2}

	held := publishReport(t, f, "")                                                         // default=3y: due, but put under hold below
	past := publishReport(t, f, "malware")                                                  // category:malware=5y: due a year ago
	critical := registerIncident(t, f, "", events.SeverityCritical, closed)                 // severity:critical=7y wins over default=3y: due in a year
	recent := registerIncident(t, f, "", events.SeverityLow, clock.Now().AddDate(-1, 0, 0)) // default=3y: due in two years

	if _, changed, err := ev.PlaceHold(ctx, held, "Dana Reyes, Legal", "Litigation hold, matter 2026-117"); err != nil || !changed {
		t.Fatalf("place hold: changed %v, err %v", changed, err)
	}
	if _, changed, err := ev.PlaceHold(ctx, held, "Dana Reyes, Legal", "again"); err != nil || changed {
		t.Fatalf("place the same hold again: changed %v, err %v; want no change", changed, err)
	}
	if _, _, err := ev.PlaceHold(ctx, uuid.NewString(), "x", "y"); !errors.Is(err, report.ErrNotFound) {
		t.Errorf("hold on an unknown incident: err = %v, want ErrNotFound", err)
	}

	n, err := ev.Expire(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want only the incident past its date and not held", n, err)
	}
	st, err := ev.Status(ctx, past)
	if err != nil {
		t.Fatal(err)
	}
	wantUntil := closed.AddDate(5, 0, 0)
	if len(st.Purges) != 1 || st.Purges[0].Rule != "category:malware=5y" || !st.Purges[0].RetainUntil.Equal(wantUntil) ||
		!st.Retention.Until.Equal(wantUntil) {
		t.Fatalf("status of the expired incident: %+v", st)
	}
	for _, id := range []string{held, critical, recent} {
		st, err := ev.Status(ctx, id)
		if err != nil || len(st.Purges) != 0 {
			t.Errorf("incident %s: purges %+v (err %v), want none", id, st.Purges, err)
		}
	}
	outbox := servicetest.Outbox(t, f.pool, events.TypeEvidenceExpired)
	if len(outbox) != 1 {
		t.Fatalf("evidence.expired events queued: %d, want 1", len(outbox))
	}
	e, err := events.Decode[events.EvidenceExpired](events.TypeEvidenceExpired, outbox[0])
	if err != nil {
		t.Fatalf("queued event does not match its schema: %v", err)
	}
	if e.IncidentID != past || e.Rule != "category:malware=5y" || !e.RetainUntil.Equal(wantUntil) || e.IncidentRevision != 1 {
		t.Errorf("event = %+v", e)
	}
	if n, err := ev.Expire(ctx); err != nil || n != 0 {
		t.Errorf("second pass expired %d (%v), want 0: an expiry is decided once", n, err)
	}

	// The signed report outlives its evidence: unchanged, authentic, its
	// custody chain intact and telling what happened.
	pdf := latestPDF(t, f, past)
	if res := pades.Verify(pdf, padestest.Trust(f.pdfSigner)); res.Status != pades.Authentic {
		t.Errorf("report of the expired incident: %s (%s), want authentic", res.Status, res.Reason)
	}
	padestest.RequireValid(t, pdf)
	if got := custodyActions(t, f, past); got[len(got)-1] != custody.EvidenceExpired {
		t.Errorf("custody of the expired incident: %v, want evidence_expired last", got)
	}
	text := flat(padestest.Text(t, pdf))
	for _, want := range []string{"Evidence retained until " + wantUntil.Format(time.DateOnly) + " (rule category:malware=5y",
		"Legal hold none when this version was rendered"} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q", want)
		}
	}

	// Lifting the hold lets the next pass expire the evidence.
	if _, err := ev.LiftHold(ctx, held, "Dana Reyes, Legal", "Matter 2026-117 settled"); err != nil {
		t.Fatal(err)
	}
	if _, err := ev.LiftHold(ctx, held, "Dana Reyes, Legal", "again"); !errors.Is(err, report.ErrHoldState) {
		t.Errorf("lift a hold not in force: err = %v, want ErrHoldState", err)
	}
	if n, err := ev.Expire(ctx); err != nil || n != 1 {
		t.Fatalf("after the hold was lifted: Expire = %d, %v; want 1", n, err)
	}
	st, err = ev.Status(ctx, held)
	if err != nil {
		t.Fatal(err)
	}
	if st.Hold != nil || len(st.History) != 2 || st.History[0].Action != report.HoldPlaced || st.History[1].Reason != "Matter 2026-117 settled" ||
		len(st.Purges) != 1 || st.Purges[0].Rule != "default=3y" {
		t.Errorf("status after lift and expiry: %+v", st)
	}
	want := []string{custody.Rendered, custody.Published, custody.HoldPlaced, custody.HoldLifted, custody.EvidenceExpired}
	if got := custodyActions(t, f, held); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("custody of the held incident: %v, want %v", got, want)
	}

	// A year on, the critical incident is due too; the recent one still is not.
	clock.Advance(366 * 24 * time.Hour)
	if n, err := ev.Expire(ctx); err != nil || n != 1 {
		t.Errorf("a year later: Expire = %d, %v; want the critical incident", n, err)
	}

	for _, stmt := range []string{`UPDATE legal_holds SET action = 'placed'`, `DELETE FROM legal_holds`, `DELETE FROM purges`} {
		if _, err := f.pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want the append-only trigger to refuse it", stmt, err)
		}
	}
}

// TestVersionRenderedUnderHoldSaysSo: the hold in force at render time is
// printed in the version.
func TestVersionRenderedUnderHoldSaysSo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	ev := &report.Evidence{Store: f.store, Log: zaptest.NewLogger(t)}
	if err := f.store.ApplyIncidentRegistered(ctx, "registered", events.IncidentRegistered{IncidentID: rv.IncidentID, Revision: 1,
		Source: rv.Incident.Source, ExternalID: rv.Incident.ExternalID, RegisteredAt: rv.OpenedAt, Incident: rv.Incident}); err != nil {
		t.Fatal(err)
	}
	st, _, err := ev.PlaceHold(ctx, rv.IncidentID, "Dana Reyes, Legal", "Regulator inquiry")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.HandleReviewCompleted(ctx, message("e1"), rv); err != nil {
		t.Fatal(err)
	}
	text := flat(padestest.Text(t, latestPDF(t, f, rv.IncidentID)))
	for _, want := range []string{"Evidence retained until indefinitely: no retention rule applies",
		"Legal hold in force since " + st.Hold.At.Format(time.DateOnly)} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q", want)
		}
	}
}

// TestRunExpiresEvidenceAndServesHolds runs the service as its runtime role:
// the evidence of a reported incident expires (the event goes out, the
// report still verifies), and the hold API answers compliance only.
func TestRunExpiresEvidenceAndServesHolds(t *testing.T) {
	t.Parallel()
	r, _ := startAsServiceRole(t, map[string]string{"EVIDENCE_RETENTION": "default=1d", "RETENTION_INTERVAL": "200ms"})
	rv := exampleReview(t)
	env, err := events.New(events.TypeReviewCompleted, "afteraction/review", rv.IncidentID, rv)
	if err != nil {
		t.Fatal(err)
	}
	r.publish(env, env.ID)
	servicetest.Eventually(t, "evidence.expired", func() bool {
		return bustest.SubjectCount(t, r.nats, bus.StreamAfteraction, events.SubjectEvidenceExpired) == 1
	})
	raw := bustest.StreamMessages(t, r.nats, bus.StreamAfteraction, events.SubjectEvidenceExpired)[0]
	e, err := events.Decode[events.EvidenceExpired](events.TypeEvidenceExpired, raw.Data)
	if err != nil || e.IncidentID != rv.IncidentID || e.Rule != "default=1d" {
		t.Fatalf("evidence.expired = %+v, %v", e, err)
	}

	reportID := report.ReportIDFor(rv.IncidentID)
	resp, pdf := r.do(http.MethodGet, "/v1/reports/"+reportID+"/pdf", nil, true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download after expiry: %d", resp.StatusCode)
	}
	padestest.RequireValid(t, pdf)
	if res := r.verify(pdf); !res.Valid {
		t.Errorf("verify after expiry: %+v", res)
	}

	path := "/v1/incidents/" + rv.IncidentID + "/legal-hold"
	hold := func(method, bearer, body string) (int, report.EvidenceStatus, string) {
		t.Helper()
		resp, b := servicetest.Do(t, method, r.base+path, bearer, "application/json", []byte(body))
		var st report.EvidenceStatus
		if resp.StatusCode < 300 {
			if err := json.Unmarshal(b, &st); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, st, string(b)
	}
	if code, _, _ := hold(http.MethodPut, "facilitator-token-1234", `{"by": "x", "reason": "y"}`); code != http.StatusForbidden {
		t.Errorf("facilitator placing a hold: %d, want 403", code)
	}
	if code, _, body := hold(http.MethodPut, token, `{"by": "Dana Reyes"}`); code != http.StatusUnprocessableEntity || !strings.Contains(body, `"reason"`) {
		t.Errorf("hold without a reason: %d %s, want 422 naming reason", code, body)
	}
	code, st, body := hold(http.MethodPut, token, `{"by": "Dana Reyes, Legal", "reason": "Litigation hold"}`)
	if code != http.StatusCreated || st.Hold == nil || !strings.HasPrefix(st.Hold.By, "Dana Reyes, Legal (via compliance") ||
		len(st.Purges) != 1 {
		t.Errorf("place hold: %d %s, want 201 with the hold and the expiry already decided", code, body)
	}
	if code, st, _ := hold(http.MethodGet, token, ""); code != http.StatusOK || st.Hold == nil {
		t.Errorf("get hold: %d %+v", code, st)
	}
	if code, st, _ := hold(http.MethodDelete, token, `{"by": "Dana Reyes, Legal", "reason": "settled"}`); code != http.StatusOK || st.Hold != nil {
		t.Errorf("lift hold: %d %+v", code, st)
	}
	if code, _, _ := hold(http.MethodDelete, token, `{"by": "Dana Reyes, Legal", "reason": "settled"}`); code != http.StatusConflict {
		t.Errorf("lift a hold not in force: %d, want 409", code)
	}
	resp, b := r.do(http.MethodGet, "/v1/reports/"+reportID+"/custody", nil, true)
	var view report.CustodyView
	if err := json.Unmarshal(b, &view); err != nil || resp.StatusCode != http.StatusOK || !view.Check.Valid {
		t.Fatalf("custody: %d %s", resp.StatusCode, b)
	}
	var actions []string
	for _, e := range view.Entries {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, ","); !strings.Contains(got, "evidence_expired") || !strings.HasSuffix(got, "hold_placed,hold_lifted") {
		t.Errorf("custody actions %s, want the expiry and the hold placed and lifted", got)
	}
}
