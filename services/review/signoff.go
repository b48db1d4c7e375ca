package review

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/review/postgres"
)

// DefaultActionDue is the due-date policy of action items when
// REVIEW_ACTION_DUE is unset: critical within a week, high 30 days, medium
// (and items without a priority) 90 days, low 180 days.
const DefaultActionDue = "critical=168h,high=720h,medium=2160h,low=4320h"

// ActionDuePolicy gives an action item without a due date one, by priority,
// so that no action item escapes the tracker's overdue chase.
type ActionDuePolicy map[events.Priority]time.Duration

// ParseActionDue reads "priority=duration,..." for the priorities critical,
// high, medium and low; each must be named, with a positive duration.
func ParseActionDue(s string) (ActionDuePolicy, error) {
	p := ActionDuePolicy{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, _ := strings.Cut(part, "=")
		d, err := time.ParseDuration(strings.TrimSpace(val))
		prio := events.Priority(strings.TrimSpace(key))
		if !prio.Valid() || err != nil || d <= 0 {
			return nil, fmt.Errorf("action due entry %q: want priority=duration with priority critical, high, medium or low", part)
		}
		p[prio] = d
	}
	for _, prio := range []events.Priority{events.PriorityCritical, events.PriorityHigh, events.PriorityMedium, events.PriorityLow} {
		if _, ok := p[prio]; !ok {
			return nil, fmt.Errorf("action due policy: priority %s has no duration", prio)
		}
	}
	return p, nil
}

// fill sets the due date of every item that has none to at plus the
// duration of its priority (medium when it has none).
func (p ActionDuePolicy) fill(items []events.ActionItem, at time.Time) {
	for i, a := range items {
		if a.DueDate != "" || len(p) == 0 {
			continue
		}
		prio := a.Priority
		if prio == "" {
			prio = events.PriorityMedium
		}
		items[i].DueDate = at.Add(p[prio]).UTC().Format(time.DateOnly)
	}
}

// approvalRequired reports whether completing r needs a second approval.
func (s *Service) approvalRequired(r postgres.Review) bool {
	return slices.Contains(s.cfg.ApprovalSeverities, r.Severity)
}

// Outcome is what signing a review off did: Status is "completed" (Event is
// the review.completed emitted) or "awaiting_approval" (nothing is emitted
// until an approver approves).
type Outcome struct {
	ReviewID string                  `json:"review_id"`
	Status   string                  `json:"status"`
	Event    *events.ReviewCompleted `json:"completed,omitempty"`
}

// SignOff completes an open review with the outcome req, signed off by by
// (e.g. "person:jane", recorded with the time). Where the configuration
// requires a second approval for the review's severity, the review waits in
// status awaiting_approval instead and is completed by Approve. It returns
// ErrNotFound, ErrCompleted for a completed review, ErrConflict for one
// already awaiting approval, or a *ValidationError.
func (s *Service) SignOff(ctx context.Context, reviewID, by string, req CompleteRequest) (Outcome, error) {
	if err := validateCompletion(req); err != nil {
		return Outcome{}, err
	}
	r, err := s.store.Review(ctx, reviewID)
	if err != nil {
		return Outcome{}, err
	}
	now := s.now()
	so := postgres.SignOff{SignedOffBy: by, SignedOffAt: &now}
	if !s.approvalRequired(r) {
		done, err := s.complete(ctx, reviewID, req, so, postgres.StatusOpen)
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{ReviewID: reviewID, Status: postgres.StatusCompleted, Event: &done}, nil
	}
	pending, err := json.Marshal(req)
	if err != nil {
		return Outcome{}, fmt.Errorf("marshal outcome: %w", err)
	}
	err = s.store.InTx(ctx, func(tx *postgres.Tx) error {
		r, err := tx.LockReview(ctx, reviewID)
		if err != nil {
			return err
		}
		if err := wantStatus(r, postgres.StatusOpen); err != nil {
			return err
		}
		return tx.AwaitApproval(ctx, reviewID, by, now, pending)
	})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{ReviewID: reviewID, Status: postgres.StatusAwaitingApproval}, nil
}

// Approve gives the second approval of a review awaiting it and completes the
// review with the outcome that was signed off, emitting review.completed. The
// approver must be someone other than who signed off. It returns ErrNotFound,
// ErrCompleted, or ErrConflict (not awaiting approval, or the same person).
func (s *Service) Approve(ctx context.Context, reviewID, by string) (events.ReviewCompleted, error) {
	r, err := s.store.Review(ctx, reviewID)
	if err != nil {
		return events.ReviewCompleted{}, err
	}
	if err := wantStatus(r, postgres.StatusAwaitingApproval); err != nil {
		return events.ReviewCompleted{}, err
	}
	if r.SignOff.SignedOffBy == by {
		return events.ReviewCompleted{}, fmt.Errorf("the second approval must come from someone other than %s, who signed off: %w", by, ErrConflict)
	}
	var req CompleteRequest
	if err := json.Unmarshal([]byte(r.SignOff.Pending), &req); err != nil {
		return events.ReviewCompleted{}, fmt.Errorf("pending outcome of review %s: %w", reviewID, err)
	}
	now := s.now()
	so := r.SignOff
	so.ApprovedBy, so.ApprovedAt = by, &now
	return s.complete(ctx, reviewID, req, so, postgres.StatusAwaitingApproval)
}

// Reject returns a review awaiting approval to open, with the reason the
// facilitator sees. It returns a *ValidationError without a reason,
// ErrNotFound, ErrCompleted or ErrConflict (not awaiting approval).
func (s *Service) Reject(ctx context.Context, reviewID, by, reason string) error {
	verr := &ValidationError{}
	if reason = strings.TrimSpace(reason); reason == "" {
		verr.add("reason", "required: say what must change before approval")
	}
	checkText(verr, "reason", reason, 2000)
	if err := verr.orNil(); err != nil {
		return err
	}
	return s.store.InTx(ctx, func(tx *postgres.Tx) error {
		r, err := tx.LockReview(ctx, reviewID)
		if err != nil {
			return err
		}
		if err := wantStatus(r, postgres.StatusAwaitingApproval); err != nil {
			return err
		}
		return tx.RejectApproval(ctx, reviewID, by, s.now(), reason)
	})
}

// wantStatus maps a review not in status want to ErrCompleted (it is
// completed) or ErrConflict.
func wantStatus(r postgres.Review, want string) error {
	switch r.Status {
	case want:
		return nil
	case postgres.StatusCompleted:
		return ErrCompleted
	case postgres.StatusAwaitingApproval:
		return fmt.Errorf("review %s is awaiting approval: %w", r.ID, ErrConflict)
	default:
		return fmt.Errorf("review %s is not awaiting approval: %w", r.ID, ErrConflict)
	}
}

// decide applies an approver's decision: "approve" completes the review,
// "reject" returns it with the reason. A bad decision is a *ValidationError.
func (s *Service) decide(ctx context.Context, reviewID, by string, req approvalRequest) (Outcome, error) {
	switch req.Decision {
	case "approve":
		done, err := s.Approve(ctx, reviewID, by)
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{ReviewID: reviewID, Status: postgres.StatusCompleted, Event: &done}, nil
	case "reject":
		if err := s.Reject(ctx, reviewID, by, req.Reason); err != nil {
			return Outcome{}, err
		}
		return Outcome{ReviewID: reviewID, Status: postgres.StatusOpen}, nil
	}
	verr := &ValidationError{}
	verr.add("decision", `must be "approve" or "reject"`)
	return Outcome{}, verr
}
