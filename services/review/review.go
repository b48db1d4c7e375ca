// Package review runs the lessons-learned review of each registered incident:
// it opens one review per incident with a due date from the severity policy,
// invites the people involved to answer a versioned questionnaire (API or web
// form, with signed invitation links), reminds those who have not answered,
// and lets the facilitator complete the review with findings and action items,
// announcing each step as an event through the outbox. A completed review keeps
// following its incident's revisions (it becomes stale) and can be amended:
// each amendment emits a new review.completed, from which the report service
// renders a new immutable report version.
package review

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/review/postgres"
)

// Source is the ce-source of every event the service emits.
const Source = "afteraction/review"

// Errors the use cases return; HTTP maps them to 404 and 409.
var (
	// ErrNotFound: the review or participant does not exist.
	ErrNotFound = pg.ErrNotFound
	// ErrCompleted: the review is completed and takes no more answers or completions.
	ErrCompleted = errors.New("review is completed")
	// ErrNotCompleted: the review is still open, so there is nothing to amend.
	ErrNotCompleted = errors.New("review is not completed")
	// ErrConflict: the change contradicts the review's state (the person is
	// already invited, a participant who answered cannot be removed, ...).
	ErrConflict = pg.ErrConflict
)

// Review is the public view of a review: what GET /v1/reviews returns.
type Review struct {
	ReviewID             string              `json:"review_id"`
	IncidentID           string              `json:"incident_id"`
	IncidentRevision     int                 `json:"incident_revision"`
	Status               string              `json:"status"`
	Required             bool                `json:"required"`
	Exercise             bool                `json:"exercise"`
	DueAt                *time.Time          `json:"due_at"`
	Historical           bool                `json:"historical"`
	OpenedAt             time.Time           `json:"opened_at"`
	CompletedAt          *time.Time          `json:"completed_at"`
	Title                string              `json:"title"`
	Severity             events.Severity     `json:"severity"`
	QuestionnaireVersion string              `json:"questionnaire_version"`
	Facilitator          *events.Contact     `json:"facilitator"`
	Participants         []Participant       `json:"participants"`
	Summary              string              `json:"summary,omitempty"`
	Findings             []events.Finding    `json:"findings,omitempty"`
	ActionItems          []events.ActionItem `json:"action_items,omitempty"`
	Questions            []events.Question   `json:"questions,omitempty"`
	Responses            []Response          `json:"responses,omitempty"`

	// CompletedIncidentRevision is the incident revision the latest completion
	// or amendment was based on (null while open); Stale says the incident has
	// been revised since, so the review needs an amendment.
	CompletedIncidentRevision *int `json:"completed_incident_revision"`
	Stale                     bool `json:"stale"`
	// Amendment is the number of the latest amendment (0: never amended).
	Amendment int `json:"amendment"`
	// Category is the incident's category.
	Category string `json:"category,omitempty"`
	// SignOff says who signed the completion off and who approved or
	// rejected it where a second approval is required.
	SignOff postgres.SignOff `json:"sign_off"`
	// ApprovalRequired says the configuration requires a second approval
	// before this review is completed.
	ApprovalRequired bool `json:"approval_required"`

	incident events.IncidentClosed // for the completed event and the form
}

// ReviewDetail is a review with its questionnaire and every current response:
// what GET /v1/reviews/{id} returns.
type ReviewDetail struct {
	Review
	Questions  []events.Question    `json:"questions"`
	Responses  []Response           `json:"responses"`
	Amendments []postgres.Amendment `json:"amendments"`
}

