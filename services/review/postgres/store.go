// Package postgres is the review service's store: reviews, questionnaires,
// participants, responses with their audit log, amendments of completed
// reviews, and sent reminders, in the
// service's own schema. Every write happens inside a Tx so that the state
// change, processed_events and the outbox commit together.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/tracing"
)

// Schema is the Postgres schema the review service owns.
const Schema = "review"

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the service's embedded migrations, rooted at their directory.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // the embedded directory is fixed at compile time
	}
	return sub
}

// Review status values.
const (
	StatusOpen      = "open"
	StatusCompleted = "completed"
	// StatusAwaitingApproval: signed off by the facilitator, waiting for the
	// second approval the configuration requires for the review.
	StatusAwaitingApproval = "awaiting_approval"
)

// Review is one stored review with its participants. Historical says the
// incident had closed longer ago than the maximum age when the review opened:
// the review is then optional, has no due date and is never reminded.
type Review struct {
	ID                   string
	IncidentID           string
	IncidentRevision     int
	Status               string
	Required             bool
	Exercise             bool
	DueAt                *time.Time
	Historical           bool
	OpenedAt             time.Time
	CompletedAt          *time.Time
	Title                string
	Severity             events.Severity
	QuestionnaireVersion string
	Facilitator          events.Contact
	Incident             events.IncidentClosed
	Summary              string
	Findings             []events.Finding
	ActionItems          []events.ActionItem
	CompletedEventID     string
	// CompletedIncidentRevision is the incident revision the latest completion
	// or amendment was based on (0 while open); IncidentRevision beyond it
	// means the completed review is behind its incident.
	CompletedIncidentRevision int
	// Amendments is how many amendments the review has had.
	Amendments   int
	Participants []Participant
	SignOff      SignOff
}

// SignOff records who signed a completion off and, where a second approval
// is required, who approved or rejected it. Pending is the outcome (JSON)
// waiting for approval while the status is StatusAwaitingApproval.
type SignOff struct {
	SignedOffBy     string     `json:"signed_off_by,omitempty"`
	SignedOffAt     *time.Time `json:"signed_off_at,omitempty"`
	Pending         string     `json:"-"`
	ApprovedBy      string     `json:"approved_by,omitempty"`
	ApprovedAt      *time.Time `json:"approved_at,omitempty"`
	RejectedBy      string     `json:"rejected_by,omitempty"`
	RejectedAt      *time.Time `json:"rejected_at,omitempty"`
	RejectionReason string     `json:"rejection_reason,omitempty"`
}

// Stale reports whether the review is completed and its incident has been
// revised since the latest completion or amendment.
func (r Review) Stale() bool {
	return r.Status == StatusCompleted && r.IncidentRevision > r.CompletedIncidentRevision
}

// Participant is a person invited to a review; Key identifies them within it.
// AddedBy says where they came from ("incident", "rule:<name>" or
// "person:<login>"); Generation is signed into their invitation token, so
// revoking or resending (which bump it) invalidates only their earlier links.
type Participant struct {
	ID          string
	Key         string
	Name        string
	Email       string
	Role        events.Role
	SubmittedAt *time.Time
	AddedBy     string
	InvitedAt   time.Time
	RemindedAt  *time.Time
	Generation  int
	RevokedAt   *time.Time
}

// Response is one participant's current answers.
type Response struct {
	ParticipantID string
	SubmittedAt   time.Time
	SubmittedBy   string
	Answers       []events.Answer
}

// Submission is one entry of the response audit log.
type Submission struct {
	ID            int64
	ParticipantID string
	SubmittedAt   time.Time
	SubmittedBy   string
	Channel       string
	Body          json.RawMessage
}

// Store reads and writes the review schema.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store on pool, whose search_path must be Schema.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Ping checks that the database answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Trace returns the trace context the review's first event was written in
// (the incident's trace), the zero Context when it was not traced.
func (s *Store) Trace(ctx context.Context, reviewID string) (tracing.Context, error) {
	return pg.SubjectTrace(ctx, s.pool, reviewID)
}

// Tx is a transaction on the store: every write goes through one.
type Tx struct {
	tx pgx.Tx
}

// WrapTx returns the store's view of tx, a transaction on its pool that the
// caller began (a batch consumer's).
func WrapTx(tx pgx.Tx) *Tx { return &Tx{tx: tx} }

