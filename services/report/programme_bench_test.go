package report_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/afteraction/afteraction/services/report"
)

// BenchmarkBuildProgramme computes a year of monthly figures over 10,000
// incidents with two actions each.
func BenchmarkBuildProgramme(b *testing.B) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var incidents []report.IncidentFacts
	var actions []report.ActionFacts
	cats := []string{"phishing", "malware", "dos", "insider"}
	sevs := []string{"low", "medium", "high", "critical"}
	for i := range 10000 {
		s := start.Add(time.Duration(i) * 52 * time.Minute)
		id := strconv.Itoa(i)
		incidents = append(incidents, report.IncidentFacts{IncidentID: id, Category: cats[i%4], Subcategory: "x",
			Severity: sevs[i/4%4], StartedAt: &s, DetectedAt: ptr(s.Add(time.Hour)), ContainedAt: ptr(s.Add(3 * time.Hour)),
			RecoveredAt: ptr(s.Add(9 * time.Hour)), ClosedAt: s.Add(24 * time.Hour), RegisteredAt: s.Add(25 * time.Hour),
			ReviewCompletedAt: ptr(s.Add(96 * time.Hour)), Ratings: map[string]report.RatingTotal{"q": {Sum: 8, Count: 2}}})
		for j := range 2 {
			actions = append(actions, report.ActionFacts{ActionID: id + "-" + strconv.Itoa(j), IncidentID: id, Status: "done",
				CreatedAt: ptr(s.Add(96 * time.Hour)), StatusAt: s.Add(200 * time.Hour)})
		}
	}
	o := report.ProgrammeOptions{Period: report.PeriodMonth, From: start, To: start.AddDate(1, 1, 0), Now: start.AddDate(2, 0, 0)}
	b.ResetTimer()
	for b.Loop() {
		report.BuildProgramme(o, incidents, actions)
	}
}
