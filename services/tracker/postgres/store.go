// Package postgres is the tracker's store: improvement actions, their status
// history, status updates that matched no action, and the overdue notices
// already sent, in the Postgres schema "tracker". The SQL sits beside the Go
// that runs it; the migrations are embedded (see Migrations).
package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/events"
	platform "github.com/afteraction/afteraction/pkg/postgres"
)

// Schema is the Postgres schema the tracker owns.
const Schema = "tracker"

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the tracker's migrations, rooted so that *.sql matches them.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "migrations" is valid.
		return migrationsFS
	}
	return sub
}

// Outcome says what a status update did to an action.
type Outcome string

// Outcomes recorded in the history.
const (
	OutcomeCreated   Outcome = "created"   // the action was created from a review
	OutcomeChanged   Outcome = "changed"   // the status changed
	OutcomeNoted     Outcome = "noted"     // same status, a note was recorded
	OutcomeLinked    Outcome = "linked"    // same status, the external key was linked
	OutcomeUnchanged Outcome = "unchanged" // same status, nothing new
	OutcomeStale     Outcome = "stale"     // older than the last change; status kept
)

// Action is one tracked improvement action.
type Action struct {
	ActionID      string                `json:"action_id"`
	IncidentID    string                `json:"incident_id"`
	IncidentTitle string                `json:"incident_title,omitempty"`
	ReviewID      string                `json:"review_id"`
	Key           string                `json:"key"`
	Title         string                `json:"title"`
	Description   string                `json:"description,omitempty"`
	Category      events.ActionCategory `json:"category"`
	Owner         *events.Owner         `json:"owner,omitempty"`
	// Facilitator is the facilitator of the review the action came from.
	Facilitator *events.Owner `json:"facilitator,omitempty"`
	// DueDate is YYYY-MM-DD or "".
	DueDate  string          `json:"due_date,omitempty"`
	Priority events.Priority `json:"priority,omitempty"`
	Status   events.Status   `json:"status"`
	// StatusChangedAt is when the current status took effect, as its sender said.
	StatusChangedAt time.Time `json:"status_changed_at"`
	ExternalKey     string    `json:"external_key,omitempty"`
	Tracker         string    `json:"tracker,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// HistoryEntry is one status update accepted for an action.
type HistoryEntry struct {
	ID             int64         `json:"id"`
	ActionID       string        `json:"-"`
	EventID        string        `json:"event_id"`
	Outcome        Outcome       `json:"outcome"`
	Status         events.Status `json:"status"`
	PreviousStatus events.Status `json:"previous_status,omitempty"`
	Note           string        `json:"note,omitempty"`
	Tracker        string        `json:"tracker,omitempty"`
	ExternalKey    string        `json:"external_key,omitempty"`
	ChangedAt      time.Time     `json:"changed_at"`
	ChangedBy      string        `json:"changed_by,omitempty"`
	RecordedAt     time.Time     `json:"recorded_at"`
}

// Unmatched is a status update that was not applied, with the reason and the
// payload exactly as received.
type Unmatched struct {
	ID          int64     `json:"id"`
	EventID     string    `json:"event_id"`
	Subject     string    `json:"subject"`
	Kind        string    `json:"kind"`
	Reason      string    `json:"reason"`
	Tracker     string    `json:"tracker,omitempty"`
	ActionID    string    `json:"action_id,omitempty"`
	ExternalKey string    `json:"external_key,omitempty"`
	CEType      string    `json:"ce_type,omitempty"`
	Payload     []byte    `json:"-"`
	ReceivedAt  time.Time `json:"received_at"`
}

// Filter selects actions for ListActions; zero fields do not filter.
type Filter struct {
	IncidentID string
	Status     events.Status
	// Owner matches the owner's e-mail or name, case-insensitively.
	Owner string
	// OverdueOn, when set (YYYY-MM-DD), keeps unfinished actions due before that day.
	OverdueOn string
	Limit     int
}

// Store reads and writes the tracker schema through a pool whose search_path
// is Schema.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Ping checks that the database answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// InTx runs fn in one transaction: it commits when fn returns nil and rolls
// back otherwise, returning fn's error unchanged.
func (s *Store) InTx(ctx context.Context, fn func(*Tx) error) error {
	return platform.InTx(ctx, s.pool, func(tx pgx.Tx) error { return fn(&Tx{tx: tx}) })
}

// Tx is the store inside one transaction.
type Tx struct {
	tx pgx.Tx
}

// WrapTx returns the store's view of tx, a transaction on its pool that the
// caller began (a batch consumer's).
func WrapTx(tx pgx.Tx) *Tx { return &Tx{tx: tx} }

// MarkProcessedBatch records event ids as handled and returns those that are new.
func (t *Tx) MarkProcessedBatch(ctx context.Context, eventIDs []string) (map[string]bool, error) {
	return platform.MarkProcessedBatch(ctx, t.tx, eventIDs)
}

// EnqueueAll writes envs to the outbox with one statement, to be published on
// subject after commit.
func (t *Tx) EnqueueAll(ctx context.Context, subject string, envs []events.Envelope) error {
	msgs := make([]platform.OutboxMessage, len(envs))
	for i, env := range envs {
		msgs[i] = platform.OutboxMessage{Subject: subject, Envelope: env}
	}
	return platform.EnqueueBatch(ctx, t.tx, msgs)
}

// MarkProcessed records eventID as handled; false means it was handled before.
func (t *Tx) MarkProcessed(ctx context.Context, eventID string) (bool, error) {
	return platform.MarkProcessed(ctx, t.tx, eventID)
}

// Enqueue writes env to the outbox, to be published on subject after commit.
func (t *Tx) Enqueue(ctx context.Context, subject string, env events.Envelope) error {
	return platform.Enqueue(ctx, t.tx, subject, env)
}

const actionColumns = `action_id::text, incident_id::text, incident_title, review_id::text, key, title, description,
category, owner_name, owner_email, coalesce(due_date::text, ''), priority, status, status_changed_at,
coalesce(tracker, ''), coalesce(external_key, ''), created_at, updated_at, facilitator_name, facilitator_email`

func scanAction(row pgx.CollectableRow) (Action, error) {
	var a Action
	var ownerName, ownerEmail, facName, facEmail string
	err := row.Scan(&a.ActionID, &a.IncidentID, &a.IncidentTitle, &a.ReviewID, &a.Key, &a.Title, &a.Description,
		&a.Category, &ownerName, &ownerEmail, &a.DueDate, &a.Priority, &a.Status, &a.StatusChangedAt,
		&a.Tracker, &a.ExternalKey, &a.CreatedAt, &a.UpdatedAt, &facName, &facEmail)
	if ownerName != "" || ownerEmail != "" {
		a.Owner = &events.Owner{Name: ownerName, Email: ownerEmail}
	}
	if facName != "" || facEmail != "" {
		a.Facilitator = &events.Owner{Name: facName, Email: facEmail}
	}
	return a, err
}

func collectOne(rows pgx.Rows, err error, what string) (Action, error) {
	if err != nil {
		return Action{}, fmt.Errorf("%s: %w", what, err)
	}
	a, err := pgx.CollectExactlyOneRow(rows, scanAction)
	if platform.IsNoRows(err) {
		return Action{}, fmt.Errorf("%s: %w", what, platform.ErrNotFound)
	}
	if err != nil {
		return Action{}, fmt.Errorf("%s: %w", what, err)
	}
	return a, nil
}

const insertAction = `INSERT INTO actions (action_id, incident_id, incident_title, review_id, key, title, description,
	category, owner_name, owner_email, due_date, priority, status, status_changed_at, created_at, updated_at,
	facilitator_name, facilitator_email)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, nullif($11, '')::date, $12, $13, $14, $15, $15, $16, $17)
