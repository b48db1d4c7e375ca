// Package tracker turns the action items of completed lessons-learned reviews
// into tracked improvement actions, applies the status changes improvement
// trackers (Jira and the like) send back, keeps every update in the action's
// history, and chases actions that are past their due date.
//
// Every change happens in one Postgres transaction that also records the
// handled event id and writes the emitted events to the outbox, so each event
// is applied exactly once and nothing emitted is lost.
package tracker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// Action, HistoryEntry, Unmatched, Filter and Outcome are the store's types;
// the domain uses them as they are.
type (
	Action       = store.Action
	HistoryEntry = store.HistoryEntry
	Unmatched    = store.Unmatched
	Filter       = store.Filter
	Outcome      = store.Outcome
)

// OutcomeDuplicate is returned (never stored) for an update whose event id was
// applied before.
const OutcomeDuplicate Outcome = "duplicate"

// Errors a status update can be refused with. They are permanent: sending the
// same update again gives the same answer.
var (
	// ErrUnknownAction: no action has the given action_id or (tracker, external_key).
	ErrUnknownAction = errors.New("unknown action")
	// ErrInvalidTransition: the action's status may not change to the requested one.
	ErrInvalidTransition = errors.New("invalid status transition")
	// ErrLinkConflict: the external key is already linked to another action.
	ErrLinkConflict = errors.New("external key linked to another action")
)

// Kinds of unmatched status updates, as recorded and listed by GET /v1/unmatched.
const (
	KindUnknownAction     = "unknown_action"
	KindInvalid           = "invalid"
	KindTrackerMismatch   = "tracker_mismatch"
	KindInvalidTransition = "invalid_transition"
	KindLinkConflict      = "link_conflict"
)

// RejectedError is a status update that was refused and recorded in
// unmatched_status_updates; a consumer dead-letters it.
type RejectedError struct {
	Kind   string
	Reason string
}

func (e *RejectedError) Error() string { return e.Kind + ": " + e.Reason }

// actionNamespace is the UUIDv5 namespace of action ids:
// UUIDv5(NameSpaceURL, "https://afteraction.dev/ns/action").
var actionNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://afteraction.dev/ns/action"))

// ActionID is the id of the action for item key of review reviewID: the
// UUIDv5 of reviewID + "/" + key in actionNamespace, so every replica and
// every redelivery computes the same id.
func ActionID(reviewID, key string) string {
	return uuid.NewSHA1(actionNamespace, []byte(reviewID+"/"+key)).String()
}

// transitions lists the statuses each status may change to. Reopening (back
// to open) is allowed from every status; work cannot resume on a done or
// abandoned action without reopening it first.
var transitions = map[events.Status][]events.Status{
	events.StatusOpen:       {events.StatusInProgress, events.StatusDone, events.StatusWontDo},
	events.StatusInProgress: {events.StatusOpen, events.StatusDone, events.StatusWontDo},
	events.StatusDone:       {events.StatusOpen, events.StatusWontDo},
	events.StatusWontDo:     {events.StatusOpen},
}

