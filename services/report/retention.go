package report

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
)

// Evidence retention and legal holds (NIST SP 800-61 §3.4.3).
//
// The report service is the one owner of both: it reads the policy
// (EVIDENCE_RETENTION), keeps the holds, and, once an incident's retention
// date has passed with no hold on it, records the expiry and emits
// afteraction.evidence.expired in the same transaction. Intake and review
// delete their raw payloads and answers when that event arrives. One owner
// means one policy (the date printed in the report is the date enforced
// everywhere) and no race between a hold and a purge: a hold committed
// before the expiry prevents it, one after it finds the expiry recorded.

// ErrHoldState is returned (wrapped) when a hold is lifted from an incident
// that is not under one.
var ErrHoldState = errors.New("legal hold state")

// Limits on what a hold request carries.
const (
	MaxHoldByRunes     = 200
	MaxHoldReasonRunes = 2000
)

// LegalHold is a legal hold in force on an incident's evidence.
type LegalHold struct {
	At     time.Time `json:"placed_at"`
	By     string    `json:"placed_by"`
	Reason string    `json:"reason"`
}

// HoldChange is one row of an incident's hold history: a hold placed or lifted.
type HoldChange struct {
	Seq    int       `json:"seq"`
	Action string    `json:"action"` // "placed" or "lifted"
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
}

// Hold actions.
const (
	HoldPlaced = "placed"
	HoldLifted = "lifted"
)

// Purge is the audit line of one expiry: the evidence of the incident, up to
// IncidentRevision, was ordered deleted by EventID.
type Purge struct {
	IncidentRevision int       `json:"incident_revision"`
	Rule             string    `json:"rule"`
	RetainUntil      time.Time `json:"retain_until"`
	PurgedAt         time.Time `json:"purged_at"`
	EventID          string    `json:"event_id"`
}

// EvidenceIncident is what the read model knows of an incident that
// retention depends on.
type EvidenceIncident struct {
	IncidentID string
	Revision   int
	Category   string
	Severity   events.Severity
	ClosedAt   time.Time
}

// EvidenceStatus is an incident's retention and hold state.
type EvidenceStatus struct {
	IncidentID string          `json:"incident_id"`
	Revision   int             `json:"incident_revision"`
	Category   string          `json:"category"`
	Severity   events.Severity `json:"severity"`
	ClosedAt   time.Time       `json:"closed_at"`
	Retention  Retention       `json:"retention"`
	Hold       *LegalHold      `json:"hold"`
	// Purges are the expiries already decided, oldest first: the evidence of
	// those revisions is gone from intake and review.
	Purges  []Purge      `json:"purges"`
	History []HoldChange `json:"hold_history"`
}

// EvidenceStore is the persistence Evidence needs.
type EvidenceStore interface {
	// EvidenceStatus returns an incident's read-model facts, hold, hold
	// history and purges; ErrNotFound when the read model does not know it.
	EvidenceStatus(ctx context.Context, incidentID string) (EvidenceStatus, error)
	// ChangeHold appends c to the incident's hold history unless it changes
	// nothing (placing a hold in force, lifting none: changed is false), and
	// records it in the custody chain of the incident's report if one exists.
	// ErrNotFound when the read model does not know the incident.
	ChangeHold(ctx context.Context, incidentID string, c HoldChange) (changed bool, err error)
	// ExpiryCandidates returns, after the (closed_at, incident_id) cursor and
	// in that order, at most limit incidents closed before closedBefore that
	// are not under hold and whose current revision has no purge yet.
	ExpiryCandidates(ctx context.Context, after EvidenceIncident, closedBefore time.Time, limit int) ([]EvidenceIncident, error)
	// Expire records p, the purge of inc, with the event env (queued in the
	// outbox) and the custody entry, in one transaction, unless a hold was
	// placed or the purge recorded meanwhile (false, nil).
	Expire(ctx context.Context, inc EvidenceIncident, p Purge, env events.Envelope) (bool, error)
}

// Evidence applies the retention policy and the legal holds.
type Evidence struct {
	Store  EvidenceStore
	Policy RetentionPolicy
	Log    *zap.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Batch is how many incidents one query of a pass reads (default 500).
	Batch int
}

func (e *Evidence) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// Status returns the retention and hold state of an incident; ErrNotFound
// when the service has not seen the incident.
func (e *Evidence) Status(ctx context.Context, incidentID string) (EvidenceStatus, error) {
	st, err := e.Store.EvidenceStatus(ctx, incidentID)
	if err != nil {
		return st, err
	}
	st.Retention = e.Policy.For(st.Category, st.Severity, st.ClosedAt)
	return st, nil
}