// Participant is a person invited to a review, with their personal invitation.
// InvitationToken and FormURL let anyone holding them answer as the
// participant: they are empty (and left out of JSON) in views for callers who
// may not hand out invitations (see WithoutInvitations).
//
// AddedBy says where the participant came from ("incident", "rule:<name>",
// "person:<login>"); InvitedAt is when the current invitation was sent,
// RemindedAt the latest reminder; Revoked says their invitation was withdrawn
// (they have no working link until it is resent); Late says they answered
// after the due date, or have not answered and the review is overdue.
type Participant struct {
	ParticipantID   string      `json:"participant_id"`
	Name            string      `json:"name"`
	Email           string      `json:"email,omitempty"`
	Role            events.Role `json:"role,omitempty"`
	SubmittedAt     *time.Time  `json:"submitted_at"`
	AddedBy         string      `json:"added_by"`
	InvitedAt       time.Time   `json:"invited_at"`
	RemindedAt      *time.Time  `json:"reminded_at"`
	Revoked         bool        `json:"revoked"`
	Late            bool        `json:"late"`
	InvitationToken string      `json:"invitation_token,omitempty"`
	FormURL         string      `json:"form_url,omitempty"`
}

// WithoutInvitations returns v with every participant's invitation token and
// form link removed (v itself is left as it is).
func (v Review) WithoutInvitations() Review {
	ps := make([]Participant, len(v.Participants))
	for i, p := range v.Participants {
		p.InvitationToken, p.FormURL = "", ""
		ps[i] = p
	}
	v.Participants = ps
	return v
}

// Response is one participant's current answers.
type Response struct {
	ReviewID      string          `json:"review_id"`
	ParticipantID string          `json:"participant_id"`
	Name          string          `json:"name,omitempty"`
	SubmittedAt   time.Time       `json:"submitted_at"`
	SubmittedBy   string          `json:"submitted_by"`
	Answers       []events.Answer `json:"answers"`
}

// ServiceConfig is what the Service needs besides its store.
type ServiceConfig struct {
	Policy Policy
	// Questionnaire is the version new reviews are opened with.
	Questionnaire string
	Invites       Invites
	// PublicURL is the base of participants' form links, e.g. https://review.example.
	PublicURL string
	// ReminderWindow is how long before the due date a due_soon reminder goes out (default 24h).
	ReminderWindow time.Duration
	// MaxAge: an incident closed longer than this before its review opens gets
	// a historical review (not required, no due date, no reminders). 0 disables it.
	MaxAge time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Rules add people to reviews by severity, category or asset.
	Rules []Rule
	// ApprovalSeverities: reviews of incidents of these severities are
	// completed only after a second person (an approver) approves the sign-off.
	ApprovalSeverities []events.Severity
	// ActionDue gives an action item without a due date one: the completion
	// date plus the duration for its priority ("" is medium).
	ActionDue ActionDuePolicy
}

// Service holds the review use cases.
type Service struct {
	store   *postgres.Store
	cfg     ServiceConfig
	log     *zap.Logger
	metrics metrics
}

type metrics struct {
	opened, responses, completed, amended, reminders, invitations, loginThrottled prometheus.Counter
}

// NewService returns the service on store. It registers its metrics with reg
// when reg is not nil and fails if they are already registered.
func NewService(store *postgres.Store, cfg ServiceConfig, log *zap.Logger, reg prometheus.Registerer) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReminderWindow == 0 {
		cfg.ReminderWindow = 24 * time.Hour
	}
	if len(cfg.Invites.Secret) == 0 {
		return nil, errors.New("review service: an invitation secret is required")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "afteraction_review_" + name, Help: help})
	}
	m := metrics{
		opened:    counter("reviews_opened_total", "Reviews opened."),
		responses: counter("responses_submitted_total", "Participant responses stored (including resubmissions)."),
		completed: counter("reviews_completed_total", "Reviews completed."),
		amended:   counter("reviews_amended_total", "Amendments of completed reviews."),
		reminders: counter("reminders_sent_total", "Reminders enqueued for participants."),
		invitations: counter("invitations_announced_total",
			"Invitations announced for participants added or resent after the review opened."),
		loginThrottled: counter("console_logins_throttled_total", "Console sign-ins refused after too many failures."),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.opened, m.responses, m.completed, m.amended, m.reminders, m.invitations, m.loginThrottled} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register review metrics: %w", err)
			}
		}
	}
	return &Service{store: store, cfg: cfg, log: log, metrics: m}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// newEvent builds an envelope of typ about reviewID and checks it against the