// CanTransition reports whether an action in status from may move to status to.
func CanTransition(from, to events.Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Service holds the tracker's use cases.
type Service struct {
	store   *store.Store
	log     *zap.Logger
	now     func() time.Time
	zone    *time.Location
	metrics *metrics
	bridges *Bridges
	due     DuePolicy
	// afterRemote, when set, runs after a remote call succeeded and before
	// the outcome is committed; tests make it fail to simulate a crash there.
	afterRemote func(Delivery) error
}

// SetBridges makes s deliver actions through bs (nil: no bridges). Call it
// before s is used.
func (s *Service) SetBridges(bs *Bridges) { s.bridges = bs }

// SetDuePolicy makes s date the action items that come without a due date
// by p. Call it before s is used.
func (s *Service) SetDuePolicy(p DuePolicy) { s.due = p }

// NewService returns a service on st. now is the clock (time.Now when nil);
// zone is where due dates fall (UTC when nil).
func NewService(st *store.Store, log *zap.Logger, now func() time.Time, zone *time.Location) *Service {
	if now == nil {
		now = time.Now
	}
	if zone == nil {
		zone = time.UTC
	}
	return &Service{store: st, log: log, now: func() time.Time { return now().UTC() }, zone: zone,
		metrics: newMetrics(st, log), due: DefaultDuePolicy()}
}

// CreateFromReview creates one open action per action item of rc and writes
// an action.created event for each to the outbox, in one transaction that
// also records eventID. It returns how many actions it created: zero when
// eventID was handled before, and none for items (review_id, key) that exist
// already, so a redelivered or republished review creates nothing new.
// An item without a due date is dated by the due policy from the review's
// completion; an action the routes send to a bridge gets its delivery intent
// in the same transaction.
func (s *Service) CreateFromReview(ctx context.Context, eventID string, rc events.ReviewCompleted) (int, error) {
	created := 0
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		created = 0
		fresh, err := tx.MarkProcessed(ctx, eventID)
		if err != nil || !fresh {
			return err
		}
		now := s.now()
		for _, a := range s.actionsOf(rc, now) {
			ok, err := tx.InsertAction(ctx, a)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			c, err := s.creation(eventID, rc, a, now)
			if err != nil {
				return err
			}
			if c.bridge != "" {
				if err := tx.RecordIntent(ctx, a.ActionID, c.bridge, now); err != nil {
					return err
				}
			}
			if err := tx.AddHistory(ctx, c.history); err != nil {
				return err
			}
			if err := tx.Enqueue(ctx, events.SubjectActionCreated, c.event); err != nil {
				return fmt.Errorf("emit %s for %s: %w", events.TypeActionCreated, a.ActionID, err)
			}
			created++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("create actions of review %s: %w", rc.ReviewID, err)
	}
	return created, nil
}

// actionsOf is the open action of each of rc's action items, created at now.
func (s *Service) actionsOf(rc events.ReviewCompleted, now time.Time) []Action {
	// The status took effect when the review decided on it, but never later
	// than now, so a tracker's first update is not mistaken for a stale one.
	since := rc.CompletedAt.UTC()
	if since.After(now) {
		since = now
	}
	out := make([]Action, 0, len(rc.ActionItems))
	for _, item := range rc.ActionItems {
		a := Action{
			ActionID:        ActionID(rc.ReviewID, item.Key),
			IncidentID:      rc.IncidentID,
			IncidentTitle:   rc.Incident.Title,
			ReviewID:        rc.ReviewID,
			Key:             item.Key,
			Title:           item.Title,
			Description:     item.Description,
			Category:        item.Category,
			Owner:           item.Owner,
			DueDate:         item.DueDate,
			Priority:        item.Priority,
			Facilitator:     &events.Owner{Name: rc.Facilitator.Name, Email: rc.Facilitator.Email},
			Status:          events.StatusOpen,
			StatusChangedAt: since,
			CreatedAt:       now,
			UpdatedAt:       now,
		}
		if a.DueDate == "" {
			a.DueDate = s.due.DueDate(a.Priority, s.dateOf(since))
		}
		out = append(out, a)
	}
	return out
}

// creation is what creating action a from review rc (event eventID) writes
// besides the action: its history entry, its action.created event, and the
// bridge it is delivered to ("" for none).
type creation struct {
	history HistoryEntry
	event   events.Envelope
	bridge  string
}

func (s *Service) creation(eventID string, rc events.ReviewCompleted, a Action, now time.Time) (creation, error) {
	env, err := createdEvent(a)
	if err != nil {
		return creation{}, err
	}
	return creation{
		history: HistoryEntry{
			ActionID: a.ActionID, EventID: eventID, Outcome: store.OutcomeCreated, Status: a.Status,
			ChangedAt: a.StatusChangedAt, ChangedBy: rc.Facilitator.Name, RecordedAt: now,
		},
		event:  env,
		bridge: s.bridges.Route(a),
	}, nil
}

// createActions is the set-based path of the review-completed consumer (a
// bus.BatchWriter): it creates the actions of every completed review of the
// batch with a few statements for the whole batch, exactly as
// CreateFromReview would one message at a time, and leaves to it any later
// message about a review of the batch (an amendment) and any message not
// decoded ahead (bus.PrepareTyped).
func (s *Service) createActions(ctx context.Context, btx pgx.Tx, ms []*bus.Message) ([]*bus.Message, error) {
	var taken []*bus.Message
	var rest []*bus.Message
	seen := map[string]bool{}
	for _, m := range ms {
		rc, ok := m.Prepared.(events.ReviewCompleted)
		if !ok {
			return ms, nil
		}
		if seen[rc.ReviewID] {
			rest = append(rest, m)
			continue
		}
		seen[rc.ReviewID] = true
		taken = append(taken, m)
	}
	tx := store.WrapTx(btx)
	ids := make([]string, len(taken))
	for i, m := range taken {
		ids[i] = m.Envelope.ID
	}
	fresh, err := tx.MarkProcessedBatch(ctx, ids)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var actions []Action
	from := map[string]*bus.Message{} // action id → the message that creates it
	for _, m := range taken {
		if !fresh[m.Envelope.ID] {
			continue
		}
		for _, a := range s.actionsOf(m.Prepared.(events.ReviewCompleted), now) {
			if from[a.ActionID] == nil {
				from[a.ActionID] = m
				actions = append(actions, a)
			}
		}
	}
	inserted, err := tx.InsertActions(ctx, actions)
	if err != nil {
		return nil, err
	}
	var history []HistoryEntry
	var envs []events.Envelope
	var intents []store.Intent
	created := map[*bus.Message]int{}
	for _, a := range actions {
		if !inserted[a.ActionID] {
			continue
		}
		m := from[a.ActionID]
		c, err := s.creation(m.Envelope.ID, m.Prepared.(events.ReviewCompleted), a, now)
		if err != nil {
			return nil, err
		}
		history, envs = append(history, c.history), append(envs, m.Traced(c.event))
		if c.bridge != "" {
			intents = append(intents, store.Intent{ActionID: a.ActionID, Bridge: c.bridge})
		}
		created[m]++
	}
	if err := tx.RecordIntents(ctx, intents, now); err != nil {
		return nil, err
	}
	if err := tx.AddHistories(ctx, history); err != nil {
		return nil, err
	}
	if err := tx.EnqueueAll(ctx, events.SubjectActionCreated, envs); err != nil {
		return nil, err
	}
	for _, m := range taken {
		s.logCreated(m, m.Prepared.(events.ReviewCompleted), created[m])
	}
	return rest, nil
}

// StatusUpdate is a status change for one action, from a tracker or the API.
type StatusUpdate struct {
	// EventID identifies the update; one already applied is not applied again.
	EventID string
	// ActionID or (Tracker, ExternalKey) names the action; with both, the
	// external key is linked to the action.
	ActionID    string
	Tracker     string
	ExternalKey string
	Status      events.Status
	Note        string
	ChangedAt   time.Time
	ChangedBy   string
	// RemoteUpdatedAt, for an update from a bridge (Tracker names it), is the
	// remote's own update time of the issue: an update older than the last
	// one applied from that bridge is stale.
	RemoteUpdatedAt time.Time
}

// Result is what ApplyStatus did.
type Result struct {
	Outcome Outcome
	Action  Action
}

// ApplyStatus applies u in one transaction: it resolves the action, links
// the external key when u carries one, changes the status when the transition
// is allowed and u is not older than the last change, appends u to the
// history (stale and unchanged updates too) and writes action.updated to the
// outbox when the status changed, a note was added or a key was linked.
// A changed_at in the future (by s's clock) counts as now, so one sender's
// skewed clock cannot make every later update look stale. A status change or
// note is delivered to every bridge the action is delivered to, except the
// one it came from.
//
// It returns an error wrapping ErrUnknownAction, ErrInvalidTransition or
// ErrLinkConflict for updates that can never apply, and Outcome
// OutcomeDuplicate when u.EventID was applied before.
func (s *Service) ApplyStatus(ctx context.Context, u StatusUpdate) (Result, error) {
	var res Result
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		fresh, err := tx.MarkProcessed(ctx, u.EventID)
		if err != nil {
			return err
		}
		if !fresh {
			a, _ := resolve(ctx, tx, u)
			res = Result{Outcome: OutcomeDuplicate, Action: a}
			return nil
		}
		a, err := resolve(ctx, tx, u)
		if err != nil {
			return err
		}
		now := s.now()
		if u.ChangedAt.After(now) {
			s.log.Info("status update dated in the future; counted as now", zap.String("event_id", u.EventID),
				zap.Time("changed_at", u.ChangedAt), zap.Time("now", now))
			u.ChangedAt = now
		}
		remoteStale := false
		if !u.RemoteUpdatedAt.IsZero() {
			d, err := tx.Delivery(ctx, a.ActionID, u.Tracker)
			switch {
			case errors.Is(err, postgres.ErrNotFound):
			case err != nil:
				return err
			case d.RemoteUpdatedAt != nil && u.RemoteUpdatedAt.Before(*d.RemoteUpdatedAt):
				remoteStale = true
			}
		}
		linked := false
		if u.ExternalKey != "" && (a.Tracker != u.Tracker || a.ExternalKey != u.ExternalKey) {
			owner, err := tx.LinkedAction(ctx, u.Tracker, u.ExternalKey)
			if err != nil {
				return err
			}
			if owner != "" && owner != a.ActionID {
				return fmt.Errorf("%w: %s key %s belongs to action %s", ErrLinkConflict, u.Tracker, u.ExternalKey, owner)
			}
			a.Tracker, a.ExternalKey = u.Tracker, u.ExternalKey
			linked = true
		}
		previous := a.Status
		var outcome Outcome
		switch {
		case remoteStale, u.ChangedAt.Before(a.StatusChangedAt):
			outcome = store.OutcomeStale
		case u.Status == a.Status && u.Note != "":
			outcome = store.OutcomeNoted
		case u.Status == a.Status && linked:
			outcome = store.OutcomeLinked
		case u.Status == a.Status:
			outcome = store.OutcomeUnchanged
		case !CanTransition(a.Status, u.Status):
			return fmt.Errorf("%w: action %s is %s and cannot become %s", ErrInvalidTransition, a.ActionID, a.Status, u.Status)
		default:
			outcome = store.OutcomeChanged
			a.Status = u.Status
			a.StatusChangedAt = u.ChangedAt.UTC()
		}
		emit := outcome == store.OutcomeChanged || outcome == store.OutcomeNoted || linked
		if emit {
			a.UpdatedAt = now
			if err := tx.SaveState(ctx, a); err != nil {
				if errors.Is(err, postgres.ErrConflict) {
					return fmt.Errorf("%w: %v", ErrLinkConflict, err)
				}
				return err
			}
		}
		if err := tx.AddHistory(ctx, HistoryEntry{
			ActionID: a.ActionID, EventID: u.EventID, Outcome: outcome, Status: u.Status, PreviousStatus: previous,
			Note: u.Note, Tracker: u.Tracker, ExternalKey: u.ExternalKey, ChangedAt: u.ChangedAt.UTC(),
			ChangedBy: u.ChangedBy, RecordedAt: now,
		}); err != nil {
			return err
		}
		if emit {
			if err := emitUpdated(ctx, tx, a, previous, u); err != nil {
				return err
			}
		}
		if outcome == store.OutcomeChanged || outcome == store.OutcomeNoted {
			if err := s.deliverChange(ctx, tx, a.ActionID, u.Tracker, now); err != nil {
				return err
			}
		}
		if !u.RemoteUpdatedAt.IsZero() && !remoteStale {
			if err := tx.SetRemoteUpdatedAt(ctx, a.ActionID, u.Tracker, u.ExternalKey, u.RemoteUpdatedAt, now); err != nil {
				if errors.Is(err, postgres.ErrConflict) {
					return fmt.Errorf("%w: %v", ErrLinkConflict, err)
				}
				return err
			}
		}
		res = Result{Outcome: outcome, Action: a}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("apply status update %s: %w", u.EventID, err)
	}
	return res, nil
}

