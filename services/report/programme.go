package report

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// ProgrammeSource reads the facts programme figures are computed from.
type ProgrammeSource interface {
	// ProgrammeFacts returns the incidents closed in [from, to), exercises
	// included, and the improvement actions of those incidents.
	ProgrammeFacts(ctx context.Context, from, to time.Time) ([]IncidentFacts, []ActionFacts, error)
}

// IncidentFacts is what the read model knows of one incident.
type IncidentFacts struct {
	IncidentID, Severity, Category, Subcategory string
	Exercise                                    bool
	StartedAt, DetectedAt, ReportedAt           *time.Time
	ImpactAssessedAt, ContainedAt, EradicatedAt *time.Time
	RecoveredAt, ResolvedAt                     *time.Time
	// ManagementNotifiedAt and ExternalNotifiedAt are the earliest
	// notification of management and of an outside party (regulator, law
	// enforcement, customers, partners).
	ManagementNotifiedAt, ExternalNotifiedAt *time.Time
	ClosedAt, RegisteredAt                   time.Time
	ReviewCompletedAt                        *time.Time
	// LabourHours is the sum of the incident's labour entries (nil: none recorded).
	LabourHours *float64
	// CostAmount is the estimated cost as an exact decimal in CostCurrency ("": unknown).
	CostAmount, CostCurrency string
	// InitialImpact and FinalImpact are the impact levels judged at the start and at the end.
	InitialImpact, FinalImpact       string
	RecordsAffected, DowntimeMinutes *int64
	// RootCause and Assets (lower-cased names and identifiers) find recurrences.
	RootCause string
	Assets    []string
	// Playbook names the response procedure the incident says was followed.
	Playbook string
	// Ratings are the review's rating answers per question id.
	Ratings map[string]RatingTotal
	// ProcedureAnswers counts the review's answers to "were the documented
	// procedures followed?" per choice.
	ProcedureAnswers map[string]int
}

// RatingTotal sums the rating answers to one question.
type RatingTotal struct{ Sum, Count int }

// ActionFacts is what the read model knows of one improvement action.
type ActionFacts struct {
	ActionID, IncidentID, Status string
	StatusAt                     time.Time
	CreatedAt                    *time.Time
	// DueDate is the day (UTC midnight) the action is due by, if it has one.
	DueDate *time.Time
	// Overdue is true for an action reported overdue and not done or dropped.
	Overdue bool
}

// Period is the length of one step of the programme time series.
type Period string

// The periods of GET /v1/metrics/programme?period=.
const (
	PeriodMonth   Period = "month"
	PeriodQuarter Period = "quarter"
)

// ParsePeriod returns the period named s ("" is a month).
func ParsePeriod(s string) (Period, error) {
	switch Period(s) {
	case "", PeriodMonth:
		return PeriodMonth, nil
	case PeriodQuarter:
		return PeriodQuarter, nil
	}
	return "", fmt.Errorf("unknown period %q: want month or quarter", s)
}

// Start returns the first instant (UTC) of the period holding t.
func (p Period) Start(t time.Time) time.Time {
	t = t.UTC()
	m := t.Month()
	if p == PeriodQuarter {
		m = (m-1)/3*3 + 1
	}
	return time.Date(t.Year(), m, 1, 0, 0, 0, 0, time.UTC)
}

// Next returns the start of the period after the one starting at start.
func (p Period) Next(start time.Time) time.Time {
	if p == PeriodQuarter {
		return start.AddDate(0, 3, 0)
	}
	return start.AddDate(0, 1, 0)
}

// Label names the period starting at start: "2026-03" or "2026-Q1".
func (p Period) Label(start time.Time) string {
	if p == PeriodQuarter {
		return fmt.Sprintf("%d-Q%d", start.Year(), (int(start.Month())+2)/3)
	}
	return start.Format("2006-01")
}