ON CONFLICT DO NOTHING`

// InsertAction creates a; it returns false (and changes nothing) when an
// action with the same id or (review_id, key) exists already.
func (t *Tx) InsertAction(ctx context.Context, a Action) (bool, error) {
	var ownerName, ownerEmail, facName, facEmail string
	if a.Owner != nil {
		ownerName, ownerEmail = a.Owner.Name, a.Owner.Email
	}
	if a.Facilitator != nil {
		facName, facEmail = a.Facilitator.Name, a.Facilitator.Email
	}
	tag, err := t.tx.Exec(ctx, insertAction, a.ActionID, a.IncidentID, a.IncidentTitle, a.ReviewID, a.Key, a.Title,
		a.Description, a.Category, ownerName, ownerEmail, a.DueDate, a.Priority, a.Status, a.StatusChangedAt, a.CreatedAt,
		facName, facEmail)
	if err != nil {
		return false, fmt.Errorf("insert action %s: %w", a.ActionID, err)
	}
	return tag.RowsAffected() == 1, nil
}

const insertActions = `INSERT INTO actions (action_id, incident_id, incident_title, review_id, key, title, description,
	category, owner_name, owner_email, due_date, priority, status, status_changed_at, created_at, updated_at,
	facilitator_name, facilitator_email)