// InTx runs fn in one transaction, committing when it returns nil.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error { return fn(&Tx{tx: tx}) })
}

// MarkProcessed records an inbound event id; false means it was handled before.
func (t *Tx) MarkProcessed(ctx context.Context, eventID string) (bool, error) {
	return pg.MarkProcessed(ctx, t.tx, eventID)
}

// MarkProcessedBatch records inbound event ids and returns those that are new.
func (t *Tx) MarkProcessedBatch(ctx context.Context, eventIDs []string) (map[string]bool, error) {
	return pg.MarkProcessedBatch(ctx, t.tx, eventIDs)
}

// EnqueueAll writes envs to the outbox with one statement, each to the
// subject of its type.
func (t *Tx) EnqueueAll(ctx context.Context, envs []events.Envelope) error {
	msgs := make([]pg.OutboxMessage, len(envs))
	for i, env := range envs {
		subject, err := events.SubjectOf(env.Type)
		if err != nil {
			return err
		}
		msgs[i] = pg.OutboxMessage{Subject: subject, Envelope: env}
	}
	return pg.EnqueueBatch(ctx, t.tx, msgs)
}

// Enqueue writes env to the outbox, to be published on the subject of its type.
func (t *Tx) Enqueue(ctx context.Context, env events.Envelope) error {
	return t.EnqueueAll(ctx, []events.Envelope{env})
}

const selectReview = `SELECT review_id::text, incident_id::text, incident_revision, status, required, exercise,
	due_at, historical, opened_at, completed_at, title, severity, questionnaire_version, facilitator_name, facilitator_email,
	incident, summary, findings, action_items, coalesce(completed_event_id, ''),
	coalesce(completed_incident_revision, 0),
	(SELECT count(*) FROM amendments a WHERE a.review_id = reviews.review_id),
	signed_off_by, signed_off_at, coalesce(pending_completion::text, ''), approved_by, approved_at,
	rejected_by, rejected_at, rejection_reason
FROM reviews`