// event's schema, so nothing invalid reaches the outbox.
func newEvent(typ, reviewID string, data any) (events.Envelope, error) {
	env, err := events.New(typ, Source, reviewID, data)
	if err != nil {
		return env, err
	}
	if err := events.Validate(typ, env.Data); err != nil {
		return env, fmt.Errorf("emit %s: %w", typ, err)
	}
	return env, nil
}

// OpenOutcome says what handling an incident.registered event did.
type OpenOutcome string

// Outcomes of HandleIncidentRegistered.
const (
	OutcomeOpened OpenOutcome = "opened"
	// OutcomeHistorical: opened as a historical review (the incident closed
	// longer than MaxAge ago), not required, without due date or reminders.
	OutcomeHistorical OpenOutcome = "opened_historical"
	OutcomeUpdated    OpenOutcome = "updated"
	OutcomeStale      OpenOutcome = "stale_revision"
	OutcomeBehind     OpenOutcome = "completed_review_behind"
	OutcomeDuplicate  OpenOutcome = "duplicate"
)

// HandleIncidentRegistered applies one registered incident revision, exactly
// once per eventID: with no review for the incident yet it opens one (and
// enqueues review.opened; OutcomeHistorical when the incident closed more than
// MaxAge before); with an open review and a newer revision it updates the
// incident snapshot, recomputes required, exercise, due date and historical
// from the policy (see schedule), and invites new people; with a completed
// review and a newer revision it updates the incident snapshot only
// (OutcomeBehind: nobody is invited, nothing reopens, the due date stays,
// nothing is emitted; the review is stale until amended); a revision not newer
// than the one stored changes nothing.
func (s *Service) HandleIncidentRegistered(ctx context.Context, eventID string, e events.IncidentRegistered) (OpenOutcome, error) {
	now := s.now()
	people := withoutDuplicates(append(participantsOf(e.Incident.People), s.ruleParticipants(e.Incident)...))
	fac := facilitatorOf(e.Incident.People)
	var outcome OpenOutcome
	err := s.store.InTx(ctx, func(tx *postgres.Tx) error {
		fresh, err := tx.MarkProcessed(ctx, eventID)
		if err != nil {
			return err
		}
		if !fresh {
			outcome = OutcomeDuplicate
			return nil
		}
		r, err := tx.LockReviewOfIncident(ctx, e.IncidentID)
		switch {
		case errors.Is(err, ErrNotFound):
			outcome, err = s.open(ctx, tx, e, people, fac, now)
			return err
		case err != nil:
			return err
		case e.Revision <= r.IncidentRevision:
			outcome = OutcomeStale
			return nil
		case r.Status == postgres.StatusCompleted:
			outcome = OutcomeBehind
			return tx.UpdateIncident(ctx, r.ID, e.Revision, e.Incident, events.Contact{})
		}
		outcome = OutcomeUpdated
		if err := tx.UpdateIncident(ctx, r.ID, e.Revision, e.Incident, fac); err != nil {
			return err
		}
		if err := tx.Reschedule(ctx, r.ID, s.schedule(e.Incident, r.OpenedAt)); err != nil {
			return err
		}
		added, err := tx.AddParticipants(ctx, r.ID, now, people)
		if err != nil {
			return err
		}
		return s.enqueueInvitations(ctx, tx, r, added, events.InvitationAdded)
	})
	if err != nil {
		return "", err
	}
	if outcome == OutcomeOpened || outcome == OutcomeHistorical {
		s.metrics.opened.Inc()
	}
	return outcome, nil
}

