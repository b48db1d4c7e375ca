package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
)

// Meeting is the stored debrief meeting of a review.
type Meeting struct {
	ReviewID        string
	UID             string
	Sequence        int
	Status          events.MeetingStatus
	StartsAt        time.Time
	DurationMinutes int
	Location        string
	VideoURL        string
	Guests          []events.Contact
	Attended        []string
	Minutes         string
	UpdatedAt       time.Time
}

const selectMeeting = `SELECT review_id::text, uid, sequence, status, starts_at, duration_minutes, location, video_url,
	guests, attended, minutes, updated_at FROM meetings WHERE review_id = $1`

// rowQuerier is a pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func meeting(ctx context.Context, q rowQuerier, reviewID string, lock bool) (Meeting, error) {
	sql := selectMeeting
	if lock {
		sql += ` FOR UPDATE`
	}
	var m Meeting
	var guests, attended []byte
	err := q.QueryRow(ctx, sql, reviewID).Scan(&m.ReviewID, &m.UID, &m.Sequence, &m.Status, &m.StartsAt,
		&m.DurationMinutes, &m.Location, &m.VideoURL, &guests, &attended, &m.Minutes, &m.UpdatedAt)
	if pg.IsNoRows(err) {
		return Meeting{}, fmt.Errorf("meeting of review %s: %w", reviewID, pg.ErrNotFound)
	}
	if err != nil {
		return Meeting{}, fmt.Errorf("read meeting of review %s: %w", reviewID, err)
	}
	if err := json.Unmarshal(guests, &m.Guests); err != nil {
		return Meeting{}, fmt.Errorf("decode meeting guests: %w", err)
	}
	if err := json.Unmarshal(attended, &m.Attended); err != nil {
		return Meeting{}, fmt.Errorf("decode meeting attendance: %w", err)
	}
	return m, nil
}

// Meeting returns the meeting of a review, or ErrNotFound when none was ever scheduled.
func (s *Store) Meeting(ctx context.Context, reviewID string) (Meeting, error) {
	return meeting(ctx, s.pool, reviewID, false)
}

// LockMeeting returns the meeting of a review locked for update, or ErrNotFound.
func (t *Tx) LockMeeting(ctx context.Context, reviewID string) (Meeting, error) {
	return meeting(ctx, t.tx, reviewID, true)
}

const upsertMeeting = `INSERT INTO meetings (review_id, uid, sequence, status, starts_at, duration_minutes, location,
	video_url, guests, attended, minutes, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (review_id) DO UPDATE SET sequence = $3, status = $4, starts_at = $5, duration_minutes = $6,
	location = $7, video_url = $8, guests = $9, attended = $10, minutes = $11, updated_at = $12`

// SaveMeeting stores m as the meeting of its review (the uid never changes).
func (t *Tx) SaveMeeting(ctx context.Context, m Meeting) error {
	guests, err := json.Marshal(orEmpty(m.Guests))
	if err != nil {
		return err
	}
	attended, err := json.Marshal(orEmpty(m.Attended))
	if err != nil {
		return err
	}
	if _, err := t.tx.Exec(ctx, upsertMeeting, m.ReviewID, m.UID, m.Sequence, string(m.Status), m.StartsAt,
		m.DurationMinutes, m.Location, m.VideoURL, guests, attended, m.Minutes, m.UpdatedAt); err != nil {
		return fmt.Errorf("save meeting of review %s: %w", m.ReviewID, err)
	}
	return nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

const countUnanswered = `SELECT count(*) FROM participants p
WHERE p.review_id = $1 AND NOT EXISTS (SELECT 1 FROM responses r WHERE r.participant_id = p.participant_id)`

// Unanswered counts the participants of a review who have not answered.
func (t *Tx) Unanswered(ctx context.Context, reviewID string) (int, error) {
	var n int
	if err := t.tx.QueryRow(ctx, countUnanswered, reviewID).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unanswered of review %s: %w", reviewID, err)
	}
	return n, nil
}
