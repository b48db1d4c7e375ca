package report

import (
	"math/big"
	"slices"
	"strings"
	"time"
)

// DurationFigureNames returns the duration figures in the order of an
// incident's handling (closure_to_review_completion last).
func DurationFigureNames() []string {
	names := make([]string, len(durationFigures))
	for i, d := range durationFigures {
		names[i] = d.name
	}
	return names
}

// DefaultRecurrenceWindow is how long after an incident's closure another
// of the same kind counts as a recurrence of it.
const DefaultRecurrenceWindow = 90 * 24 * time.Hour

// FigureCost names a data-quality problem of an incident's estimated cost.
const FigureCost = "cost"

// LabourFigures sum the hours people spent on incidents.
type LabourFigures struct {
	// Incidents counts the incidents with labour recorded.
	Incidents  int      `json:"incidents"`
	TotalHours float64  `json:"total_hours"`
	MeanHours  *float64 `json:"mean_hours"`
}

// CostFigures sum the estimated cost of incidents in one currency, exactly:
// Total and Mean are decimal strings with two decimals (Mean rounded half away from zero).
type CostFigures struct {
	Incidents int    `json:"incidents"`
	Total     string `json:"total"`
	Mean      string `json:"mean"`
}

// ImpactFigures compare the impact judged at the start with the final one:
// Raised counts incidents whose final level is higher than the initial,
// Lowered lower, Unchanged the same; NotCompared lacks one of the two.
type ImpactFigures struct {
	Compared        int            `json:"compared"`
	Unchanged       int            `json:"unchanged"`
	Raised          int            `json:"raised"`
	Lowered         int            `json:"lowered"`
	NotCompared     int            `json:"not_compared"`
	FinalLevels     map[string]int `json:"final_levels"`
	RecordsAffected int64          `json:"records_affected"`
	DowntimeMinutes int64          `json:"downtime_minutes"`
}

// RecurrenceFigures count incidents that recur an earlier one (see Recurrence).
type RecurrenceFigures struct {
	Recurring         int `json:"recurring"`
	SameCategoryAsset int `json:"same_category_and_asset"`
	SameRootCause     int `json:"same_root_cause"`
}

// ObjectiveFigures are the objective assessment of the response (NIST SP
// 800-61 §3.4.2): whether documented procedures were followed, per the
// review's answers, and whether actions were done by their due date.
type ObjectiveFigures struct {
	// PlaybookNamed counts incidents naming the playbook they followed;
	// PlaybookFollowed those of them whose review says procedures were
	// followed fully or mostly.
	PlaybookNamed    int `json:"playbook_named"`
	PlaybookFollowed int `json:"playbook_followed"`
	// ProceduresAssessed counts incidents whose review answered whether
	// procedures were followed; Procedures counts each incident's verdict
	// (the most given answer; a tie goes to the less followed one);
	// ProceduresFollowed those answered "fully" or "mostly".
	ProceduresAssessed int            `json:"procedures_assessed"`
	ProceduresFollowed int            `json:"procedures_followed"`
	Procedures         map[string]int `json:"procedures"`
	// Actions with a due date: done by the end of that day, done later, and
	// not done (nor dropped) although the day has passed.
	ActionsWithDueDate int `json:"actions_with_due_date"`
	ActionsDoneOnTime  int `json:"actions_done_on_time"`
	ActionsDoneLate    int `json:"actions_done_late"`
	ActionsOpenPastDue int `json:"actions_open_past_due"`
}

// Recurrence links an incident to the earlier ones it recurs: incidents,
// exercises left out, closed within the recurrence window before it started
// (or, without a sane start, before it closed) with the same category and a
// shared affected asset, or the same root cause.
type Recurrence struct {
	IncidentID string            `json:"incident_id"`
	Period     string            `json:"period"`
	Category   string            `json:"category"`
	Earlier    []EarlierIncident `json:"earlier"`
}

// EarlierIncident is an incident recurred, why, and its improvement actions.
type EarlierIncident struct {
	IncidentID string      `json:"incident_id"`
	ClosedAt   time.Time   `json:"closed_at"`
	Reasons    []string    `json:"reasons"`
	Actions    []ActionRef `json:"actions"`
}

