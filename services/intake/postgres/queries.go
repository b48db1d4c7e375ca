package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/afteraction/afteraction/pkg/postgres"
)

// Incident is the current state of a registered incident.
type Incident struct {
	ID            string     `json:"incident_id" db:"id"`
	Source        string     `json:"source" db:"source"`
	ExternalID    string     `json:"external_id" db:"external_id"`
	Revision      int        `json:"revision" db:"revision"`
	Title         string     `json:"title" db:"title"`
	Severity      string     `json:"severity" db:"severity"`
	Category      string     `json:"category,omitempty" db:"category"`
	Exercise      bool       `json:"exercise" db:"exercise"`
	ClosedAt      time.Time  `json:"closed_at" db:"closed_at"`
	DetectedAt    *time.Time `json:"detected_at,omitempty" db:"detected_at"`
	RegisteredAt  time.Time  `json:"registered_at" db:"registered_at"`
	UpdatedAt     time.Time  `json:"updated_at" db:"updated_at"`
	ContentSHA256 string     `json:"content_sha256" db:"content_sha256"`
	// Canonical is the current revision's canonical JSON (only from Incident, not from Incidents).
	Canonical json.RawMessage `json:"incident,omitempty" db:"canonical"`
	// Revisions lists every revision, oldest first (only from Incident).
	Revisions []RevisionInfo `json:"revisions,omitempty" db:"-"`
}

// RevisionInfo describes one stored revision of an incident.
type RevisionInfo struct {
	Revision      int       `json:"revision" db:"revision"`
	ContentSHA256 string    `json:"content_sha256" db:"content_sha256"`
	ReceivedAt    time.Time `json:"received_at" db:"received_at"`
	EventID       *string   `json:"event_id,omitempty" db:"event_id"`
	// PurgedAt is when the revision's raw payload was deleted, its evidence
	// past retention (nil: kept).
	PurgedAt *time.Time `json:"purged_at,omitempty" db:"purged_at"`
}

const incidentColumns = `i.id::text AS id, i.source, i.external_id, i.revision, i.title, i.severity, i.category,
	i.exercise, i.closed_at, i.detected_at, i.registered_at, i.updated_at, i.content_sha256`

// Incident returns the incident with the given id, its current canonical JSON
// and its revisions, or ErrNotFound.
func (s *Store) Incident(ctx context.Context, id string) (Incident, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Incident{}, ErrNotFound
	}
	var inc Incident
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+incidentColumns+`, r.canonical FROM incidents i
JOIN incident_revisions r ON r.incident_id = i.id AND r.revision = i.revision WHERE i.id = $1`, id)
		if err != nil {
			return err
		}
		inc, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByNameLax[Incident])
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT revision, content_sha256, received_at, event_id, purged_at
FROM incident_revisions WHERE incident_id = $1 ORDER BY revision`, id)
		if err != nil {
			return err
		}
		inc.Revisions, err = pgx.CollectRows(rows, pgx.RowToStructByName[RevisionInfo])
		return err
	})
	if postgres.IsNoRows(err) {
		return Incident{}, ErrNotFound
	}
	if err != nil {
		return Incident{}, fmt.Errorf("get incident %s: %w", id, err)
	}
	return inc, nil
}

// Filter selects incidents; empty fields match everything.
type Filter struct {
	Source     string
	ExternalID string
	// Limit bounds the result (1..1000; default 50).
	Limit int
}

// Incidents returns the incidents matching f, most recently updated first,
// without their canonical JSON and revisions.
func (s *Store) Incidents(ctx context.Context, f Filter) ([]Incident, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	rows, err := s.pool.Query(ctx, `SELECT `+incidentColumns+` FROM incidents i
WHERE ($1 = '' OR source = $1) AND ($2 = '' OR external_id = $2)
ORDER BY updated_at DESC, id LIMIT $3`, f.Source, f.ExternalID, limit)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByNameLax[Incident])
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	return list, nil
}

// RawRevision returns the payload revision n of incident id arrived with,
// byte for byte; ErrNotFound, or ErrPurged once its evidence expired.
func (s *Store) RawRevision(ctx context.Context, id string, n int) ([]byte, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrNotFound
	}
	var raw []byte
	var purgedAt *time.Time
	err := s.pool.QueryRow(ctx, `SELECT coalesce(w.body, r.raw), r.purged_at FROM incident_revisions r