func scanReview(row pgx.CollectableRow) (Review, error) {
	var r Review
	var incident, findings, items []byte
	err := row.Scan(&r.ID, &r.IncidentID, &r.IncidentRevision, &r.Status, &r.Required, &r.Exercise,
		&r.DueAt, &r.Historical, &r.OpenedAt, &r.CompletedAt, &r.Title, &r.Severity, &r.QuestionnaireVersion,
		&r.Facilitator.Name, &r.Facilitator.Email, &incident, &r.Summary, &findings, &items, &r.CompletedEventID,
		&r.CompletedIncidentRevision, &r.Amendments,
		&r.SignOff.SignedOffBy, &r.SignOff.SignedOffAt, &r.SignOff.Pending, &r.SignOff.ApprovedBy, &r.SignOff.ApprovedAt,
		&r.SignOff.RejectedBy, &r.SignOff.RejectedAt, &r.SignOff.RejectionReason)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(incident, &r.Incident); err != nil {
		return r, fmt.Errorf("review %s incident: %w", r.ID, err)
	}
	if err := json.Unmarshal(findings, &r.Findings); err != nil {
		return r, fmt.Errorf("review %s findings: %w", r.ID, err)
	}
	if err := json.Unmarshal(items, &r.ActionItems); err != nil {
		return r, fmt.Errorf("review %s action items: %w", r.ID, err)
	}
	return r, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func oneReview(ctx context.Context, q querier, sql string, arg any) (Review, error) {
	rows, err := q.Query(ctx, sql, arg)
	if err != nil {
		return Review{}, err
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanReview)
	if pg.IsNoRows(err) {
		return Review{}, pg.ErrNotFound
	}
	if err != nil {
		return Review{}, err
	}
	r.Participants, err = participants(ctx, q, r.ID)
	return r, err
}

const selectParticipants = `SELECT p.participant_id::text, p.key, p.name, p.email, p.role, s.submitted_at,
	p.added_by, p.invited_at, (SELECT max(m.reminded_at) FROM reminders m WHERE m.participant_id = p.participant_id),
	p.invitation_generation, p.invitation_revoked_at
FROM participants p LEFT JOIN responses s USING (participant_id)
WHERE p.review_id = $1 AND p.removed_at IS NULL ORDER BY p.position`

func participants(ctx context.Context, q querier, reviewID string) ([]Participant, error) {
	rows, err := q.Query(ctx, selectParticipants, reviewID)
	if err != nil {
		return nil, fmt.Errorf("participants of review %s: %w", reviewID, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Participant, error) {
		var p Participant
		err := row.Scan(&p.ID, &p.Key, &p.Name, &p.Email, &p.Role, &p.SubmittedAt,
			&p.AddedBy, &p.InvitedAt, &p.RemindedAt, &p.Generation, &p.RevokedAt)
		return p, err
	})
}

// Review returns the review with id, or ErrNotFound.
func (s *Store) Review(ctx context.Context, id string) (Review, error) {
	r, err := oneReview(ctx, s.pool, selectReview+` WHERE review_id = $1`, id)
	if err != nil {
		return r, fmt.Errorf("review %s: %w", id, err)
	}
	return r, nil
}

// Reviews returns the reviews of an incident (at most one), or, for an empty
// incidentID, the 100 most recently opened reviews.
func (s *Store) Reviews(ctx context.Context, incidentID string) ([]Review, error) {
	sql, args := selectReview+` ORDER BY opened_at DESC LIMIT 100`, []any{}
	if incidentID != "" {
		sql, args = selectReview+` WHERE incident_id = $1`, []any{incidentID}
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list reviews: %w", err)
	}
	reviews, err := pgx.CollectRows(rows, scanReview)
	if err != nil {
		return nil, fmt.Errorf("list reviews: %w", err)
	}
	for i := range reviews {
		if reviews[i].Participants, err = participants(ctx, s.pool, reviews[i].ID); err != nil {
			return nil, err
		}
	}
	return reviews, nil
}

// LockReview returns the review with id locked FOR UPDATE until the
// transaction ends, or ErrNotFound.
func (t *Tx) LockReview(ctx context.Context, id string) (Review, error) {
	r, err := oneReview(ctx, t.tx, selectReview+` WHERE review_id = $1 FOR UPDATE`, id)
	if err != nil {
		return r, fmt.Errorf("lock review %s: %w", id, err)
	}
	return r, nil
}

// LockReviewOfIncident returns the review of an incident locked FOR UPDATE, or ErrNotFound.
func (t *Tx) LockReviewOfIncident(ctx context.Context, incidentID string) (Review, error) {
	r, err := oneReview(ctx, t.tx, selectReview+` WHERE incident_id = $1 FOR UPDATE`, incidentID)
	if err != nil {
		return r, fmt.Errorf("lock review of incident %s: %w", incidentID, err)
	}
	return r, nil
}

const insertReview = `INSERT INTO reviews (review_id, incident_id, incident_revision, status, required, exercise,
	due_at, historical, opened_at, title, severity, questionnaire_version, facilitator_name, facilitator_email, incident)
VALUES ($1, $2, $3, 'open', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

// InsertReview stores a new open review and its participants. A second review
// for the same incident fails with ErrConflict.
func (t *Tx) InsertReview(ctx context.Context, r Review) error {
	incident, err := json.Marshal(r.Incident)
	if err != nil {
		return fmt.Errorf("marshal incident: %w", err)
	}
	_, err = t.tx.Exec(ctx, insertReview, r.ID, r.IncidentID, r.IncidentRevision, r.Required, r.Exercise,
		r.DueAt, r.Historical, r.OpenedAt, r.Title, string(r.Severity), r.QuestionnaireVersion,
		r.Facilitator.Name, r.Facilitator.Email, incident)
	if pg.IsUniqueViolation(err) {
		return fmt.Errorf("insert review for incident %s: %w", r.IncidentID, pg.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert review %s: %w", r.ID, err)
	}
	_, err = t.AddParticipants(ctx, r.ID, r.OpenedAt, r.Participants)
	return err
}

const insertReviews = `INSERT INTO reviews (review_id, incident_id, incident_revision, status, required, exercise,
	due_at, historical, opened_at, title, severity, questionnaire_version, facilitator_name, facilitator_email, incident)
SELECT r.id, r.incident_id, r.revision, 'open', r.required, r.exercise, r.due_at, r.historical, r.opened_at, r.title,
	r.severity, r.questionnaire, r.facilitator_name, r.facilitator_email, r.incident
FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::bool[], $5::bool[], $6::timestamptz[], $7::bool[],
	$8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::jsonb[])
	AS r(id, incident_id, revision, required, exercise, due_at, historical, opened_at, title, severity, questionnaire,
		facilitator_name, facilitator_email, incident)`

const insertNewParticipants = `INSERT INTO participants (participant_id, review_id, key, name, email, role, position,
	added_at, added_by, invited_at)
