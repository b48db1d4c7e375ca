package report_test

import (
	"math"
	"testing"
	"time"

	"github.com/afteraction/afteraction/services/report"
)

func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

// programmeFacts are incidents with known times. Hand-computed figures are
// in TestBuildProgramme. C's detection precedes its start (out of order), E's
// recovery is in the future; a4 is done before it was created, a6 done in the
// future. D is an exercise; F closes after the window.
func programmeFacts() ([]report.IncidentFacts, []report.ActionFacts) {
	incidents := []report.IncidentFacts{
		{IncidentID: "a", Severity: "high", Category: "malware", Subcategory: "ransomware",
			StartedAt: at("2026-04-01T00:00:00Z"), DetectedAt: at("2026-04-01T02:00:00Z"),
			ContainedAt: at("2026-04-01T06:00:00Z"), RecoveredAt: at("2026-04-02T00:00:00Z"),
			ClosedAt: *at("2026-04-03T00:00:00Z"), RegisteredAt: *at("2026-04-03T01:00:00Z"),
			ReviewCompletedAt: at("2026-04-05T00:00:00Z"),
			Ratings:           map[string]report.RatingTotal{"q1": {Sum: 9, Count: 2}, "q2": {Sum: 3, Count: 1}}},
		{IncidentID: "b", Severity: "medium", Category: "malware",
			StartedAt: at("2026-04-10T00:00:00Z"), DetectedAt: at("2026-04-10T04:00:00Z"),
			ClosedAt: *at("2026-04-11T00:00:00Z"), RegisteredAt: *at("2026-04-11T00:00:00Z"),
			Ratings: map[string]report.RatingTotal{"q1": {Sum: 2, Count: 1}}},
		{IncidentID: "c", Severity: "high", Category: "phishing",
			StartedAt: at("2026-04-20T10:00:00Z"), DetectedAt: at("2026-04-20T08:00:00Z"),
			ContainedAt: at("2026-04-20T12:00:00Z"), RecoveredAt: at("2026-04-20T14:00:00Z"),
			ClosedAt: *at("2026-04-21T10:00:00Z"), RegisteredAt: *at("2026-05-15T00:00:00Z"),
			ReviewCompletedAt: at("2026-04-25T10:00:00Z")},
		{IncidentID: "d", Severity: "low", Category: "phishing", Exercise: true,
			StartedAt: at("2026-04-14T00:00:00Z"), ClosedAt: *at("2026-04-15T00:00:00Z"), RegisteredAt: *at("2026-04-15T00:00:00Z"),
			Ratings: map[string]report.RatingTotal{"q1": {Sum: 1, Count: 1}}},
		{IncidentID: "e", Severity: "low", Category: "phishing",
			StartedAt: at("2026-05-01T00:00:00Z"), DetectedAt: at("2026-05-01T01:00:00Z"),
			ContainedAt: at("2026-05-01T03:00:00Z"), RecoveredAt: at("2099-01-01T00:00:00Z"),
			ClosedAt: *at("2026-05-02T00:00:00Z"), RegisteredAt: *at("2026-05-02T00:00:00Z")},
		{IncidentID: "f", Severity: "low", Category: "phishing",
			ClosedAt: *at("2026-06-05T00:00:00Z"), RegisteredAt: *at("2026-06-05T00:00:00Z")},
	}
	actions := []report.ActionFacts{
		{ActionID: "a1", IncidentID: "a", Status: "done", CreatedAt: at("2026-04-05T00:00:00Z"), StatusAt: *at("2026-04-07T00:00:00Z")},
		{ActionID: "a2", IncidentID: "a", Status: "open", CreatedAt: at("2026-04-05T00:00:00Z"), StatusAt: *at("2026-04-05T00:00:00Z"), Overdue: true},
		{ActionID: "a3", IncidentID: "c", Status: "done", CreatedAt: at("2026-04-25T10:00:00Z"), StatusAt: *at("2026-04-26T10:00:00Z")},
		{ActionID: "a4", IncidentID: "b", Status: "done", CreatedAt: at("2026-04-11T00:00:00Z"), StatusAt: *at("2026-04-10T00:00:00Z")},
		{ActionID: "a5", IncidentID: "d", Status: "done", CreatedAt: at("2026-04-15T00:00:00Z"), StatusAt: *at("2026-04-16T00:00:00Z")},
		{ActionID: "a6", IncidentID: "e", Status: "done", CreatedAt: at("2026-05-02T00:00:00Z"), StatusAt: *at("2099-01-02T00:00:00Z")},
	}
	return incidents, actions
}