// deliverChange records an update intent for every bridge the action is
// delivered to, except from (where the change came from).
func (s *Service) deliverChange(ctx context.Context, tx *store.Tx, actionID, from string, now time.Time) error {
	ds, err := tx.Deliveries(ctx, actionID)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if d.Bridge == from {
			continue
		}
		if _, ok := s.bridges.Get(d.Bridge); !ok {
			continue
		}
		if err := tx.RecordIntent(ctx, actionID, d.Bridge, now); err != nil {
			return err
		}
	}
	return nil
}

// resolve finds and locks the action u names.
func resolve(ctx context.Context, tx *store.Tx, u StatusUpdate) (Action, error) {
	var a Action
	var err error
	if u.ActionID != "" {
		if _, perr := uuid.Parse(u.ActionID); perr != nil {
			return a, fmt.Errorf("%w: action_id %q is not a UUID", ErrUnknownAction, u.ActionID)
		}
		a, err = tx.LockAction(ctx, u.ActionID)
	} else {
		a, err = tx.LockActionByExternalKey(ctx, u.Tracker, u.ExternalKey)
	}
	if errors.Is(err, postgres.ErrNotFound) {
		if u.ActionID != "" {
			return a, fmt.Errorf("%w: no action %s", ErrUnknownAction, u.ActionID)
		}
		return a, fmt.Errorf("%w: no action is linked to %s key %s", ErrUnknownAction, u.Tracker, u.ExternalKey)
	}
	return a, err
}

