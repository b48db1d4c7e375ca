// Package postgres is the notify service's store: the reviews and invitees it
// has learned of from events (with the invitation links, which live nowhere
// else) and every delivery with its status, in the service's own schema.
// Writes that follow an event happen in one Tx with processed_events and the
// outbox.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
)

// Schema is the Postgres schema the notify service owns.
const Schema = "notify"

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

// ErrNotFound is returned for a review, invitee or delivery that does not exist.
var ErrNotFound = pg.ErrNotFound

// Delivery statuses.
const (
	StatusPending = "pending"
	StatusSending = "sending"
	StatusSent    = "sent"
	StatusDead    = "dead"
	// StatusWithdrawn: a pending delivery that carried a form link the
	// facilitator has since revoked; never sent, never retried.
	StatusWithdrawn = "withdrawn"
)

// Delivery is one message to one person for one reason over one channel.
type Delivery struct {
	ID             string     `db:"delivery_id"`
	DedupeKey      string     `db:"dedupe_key"`
	Channel        string     `db:"channel"`
	Reason         string     `db:"reason"`
	ReviewID       string     `db:"review_id"`
	ActionID       string     `db:"action_id"`
	RecipientName  string     `db:"recipient_name"`
	RecipientEmail string     `db:"recipient_email"`
	Subject        string     `db:"subject"`
	BodyText       string     `db:"body_text"`
	BodyHTML       string     `db:"body_html"`
	ChatText       string     `db:"chat_text"`
	ICS            string     `db:"ics"`
	ICSMethod      string     `db:"ics_method"`
	SourceEventID  string     `db:"source_event_id"`
	Status         string     `db:"status"`
	Attempts       int        `db:"attempts"`
	Reclaims       int        `db:"reclaims"`
	NextAttemptAt  time.Time  `db:"next_attempt_at"`
	ClaimedAt      *time.Time `db:"claimed_at"`
	SentAt         *time.Time `db:"sent_at"`
	DeadAt         *time.Time `db:"dead_at"`
	LastError      string     `db:"last_error"`
	CreatedAt      time.Time  `db:"created_at"`
}

const deliveryColumns = `delivery_id::text, dedupe_key, channel, reason, coalesce(review_id::text, '') AS review_id,
	coalesce(action_id::text, '') AS action_id, recipient_name, recipient_email, subject, body_text, body_html,
	chat_text, ics, ics_method, source_event_id, status, attempts, reclaims, next_attempt_at, claimed_at, sent_at,
	dead_at, last_error, created_at`

// Review is what notify knows of a review.
type Review struct {
	ID, IncidentID, Title string
	Facilitator           events.Contact
	DueAt, CompletedAt    *time.Time
}

// Invitee is an invited participant with their form link.
type Invitee struct {
	ReviewID, ParticipantID, Name, Email, FormURL string
	ExpiresAt, InvitedAt, AnsweredAt              *time.Time
	Reminders                                     int
}

// Store reads and writes the notify schema.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store on pool, whose search_path must be Schema.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool is the store's connection pool (the consumers share its transactions).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Tx is a transaction on the store.
type Tx struct {
	tx pgx.Tx
}

// InTx runs fn in one transaction, committing when it returns nil.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error { return fn(&Tx{tx: tx}) })
}

// MarkProcessed records an inbound event id; false means it was handled before.
func (t *Tx) MarkProcessed(ctx context.Context, eventID string) (bool, error) {
	return pg.MarkProcessed(ctx, t.tx, eventID)
}

// Enqueue writes env to the outbox, to be published on the subject of its type.
func (t *Tx) Enqueue(ctx context.Context, env events.Envelope) error {
	subject, err := events.SubjectOf(env.Type)
	if err != nil {
		return err
	}
	return pg.Enqueue(ctx, t.tx, subject, env)
}

const upsertReview = `INSERT INTO reviews (review_id, incident_id, title, facilitator_name, facilitator_email, due_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (review_id) DO UPDATE SET
	title = CASE WHEN $3 = '' THEN reviews.title ELSE $3 END,
	facilitator_name = CASE WHEN $4 = '' THEN reviews.facilitator_name ELSE $4 END,
	facilitator_email = CASE WHEN $4 = '' THEN reviews.facilitator_email ELSE $5 END,
	due_at = coalesce($6, reviews.due_at)`

