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

// Session is a signed-in person's console session. IDHash is the SHA-256 of
// the session cookie; CSRF is the token every form of the session carries.
type Session struct {
	IDHash    []byte
	Login     string
	Name      string
	Email     string
	Roles     []string
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

const insertSession = `INSERT INTO console_sessions (id_hash, login, name, email, roles, csrf, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// CreateSession stores s and deletes the sessions that have expired.
func (st *Store) CreateSession(ctx context.Context, s Session) error {
	return st.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at < $1`, s.CreatedAt); err != nil {
			return fmt.Errorf("expire sessions: %w", err)
		}
		if _, err := tx.tx.Exec(ctx, insertSession, s.IDHash, s.Login, s.Name, s.Email, s.Roles, s.CSRF, s.CreatedAt, s.ExpiresAt); err != nil {
			return fmt.Errorf("create session for %s: %w", s.Login, err)
		}
		return nil
	})
}

// Session returns the session whose cookie hashes to idHash if it has not
// expired at now, or ErrNotFound.
func (st *Store) Session(ctx context.Context, idHash []byte, now time.Time) (Session, error) {
	s := Session{IDHash: idHash}
	err := st.pool.QueryRow(ctx, `SELECT login, name, email, roles, csrf, created_at, expires_at
FROM console_sessions WHERE id_hash = $1 AND expires_at > $2`, idHash, now).
		Scan(&s.Login, &s.Name, &s.Email, &s.Roles, &s.CSRF, &s.CreatedAt, &s.ExpiresAt)
	if pg.IsNoRows(err) {
		return s, pg.ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("read session: %w", err)
	}
	return s, nil
}

// DeleteSession ends the session whose cookie hashes to idHash (signing out).
func (st *Store) DeleteSession(ctx context.Context, idHash []byte) error {
	if _, err := st.pool.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// RecordLoginFailure notes a failed sign-in of login from client at, and
// forgets failures older than keep.
func (st *Store) RecordLoginFailure(ctx context.Context, login, client string, at time.Time, keep time.Duration) error {
	return st.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.tx.Exec(ctx, `DELETE FROM console_login_failures WHERE failed_at < $1`, at.Add(-keep)); err != nil {
			return fmt.Errorf("forget old login failures: %w", err)
		}
		if _, err := tx.tx.Exec(ctx, `INSERT INTO console_login_failures (login, client, failed_at) VALUES ($1, $2, $3)`,
			login, client, at); err != nil {
			return fmt.Errorf("record login failure: %w", err)
		}
		return nil
	})
}

// LoginFailures counts the failed sign-ins since since for login and for client.
func (st *Store) LoginFailures(ctx context.Context, login, client string, since time.Time) (byLogin, byClient int, err error) {
	err = st.pool.QueryRow(ctx, `SELECT
	(SELECT count(*) FROM console_login_failures WHERE login = $1 AND failed_at >= $3),
	(SELECT count(*) FROM console_login_failures WHERE client = $2 AND failed_at >= $3)`, login, client, since).
		Scan(&byLogin, &byClient)
	if err != nil {
		return 0, 0, fmt.Errorf("count login failures: %w", err)
	}
	return byLogin, byClient, nil
}

// Participant changes, as recorded in the audit of managing participants.
const (
	ChangeAdded   = "added"
	ChangeRemoved = "removed"
	ChangeResent  = "resent"
	ChangeRevoked = "revoked"
)

// ParticipantChange is one entry of the audit of managing participants.
type ParticipantChange struct {
	At            time.Time `json:"at"`
	ParticipantID string    `json:"participant_id"`
	Name          string    `json:"name"`
	By            string    `json:"by"`
	Change        string    `json:"change"`
	Detail        string    `json:"detail,omitempty"`
}

// RecordParticipantChange appends a change to the audit of managing participants.
func (t *Tx) RecordParticipantChange(ctx context.Context, reviewID, participantID string, at time.Time, by, change, detail string) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO participant_changes (review_id, participant_id, at, by, change, detail)
VALUES ($1, $2, $3, $4, $5, $6)`, reviewID, participantID, at, by, change, detail); err != nil {
		return fmt.Errorf("record %s of participant %s: %w", change, participantID, err)
	}
	return nil
}

// ParticipantChanges returns the audit of managing a review's participants, oldest first.
func (st *Store) ParticipantChanges(ctx context.Context, reviewID string) ([]ParticipantChange, error) {
	rows, err := st.pool.Query(ctx, `SELECT c.at, c.participant_id::text, p.name, c.by, c.change, c.detail