SELECT a.id, a.incident_id, a.incident_title, a.review_id, a.key, a.title, a.description, a.category, a.owner_name,
	a.owner_email, nullif(a.due_date, '')::date, a.priority, a.status, a.status_changed_at, a.created_at, a.created_at,
	a.facilitator_name, a.facilitator_email
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
	$10::text[], $11::text[], $12::text[], $13::text[], $14::timestamptz[], $15::timestamptz[], $16::text[], $17::text[])
	WITH ORDINALITY AS a(id, incident_id, incident_title, review_id, key, title, description, category, owner_name,
		owner_email, due_date, priority, status, status_changed_at, created_at, facilitator_name, facilitator_email, ord)
ORDER BY a.ord
ON CONFLICT DO NOTHING
RETURNING action_id::text`

// InsertActions creates as, as InsertAction does each, with one statement,
// and returns the ids of those it created (the first of several with one id
// or one (review_id, key) counts).
func (t *Tx) InsertActions(ctx context.Context, as []Action) (map[string]bool, error) {
	if len(as) == 0 {
		return nil, nil
	}
	var c struct {
		ids, incidents, incidentTitles, reviews, keys, titles, descriptions, categories []string
		ownerNames, ownerEmails, dueDates, priorities, statuses, facNames, facEmails    []string
		changed, created                                                                []time.Time
	}
	for _, a := range as {
		var ownerName, ownerEmail, facName, facEmail string
		if a.Owner != nil {
			ownerName, ownerEmail = a.Owner.Name, a.Owner.Email
		}
		if a.Facilitator != nil {
			facName, facEmail = a.Facilitator.Name, a.Facilitator.Email
		}
		c.ids, c.incidents, c.incidentTitles = append(c.ids, a.ActionID), append(c.incidents, a.IncidentID), append(c.incidentTitles, a.IncidentTitle)
		c.reviews, c.keys, c.titles = append(c.reviews, a.ReviewID), append(c.keys, a.Key), append(c.titles, a.Title)
		c.descriptions, c.categories = append(c.descriptions, a.Description), append(c.categories, string(a.Category))
		c.ownerNames, c.ownerEmails, c.dueDates = append(c.ownerNames, ownerName), append(c.ownerEmails, ownerEmail), append(c.dueDates, a.DueDate)
		c.priorities, c.statuses = append(c.priorities, string(a.Priority)), append(c.statuses, string(a.Status))
		c.changed, c.created = append(c.changed, a.StatusChangedAt), append(c.created, a.CreatedAt)
		c.facNames, c.facEmails = append(c.facNames, facName), append(c.facEmails, facEmail)
	}
	rows, err := t.tx.Query(ctx, insertActions, c.ids, c.incidents, c.incidentTitles, c.reviews, c.keys, c.titles,
		c.descriptions, c.categories, c.ownerNames, c.ownerEmails, c.dueDates, c.priorities, c.statuses, c.changed,
		c.created, c.facNames, c.facEmails)
	if err != nil {
		return nil, fmt.Errorf("insert %d actions: %w", len(as), err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("insert %d actions: %w", len(as), err)
	}
	inserted := make(map[string]bool, len(ids))
	for _, id := range ids {
		inserted[id] = true
	}
	return inserted, nil
}

// LockAction returns the action with id, locked until the transaction ends,
// or an error wrapping postgres.ErrNotFound.
func (t *Tx) LockAction(ctx context.Context, id string) (Action, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+actionColumns+` FROM actions WHERE action_id = $1 FOR UPDATE`, id)
	return collectOne(rows, err, "lock action "+id)
}

// LockActionByExternalKey returns the action linked to key in tracker,
// locked until the transaction ends, or an error wrapping postgres.ErrNotFound.
func (t *Tx) LockActionByExternalKey(ctx context.Context, tracker, key string) (Action, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+actionColumns+` FROM actions
WHERE tracker = $1 AND external_key = $2 FOR UPDATE`, tracker, key)
	return collectOne(rows, err, fmt.Sprintf("lock action of %s key %s", tracker, key))
}

// LinkedAction returns the id of the action linked to key in tracker, or ""
// when there is none.
func (t *Tx) LinkedAction(ctx context.Context, tracker, key string) (string, error) {
	var id string
	err := t.tx.QueryRow(ctx, `SELECT action_id::text FROM actions WHERE tracker = $1 AND external_key = $2`,
		tracker, key).Scan(&id)
	if platform.IsNoRows(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up %s key %s: %w", tracker, key, err)
	}
	return id, nil
}

const saveAction = `UPDATE actions SET status = $2, status_changed_at = $3,
	tracker = nullif($4, ''), external_key = nullif($5, ''), updated_at = $6