// SaveReview records or completes what is known of a review: empty fields
// and a nil due date leave the stored values alone.
func (t *Tx) SaveReview(ctx context.Context, r Review) error {
	if _, err := t.tx.Exec(ctx, upsertReview, r.ID, r.IncidentID, r.Title, r.Facilitator.Name, r.Facilitator.Email, r.DueAt); err != nil {
		return fmt.Errorf("save review %s: %w", r.ID, err)
	}
	return nil
}

// CompleteReview marks a review completed: nobody is reminded of it any more.
func (t *Tx) CompleteReview(ctx context.Context, r Review, at time.Time) error {
	if err := t.SaveReview(ctx, r); err != nil {
		return err
	}
	_, err := t.tx.Exec(ctx, `UPDATE reviews SET completed_at = coalesce(completed_at, $2) WHERE review_id = $1`, r.ID, at)
	return err
}

// Review returns what is known of a review, or ErrNotFound.
func (t *Tx) Review(ctx context.Context, id string) (Review, error) {
	r := Review{ID: id}
	err := t.tx.QueryRow(ctx, `SELECT incident_id::text, title, facilitator_name, facilitator_email, due_at, completed_at
		FROM reviews WHERE review_id = $1`, id).Scan(&r.IncidentID, &r.Title, &r.Facilitator.Name, &r.Facilitator.Email,
		&r.DueAt, &r.CompletedAt)
	if pg.IsNoRows(err) {
		return r, fmt.Errorf("review %s: %w", id, ErrNotFound)
	}
	return r, err
}

const upsertInvitee = `INSERT INTO invitees (review_id, participant_id, name, email, form_url, expires_at, invited_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (review_id, participant_id) DO UPDATE SET name = $3, email = $4, form_url = $5, expires_at = $6,
	invited_at = coalesce(invitees.invited_at, $7), withdrawn_at = NULL`

// SaveInvitee records an invitation (keeping an answer already recorded).
func (t *Tx) SaveInvitee(ctx context.Context, i Invitee) error {
	if _, err := t.tx.Exec(ctx, upsertInvitee, i.ReviewID, i.ParticipantID, i.Name, i.Email, i.FormURL, i.ExpiresAt, i.InvitedAt); err != nil {
		return fmt.Errorf("save invitee %s: %w", i.ParticipantID, err)
	}
	return nil
}

// WithdrawInvitee forgets a participant's form link (they are reminded no
// more) and withdraws every delivery to them for the review that is still
// pending and carries the link (invitations and reminders), with why. It
// returns how many deliveries it withdrew.
func (t *Tx) WithdrawInvitee(ctx context.Context, reviewID, participantID, email string, at time.Time, reasons []string, why string) (int64, error) {
	if _, err := t.tx.Exec(ctx, `INSERT INTO invitees (review_id, participant_id, email, withdrawn_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (review_id, participant_id) DO UPDATE SET form_url = '', withdrawn_at = $4`,
		reviewID, participantID, email, at); err != nil {
		return 0, fmt.Errorf("withdraw invitee %s: %w", participantID, err)
	}
	tag, err := t.tx.Exec(ctx, `UPDATE deliveries SET status = 'withdrawn', last_error = $4
		WHERE review_id = $1 AND lower(recipient_email) = lower($2) AND status = 'pending' AND reason = ANY($3)`,
		reviewID, email, reasons, why)
	if err != nil {
		return 0, fmt.Errorf("withdraw deliveries to %s: %w", participantID, err)
	}
	return tag.RowsAffected(), nil
}

// Withdrawn reports whether a participant's invitation to a review was
// withdrawn (and not sent again since).
func (t *Tx) Withdrawn(ctx context.Context, reviewID, participantID string) (bool, error) {
	var w bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM invitees WHERE review_id = $1 AND participant_id = $2
		AND withdrawn_at IS NOT NULL)`, reviewID, participantID).Scan(&w)
	return w, err
}

// MarkAnswered records that a participant answered (before or after their
// invitation arrived): they are reminded no more.
func (t *Tx) MarkAnswered(ctx context.Context, reviewID, participantID string, at time.Time) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO invitees (review_id, participant_id, answered_at) VALUES ($1, $2, $3)
		ON CONFLICT (review_id, participant_id) DO UPDATE SET answered_at = coalesce(invitees.answered_at, $3)`,
		reviewID, participantID, at)
	if err != nil {
		return fmt.Errorf("mark %s answered: %w", participantID, err)
	}
	return nil
}