SELECT p.id, p.review_id, p.key, p.name, p.email, p.role, p.position, p.at, p.added_by, p.at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::timestamptz[],
	$9::text[]) AS p(id, review_id, key, name, email, role, position, at, added_by)`

// InsertReviews stores new open reviews with their participants, as
// InsertReview does for each, with two statements for all of them. A review
// for an incident that has one already fails the whole call with ErrConflict.
func (t *Tx) InsertReviews(ctx context.Context, rs []Review) error {
	if len(rs) == 0 {
		return nil
	}
	var r struct {
		ids, incidents                                          []string
		revisions                                               []int
		required, exercise, historical                          []bool
		due                                                     []*time.Time
		opened                                                  []time.Time
		titles, severities, versions, facNames, facEmails, docs []string
	}
	var p struct {
		ids, reviews, keys, names, emails, roles, addedBy []string
		positions                                         []int
		at                                                []time.Time
	}
	for _, rv := range rs {
		incident, err := json.Marshal(rv.Incident)
		if err != nil {
			return fmt.Errorf("marshal incident of review %s: %w", rv.ID, err)
		}
		r.ids, r.incidents, r.revisions = append(r.ids, rv.ID), append(r.incidents, rv.IncidentID), append(r.revisions, rv.IncidentRevision)
		r.required, r.exercise, r.historical = append(r.required, rv.Required), append(r.exercise, rv.Exercise), append(r.historical, rv.Historical)
		r.due, r.opened = append(r.due, rv.DueAt), append(r.opened, rv.OpenedAt)
		r.titles, r.severities, r.versions = append(r.titles, rv.Title), append(r.severities, string(rv.Severity)), append(r.versions, rv.QuestionnaireVersion)
		r.facNames, r.facEmails, r.docs = append(r.facNames, rv.Facilitator.Name), append(r.facEmails, rv.Facilitator.Email), append(r.docs, string(incident))
		for i, pt := range firstOfEachKey(rv.Participants) {
			if pt.AddedBy == "" {
				pt.AddedBy = "incident"
			}
			p.ids, p.reviews, p.keys = append(p.ids, pt.ID), append(p.reviews, rv.ID), append(p.keys, pt.Key)
			p.names, p.emails, p.roles = append(p.names, pt.Name), append(p.emails, pt.Email), append(p.roles, string(pt.Role))
			p.positions, p.at, p.addedBy = append(p.positions, i), append(p.at, rv.OpenedAt), append(p.addedBy, pt.AddedBy)
		}
	}
	_, err := t.tx.Exec(ctx, insertReviews, r.ids, r.incidents, r.revisions, r.required, r.exercise, r.due, r.historical,
		r.opened, r.titles, r.severities, r.versions, r.facNames, r.facEmails, r.docs)
	if pg.IsUniqueViolation(err) {
		return fmt.Errorf("insert %d reviews: %w", len(rs), pg.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert %d reviews: %w", len(rs), err)
	}
	if len(p.ids) == 0 {
		return nil
	}
	if _, err := t.tx.Exec(ctx, insertNewParticipants, p.ids, p.reviews, p.keys, p.names, p.emails, p.roles,
		p.positions, p.at, p.addedBy); err != nil {
		return fmt.Errorf("insert participants of %d reviews: %w", len(rs), err)
	}
	return nil
}

// ReviewedIncidents returns which of incidentIDs have a review.
func (t *Tx) ReviewedIncidents(ctx context.Context, incidentIDs []string) (map[string]bool, error) {
	rows, err := t.tx.Query(ctx, `SELECT r.incident_id::text FROM unnest($1::uuid[]) AS i(id)
