package report

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/afteraction/afteraction/services/report/pdf"
)

// figureTitles name the duration figures in the programme report.
var figureTitles = map[string]string{
	FigureStartToDetection:   "Start to detection",
	FigureStartToReport:      "Start to report",
	FigureStartToAssessment:  "Start to initial assessment",
	FigureStartToContainment: "Start to containment",
	FigureStartToEradication: "Start to eradication",
	FigureStartToRecovery:    "Start to recovery",
	FigureStartToResolution:  "Start to resolution",
	FigureStartToManagement:  "Start to notifying management",
	FigureStartToExternal:    "Start to notifying outside parties",
	FigureStartToClosure:     "Start to closure",
	FigureStartToReview:      "Start to review completion",
	FigureClosureToReview:    "Closure to review completion",
	FigureActionCompletion:   "Action creation to done",
	FigureCost:               "Estimated cost",
}

// trendFigures are the duration figures the trend chart draws.
var trendFigures = []string{FigureStartToDetection, FigureStartToAssessment, FigureStartToContainment,
	FigureStartToRecovery, FigureStartToManagement, FigureStartToExternal, FigureStartToClosure, FigureClosureToReview}

func hoursOf(h *float64) string {
	if h == nil {
		return "–"
	}
	return strconv.FormatFloat(math.Round(*h*10)/10, 'f', 1, 64) + " h"
}

func incidentsText(n int) string {
	if n == 1 {
		return "1 incident"
	}
	return strconv.Itoa(n) + " incidents"
}

func pct(n, of int) string {
	if of == 0 {
		return strconv.Itoa(n) + " of 0"
	}
	return fmt.Sprintf("%d of %d (%.0f %%)", n, of, 100*float64(n)/float64(of))
}

func costText(c map[string]CostFigures) string {
	if len(c) == 0 {
		return "none recorded"
	}
	var parts []string
	for _, cur := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", cur, c[cur].Total, incidentsText(c[cur].Incidents)))
	}
	return strings.Join(parts, "; ")
}

// programmeDocument lays out c as a programme report: every figure of the
// period, charts over the months up to its end, and the data-quality problems.
func programmeDocument(c ProgrammeContent) pdf.ProgrammeReport {
	f := c.Figures.Total
	name := map[Period]string{PeriodMonth: "month", PeriodQuarter: "quarter"}[c.Period]
	last := c.End.AddDate(0, 0, -1)
	doc := pdf.ProgrammeReport{
		Title:    "Incident response programme report " + c.Label,
		Subtitle: fmt.Sprintf("The %s from %s to %s (UTC)", name, c.Start.Format("2 January 2006"), last.Format("2 January 2006")),
		Intro: fmt.Sprintf("How the incident response programme performed (NIST SP 800-61 §3.4.2): the incidents closed "+
			"in this %s, how long each stage took, what they cost, how their impact was judged at first and at the end, "+
			"which recurred, the improvement actions they led to, and how the reviews assessed the response. Exercises "+
			"are left out of every figure; incidents registered more than %.0f hours after closure are historical "+
			"back-fills and are counted in. A timestamp in the future or out of order never yields a negative duration: "+
			"it is left out and listed under data quality.", name, c.BackfillAfterHours),
	}
	closure := f.Durations[FigureStartToClosure]
	doc.Summary = [][2]string{
		{"Incidents handled", fmt.Sprintf("%d (historical back-fills: %d; exercises left out: %d)", f.Incidents, f.Backfilled, f.ExercisesExcluded)},
		{"Start to closure", "mean " + hoursOf(closure.MeanHours) + ", median " + hoursOf(closure.MedianHours)},
		{"Labour", fmt.Sprintf("%.1f hours over %s (mean %s)", f.Labour.TotalHours, incidentsText(f.Labour.Incidents), hoursOf(f.Labour.MeanHours))},
		{"Estimated cost", costText(f.Cost)},
		{"Impact, final vs initial", fmt.Sprintf("raised %d, lowered %d, unchanged %d, not comparable %d",
			f.Impact.Raised, f.Impact.Lowered, f.Impact.Unchanged, f.Impact.NotCompared)},
		{"Recurring incidents", fmt.Sprintf("%d (window %.0f days)", f.Recurrence.Recurring, c.RecurrenceDays)},
		{"Improvement actions", fmt.Sprintf("%d created, %d done, %d overdue", f.Actions.Created, f.Actions.Done, f.Actions.Overdue)},
		{"Procedures followed", pct(f.Objective.ProceduresFollowed, f.Objective.ProceduresAssessed) + " of the assessed incidents"},
		{"Actions done on time", pct(f.Objective.ActionsDoneOnTime, f.Objective.ActionsWithDueDate) + " of the actions with a due date"},
		{"Data-quality problems", strconv.Itoa(len(c.DataQuality))},
	}
	doc.Charts = programmeCharts(c)
	doc.Sections = programmeSections(c)
	return doc
}

