package review

import (
	"context"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/review/postgres"
)

// Invitations reach people only through the notify service: the review
// service enqueues one afteraction.review.invitation.v1 per participant on the
// private NOTIFY stream (the form link is a bearer capability), in the same
// transaction that invites them, and an afteraction.review.answered.v1 on
// AFTERACTION each time a participant's answers are stored.

// ValidEmail reports whether addr is an address the review mails (see events.ValidEmail).
func ValidEmail(addr string) bool { return events.ValidEmail(addr) }

// checkEmail adds a problem naming field when addr is set and not a valid address.
func checkEmail(verr *ValidationError, field, addr string, required bool) {
	switch {
	case addr == "" && required:
		verr.add(field, "required")
	case addr != "" && !ValidEmail(addr):
		verr.add(field, "not a valid e-mail address (want local@domain.tld)")
	}
}

// FormURL is participant p's personal form link for review r, signed with
// the participant's current invitation generation (a revoked or resent
// invitation's older links stop working): a bearer capability, never logged.
func (s *Service) FormURL(r postgres.Review, p postgres.Participant) string {
	tok := s.cfg.Invites.Token(r.ID, p.ID, p.Generation, s.cfg.Invites.Expiry(r.OpenedAt))
	return s.cfg.PublicURL + "/review/" + r.ID + "?token=" + tok
}

// EnqueueInvitation writes participant p's personal invitation to review r
// (afteraction.review.invitation.v1, on notify.review.invitation) to the
// outbox in tx, so it commits with whatever invited them: the review opening,
// a revision adding people, or (the console) a facilitator adding a person or
// resending an invitation. It enqueues nothing and returns false for a
// participant without a valid e-mail address (they are listed with their
// form link in GET /v1/reviews for the facilitator to hand over) and for a
// historical review, which reminds nobody. Every call enqueues a new event; the
// notify service mails reasons opened and added once per participant and
// every resent.
func (s *Service) EnqueueInvitation(ctx context.Context, tx *postgres.Tx, r postgres.Review, p postgres.Participant, reason events.InvitationReason) (bool, error) {
	env, ok, err := s.invitation(r, p, reason)
	if err != nil || !ok {
		return false, err
	}
	return true, tx.Enqueue(ctx, env)
}

// invitation builds participant p's invitation to review r, with its link
// (see EnqueueInvitation); false: p gets none.
func (s *Service) invitation(r postgres.Review, p postgres.Participant, reason events.InvitationReason) (events.Envelope, bool, error) {
	if r.Historical || !ValidEmail(p.Email) {
		return events.Envelope{}, false, nil
	}
	inv := s.invitationEvent(r, p, reason)
	inv.FormURL = s.FormURL(r, p)
	env, err := newEvent(events.TypeReviewInvitation, inv.ReviewID, inv)
	if err != nil {
		return events.Envelope{}, false, err
	}
	return env, true, nil
}

// invitationEvent is participant p's invitation to r for reason, without its link.
func (s *Service) invitationEvent(r postgres.Review, p postgres.Participant, reason events.InvitationReason) events.ReviewInvitation {
	inv := events.ReviewInvitation{
		ReviewID: r.ID, IncidentID: r.IncidentID, Title: r.Title, Severity: r.Severity,
		Participant: eventParticipant(p), DueAt: r.DueAt,
		ExpiresAt: s.cfg.Invites.Expiry(r.OpenedAt).UTC(), InvitedAt: s.now(), Reason: reason,
	}
	if r.Facilitator.Name != "" {
		inv.Facilitator = contactOf(r.Facilitator)
	}
	return inv
}

// enqueueWithdrawal tells the notify service, in tx, that participant p's
// invitation to r was revoked or that p was removed: the event carries no
// link, and notify forgets the one it holds and stops reminding p. Like
// EnqueueInvitation it enqueues nothing for a historical review or a
// participant without a valid e-mail address (notify never had their link).
func (s *Service) enqueueWithdrawal(ctx context.Context, tx *postgres.Tx, r postgres.Review, p postgres.Participant) error {
	if r.Historical || !ValidEmail(p.Email) {
		return nil
	}
	env, err := newEvent(events.TypeReviewInvitation, r.ID, s.invitationEvent(r, p, events.InvitationWithdrawn))
	if err != nil {
		return err
	}
	return tx.Enqueue(ctx, env)
}

// enqueueInvitations invites every participant of ps to r (see
// EnqueueInvitation) with one outbox statement.
func (s *Service) enqueueInvitations(ctx context.Context, tx *postgres.Tx, r postgres.Review, ps []postgres.Participant, reason events.InvitationReason) error {
	var envs []events.Envelope
	for _, p := range ps {
		env, ok, err := s.invitation(r, p, reason)
		if err != nil {
			return err
		}
		if ok {
			envs = append(envs, env)
		}
	}
	return tx.EnqueueAll(ctx, envs)
}

// enqueueAnswered writes afteraction.review.answered.v1 for participantID of
// review r to the outbox in tx, with how many participants have not answered.
func (s *Service) enqueueAnswered(ctx context.Context, tx *postgres.Tx, r postgres.Review, participantID string, at time.Time) error {
	unanswered, err := tx.Unanswered(ctx, r.ID)
	if err != nil {
		return err
	}
	ev := events.ReviewAnswered{ReviewID: r.ID, IncidentID: r.IncidentID, Title: r.Title, AnsweredAt: at.UTC(), Unanswered: unanswered}
	for _, p := range r.Participants {
		if p.ID == participantID {
			ev.Participant = eventParticipant(p)
			if !ValidEmail(p.Email) {
				ev.Participant.Email = ""
			}
		}
	}
	if r.Facilitator.Name != "" {
		ev.Facilitator = contactOf(r.Facilitator)
	}
	env, err := newEvent(events.TypeReviewAnswered, r.ID, ev)
	if err != nil {
		return err
	}
	return tx.Enqueue(ctx, env)
}

// contactOf returns c for an event, without an e-mail address that is not valid.
func contactOf(c events.Contact) *events.Contact {
	if !ValidEmail(c.Email) {
		c.Email = ""
	}
	return &c
}
