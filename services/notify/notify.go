// Package notify reaches people: it turns review and action events into
// e-mails (SMTP, text and HTML, iCalendar invitations for the debrief
// meeting) and chat messages (Slack, Microsoft Teams and Mattermost incoming
// webhooks), routed per reason and recipient domain, each sent once per
// person and reason. Every delivery is recorded with its status before it is
// attempted; temporary failures are retried with back-off, permanent ones are
// kept dead, announced as afteraction.notification.failed and shown by the
// deliveries API.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/notify/postgres"
)

// Source is the ce-source of every event the service emits.
const Source = "afteraction/notify"

// Mailer sends one mail; an error marked bus.Permanent is never retried.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// ServiceConfig is what the Service needs besides its store and mailer.
type ServiceConfig struct {
	// From is the sender of every mail.
	From mail.Address
	// MailEnabled is false when no SMTP server is configured: mail
	// deliveries are then recorded dead ("mail is not configured").
	MailEnabled bool
	Routes      Routes
	Webhooks    map[string]Webhook
	// ReminderEvery is the cadence of reminders to participants who have not
	// answered (0: none); ReminderMax bounds them per participant.
	ReminderEvery time.Duration
	ReminderMax   int
	// Backoff is the delay before the 2nd, 3rd, ... attempt (the last repeats);
	// MaxAttempts bounds the attempts of a delivery before it is dead.
	Backoff     []time.Duration
	MaxAttempts int
	// SendingLease is how long a delivery may stay "sending" before it is
	// taken to be abandoned by a sender that died, and sent again.
	SendingLease time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service holds the notify use cases.
type Service struct {
	store   *postgres.Store
	cfg     ServiceConfig
	mailer  Mailer
	client  *http.Client
	log     *zap.Logger
	rd      *renderer
	wake    chan struct{}
	metrics metrics
	hooks   hooks
}

// hooks stop a send at a given point, as a killed process would (tests only).
type hooks struct {
	// abandon, when it returns true for a delivery at a stage ("before" or
	// "after" the SMTP transaction or HTTP request), leaves it "sending".
	abandon func(stage string, d postgres.Delivery) bool
}

type metrics struct {
	enqueued *prometheus.CounterVec
	outcomes *prometheus.CounterVec
}

// NewService returns the service. It registers its metrics with reg when reg
// is not nil.
func NewService(store *postgres.Store, mailer Mailer, client *http.Client, cfg ServiceConfig, log *zap.Logger, reg prometheus.Registerer) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Backoff) == 0 {
		cfg.Backoff = []time.Duration{time.Minute}
	}
	cfg.MaxAttempts = max(cfg.MaxAttempts, 1)
	if cfg.SendingLease <= 0 {
		cfg.SendingLease = 2 * time.Minute
	}
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	rd, err := newRenderer()
	if err != nil {
		return nil, err
	}
	m := metrics{
		enqueued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "afteraction_notify_deliveries_enqueued_total",
			Help: "Deliveries recorded, by reason and channel."}, []string{"reason", "channel"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "afteraction_notify_attempts_total",
			Help: "Delivery attempts by channel and outcome (sent, retry, dead, abandoned)."}, []string{"channel", "outcome"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.enqueued, m.outcomes} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register notify metrics: %w", err)
			}
		}
	}
	return &Service{store: store, cfg: cfg, mailer: mailer, client: client, log: log, rd: rd,
		wake: make(chan struct{}, 1), metrics: m}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// notice is one thing to tell one person.
type notice struct {
	key       string // with the channel, what is sent once
	reason    Reason
	to        events.Contact
	reviewID  string
	actionID  string
	v         view
	ics       string
	icsMethod string
}

