package report_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
)

// secondReview is a malware review of another incident, closed in April.
func secondReview(t *testing.T) events.ReviewCompleted {
	t.Helper()
	rv := exampleReview(t)
	rv.ReviewID = "rev-malware"
	rv.IncidentID = "0195a5d0-1c22-7b00-8e31-5b7d9c0e2a01"
	rv.Summary = "Ransomware encrypted the build farm file share; restored from immutable backups."
	rv.Incident.Title = "Ransomware on the build farm"
	rv.Incident.Category, rv.Incident.Subcategory, rv.Incident.Severity = "malware", "ransomware", events.SeverityCritical
	rv.Incident.Tags = []string{"Ransomware"}
	rv.Incident.AffectedAssets = []events.Asset{{Name: "build-fs-01", Kind: "host"}}
	closed := time.Date(2026, 4, 10, 12, 0, 0, 0, time.UTC)
	rv.Incident.Timestamps = events.Timestamps{StartedAt: ptr(closed.Add(-48 * time.Hour)), ClosedAt: closed}
	rv.Findings = []events.Finding{{Summary: "Backups were immutable and restored in six hours."}}
	rv.Responses = nil
	rv.CompletedAt = closed.Add(72 * time.Hour)
	return rv
}

func ptr[T any](v T) *T { return &v }