// Invitee returns an invitee with a form link, or ErrNotFound.
func (t *Tx) Invitee(ctx context.Context, reviewID, participantID string) (Invitee, error) {
	rows, err := t.tx.Query(ctx, selectInvitees+` WHERE review_id = $1 AND participant_id = $2 AND form_url <> ''`, reviewID, participantID)
	if err != nil {
		return Invitee{}, err
	}
	i, err := pgx.CollectExactlyOneRow(rows, scanInvitee)
	if pg.IsNoRows(err) {
		return i, fmt.Errorf("invitee %s of review %s: %w", participantID, reviewID, ErrNotFound)
	}
	return i, err
}

const selectInvitees = `SELECT review_id::text, participant_id::text, name, email, form_url, expires_at, invited_at,
	answered_at, reminders FROM invitees`

func scanInvitee(row pgx.CollectableRow) (Invitee, error) {
	var i Invitee
	err := row.Scan(&i.ReviewID, &i.ParticipantID, &i.Name, &i.Email, &i.FormURL, &i.ExpiresAt, &i.InvitedAt, &i.AnsweredAt, &i.Reminders)
	return i, err
}

// dueReminders selects invitees to remind at $1: invited, unanswered, link
// still valid, review neither completed nor past due, fewer than $3 reminders,
// and the last reminder (or the invitation) at least $2 ago.
const dueReminders = selectInvitees + ` i WHERE i.answered_at IS NULL AND i.form_url <> '' AND i.reminders < $3
	AND coalesce(i.last_reminded_at, i.invited_at) <= $1::timestamptz - $2::interval
	AND (i.expires_at IS NULL OR i.expires_at > $1)
	AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.review_id = i.review_id
		AND (r.completed_at IS NOT NULL OR r.due_at <= $1))
	ORDER BY coalesce(i.last_reminded_at, i.invited_at) LIMIT $4 FOR UPDATE SKIP LOCKED`

// DueReminders locks up to limit invitees due a reminder at now (see dueReminders).
func (t *Tx) DueReminders(ctx context.Context, now time.Time, every time.Duration, max, limit int) ([]Invitee, error) {
	rows, err := t.tx.Query(ctx, dueReminders, now, every, max, limit)
	if err != nil {
		return nil, fmt.Errorf("select due reminders: %w", err)
	}
	return pgx.CollectRows(rows, scanInvitee)
}

// RecordReminder counts a reminder of an invitee sent at at.
func (t *Tx) RecordReminder(ctx context.Context, i Invitee, at time.Time) error {
	_, err := t.tx.Exec(ctx, `UPDATE invitees SET reminders = reminders + 1, last_reminded_at = $3
		WHERE review_id = $1 AND participant_id = $2`, i.ReviewID, i.ParticipantID, at)
	return err
}

const insertDelivery = `INSERT INTO deliveries (delivery_id, dedupe_key, channel, reason, review_id, action_id,
	recipient_name, recipient_email, subject, body_text, body_html, chat_text, ics, ics_method, source_event_id,
	status, next_attempt_at, last_error, dead_at, created_at)
VALUES ($1, $2, $3, $4, nullif($5, '')::uuid, nullif($6, '')::uuid, $7, $8, $9, $10, $11, $12, $13, $14, $15,
	$16, $17, $18, $19, $20)
ON CONFLICT (dedupe_key, channel) DO NOTHING`

// InsertDelivery records d unless a delivery with its dedupe key and channel
// exists; it returns whether d was inserted.
func (t *Tx) InsertDelivery(ctx context.Context, d Delivery) (bool, error) {
	tag, err := t.tx.Exec(ctx, insertDelivery, d.ID, d.DedupeKey, d.Channel, d.Reason, d.ReviewID, d.ActionID,
		d.RecipientName, d.RecipientEmail, d.Subject, d.BodyText, d.BodyHTML, d.ChatText, d.ICS, d.ICSMethod,
		d.SourceEventID, d.Status, d.NextAttemptAt, d.LastError, d.DeadAt, d.CreatedAt)
	if err != nil {
		return false, fmt.Errorf("insert delivery %s: %w", d.DedupeKey, err)
	}
	return tag.RowsAffected() == 1, nil
}

