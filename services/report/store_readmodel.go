package report

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
)

const upsertIncident = `INSERT INTO incidents (incident_id, revision, severity, category, exercise, started_at,
	detected_at, closed_at, registered_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (incident_id) DO UPDATE SET revision = excluded.revision, severity = excluded.severity,
	category = excluded.category, exercise = excluded.exercise, started_at = excluded.started_at,
	detected_at = excluded.detected_at, closed_at = excluded.closed_at, registered_at = excluded.registered_at
WHERE incidents.revision < excluded.revision`

// upsertIncidentFromReview records the incident a review carries, as revision
// rc.IncidentRevision, so metrics know it even if incident.registered is late,
// and what the programme figures and the case library need from the review.
func upsertIncidentFromReview(ctx context.Context, tx pgx.Tx, rc events.ReviewCompleted) error {
	inc := rc.Incident
	if _, err := tx.Exec(ctx, upsertIncident, rc.IncidentID, rc.IncidentRevision, string(inc.Severity), inc.Category,
		inc.Exercise, inc.Timestamps.StartedAt, inc.Timestamps.DetectedAt, inc.Timestamps.ClosedAt, rc.CompletedAt); err != nil {
		return fmt.Errorf("record incident %s: %w", rc.IncidentID, err)
	}
	if err := recordIncidentMilestones(ctx, tx, rc.IncidentID, rc.IncidentRevision, inc); err != nil {
		return err
	}
	return recordReviewFacts(ctx, tx, rc)
}

func (s *PostgresStore) apply(ctx context.Context, eventID string, fn func(tx pgx.Tx) error) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		fresh, err := pg.MarkProcessed(ctx, tx, eventID)
		if err != nil || !fresh {
			return err
		}
		return fn(tx)
	})
}

// ApplyIncidentRegistered implements ReadModel.
func (s *PostgresStore) ApplyIncidentRegistered(ctx context.Context, eventID string, e events.IncidentRegistered) error {
	return s.apply(ctx, eventID, func(tx pgx.Tx) error {
		inc := e.Incident
		if _, err := tx.Exec(ctx, upsertIncident, e.IncidentID, e.Revision, string(inc.Severity), inc.Category,
			inc.Exercise, inc.Timestamps.StartedAt, inc.Timestamps.DetectedAt, inc.Timestamps.ClosedAt, e.RegisteredAt); err != nil {
			return fmt.Errorf("record incident %s: %w", e.IncidentID, err)
		}
		return recordIncidentMilestones(ctx, tx, e.IncidentID, e.Revision, inc)
	})
}

const upsertIncidents = `INSERT INTO incidents (incident_id, revision, severity, category, exercise, started_at,
	detected_at, closed_at, registered_at)
SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::bool[], $6::timestamptz[], $7::timestamptz[],
	$8::timestamptz[], $9::timestamptz[])
ON CONFLICT (incident_id) DO UPDATE SET revision = excluded.revision, severity = excluded.severity,
	category = excluded.category, exercise = excluded.exercise, started_at = excluded.started_at,
	detected_at = excluded.detected_at, closed_at = excluded.closed_at, registered_at = excluded.registered_at
WHERE incidents.revision < excluded.revision`

// RecordIncidents is the set-based path of the registered-incident consumer
// (a bus.BatchWriter): in tx, the batch's transaction, it records the first
// message of each incident of the batch exactly as ApplyIncidentRegistered
// would, in two round trips for the whole batch (processed_events, then the
// upsert and each incident's facts pipelined), and leaves the later
// messages of an incident, and every message when one was not decoded ahead
// (bus.PrepareTyped), to the per-message handler.
func (s *PostgresStore) RecordIncidents(ctx context.Context, tx pgx.Tx, ms []*bus.Message) ([]*bus.Message, error) {
	var taken, rest []*bus.Message
	seen := map[string]bool{}
	for _, m := range ms {
		e, ok := m.Prepared.(events.IncidentRegistered)
		if !ok {
			return ms, nil
		}
		if seen[e.IncidentID] {
			rest = append(rest, m)
			continue
		}
		seen[e.IncidentID] = true
		taken = append(taken, m)
	}
	ids := make([]string, len(taken))
	for i, m := range taken {
		ids[i] = m.Envelope.ID
	}
	fresh, err := pg.MarkProcessedBatch(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	var c struct {
		ids, severities, categories []string
		revisions                   []int
		exercise                    []bool
		started, detected           []*time.Time
		closed, registered          []time.Time
	}
	batch := &pgx.Batch{}
	var facts []*pgx.QueuedQuery
	for _, m := range taken {
		if !fresh[m.Envelope.ID] {
			continue
		}
		e := m.Prepared.(events.IncidentRegistered)
		inc, ts := e.Incident, e.Incident.Timestamps
		c.ids, c.revisions, c.severities = append(c.ids, e.IncidentID), append(c.revisions, e.Revision), append(c.severities, string(inc.Severity))
		c.categories, c.exercise = append(c.categories, inc.Category), append(c.exercise, inc.Exercise)
		c.started, c.detected, c.closed = append(c.started, ts.StartedAt), append(c.detected, ts.DetectedAt), append(c.closed, ts.ClosedAt)
		c.registered = append(c.registered, e.RegisteredAt)
		facts = append(facts, &pgx.QueuedQuery{SQL: updateIncidentFacts, Arguments: incidentFactArgs(e.IncidentID, e.Revision, inc)})
	}
	if len(c.ids) == 0 {
		return rest, nil
	}
	batch.Queue(upsertIncidents, c.ids, c.revisions, c.severities, c.categories, c.exercise, c.started, c.detected,
		c.closed, c.registered)
	batch.QueuedQueries = append(batch.QueuedQueries, facts...)
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("record %d incidents: %w", len(c.ids), err)
	}
	return rest, nil
}