// record renders every notice and records one pending delivery per routed
// channel in tx, skipping (person, reason, channel) already recorded. A mail
// to nobody (no valid address) or with mail not configured is recorded dead
// at once, with afteraction.notification.failed in the outbox.
func (s *Service) record(ctx context.Context, tx *postgres.Tx, eventID string, ns ...notice) (int, error) {
	now := s.now()
	recorded := 0
	for _, n := range ns {
		n.v.Name = displayName(n.to)
		r, err := s.rd.render(n.reason, n.v)
		if err != nil {
			return recorded, err
		}
		for _, ch := range s.cfg.Routes.For(n.reason, n.to.Email) {
			d := postgres.Delivery{
				ID: uuid.Must(uuid.NewV7()).String(), DedupeKey: n.key, Channel: ch, Reason: string(n.reason),
				ReviewID: n.reviewID, ActionID: n.actionID, RecipientName: headerText(n.to.Name), RecipientEmail: n.to.Email,
				Subject: r.Subject, BodyText: r.Text, BodyHTML: r.HTML, ChatText: r.Chat, ICS: n.ics, ICSMethod: n.icsMethod,
				SourceEventID: eventID, Status: postgres.StatusPending, NextAttemptAt: now, CreatedAt: now,
			}
			if ch == ChannelMail {
				switch {
				case !events.ValidEmail(n.to.Email):
					d.Status, d.LastError, d.DeadAt = postgres.StatusDead, "recipient has no valid e-mail address", &now
					d.RecipientEmail = ""
				case !s.cfg.MailEnabled:
					d.Status, d.LastError, d.DeadAt = postgres.StatusDead, "mail is not configured (NOTIFY_SMTP_HOST)", &now
				}
			}
			inserted, err := tx.InsertDelivery(ctx, d)
			if err != nil {
				return recorded, err
			}
			if !inserted {
				continue
			}
			recorded++
			s.metrics.enqueued.WithLabelValues(d.Reason, d.Channel).Inc()
			if d.Status == postgres.StatusDead {
				if err := s.enqueueFailed(ctx, tx, d, now); err != nil {
					return recorded, err
				}
			}
		}
	}
	return recorded, nil
}

// enqueueFailed writes afteraction.notification.failed for d to the outbox.
func (s *Service) enqueueFailed(ctx context.Context, tx *postgres.Tx, d postgres.Delivery, at time.Time) error {
	name := d.RecipientName
	if name == "" {
		name = orDefault(d.RecipientEmail, "(unknown)")
	}
	ev := events.NotificationFailed{
		DeliveryID: d.ID, Reason: d.Reason, Channel: d.Channel, Recipient: events.Contact{Name: truncate(name, 200), Email: d.RecipientEmail},
		ReviewID: d.ReviewID, ActionID: d.ActionID, Attempts: d.Attempts, Error: truncate(d.LastError, 2000), FailedAt: at,
	}
	env, err := events.New(events.TypeNotificationFailed, Source, d.ID, ev)
	if err != nil {
		return err
	}
	if err := events.Validate(events.TypeNotificationFailed, env.Data); err != nil {
		return fmt.Errorf("emit %s: %w", events.TypeNotificationFailed, err)
	}
	return tx.Enqueue(ctx, env)
}

// Wake tells the sender that deliveries were recorded (after commit).
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// handle runs fn in one transaction with the event id recorded in
// processed_events: a redelivered event records nothing twice (consumed in a
// batch, the transaction is a savepoint of the batch's, and the consumer wakes
// the sender after the batch commits). It wakes the sender after commit and
// returns how many deliveries were recorded.
func (s *Service) handle(ctx context.Context, eventID string, fn func(tx *postgres.Tx) ([]notice, error)) (int, error) {
	n := 0
	err := s.store.InTx(ctx, func(tx *postgres.Tx) error {
		fresh, err := tx.MarkProcessed(ctx, eventID)
		if err != nil || !fresh {
			return err
		}
		ns, err := fn(tx)
		if err != nil {
			return err
		}
		n, err = s.record(ctx, tx, eventID, ns...)
		return err
	})
	if err == nil && n > 0 {
		s.Wake()
	}
	return n, err
}

// linkReasons are the reasons whose messages carry the participant's form link.
var linkReasons = []string{string(ReasonInvitation), string(ReasonReminder), string(ReasonDueSoon), string(ReasonOverdue)}

