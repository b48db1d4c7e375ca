package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/jackc/pgx/v5"

	platform "github.com/afteraction/afteraction/pkg/postgres"
)

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is the delivery of one action to one bridge: the intent, the
// remote issue once known, and how the last attempt went.
type Delivery struct {
	ActionID         string     `json:"action_id"`
	Bridge           string     `json:"bridge"`
	ExternalID       string     `json:"external_id,omitempty"`
	ExternalURL      string     `json:"external_url,omitempty"`
	Version          int64      `json:"version"`
	DeliveredVersion int64      `json:"delivered_version"`
	State            string     `json:"state"`
	Attempts         int        `json:"attempts"`
	CreateCalls      int        `json:"create_calls"`
	NextAttemptAt    time.Time  `json:"next_attempt_at"`
	LastStatus       int        `json:"last_status,omitempty"`
	LastError        string     `json:"last_error,omitempty"`
	RemoteUpdatedAt  *time.Time `json:"remote_updated_at,omitempty"`
	UpdatedAt        time.Time  `json:"updated_at"`
}

// Failure is a delivery a remote refused for good: the event the tracker
// writes to the DLQ for it (afteraction.bridge.delivery_failed.v1).
type Failure = events.BridgeDeliveryFailed

const deliveryColumns = `action_id::text, bridge, external_id, external_url, version, delivered_version, state, attempts,
create_calls, next_attempt_at, last_status, last_error, remote_updated_at, updated_at`

func scanDelivery(row pgx.CollectableRow) (Delivery, error) {
	var d Delivery
	err := row.Scan(&d.ActionID, &d.Bridge, &d.ExternalID, &d.ExternalURL, &d.Version, &d.DeliveredVersion, &d.State,
		&d.Attempts, &d.CreateCalls, &d.NextAttemptAt, &d.LastStatus, &d.LastError, &d.RemoteUpdatedAt, &d.UpdatedAt)
	return d, err
}

const upsertIntent = `INSERT INTO bridge_deliveries (action_id, bridge, state, next_attempt_at, created_at, updated_at)
VALUES ($1, $2, 'pending', $3, $3, $3)
ON CONFLICT (action_id, bridge) DO UPDATE SET
	version = bridge_deliveries.version + 1,
	state = 'pending',
	attempts = CASE WHEN bridge_deliveries.state = 'pending' THEN bridge_deliveries.attempts ELSE 0 END,
	next_attempt_at = CASE WHEN bridge_deliveries.state = 'pending' THEN bridge_deliveries.next_attempt_at ELSE $3 END,
	updated_at = $3`

// RecordIntent records that action must be delivered to bridge: a new row
// (a create) or, for an existing one, a new version to deliver (an update).
// It is written in the transaction that changes the action, so no change is
// lost between the commit and the remote call.
func (t *Tx) RecordIntent(ctx context.Context, actionID, bridge string, now time.Time) error {
	if _, err := t.tx.Exec(ctx, upsertIntent, actionID, bridge, now); err != nil {
		return fmt.Errorf("record delivery of action %s to %s: %w", actionID, bridge, err)
	}
	return nil
}

// Intent is one action to deliver to one bridge.
type Intent struct {
	ActionID string
	Bridge   string
}

