package tracker

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// DuePolicy gives an action item without a due date one: so many days after
// the review's completion, by priority ("" for items without one).
type DuePolicy map[events.Priority]int

// DefaultDuePolicy is critical 7 days, high 30, medium 90, low 180, none 90:
// the review service's default (REVIEW_ACTION_DUE), which gives the items of
// every review it completes their due dates, so that the two agree on an
// item that reaches the tracker without one (an event from before
// REVIEW_ACTION_DUE, or from another producer).
func DefaultDuePolicy() DuePolicy {
	return DuePolicy{events.PriorityCritical: 7, events.PriorityHigh: 30, events.PriorityMedium: 90,
		events.PriorityLow: 180, "": 90}
}

// DueDate returns the due date (YYYY-MM-DD) of an item of priority p for a
// review completed on day (YYYY-MM-DD), or "" when the policy has no days
// for p or day is not a date.
func (p DuePolicy) DueDate(prio events.Priority, day string) string {
	n, ok := p[prio]
	if !ok {
		return ""
	}
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return ""
	}
	return d.AddDate(0, 0, n).Format(time.DateOnly)
}

// ParseDuePolicy reads "critical=7,high=14,medium=30,low=60,none=30"; each
// value is 1..3650 days; priorities left out get no due date.
func ParseDuePolicy(s string) (DuePolicy, error) {
	p := DuePolicy{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want priority=days", part)
		}
		prio := events.Priority(strings.TrimSpace(k))
		if prio == "none" {
			prio = ""
		} else if !prio.Valid() {
			return nil, fmt.Errorf("%q: want critical, high, medium, low or none", k)
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 3650 {
			return nil, fmt.Errorf("%s=%q: want 1 to 3650 days", k, v)
		}
		p[prio] = n
	}
	return p, nil
}