JOIN reviews r ON r.incident_id = i.id`, incidentIDs)
	if err != nil {
		return nil, fmt.Errorf("reviews of %d incidents: %w", len(incidentIDs), err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reviews of %d incidents: %w", len(incidentIDs), err)
	}
	found := make(map[string]bool, len(ids))
	for _, id := range ids {
		found[id] = true
	}
	return found, nil
}

const insertParticipants = `INSERT INTO participants (participant_id, review_id, key, name, email, role, position,
	added_at, added_by, invited_at)
SELECT p.id, $1, p.key, p.name, p.email, p.role,
	(SELECT count(*) FROM participants WHERE review_id = $1) + p.ord - 1, $2, p.added_by, $2
FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
	WITH ORDINALITY AS p(id, key, name, email, role, added_by, ord)
ORDER BY p.ord
ON CONFLICT (review_id, key) DO UPDATE SET removed_at = NULL, name = excluded.name, email = excluded.email,
	role = excluded.role, added_by = excluded.added_by, invited_at = excluded.invited_at,
	invitation_revoked_at = NULL, invitation_generation = participants.invitation_generation + 1
WHERE participants.removed_at IS NOT NULL AND excluded.added_by LIKE 'person:%'
RETURNING key, participant_id::text, invitation_generation`

// AddParticipants invites ps to a review, skipping anyone whose Key is already
// invited (a removed participant with the same Key is invited again, with a
// new invitation, only when a person adds them: never by incident or rule), and returns those actually added with their stored ids.
// AddedBy defaults to "incident". It takes one statement for all of ps (the
// first of several with the same Key counts); new participants are positioned
// in the order of ps after those already there.
func (t *Tx) AddParticipants(ctx context.Context, reviewID string, at time.Time, ps []Participant) ([]Participant, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	ps = firstOfEachKey(ps)
	ids, keys, names, emails, roles, addedBy := make([]string, len(ps)), make([]string, len(ps)),
		make([]string, len(ps)), make([]string, len(ps)), make([]string, len(ps)), make([]string, len(ps))
	for i, p := range ps {
		if p.AddedBy == "" {
			p.AddedBy = "incident"
		}
		ids[i], keys[i], names[i], emails[i], roles[i], addedBy[i] = p.ID, p.Key, p.Name, p.Email, string(p.Role), p.AddedBy
	}
	rows, err := t.tx.Query(ctx, insertParticipants, reviewID, at, ids, keys, names, emails, roles, addedBy)
	if err != nil {
		return nil, fmt.Errorf("add participants to review %s: %w", reviewID, err)
	}
	type stored struct {
		id         string
		generation int
	}
	byKey := map[string]stored{}
	var key string
	var st stored
	_, err = pgx.ForEachRow(rows, []any{&key, &st.id, &st.generation}, func() error {
		byKey[key] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add participants to review %s: %w", reviewID, err)
	}
	var added []Participant
	for i, p := range ps {
		st, ok := byKey[p.Key]
		if !ok {
			continue
		}
		p.ID, p.Generation, p.AddedBy, p.InvitedAt = st.id, st.generation, addedBy[i], at
		added = append(added, p)
	}
	return added, nil
}

// firstOfEachKey keeps the first participant of each Key: one statement may
// not insert and then update the same row.
func firstOfEachKey(ps []Participant) []Participant {
	seen := make(map[string]bool, len(ps))
	out := make([]Participant, 0, len(ps))
	for _, p := range ps {
		if !seen[p.Key] {
			seen[p.Key] = true
			out = append(out, p)
		}
	}
	return out
}

const updateIncident = `UPDATE reviews SET incident_revision = $2, title = $3, severity = $4, incident = $5,
	facilitator_name = CASE WHEN facilitator_name = '' THEN $6 ELSE facilitator_name END,
	facilitator_email = CASE WHEN facilitator_name = '' THEN $7 ELSE facilitator_email END