// StatusMessage is an action.status.v1 message as it arrived from a tracker.
type StatusMessage struct {
	EventID string
	// Subject is the NATS subject: actions.status.<tracker>.
	Subject string
	// Type is the ce-type; "" for plain JSON without CloudEvents headers.
	Type string
	Data []byte
}

// ReceiveStatus validates m and applies it. An update that can never apply
// (invalid payload, tracker not matching the subject, unknown action,
// forbidden transition, key linked elsewhere) is recorded in
// unmatched_status_updates and returned as a *RejectedError; other errors are
// transient and worth a retry.
func (s *Service) ReceiveStatus(ctx context.Context, m StatusMessage) error {
	subjectTracker := strings.TrimPrefix(m.Subject, events.SubjectActionStatusPrefix)
	reject := func(kind string, reason error, st events.ActionStatus) error {
		u := Unmatched{
			EventID: m.EventID, Subject: m.Subject, Kind: kind, Reason: reason.Error(),
			Tracker: subjectTracker, ActionID: st.ActionID, ExternalKey: st.ExternalKey,
			CEType: m.Type, Payload: m.Data, ReceivedAt: s.now(),
		}
		if _, err := s.store.RecordUnmatched(ctx, u); err != nil {
			return err
		}
		s.metrics.unmatched.WithLabelValues(kind).Inc()
		return &RejectedError{Kind: kind, Reason: reason.Error()}
	}
	if m.Type != "" && m.Type != events.TypeActionStatus {
		return reject(KindInvalid, fmt.Errorf("ce-type %q: this consumer takes %q", m.Type, events.TypeActionStatus), events.ActionStatus{})
	}
	st, err := events.Decode[events.ActionStatus](events.TypeActionStatus, m.Data)
	if err != nil {
		return reject(KindInvalid, err, events.ActionStatus{})
	}
	if st.Tracker != subjectTracker {
		return reject(KindTrackerMismatch,
			fmt.Errorf("tracker %q in the body does not match subject %s", st.Tracker, m.Subject), st)
	}
	_, err = s.ApplyStatus(ctx, StatusUpdate{
		EventID: m.EventID, ActionID: st.ActionID, Tracker: st.Tracker, ExternalKey: st.ExternalKey,
		Status: st.Status, Note: st.Note, ChangedAt: st.ChangedAt, ChangedBy: st.ChangedBy,
	})
	switch {
	case errors.Is(err, ErrUnknownAction):
		return reject(KindUnknownAction, err, st)
	case errors.Is(err, ErrInvalidTransition):
		return reject(KindInvalidTransition, err, st)
	case errors.Is(err, ErrLinkConflict):
		return reject(KindLinkConflict, err, st)
	}
	return err
}