// openReviews is the set-based path of the registered-incident consumer (a
// bus.BatchWriter): it opens, with a few statements for the whole batch, the
// review of every incident that has none yet, exactly as
// HandleIncidentRegistered would one message at a time, and leaves to it every
// other message: revisions of incidents that have a review, any later message
// about an incident of the batch, and any message whose review or events
// cannot be built. Event ids already processed are acked as duplicates.
func (s *Service) openReviews(ctx context.Context, btx pgx.Tx, ms []*bus.Message) ([]*bus.Message, error) {
	type candidate struct {
		m *bus.Message
		e events.IncidentRegistered
	}
	var cands []candidate
	seen := map[string]bool{}
	for _, m := range ms {
		e, ok := m.Prepared.(events.IncidentRegistered)
		if !ok {
			return ms, nil // not decoded by bus.PrepareTyped: the handler decides
		}
		if !seen[e.IncidentID] {
			seen[e.IncidentID] = true
			cands = append(cands, candidate{m, e})
		}
	}
	tx := postgres.WrapTx(btx)
	ids := make([]string, len(cands))
	for i, c := range cands {
		ids[i] = c.e.IncidentID
	}
	reviewed, err := tx.ReviewedIncidents(ctx, ids)
	if err != nil {
		return nil, err
	}
	now := s.now()
	taken := map[*bus.Message]bool{}
	openings := map[string]opening{} // by event id
	var eventIDs []string
	for _, c := range cands {
		if reviewed[c.e.IncidentID] {
			continue
		}
		people := withoutDuplicates(append(participantsOf(c.e.Incident.People), s.ruleParticipants(c.e.Incident)...))
		o, err := s.opening(c.e, people, facilitatorOf(c.e.Incident.People), now)
		if err != nil {
			continue // the handler meets the same error, for this message alone
		}
		taken[c.m] = true
		for i := range o.events {
			o.events[i] = c.m.Traced(o.events[i])
		}
		openings[c.m.Envelope.ID] = o
		eventIDs = append(eventIDs, c.m.Envelope.ID)
	}
	fresh, err := tx.MarkProcessedBatch(ctx, eventIDs)
	if err != nil {
		return nil, err
	}
	var reviews []postgres.Review
	var envs []events.Envelope
	for _, id := range eventIDs {
		if o := openings[id]; fresh[id] {
			reviews = append(reviews, o.review)
			envs = append(envs, o.events...)
		}
	}
	if err := tx.InsertReviews(ctx, reviews); err != nil {
		return nil, err
	}
	if err := tx.EnqueueAll(ctx, envs); err != nil {
		return nil, err
	}
	s.metrics.opened.Add(float64(len(reviews)))
	var rest []*bus.Message
	for _, c := range cands {
		if taken[c.m] {
			outcome := openings[c.m.Envelope.ID].outcome
			if !fresh[c.m.Envelope.ID] {
				outcome = OutcomeDuplicate
			}
			s.logHandled(c.m, c.e, outcome)
		}
	}
	for _, m := range ms {
		if !taken[m] {
			rest = append(rest, m)
		}
	}
	return rest, nil
}

// schedule applies the policy to inc for a review opened at openedAt. An
// incident that had closed more than MaxAge before openedAt (an import of
// history) gets a historical review: not required and without a due date, so
// it is never reminded. Measuring against openedAt, not now, keeps a review
// opened on time from turning historical when a late revision arrives.
func (s *Service) schedule(inc events.IncidentClosed, openedAt time.Time) postgres.Schedule {
	if s.cfg.MaxAge > 0 && inc.Timestamps.ClosedAt.Before(openedAt.Add(-s.cfg.MaxAge)) {
		return postgres.Schedule{Exercise: inc.Exercise, Historical: true}
	}
	required, due := s.cfg.Policy.DueAt(inc)
	return postgres.Schedule{Required: required, Exercise: inc.Exercise, DueAt: due}
}