// PlaceHold puts the incident's evidence under legal hold: nothing of it is
// purged until the hold is lifted. Placing a hold in force already changes
// nothing and returns changed false. by and reason are required.
func (e *Evidence) PlaceHold(ctx context.Context, incidentID, by, reason string) (st EvidenceStatus, changed bool, err error) {
	return e.changeHold(ctx, incidentID, HoldPlaced, by, reason)
}

// LiftHold lifts the incident's legal hold; ErrHoldState when there is none.
// Evidence already past its retention date is purged at the next pass.
func (e *Evidence) LiftHold(ctx context.Context, incidentID, by, reason string) (EvidenceStatus, error) {
	st, changed, err := e.changeHold(ctx, incidentID, HoldLifted, by, reason)
	if err == nil && !changed {
		err = fmt.Errorf("%w: incident %s is not under legal hold", ErrHoldState, incidentID)
	}
	return st, err
}

func (e *Evidence) changeHold(ctx context.Context, incidentID, action, by, reason string) (EvidenceStatus, bool, error) {
	if strings.TrimSpace(by) == "" || strings.TrimSpace(reason) == "" {
		return EvidenceStatus{}, false, errors.New("a legal hold change needs who (by) and why (reason)")
	}
	c := HoldChange{Action: action, At: e.now().Truncate(time.Microsecond), By: strings.TrimSpace(by), Reason: strings.TrimSpace(reason)}
	changed, err := e.Store.ChangeHold(ctx, incidentID, c)
	if err != nil {
		return EvidenceStatus{}, false, fmt.Errorf("legal hold %s on incident %s: %w", action, incidentID, err)
	}
	if changed {
		e.Log.Info("legal hold "+action, zap.String("incident_id", incidentID), zap.String("by", c.By), zap.String("reason", c.Reason))
	}
	st, err := e.Status(ctx, incidentID)
	return st, changed, err
}

// Expire runs one pass of the policy: every incident past its retention date,
// not under hold and not purged yet for its current revision, is recorded as
// purged and announced with afteraction.evidence.expired. It returns how many
// it expired. A pass with no finite rule does nothing.
func (e *Evidence) Expire(ctx context.Context) (int, error) {
	now := e.now()
	closedBefore, ok := e.Policy.earliestDue(now)
	if !ok {
		return 0, nil
	}
	batch := e.Batch
	if batch <= 0 {
		batch = 500
	}
	expired := 0
	var cursor EvidenceIncident
	for {
		incs, err := e.Store.ExpiryCandidates(ctx, cursor, closedBefore, batch)
		if err != nil {
			return expired, err
		}
		for _, inc := range incs {
			r := e.Policy.For(inc.Category, inc.Severity, inc.ClosedAt)
			if r.Indefinite || r.Until.After(now) {
				continue
			}
			ok, err := e.expire(ctx, inc, r, now)
			if err != nil {
				return expired, err
			}
			if ok {
				expired++
			}
		}
		if len(incs) < batch {
			return expired, nil
		}
		cursor = incs[len(incs)-1]
	}
}

func (e *Evidence) expire(ctx context.Context, inc EvidenceIncident, r Retention, now time.Time) (bool, error) {
	data := events.EvidenceExpired{IncidentID: inc.IncidentID, IncidentRevision: inc.Revision, Category: inc.Category,
		Severity: inc.Severity, ClosedAt: inc.ClosedAt.UTC(), Rule: r.Rule, RetainUntil: r.Until, ExpiredAt: now}
	env, err := events.New(events.TypeEvidenceExpired, Source, inc.IncidentID, data)
	if err != nil {
		return false, err
	}
	p := Purge{IncidentRevision: inc.Revision, Rule: r.Rule, RetainUntil: r.Until, PurgedAt: now.Truncate(time.Microsecond), EventID: env.ID}
	ok, err := e.Store.Expire(ctx, inc, p, env)
	if err != nil {
		return false, fmt.Errorf("expire evidence of incident %s: %w", inc.IncidentID, err)
	}
	if ok {
		e.Log.Info("evidence expired", zap.String("incident_id", inc.IncidentID), zap.Int("incident_revision", inc.Revision),
			zap.String("rule", r.Rule), zap.Time("retain_until", r.Until), zap.String("event_id", env.ID))
	}
	return ok, nil
}

// Run expires evidence (see Expire) every `every` until ctx is cancelled,
// then returns nil. A failed pass is logged and tried again at the next tick.
func (e *Evidence) Run(ctx context.Context, every time.Duration) error {
	if !e.Policy.Enabled() {
		e.Log.Info("evidence retention: no policy limits retention; evidence is kept indefinitely")
		return nil
	}
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := e.Expire(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			e.Log.Warn("evidence expiry pass failed; will retry", zap.Duration("every", every), zap.Error(err))
		case n > 0:
			e.Log.Info("evidence expiry pass", zap.Int("expired", n))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
