package intake

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/intake/postgres"
)

// Intake's whole event surface.
//
// Consumes:
//   - incidents.closed.<source> (stream INCIDENTS, incident.closed.v1, with or
//     without ce-* headers), durable DurableIncidentsClosed, in batches.
//   - afteraction.evidence.expired (stream AFTERACTION), durable
//     DurableEvidenceExpired: the report service's retention decision; the
//     incident's raw payloads are deleted (HandleEvidenceExpired).
//
// Emits (through the outbox, in the transaction that stores the batch):
//   - afteraction.incident.registered.v1 on afteraction.incident.registered:
//     a new incident (revision 1) or changed content (revision n+1). The event
//     id is derived from (incident id, revision).
//   - afteraction.incident.rejected.v1 on afteraction.incident.rejected: a
//     payload refused on NATS or HTTP, kept in intake.rejects.
//
// Publishes (directly, for HTTP and webhook callers):
//   - incident.closed.v1 on incidents.closed.<source>, consumed above.

// DurableIncidentsClosed is the durable consumer of closed incidents; replicas share it.
const DurableIncidentsClosed = "intake-incidents-closed"

func incidentsClosedConsumer(batchSize int) bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Durable:   DurableIncidentsClosed,
		Stream:    bus.StreamIncidents,
		Subjects:  []string{events.SubjectIncidentClosedAll},
		BatchSize: batchSize,
		Prepare:   prepareClosed,
	}
}

// DurableEvidenceExpired is the durable consumer of evidence expiries.
const DurableEvidenceExpired = "intake-evidence-expired"

func evidenceExpiredConsumer() bus.ConsumerConfig {
	return bus.ConsumerConfig{Durable: DurableEvidenceExpired, Stream: bus.StreamAfteraction,
		Subjects: []string{events.SubjectEvidenceExpired}, BatchSize: bus.TxBatchSize}
}

// HandleEvidenceExpired deletes the raw payloads of e's incident up to
// e.IncidentRevision and writes the purge's audit line, in one transaction
// that also records the event as handled: a redelivery does nothing. The
// incident, its content digests and the inbox keys stay, so a late copy of a
// purged incident is still a duplicate.
func (s *Service) HandleEvidenceExpired(ctx context.Context, m *bus.Message, e events.EvidenceExpired) error {
	p, fresh, err := s.store.Purge(ctx, m.Envelope.ID, e, s.now())
	if err != nil {
		return fmt.Errorf("purge evidence of incident %s: %w", e.IncidentID, err)
	}
	if fresh {
		s.log.Info("evidence purged", zap.String("event_id", m.Envelope.ID), zap.Uint64("stream_seq", m.StreamSeq),
			zap.String("incident_id", e.IncidentID), zap.Int("incident_revision", e.IncidentRevision), zap.String("rule", e.Rule),
			zap.Int64("revision_payloads", p.Revisions), zap.Int64("webhook_bodies", p.WebhookBodies), zap.Int64("bytes", p.Bytes))
	}
	return nil
}

// prepareClosed is the consumer's Prepare: decoding and schema validation are
// the CPU-heavy part of intake, so the bus runs them on every core while the
// previous batch is in Postgres.
func prepareClosed(m *bus.Message) (any, error) { return check(m) }

// HandleClosed registers a batch of incidents.closed.<source> messages in one
// transaction. Invalid payloads are recorded as rejects and acked with the
// batch (they are handled, not retried); duplicates and unchanged content are
// acked without effect. An infrastructure failure (Postgres unreachable)
// fails the batch, and then every message of it is retried. Any other failure
// of the batch is isolated: each message is applied in a transaction of its
// own, so a message's permanent failure (e.g. an event too large for NATS)
// fails that message alone and never its neighbours. Messages the consumer
// has not prepared (see prepareClosed) are decoded and validated here, in turn.
func (s *Service) HandleClosed(ctx context.Context, ms []*bus.Message) []error {
	msgs := make([]postgres.Message, len(ms))
	errs := make([]error, len(ms))
	now := s.now()
	// A message intake itself failed on is retried (or dead-lettered) alone;
	// the rest of the batch goes ahead.
	keep := make([]int, 0, len(ms))
	for i, m := range ms {
		msg, ok := m.Prepared.(postgres.Message)
		if !ok { // not prepared by the consumer (prepareClosed)
			var err error
			if msg, err = check(m); err != nil {
				errs[i] = err
				continue
			}
		}
		msg.ReceivedAt = now
		msgs[i] = msg
		keep = append(keep, i)
	}
	batch := make([]postgres.Message, len(keep))
	for j, i := range keep {
		batch[j] = msgs[i]
	}
	results := make([]postgres.Result, len(ms))
	applied, err := s.store.Apply(ctx, batch)
	switch {
	case err == nil:
		for j, i := range keep {
			results[i] = applied[j]
		}
	case bus.IsInfrastructure(err) || len(batch) == 1:
		for _, i := range keep {
			errs[i] = err
		}
	default:
		// A failure no retry of the batch can fix (an event too large, a
		// constraint) belongs to one message: apply each alone, so it fails
		// only the message that causes it.
		s.log.Warn("batch failed; applying its messages one by one", zap.Int("messages", len(batch)), zap.Error(err))
		for j, i := range keep {
			one, err := s.store.Apply(ctx, batch[j:j+1])
			if err != nil {
				errs[i] = err
				continue
			}
			results[i] = one[0]
		}
	}
	s.metrics.count(results)
	for i, r := range results {
		if r.ReusedID {
			s.log.Warn("message id reused with other content; applied as a message of its own",
				zap.String("subject", ms[i].Subject), zap.String("event_id", ms[i].Envelope.ID),
				zap.Uint64("stream_seq", ms[i].StreamSeq), zap.String("outcome", string(r.Outcome)),
				zap.String("incident_id", r.IncidentID), zap.String("reject_id", r.RejectID))
		}
		switch r.Outcome {
		case postgres.Rejected:
			s.log.Info("incident rejected", zap.String("subject", ms[i].Subject), zap.String("event_id", ms[i].Envelope.ID),
				zap.Uint64("stream_seq", ms[i].StreamSeq), zap.String("reject_id", r.RejectID),
				zap.String("reason", msgs[i].Rejected.Reason))
		case postgres.Registered, postgres.Revised:
			s.log.Debug("incident registered", zap.String("subject", ms[i].Subject), zap.String("event_id", ms[i].Envelope.ID),
				zap.Uint64("stream_seq", ms[i].StreamSeq), zap.String("incident_id", r.IncidentID), zap.Int("revision", r.Revision))
		}
	}
	return errs
}

// check turns one delivery into a message for the store: accepted, or
// rejected with the reason. An error is a failure of intake itself.
func check(m *bus.Message) (postgres.Message, error) {
	source := SourceOfSubject(m.Subject)
	msg := postgres.Message{EventID: m.Envelope.ID, Subject: m.Subject, Raw: m.Envelope.Data}
	rev, err := Parse(m.Envelope.Data, m.Envelope.Type, source)
	var inv *Invalid
	switch {
	case err == nil:
		msg.Accepted = rev
	case errors.As(err, &inv):
		msg.Rejected = &postgres.Rejection{Source: source, Reason: inv.Reason, Problems: inv.Problems}
	default:
		return msg, fmt.Errorf("check %s: %w", m.Envelope.ID, err)
	}
	return msg, nil
}