// HandleInvitation mails a participant their personal invitation, once per
// participant for reasons opened and added and once per event for resent, and
// keeps the link for reminders. A withdrawal (the facilitator revoked the
// invitation or removed the participant) forgets the link, so no reminder
// follows, and withdraws the participant's messages not yet sent that carry it.
func (s *Service) HandleInvitation(ctx context.Context, eventID string, e events.ReviewInvitation) (int, error) {
	return s.handle(ctx, eventID, func(tx *postgres.Tx) ([]notice, error) {
		if e.Reason == events.InvitationWithdrawn {
			n, err := tx.WithdrawInvitee(ctx, e.ReviewID, e.Participant.ParticipantID, e.Participant.Email, e.InvitedAt,
				linkReasons, "invitation withdrawn by the facilitator")
			if n > 0 {
				s.log.Info("pending deliveries withdrawn with the invitation", zap.String("review_id", e.ReviewID),
					zap.String("participant_id", e.Participant.ParticipantID), zap.Int64("deliveries", n))
			}
			return nil, err
		}
		rev := postgres.Review{ID: e.ReviewID, IncidentID: e.IncidentID, Title: e.Title, DueAt: e.DueAt}
		if e.Facilitator != nil {
			rev.Facilitator = *e.Facilitator
		}
		if err := tx.SaveReview(ctx, rev); err != nil {
			return nil, err
		}
		p := e.Participant
		expires, invited := e.ExpiresAt, e.InvitedAt
		if err := tx.SaveInvitee(ctx, postgres.Invitee{ReviewID: e.ReviewID, ParticipantID: p.ParticipantID, Name: p.Name,
			Email: p.Email, FormURL: e.FormURL, ExpiresAt: &expires, InvitedAt: &invited}); err != nil {
			return nil, err
		}
		key := "invitation:" + e.ReviewID + ":" + p.ParticipantID
		if e.Reason == events.InvitationResent {
			key += ":resent:" + eventID
		}
		return []notice{{key: key, reason: ReasonInvitation, to: contactOf(p), reviewID: e.ReviewID,
			v: view{Title: e.Title, Link: e.FormURL, Due: whenPtr(e.DueAt), Expires: when(e.ExpiresAt)}}}, nil
	})
}

// HandleOpened records the review and tells its facilitator it is open
// (not for a historical review, which has no due date and reminds nobody).
func (s *Service) HandleOpened(ctx context.Context, eventID string, e events.ReviewOpened) (int, error) {
	return s.handle(ctx, eventID, func(tx *postgres.Tx) ([]notice, error) {
		rev := postgres.Review{ID: e.ReviewID, IncidentID: e.IncidentID, Title: e.Title, DueAt: e.DueAt}
		if e.Facilitator != nil {
			rev.Facilitator = contactOf(*e.Facilitator)
		}
		if err := tx.SaveReview(ctx, rev); err != nil {
			return nil, err
		}
		if e.Facilitator == nil || e.DueAt == nil {
			return nil, nil
		}
		return []notice{{key: "review_opened:" + e.ReviewID, reason: ReasonReviewOpened, to: rev.Facilitator,
			reviewID: e.ReviewID, v: view{Title: e.Title, Due: whenPtr(e.DueAt)}}}, nil
	})
}

// ErrNoInvitationYet is returned for a reminder about a participant whose
// invitation (another stream) has not arrived yet: the bus retries it.
var ErrNoInvitationYet = errors.New("invitation not received yet")

