package report

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/report/custody"
)

var _ EvidenceStore = (*PostgresStore)(nil)

const (
	// lockEvidence serialises the hold changes and the expiry of one incident
	// across transactions and replicas: a hold committed first prevents the
	// expiry; an expiry committed first is seen by the hold.
	lockEvidence   = `SELECT pg_advisory_xact_lock(hashtextextended('afteraction.evidence:' || $1::text, 0))`
	evidenceFacts  = `SELECT incident_id::text, revision, category, severity, closed_at FROM incidents WHERE incident_id::text = $1`
	currentHold    = `SELECT at, by, reason FROM current_holds WHERE incident_id::text = $1`
	holdHistory    = `SELECT seq, action, at, by, reason FROM legal_holds WHERE incident_id::text = $1 ORDER BY seq`
	incidentPurges = `SELECT incident_revision, rule, retain_until, purged_at, event_id FROM purges
WHERE incident_id::text = $1 ORDER BY incident_revision`
	insertHold = `INSERT INTO legal_holds (incident_id, seq, action, at, by, reason)
SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5 FROM legal_holds WHERE incident_id = $1 RETURNING seq`
	expiryCandidates = `SELECT i.incident_id::text, i.revision, i.category, i.severity, i.closed_at FROM incidents i
WHERE i.closed_at < $1 AND (i.closed_at, i.incident_id) > ($2, $3::uuid)
	AND NOT EXISTS (SELECT 1 FROM current_holds h WHERE h.incident_id = i.incident_id)
	AND NOT EXISTS (SELECT 1 FROM purges p WHERE p.incident_id = i.incident_id AND p.incident_revision >= i.revision)
ORDER BY i.closed_at, i.incident_id LIMIT $4`
	insertPurge = `INSERT INTO purges (incident_id, incident_revision, rule, retain_until, purged_at, event_id)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`
	lockIncidentReport = `SELECT report_id::text FROM reports WHERE incident_id::text = $1 FOR UPDATE`
)

func scanEvidenceIncident(row pgx.Row) (EvidenceIncident, error) {
	var inc EvidenceIncident
	err := row.Scan(&inc.IncidentID, &inc.Revision, &inc.Category, &inc.Severity, &inc.ClosedAt)
	inc.ClosedAt = inc.ClosedAt.UTC()
	return inc, err
}

// readEvidenceIncident reads what retention needs of an incident from the
// read model; ErrNotFound when it is not there.
func readEvidenceIncident(ctx context.Context, tx pgx.Tx, incidentID string) (EvidenceIncident, error) {
	inc, err := scanEvidenceIncident(tx.QueryRow(ctx, evidenceFacts, incidentID))
	switch {
	case pg.IsNoRows(err):
		return inc, ErrNotFound
	case err != nil:
		return inc, fmt.Errorf("read incident %s: %w", incidentID, err)
	}
	return inc, nil
}

// readHold returns the legal hold in force on the incident (nil: none).
func readHold(ctx context.Context, tx pgx.Tx, incidentID string) (*LegalHold, error) {
	var h LegalHold
	err := tx.QueryRow(ctx, currentHold, incidentID).Scan(&h.At, &h.By, &h.Reason)
	switch {
	case pg.IsNoRows(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read legal hold of %s: %w", incidentID, err)
	}
	h.At = h.At.UTC()
	return &h, nil
}

// EvidenceStatus implements EvidenceStore.
func (s *PostgresStore) EvidenceStatus(ctx context.Context, incidentID string) (EvidenceStatus, error) {
	var st EvidenceStatus
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		inc, err := readEvidenceIncident(ctx, tx, incidentID)
		if err != nil {
			return err
		}
		st = EvidenceStatus{IncidentID: inc.IncidentID, Revision: inc.Revision, Category: inc.Category,
			Severity: inc.Severity, ClosedAt: inc.ClosedAt}
		if st.Hold, err = readHold(ctx, tx, incidentID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, holdHistory, incidentID)
		if err != nil {
			return fmt.Errorf("read hold history of %s: %w", incidentID, err)
		}
		if st.History, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (HoldChange, error) {
			var c HoldChange
			err := r.Scan(&c.Seq, &c.Action, &c.At, &c.By, &c.Reason)
			c.At = c.At.UTC()
			return c, err
		}); err != nil {
			return fmt.Errorf("read hold history of %s: %w", incidentID, err)
		}
		rows, err = tx.Query(ctx, incidentPurges, incidentID)
		if err != nil {
			return fmt.Errorf("read purges of %s: %w", incidentID, err)
		}
		if st.Purges, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Purge, error) {
			var p Purge
			err := r.Scan(&p.IncidentRevision, &p.Rule, &p.RetainUntil, &p.PurgedAt, &p.EventID)
			p.RetainUntil, p.PurgedAt = p.RetainUntil.UTC(), p.PurgedAt.UTC()
			return p, err
		}); err != nil {
			return fmt.Errorf("read purges of %s: %w", incidentID, err)
		}
		return nil
	})
	st.History, st.Purges = orEmpty(st.History), orEmpty(st.Purges)
	return st, err
}

