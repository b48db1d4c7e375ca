package report_test

import (
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/services/report"
)

func f64(v float64) *float64 { return &v }

// moreFacts are incidents with known times, labour, cost, impact, root causes,
// assets, playbooks and procedure answers; hand-computed figures are in
// TestBuildProgrammeMoreFigures. p closes before the window (it only serves
// recurrence); x is an exercise. h notified management before it started
// (out of order), outsiders in 2099 (future), and its cost is negative.
func moreFacts() ([]report.IncidentFacts, []report.ActionFacts) {
	incidents := []report.IncidentFacts{
		{IncidentID: "p", Severity: "high", Category: "malware", Assets: []string{"web-01"}, RootCause: "Unpatched VPN appliance",
			ClosedAt: *at("2026-03-20T00:00:00Z"), RegisteredAt: *at("2026-03-20T00:00:00Z")},
		{IncidentID: "g", Severity: "high", Category: "malware", Assets: []string{"web-01", "db-01"},
			StartedAt: at("2026-04-01T00:00:00Z"), ReportedAt: at("2026-04-01T01:00:00Z"),
			ManagementNotifiedAt: at("2026-04-01T02:00:00Z"), ImpactAssessedAt: at("2026-04-01T03:00:00Z"),
			EradicatedAt: at("2026-04-01T10:00:00Z"), ExternalNotifiedAt: at("2026-04-01T12:00:00Z"),
			ResolvedAt: at("2026-04-02T00:00:00Z"), ClosedAt: *at("2026-04-03T00:00:00Z"), RegisteredAt: *at("2026-04-03T00:00:00Z"),
			LabourHours: f64(10.5), CostAmount: "1000.10", CostCurrency: "EUR", InitialImpact: "low", FinalImpact: "high",
			RecordsAffected: ptr[int64](100), DowntimeMinutes: ptr[int64](60), Playbook: "Malware v2",
			ProcedureAnswers: map[string]int{"fully": 2, "partly": 1}},
		{IncidentID: "x", Severity: "low", Category: "malware", Exercise: true, Assets: []string{"db-01"},
			RootCause: "unpatched vpn appliance", ClosedAt: *at("2026-04-05T00:00:00Z"), RegisteredAt: *at("2026-04-05T00:00:00Z"),
			LabourHours: f64(100), CostAmount: "5", CostCurrency: "EUR"},
		{IncidentID: "h", Severity: "medium", Category: "phishing", RootCause: "unpatched  VPN appliance",
			StartedAt: at("2026-04-10T00:00:00Z"), ManagementNotifiedAt: at("2026-04-09T20:00:00Z"),
			ExternalNotifiedAt: at("2099-01-01T00:00:00Z"), ImpactAssessedAt: at("2026-04-10T06:00:00Z"),
			ClosedAt: *at("2026-04-11T00:00:00Z"), RegisteredAt: *at("2026-04-11T00:00:00Z"),
			LabourHours: f64(4), CostAmount: "-5.00", CostCurrency: "EUR", InitialImpact: "high", FinalImpact: "medium",
			ProcedureAnswers: map[string]int{"partly": 1, "not followed": 1}},
		{IncidentID: "i", Severity: "medium", Category: "malware", Assets: []string{"db-01"},
			StartedAt: at("2026-04-20T00:00:00Z"), ClosedAt: *at("2026-04-21T00:00:00Z"), RegisteredAt: *at("2026-04-21T00:00:00Z"),
			CostAmount: "0.20", CostCurrency: "EUR", InitialImpact: "medium", FinalImpact: "medium", Playbook: "Malware v2",
			ProcedureAnswers: map[string]int{"no documented procedure applied": 1}},
		{IncidentID: "j", Severity: "low", Category: "phishing", RootCause: "Unpatched VPN appliance",
			StartedAt: at("2026-05-05T00:00:00Z"), ClosedAt: *at("2026-05-06T00:00:00Z"), RegisteredAt: *at("2026-05-06T00:00:00Z"),
			LabourHours: f64(2.5), CostAmount: "99.99", CostCurrency: "USD", InitialImpact: "low"},
	}
	actions := []report.ActionFacts{
		{ActionID: "pa1", IncidentID: "p", Status: "done", StatusAt: *at("2026-03-25T00:00:00Z")},
		{ActionID: "ga1", IncidentID: "g", Status: "done", DueDate: at("2026-04-10T00:00:00Z"),
			CreatedAt: at("2026-04-05T00:00:00Z"), StatusAt: *at("2026-04-10T23:00:00Z")},
		{ActionID: "ga2", IncidentID: "g", Status: "done", DueDate: at("2026-04-10T00:00:00Z"),
			CreatedAt: at("2026-04-05T00:00:00Z"), StatusAt: *at("2026-04-12T00:00:00Z")},
		{ActionID: "ha1", IncidentID: "h", Status: "open", DueDate: at("2026-05-01T00:00:00Z"), StatusAt: *at("2026-04-12T00:00:00Z")},
		{ActionID: "ha2", IncidentID: "h", Status: "in_progress", DueDate: at("2026-07-15T00:00:00Z"), StatusAt: *at("2026-04-12T00:00:00Z")},
		{ActionID: "ia1", IncidentID: "i", Status: "wont_do", DueDate: at("2026-04-25T00:00:00Z"), StatusAt: *at("2026-04-22T00:00:00Z")},
		{ActionID: "ia2", IncidentID: "i", Status: "done", StatusAt: *at("2026-04-22T00:00:00Z")},
		{ActionID: "ja1", IncidentID: "j", Status: "done", DueDate: at("2026-05-10T00:00:00Z"),
			CreatedAt: at("2026-05-06T00:00:00Z"), StatusAt: *at("2099-01-01T00:00:00Z")},
	}
	return incidents, actions
}

