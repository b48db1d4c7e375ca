package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/afteraction/afteraction/pkg/events"
)

// Purged is what one purge removed.
type Purged struct {
	Responses   int64 `json:"responses"`
	Drafts      int64 `json:"drafts"`
	Submissions int64 `json:"submission_bodies"`
	// Bytes is the size of the answers removed, as JSON text.
	Bytes int64 `json:"bytes"`
}

const (
	// purgeResponses empties the answers but keeps who submitted when: the
	// participant still counts as having answered (no reminder, no change to
	// what completion needs).
	purgeResponses = `WITH old AS (
	SELECT participant_id, octet_length(answers::text)::bigint AS size FROM responses
	WHERE review_id IN (SELECT review_id FROM reviews WHERE incident_id = $1) AND answers <> '[]'::jsonb FOR UPDATE)
UPDATE responses r SET answers = '[]'::jsonb FROM old WHERE r.participant_id = old.participant_id
RETURNING old.size`
	purgeDrafts = `DELETE FROM drafts WHERE review_id IN (SELECT review_id FROM reviews WHERE incident_id = $1)
RETURNING octet_length(answers::text)::bigint`
	purgeSubmissions = `WITH old AS (
	SELECT id, octet_length(body::text)::bigint AS size FROM response_submissions
	WHERE review_id IN (SELECT review_id FROM reviews WHERE incident_id = $1) AND purged_at IS NULL FOR UPDATE)
UPDATE response_submissions s SET body = '{}'::json, purged_at = $2 FROM old WHERE s.id = old.id
RETURNING old.size`
	insertPurge = `INSERT INTO purges (incident_id, incident_revision, rule, retain_until, purged_at, event_id, removed)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`
)

// Purge deletes, in one transaction, the answers to the review of e's
// incident (the answers of the responses, the drafts, the bodies of the
// submission log; who submitted when stays) and writes
// the audit line, unless eventID was handled before (fresh false, nothing
// done). An incident without a review purges nothing and still leaves its line.
func (s *Store) Purge(ctx context.Context, eventID string, e events.EvidenceExpired, now time.Time) (p Purged, fresh bool, err error) {
	err = s.InTx(ctx, func(t *Tx) error {
		if fresh, err = t.MarkProcessed(ctx, eventID); err != nil || !fresh {
			return err
		}
		for _, step := range []struct {
			what  string
			sql   string
			count *int64
			args  []any
		}{
			{"responses", purgeResponses, &p.Responses, []any{e.IncidentID}},
			{"drafts", purgeDrafts, &p.Drafts, []any{e.IncidentID}},
			{"submission bodies", purgeSubmissions, &p.Submissions, []any{e.IncidentID, now}},
		} {
			rows, err := t.tx.Query(ctx, step.sql, step.args...)
			if err != nil {
				return fmt.Errorf("purge %s of incident %s: %w", step.what, e.IncidentID, err)
			}
			sizes, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return fmt.Errorf("purge %s of incident %s: %w", step.what, e.IncidentID, err)
			}
			*step.count = int64(len(sizes))
			for _, b := range sizes {
				p.Bytes += b
			}
		}
		removed, err := json.Marshal(p)
		if err != nil {
			return err
		}
		if _, err := t.tx.Exec(ctx, insertPurge, e.IncidentID, e.IncidentRevision, e.Rule, e.RetainUntil, now, eventID, removed); err != nil {
			return fmt.Errorf("record purge of incident %s: %w", e.IncidentID, err)
		}
		return nil
	})
	return p, fresh, err
}