// ApplyActionCreated implements ReadModel.
func (s *PostgresStore) ApplyActionCreated(ctx context.Context, eventID string, e events.ActionCreated) error {
	return s.apply(ctx, eventID, func(tx pgx.Tx) error {
		var due any
		if e.DueDate != "" {
			due = e.DueDate
		}
		_, err := tx.Exec(ctx, `INSERT INTO actions (action_id, incident_id, category, priority, due_date, status, status_at, created_at)
VALUES ($1, $2, $3, $4, $5::date, $6, $7, $7)
ON CONFLICT (action_id) DO UPDATE SET category = excluded.category, priority = excluded.priority,
	due_date = excluded.due_date, created_at = excluded.created_at`,
			e.ActionID, e.IncidentID, string(e.Category), string(e.Priority), due, string(e.Status), e.CreatedAt)
		if err != nil {
			return fmt.Errorf("record action %s: %w", e.ActionID, err)
		}
		return nil
	})
}

// ApplyActionUpdated implements ReadModel. An update that arrives
// before its action's creation creates the row; an older change never
// overwrites a newer one.
func (s *PostgresStore) ApplyActionUpdated(ctx context.Context, eventID string, e events.ActionUpdated) error {
	return s.apply(ctx, eventID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO actions (action_id, incident_id, status, status_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (action_id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at
WHERE actions.status_at <= excluded.status_at`, e.ActionID, e.IncidentID, string(e.Status), e.ChangedAt)
		if err != nil {
			return fmt.Errorf("record action %s update: %w", e.ActionID, err)
		}
		return nil
	})
}

// ApplyActionOverdue implements ReadModel.
func (s *PostgresStore) ApplyActionOverdue(ctx context.Context, eventID string, e events.ActionOverdue) error {
	return s.apply(ctx, eventID, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO actions (action_id, incident_id, status, status_at, due_date, overdue_at)
VALUES ($1, $2, $3, $4, $5::date, $4)
ON CONFLICT (action_id) DO UPDATE SET overdue_at = greatest(actions.overdue_at, excluded.overdue_at)`,
			e.ActionID, e.IncidentID, string(e.Status), e.DetectedAt, e.DueDate)
		if err != nil {
			return fmt.Errorf("record action %s overdue: %w", e.ActionID, err)
		}
		return nil
	})
}

// ProgrammeMetrics implements ReadModel: incidents closed in [from, to).
func (s *PostgresStore) ProgrammeMetrics(ctx context.Context, from, to time.Time) (ProgrammeMetrics, error) {
	m := ProgrammeMetrics{From: from, To: to,
		Incidents: IncidentCounts{BySeverity: map[string]int{}, ByCategory: map[string]int{}}}
	rows, err := s.pool.Query(ctx, `SELECT severity, category, exercise, count(*) FROM incidents
WHERE closed_at >= $1 AND closed_at < $2 GROUP BY severity, category, exercise`, from, to)
	if err != nil {
		return m, fmt.Errorf("count incidents: %w", err)
	}
	for rows.Next() {
		var sev, cat string
		var ex bool
		var n int
		if err := rows.Scan(&sev, &cat, &ex, &n); err != nil {
			rows.Close()
			return m, fmt.Errorf("count incidents: %w", err)
		}
		if cat == "" {
			cat = "uncategorised"
		}
		m.Incidents.Total += n
		m.Incidents.BySeverity[sev] += n
		m.Incidents.ByCategory[cat] += n
		if ex {
			m.Incidents.Exercises += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("count incidents: %w", err)
	}
	stats := func(q string) (DurationStats, error) {
		var st DurationStats
		err := s.pool.QueryRow(ctx, q, from, to).Scan(&st.Count, &st.MeanSeconds, &st.MedianSeconds)
		return st, err
	}
	if m.DetectedToClosed, err = stats(`SELECT count(*), avg(d), percentile_cont(0.5) WITHIN GROUP (ORDER BY d)
FROM (SELECT extract(epoch FROM closed_at - detected_at)::float8 AS d FROM incidents
	WHERE closed_at >= $1 AND closed_at < $2 AND detected_at IS NOT NULL) x`); err != nil {
		return m, fmt.Errorf("time detected to closed: %w", err)
	}
	if m.ClosedToReviewed, err = stats(`SELECT count(*), avg(d), percentile_cont(0.5) WITHIN GROUP (ORDER BY d)
FROM (SELECT extract(epoch FROM r.completed_at - i.closed_at)::float8 AS d FROM incidents i
	JOIN review_completions r USING (incident_id) WHERE i.closed_at >= $1 AND i.closed_at < $2) x`); err != nil {
		return m, fmt.Errorf("time closed to reviewed: %w", err)
	}
	a := &m.Actions
	err = s.pool.QueryRow(ctx, `SELECT count(*),
	count(*) FILTER (WHERE a.status = 'open'), count(*) FILTER (WHERE a.status = 'in_progress'),
	count(*) FILTER (WHERE a.status = 'done'), count(*) FILTER (WHERE a.status = 'wont_do'),
	count(*) FILTER (WHERE a.overdue_at IS NOT NULL AND a.status NOT IN ('done', 'wont_do'))
FROM actions a JOIN incidents i USING (incident_id) WHERE i.closed_at >= $1 AND i.closed_at < $2`, from, to).
		Scan(&a.Created, &a.Open, &a.InProgress, &a.Done, &a.WontDo, &a.Overdue)
	if err != nil {
		return m, fmt.Errorf("count actions: %w", err)
	}
	return m, nil
}
