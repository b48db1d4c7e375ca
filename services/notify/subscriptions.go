package notify

import (
	"context"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
)

// The notify service's whole event surface.
//
// Consumes:
//   - stream NOTIFY (private: only notify's NATS user may read it), durable
//     DurableNotify: notify.review.invitation (review.invitation.v1, carries
//     the participant's form link) and notify.review.meeting
//     (review.meeting.v1);
//   - stream AFTERACTION, durable DurableEvents: afteraction.review.opened,
//     .reminder, .answered, .completed and afteraction.action.created,
//     .overdue, .digest.
//
// Each consumer takes up to bus.TxBatchSize events per transaction (one
// commit for the batch), each event in a savepoint of it that records its id
// in processed_events and the deliveries it calls for (one per person, reason
// and channel), so one failing event never fails its neighbours; the sender
// (sender.go) is woken after the commit and sends them.
//
// Emits (through the outbox, on AFTERACTION):
//   - afteraction.notification.failed (notification.failed.v1) for every
//     delivery given up on.
const (
	// DurableNotify consumes the private NOTIFY stream.
	DurableNotify = "notify-private"
	// DurableEvents consumes review and action events from AFTERACTION.
	DurableEvents = "notify-events"
)

// NotifyConsumer describes the durable consumer of the private NOTIFY stream.
func NotifyConsumer() bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Durable: DurableNotify, Stream: bus.StreamNotify,
		Subjects: []string{events.SubjectReviewInvitation, events.SubjectReviewMeeting},
		AckWait:  30 * time.Second, BatchSize: bus.TxBatchSize,
	}
}

// EventsConsumer describes the durable consumer of review and action events.
func EventsConsumer() bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Durable: DurableEvents, Stream: bus.StreamAfteraction,
		Subjects: []string{events.SubjectReviewOpened, events.SubjectReviewReminder, events.SubjectReviewAnswered,
			events.SubjectReviewCompleted, events.SubjectActionCreated, events.SubjectActionOverdue, events.SubjectActionDigest},
		AckWait: 30 * time.Second, BatchSize: bus.TxBatchSize,
	}
}

// Subscribe runs both consumers on b until ctx is cancelled.
func (s *Service) Subscribe(ctx context.Context, b *bus.Bus) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return b.ConsumeBatch(ctx, NotifyConsumer(), s.inOneTx(byType(map[string]bus.Handler{
			events.TypeReviewInvitation: typed(s, events.TypeReviewInvitation, s.HandleInvitation),
			events.TypeReviewMeeting:    typed(s, events.TypeReviewMeeting, s.HandleMeeting),
		})))
	})
	g.Go(func() error {
		return b.ConsumeBatch(ctx, EventsConsumer(), s.inOneTx(byType(map[string]bus.Handler{
			events.TypeReviewOpened:    typed(s, events.TypeReviewOpened, s.HandleOpened),
			events.TypeReviewReminder:  typed(s, events.TypeReviewReminder, s.HandleReminder),
			events.TypeReviewAnswered:  typed(s, events.TypeReviewAnswered, s.HandleAnswered),
			events.TypeReviewCompleted: typed(s, events.TypeReviewCompleted, s.HandleCompleted),
			events.TypeActionCreated:   typed(s, events.TypeActionCreated, s.HandleActionCreated),
			events.TypeActionOverdue:   typed(s, events.TypeActionOverdue, s.HandleActionOverdue),
			events.TypeActionDigest:    typed(s, events.TypeActionDigest, s.HandleDigest),
		})))
	})
	return g.Wait()
}

// inOneTx handles a batch in one transaction of the store's pool (see
// bus.InOneTx), then wakes the sender: the deliveries the batch recorded are
// visible to it only once the batch has committed.
func (s *Service) inOneTx(h bus.Handler) bus.BatchHandler {
	batch := bus.InOneTx(s.store.Pool(), h)
	return func(ctx context.Context, ms []*bus.Message) []error {
		errs := batch(ctx, ms)
		s.Wake()
		return errs
	}
}

// byType routes each message to the handler of its ce-type; an unknown type
// is permanent (dead-lettered).
func byType(hs map[string]bus.Handler) bus.Handler {
	return func(ctx context.Context, m *bus.Message) error {
		h, ok := hs[m.Envelope.Type]
		if !ok {
			return bus.Permanent(events.ErrUnknownType)
		}
		return h(ctx, m)
	}
}

// typed decodes and validates an event of typ (bus.Typed), runs fn with its id
// and logs one line per outcome. The line names the event, never its data
// (an invitation's data holds a bearer link).
func typed[T any](s *Service, typ string, fn func(ctx context.Context, eventID string, e T) (int, error)) bus.Handler {
	return bus.Typed(typ, func(ctx context.Context, m *bus.Message, e T) error {
		n, err := fn(ctx, m.Envelope.ID, e)
		if err != nil {
			return err
		}
		s.log.Info("event handled", zap.String("subject", m.Subject), zap.String("event_id", m.Envelope.ID),
			zap.Uint64("stream_seq", m.StreamSeq), zap.Uint64("delivered", m.Delivered), zap.Int("deliveries", n))
		return nil
	})
}