// ActionRef is an improvement action of an earlier incident and its status.
type ActionRef struct {
	ActionID string `json:"action_id"`
	Status   string `json:"status"`
}

// procedureChoices are the answers to "were the documented procedures
// followed?", from most to least followed; "no documented procedure
// applied" says nothing about following one.
var procedureChoices = []string{"fully", "mostly", "partly", "not followed", "no documented procedure applied"}

// procedureVerdict is the most given answer of counts; a tie goes to the
// answer later in procedureChoices (then unknown answers, by name). "" when
// there is no answer.
func procedureVerdict(counts map[string]int) string {
	order := slices.Clone(procedureChoices)
	var unknown []string
	for c := range counts {
		if !slices.Contains(order, c) {
			unknown = append(unknown, c)
		}
	}
	slices.Sort(unknown)
	verdict, best := "", 0
	for _, c := range append(order, unknown...) {
		if n := counts[c]; n > 0 && n >= best {
			verdict, best = c, n
		}
	}
	return verdict
}

var impactRank = map[string]int{"none": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

// occurredAt is when an incident happened for recurrence: its start when
// that is known and neither in the future nor after its closure, else its closure.
func occurredAt(f IncidentFacts, now time.Time) time.Time {
	if f.StartedAt != nil && !f.StartedAt.After(now) && !f.StartedAt.After(f.ClosedAt) {
		return *f.StartedAt
	}
	return f.ClosedAt
}

// recurrences finds, for every incident of counted, the earlier incidents
// of all (exercises left out) it recurs within window, with their actions.
func recurrences(counted, all []IncidentFacts, actions []ActionFacts, window time.Duration, now time.Time) map[string][]EarlierIncident {
	byIncident := map[string][]ActionRef{}
	for _, a := range actions {
		byIncident[a.IncidentID] = append(byIncident[a.IncidentID], ActionRef{ActionID: a.ActionID, Status: a.Status})
	}
	for _, refs := range byIncident {
		slices.SortFunc(refs, func(a, b ActionRef) int { return compareStrings(a.ActionID, b.ActionID) })
	}
	out := map[string][]EarlierIncident{}
	for _, b := range counted {
		at := occurredAt(b, now)
		for _, a := range all {
			if a.Exercise || a.IncidentID == b.IncidentID || !a.ClosedAt.Before(at) || at.Sub(a.ClosedAt) > window {
				continue
			}
			var reasons []string
			if a.Category != "" && strings.EqualFold(a.Category, b.Category) {
				for _, asset := range b.Assets {
					if slices.Contains(a.Assets, asset) {
						reasons = append(reasons, "same category and asset "+asset)
						break
					}
				}
			}
			if rc := normalRootCause(b.RootCause); rc != "" && rc == normalRootCause(a.RootCause) {
				reasons = append(reasons, "same root cause")
			}
			if len(reasons) > 0 {
				out[b.IncidentID] = append(out[b.IncidentID], EarlierIncident{IncidentID: a.IncidentID, ClosedAt: a.ClosedAt,
					Reasons: reasons, Actions: orEmpty(byIncident[a.IncidentID])})
			}
		}
	}
	return out
}

// normalRootCause compares root causes case- and space-insensitively.
func normalRootCause(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }

// incidentAcc gathers the figures of one set of incidents that are not durations.
type incidentAcc struct {
	labour     []float64
	cost       map[string]*big.Rat
	costN      map[string]int
	impact     ImpactFigures
	recurrence RecurrenceFigures
	objective  ObjectiveFigures
}

func newIncidentAcc() incidentAcc {
	return incidentAcc{cost: map[string]*big.Rat{}, costN: map[string]int{},
		impact:    ImpactFigures{FinalLevels: map[string]int{}},
		objective: ObjectiveFigures{Procedures: map[string]int{}}}
}

// incidentFacts is what one incident adds to incidentAcc, computed once.
type incidentFacts struct {
	f       IncidentFacts
	cost    *big.Rat // nil: unknown or a data-quality problem
	verdict string
	earlier []EarlierIncident
}

// parseCost reads f's estimated cost; problem names why it is left out.
func parseCost(f IncidentFacts) (cost *big.Rat, problem string) {
	if f.CostAmount == "" || f.CostCurrency == "" {
		return nil, ""
	}
	r, ok := new(big.Rat).SetString(f.CostAmount)
	switch {
	case !ok:
		return nil, "not a decimal amount: " + f.CostAmount
	case r.Sign() < 0:
		return nil, "negative amount: " + f.CostAmount + " " + f.CostCurrency
	}
	return r, ""
}

func (a *incidentAcc) add(in incidentFacts) {
	f := in.f
	if f.LabourHours != nil {
		a.labour = append(a.labour, *f.LabourHours)
	}
	if in.cost != nil {
		if a.cost[f.CostCurrency] == nil {
			a.cost[f.CostCurrency] = new(big.Rat)
		}
		a.cost[f.CostCurrency].Add(a.cost[f.CostCurrency], in.cost)
		a.costN[f.CostCurrency]++
	}
	im := &a.impact
	initial, iok := impactRank[f.InitialImpact]
	final, fok := impactRank[f.FinalImpact]
	switch {
	case !iok || !fok:
		im.NotCompared++
	case final > initial:
		im.Compared++
		im.Raised++
	case final < initial:
		im.Compared++
		im.Lowered++
	default:
		im.Compared++
		im.Unchanged++
	}
	if fok {
		im.FinalLevels[f.FinalImpact]++
	}
	if f.RecordsAffected != nil {
		im.RecordsAffected += *f.RecordsAffected
	}
	if f.DowntimeMinutes != nil {
		im.DowntimeMinutes += *f.DowntimeMinutes
	}
	if len(in.earlier) > 0 {
		a.recurrence.Recurring++
		var asset, cause bool
		for _, e := range in.earlier {
			for _, r := range e.Reasons {
				asset = asset || strings.HasPrefix(r, "same category")
				cause = cause || r == "same root cause"
			}
		}
		if asset {
			a.recurrence.SameCategoryAsset++
		}
		if cause {
			a.recurrence.SameRootCause++
		}
	}
	o := &a.objective
	followed := in.verdict == "fully" || in.verdict == "mostly"
	if in.verdict != "" {
		o.ProceduresAssessed++
		o.Procedures[in.verdict]++
		if followed {
			o.ProceduresFollowed++
		}
	}
	if strings.TrimSpace(f.Playbook) != "" {
		o.PlaybookNamed++
		if followed {
			o.PlaybookFollowed++
		}
	}
}

// addAction judges one action against its due date (the end of that day,
// UTC). Left out: actions without a due date, dropped ones, and those done at
// a time later than now (a data-quality problem the completion figure reports).
func (a *incidentAcc) addAction(act ActionFacts, now time.Time) {
	if act.DueDate == nil {
		return
	}
	deadline := act.DueDate.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	o := &a.objective
	done := act.Status == "done"
	switch {
	case act.Status == "wont_do", done && act.StatusAt.After(now):
		return
	case done && act.StatusAt.Before(deadline):
		o.ActionsDoneOnTime++
	case done:
		o.ActionsDoneLate++
	case now.After(deadline):
		o.ActionsOpenPastDue++
	}
	o.ActionsWithDueDate++
}

func (a *incidentAcc) figures(f *Figures) {
	f.Labour = LabourFigures{Incidents: len(a.labour)}
	for _, h := range a.labour {
		f.Labour.TotalHours += h
	}
	if len(a.labour) > 0 {
		mean := f.Labour.TotalHours / float64(len(a.labour))
		f.Labour.MeanHours = &mean
	}
	f.Cost = map[string]CostFigures{}
	for cur, total := range a.cost {
		mean := new(big.Rat).Quo(total, big.NewRat(int64(a.costN[cur]), 1))
		f.Cost[cur] = CostFigures{Incidents: a.costN[cur], Total: total.FloatString(2), Mean: mean.FloatString(2)}
	}
	f.Impact, f.Recurrence, f.Objective = a.impact, a.recurrence, a.objective
}