FROM participant_changes c JOIN participants p USING (participant_id) WHERE c.review_id = $1 ORDER BY c.id`, reviewID)
	if err != nil {
		return nil, fmt.Errorf("participant changes of review %s: %w", reviewID, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ParticipantChange, error) {
		var c ParticipantChange
		err := row.Scan(&c.At, &c.ParticipantID, &c.Name, &c.By, &c.Change, &c.Detail)
		return c, err
	})
}

// RemoveParticipant withdraws a participant's invitation for good (the row
// stays for the audit). It returns ErrNotFound for an unknown or already
// removed participant.
func (t *Tx) RemoveParticipant(ctx context.Context, reviewID, participantID string, at time.Time) error {
	tag, err := t.tx.Exec(ctx, `UPDATE participants SET removed_at = $3, invitation_generation = invitation_generation + 1
WHERE review_id = $1 AND participant_id = $2 AND removed_at IS NULL`, reviewID, participantID, at)
	if err != nil {
		return fmt.Errorf("remove participant %s: %w", participantID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("participant %s of review %s: %w", participantID, reviewID, pg.ErrNotFound)
	}
	return nil
}

// RenewInvitation bumps a participant's invitation generation, which
// invalidates every link sent to them before. With revoke the invitation
// stays withdrawn until the next renewal; without, it is (re)sent at at. It
// returns the new generation, or ErrNotFound.
func (t *Tx) RenewInvitation(ctx context.Context, reviewID, participantID string, at time.Time, revoke bool) (int, error) {
	var gen int
	err := t.tx.QueryRow(ctx, `UPDATE participants SET invitation_generation = invitation_generation + 1,
	invitation_revoked_at = CASE WHEN $4 THEN $3::timestamptz END,
	invited_at = CASE WHEN $4 THEN invited_at ELSE $3::timestamptz END
WHERE review_id = $1 AND participant_id = $2 AND removed_at IS NULL
RETURNING invitation_generation`, reviewID, participantID, at, revoke).Scan(&gen)
	if pg.IsNoRows(err) {
		return 0, fmt.Errorf("participant %s of review %s: %w", participantID, reviewID, pg.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("renew invitation of %s: %w", participantID, err)
	}
	return gen, nil
}

// Draft is answers a participant saved without submitting them.
type Draft struct {
	Answers []events.Answer
	SavedAt time.Time
}

// SaveDraft replaces a participant's draft.
func (t *Tx) SaveDraft(ctx context.Context, reviewID, participantID string, d Draft) error {
	b, err := json.Marshal(d.Answers)
	if err != nil {
		return fmt.Errorf("marshal draft: %w", err)
	}
	if _, err := t.tx.Exec(ctx, `INSERT INTO drafts (participant_id, review_id, answers, saved_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (participant_id) DO UPDATE SET answers = excluded.answers, saved_at = excluded.saved_at`,
		participantID, reviewID, b, d.SavedAt); err != nil {
		return fmt.Errorf("save draft of %s: %w", participantID, err)
	}
	return nil
}

// Draft returns a participant's draft, or ErrNotFound when there is none.
func (st *Store) Draft(ctx context.Context, participantID string) (Draft, error) {
	var d Draft
	var b []byte
	err := st.pool.QueryRow(ctx, `SELECT answers, saved_at FROM drafts WHERE participant_id = $1`, participantID).Scan(&b, &d.SavedAt)
	if pg.IsNoRows(err) {
		return d, pg.ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("draft of %s: %w", participantID, err)
	}
	return d, json.Unmarshal(b, &d.Answers)
}

// AwaitApproval moves an open review to StatusAwaitingApproval, signed off
// by by at at, with the outcome (JSON) to complete it with once approved. It
// returns ErrConflict when the review is not open.
func (t *Tx) AwaitApproval(ctx context.Context, reviewID, by string, at time.Time, pending []byte) error {
	tag, err := t.tx.Exec(ctx, `UPDATE reviews SET status = 'awaiting_approval', signed_off_by = $2, signed_off_at = $3,
	pending_completion = $4, rejected_by = '', rejected_at = NULL, rejection_reason = ''
WHERE review_id = $1 AND status = 'open'`, reviewID, by, at, pending)
	if err != nil {
		return fmt.Errorf("sign off review %s: %w", reviewID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("sign off review %s: %w", reviewID, pg.ErrConflict)
	}
	return nil
}

// RejectApproval returns a review awaiting approval to open, with the
// rejection's author, time and reason. It returns ErrConflict when the review
// is not awaiting approval.
func (t *Tx) RejectApproval(ctx context.Context, reviewID, by string, at time.Time, reason string) error {
	tag, err := t.tx.Exec(ctx, `UPDATE reviews SET status = 'open', pending_completion = NULL,
	rejected_by = $2, rejected_at = $3, rejection_reason = $4
WHERE review_id = $1 AND status = 'awaiting_approval'`, reviewID, by, at, reason)
	if err != nil {
		return fmt.Errorf("reject review %s: %w", reviewID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("reject review %s: %w", reviewID, pg.ErrConflict)
	}
	return nil
}