// RecordIntents records every intent of is, as RecordIntent does each, with
// one statement; an action appears at most once in is.
func (t *Tx) RecordIntents(ctx context.Context, is []Intent, now time.Time) error {
	if len(is) == 0 {
		return nil
	}
	actions, bridges := make([]string, len(is)), make([]string, len(is))
	for i, in := range is {
		actions[i], bridges[i] = in.ActionID, in.Bridge
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO bridge_deliveries (action_id, bridge, state, next_attempt_at, created_at, updated_at)
SELECT a, b, 'pending', $3, $3, $3 FROM unnest($1::uuid[], $2::text[]) AS i(a, b)`, actions, bridges, now)
	if err != nil {
		return fmt.Errorf("record delivery of %d actions: %w", len(is), err)
	}
	return nil
}

// Deliveries returns the bridges an action is delivered to, locked until
// the transaction ends.
func (t *Tx) Deliveries(ctx context.Context, actionID string) ([]Delivery, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+deliveryColumns+` FROM bridge_deliveries WHERE action_id = $1
ORDER BY bridge FOR UPDATE`, actionID)
	if err != nil {
		return nil, fmt.Errorf("deliveries of action %s: %w", actionID, err)
	}
	ds, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("deliveries of action %s: %w", actionID, err)
	}
	return ds, nil
}

const claimDue = `UPDATE bridge_deliveries d SET lease_until = $3, attempts = d.attempts + 1,
	create_calls = d.create_calls + (d.external_id = '')::int, updated_at = $2
WHERE (d.action_id, d.bridge) IN (
	SELECT action_id, bridge FROM bridge_deliveries
	WHERE bridge = $1 AND state = 'pending' AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)
	ORDER BY next_attempt_at, action_id
	LIMIT $4
	FOR UPDATE SKIP LOCKED)
RETURNING ` + deliveryColumns

// ClaimDue leases up to limit pending deliveries of bridge whose next attempt
// is due, counting the attempt (and the create call, for a delivery with no
// remote issue yet) in the same statement: the count is committed before the
// remote is called. A lease that expires (a crashed caller) frees the row.
func (s *Store) ClaimDue(ctx context.Context, bridge string, now time.Time, lease time.Duration, limit int) ([]Delivery, error) {
	rows, err := s.pool.Query(ctx, claimDue, bridge, now, now.Add(lease), limit)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries to %s: %w", bridge, err)
	}
	ds, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries to %s: %w", bridge, err)
	}
	return ds, nil
}

const markDelivered = `UPDATE bridge_deliveries SET
	external_id = CASE WHEN $3 = '' THEN external_id ELSE $3 END,
	external_url = CASE WHEN $4 = '' THEN external_url ELSE $4 END,
	delivered_version = greatest(delivered_version, $5),
	state = CASE WHEN version > $5 THEN 'pending' ELSE 'delivered' END,
	attempts = 0, lease_until = NULL, last_status = 0, last_error = '', next_attempt_at = $6, updated_at = $6
WHERE action_id = $1 AND bridge = $2`

// MarkDelivered records that the remote took version of the action as the
// issue (externalID, url); a newer version keeps the delivery pending. The
// first delivery links the action to the remote issue (tracker = bridge)
// unless it is linked already.
func (t *Tx) MarkDelivered(ctx context.Context, actionID, bridge, externalID, url string, version int64, now time.Time) error {
	if _, err := t.tx.Exec(ctx, markDelivered, actionID, bridge, externalID, url, version, now); err != nil {
		if platform.IsUniqueViolation(err) {
			return fmt.Errorf("mark delivery of action %s to %s: %s issue %s: %w", actionID, bridge, bridge, externalID, platform.ErrConflict)
		}
		return fmt.Errorf("mark delivery of action %s to %s: %w", actionID, bridge, err)
	}
	if externalID == "" {
		return nil
	}
	_, err := t.tx.Exec(ctx, `UPDATE actions SET tracker = $2, external_key = $3
WHERE action_id = $1 AND tracker IS NULL
  AND NOT EXISTS (SELECT 1 FROM actions WHERE tracker = $2 AND external_key = $3)`, actionID, bridge, externalID)
	if err != nil {
		return fmt.Errorf("link action %s to %s issue %s: %w", actionID, bridge, externalID, err)
	}
	return nil
}

// MarkRetry releases the lease and schedules the next attempt at next,
// keeping the remote's answer.
func (s *Store) MarkRetry(ctx context.Context, actionID, bridge string, next time.Time, status int, msg string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE bridge_deliveries SET lease_until = NULL, next_attempt_at = $3,
	last_status = $4, last_error = $5, updated_at = $6
WHERE action_id = $1 AND bridge = $2`, actionID, bridge, next, status, msg, now)
	if err != nil {
		return fmt.Errorf("schedule retry of action %s to %s: %w", actionID, bridge, err)
	}
	return nil
}

// MarkFailed sets the delivery aside as failed (until the action changes
// again) and lists f among the failures.
func (t *Tx) MarkFailed(ctx context.Context, f Failure) error {
	_, err := t.tx.Exec(ctx, `UPDATE bridge_deliveries SET state = CASE WHEN version > $3 THEN 'pending' ELSE 'failed' END,
	lease_until = NULL, last_status = $4, last_error = $5, next_attempt_at = $6, updated_at = $6
WHERE action_id = $1 AND bridge = $2`, f.ActionID, f.Bridge, f.Version, f.HTTPStatus, f.Message, f.FailedAt)
	if err != nil {
		return fmt.Errorf("mark delivery of action %s to %s failed: %w", f.ActionID, f.Bridge, err)
	}
	_, err = t.tx.Exec(ctx, `INSERT INTO bridge_failures (action_id, bridge, intent, version, http_status, message, attempts, failed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, f.ActionID, f.Bridge, f.Intent, f.Version, f.HTTPStatus, f.Message, f.Attempts, f.FailedAt)
	if err != nil {
		return fmt.Errorf("record failure of action %s to %s: %w", f.ActionID, f.Bridge, err)
	}
	return nil
}

// ListFailures returns the newest failures first, at most limit, optionally
// only those of bridge.
func (s *Store) ListFailures(ctx context.Context, bridge string, limit int) ([]Failure, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, action_id::text, bridge, intent, version, http_status, message, attempts, failed_at
FROM bridge_failures WHERE ($1 = '' OR bridge = $1) ORDER BY id DESC LIMIT $2`, bridge, limit)
	if err != nil {
		return nil, fmt.Errorf("list bridge failures: %w", err)
	}
	fs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Failure])
	if err != nil {
		return nil, fmt.Errorf("list bridge failures: %w", err)
	}
	return fs, nil
}

