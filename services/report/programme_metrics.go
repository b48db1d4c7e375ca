package report

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// ProgrammeCollector exports the programme figures of the current month and
// quarter (UTC, up to the scrape) as Prometheus gauges, computed from the
// read model at each scrape. Exercises are left out, as in the JSON API.
type ProgrammeCollector struct {
	// RecurrenceWindow is DefaultRecurrenceWindow when zero.
	RecurrenceWindow time.Duration

	source  ProgrammeSource
	log     *zap.Logger
	now     func() time.Time
	timeout time.Duration

	incidents, backfilled, durations, actions, rating, problems *prometheus.Desc
	labour, cost, impact, recurring, objective                  *prometheus.Desc
}

// NewProgrammeCollector returns a collector reading source.
func NewProgrammeCollector(source ProgrammeSource, log *zap.Logger) *ProgrammeCollector {
	return newProgrammeCollector(source, log, time.Now)
}

func newProgrammeCollector(source ProgrammeSource, log *zap.Logger, now func() time.Time) *ProgrammeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("afteraction_programme_"+name, help, append([]string{"period"}, labels...), nil)
	}
	return &ProgrammeCollector{source: source, log: log, now: now, timeout: 10 * time.Second,
		incidents:  d("incidents", "Incidents closed in the current period, exercises excluded.", "severity"),
		backfilled: d("backfilled_incidents", "Incidents of the current period registered long after closure (historical back-fills)."),
		durations:  d("duration_hours", "Time per incident of the current period, by figure and statistic.", "figure", "stat"),
		actions:    d("actions", "Improvement actions of the current period's incidents, by state.", "state"),
		rating:     d("rating_mean", "Mean of the review rating answers (1-5) of the current period."),
		problems:   d("data_quality_excluded", "Figures left out of the current period for a future or out-of-order timestamp.", "figure"),
		labour:     d("labour_hours", "Hours people spent on the current period's incidents."),
		cost:       d("estimated_cost", "Estimated cost of the current period's incidents, by currency.", "currency"),
		impact:     d("impact_changes", "Incidents of the current period by how the final impact compares with the initial one.", "change"),
		recurring:  d("recurring_incidents", "Incidents of the current period that recur an earlier one, by reason.", "reason"),
		objective:  d("objective", "Objective assessment of the current period: procedures followed and actions done on time.", "measure"),
	}
}

// Describe implements prometheus.Collector.
func (c *ProgrammeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.incidents, c.backfilled, c.durations, c.actions, c.rating, c.problems,
		c.labour, c.cost, c.impact, c.recurring, c.objective} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A failed read is reported as an
// invalid metric, so the scrape shows the error.
func (c *ProgrammeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	now := c.now().UTC()
	for _, period := range []Period{PeriodMonth, PeriodQuarter} {
		p, err := ComputeProgramme(ctx, c.source, ProgrammeOptions{Period: period, From: period.Start(now),
			To: now.Add(time.Nanosecond), Now: now, RecurrenceWindow: c.RecurrenceWindow})
		if err != nil {
			c.log.Warn("programme metrics failed", zap.Error(err))
			ch <- prometheus.NewInvalidMetric(c.incidents, err)
			return
		}
		c.collect(ch, string(period), p.Series[len(p.Series)-1])
	}
}

func (c *ProgrammeCollector) collect(ch chan<- prometheus.Metric, period string, pf PeriodFigures) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{period}, labels...)...)
	}
	f := pf.Total
	gauge(c.incidents, float64(f.Incidents), "all")
	for sev, sf := range pf.BySeverity {
		gauge(c.incidents, float64(sf.Incidents), sev)
	}
	gauge(c.backfilled, float64(f.Backfilled))
	durations := map[string]Duration{FigureActionCompletion: f.Actions.CompletionTime}
	for name, d := range f.Durations {
		durations[name] = d
	}
	for name, d := range durations {
		if d.MeanHours != nil {
			gauge(c.durations, *d.MeanHours, name, "mean")
			gauge(c.durations, *d.MedianHours, name, "median")
		}
		gauge(c.problems, float64(d.Excluded), name)
	}
	gauge(c.actions, float64(f.Actions.Created), "created")
	gauge(c.actions, float64(f.Actions.Done), "done")
	gauge(c.actions, float64(f.Actions.Overdue), "overdue")
	if f.Ratings.Mean != nil {
		gauge(c.rating, *f.Ratings.Mean)
	}
	gauge(c.labour, f.Labour.TotalHours)
	for cur, cf := range f.Cost {
		if v, err := strconv.ParseFloat(cf.Total, 64); err == nil {
			gauge(c.cost, v, cur)
		}
	}
	im := f.Impact
	for change, n := range map[string]int{"raised": im.Raised, "lowered": im.Lowered, "unchanged": im.Unchanged,
		"not_compared": im.NotCompared} {
		gauge(c.impact, float64(n), change)
	}
	r := f.Recurrence
	for reason, n := range map[string]int{"any": r.Recurring, "same_category_and_asset": r.SameCategoryAsset,
		"same_root_cause": r.SameRootCause} {
		gauge(c.recurring, float64(n), reason)
	}
	o := f.Objective
	for measure, n := range map[string]int{"playbook_named": o.PlaybookNamed, "playbook_followed": o.PlaybookFollowed,
		"procedures_assessed": o.ProceduresAssessed, "procedures_followed": o.ProceduresFollowed,
		"actions_with_due_date": o.ActionsWithDueDate, "actions_done_on_time": o.ActionsDoneOnTime,
		"actions_done_late": o.ActionsDoneLate, "actions_open_past_due": o.ActionsOpenPastDue} {
		gauge(c.objective, float64(n), measure)
	}
}
