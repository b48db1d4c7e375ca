package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
)

// ErrPurged is returned by RawRevision for a revision whose payload was
// deleted when the incident's evidence expired.
var ErrPurged = errors.New("payload purged past its retention date")

// Purged is what one purge removed.
type Purged struct {
	// Revisions counts the revisions whose raw payload and canonical JSON were removed.
	Revisions int64 `json:"revision_payloads"`
	// WebhookBodies counts the webhook request bodies removed with them.
	WebhookBodies int64 `json:"webhook_bodies"`
	// Bytes is the size of the raw payloads and bodies removed.
	Bytes int64 `json:"bytes"`
}

const (
	// purgeWebhooks runs first: it finds the bodies through the revisions'
	// event ids, which the revisions keep.
	purgeWebhooks = `DELETE FROM webhook_deliveries w USING incident_revisions r
WHERE r.incident_id = $1 AND r.revision <= $2 AND w.event_id = r.event_id
RETURNING octet_length(w.body)::bigint`
	// purgeRevisions keeps of the canonical JSON what identifies the incident
	// (the incidents row holds the same), and keeps content_sha256 and
	// event_id: they make a late copy a duplicate.
	purgeRevisions = `WITH old AS (
	SELECT incident_id, revision, octet_length(raw)::bigint AS size FROM incident_revisions
	WHERE incident_id = $1 AND revision <= $2 AND purged_at IS NULL FOR UPDATE)
UPDATE incident_revisions r SET raw = ''::bytea, purged_at = $3,
	canonical = json_strip_nulls(json_build_object('source', r.canonical -> 'source', 'external_id', r.canonical -> 'external_id',
		'title', r.canonical -> 'title', 'severity', r.canonical -> 'severity', 'category', r.canonical -> 'category',
		'timestamps', json_build_object('closed_at', r.canonical -> 'timestamps' -> 'closed_at')))
FROM old WHERE r.incident_id = old.incident_id AND r.revision = old.revision
RETURNING old.size`
	insertPurge = `INSERT INTO purges (incident_id, incident_revision, rule, retain_until, purged_at, event_id, removed)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`
)

// Purge deletes, in one transaction, the raw payloads of e's incident up to
// e.IncidentRevision (see migration 0005) and writes the audit line, unless
// eventID was handled before (fresh false, nothing done). Revisions purged
// before are left as they are; an incident intake does not know purges nothing
// and still leaves its line.
func (s *Store) Purge(ctx context.Context, eventID string, e events.EvidenceExpired, now time.Time) (p Purged, fresh bool, err error) {
	err = postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if fresh, err = postgres.MarkProcessed(ctx, tx, eventID); err != nil || !fresh {
			return err
		}
		var bodies, raws int64
		if p.WebhookBodies, bodies, err = deleted(ctx, tx, purgeWebhooks, e.IncidentID, e.IncidentRevision); err != nil {
			return fmt.Errorf("purge webhook bodies of %s: %w", e.IncidentID, err)
		}
		if p.Revisions, raws, err = deleted(ctx, tx, purgeRevisions, e.IncidentID, e.IncidentRevision, now); err != nil {
			return fmt.Errorf("purge payloads of %s: %w", e.IncidentID, err)
		}
		p.Bytes = bodies + raws
		removed, err := json.Marshal(p)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertPurge, e.IncidentID, e.IncidentRevision, e.Rule, e.RetainUntil, now, eventID, removed); err != nil {
			return fmt.Errorf("record purge of %s: %w", e.IncidentID, err)
		}
		return nil
	})
	return p, fresh, err
}

// deleted runs sql, which returns the size of each thing it removes, and
// returns how many things and bytes it removed.
func deleted(ctx context.Context, tx pgx.Tx, sql string, args ...any) (n, bytes int64, err error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return 0, 0, err
	}
	sizes, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	for _, b := range sizes {
		bytes += b
	}
	return int64(len(sizes)), bytes, err
}