func TestBuildProgrammeMoreFigures(t *testing.T) {
	t.Parallel()
	incidents, actions := moreFacts()
	p := report.BuildProgramme(report.ProgrammeOptions{Period: report.PeriodMonth, From: *at("2026-04-01T00:00:00Z"),
		To: *at("2026-06-01T00:00:00Z"), Now: *at("2026-06-30T00:00:00Z"), RecurrenceWindow: 30 * 24 * 3600e9}, incidents, actions)
	if len(p.Series) != 2 || p.RecurrenceDays != 30 {
		t.Fatalf("series = %d periods, recurrence window %v days", len(p.Series), p.RecurrenceDays)
	}
	apr := p.Series[0].Total
	if apr.Incidents != 3 || apr.ExercisesExcluded != 1 {
		t.Errorf("April incidents/exercises = %d/%d, want 3/1", apr.Incidents, apr.ExercisesExcluded)
	}
	for name, want := range map[string]wantDuration{
		report.FigureStartToReport:      {count: 1, mean: 1, median: 1, missing: 2},
		report.FigureStartToAssessment:  {count: 2, mean: 4.5, median: 4.5, missing: 1}, // g 3 h, h 6 h
		report.FigureStartToEradication: {count: 1, mean: 10, median: 10, missing: 2},
		report.FigureStartToResolution:  {count: 1, mean: 24, median: 24, missing: 2},
		report.FigureStartToManagement:  {count: 1, mean: 2, median: 2, missing: 1, excluded: 1},   // h before its start
		report.FigureStartToExternal:    {count: 1, mean: 12, median: 12, missing: 1, excluded: 1}, // h in 2099
	} {
		checkDuration(t, "April "+name, apr.Durations[name], want)
	}
	if l := apr.Labour; l.Incidents != 2 || !near(l.TotalHours, 14.5) || l.MeanHours == nil || !near(*l.MeanHours, 7.25) {
		t.Errorf("April labour = %+v, want 2 incidents, 14.5 h, mean 7.25 h", l)
	}
	if c := apr.Cost; len(c) != 1 || c["EUR"] != (report.CostFigures{Incidents: 2, Total: "1000.30", Mean: "500.15"}) {
		t.Errorf("April cost = %+v, want EUR 2 incidents, 1000.30, mean 500.15 (h's negative cost left out)", c)
	}
	im := apr.Impact
	if im.Compared != 3 || im.Raised != 1 || im.Lowered != 1 || im.Unchanged != 1 || im.NotCompared != 0 ||
		im.FinalLevels["high"] != 1 || im.FinalLevels["medium"] != 2 || im.RecordsAffected != 100 || im.DowntimeMinutes != 60 {
		t.Errorf("April impact = %+v", im)
	}
	if r := apr.Recurrence; r != (report.RecurrenceFigures{Recurring: 3, SameCategoryAsset: 2, SameRootCause: 1}) {
		t.Errorf("April recurrence = %+v, want 3 recurring: g and i by asset, h by root cause", r)
	}
	o := apr.Objective
	if o.PlaybookNamed != 2 || o.PlaybookFollowed != 1 || o.ProceduresAssessed != 3 || o.ProceduresFollowed != 1 ||
		o.Procedures["fully"] != 1 || o.Procedures["not followed"] != 1 || o.Procedures["no documented procedure applied"] != 1 ||
		o.ActionsWithDueDate != 4 || o.ActionsDoneOnTime != 1 || o.ActionsDoneLate != 1 || o.ActionsOpenPastDue != 1 {
		t.Errorf("April objective = %+v", o)
	}
	if mal := p.Series[0].ByCategory["malware"]; mal.Incidents != 2 || mal.Recurrence.SameCategoryAsset != 2 ||
		mal.Cost["EUR"].Total != "1000.30" || mal.Labour.Incidents != 1 {
		t.Errorf("April malware = %+v", mal)
	}

	may := p.Series[1].Total
	if may.Labour.Incidents != 1 || !near(may.Labour.TotalHours, 2.5) || may.Cost["USD"] != (report.CostFigures{Incidents: 1, Total: "99.99", Mean: "99.99"}) ||
		may.Impact.NotCompared != 1 || may.Recurrence != (report.RecurrenceFigures{Recurring: 1, SameRootCause: 1}) ||
		may.Objective.ActionsWithDueDate != 0 {
		t.Errorf("May = labour %+v cost %+v impact %+v recurrence %+v objective %+v", may.Labour, may.Cost, may.Impact,
			may.Recurrence, may.Objective)
	}

	var links []string
	for _, r := range p.Recurrences {
		for _, e := range r.Earlier {
			var acts []string
			for _, a := range e.Actions {
				acts = append(acts, a.ActionID+"="+a.Status)
			}
			links = append(links, r.Period+" "+r.IncidentID+"<"+e.IncidentID+" ("+strings.Join(e.Reasons, "; ")+") ["+strings.Join(acts, ",")+"]")
		}
	}
	want := []string{
		"2026-04 g<p (same category and asset web-01) [pa1=done]",
		"2026-04 h<p (same root cause) [pa1=done]",
		"2026-04 i<g (same category and asset db-01) [ga1=done,ga2=done]",
		"2026-05 j<h (same root cause) [ha1=open,ha2=in_progress]",
	}
	if strings.Join(links, "\n") != strings.Join(want, "\n") {
		t.Errorf("recurrences:\n%s\nwant:\n%s", strings.Join(links, "\n"), strings.Join(want, "\n"))
	}

	var problems []string
	for _, d := range p.DataQuality {
		problems = append(problems, d.IncidentID+"/"+d.ActionID+"/"+d.Figure)
	}
	wantProblems := []string{"h//cost", "h//start_to_external_notification", "h//start_to_management_notification",
		"j/ja1/action_completion"}
	if strings.Join(problems, " ") != strings.Join(wantProblems, " ") {
		t.Errorf("data quality = %v, want %v", problems, wantProblems)
	}
}