func TestReviewFactsAndLibrarySearch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	reg := events.IncidentRegistered{IncidentID: rv.IncidentID, Revision: rv.IncidentRevision, Source: "jira", ExternalID: "X",
		RegisteredAt: rv.Incident.Timestamps.ClosedAt, Incident: rv.Incident}
	if err := f.store.ApplyIncidentRegistered(ctx, "inc-1", reg); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.HandleReviewCompleted(ctx, message("rv-1"), rv); err != nil {
		t.Fatal(err)
	}
	rv2 := secondReview(t)
	if err := f.svc.HandleReviewCompleted(ctx, message("rv-2"), rv2); err != nil {
		t.Fatal(err)
	}

	incidents, _, err := f.store.ProgrammeFacts(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(incidents) != 2 {
		t.Fatalf("facts = %+v, want 2 incidents", incidents)
	}
	bec := incidents[0]
	ts := rv.Incident.Timestamps
	if bec.IncidentID != rv.IncidentID || bec.Subcategory != "business_email_compromise" ||
		bec.ContainedAt == nil || !bec.ContainedAt.Equal(*ts.ContainedAt) || bec.RecoveredAt == nil || !bec.RecoveredAt.Equal(*ts.RecoveredAt) ||
		bec.ReviewCompletedAt == nil || !bec.ReviewCompletedAt.Equal(rv.CompletedAt) {
		t.Errorf("facts of %s = %+v", rv.IncidentID, bec)
	}
	// The example's three participants rated team_performance 4, 5 and 3.
	if got := bec.Ratings["team_performance"]; got.Sum != 12 || got.Count != 3 {
		t.Errorf("ratings = %+v, want team_performance 12/3", bec.Ratings)
	}

	search := func(q report.LibraryQuery) []string {
		t.Helper()
		entries, err := f.store.SearchLibrary(ctx, q)
		if err != nil {
			t.Fatalf("search %+v: %v", q, err)
		}
		ids := make([]string, len(entries))
		for i, e := range entries {
			ids[i] = e.IncidentID
		}
		return ids
	}
	apr1 := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	both := []string{rv2.IncidentID, rv.IncidentID} // newest closure first
	for _, tc := range []struct {
		name string
		q    report.LibraryQuery
		want []string
	}{
		{"everything", report.LibraryQuery{}, both},
		{"title word", report.LibraryQuery{Text: "ransomware"}, []string{rv2.IncidentID}},
		{"finding phrase", report.LibraryQuery{Text: `"number matching"`}, []string{rv.IncidentID}},
		{"lesson from an answer", report.LibraryQuery{Text: "suspicious button"}, []string{rv.IncidentID}},
		{"stemmed summary word", report.LibraryQuery{Text: "restoring backup"}, []string{rv2.IncidentID}},
		{"no match", report.LibraryQuery{Text: "earthquake"}, nil},
		{"category", report.LibraryQuery{Category: "Phishing"}, []string{rv.IncidentID}},
		{"severity", report.LibraryQuery{Severity: "critical"}, []string{rv2.IncidentID}},
		{"tag any case", report.LibraryQuery{Tag: "MFA-Fatigue"}, []string{rv.IncidentID}},
		{"asset name", report.LibraryQuery{Asset: "exchange online"}, []string{rv.IncidentID}},
		{"asset identifier", report.LibraryQuery{Asset: "build-fs-01"}, []string{rv2.IncidentID}},
		{"from", report.LibraryQuery{From: &apr1}, []string{rv2.IncidentID}},
		{"to", report.LibraryQuery{To: &apr1}, []string{rv.IncidentID}},
		{"text and filter disagree", report.LibraryQuery{Text: "ransomware", Category: "phishing"}, nil},
		{"limit", report.LibraryQuery{Limit: 1}, []string{rv2.IncidentID}},
	} {
		if got := search(tc.q); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	entries, err := f.store.SearchLibrary(ctx, report.LibraryQuery{Text: "mfa"})
	if err != nil || len(entries) != 1 {
		t.Fatalf("search mfa: %v %+v", err, entries)
	}
	e := entries[0]
	if e.ReportID != report.ReportIDFor(rv.IncidentID) || e.LatestVersion != 1 || e.Rank <= 0 ||
		!strings.Contains(e.Lessons, "Look-alike domain") || !strings.Contains(e.Findings, "number matching") ||
		e.DownloadPath != "/v1/reports/"+e.ReportID+"/versions/1/pdf" {
		t.Errorf("entry = %+v", e)
	}

	// An amendment replaces the entry; the original delivered again later does not undo it.
	amended := exampleReview(t)
	amended.Amendment, amended.AmendmentReason = 1, "summary corrected"
	amended.AmendedAt = ptr(rv.CompletedAt.Add(time.Hour))
	amended.Summary = "Corrected: the forwarding rule was created by a sandbox tenant."
	if err := f.svc.HandleReviewCompleted(ctx, message("rv-1-amended"), amended); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.HandleReviewCompleted(ctx, message("rv-1-again"), rv); err != nil {
		t.Fatal(err)
	}
	if got := search(report.LibraryQuery{Text: "sandbox tenant"}); len(got) != 1 || got[0] != rv.IncidentID {
		t.Errorf("after amendment: %v", got)
	}
}

func TestLibraryAndProgrammeHTTP(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	rv.Questions = append(rv.Questions, events.Question{ID: "team_performance.procedures_followed", Topic: "team_performance",
		Kind: events.QuestionChoice, Prompt: "Were the documented procedures followed?", Choices: []string{"fully", "mostly", "partly"}})
	for i, choice := range []string{"mostly", "partly", "mostly"} {
		rv.Responses[i].Answers = append(rv.Responses[i].Answers, events.Answer{QuestionID: "team_performance.procedures_followed", Choice: choice})
	}
	if err := f.svc.HandleReviewCompleted(ctx, message("rv-1"), rv); err != nil {
		t.Fatal(err)
	}
	// An incident recovered "in the future": its recovery is left out and counted.
	future := events.IncidentRegistered{IncidentID: "0195a5d0-1c22-7b00-8e31-5b7d9c0e2a02", Revision: 1, Source: "jira",
		ExternalID: "Y", RegisteredAt: time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), Incident: rv.Incident}
	future.Incident.Exercise = false
	future.Incident.Timestamps = events.Timestamps{StartedAt: ptr(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)),
		RecoveredAt: ptr(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)), ClosedAt: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}
	if err := f.store.ApplyIncidentRegistered(ctx, "inc-future", future); err != nil {
		t.Fatal(err)
	}
	tokens, err := httpapi.ParseTokens("compliance:tok-compliance")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	(&report.API{Reader: f.store, Metrics: f.store, Programme: f.store, Library: f.store, Training: renderer, Tokens: tokens,
		Log: zaptest.NewLogger(t)}).Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	get := func(path string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok-compliance")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	code, body := get("/v1/library?q=" + url.QueryEscape("impossible travel") + "&tag=bec&severity=high&from=2026-03-01&to=2026-04-01")
	var lib struct{ Entries []report.LibraryEntry }
	if err := json.Unmarshal(body, &lib); code != http.StatusOK || err != nil || len(lib.Entries) != 1 || lib.Entries[0].IncidentID != rv.IncidentID {
		t.Errorf("library: %d %s", code, body)
	}
	for _, bad := range []string{"severity=urgent", "from=yesterday", "limit=0", "from=2026-04-01&to=2026-03-01", "q=" + strings.Repeat("x", 501)} {
		if code, body := get("/v1/library?" + bad); code != http.StatusBadRequest {
			t.Errorf("library?%s: %d %s, want 400", bad, code, body)
		}
	}

	code, body = get("/v1/library/training-pack.pdf?category=phishing")
	if code != http.StatusOK {
		t.Fatalf("training pack: %d %s", code, body)
	}
	if text := strings.Join(strings.Fields(padestest.Text(t, body)), " "); !strings.Contains(text, "Case 1: "+rv.Incident.Title[:30]) ||
		!strings.Contains(text, "number matching") || strings.Contains(text, "Case 2") {
		t.Errorf("training pack text = %q", text)
	}
	if code, _ := get("/v1/library/training-pack.pdf"); code != http.StatusBadRequest {
		t.Errorf("training pack without category: %d, want 400", code)
	}

	code, body = get("/v1/metrics/programme?period=month&from=2026-02-01&to=2026-04-01")
	var prog struct {
		Incidents struct{ Total int }
		report.Programme
	}
	if err := json.Unmarshal(body, &prog); code != http.StatusOK || err != nil {
		t.Fatalf("programme: %d %v %s", code, err, body)
	}
	if prog.Incidents.Total != 2 || prog.Period != report.PeriodMonth || len(prog.Series) != 2 || prog.Series[1].Label != "2026-03" {
		t.Fatalf("programme = %s", body)
	}
	mar := prog.Series[1].Total
	ts := rv.Incident.Timestamps
	wantDetect := ts.DetectedAt.Sub(*ts.StartedAt).Hours() // only the example has a detection time
	checkDuration(t, "March detection", mar.Durations[report.FigureStartToDetection], wantDuration{count: 1, mean: wantDetect, median: wantDetect, missing: 1})
	wantRecover := ts.RecoveredAt.Sub(*ts.StartedAt).Hours()
	checkDuration(t, "March recovery", mar.Durations[report.FigureStartToRecovery], wantDuration{count: 1, mean: wantRecover, median: wantRecover, excluded: 1})
	if mar.Ratings.Answers != 3 || mar.Ratings.Mean == nil || *mar.Ratings.Mean != 4 {
		t.Errorf("March ratings = %+v, want 3 answers averaging 4", mar.Ratings)
	}
	if len(prog.DataQuality) != 1 || prog.DataQuality[0].IncidentID != future.IncidentID || prog.DataQuality[0].Figure != report.FigureStartToRecovery {
		t.Errorf("data quality = %+v", prog.DataQuality)
	}
	// The example: started 08:47, impact assessed 13:10, management told at
	// 14:00, customers at 14:30; 25.25 hours of labour, EUR 18450.00, impact
	// medium then high; playbook named and "mostly" followed (2 of 3). It
	// recurs the other incident (closed that morning, same category, asset
	// and root cause); both carry the same notifications.
	hours := func(h, m int) float64 { return float64(h) + float64(m)/60 }
	// The other has no impact_assessed_at: its initial impact's assessed_at (10:20) stands in.
	checkDuration(t, "March assessment", mar.Durations[report.FigureStartToAssessment],
		wantDuration{count: 2, mean: (hours(4, 23) + hours(34, 20)) / 2, median: (hours(4, 23) + hours(34, 20)) / 2})
	checkDuration(t, "March management", mar.Durations[report.FigureStartToManagement],
		wantDuration{count: 2, mean: (hours(5, 13) + 38) / 2, median: (hours(5, 13) + 38) / 2})
	checkDuration(t, "March external", mar.Durations[report.FigureStartToExternal],
		wantDuration{count: 2, mean: (hours(5, 43) + 38.5) / 2, median: (hours(5, 43) + 38.5) / 2})
	if mar.Labour.Incidents != 2 || !near(mar.Labour.TotalHours, 50.5) || mar.Cost["EUR"].Total != "36900.00" ||
		mar.Impact.Raised != 2 || mar.Impact.RecordsAffected != 824 {
		t.Errorf("March labour %+v cost %+v impact %+v", mar.Labour, mar.Cost, mar.Impact)
	}
	if o := mar.Objective; o.PlaybookNamed != 2 || o.PlaybookFollowed != 1 || o.ProceduresAssessed != 1 || o.Procedures["mostly"] != 1 {
		t.Errorf("March objective = %+v", o)
	}
	if len(prog.Recurrences) != 1 || prog.Recurrences[0].IncidentID != rv.IncidentID || len(prog.Recurrences[0].Earlier) != 1 ||
		prog.Recurrences[0].Earlier[0].IncidentID != future.IncidentID || len(prog.Recurrences[0].Earlier[0].Reasons) != 2 {
		t.Errorf("recurrences = %+v", prog.Recurrences)
	}
	if code, body := get("/v1/metrics/programme?period=week"); code != http.StatusBadRequest {
		t.Errorf("period=week: %d %s", code, body)
	}
	if code, body := get("/v1/metrics/programme?period=month&from=1900-01-01&to=2026-01-01"); code != http.StatusBadRequest {
		t.Errorf("a 126-year series: %d %s", code, body)
	}

	// At this clock the example's review completes in the future (11:05 that day):
	// both review figures are left out, as is the recovery in 2099.
	reg := prometheus.NewRegistry()
	reg.MustRegister(report.NewProgrammeCollectorAt(f.store, zaptest.NewLogger(t),
		func() time.Time { return time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC) }))
	want := `
# HELP afteraction_programme_data_quality_excluded Figures left out of the current period for a future or out-of-order timestamp.
# TYPE afteraction_programme_data_quality_excluded gauge
afteraction_programme_data_quality_excluded{figure="action_completion",period="month"} 0
afteraction_programme_data_quality_excluded{figure="action_completion",period="quarter"} 0
afteraction_programme_data_quality_excluded{figure="closure_to_review_completion",period="month"} 1
afteraction_programme_data_quality_excluded{figure="closure_to_review_completion",period="quarter"} 1
afteraction_programme_data_quality_excluded{figure="start_to_closure",period="month"} 0
afteraction_programme_data_quality_excluded{figure="start_to_closure",period="quarter"} 0
afteraction_programme_data_quality_excluded{figure="start_to_containment",period="month"} 0
afteraction_programme_data_quality_excluded{figure="start_to_containment",period="quarter"} 0
afteraction_programme_data_quality_excluded{figure="start_to_detection",period="month"} 0
afteraction_programme_data_quality_excluded{figure="start_to_detection",period="quarter"} 0
afteraction_programme_data_quality_excluded{figure="start_to_eradication",period="month"} 0
afteraction_programme_data_quality_excluded{figure="start_to_eradication",period="quarter"} 0
afteraction_programme_data_quality_excluded{figure="start_to_external_notification",period="month"} 0
afteraction_programme_data_quality_excluded{figure="start_to_external_notification",period="quarter"} 0
afteraction_programme_data_quality_excluded{figure="start_to_initial_assessment",period="month"} 0
afteraction_programme_data_quality_excluded{figure="start_to_initial_assessment",period="quarter"} 0
afteraction_programme_data_quality_excluded{figure="start_to_management_notification",period="month"} 0
afteraction_programme_data_quality_excluded{figure="start_to_management_notification",period="quarter"} 0
afteraction_programme_data_quality_excluded{figure="start_to_recovery",period="month"} 1
afteraction_programme_data_quality_excluded{figure="start_to_recovery",period="quarter"} 1
afteraction_programme_data_quality_excluded{figure="start_to_report",period="month"} 0
afteraction_programme_data_quality_excluded{figure="start_to_report",period="quarter"} 0
afteraction_programme_data_quality_excluded{figure="start_to_resolution",period="month"} 0
afteraction_programme_data_quality_excluded{figure="start_to_resolution",period="quarter"} 0
afteraction_programme_data_quality_excluded{figure="start_to_review_completion",period="month"} 1
afteraction_programme_data_quality_excluded{figure="start_to_review_completion",period="quarter"} 1
# HELP afteraction_programme_incidents Incidents closed in the current period, exercises excluded.
# TYPE afteraction_programme_incidents gauge
afteraction_programme_incidents{period="month",severity="all"} 2
afteraction_programme_incidents{period="month",severity="high"} 2
afteraction_programme_incidents{period="quarter",severity="all"} 2
afteraction_programme_incidents{period="quarter",severity="high"} 2
# HELP afteraction_programme_estimated_cost Estimated cost of the current period's incidents, by currency.
# TYPE afteraction_programme_estimated_cost gauge
afteraction_programme_estimated_cost{currency="EUR",period="month"} 36900
afteraction_programme_estimated_cost{currency="EUR",period="quarter"} 36900
# HELP afteraction_programme_labour_hours Hours people spent on the current period's incidents.
# TYPE afteraction_programme_labour_hours gauge
afteraction_programme_labour_hours{period="month"} 50.5
afteraction_programme_labour_hours{period="quarter"} 50.5
# HELP afteraction_programme_rating_mean Mean of the review rating answers (1-5) of the current period.
# TYPE afteraction_programme_rating_mean gauge
afteraction_programme_rating_mean{period="month"} 4
afteraction_programme_rating_mean{period="quarter"} 4
# HELP afteraction_programme_recurring_incidents Incidents of the current period that recur an earlier one, by reason.
# TYPE afteraction_programme_recurring_incidents gauge
afteraction_programme_recurring_incidents{period="month",reason="any"} 1
afteraction_programme_recurring_incidents{period="month",reason="same_category_and_asset"} 1
afteraction_programme_recurring_incidents{period="month",reason="same_root_cause"} 1
afteraction_programme_recurring_incidents{period="quarter",reason="any"} 1
afteraction_programme_recurring_incidents{period="quarter",reason="same_category_and_asset"} 1
afteraction_programme_recurring_incidents{period="quarter",reason="same_root_cause"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "afteraction_programme_incidents",
		"afteraction_programme_rating_mean", "afteraction_programme_data_quality_excluded", "afteraction_programme_labour_hours",
		"afteraction_programme_estimated_cost", "afteraction_programme_recurring_incidents"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "afteraction_programme_duration_hours"); err != nil || n == 0 {
		t.Errorf("duration gauges: %d, %v", n, err)
	}
}
