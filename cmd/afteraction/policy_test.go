package main

import (
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/review"
	"github.com/afteraction/afteraction/services/tracker"
)

// TestDueDatePoliciesAgree: the review service gives action items without a
// due date one when it completes a review (REVIEW_ACTION_DUE), and the tracker
// gives one to an item that reaches it without (TRACKER_DUE_DAYS). Their
// defaults must name the same day for every priority, or an item's due date
// would depend on which service filled it in.
func TestDueDatePoliciesAgree(t *testing.T) {
	t.Parallel()
	rp, err := review.ParseActionDue(review.DefaultActionDue)
	if err != nil {
		t.Fatal(err)
	}
	tp := tracker.DefaultDuePolicy()
	const day = "2026-03-01"
	start, _ := time.Parse(time.DateOnly, day)
	for _, prio := range []events.Priority{events.PriorityCritical, events.PriorityHigh, events.PriorityMedium, events.PriorityLow, ""} {
		rprio := prio
		if rprio == "" {
			rprio = events.PriorityMedium // review: an item without a priority is medium
		}
		fromReview := start.Add(rp[rprio]).Format(time.DateOnly)
		if fromTracker := tp.DueDate(prio, day); fromTracker != fromReview {
			t.Errorf("priority %q: review's default gives %s, tracker's %s", prio, fromReview, fromTracker)
		}
	}
}