type wantDuration struct {
	count             int
	mean, median      float64
	missing, excluded int
}

func checkDuration(t *testing.T, name string, got report.Duration, want wantDuration) {
	t.Helper()
	if got.Count != want.count || got.Missing != want.missing || got.Excluded != want.excluded {
		t.Errorf("%s: count/missing/excluded = %d/%d/%d, want %d/%d/%d", name, got.Count, got.Missing, got.Excluded,
			want.count, want.missing, want.excluded)
	}
	if want.count == 0 {
		if got.MeanHours != nil || got.MedianHours != nil {
			t.Errorf("%s: mean/median set without values: %+v", name, got)
		}
		return
	}
	if got.MeanHours == nil || got.MedianHours == nil || !near(*got.MeanHours, want.mean) || !near(*got.MedianHours, want.median) {
		t.Errorf("%s: got %+v, want mean %v median %v", name, got, want.mean, want.median)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestBuildProgramme(t *testing.T) {
	t.Parallel()
	incidents, actions := programmeFacts()
	p := report.BuildProgramme(report.ProgrammeOptions{Period: report.PeriodMonth, From: *at("2026-04-01T00:00:00Z"),
		To: *at("2026-06-01T00:00:00Z"), Now: *at("2026-06-30T00:00:00Z")}, incidents, actions)
	if len(p.Series) != 2 || p.Series[0].Label != "2026-04" || p.Series[1].Label != "2026-05" {
		t.Fatalf("series = %+v", p.Series)
	}
	apr := p.Series[0].Total
	if apr.Incidents != 3 || apr.Backfilled != 1 || apr.ExercisesExcluded != 1 {
		t.Errorf("April incidents/backfilled/exercises = %d/%d/%d, want 3/1/1", apr.Incidents, apr.Backfilled, apr.ExercisesExcluded)
	}
	for name, want := range map[string]wantDuration{
		report.FigureStartToDetection:   {count: 2, mean: 3, median: 3, excluded: 1},  // a 2 h, b 4 h; c out of order
		report.FigureStartToContainment: {count: 2, mean: 4, median: 4, missing: 1},   // a 6 h, c 2 h
		report.FigureStartToRecovery:    {count: 2, mean: 14, median: 14, missing: 1}, // a 24 h, c 4 h
		report.FigureStartToClosure:     {count: 3, mean: 32, median: 24},             // 48, 24, 24
		report.FigureStartToReview:      {count: 2, mean: 108, median: 108, missing: 1},
		report.FigureClosureToReview:    {count: 2, mean: 72, median: 72, missing: 1}, // a 48 h, c 96 h
	} {
		checkDuration(t, "April "+name, apr.Durations[name], want)
	}
	if apr.Actions.Created != 4 || apr.Actions.Done != 3 || apr.Actions.Overdue != 1 {
		t.Errorf("April actions = %+v, want 4 created, 3 done, 1 overdue", apr.Actions)
	}
	checkDuration(t, "April action completion", apr.Actions.CompletionTime, wantDuration{count: 2, mean: 36, median: 36, excluded: 1})
	if apr.Ratings.Answers != 4 || apr.Ratings.Mean == nil || !near(*apr.Ratings.Mean, 3.5) ||
		!near(apr.Ratings.ByQuestion["q1"].Mean, 11.0/3) || apr.Ratings.ByQuestion["q2"].Answers != 1 {
		t.Errorf("April ratings = %+v, want 4 answers averaging 3.5, q1 11/3", apr.Ratings)
	}

	malware := p.Series[0].ByCategory["malware"]
	if malware.Incidents != 2 {
		t.Errorf("April malware incidents = %d, want 2", malware.Incidents)
	}
	checkDuration(t, "April malware detection", malware.Durations[report.FigureStartToDetection], wantDuration{count: 2, mean: 3, median: 3})
	ransomware := p.Series[0].BySubcategory["malware/ransomware"]
	checkDuration(t, "April ransomware closure", ransomware.Durations[report.FigureStartToClosure], wantDuration{count: 1, mean: 48, median: 48})
	high := p.Series[0].BySeverity["high"]
	checkDuration(t, "April high closure", high.Durations[report.FigureStartToClosure], wantDuration{count: 2, mean: 36, median: 36})
	if phishing := p.Series[0].ByCategory["phishing"]; phishing.Incidents != 1 || phishing.ExercisesExcluded != 1 || phishing.Backfilled != 1 {
		t.Errorf("April phishing = %+v, want 1 incident, 1 exercise excluded, 1 back-fill", phishing)
	}
	if _, ok := p.Series[0].BySeverity["low"]; ok && p.Series[0].BySeverity["low"].Incidents != 0 {
		t.Errorf("the exercise counts as a low incident: %+v", p.Series[0].BySeverity["low"])
	}

	may := p.Series[1].Total
	if may.Incidents != 1 {
		t.Errorf("May incidents = %d, want 1 (f closes after the window)", may.Incidents)
	}
	checkDuration(t, "May detection", may.Durations[report.FigureStartToDetection], wantDuration{count: 1, mean: 1, median: 1})
	checkDuration(t, "May recovery", may.Durations[report.FigureStartToRecovery], wantDuration{excluded: 1})
	checkDuration(t, "May action completion", may.Actions.CompletionTime, wantDuration{excluded: 1})

	want := []struct{ incident, action, figure string }{
		{"b", "a4", report.FigureActionCompletion},
		{"c", "", report.FigureStartToDetection},
		{"e", "", report.FigureStartToRecovery},
		{"e", "a6", report.FigureActionCompletion},
	}
	if len(p.DataQuality) != len(want) {
		t.Fatalf("data quality = %+v, want %d problems", p.DataQuality, len(want))
	}
	for i, w := range want {
		got := p.DataQuality[i]
		if got.IncidentID != w.incident || got.ActionID != w.action || got.Figure != w.figure || got.Reason == "" {
			t.Errorf("data quality[%d] = %+v, want %+v", i, got, w)
		}
	}
	for _, pf := range p.Series {
		for _, f := range append([]report.Figures{pf.Total}, values(pf.ByCategory, pf.BySubcategory, pf.BySeverity)...) {
			for name, d := range f.Durations {
				if d.MeanHours != nil && (*d.MeanHours < 0 || *d.MedianHours < 0) {
					t.Errorf("%s %s is negative: %+v", pf.Label, name, d)
				}
			}
		}
	}
}

func values(ms ...map[string]report.Figures) []report.Figures {
	var out []report.Figures
	for _, m := range ms {
		for _, f := range m {
			out = append(out, f)
		}
	}
	return out
}

func TestBuildProgrammeQuarters(t *testing.T) {
	t.Parallel()
	incidents, actions := programmeFacts()
	p := report.BuildProgramme(report.ProgrammeOptions{Period: report.PeriodQuarter, From: *at("2026-02-15T00:00:00Z"),
		To: *at("2026-10-01T00:00:00Z"), Now: *at("2026-06-30T00:00:00Z")}, incidents, actions)
	var labels []string
	for _, pf := range p.Series {
		labels = append(labels, pf.Label)
	}
	if len(labels) != 3 || labels[0] != "2026-Q1" || labels[1] != "2026-Q2" || labels[2] != "2026-Q3" {
		t.Fatalf("labels = %v, want 2026-Q1..Q3", labels)
	}
	if q1 := p.Series[0].Total; q1.Incidents != 0 || q1.Durations == nil {
		t.Errorf("empty Q1 = %+v", q1)
	}
	q2 := p.Series[1].Total
	if q2.Incidents != 5 || q2.ExercisesExcluded != 1 || q2.Actions.Created != 5 {
		t.Errorf("Q2 = %d incidents, %d exercises, %d actions; want 5, 1, 5", q2.Incidents, q2.ExercisesExcluded, q2.Actions.Created)
	}
	// 48, 24, 24, 24 (a, b, c, e) and f without a start.
	checkDuration(t, "Q2 closure", q2.Durations[report.FigureStartToClosure], wantDuration{count: 4, mean: 30, median: 24, missing: 1})
}

func TestParsePeriod(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]report.Period{"": report.PeriodMonth, "month": report.PeriodMonth, "quarter": report.PeriodQuarter} {
		if got, err := report.ParsePeriod(in); err != nil || got != want {
			t.Errorf("ParsePeriod(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := report.ParsePeriod("week"); err == nil {
		t.Error("ParsePeriod(week) succeeded")
	}
}