// ChangeHold implements EvidenceStore.
func (s *PostgresStore) ChangeHold(ctx context.Context, incidentID string, c HoldChange) (bool, error) {
	changed := false
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		inc, err := readEvidenceIncident(ctx, tx, incidentID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, lockEvidence, inc.IncidentID); err != nil {
			return fmt.Errorf("lock evidence of %s: %w", inc.IncidentID, err)
		}
		hold, err := readHold(ctx, tx, inc.IncidentID)
		if err != nil {
			return err
		}
		if (hold != nil) == (c.Action == HoldPlaced) {
			return nil
		}
		if err := tx.QueryRow(ctx, insertHold, inc.IncidentID, c.Action, c.At, c.By, c.Reason).Scan(&c.Seq); err != nil {
			return fmt.Errorf("record hold %s: %w", c.Action, err)
		}
		changed = true
		action, detail := custody.HoldPlaced, "legal hold placed on the incident's evidence by "+c.By+": "+c.Reason
		if c.Action == HoldLifted {
			action, detail = custody.HoldLifted, "legal hold lifted by "+c.By+": "+c.Reason
		}
		return appendIncidentCustody(ctx, tx, inc.IncidentID, custody.Entry{At: c.At, Action: action,
			Actor: c.By, Detail: detail})
	})
	return changed, err
}

// appendIncidentCustody appends e to the custody chain of the incident's
// report, if the incident has one.
func appendIncidentCustody(ctx context.Context, tx pgx.Tx, incidentID string, e custody.Entry) error {
	err := tx.QueryRow(ctx, lockIncidentReport, incidentID).Scan(&e.ReportID)
	if pg.IsNoRows(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lock report of incident %s: %w", incidentID, err)
	}
	_, err = appendCustody(ctx, tx, e)
	return err
}

// ExpiryCandidates implements EvidenceStore.
func (s *PostgresStore) ExpiryCandidates(ctx context.Context, after EvidenceIncident, closedBefore time.Time, limit int) ([]EvidenceIncident, error) {
	afterID := after.IncidentID
	if afterID == "" {
		afterID = "00000000-0000-0000-0000-000000000000"
	}
	rows, err := s.pool.Query(ctx, expiryCandidates, closedBefore, after.ClosedAt, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list incidents due for expiry: %w", err)
	}
	incs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EvidenceIncident, error) { return scanEvidenceIncident(r) })
	if err != nil {
		return nil, fmt.Errorf("list incidents due for expiry: %w", err)
	}
	return incs, nil
}

// Expire implements EvidenceStore.
func (s *PostgresStore) Expire(ctx context.Context, inc EvidenceIncident, p Purge, env events.Envelope) (bool, error) {
	expired := false
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockEvidence, inc.IncidentID); err != nil {
			return fmt.Errorf("lock evidence of %s: %w", inc.IncidentID, err)
		}
		hold, err := readHold(ctx, tx, inc.IncidentID)
		if err != nil || hold != nil {
			return err
		}
		tag, err := tx.Exec(ctx, insertPurge, inc.IncidentID, p.IncidentRevision, p.Rule, p.RetainUntil, p.PurgedAt, p.EventID)
		if err != nil {
			return fmt.Errorf("record purge: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		if err := pg.Enqueue(ctx, tx, events.SubjectEvidenceExpired, env); err != nil {
			return err
		}
		expired = true
		return appendIncidentCustody(ctx, tx, inc.IncidentID, custody.Entry{At: p.PurgedAt, Action: custody.EvidenceExpired,
			Actor: CustodyActorService, Detail: fmt.Sprintf(
				"evidence retention ended %s (rule %s): intake's raw payloads and review's answers of incident revisions up to %d ordered deleted by afteraction.evidence.expired event %s; the signed report versions and this chain are kept",
				p.RetainUntil.Format(time.DateOnly), p.Rule, p.IncidentRevision, p.EventID)})
	})
	return expired, err
}