LEFT JOIN webhook_deliveries w ON w.event_id = r.event_id
WHERE r.incident_id = $1 AND r.revision = $2`, id, n).Scan(&raw, &purgedAt)
	if err == nil && purgedAt != nil {
		return nil, fmt.Errorf("revision %d of %s: %w on %s", n, id, ErrPurged, purgedAt.UTC().Format(time.DateOnly))
	}
	if postgres.IsNoRows(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get raw revision %d of %s: %w", n, id, err)
	}
	return raw, nil
}

// RecordDelivery keeps the body (and the headers, secrets already stripped) of
// an accepted webhook under the id of the event it is about to be published
// as; the revision that event registers then serves it as its raw payload.
func (s *Store) RecordDelivery(ctx context.Context, eventID, source string, receivedAt time.Time, headers map[string][]string, body []byte) error {
	h, err := json.Marshal(headers)
	if err != nil {
		return fmt.Errorf("record webhook delivery %s: %w", eventID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO webhook_deliveries (event_id, source, received_at, headers, body)
VALUES ($1, $2, $3, $4, $5)`, eventID, source, receivedAt, h, body)
	if err != nil {
		return fmt.Errorf("record webhook delivery %s: %w", eventID, err)
	}
	return nil
}

// Reject is a stored reject.
type Reject struct {
	ID            string          `json:"reject_id" db:"id"`
	Source        string          `json:"source,omitempty" db:"source"`
	Subject       string          `json:"subject" db:"subject"`
	ReceivedAt    time.Time       `json:"received_at" db:"received_at"`
	Reason        string          `json:"reason" db:"reason"`
	Problems      json.RawMessage `json:"problems" db:"problems"`
	PayloadSHA256 string          `json:"payload_sha256" db:"payload_sha256"`
	PayloadSize   int64           `json:"payload_size" db:"payload_size"`
	EventID       *string         `json:"event_id,omitempty" db:"event_id"`
	// RawTruncated says the reject keeps only the first bytes of the payload
	// (a request that failed authentication); PayloadSHA256 and PayloadSize
	// describe the whole.
	RawTruncated bool `json:"raw_truncated,omitempty" db:"raw_truncated"`
	// Headers are the HTTP request headers, for webhook rejects (only from Reject).
	Headers json.RawMessage `json:"headers,omitempty" db:"-"`
	// Raw is the payload as received (only from Reject).
	Raw []byte `json:"raw,omitempty" db:"-"`
}

const rejectColumns = `id::text AS id, source, subject, received_at, reason, problems, payload_sha256,
	coalesce(payload_size, octet_length(raw))::bigint AS payload_size, event_id, raw_truncated`

// Rejects returns the latest rejects, newest first, without their payloads.
func (s *Store) Rejects(ctx context.Context, limit int) ([]Reject, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	rows, err := s.pool.Query(ctx, `SELECT `+rejectColumns+` FROM rejects ORDER BY received_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list rejects: %w", err)
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByNameLax[Reject])
	if err != nil {
		return nil, fmt.Errorf("list rejects: %w", err)
	}
	return list, nil
}

// Reject returns one reject with its payload and headers, or ErrNotFound.
func (s *Store) Reject(ctx context.Context, id string) (Reject, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Reject{}, ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `SELECT `+rejectColumns+`, raw, headers FROM rejects WHERE id = $1`, id)
	if err != nil {
		return Reject{}, fmt.Errorf("get reject %s: %w", id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (Reject, error) {
		var r Reject
		err := row.Scan(&r.ID, &r.Source, &r.Subject, &r.ReceivedAt, &r.Reason, &r.Problems, &r.PayloadSHA256,
			&r.PayloadSize, &r.EventID, &r.RawTruncated, &r.Raw, &r.Headers)
		return r, err
	})
	if postgres.IsNoRows(err) {
		return Reject{}, ErrNotFound
	}
	if err != nil {
		return Reject{}, fmt.Errorf("get reject %s: %w", id, err)
	}
	return r, nil
}