WHERE action_id = $1`

// SaveState writes a's status, status time, external link and updated_at. It
// returns postgres.ErrConflict when the external key is linked to another
// action, and postgres.ErrNotFound when a does not exist.
func (t *Tx) SaveState(ctx context.Context, a Action) error {
	tag, err := t.tx.Exec(ctx, saveAction, a.ActionID, a.Status, a.StatusChangedAt, a.Tracker, a.ExternalKey, a.UpdatedAt)
	if platform.IsUniqueViolation(err) {
		return fmt.Errorf("link action %s to %s key %s: %w", a.ActionID, a.Tracker, a.ExternalKey, platform.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("update action %s: %w", a.ActionID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update action %s: %w", a.ActionID, platform.ErrNotFound)
	}
	return nil
}

const insertHistory = `INSERT INTO action_history (action_id, event_id, outcome, status, previous_status, note,
	tracker, external_key, changed_at, changed_by, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// AddHistory appends h to its action's history.
func (t *Tx) AddHistory(ctx context.Context, h HistoryEntry) error {
	_, err := t.tx.Exec(ctx, insertHistory, h.ActionID, h.EventID, h.Outcome, h.Status, h.PreviousStatus, h.Note,
		h.Tracker, h.ExternalKey, h.ChangedAt, h.ChangedBy, h.RecordedAt)
	if err != nil {
		return fmt.Errorf("add history of action %s: %w", h.ActionID, err)
	}
	return nil
}

const insertHistories = `INSERT INTO action_history (action_id, event_id, outcome, status, previous_status, note,
	tracker, external_key, changed_at, changed_by, recorded_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
	$9::timestamptz[], $10::text[], $11::timestamptz[])`

// AddHistories appends every entry of hs to its action's history, in order,
// with one statement.
func (t *Tx) AddHistories(ctx context.Context, hs []HistoryEntry) error {
	if len(hs) == 0 {
		return nil
	}
	var c struct {
		actions, eventIDs, outcomes, statuses, previous, notes, trackers, keys, by []string
		changed, recorded                                                          []time.Time
	}
	for _, h := range hs {
		c.actions, c.eventIDs, c.outcomes = append(c.actions, h.ActionID), append(c.eventIDs, h.EventID), append(c.outcomes, string(h.Outcome))
		c.statuses, c.previous, c.notes = append(c.statuses, string(h.Status)), append(c.previous, string(h.PreviousStatus)), append(c.notes, h.Note)
		c.trackers, c.keys, c.by = append(c.trackers, h.Tracker), append(c.keys, h.ExternalKey), append(c.by, h.ChangedBy)
		c.changed, c.recorded = append(c.changed, h.ChangedAt), append(c.recorded, h.RecordedAt)
	}
	if _, err := t.tx.Exec(ctx, insertHistories, c.actions, c.eventIDs, c.outcomes, c.statuses, c.previous, c.notes,
		c.trackers, c.keys, c.changed, c.by, c.recorded); err != nil {
		return fmt.Errorf("add %d history entries: %w", len(hs), err)
	}
	return nil
}

const overdueCandidates = `SELECT ` + actionColumns + ` FROM actions a
WHERE status IN ('open', 'in_progress') AND due_date < $1::date
  AND NOT EXISTS (SELECT 1 FROM overdue_notices n WHERE n.action_id = a.action_id AND n.day = $1::date)
ORDER BY due_date, action_id
LIMIT $2
FOR UPDATE SKIP LOCKED`

// OverdueCandidates returns up to limit unfinished actions due before day
// (YYYY-MM-DD) with no overdue notice for day yet, locked until the transaction
// ends; rows another transaction holds are skipped.
func (t *Tx) OverdueCandidates(ctx context.Context, day string, limit int) ([]Action, error) {
	rows, err := t.tx.Query(ctx, overdueCandidates, day, limit)
	if err != nil {
		return nil, fmt.Errorf("find overdue actions: %w", err)
	}
	as, err := pgx.CollectRows(rows, scanAction)
	if err != nil {
		return nil, fmt.Errorf("find overdue actions: %w", err)
	}
	return as, nil
}

// ClaimOverdue records that the overdue notice of action for day (YYYY-MM-DD)
// is being sent as eventID. It returns false when it was claimed before.
func (t *Tx) ClaimOverdue(ctx context.Context, actionID, day, eventID string, at time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `INSERT INTO overdue_notices (action_id, day, event_id, claimed_at)
VALUES ($1, $2::date, $3, $4) ON CONFLICT DO NOTHING`, actionID, day, eventID, at)
	if err != nil {
		return false, fmt.Errorf("claim overdue notice of %s for %s: %w", actionID, day, err)
	}
	return tag.RowsAffected() == 1, nil
}