// HandleReminder sends the review service's due_soon reminder, or for
// overdue the participant's overdue notice and the escalation to the
// facilitator, each once per participant and due date. The mail carries the
// link kept from the invitation.
func (s *Service) HandleReminder(ctx context.Context, eventID string, e events.ReviewReminder) (int, error) {
	return s.handle(ctx, eventID, func(tx *postgres.Tx) ([]notice, error) {
		p := e.Participant
		inv, err := tx.Invitee(ctx, e.ReviewID, p.ParticipantID)
		if errors.Is(err, postgres.ErrNotFound) {
			withdrawn, werr := tx.Withdrawn(ctx, e.ReviewID, p.ParticipantID)
			if werr != nil || withdrawn {
				return nil, werr // a reminder sent before the facilitator withdrew the invitation
			}
		}
		switch {
		case errors.Is(err, postgres.ErrNotFound) && events.ValidEmail(p.Email):
			return nil, fmt.Errorf("reminder of %s: %w", p.ParticipantID, ErrNoInvitationYet)
		case errors.Is(err, postgres.ErrNotFound):
			return nil, nil // never invited by mail: nobody to remind
		case err != nil:
			return nil, err
		}
		rev, err := tx.Review(ctx, e.ReviewID)
		if err != nil {
			return nil, err
		}
		due := fmt.Sprint(e.DueAt.Unix())
		v := view{Title: rev.Title, Link: inv.FormURL, Due: when(e.DueAt), Participant: displayName(contactOf(p))}
		to := events.Contact{Name: inv.Name, Email: inv.Email}
		if e.Reason == events.ReminderDueSoon {
			return []notice{{key: "due_soon:" + e.ReviewID + ":" + p.ParticipantID + ":" + due, reason: ReasonDueSoon,
				to: to, reviewID: e.ReviewID, v: v}}, nil
		}
		esc := v
		esc.Link = ""
		return []notice{
			{key: "overdue:" + e.ReviewID + ":" + p.ParticipantID + ":" + due, reason: ReasonOverdue, to: to, reviewID: e.ReviewID, v: v},
			{key: "escalation:" + e.ReviewID + ":" + p.ParticipantID + ":" + due, reason: ReasonEscalation, to: rev.Facilitator,
				reviewID: e.ReviewID, v: esc},
		}, nil
	})
}

// HandleAnswered stops the reminders of a participant who answered and, once
// nobody is left to answer, asks the facilitator (once) to complete the review.
func (s *Service) HandleAnswered(ctx context.Context, eventID string, e events.ReviewAnswered) (int, error) {
	return s.handle(ctx, eventID, func(tx *postgres.Tx) ([]notice, error) {
		if err := tx.MarkAnswered(ctx, e.ReviewID, e.Participant.ParticipantID, e.AnsweredAt); err != nil {
			return nil, err
		}
		rev := postgres.Review{ID: e.ReviewID, IncidentID: e.IncidentID, Title: e.Title}
		if e.Facilitator != nil {
			rev.Facilitator = *e.Facilitator
		}
		if err := tx.SaveReview(ctx, rev); err != nil {
			return nil, err
		}
		if e.Unanswered > 0 || e.Facilitator == nil {
			return nil, nil
		}
		return []notice{{key: "all_answered:" + e.ReviewID, reason: ReasonAllAnswered, to: *e.Facilitator,
			reviewID: e.ReviewID, v: view{Title: e.Title}}}, nil
	})
}

// HandleCompleted stops every reminder of the review.
func (s *Service) HandleCompleted(ctx context.Context, eventID string, e events.ReviewCompleted) (int, error) {
	return s.handle(ctx, eventID, func(tx *postgres.Tx) ([]notice, error) {
		return nil, tx.CompleteReview(ctx, postgres.Review{ID: e.ReviewID, IncidentID: e.IncidentID, Title: e.Incident.Title,
			Facilitator: e.Facilitator}, e.CompletedAt)
	})
}