// ListDeliveries returns the deliveries of an action (all bridges), or with
// actionID "" the newest-changed deliveries in state (any state when "").
func (s *Store) ListDeliveries(ctx context.Context, actionID, state string, limit int) ([]Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryColumns+` FROM bridge_deliveries
WHERE ($1 = '' OR action_id = nullif($1, '')::uuid) AND ($2 = '' OR state = $2)
ORDER BY updated_at DESC, action_id, bridge LIMIT $3`, actionID, state, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return ds, nil
}

// DeliveryByExternal returns the delivery of bridge linked to the remote
// issue externalID, locked until the transaction ends, or an error wrapping
// postgres.ErrNotFound.
func (t *Tx) DeliveryByExternal(ctx context.Context, bridge, externalID string) (Delivery, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+deliveryColumns+` FROM bridge_deliveries
WHERE bridge = $1 AND external_id = $2 FOR UPDATE`, bridge, externalID)
	return oneDelivery(rows, err, fmt.Sprintf("delivery of %s issue %s", bridge, externalID))
}

// Delivery returns the delivery of action to bridge, locked until the
// transaction ends, or an error wrapping postgres.ErrNotFound.
func (t *Tx) Delivery(ctx context.Context, actionID, bridge string) (Delivery, error) {
	rows, err := t.tx.Query(ctx, `SELECT `+deliveryColumns+` FROM bridge_deliveries
WHERE action_id = $1 AND bridge = $2 FOR UPDATE`, actionID, bridge)
	return oneDelivery(rows, err, fmt.Sprintf("delivery of action %s to %s", actionID, bridge))
}

func oneDelivery(rows pgx.Rows, err error, what string) (Delivery, error) {
	if err != nil {
		return Delivery{}, fmt.Errorf("%s: %w", what, err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDelivery)
	if platform.IsNoRows(err) {
		return Delivery{}, fmt.Errorf("%s: %w", what, platform.ErrNotFound)
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("%s: %w", what, err)
	}
	return d, nil
}

// SetRemoteUpdatedAt records the remote update time of the last status
// update applied from bridge, creating the row (as delivered) for an issue
// that was linked from the remote side. It returns postgres.ErrConflict when
// that issue is already linked to another action.
func (t *Tx) SetRemoteUpdatedAt(ctx context.Context, actionID, bridge, externalID string, at, now time.Time) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO bridge_deliveries (action_id, bridge, external_id, delivered_version, state,
	next_attempt_at, remote_updated_at, created_at, updated_at)
VALUES ($1, $2, $3, 1, 'delivered', $5, $4, $5, $5)
ON CONFLICT (action_id, bridge) DO UPDATE SET remote_updated_at = $4,
	external_id = CASE WHEN bridge_deliveries.external_id = '' THEN $3 ELSE bridge_deliveries.external_id END,
	updated_at = $5`, actionID, bridge, externalID, at, now)
	if platform.IsUniqueViolation(err) {
		return fmt.Errorf("link action %s to %s issue %s: %w", actionID, bridge, externalID, platform.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("record remote update time of action %s on %s: %w", actionID, bridge, err)
	}
	return nil
}

// Unfinished and recently finished actions for the digest.
const digestActions = `SELECT ` + actionColumns + ` FROM actions
WHERE (status IN ('open', 'in_progress') AND due_date IS NOT NULL AND due_date < $1::date)
   OR (status IN ('open', 'in_progress') AND due_date >= $1::date AND due_date < $2::date)
   OR (status = 'done' AND status_changed_at >= $3)
ORDER BY due_date NULLS LAST, seq`

// DigestActions returns the actions a weekly digest covers: unfinished
// actions due before soon (YYYY-MM-DD; overdue are those due before today),
// and actions done since doneSince.
func (s *Store) DigestActions(ctx context.Context, today, soon string, doneSince time.Time) ([]Action, error) {
	rows, err := s.pool.Query(ctx, digestActions, today, soon, doneSince)
	if err != nil {
		return nil, fmt.Errorf("digest actions: %w", err)
	}
	as, err := pgx.CollectRows(rows, scanAction)
	if err != nil {
		return nil, fmt.Errorf("digest actions: %w", err)
	}
	return as, nil
}

// ClaimDigest records that the digest of recipient in role for week is
// being sent as eventID; false means it was claimed before.
func (t *Tx) ClaimDigest(ctx context.Context, recipient, role, week, eventID string, at time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `INSERT INTO digest_notices (recipient, role, week, event_id, claimed_at)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, recipient, role, week, eventID, at)
	if err != nil {
		return false, fmt.Errorf("claim digest of %s for %s: %w", recipient, week, err)
	}
	return tag.RowsAffected() == 1, nil
}