// RecordUnmatched keeps u; an update with the same event id is kept once. It
// returns false when u.EventID was recorded before.
func (s *Store) RecordUnmatched(ctx context.Context, u Unmatched) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO unmatched_status_updates
	(event_id, subject, kind, reason, tracker, action_id, external_key, ce_type, payload, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_id) DO NOTHING`,
		u.EventID, u.Subject, u.Kind, u.Reason, u.Tracker, u.ActionID, u.ExternalKey, u.CEType, u.Payload, u.ReceivedAt)
	if err != nil {
		return false, fmt.Errorf("record unmatched status update %s: %w", u.EventID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ListUnmatched returns the newest unmatched status updates first, at most
// limit, optionally only those from tracker.
func (s *Store) ListUnmatched(ctx context.Context, tracker string, limit int) ([]Unmatched, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, event_id, subject, kind, reason, tracker, action_id, external_key,
	ce_type, payload, received_at
FROM unmatched_status_updates WHERE ($1 = '' OR tracker = $1) ORDER BY id DESC LIMIT $2`, tracker, limit)
	if err != nil {
		return nil, fmt.Errorf("list unmatched status updates: %w", err)
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Unmatched, error) {
		var u Unmatched
		err := r.Scan(&u.ID, &u.EventID, &u.Subject, &u.Kind, &u.Reason, &u.Tracker, &u.ActionID, &u.ExternalKey,
			&u.CEType, &u.Payload, &u.ReceivedAt)
		return u, err
	})
	if err != nil {
		return nil, fmt.Errorf("list unmatched status updates: %w", err)
	}
	return us, nil
}

const listActions = `SELECT ` + actionColumns + ` FROM actions
WHERE ($1 = '' OR incident_id = nullif($1, '')::uuid)
  AND ($2 = '' OR status = $2)
  AND ($3 = '' OR lower(owner_email) = lower($3) OR lower(owner_name) = lower($3))
  AND ($4 = '' OR (status IN ('open', 'in_progress') AND due_date < nullif($4, '')::date))
ORDER BY seq
LIMIT $5`

// ListActions returns the actions f selects in creation order (items of one
// review in the review's order).
func (s *Store) ListActions(ctx context.Context, f Filter) ([]Action, error) {
	rows, err := s.pool.Query(ctx, listActions, f.IncidentID, string(f.Status), f.Owner, f.OverdueOn, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list actions: %w", err)
	}
	as, err := pgx.CollectRows(rows, scanAction)
	if err != nil {
		return nil, fmt.Errorf("list actions: %w", err)
	}
	return as, nil
}

// Action returns the action with id or an error wrapping postgres.ErrNotFound.
func (s *Store) Action(ctx context.Context, id string) (Action, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+actionColumns+` FROM actions WHERE action_id = $1`, id)
	return collectOne(rows, err, "get action "+id)
}

// History returns the history of the action with id, oldest first.
func (s *Store) History(ctx context.Context, id string) ([]HistoryEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, action_id::text, event_id, outcome, status, previous_status, note,
	tracker, external_key, changed_at, changed_by, recorded_at
FROM action_history WHERE action_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("history of action %s: %w", id, err)
	}
	hs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (HistoryEntry, error) {
		var h HistoryEntry
		err := r.Scan(&h.ID, &h.ActionID, &h.EventID, &h.Outcome, &h.Status, &h.PreviousStatus, &h.Note,
			&h.Tracker, &h.ExternalKey, &h.ChangedAt, &h.ChangedBy, &h.RecordedAt)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("history of action %s: %w", id, err)
	}
	return hs, nil
}

// CountByStatus returns how many actions are in each status.
func (s *Store) CountByStatus(ctx context.Context) (map[events.Status]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM actions GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count actions: %w", err)
	}
	counts := map[events.Status]int{}
	var st events.Status
	var n int
	_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error {
		counts[st] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count actions: %w", err)
	}
	return counts, nil
}