WHERE review_id = $1`

// UpdateIncident replaces the incident snapshot of a review with a later
// revision; a review without a facilitator takes the one given (pass the zero
// Contact to leave it alone). On a completed review it changes neither the
// status nor the outcome: the review becomes stale until it is amended.
func (t *Tx) UpdateIncident(ctx context.Context, reviewID string, revision int, inc events.IncidentClosed, facilitator events.Contact) error {
	b, err := json.Marshal(inc)
	if err != nil {
		return fmt.Errorf("marshal incident: %w", err)
	}
	if _, err := t.tx.Exec(ctx, updateIncident, reviewID, revision, inc.Title, string(inc.Severity), b,
		facilitator.Name, facilitator.Email); err != nil {
		return fmt.Errorf("update incident of review %s: %w", reviewID, err)
	}
	return nil
}

// Schedule is what the review policy decides from an incident: whether its
// review is required, whether the incident is an exercise, when the review is
// due (nil: no due date) and whether it is historical (never required or due).
type Schedule struct {
	Required   bool
	Exercise   bool
	DueAt      *time.Time
	Historical bool
}

const rescheduleReview = `UPDATE reviews SET required = $2, exercise = $3, due_at = $4, historical = $5
WHERE review_id = $1 AND status = 'open'`

// Reschedule replaces the required flag, exercise flag, due date and
// historical mark of an open review, e.g. after its incident was reclassified
// or reopened. A completed review is left as it is (it returns nil).
func (t *Tx) Reschedule(ctx context.Context, reviewID string, s Schedule) error {
	if _, err := t.tx.Exec(ctx, rescheduleReview, reviewID, s.Required, s.Exercise, s.DueAt, s.Historical); err != nil {
		return fmt.Errorf("reschedule review %s: %w", reviewID, err)
	}
	return nil
}

const upsertResponse = `INSERT INTO responses (participant_id, review_id, answers, submitted_at, submitted_by)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (participant_id) DO UPDATE SET answers = excluded.answers,
	submitted_at = excluded.submitted_at, submitted_by = excluded.submitted_by`

const insertSubmission = `INSERT INTO response_submissions (review_id, participant_id, submitted_at, submitted_by, channel, body)
VALUES ($1, $2, $3, $4, $5, $6)`

// SaveResponse replaces a participant's answers, appends the submission,
// with the body exactly as received, to the audit log, and clears their draft.
func (t *Tx) SaveResponse(ctx context.Context, reviewID string, resp Response, channel string, body []byte) error {
	answers, err := json.Marshal(resp.Answers)
	if err != nil {
		return fmt.Errorf("marshal answers: %w", err)
	}
	if _, err := t.tx.Exec(ctx, upsertResponse, resp.ParticipantID, reviewID, answers, resp.SubmittedAt, resp.SubmittedBy); err != nil {
		return fmt.Errorf("save response of %s: %w", resp.ParticipantID, err)
	}
	if _, err := t.tx.Exec(ctx, insertSubmission, reviewID, resp.ParticipantID, resp.SubmittedAt, resp.SubmittedBy, channel, string(body)); err != nil {
		return fmt.Errorf("audit response of %s: %w", resp.ParticipantID, err)
	}
	if _, err := t.tx.Exec(ctx, `DELETE FROM drafts WHERE participant_id = $1`, resp.ParticipantID); err != nil {
		return fmt.Errorf("clear draft of %s: %w", resp.ParticipantID, err)
	}
	return nil
}

const completeReview = `UPDATE reviews SET status = 'completed', completed_at = $2, facilitator_name = $3,
	facilitator_email = $4, summary = $5, findings = $6, action_items = $7, completed_event_id = $8,
	completed_incident_revision = incident_revision, signed_off_by = $9, signed_off_at = $10,
	approved_by = $11, approved_at = $12, pending_completion = NULL