// The duration figures, in hours. Every one but closure_to_review is
// measured from the incident's start (NIST SP 800-61 §3.4.2).
const (
	FigureStartToDetection   = "start_to_detection"
	FigureStartToReport      = "start_to_report"
	FigureStartToAssessment  = "start_to_initial_assessment"
	FigureStartToContainment = "start_to_containment"
	FigureStartToEradication = "start_to_eradication"
	FigureStartToRecovery    = "start_to_recovery"
	FigureStartToResolution  = "start_to_resolution"
	FigureStartToManagement  = "start_to_management_notification"
	FigureStartToExternal    = "start_to_external_notification"
	FigureStartToClosure     = "start_to_closure"
	FigureStartToReview      = "start_to_review_completion"
	FigureClosureToReview    = "closure_to_review_completion"
	FigureActionCompletion   = "action_completion"
)

type durationFigure struct {
	name     string
	from, to func(f IncidentFacts) *time.Time
}

var (
	startOf  = func(f IncidentFacts) *time.Time { return f.StartedAt }
	closedOf = func(f IncidentFacts) *time.Time { return &f.ClosedAt }
	review   = func(f IncidentFacts) *time.Time { return f.ReviewCompletedAt }
)

// durationFigures are the duration figures in the order of an incident's handling.
var durationFigures = []durationFigure{
	{FigureStartToDetection, startOf, func(f IncidentFacts) *time.Time { return f.DetectedAt }},
	{FigureStartToReport, startOf, func(f IncidentFacts) *time.Time { return f.ReportedAt }},
	{FigureStartToAssessment, startOf, func(f IncidentFacts) *time.Time { return f.ImpactAssessedAt }},
	{FigureStartToContainment, startOf, func(f IncidentFacts) *time.Time { return f.ContainedAt }},
	{FigureStartToEradication, startOf, func(f IncidentFacts) *time.Time { return f.EradicatedAt }},
	{FigureStartToRecovery, startOf, func(f IncidentFacts) *time.Time { return f.RecoveredAt }},
	{FigureStartToResolution, startOf, func(f IncidentFacts) *time.Time { return f.ResolvedAt }},
	{FigureStartToManagement, startOf, func(f IncidentFacts) *time.Time { return f.ManagementNotifiedAt }},
	{FigureStartToExternal, startOf, func(f IncidentFacts) *time.Time { return f.ExternalNotifiedAt }},
	{FigureStartToClosure, startOf, closedOf},
	{FigureStartToReview, startOf, review},
	{FigureClosureToReview, closedOf, review},
}

// DefaultBackfillAfter is how long after its closure an incident must have
// been registered to count as a historical back-fill.
const DefaultBackfillAfter = 7 * 24 * time.Hour

// MaxProgrammePeriods bounds the length of one time series.
const MaxProgrammePeriods = 240

// ProgrammeOptions says which figures BuildProgramme computes.
type ProgrammeOptions struct {
	Period   Period
	From, To time.Time
	// Now is the time of computation: a later timestamp is a data-quality problem.
	Now time.Time
	// BackfillAfter is DefaultBackfillAfter when zero.
	BackfillAfter time.Duration
	// RecurrenceWindow is DefaultRecurrenceWindow when zero.
	RecurrenceWindow time.Duration
}

// Programme is the programme's figures over time (NIST SP 800-61 §3.4.2).
type Programme struct {
	Period             Period          `json:"period"`
	GeneratedAt        time.Time       `json:"generated_at"`
	BackfillAfterHours float64         `json:"backfill_after_hours"`
	RecurrenceDays     float64         `json:"recurrence_window_days"`
	Series             []PeriodFigures `json:"series"`
	// Recurrences lists every incident of the series that recurs earlier ones.
	Recurrences []Recurrence `json:"recurrences"`
	// DataQuality lists every figure left out because a timestamp is in the
	// future or a milestone comes before the one it is measured from.
	DataQuality []DataProblem `json:"data_quality"`
}