func TestParsePeriodLabel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]struct {
		period report.Period
		start  string
	}{
		"2026-11": {report.PeriodMonth, "2026-11-01T00:00:00Z"},
		"2026-01": {report.PeriodMonth, "2026-01-01T00:00:00Z"},
		"2026-Q1": {report.PeriodQuarter, "2026-01-01T00:00:00Z"},
		"2026-Q4": {report.PeriodQuarter, "2026-10-01T00:00:00Z"},
	} {
		p, start, err := report.ParsePeriodLabel(in)
		if err != nil || p != want.period || !start.Equal(*at(want.start)) || p.Label(start) != in {
			t.Errorf("ParsePeriodLabel(%q) = %q, %v, %v; want %q from %s", in, p, start, err, want.period, want.start)
		}
	}
	for _, bad := range []string{"", "2026", "2026-13", "2026-00", "2026-Q0", "2026-Q5", "26-11", "2026-11-01", "2026-q1"} {
		if _, _, err := report.ParsePeriodLabel(bad); err == nil {
			t.Errorf("ParsePeriodLabel(%q) succeeded", bad)
		}
	}
}

// TestBuildProgrammeContentQuarter: a quarter's report has the quarter's
// figures and the twelve months up to its end for its charts; incidents
// closed before the quarter count in the months, not in the quarter.
func TestBuildProgrammeContentQuarter(t *testing.T) {
	t.Parallel()
	incidents, actions := moreFacts()
	c := report.BuildProgrammeContent(report.PeriodQuarter, *at("2026-04-01T00:00:00Z"), *at("2026-06-30T00:00:00Z"),
		30*24*time.Hour, incidents, actions)
	if c.Label != "2026-Q2" || !c.End.Equal(*at("2026-07-01T00:00:00Z")) || c.Figures.Total.Incidents != 4 {
		t.Errorf("quarter = %s to %s with %d incidents, want 2026-Q2 to 2026-07-01 with 4 (g, h, i, j)", c.Label, c.End, c.Figures.Total.Incidents)
	}
	if len(c.Monthly) != report.ChartMonths || c.Monthly[0].Label != "2025-07" || c.Monthly[11].Label != "2026-06" {
		t.Fatalf("monthly = %d months from %s", len(c.Monthly), c.Monthly[0].Label)
	}
	if mar := c.Monthly[8]; mar.Label != "2026-03" || mar.Total.Incidents != 1 {
		t.Errorf("March = %s with %d incidents, want p", mar.Label, mar.Total.Incidents)
	}
	if len(c.Recurrences) != 4 || len(c.DataQuality) != 4 {
		t.Errorf("recurrences %d, data quality %d; want 4 and 4", len(c.Recurrences), len(c.DataQuality))
	}
}