WHERE review_id = $1 AND status IN ('open', 'awaiting_approval')`

// Complete marks an open (or awaiting approval) review completed with its
// outcome and sign-off, based on the incident revision it holds; it returns
// ErrConflict when the review is already completed.
func (t *Tx) Complete(ctx context.Context, r Review) error {
	findings, items, err := marshalOutcome(r)
	if err != nil {
		return err
	}
	tag, err := t.tx.Exec(ctx, completeReview, r.ID, r.CompletedAt, r.Facilitator.Name, r.Facilitator.Email,
		r.Summary, findings, items, r.CompletedEventID, r.SignOff.SignedOffBy, r.SignOff.SignedOffAt,
		r.SignOff.ApprovedBy, r.SignOff.ApprovedAt)
	if err != nil {
		return fmt.Errorf("complete review %s: %w", r.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("complete review %s: %w", r.ID, pg.ErrConflict)
	}
	return nil
}

func marshalOutcome(r Review) (findings, items []byte, err error) {
	if findings, err = json.Marshal(r.Findings); err != nil {
		return nil, nil, fmt.Errorf("marshal findings: %w", err)
	}
	if items, err = json.Marshal(r.ActionItems); err != nil {
		return nil, nil, fmt.Errorf("marshal action items: %w", err)
	}
	return findings, items, nil
}

// Amendment is one correction of a completed review, as kept in the audit table.
type Amendment struct {
	Number           int             `json:"amendment"`
	AmendedAt        time.Time       `json:"amended_at"`
	AmendedBy        string          `json:"amended_by"`
	Reason           string          `json:"reason"`
	IncidentRevision int             `json:"incident_revision"`
	EventID          string          `json:"event_id"`
	Body             json.RawMessage `json:"body"`
}

const amendReview = `UPDATE reviews SET facilitator_name = $2, facilitator_email = $3, summary = $4, findings = $5,
	action_items = $6, completed_incident_revision = incident_revision