// PeriodFigures are the figures of the incidents closed in one period, in
// total and by category, "category/subcategory" and severity.
type PeriodFigures struct {
	Label         string             `json:"label"`
	Start         time.Time          `json:"start"`
	End           time.Time          `json:"end"`
	Total         Figures            `json:"all"`
	ByCategory    map[string]Figures `json:"by_category"`
	BySubcategory map[string]Figures `json:"by_subcategory"`
	BySeverity    map[string]Figures `json:"by_severity"`
}

// Figures measure a set of incidents. Exercises are left out of every figure
// and only counted; back-fills are included and counted.
type Figures struct {
	Incidents         int                 `json:"incidents"`
	Backfilled        int                 `json:"backfilled"`
	ExercisesExcluded int                 `json:"exercises_excluded"`
	Durations         map[string]Duration `json:"durations"`
	Labour            LabourFigures       `json:"labour"`
	// Cost is the estimated cost by ISO 4217 currency.
	Cost       map[string]CostFigures `json:"cost"`
	Impact     ImpactFigures          `json:"impact"`
	Recurrence RecurrenceFigures      `json:"recurrence"`
	Actions    ActionFigures          `json:"actions"`
	Ratings    RatingFigures          `json:"ratings"`
	Objective  ObjectiveFigures       `json:"objective"`
}

// Duration summarises one duration figure in hours. Missing counts incidents
// lacking a milestone; Excluded those left out for a data-quality problem.
type Duration struct {
	Count       int      `json:"count"`
	MeanHours   *float64 `json:"mean_hours"`
	MedianHours *float64 `json:"median_hours"`
	Missing     int      `json:"missing"`
	Excluded    int      `json:"excluded_data_quality"`
}

// ActionFigures count improvement actions: Overdue are those reported
// overdue and not done or dropped; CompletionTime runs from creation to done.
type ActionFigures struct {
	Created        int      `json:"created"`
	Done           int      `json:"done"`
	Overdue        int      `json:"overdue"`
	CompletionTime Duration `json:"completion_time"`
}

// RatingFigures average the rating answers (1-5) of the reviews.
type RatingFigures struct {
	Answers    int                   `json:"answers"`
	Mean       *float64              `json:"mean"`
	ByQuestion map[string]RatingMean `json:"by_question"`
}

// RatingMean is the mean of the answers to one rating question.
type RatingMean struct {
	Answers int     `json:"answers"`
	Mean    float64 `json:"mean"`
}

// DataProblem is one figure left out of the programme's numbers.
type DataProblem struct {
	IncidentID string `json:"incident_id"`
	ActionID   string `json:"action_id,omitempty"`
	Figure     string `json:"figure"`
	Reason     string `json:"reason"`
}

