package tracker

// The tracker's whole event surface.
//
// Consumes:
//   - afteraction.review.completed (stream AFTERACTION, durable tracker-review-completed):
//     one action per action item, each announced by action.created.
//   - actions.status.<tracker> (stream ACTIONS, durable tracker-action-status): status
//     changes from improvement trackers, with or without CloudEvents headers; each applied
//     change is announced by action.updated. What cannot apply is recorded in
//     unmatched_status_updates and dead-lettered to dlq.tracker.actions.status.<tracker>.
//
// Emits (through the outbox):
//   - afteraction.action.created.v1 on afteraction.action.created
//   - afteraction.action.updated.v1 on afteraction.action.updated
//   - afteraction.action.overdue.v1 on afteraction.action.overdue (periodic job, once per action and day)

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// ServiceName is the bus service name: it names the DLQ subjects (dlq.tracker.>).
const ServiceName = "tracker"

// Source is the ce-source of every event the tracker emits.
const Source = "afteraction/" + ServiceName

// Durable consumer names.
const (
	DurableReviewCompleted = "tracker-review-completed"
	DurableActionStatus    = "tracker-action-status"
)

// consumer is one durable consumer and its handler; write, when set, takes
// what it can of each batch with a few statements first (bus.InOneTxSet).
type consumer struct {
	cfg     bus.ConsumerConfig
	handler bus.Handler
	write   bus.BatchWriter
}

// run consumes on b until ctx is cancelled, one transaction of pool per batch.
func (c consumer) run(ctx context.Context, b *bus.Bus, pool *pgxpool.Pool) error {
	if c.write == nil {
		return b.ConsumeInTx(ctx, c.cfg, pool, c.handler)
	}
	return b.ConsumeBatch(ctx, c.cfg, bus.InOneTxSet(pool, c.write, c.handler))
}

// consumers lists everything the tracker consumes. Each runs in batches of
// bus.TxBatchSize messages per transaction, each message in a savepoint of it
// (bus.ConsumeInTx), so one that fails never fails its neighbours; completed
// reviews are created set-wise for the whole batch first (createActions).
func (s *Service) consumers() []consumer {
	return []consumer{
		{
			cfg: bus.ConsumerConfig{
				Durable:   DurableReviewCompleted,
				Stream:    bus.StreamAfteraction,
				Subjects:  []string{events.SubjectReviewCompleted},
				BatchSize: bus.TxBatchSize,
				Prepare:   bus.PrepareTyped[events.ReviewCompleted](events.TypeReviewCompleted),
			},
			handler: bus.Typed(events.TypeReviewCompleted, s.onReviewCompleted),
			write:   s.createActions,
		},
		{
			cfg: bus.ConsumerConfig{
				Durable:   DurableActionStatus,
				Stream:    bus.StreamActions,
				Subjects:  []string{events.SubjectActionStatusAll},
				BatchSize: bus.TxBatchSize,
			},
			// Not bus.Typed: trackers may publish plain JSON without ce-* headers.
			// ReceiveStatus checks the type (absent means action.status.v1) and
			// validates the body with events.Decode.
			handler: s.onActionStatus,
		},
	}
}

func (s *Service) onReviewCompleted(ctx context.Context, m *bus.Message, e events.ReviewCompleted) error {
	n, err := s.CreateFromReview(ctx, m.Envelope.ID, e)
	if err != nil {
		return err
	}
	s.logCreated(m, e, n)
	return nil
}

func (s *Service) logCreated(m *bus.Message, e events.ReviewCompleted, created int) {
	s.log.Info("review completed handled", zap.String("review_id", e.ReviewID), zap.String("event_id", m.Envelope.ID),
		zap.Int("action_items", len(e.ActionItems)), zap.Int("created", created))
}

func (s *Service) onActionStatus(ctx context.Context, m *bus.Message) error {
	err := s.ReceiveStatus(ctx, StatusMessage{
		EventID: m.Envelope.ID, Subject: m.Subject, Type: m.Envelope.Type, Data: m.Envelope.Data,
	})
	var rejected *RejectedError
	if errors.As(err, &rejected) {
		return bus.Permanent(err)
	}
	return err
}

// createdEvent is action.created for a.
func createdEvent(a Action) (events.Envelope, error) {
	return events.New(events.TypeActionCreated, Source, a.ActionID, events.ActionCreated{
		ActionID: a.ActionID, IncidentID: a.IncidentID, ReviewID: a.ReviewID, Key: a.Key, Title: a.Title,
		Description: a.Description, Category: a.Category, Owner: a.Owner, DueDate: a.DueDate,
		Priority: a.Priority, Status: a.Status, CreatedAt: a.CreatedAt,
	})
}

// emitUpdated writes action.updated for a (already changed by u) to the outbox.
func emitUpdated(ctx context.Context, tx *store.Tx, a Action, previous events.Status, u StatusUpdate) error {
	return emit(ctx, tx, events.TypeActionUpdated, a.ActionID, events.ActionUpdated{
		ActionID: a.ActionID, IncidentID: a.IncidentID, Status: a.Status, PreviousStatus: previous,
		Note: u.Note, Tracker: u.Tracker, ExternalKey: a.ExternalKey, ChangedAt: u.ChangedAt.UTC(),
		ChangedBy: u.ChangedBy,
	})
}

// emitOverdue claims the overdue notice of a for day and, when the claim is
// new, writes action.overdue to the outbox. It reports whether it emitted.
func emitOverdue(ctx context.Context, tx *store.Tx, a Action, day string, days int, now time.Time) (bool, error) {
	env, err := events.New(events.TypeActionOverdue, Source, a.ActionID, events.ActionOverdue{
		ActionID: a.ActionID, IncidentID: a.IncidentID, Title: a.Title, Owner: a.Owner, DueDate: a.DueDate,
		Status: a.Status, DaysOverdue: days, DetectedAt: now,
	})
	if err != nil {
		return false, err
	}
	// The id is derived from (action, day): were the claim ever lost, the
	// stream's duplicate window would still drop a second copy.
	env.ID = uuid.NewSHA1(actionNamespace, []byte("overdue/"+a.ActionID+"/"+day)).String()
	ok, err := tx.ClaimOverdue(ctx, a.ActionID, day, env.ID, now)
	if err != nil || !ok {
		return false, err
	}
	return true, tx.Enqueue(ctx, events.SubjectActionOverdue, env)
}

func emit(ctx context.Context, tx *store.Tx, typ, about string, data any) error {
	env, err := events.New(typ, Source, about, data)
	if err != nil {
		return err
	}
	subject, err := events.SubjectOf(typ)
	if err != nil {
		return err
	}
	if err := tx.Enqueue(ctx, subject, env); err != nil {
		return fmt.Errorf("emit %s for %s: %w", typ, about, err)
	}
	return nil
}