func (s *Service) open(ctx context.Context, tx *postgres.Tx, e events.IncidentRegistered, people []postgres.Participant, fac events.Contact, now time.Time) (OpenOutcome, error) {
	o, err := s.opening(e, people, fac, now)
	if err != nil {
		return "", err
	}
	if err := tx.InsertReview(ctx, o.review); err != nil {
		return "", err
	}
	// review.opened and every invitation go to the outbox in one statement.
	if err := tx.EnqueueAll(ctx, o.events); err != nil {
		return "", err
	}
	return o.outcome, nil
}

// opening is a review about to open: its row with its participants, the
// events that announce it (review.opened, then an invitation per participant
// who gets one) and the outcome.
type opening struct {
	review  postgres.Review
	events  []events.Envelope
	outcome OpenOutcome
}

// opening builds the review that e opens at now, with its events, without
// touching the store.
func (s *Service) opening(e events.IncidentRegistered, people []postgres.Participant, fac events.Contact, now time.Time) (opening, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return opening{}, err
	}
	sched := s.schedule(e.Incident, now)
	r := postgres.Review{
		ID: id.String(), IncidentID: e.IncidentID, IncidentRevision: e.Revision, Status: postgres.StatusOpen,
		Required: sched.Required, Exercise: sched.Exercise, DueAt: sched.DueAt, Historical: sched.Historical, OpenedAt: now,
		Title: e.Incident.Title, Severity: e.Incident.Severity, QuestionnaireVersion: s.cfg.Questionnaire,
		Facilitator: fac, Incident: e.Incident, Participants: people,
	}
	opened := events.ReviewOpened{
		ReviewID: r.ID, IncidentID: r.IncidentID, IncidentRevision: r.IncidentRevision, Title: r.Title,
		Severity: r.Severity, Exercise: r.Exercise, Required: r.Required, OpenedAt: now, DueAt: r.DueAt,
		QuestionnaireVersion: r.QuestionnaireVersion, Participants: make([]events.Participant, 0, len(people)),
	}
	for _, p := range people {
		ep := eventParticipant(p)
		opened.Participants = append(opened.Participants, ep)
		if fac.Name != "" && p.Key == personKey(fac.Name, fac.Email) {
			opened.Facilitator = &ep
		}
	}
	env, err := newEvent(events.TypeReviewOpened, r.ID, opened)
	if err != nil {
		return opening{}, err
	}
	o := opening{review: r, events: []events.Envelope{env}, outcome: OutcomeOpened}
	if r.Historical {
		o.outcome = OutcomeHistorical
	}
	for _, p := range people {
		inv, ok, err := s.invitation(r, p, events.InvitationOpened)
		if err != nil {
			return opening{}, err
		}
		if ok {
			o.events = append(o.events, inv)
		}
	}
	return o, nil
}

// participantsOf turns an incident's people into participants, one per person:
// the same e-mail address (or, without one, the same name) counts once.
func participantsOf(people []events.Person) []postgres.Participant {
	out := make([]postgres.Participant, 0, len(people))
	seen := map[string]bool{}
	for _, p := range people {
		key := personKey(p.Name, p.Email)
		if key == "" || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, postgres.Participant{
			ID: uuid.Must(uuid.NewV7()).String(), Key: key,
			Name: strings.TrimSpace(p.Name), Email: strings.TrimSpace(p.Email), Role: p.Role,
		})
	}
	return out
}

// withoutDuplicates keeps the first participant of each Key.
func withoutDuplicates(ps []postgres.Participant) []postgres.Participant {
	seen := map[string]bool{}
	out := ps[:0]
	for _, p := range ps {
		if !seen[p.Key] {
			seen[p.Key] = true
			out = append(out, p)
		}
	}
	return out
}

func personKey(name, email string) string {
	if e := strings.ToLower(strings.TrimSpace(email)); e != "" {
		return "email:" + e
	}
	if n := strings.ToLower(strings.Join(strings.Fields(name), " ")); n != "" {
		return "name:" + n
	}
	return ""
}