WHERE review_id = $1 AND status = 'completed' AND incident_revision = $7`

const insertAmendment = `INSERT INTO amendments (review_id, number, amended_at, amended_by, reason, incident_revision, event_id, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// Amend replaces the outcome (facilitator, summary, findings, action items) of
// a completed review, marks it based on r.IncidentRevision, and appends a to
// the amendment log. It returns ErrConflict when the review is not completed,
// its incident revision is no longer r.IncidentRevision, or amendment a.Number
// exists already; callers hold the review's lock (LockReview) so none of that
// happens.
func (t *Tx) Amend(ctx context.Context, r Review, a Amendment) error {
	findings, items, err := marshalOutcome(r)
	if err != nil {
		return err
	}
	tag, err := t.tx.Exec(ctx, amendReview, r.ID, r.Facilitator.Name, r.Facilitator.Email, r.Summary,
		findings, items, r.IncidentRevision)
	if err != nil {
		return fmt.Errorf("amend review %s: %w", r.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("amend review %s: %w", r.ID, pg.ErrConflict)
	}
	_, err = t.tx.Exec(ctx, insertAmendment, r.ID, a.Number, a.AmendedAt, a.AmendedBy, a.Reason,
		a.IncidentRevision, a.EventID, string(a.Body))
	if pg.IsUniqueViolation(err) {
		return fmt.Errorf("amendment %d of review %s: %w", a.Number, r.ID, pg.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert amendment %d of review %s: %w", a.Number, r.ID, err)
	}
	return nil
}

const selectAmendments = `SELECT number, amended_at, amended_by, reason, incident_revision, event_id, body::text
FROM amendments WHERE review_id = $1 ORDER BY number`

// Amendments returns the amendment log of a review, oldest first (empty for
// a review never amended or unknown).
func (s *Store) Amendments(ctx context.Context, reviewID string) ([]Amendment, error) {
	rows, err := s.pool.Query(ctx, selectAmendments, reviewID)
	if err != nil {
		return nil, fmt.Errorf("amendments of review %s: %w", reviewID, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Amendment, error) {
		var a Amendment
		var body string
		err := row.Scan(&a.Number, &a.AmendedAt, &a.AmendedBy, &a.Reason, &a.IncidentRevision, &a.EventID, &body)
		a.Body = json.RawMessage(body)
		return a, err
	})
}

const selectResponses = `SELECT participant_id::text, submitted_at, submitted_by, answers
FROM responses JOIN participants USING (participant_id, review_id)
WHERE review_id = $1 ORDER BY position`

// Responses returns the current answers of every participant who answered.
func (s *Store) Responses(ctx context.Context, reviewID string) ([]Response, error) {
	return responses(ctx, s.pool, reviewID)
}

// Responses is Store.Responses inside the transaction.
func (t *Tx) Responses(ctx context.Context, reviewID string) ([]Response, error) {
	return responses(ctx, t.tx, reviewID)
}

func responses(ctx context.Context, q querier, reviewID string) ([]Response, error) {
	rows, err := q.Query(ctx, selectResponses, reviewID)
	if err != nil {
		return nil, fmt.Errorf("responses of review %s: %w", reviewID, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Response, error) {
		var r Response
		var answers []byte
		if err := row.Scan(&r.ParticipantID, &r.SubmittedAt, &r.SubmittedBy, &answers); err != nil {
			return r, err
		}
		return r, json.Unmarshal(answers, &r.Answers)
	})
}

const selectSubmissions = `SELECT id, participant_id::text, submitted_at, submitted_by, channel, body::text
FROM response_submissions WHERE review_id = $1 ORDER BY id`

// Submissions returns the audit log of a review, oldest first.
func (s *Store) Submissions(ctx context.Context, reviewID string) ([]Submission, error) {
	rows, err := s.pool.Query(ctx, selectSubmissions, reviewID)
	if err != nil {
		return nil, fmt.Errorf("submissions of review %s: %w", reviewID, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Submission, error) {
		var sub Submission
		var body string
		err := row.Scan(&sub.ID, &sub.ParticipantID, &sub.SubmittedAt, &sub.SubmittedBy, &sub.Channel, &body)
		sub.Body = json.RawMessage(body)
		return sub, err
	})
}

// Questionnaire returns the questions of a questionnaire version, or ErrNotFound.
func (s *Store) Questionnaire(ctx context.Context, version string) ([]events.Question, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, `SELECT questions FROM questionnaires WHERE version = $1`, version).Scan(&b)
	if pg.IsNoRows(err) {
		return nil, fmt.Errorf("questionnaire %s: %w", version, pg.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("questionnaire %s: %w", version, err)
	}
	var qs []events.Question
	if err := json.Unmarshal(b, &qs); err != nil {
		return nil, fmt.Errorf("questionnaire %s: %w", version, err)
	}
	return qs, nil
}

// ReminderCandidate is a participant of an open review who has not answered
// and has not yet been reminded for Reason.
type ReminderCandidate struct {
	ReviewID    string
	IncidentID  string
	DueAt       time.Time
	Participant Participant
	Reason      events.ReminderReason
}

const selectReminderCandidates = `SELECT r.review_id::text, r.incident_id::text, r.due_at,
	p.participant_id::text, p.name, p.email, p.role,
	CASE WHEN r.due_at <= $1 THEN 'overdue' ELSE 'due_soon' END AS reason
FROM reviews r JOIN participants p USING (review_id)
WHERE r.status = 'open' AND r.due_at IS NOT NULL AND r.due_at <= $2
	AND p.removed_at IS NULL AND p.invitation_revoked_at IS NULL
	AND NOT EXISTS (SELECT 1 FROM responses s WHERE s.participant_id = p.participant_id)
	AND NOT EXISTS (SELECT 1 FROM reminders m WHERE m.participant_id = p.participant_id AND m.due_at = r.due_at
		AND m.reason = CASE WHEN r.due_at <= $1 THEN 'overdue' ELSE 'due_soon' END)
ORDER BY r.due_at, p.position
LIMIT $3`

// ReminderCandidates returns up to limit participants who have not answered a
// review due within window of now (or past due), each with the reason due at
// now and not yet sent.
func (t *Tx) ReminderCandidates(ctx context.Context, now time.Time, window time.Duration, limit int) ([]ReminderCandidate, error) {
	rows, err := t.tx.Query(ctx, selectReminderCandidates, now, now.Add(window), limit)
	if err != nil {
		return nil, fmt.Errorf("reminder candidates: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReminderCandidate, error) {
		var c ReminderCandidate
		err := row.Scan(&c.ReviewID, &c.IncidentID, &c.DueAt, &c.Participant.ID, &c.Participant.Name,
			&c.Participant.Email, &c.Participant.Role, &c.Reason)
		return c, err
	})
}

const claimReminder = `INSERT INTO reminders (participant_id, reason, review_id, reminded_at, event_id, due_at)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`

// ClaimReminder records that a participant is reminded for reason of the
// candidate's due date; false means another transaction already did (the
// caller must not send it again). Concurrent claims of the same participant,
// reason and due date wait for each other on the primary key.
func (t *Tx) ClaimReminder(ctx context.Context, c ReminderCandidate, at time.Time, eventID string) (bool, error) {
	tag, err := t.tx.Exec(ctx, claimReminder, c.Participant.ID, string(c.Reason), c.ReviewID, at, eventID, c.DueAt)
	if err != nil {
		return false, fmt.Errorf("claim reminder for %s: %w", c.Participant.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}