func programmeCharts(c ProgrammeContent) []pdf.Chart {
	labels := make([]string, len(c.Monthly))
	categories := map[string]bool{}
	for i, m := range c.Monthly {
		labels[i] = m.Label
		for cat, cf := range m.ByCategory {
			if cf.Incidents > 0 {
				categories[cat] = true
			}
		}
	}
	byCategory := pdf.Chart{Title: "Incidents per month by category", Kind: pdf.StackedBars, Unit: "incidents", Counts: true, Labels: labels,
		Note: "Incidents closed each month, exercises left out."}
	for _, cat := range slices.Sorted(maps.Keys(categories)) {
		s := pdf.ChartSeries{Name: cat}
		for _, m := range c.Monthly {
			s.Values = append(s.Values, float64(m.ByCategory[cat].Incidents))
		}
		byCategory.Series = append(byCategory.Series, s)
	}
	trends := pdf.Chart{Title: "Time to each stage, mean per month", Kind: pdf.Lines, Unit: "hours", Labels: labels,
		Note: "Months without a measured incident leave a gap. Every figure, with medians, is in the table \"Time per incident\"."}
	for _, name := range trendFigures {
		s := pdf.ChartSeries{Name: figureTitles[name]}
		for _, m := range c.Monthly {
			v := math.NaN()
			if d := m.Total.Durations[name]; d.MeanHours != nil {
				v = *d.MeanHours
			}
			s.Values = append(s.Values, v)
		}
		trends.Series = append(trends.Series, s)
	}
	actions := pdf.Chart{Title: "Improvement actions of each month's incidents", Kind: pdf.StackedBars, Unit: "actions",
		Counts: true, Labels: labels, Note: "Actions by their state today; \"not done\" are open, in progress or dropped and not overdue."}
	done, overdue, rest := pdf.ChartSeries{Name: "done"}, pdf.ChartSeries{Name: "overdue"}, pdf.ChartSeries{Name: "not done"}
	for _, m := range c.Monthly {
		a := m.Total.Actions
		done.Values = append(done.Values, float64(a.Done))
		overdue.Values = append(overdue.Values, float64(a.Overdue))
		rest.Values = append(rest.Values, float64(a.Created-a.Done-a.Overdue))
	}
	actions.Series = []pdf.ChartSeries{done, overdue, rest}
	return []pdf.Chart{byCategory, trends, actions}
}

func durationRow(title string, d Duration) []string {
	return []string{title, strconv.Itoa(d.Count), hoursOf(d.MeanHours), hoursOf(d.MedianHours), strconv.Itoa(d.Missing),
		strconv.Itoa(d.Excluded)}
}