// overdueBatch is how many overdue actions one transaction claims.
const overdueBatch = 200

// ChaseOverdue emits action.overdue for every open or in-progress action
// whose due date is before today (in the service's zone, by its clock) and
// that had no overdue notice today; days_overdue counts days in that zone.
// Each notice is claimed in the transaction that writes it to the outbox, so
// concurrent replicas and restarts send it at most once per action and day.
// It returns how many it emitted.
func (s *Service) ChaseOverdue(ctx context.Context) (int, error) {
	now := s.now()
	today := s.dateOf(now)
	day, _ := time.Parse(time.DateOnly, today)
	total := 0
	for {
		sent, seen := 0, 0
		err := s.store.InTx(ctx, func(tx *store.Tx) error {
			sent = 0
			as, err := tx.OverdueCandidates(ctx, today, overdueBatch)
			if err != nil {
				return err
			}
			seen = len(as)
			for _, a := range as {
				due, err := time.Parse(time.DateOnly, a.DueDate)
				if err != nil {
					return fmt.Errorf("due date of action %s: %w", a.ActionID, err)
				}
				days := int(day.Sub(due).Hours() / 24)
				ok, err := emitOverdue(ctx, tx, a, today, days, now)
				if err != nil {
					return err
				}
				if ok {
					sent++
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("chase overdue actions: %w", err)
		}
		total += sent
		s.metrics.overdue.Add(float64(sent))
		if seen < overdueBatch {
			return total, nil
		}
	}
}

// runOverdue calls ChaseOverdue (and SendDigests, unless digestDay is nil)
// after delay and then every interval until ctx is cancelled; failures are
// logged and retried at the next tick.
func (s *Service) runOverdue(ctx context.Context, delay, interval time.Duration, digestDay *time.Weekday) error {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		n, err := s.ChaseOverdue(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("overdue chase failed; retrying at the next tick", zap.Error(err))
		case n > 0:
			s.log.Info("overdue actions chased", zap.Int("emitted", n))
		}
		if digestDay != nil {
			n, err := s.SendDigests(ctx, *digestDay)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.Warn("weekly digests failed; retrying at the next tick", zap.Error(err))
			case n > 0:
				s.log.Info("weekly digests sent", zap.Int("emitted", n))
			}
		}
		timer.Reset(interval)
	}
}

// Actions lists the actions f selects.
func (s *Service) Actions(ctx context.Context, f Filter) ([]Action, error) {
	return s.store.ListActions(ctx, f)
}

// Action returns an action and its history, or an error wrapping
// postgres.ErrNotFound.
func (s *Service) Action(ctx context.Context, id string) (Action, []HistoryEntry, error) {
	a, err := s.store.Action(ctx, id)
	if err != nil {
		return a, nil, err
	}
	h, err := s.store.History(ctx, id)
	return a, h, err
}

// Unmatched lists the newest status updates that matched no action (or were
// refused otherwise), optionally only those from tracker.
func (s *Service) Unmatched(ctx context.Context, tracker string, limit int) ([]Unmatched, error) {
	return s.store.ListUnmatched(ctx, tracker, limit)
}

// Today is the service's current date in its zone, YYYY-MM-DD.
func (s *Service) Today() string { return s.dateOf(s.now()) }

// dateOf is the date (YYYY-MM-DD) of t in the service's zone.
func (s *Service) dateOf(t time.Time) string { return t.In(s.zone).Format(time.DateOnly) }
