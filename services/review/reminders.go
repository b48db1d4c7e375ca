package review

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/review/postgres"
)

// reminderBatch bounds the reminders one transaction sends.
const reminderBatch = 200

// SendReminders enqueues review.reminder for every participant of an open
// review with a due date who has not answered: due_soon when the review is due
// within the reminder window, overdue once it is past due. Each (participant,
// reason) is reminded at most once, ever: the claim and the outbox row commit
// together, so restarts and concurrent replicas never send twice. It returns
// how many reminders it enqueued.
func (s *Service) SendReminders(ctx context.Context) (int, error) {
	now := s.now()
	total := 0
	for {
		var found, sent int
		err := s.store.InTx(ctx, func(tx *postgres.Tx) error {
			cands, err := tx.ReminderCandidates(ctx, now, s.cfg.ReminderWindow, reminderBatch)
			if err != nil {
				return err
			}
			found = len(cands)
			for _, c := range cands {
				env, err := newEvent(events.TypeReviewReminder, c.ReviewID, events.ReviewReminder{
					ReviewID: c.ReviewID, IncidentID: c.IncidentID, Participant: eventParticipant(c.Participant),
					DueAt: c.DueAt.UTC(), RemindedAt: now, Reason: c.Reason,
				})
				if err != nil {
					return err
				}
				claimed, err := tx.ClaimReminder(ctx, c, now, env.ID)
				if err != nil {
					return err
				}
				if !claimed {
					continue
				}
				if err := tx.Enqueue(ctx, env); err != nil {
					return err
				}
				sent++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += sent
		s.metrics.reminders.Add(float64(sent))
		if found < reminderBatch {
			return total, nil
		}
	}
}

// RunReminders calls SendReminders after first (shortly after start) and then
// every interval until ctx is cancelled; failures are logged and retried at
// the next tick. It returns nil on shutdown.
func (s *Service) RunReminders(ctx context.Context, first, interval time.Duration) error {
	log := s.log.Named("reminders")
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		n, err := s.SendReminders(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("reminders failed; retrying at the next tick", zap.Error(err), zap.Duration("next", interval))
		case n > 0:
			log.Info("reminders sent", zap.Int("count", n))
		}
		timer.Reset(interval)
	}
}