func programmeSections(c ProgrammeContent) []pdf.Section {
	pf := c.Figures
	f := pf.Total
	durations := pdf.Section{Heading: "Time per incident",
		Intro: "Hours from the incident's start to each stage, and from closure to the completed review. \"Missing\" " +
			"incidents lack one of the two times; \"excluded\" ones have a time in the future or out of order.",
		Columns: []string{"Figure", "Measured", "Mean", "Median", "Missing", "Excluded"}, Widths: []float64{3.2, 1.2, 1.2, 1.2, 1.1, 1.1}}
	for _, name := range DurationFigureNames() {
		durations.Rows = append(durations.Rows, durationRow(figureTitles[name], f.Durations[name]))
	}
	sections := []pdf.Section{durations}
	for _, dim := range []struct {
		heading string
		m       map[string]Figures
	}{{"By category", pf.ByCategory}, {"By subcategory", pf.BySubcategory}, {"By severity", pf.BySeverity}} {
		s := pdf.Section{Heading: dim.heading, Empty: "No incident in this period.",
			Columns: []string{"Group", "Incidents", "Back-fills", "Exercises", "Closure, median", "Labour", "Cost", "Recurring"},
			Widths:  []float64{2.3, 1.1, 1.1, 1.1, 1.7, 1.1, 2, 1.1}}
		for _, k := range slices.Sorted(maps.Keys(dim.m)) {
			g := dim.m[k]
			s.Rows = append(s.Rows, []string{k, strconv.Itoa(g.Incidents), strconv.Itoa(g.Backfilled),
				strconv.Itoa(g.ExercisesExcluded), hoursOf(g.Durations[FigureStartToClosure].MedianHours),
				strconv.FormatFloat(g.Labour.TotalHours, 'f', 1, 64) + " h", costText(g.Cost), strconv.Itoa(g.Recurrence.Recurring)})
		}
		sections = append(sections, s)
	}
	labour := pdf.Section{Heading: "Labour and cost",
		Intro:   "Hours recorded per person on each incident, and the incidents' estimated cost, summed exactly per currency.",
		Columns: []string{"Measure", "Value"}, Widths: []float64{1, 2},
		Rows: [][]string{{"Labour hours", strconv.FormatFloat(f.Labour.TotalHours, 'f', 2, 64)},
			{"Incidents with labour recorded", strconv.Itoa(f.Labour.Incidents)},
			{"Mean labour per incident", hoursOf(f.Labour.MeanHours)}}}
	for _, cur := range slices.Sorted(maps.Keys(f.Cost)) {
		cf := f.Cost[cur]
		labour.Rows = append(labour.Rows, []string{"Estimated cost (" + cur + ")",
			fmt.Sprintf("%s %s over %s, mean %s %s", cur, cf.Total, incidentsText(cf.Incidents), cur, cf.Mean)})
	}
	if len(f.Cost) == 0 {
		labour.Rows = append(labour.Rows, []string{"Estimated cost", "none recorded"})
	}
	impact := pdf.Section{Heading: "Initial and final impact",
		Intro:   "How the impact judged when the incident was first assessed compares with the final judgement.",
		Columns: []string{"Measure", "Incidents"}, Widths: []float64{2, 1},
		Rows: [][]string{{"Compared (both levels known)", strconv.Itoa(f.Impact.Compared)},
			{"Final impact higher than initial", strconv.Itoa(f.Impact.Raised)},
			{"Final impact lower than initial", strconv.Itoa(f.Impact.Lowered)},
			{"Unchanged", strconv.Itoa(f.Impact.Unchanged)},
			{"Not comparable (a level missing)", strconv.Itoa(f.Impact.NotCompared)}}}
	for _, level := range []string{"critical", "high", "medium", "low", "none"} {
		if n := f.Impact.FinalLevels[level]; n > 0 {
			impact.Rows = append(impact.Rows, []string{"Final impact " + level, strconv.Itoa(n)})
		}
	}
	impact.Rows = append(impact.Rows, []string{"Records affected", strconv.FormatInt(f.Impact.RecordsAffected, 10)},
		[]string{"Downtime (minutes)", strconv.FormatInt(f.Impact.DowntimeMinutes, 10)})
	recurrence := pdf.Section{Heading: "Recurrence",
		Intro: fmt.Sprintf("Recurring: %s (%d by the same category and an affected asset, %d by the same root cause) "+
			"of an incident closed at most %.0f days before it started, exercises left out. Each earlier incident is "+
			"listed with its improvement actions and their state today.",
			incidentsText(f.Recurrence.Recurring), f.Recurrence.SameCategoryAsset, f.Recurrence.SameRootCause, c.RecurrenceDays),
		Empty:   "No incident of this period recurs an earlier one.",
		Columns: []string{"Incident", "Earlier incident", "Earlier closed", "Why", "Earlier actions"},
		Widths:  []float64{2, 2, 1.2, 1.8, 2.2}}
	for _, r := range c.Recurrences {
		for _, e := range r.Earlier {
			var acts []string
			for _, a := range e.Actions {
				acts = append(acts, a.ActionID+" ("+a.Status+")")
			}
			if len(acts) == 0 {
				acts = []string{"none"}
			}
			recurrence.Rows = append(recurrence.Rows, []string{r.IncidentID, e.IncidentID, e.ClosedAt.UTC().Format("2006-01-02"),
				strings.Join(e.Reasons, "; "), strings.Join(acts, "\n")})
		}
	}
	o := f.Objective
	actions := pdf.Section{Heading: "Improvement actions",
		Intro:   "The actions the reviews of this period's incidents decided on, in their state today.",
		Columns: []string{"Measure", "Value"}, Widths: []float64{2, 1},
		Rows: [][]string{{"Created", strconv.Itoa(f.Actions.Created)}, {"Done", strconv.Itoa(f.Actions.Done)},
			{"Overdue (not done)", strconv.Itoa(f.Actions.Overdue)},
			{"Creation to done, mean", hoursOf(f.Actions.CompletionTime.MeanHours)},
			{"Creation to done, median", hoursOf(f.Actions.CompletionTime.MedianHours)},
			{"Completion times excluded (data quality)", strconv.Itoa(f.Actions.CompletionTime.Excluded)}}}
	ratings := pdf.Section{Heading: "Subjective assessment",
		Intro: fmt.Sprintf("The review participants' ratings (1 to 5) per question; %d answers, mean %s.",
			f.Ratings.Answers, meanText(f.Ratings.Mean)),
		Empty: "No rating was given in this period's reviews.", Columns: []string{"Question", "Answers", "Mean"},
		Widths: []float64{3, 1, 1}}
	for _, q := range slices.Sorted(maps.Keys(f.Ratings.ByQuestion)) {
		r := f.Ratings.ByQuestion[q]
		ratings.Rows = append(ratings.Rows, []string{q, strconv.Itoa(r.Answers), strconv.FormatFloat(r.Mean, 'f', 2, 64)})
	}
	objective := pdf.Section{Heading: "Objective assessment",
		Intro: "Whether documented procedures were followed, per the reviews' answers (each incident's verdict is the " +
			"answer most participants gave; a tie counts as the less followed answer), and whether the improvement " +
			"actions were done by their due date (the end of that day, UTC).",
		Columns: []string{"Measure", "Value"}, Widths: []float64{2, 1},
		Rows: [][]string{{"Incidents naming the playbook followed", strconv.Itoa(o.PlaybookNamed)},
			{"… whose review says it was followed fully or mostly", strconv.Itoa(o.PlaybookFollowed)},
			{"Incidents whose review assessed the procedures", strconv.Itoa(o.ProceduresAssessed)},
			{"Procedures followed fully or mostly", pct(o.ProceduresFollowed, o.ProceduresAssessed)}}}
	for _, v := range append(slices.Clone(procedureChoices), otherVerdicts(o.Procedures)...) {
		if n := o.Procedures[v]; n > 0 {
			objective.Rows = append(objective.Rows, []string{"Verdict \"" + v + "\"", strconv.Itoa(n)})
		}
	}
	objective.Rows = append(objective.Rows, []string{"Actions with a due date", strconv.Itoa(o.ActionsWithDueDate)},
		[]string{"Done on time", pct(o.ActionsDoneOnTime, o.ActionsWithDueDate)},
		[]string{"Done late", strconv.Itoa(o.ActionsDoneLate)},
		[]string{"Not done, past the due date", strconv.Itoa(o.ActionsOpenPastDue)})
	quality := pdf.Section{Heading: "Data quality",
		Intro: "Figures left out because a timestamp lies in the future or before the one it is measured from, " +
			"or a cost is not a non-negative amount. Correct the incident at its source and publish the period again.",
		Empty:   "No figure of this period was left out.",
		Columns: []string{"Incident", "Action", "Figure", "Reason"}, Widths: []float64{2, 1.6, 1.6, 2.6}}
	for _, d := range c.DataQuality {
		quality.Rows = append(quality.Rows, []string{d.IncidentID, orDashText(d.ActionID), figureTitles[d.Figure], d.Reason})
	}
	return append(sections, labour, impact, recurrence, actions, ratings, objective, quality)
}

func otherVerdicts(m map[string]int) []string {
	var out []string
	for _, v := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(procedureChoices, v) {
			out = append(out, v)
		}
	}
	return out
}

func meanText(m *float64) string {
	if m == nil {
		return "–"
	}
	return strconv.FormatFloat(*m, 'f', 2, 64)
}

func orDashText(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
