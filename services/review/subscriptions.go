package review

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
)

// The review service's whole event surface.
//
// Consumes (stream AFTERACTION):
//   - afteraction.incident.registered (incident.registered.v1), durable
//     "review-incident-registered": opens the incident's review (historical,
//     without due date or reminders, for an incident closed longer than
//     REVIEW_MAX_AGE ago), or updates its incident snapshot (and, while it is
//     open, recomputes its due date and invites new people; once it is
//     completed, marks it stale until it is amended).
//   - afteraction.evidence.expired (evidence.expired.v1), durable
//     "review-evidence-expired": the report service's retention decision;
//     the answers to the incident's review are deleted (onEvidenceExpired).
//
// Emits (through the outbox, on stream AFTERACTION):
//   - afteraction.review.opened (review.opened.v1) when a review opens;
//   - afteraction.review.reminder (review.reminder.v1) from the reminder job;
//   - afteraction.review.completed (review.completed.v1) when the facilitator completes a review,
//     and again (new event id, additional properties amendment, amendment_reason,
//     amended_at) for each amendment of a completed review.
const (
	// DurableIncidentRegistered is the durable consumer of registered incidents.
	DurableIncidentRegistered = "review-incident-registered"
	// DurableEvidenceExpired is the durable consumer of evidence expiries.
	DurableEvidenceExpired = "review-evidence-expired"
)

// IncidentRegisteredConsumer describes the durable consumer of registered incidents.
func IncidentRegisteredConsumer() bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Durable:   DurableIncidentRegistered,
		Stream:    bus.StreamAfteraction,
		Subjects:  []string{events.SubjectIncidentRegistered},
		AckWait:   30 * time.Second,
		BatchSize: bus.TxBatchSize,
		Prepare:   bus.PrepareTyped[events.IncidentRegistered](events.TypeIncidentRegistered),
	}
}

// EvidenceExpiredConsumer describes the durable consumer of evidence expiries.
func EvidenceExpiredConsumer() bus.ConsumerConfig {
	return bus.ConsumerConfig{Durable: DurableEvidenceExpired, Stream: bus.StreamAfteraction,
		Subjects: []string{events.SubjectEvidenceExpired}, BatchSize: bus.TxBatchSize}
}

// Subscribe runs the service's consumers on b until ctx is cancelled. Each
// batch is handled in one transaction: the reviews it opens with a few
// statements for the whole batch (openReviews), every other message in a
// savepoint of it (bus.InOneTxSet).
func (s *Service) Subscribe(ctx context.Context, b *bus.Bus) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.subscribe(ctx, b, IncidentRegisteredConsumer()) })
	g.Go(func() error {
		return b.ConsumeInTx(ctx, EvidenceExpiredConsumer(), s.store.Pool(),
			bus.Typed(events.TypeEvidenceExpired, s.onEvidenceExpired))
	})
	return g.Wait()
}

// onEvidenceExpired deletes the answers to the review of e's incident and
// writes the purge's audit line, exactly once: the event is recorded as
// handled in the same transaction, and a redelivery does nothing.
func (s *Service) onEvidenceExpired(ctx context.Context, m *bus.Message, e events.EvidenceExpired) error {
	p, fresh, err := s.store.Purge(ctx, m.Envelope.ID, e, s.now())
	if err != nil {
		return fmt.Errorf("purge answers of incident %s: %w", e.IncidentID, err)
	}
	if fresh {
		s.log.Info("evidence purged", zap.String("subject", m.Subject), zap.String("event_id", m.Envelope.ID),
			zap.Uint64("stream_seq", m.StreamSeq), zap.String("incident_id", e.IncidentID), zap.String("rule", e.Rule),
			zap.Int64("responses", p.Responses), zap.Int64("drafts", p.Drafts),
			zap.Int64("submission_bodies", p.Submissions), zap.Int64("bytes", p.Bytes))
	}
	return nil
}

func (s *Service) subscribe(ctx context.Context, b *bus.Bus, cfg bus.ConsumerConfig) error {
	return b.ConsumeBatch(ctx, cfg, bus.InOneTxSet(s.store.Pool(), s.openReviews,
		bus.Typed(events.TypeIncidentRegistered, s.onIncidentRegistered)))
}

// onIncidentRegistered applies a registered incident exactly once; database
// errors are retried by the bus, invalid payloads never reach it (bus.Typed
// dead-letters them).
func (s *Service) onIncidentRegistered(ctx context.Context, m *bus.Message, e events.IncidentRegistered) error {
	outcome, err := s.HandleIncidentRegistered(ctx, m.Envelope.ID, e)
	if err != nil {
		return err
	}
	s.logHandled(m, e, outcome)
	return nil
}

// logHandled logs what handling m, about e, did.
func (s *Service) logHandled(m *bus.Message, e events.IncidentRegistered, outcome OpenOutcome) {
	fields := []zap.Field{zap.String("subject", m.Subject), zap.String("event_id", m.Envelope.ID),
		zap.Uint64("stream_seq", m.StreamSeq), zap.Uint64("delivered", m.Delivered),
		zap.String("incident_id", e.IncidentID), zap.Int("revision", e.Revision), zap.String("outcome", string(outcome))}
	switch outcome {
	case OutcomeHistorical:
		s.log.Info("incident closed before the review maximum age; review opened as historical "+
			"(not required, no due date, no reminders)",
			append(fields, zap.Time("closed_at", e.Incident.Timestamps.ClosedAt), zap.Duration("max_age", s.cfg.MaxAge))...)
	case OutcomeBehind:
		s.log.Warn("incident revised after its review was completed; review is stale "+
			"(amend it to publish a corrected report)", fields...)
	default:
		s.log.Info("incident registered handled", fields...)
	}
}