// HandleMeeting mails every attendee the meeting's iCalendar invitation
// (REQUEST) or cancellation (CANCEL), once per attendee and SEQUENCE.
func (s *Service) HandleMeeting(ctx context.Context, eventID string, e events.ReviewMeeting) (int, error) {
	return s.handle(ctx, eventID, func(tx *postgres.Tx) ([]notice, error) {
		organizer := events.Contact{Name: orDefault(s.cfg.From.Name, "afteraction"), Email: s.cfg.From.Address}
		if e.Organizer != nil && events.ValidEmail(e.Organizer.Email) {
			organizer = *e.Organizer
		}
		ics, method := Calendar(e, organizer, e.ChangedAt)
		reason := ReasonMeeting
		if e.Status == events.MeetingCancelled {
			reason = ReasonMeetingCancelled
		}
		v := view{Title: e.Title, Start: when(e.StartsAt), Duration: e.DurationMinutes, Location: e.Location,
			VideoURL: e.VideoURL, Sequence: e.Sequence}
		ns := make([]notice, 0, len(e.Attendees))
		for _, a := range e.Attendees {
			ns = append(ns, notice{key: fmt.Sprintf("meeting:%s:%d:%s", e.ReviewID, e.Sequence, strings.ToLower(a.Email)),
				reason: reason, to: a, reviewID: e.ReviewID, v: v, ics: ics, icsMethod: method})
		}
		return ns, nil
	})
}

// HandleActionCreated tells an action's owner it was assigned to them.
func (s *Service) HandleActionCreated(ctx context.Context, eventID string, e events.ActionCreated) (int, error) {
	return s.handle(ctx, eventID, func(tx *postgres.Tx) ([]notice, error) {
		if e.Owner == nil {
			return nil, nil
		}
		title := ""
		if rev, err := tx.Review(ctx, e.ReviewID); err == nil {
			title = rev.Title
		}
		return []notice{{key: "action_assigned:" + e.ActionID, reason: ReasonActionAssigned,
			to: events.Contact{Name: e.Owner.Name, Email: e.Owner.Email}, reviewID: e.ReviewID, actionID: e.ActionID,
			v: view{Title: title, Action: e.Title, ActionDescription: e.Description, ActionDue: e.DueDate}}}, nil
	})
}

// HandleActionOverdue tells an action's owner it is overdue, once per due date.
func (s *Service) HandleActionOverdue(ctx context.Context, eventID string, e events.ActionOverdue) (int, error) {
	return s.handle(ctx, eventID, func(tx *postgres.Tx) ([]notice, error) {
		if e.Owner == nil {
			return nil, nil
		}
		return []notice{{key: "action_overdue:" + e.ActionID + ":" + e.DueDate, reason: ReasonActionOverdue,
			to: events.Contact{Name: e.Owner.Name, Email: e.Owner.Email}, actionID: e.ActionID,
			v: view{Action: e.Title, ActionDue: e.DueDate, DaysOverdue: e.DaysOverdue}}}, nil
	})
}

func contactOf(p events.Participant) events.Contact {
	return events.Contact{Name: p.Name, Email: p.Email}
}

func displayName(c events.Contact) string {
	if n := headerText(c.Name); n != "" {
		return n
	}
	return c.Email
}

func whenPtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return when(*t)
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// HandleDigest sends a person their weekly outstanding-work digest, once per
// digest.
func (s *Service) HandleDigest(ctx context.Context, eventID string, e events.ActionDigest) (int, error) {
	return s.handle(ctx, eventID, func(tx *postgres.Tx) ([]notice, error) {
		lines := func(items []events.DigestItem) []string {
			out := make([]string, 0, len(items))
			for _, it := range items {
				l := it.Title
				if it.DueDate != "" {
					l += " (due " + it.DueDate
					if it.DaysOverdue > 0 {
						l += fmt.Sprintf(", %d day(s) overdue", it.DaysOverdue)
					}
					l += ")"
				}
				if e.Role == events.DigestRoleFacilitator && it.Owner != nil {
					l += ", owner " + it.Owner.Name
				}
				out = append(out, l)
			}
			return out
		}
		return []notice{{key: "action_digest:" + e.DigestID, reason: ReasonActionDigest, to: e.Recipient,
			v: view{Week: e.Week, Role: e.Role, Overdue: lines(e.Overdue), DueSoon: lines(e.DueSoon), Done: lines(e.DoneThisWeek),
				OverdueCount: e.OverdueCount, DueSoonCount: e.DueSoonCount, DoneCount: e.DoneCount}}}, nil
	})
}