// facilitatorOf is the incident's (first) commander, the default facilitator.
func facilitatorOf(people []events.Person) events.Contact {
	for _, p := range people {
		if p.Role == events.RoleCommander && strings.TrimSpace(p.Name) != "" {
			return events.Contact{Name: strings.TrimSpace(p.Name), Email: strings.TrimSpace(p.Email)}
		}
	}
	return events.Contact{}
}

func eventParticipant(p postgres.Participant) events.Participant {
	return events.Participant{ParticipantID: p.ID, Name: p.Name, Email: p.Email, Role: p.Role}
}

// Reviews returns the reviews of an incident (an empty list if it has none),
// or the 100 most recent when incidentID is empty.
func (s *Service) Reviews(ctx context.Context, incidentID string) ([]Review, error) {
	rs, err := s.store.Reviews(ctx, incidentID)
	if err != nil {
		return nil, err
	}
	out := make([]Review, 0, len(rs))
	for _, r := range rs {
		out = append(out, s.view(r))
	}
	return out, nil
}

// Review returns one review with its questions and responses, or ErrNotFound.
func (s *Service) Review(ctx context.Context, id string) (ReviewDetail, error) {
	r, err := s.store.Review(ctx, id)
	if err != nil {
		return ReviewDetail{}, err
	}
	v := ReviewDetail{Review: s.view(r)}
	if v.Questions, err = s.store.Questionnaire(ctx, r.QuestionnaireVersion); err != nil {
		return ReviewDetail{}, err
	}
	resps, err := s.store.Responses(ctx, id)
	if err != nil {
		return ReviewDetail{}, err
	}
	v.Responses = make([]Response, 0, len(resps))
	for _, resp := range resps {
		v.Responses = append(v.Responses, responseView(r, resp))
	}
	if v.Amendments, err = s.store.Amendments(ctx, id); err != nil {
		return ReviewDetail{}, err
	}
	if v.Amendments == nil {
		v.Amendments = []postgres.Amendment{}
	}
	return v, nil
}

// Questions returns the questionnaire a review was opened with, or ErrNotFound.
func (s *Service) Questions(ctx context.Context, reviewID string) (string, []events.Question, error) {
	r, err := s.store.Review(ctx, reviewID)
	if err != nil {
		return "", nil, err
	}
	qs, err := s.store.Questionnaire(ctx, r.QuestionnaireVersion)
	return r.QuestionnaireVersion, qs, err
}

func (s *Service) view(r postgres.Review) Review {
	v := Review{
		ReviewID: r.ID, IncidentID: r.IncidentID, IncidentRevision: r.IncidentRevision, Status: r.Status,
		Required: r.Required, Exercise: r.Exercise, DueAt: r.DueAt, Historical: r.Historical,
		OpenedAt: r.OpenedAt, CompletedAt: r.CompletedAt,
		Title: r.Title, Severity: r.Severity, QuestionnaireVersion: r.QuestionnaireVersion,
		Participants: make([]Participant, 0, len(r.Participants)),
		Summary:      r.Summary, Findings: r.Findings, ActionItems: r.ActionItems, incident: r.Incident,
		Stale: r.Stale(), Amendment: r.Amendments, Category: r.Incident.Category, SignOff: r.SignOff,
		ApprovalRequired: s.approvalRequired(r),
	}
	if r.Status == postgres.StatusCompleted {
		rev := r.CompletedIncidentRevision
		v.CompletedIncidentRevision = &rev
	}
	if r.Facilitator.Name != "" {
		f := r.Facilitator
		v.Facilitator = &f
	}
	for _, p := range r.Participants {
		v.Participants = append(v.Participants, s.participantView(r, p))
	}
	return v
}

