package review

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

const day = 24 * time.Hour

func TestRevisionReschedulesOpenReview(t *testing.T) {
	t.Parallel()
	f := setup(t)
	cases := []struct {
		name     string
		severity events.Severity
		revise   func(inc *events.IncidentClosed)
		due      *time.Duration // after the revised closed_at; nil: optional, no due date
		exercise bool
	}{
		{"medium reclassified as critical", events.SeverityMedium,
			func(inc *events.IncidentClosed) { inc.Severity = events.SeverityCritical }, dur(72), false},
		{"optional low raised to critical", events.SeverityLow,
			func(inc *events.IncidentClosed) { inc.Severity = events.SeverityCritical }, dur(72), false},
		{"reopened and closed again", events.SeverityHigh,
			func(inc *events.IncidentClosed) { inc.Timestamps.ClosedAt = inc.Timestamps.ClosedAt.Add(5 * day) }, dur(120), false},
		{"critical lowered to low", events.SeverityCritical,
			func(inc *events.IncidentClosed) { inc.Severity = events.SeverityLow }, nil, false},
		{"turned out to be an exercise", events.SeverityCritical,
			func(inc *events.IncidentClosed) { inc.Exercise = true }, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := registered(t)
			e.Incident.Severity = c.severity
			first := f.open(e)
			e.Revision++
			c.revise(&e.Incident)
			if _, out := f.handle(e); out != OutcomeUpdated {
				t.Fatalf("revision: %s, want updated", out)
			}
			r := f.only(e.IncidentID)
			if r.ReviewID != first.ReviewID || !r.OpenedAt.Equal(first.OpenedAt) {
				t.Fatalf("the revision replaced the review: %+v", r)
			}
			if r.Exercise != c.exercise {
				t.Errorf("exercise = %v, want %v", r.Exercise, c.exercise)
			}
			if c.due == nil {
				if r.Required || r.DueAt != nil {
					t.Errorf("required=%v due=%v, want optional without a due date", r.Required, r.DueAt)
				}
				return
			}
			want := e.Incident.Timestamps.ClosedAt.Add(*c.due)
			if !r.Required || r.DueAt == nil || !r.DueAt.Equal(want) {
				t.Errorf("required=%v due=%v, want required, due %v (was %v)", r.Required, r.DueAt, want, first.DueAt)
			}
		})
	}
}

func TestRevisionLeavesCompletedReviewDueDate(t *testing.T) {
	t.Parallel()
	f := setup(t)
	e := registered(t)
	e.Incident.Severity = events.SeverityMedium
	first := f.open(e)
	if _, err := f.svc.Complete(context.Background(), first.ReviewID, CompleteRequest{}); err != nil {
		t.Fatal(err)
	}
	e.Revision++
	e.Incident.Severity = events.SeverityCritical
	e.Incident.Timestamps.ClosedAt = e.Incident.Timestamps.ClosedAt.Add(5 * day)
	if _, out := f.handle(e); out != OutcomeBehind {
		t.Fatalf("revision: %s, want completed_review_behind", out)
	}
	r := f.only(e.IncidentID)
	if !r.Required || r.DueAt == nil || !r.DueAt.Equal(*first.DueAt) || !r.Stale {
		t.Errorf("completed review after a revision: required=%v due=%v stale=%v, want due %v unchanged and stale",
			r.Required, r.DueAt, r.Stale, *first.DueAt)
	}
}