// claim marks up to $3 deliveries "sending" and returns them: pending ones
// due at $1, and ones left "sending" since before $2 (their sender died
// between recording "sending" and recording the outcome: they are
// reconciled by sending again, and counted in reclaims).
const claim = `UPDATE deliveries d SET status = 'sending', claimed_at = $1, attempts = d.attempts + 1,
	reclaims = d.reclaims + CASE WHEN d.status = 'sending' THEN 1 ELSE 0 END
FROM (SELECT delivery_id FROM deliveries
	WHERE (status = 'pending' AND next_attempt_at <= $1) OR (status = 'sending' AND claimed_at < $2)
	ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) c
WHERE d.delivery_id = c.delivery_id
RETURNING ` + claimedColumns

const claimedColumns = `d.delivery_id::text, d.dedupe_key, d.channel, d.reason, coalesce(d.review_id::text, '') AS review_id,
	coalesce(d.action_id::text, '') AS action_id, d.recipient_name, d.recipient_email, d.subject, d.body_text,
	d.body_html, d.chat_text, d.ics, d.ics_method, d.source_event_id, d.status, d.attempts, d.reclaims,
	d.next_attempt_at, d.claimed_at, d.sent_at, d.dead_at, d.last_error, d.created_at`

// Claim records "sending" for up to limit deliveries due at now (and for
// those whose "sending" is older than lease) and returns them; it commits
// before any of them is sent.
func (s *Store) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	rows, err := s.pool.Query(ctx, claim, now, now.Add(-lease), limit)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByName[Delivery])
}

// MarkSent records that d was accepted by the server.
func (s *Store) MarkSent(ctx context.Context, id string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE deliveries SET status = 'sent', sent_at = $2, last_error = '' WHERE delivery_id = $1`, id, at)
	return err
}

// Retry puts a delivery back to pending, to be attempted again at next.
func (s *Store) Retry(ctx context.Context, id string, next time.Time, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = $2, last_error = $3
		WHERE delivery_id = $1`, id, next, reason)
	return err
}

// Kill marks a delivery dead with the reason.
func (t *Tx) Kill(ctx context.Context, id string, at time.Time, reason string) error {
	_, err := t.tx.Exec(ctx, `UPDATE deliveries SET status = 'dead', dead_at = $2, last_error = $3 WHERE delivery_id = $1`, id, at, reason)
	return err
}

// Requeue makes a dead delivery pending again (an operator's retry), with
// its attempts reset; it returns ErrNotFound unless the delivery is dead.
func (s *Store) Requeue(ctx context.Context, id string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE deliveries SET status = 'pending', next_attempt_at = $2, attempts = 0,
		dead_at = NULL WHERE delivery_id = $1 AND status = 'dead'`, id, now)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("dead delivery %s: %w", id, ErrNotFound)
	}
	return nil
}

// Filter selects deliveries; empty fields match everything.
type Filter struct {
	ReviewID, ActionID, Status, Reason, Recipient, Channel string
	Limit                                                  int
}

const selectDeliveries = `SELECT ` + deliveryColumns + ` FROM deliveries
WHERE ($1 = '' OR review_id = nullif($1, '')::uuid) AND ($2 = '' OR action_id = nullif($2, '')::uuid)
	AND ($3 = '' OR status = $3) AND ($4 = '' OR reason = $4) AND ($5 = '' OR lower(recipient_email) = lower($5))
	AND ($6 = '' OR channel = $6)
ORDER BY created_at DESC, delivery_id LIMIT $7`

// Deliveries returns the deliveries f selects, newest first.
func (s *Store) Deliveries(ctx context.Context, f Filter) ([]Delivery, error) {
	rows, err := s.pool.Query(ctx, selectDeliveries, f.ReviewID, f.ActionID, f.Status, f.Reason, f.Recipient, f.Channel, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByName[Delivery])
}

// Delivery returns one delivery, or ErrNotFound.
func (s *Store) Delivery(ctx context.Context, id string) (Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries WHERE delivery_id = $1`, id)
	if err != nil {
		return Delivery{}, err
	}
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Delivery])
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("delivery %s: %w", id, ErrNotFound)
	}
	return d, err
}
