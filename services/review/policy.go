package review

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// DefaultPolicy is the review policy when REVIEW_POLICY is unset: critical
// incidents within 3 days of closure, high 5, medium 10; low, informational
// and exercises optional.
const DefaultPolicy = "critical=72h,high=120h,medium=240h,low=optional,informational=optional,exercise=optional"

// Policy says, per severity, whether a review is required and how long after
// the incident's closure it is due. Exercises follow Exercise whatever their
// severity. A nil duration means optional: the review is still opened, with
// required=false and no due date.
type Policy struct {
	Due      map[events.Severity]*time.Duration
	Exercise *time.Duration
}

// ParsePolicy reads "severity=duration|optional,..." where severity is one of
// the incident severities or "exercise". Severities not named are optional;
// "exercise" defaults to optional.
func ParsePolicy(s string) (Policy, error) {
	p := Policy{Due: map[events.Severity]*time.Duration{}}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !ok || key == "" || val == "" {
			return Policy{}, fmt.Errorf("review policy entry %q: want severity=duration or severity=optional", part)
		}
		var due *time.Duration
		if val != "optional" {
			d, err := time.ParseDuration(val)
			if err != nil || d <= 0 {
				return Policy{}, fmt.Errorf("review policy entry %q: %q is neither a positive duration nor optional", part, val)
			}
			due = &d
		}
		switch sev := events.Severity(key); {
		case key == "exercise":
			p.Exercise = due
		case sev.Valid():
			p.Due[sev] = due
		default:
			return Policy{}, fmt.Errorf("review policy entry %q: unknown severity %q", part, key)
		}
	}
	return p, nil
}

// DueAt returns whether a review of inc is required and, if so, when it is due.
func (p Policy) DueAt(inc events.IncidentClosed) (required bool, due *time.Time) {
	d := p.Due[inc.Severity]
	if inc.Exercise {
		d = p.Exercise
	}
	if d == nil {
		return false, nil
	}
	t := inc.Timestamps.ClosedAt.Add(*d).UTC()
	return true, &t
}

// String renders the policy in the form ParsePolicy reads, severities worst first.
func (p Policy) String() string {
	var parts []string
	render := func(d *time.Duration) string {
		if d == nil {
			return "optional"
		}
		return d.String()
	}
	sevs := []events.Severity{events.SeverityCritical, events.SeverityHigh, events.SeverityMedium,
		events.SeverityLow, events.SeverityInformational}
	for _, s := range sevs {
		parts = append(parts, string(s)+"="+render(p.Due[s]))
	}
	parts = append(parts, "exercise="+render(p.Exercise))
	return strings.Join(slices.Clip(parts), ",")
}