func TestHistoricalIncidentsGetNoDueDateOrReminders(t *testing.T) {
	t.Parallel()
	f := setupWith(t, func(c *ServiceConfig) { c.MaxAge = 30 * day })
	ctx := context.Background()
	now := f.clock.Now()

	old := registered(t)
	old.Incident.Severity = events.SeverityCritical
	old.Incident.Timestamps.ClosedAt = now.Add(-31 * day)
	if _, out := f.handle(old); out != OutcomeHistorical {
		t.Fatalf("incident closed 31 days ago: %s, want opened_historical", out)
	}
	h := f.only(old.IncidentID)
	if !h.Historical || h.Required || h.DueAt != nil || h.Status != "open" || len(h.Participants) == 0 {
		t.Errorf("historical review = historical %v, required %v, due %v, status %s, %d participants; "+
			"want historical, optional, no due date, open with participants", h.Historical, h.Required, h.DueAt, h.Status, len(h.Participants))
	}
	var opened events.ReviewOpened
	if err := json.Unmarshal(f.outbox(events.TypeReviewOpened)[0], &opened); err != nil {
		t.Fatal(err)
	}
	if opened.Required || opened.DueAt != nil {
		t.Errorf("review.opened of a historical review: required %v, due %v", opened.Required, opened.DueAt)
	}

	recent := registered(t)
	recent.Incident.Severity = events.SeverityCritical
	recent.Incident.Timestamps.ClosedAt = now.Add(-29 * day)
	r := f.open(recent)
	if r.Historical || !r.Required || r.DueAt == nil {
		t.Errorf("incident closed 29 days ago: historical %v, required %v, due %v; want required with a due date", r.Historical, r.Required, r.DueAt)
	}

	// A later revision of the historical incident keeps it historical.
	old.Revision++
	old.Incident.Title += " (revised)"
	if _, out := f.handle(old); out != OutcomeUpdated {
		t.Fatalf("revision of the historical incident: %s, want updated", out)
	}
	if h := f.only(old.IncidentID); !h.Historical || h.Required || h.DueAt != nil {
		t.Errorf("historical review after a revision: historical %v, required %v, due %v", h.Historical, h.Required, h.DueAt)
	}

	f.clock.Set(now.Add(365 * day))
	n, err := f.svc.SendReminders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(r.Participants) {
		t.Errorf("reminders = %d, want %d (the recent review's participants only)", n, len(r.Participants))
	}
	for _, b := range f.outbox(events.TypeReviewReminder) {
		if strings.Contains(string(b), h.ReviewID) {
			t.Errorf("a reminder for the historical review: %s", b)
		}
	}

	// Reopened and closed again now, it is current work: the policy applies.
	f.clock.Set(now)
	old.Revision++
	old.Incident.Timestamps.ClosedAt = now
	if _, out := f.handle(old); out != OutcomeUpdated {
		t.Fatalf("reopening of the historical incident: %s, want updated", out)
	}
	if h := f.only(old.IncidentID); h.Historical || !h.Required || h.DueAt == nil || !h.DueAt.Equal(now.Add(72*time.Hour)) {
		t.Errorf("after a recent reopening: historical %v, required %v, due %v; want required, due in 72h", h.Historical, h.Required, h.DueAt)
	}
}

func TestMaxAgeZeroOpensEveryReviewByPolicy(t *testing.T) {
	t.Parallel()
	f := setup(t) // MaxAge 0: disabled
	e := registered(t)
	e.Incident.Severity = events.SeverityCritical
	e.Incident.Timestamps.ClosedAt = f.clock.Now().Add(-3 * 365 * day)
	r := f.open(e)
	if r.Historical || !r.Required || r.DueAt == nil {
		t.Errorf("with REVIEW_MAX_AGE=0: historical %v, required %v, due %v; want required with a due date", r.Historical, r.Required, r.DueAt)
	}
}

func TestLoadConfigMaxAge(t *testing.T) {
	t.Parallel()
	cases := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"", 30 * day, true},
		{"0", 0, true},
		{"2160h", 90 * day, true},
		{"-1h", 0, false},
		{"a month", 0, false},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			env := map[string]string{"REVIEW_INVITE_SECRET": "config-test-secret-0123", "REVIEW_MAX_AGE": c.value}
			cfg, err := LoadConfig(func(k string) string { return env[k] })
			if !c.ok {
				if err == nil || !strings.Contains(err.Error(), "REVIEW_MAX_AGE") {
					t.Errorf("REVIEW_MAX_AGE=%q: err %v, want one naming REVIEW_MAX_AGE", c.value, err)
				}
				return
			}
			if err != nil || cfg.MaxAge != c.want {
				t.Errorf("REVIEW_MAX_AGE=%q: %v, %v; want %v", c.value, cfg.MaxAge, err, c.want)
			}
			if got := cfg.serviceConfig(nil).MaxAge; got != c.want {
				t.Errorf("service MaxAge = %v, want %v", got, c.want)
			}
		})
	}
}