// BuildProgramme computes the programme's figures from the facts of the
// incidents closed in [o.From, o.To) and their actions, one entry per
// calendar period (UTC) from the one holding o.From to the one holding the
// last instant before o.To, empty periods included. Incidents closed before
// the first period only serve to find recurrences. A duration whose ends are
// out of order or later than o.Now is never negative: it is left out and
// counted as a data-quality problem, as is a cost that is not a decimal or
// is negative.
func BuildProgramme(o ProgrammeOptions, incidents []IncidentFacts, actions []ActionFacts) Programme {
	if o.BackfillAfter == 0 {
		o.BackfillAfter = DefaultBackfillAfter
	}
	if o.RecurrenceWindow == 0 {
		o.RecurrenceWindow = DefaultRecurrenceWindow
	}
	p := Programme{Period: o.Period, GeneratedAt: o.Now, BackfillAfterHours: o.BackfillAfter.Hours(),
		RecurrenceDays: o.RecurrenceWindow.Hours() / 24,
		Series:         []PeriodFigures{}, Recurrences: []Recurrence{}, DataQuality: []DataProblem{}}
	index := map[time.Time]int{}
	for start := o.Period.Start(o.From); start.Before(o.To); start = o.Period.Next(start) {
		index[start] = len(p.Series)
		p.Series = append(p.Series, PeriodFigures{Label: o.Period.Label(start), Start: start, End: o.Period.Next(start),
			ByCategory: map[string]Figures{}, BySubcategory: map[string]Figures{}, BySeverity: map[string]Figures{}})
	}
	periodOf := func(f IncidentFacts) (int, bool) {
		if f.ClosedAt.Before(o.From) || !f.ClosedAt.Before(o.To) {
			return 0, false
		}
		i, ok := index[o.Period.Start(f.ClosedAt)]
		return i, ok
	}
	var counted []IncidentFacts
	for _, f := range incidents {
		if _, ok := periodOf(f); ok && !f.Exercise {
			counted = append(counted, f)
		}
	}
	earlier := recurrences(counted, incidents, actions, o.RecurrenceWindow, o.Now)
	accs := map[accKey]*accumulator{}
	groups := map[string][]*accumulator{} // incident id → the accumulators it counts in
	for _, f := range incidents {
		i, ok := periodOf(f)
		if !ok {
			continue
		}
		var mine []*accumulator
		for _, k := range keysOf(i, f) {
			a := accs[k]
			if a == nil {
				a = newAccumulator()
				accs[k] = a
			}
			mine = append(mine, a)
		}
		if f.Exercise {
			for _, a := range mine {
				a.f.ExercisesExcluded++
			}
			continue
		}
		groups[f.IncidentID] = mine
		backfill := f.RegisteredAt.Sub(f.ClosedAt) > o.BackfillAfter
		for _, a := range mine {
			a.f.Incidents++
			if backfill {
				a.f.Backfilled++
			}
		}
		for _, d := range durationFigures {
			h, problem, ok := span(d.from(f), d.to(f), o.Now)
			if problem != "" {
				p.DataQuality = append(p.DataQuality, DataProblem{IncidentID: f.IncidentID, Figure: d.name, Reason: problem})
			}
			for _, a := range mine {
				a.add(d.name, h, problem, ok)
			}
		}
		in := incidentFacts{f: f, verdict: procedureVerdict(f.ProcedureAnswers), earlier: earlier[f.IncidentID]}
		var problem string
		if in.cost, problem = parseCost(f); problem != "" {
			p.DataQuality = append(p.DataQuality, DataProblem{IncidentID: f.IncidentID, Figure: FigureCost, Reason: problem})
		}
		if len(in.earlier) > 0 {
			p.Recurrences = append(p.Recurrences, Recurrence{IncidentID: f.IncidentID, Period: p.Series[i].Label,
				Category: f.Category, Earlier: in.earlier})
		}
		for _, a := range mine {
			a.inc.add(in)
		}
		for q, r := range f.Ratings {
			for _, a := range mine {
				t := a.ratings[q]
				t.Sum += r.Sum
				t.Count += r.Count
				a.ratings[q] = t
			}
		}
	}
	for _, act := range actions {
		mine, ok := groups[act.IncidentID]
		if !ok {
			continue
		}
		var h float64
		var problem string
		var measured bool
		if act.Status == "done" {
			h, problem, measured = span(act.CreatedAt, &act.StatusAt, o.Now)
			if problem != "" {
				p.DataQuality = append(p.DataQuality, DataProblem{IncidentID: act.IncidentID, ActionID: act.ActionID,
					Figure: FigureActionCompletion, Reason: problem})
			}
		}
		for _, a := range mine {
			a.f.Actions.Created++
			if act.Overdue {
				a.f.Actions.Overdue++
			}
			if act.Status == "done" {
				a.f.Actions.Done++
				a.add(FigureActionCompletion, h, problem, measured)
			}
			a.inc.addAction(act, o.Now)
		}
	}
	for k, a := range accs {
		f := a.figures()
		pf := &p.Series[k.period]
		switch k.dim {
		case "":
			pf.Total = f
		case "category":
			pf.ByCategory[k.value] = f
		case "subcategory":
			pf.BySubcategory[k.value] = f
		case "severity":
			pf.BySeverity[k.value] = f
		}
	}
	for i := range p.Series {
		if p.Series[i].Total.Durations == nil {
			p.Series[i].Total = newAccumulator().figures()
		}
	}
	slices.SortFunc(p.DataQuality, func(a, b DataProblem) int {
		if a.IncidentID != b.IncidentID {
			return compareStrings(a.IncidentID, b.IncidentID)
		}
		if a.ActionID != b.ActionID {
			return compareStrings(a.ActionID, b.ActionID)
		}
		return compareStrings(a.Figure, b.Figure)
	})
	return p
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// span is the time from a to b in hours. ok is false when either is unknown
// or the pair has a data-quality problem, which problem then names.
func span(a, b *time.Time, now time.Time) (hours float64, problem string, ok bool) {
	switch {
	case a == nil || b == nil:
		return 0, "", false
	case a.After(now) || b.After(now):
		return 0, "timestamp in the future", false
	case b.Before(*a):
		return 0, "out of order: ends " + a.Sub(*b).String() + " before it starts", false
	}
	return b.Sub(*a).Hours(), "", true
}

type accKey struct {
	period     int
	dim, value string
}

func keysOf(period int, f IncidentFacts) []accKey {
	cat := f.Category
	if cat == "" {
		cat = "uncategorised"
	}
	keys := []accKey{{period, "", ""}, {period, "category", cat}, {period, "severity", f.Severity}}
	if f.Subcategory != "" {
		keys = append(keys, accKey{period, "subcategory", cat + "/" + f.Subcategory})
	}
	return keys
}

type accumulator struct {
	f        Figures
	inc      incidentAcc
	values   map[string][]float64
	missing  map[string]int
	excluded map[string]int
	ratings  map[string]RatingTotal
}

func newAccumulator() *accumulator {
	return &accumulator{inc: newIncidentAcc(), values: map[string][]float64{}, missing: map[string]int{},
		excluded: map[string]int{}, ratings: map[string]RatingTotal{}}
}

func (a *accumulator) add(figure string, hours float64, problem string, ok bool) {
	switch {
	case ok:
		a.values[figure] = append(a.values[figure], hours)
	case problem != "":
		a.excluded[figure]++
	default:
		a.missing[figure]++
	}
}

func (a *accumulator) duration(figure string) Duration {
	d := Duration{Count: len(a.values[figure]), Missing: a.missing[figure], Excluded: a.excluded[figure]}
	if d.Count == 0 {
		return d
	}
	v := slices.Clone(a.values[figure])
	slices.Sort(v)
	var sum float64
	for _, x := range v {
		sum += x
	}
	mean := sum / float64(len(v))
	median := v[len(v)/2]
	if len(v)%2 == 0 {
		median = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	d.MeanHours, d.MedianHours = &mean, &median
	return d
}

func (a *accumulator) figures() Figures {
	f := a.f
	f.Durations = map[string]Duration{}
	for _, d := range durationFigures {
		f.Durations[d.name] = a.duration(d.name)
	}
	f.Actions.CompletionTime = a.duration(FigureActionCompletion)
	a.inc.figures(&f)
	f.Ratings.ByQuestion = map[string]RatingMean{}
	var sum int
	for q, r := range a.ratings {
		f.Ratings.ByQuestion[q] = RatingMean{Answers: r.Count, Mean: float64(r.Sum) / float64(r.Count)}
		sum += r.Sum
		f.Ratings.Answers += r.Count
	}
	if f.Ratings.Answers > 0 {
		mean := float64(sum) / float64(f.Ratings.Answers)
		f.Ratings.Mean = &mean
	}
	return f
}

// ComputeProgramme reads the facts of o's window, and of the recurrence
// window before it, from src and computes its figures.
func ComputeProgramme(ctx context.Context, src ProgrammeSource, o ProgrammeOptions) (Programme, error) {
	window := o.RecurrenceWindow
	if window == 0 {
		window = DefaultRecurrenceWindow
	}
	incidents, actions, err := src.ProgrammeFacts(ctx, o.Period.Start(o.From).Add(-window), o.To)
	if err != nil {
		return Programme{}, err
	}
	return BuildProgramme(o, incidents, actions), nil
}