// participantView is p as the API shows it, with their current invitation
// link unless it is revoked.
func (s *Service) participantView(r postgres.Review, p postgres.Participant) Participant {
	v := Participant{
		ParticipantID: p.ID, Name: p.Name, Email: p.Email, Role: p.Role, SubmittedAt: p.SubmittedAt,
		AddedBy: p.AddedBy, InvitedAt: p.InvitedAt, RemindedAt: p.RemindedAt, Revoked: p.RevokedAt != nil,
	}
	if d := r.DueAt; d != nil {
		v.Late = (p.SubmittedAt != nil && p.SubmittedAt.After(*d)) || (p.SubmittedAt == nil && r.Status == postgres.StatusOpen && s.now().After(*d))
	}
	if !v.Revoked {
		v.InvitationToken = s.cfg.Invites.Token(r.ID, p.ID, p.Generation, s.cfg.Invites.Expiry(r.OpenedAt))
		v.FormURL = s.cfg.PublicURL + "/review/" + r.ID + "?token=" + v.InvitationToken
	}
	return v
}

func responseView(r postgres.Review, resp postgres.Response) Response {
	v := Response{ReviewID: r.ID, ParticipantID: resp.ParticipantID, SubmittedAt: resp.SubmittedAt,
		SubmittedBy: resp.SubmittedBy, Answers: resp.Answers}
	for _, p := range r.Participants {
		if p.ID == resp.ParticipantID {
			v.Name = p.Name
		}
	}
	if v.Answers == nil {
		v.Answers = []events.Answer{}
	}
	return v
}

// Channels a response arrives through, recorded in the audit log.
const (
	ChannelAPI  = "api"
	ChannelForm = "form"
)

// Submission is one participant's answers as submitted.
type Submission struct {
	ReviewID      string
	ParticipantID string
	// By says who submitted: "participant" for the invitee, or "role:<role>" for an API caller.
	By      string
	Channel string
	Answers []events.Answer
	// Body is the request exactly as received (JSON), kept in the audit log.
	Body []byte
}

// SubmitResponse validates and stores a participant's answers, replacing their
// earlier ones and adding the submission to the audit log. It returns
// ErrNotFound for an unknown review or participant, ErrCompleted when the
// review is completed, or a *ValidationError for answers that do not fit the
// questionnaire.
func (s *Service) SubmitResponse(ctx context.Context, sub Submission) (Response, error) {
	r, err := s.store.Review(ctx, sub.ReviewID)
	if err != nil {
		return Response{}, err
	}
	if !hasParticipant(r, sub.ParticipantID) {
		return Response{}, fmt.Errorf("participant %s of review %s: %w", sub.ParticipantID, r.ID, ErrNotFound)
	}
	if r.Status != postgres.StatusOpen {
		return Response{}, ErrCompleted
	}
	qs, err := s.store.Questionnaire(ctx, r.QuestionnaireVersion)
	if err != nil {
		return Response{}, err
	}
	answers, err := ValidateAnswers(qs, sub.Answers)
	if err != nil {
		return Response{}, err
	}
	resp := postgres.Response{ParticipantID: sub.ParticipantID, SubmittedAt: s.now(), SubmittedBy: sub.By, Answers: answers}
	err = s.store.InTx(ctx, func(tx *postgres.Tx) error {
		locked, err := tx.LockReview(ctx, r.ID)
		if err != nil {
			return err
		}
		if locked.Status != postgres.StatusOpen {
			return ErrCompleted
		}
		if err := tx.SaveResponse(ctx, r.ID, resp, sub.Channel, sub.Body); err != nil {
			return err
		}
		return s.enqueueAnswered(ctx, tx, locked, sub.ParticipantID, resp.SubmittedAt)
	})
	if err != nil {
		return Response{}, err
	}
	s.metrics.responses.Inc()
	return responseView(r, resp), nil
}

func hasParticipant(r postgres.Review, participantID string) bool {
	for _, p := range r.Participants {
		if p.ID == participantID {
			return true
		}
	}
	return false
}

// Submissions returns a review's response audit log, oldest first.
func (s *Service) Submissions(ctx context.Context, reviewID string) ([]postgres.Submission, error) {
	return s.store.Submissions(ctx, reviewID)
}
