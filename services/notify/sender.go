package notify

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/notify/postgres"
)

// sendBatch bounds the deliveries one claim takes.
const sendBatch = 50

// RunSender sends due deliveries until ctx is cancelled: woken after every
// commit that recorded deliveries and every poll interval (for retries and
// for deliveries left "sending" by a sender that died). It returns nil on
// shutdown; a send in flight finishes and is recorded first.
func (s *Service) RunSender(ctx context.Context, poll time.Duration) error {
	log := s.log.Named("sender")
	for {
		n, err := s.SendDue(context.WithoutCancel(ctx))
		if err != nil && ctx.Err() == nil {
			log.Warn("sending failed; retrying at the next poll", zap.Error(err))
		}
		if n == sendBatch && err == nil && ctx.Err() == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-time.After(poll):
		}
	}
}

// SendDue claims up to a batch of due deliveries (recording "sending" and
// committing before anything is sent), attempts each once and records the
// outcome: sent; pending again after a back-off; or dead (permanently
// refused, or MaxAttempts reached) with afteraction.notification.failed in
// the outbox. It returns how many deliveries it claimed.
func (s *Service) SendDue(ctx context.Context) (int, error) {
	ds, err := s.store.Claim(ctx, s.now(), s.cfg.SendingLease, sendBatch)
	if err != nil {
		return 0, err
	}
	for _, d := range ds {
		if err := s.attempt(ctx, d); err != nil {
			return len(ds), err
		}
	}
	return len(ds), nil
}

func (s *Service) attempt(ctx context.Context, d postgres.Delivery) error {
	log := s.log.With(zap.String("delivery_id", d.ID), zap.String("reason", d.Reason), zap.String("channel", d.Channel),
		zap.Int("attempt", d.Attempts), zap.Int("reclaims", d.Reclaims))
	if s.hooks.abandon != nil && s.hooks.abandon("before", d) {
		s.metrics.outcomes.WithLabelValues(d.Channel, "abandoned").Inc()
		return nil
	}
	err := s.transmit(ctx, d)
	if s.hooks.abandon != nil && s.hooks.abandon("after", d) {
		s.metrics.outcomes.WithLabelValues(d.Channel, "abandoned").Inc()
		return nil
	}
	now := s.now()
	switch {
	case err == nil:
		s.metrics.outcomes.WithLabelValues(d.Channel, "sent").Inc()
		log.Info("notification sent")
		return s.store.MarkSent(ctx, d.ID, now)
	case bus.IsPermanent(err) || d.Attempts >= s.cfg.MaxAttempts:
		s.metrics.outcomes.WithLabelValues(d.Channel, "dead").Inc()
		log.Warn("notification failed for good; dead, not retried", zap.Error(err), zap.Bool("permanent", bus.IsPermanent(err)))
		d.LastError = err.Error()
		return s.store.InTx(ctx, func(tx *postgres.Tx) error {
			if err := tx.Kill(ctx, d.ID, now, d.LastError); err != nil {
				return err
			}
			return s.enqueueFailed(ctx, tx, d, now)
		})
	default:
		next := s.cfg.Backoff[min(d.Attempts, len(s.cfg.Backoff))-1]
		s.metrics.outcomes.WithLabelValues(d.Channel, "retry").Inc()
		log.Info("notification failed; retrying", zap.Error(err), zap.Duration("in", next))
		return s.store.Retry(ctx, d.ID, now.Add(next), err.Error())
	}
}

// transmit sends d over its channel once.
func (s *Service) transmit(ctx context.Context, d postgres.Delivery) error {
	if name, ok := cutWebhook(d.Channel); ok {
		hook, found := s.cfg.Webhooks[name]
		if !found {
			return bus.Permanent(fmt.Errorf("webhook %q is no longer configured", name))
		}
		return PostChat(ctx, s.client, hook, d.Subject, d.ChatText)
	}
	if !s.cfg.MailEnabled {
		return bus.Permanent(fmt.Errorf("mail is not configured (NOTIFY_SMTP_HOST)"))
	}
	return s.mailer.Send(ctx, Mail{
		From: s.cfg.From, To: mail.Address{Name: d.RecipientName, Address: d.RecipientEmail},
		Subject: d.Subject, Text: d.BodyText, HTML: d.BodyHTML, ICS: d.ICS, ICSMethod: d.ICSMethod,
		MessageID: d.ID + "@afteraction", Date: d.CreatedAt,
	})
}

func cutWebhook(channel string) (string, bool) {
	return strings.CutPrefix(channel, channelWebhookPrefix)
}

// reminderBatch bounds the reminders one transaction records.
const reminderBatch = 200

// SendReminders records a reminder for every invitee due one (see
// ServiceConfig.ReminderEvery): unanswered, the review neither completed nor
// past due, the link valid, fewer than ReminderMax reminders so far. The
// reminder's number is part of its key, so each is recorded once. It returns
// how many it recorded.
func (s *Service) SendReminders(ctx context.Context) (int, error) {
	if s.cfg.ReminderEvery <= 0 {
		return 0, nil
	}
	total := 0
	for {
		now := s.now()
		var found, recorded int
		err := s.store.InTx(ctx, func(tx *postgres.Tx) error {
			due, err := tx.DueReminders(ctx, now, s.cfg.ReminderEvery, s.cfg.ReminderMax, reminderBatch)
			if err != nil {
				return err
			}
			found = len(due)
			var ns []notice
			for _, i := range due {
				rev, err := tx.Review(ctx, i.ReviewID)
				if err != nil {
					return err
				}
				ns = append(ns, notice{key: fmt.Sprintf("reminder:%s:%s:%d", i.ReviewID, i.ParticipantID, i.Reminders+1),
					reason: ReasonReminder, to: contactOfInvitee(i), reviewID: i.ReviewID,
					v: view{Title: rev.Title, Link: i.FormURL, Due: whenPtr(rev.DueAt)}})
				if err := tx.RecordReminder(ctx, i, now); err != nil {
					return err
				}
			}
			recorded, err = s.record(ctx, tx, "reminders", ns...)
			return err
		})
		if err != nil {
			return total, err
		}
		total += recorded
		if recorded > 0 {
			s.Wake()
		}
		if found < reminderBatch {
			return total, nil
		}
	}
}

// RunReminders calls SendReminders every interval until ctx is cancelled;
// failures are logged and retried at the next tick. It returns nil on shutdown.
func (s *Service) RunReminders(ctx context.Context, interval time.Duration) error {
	log := s.log.Named("reminders")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
		if n, err := s.SendReminders(ctx); err != nil && ctx.Err() == nil {
			log.Warn("reminders failed; retrying at the next tick", zap.Error(err))
		} else if n > 0 {
			log.Info("reminders recorded", zap.Int("count", n))
		}
	}
}

func contactOfInvitee(i postgres.Invitee) events.Contact {
	return events.Contact{Name: i.Name, Email: i.Email}
}
