package report

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
)

const updateIncidentFacts = `UPDATE incidents SET subcategory = $3, contained_at = $4, recovered_at = $5,
	reported_at = $6, impact_assessed_at = $7, eradicated_at = $8, resolved_at = $9, management_notified_at = $10,
	external_notified_at = $11, labour_hours = $12, cost_amount = $13, cost_currency = $14, impact_initial = $15,
	impact_final = $16, records_affected = $17, downtime_minutes = $18, root_cause = $19, assets = $20, playbook = $21
WHERE incident_id = $1 AND revision = $2`

// recordIncidentMilestones stores what the programme figures measure of inc
// (milestones, notifications, labour, cost, impact, root cause, assets,
// playbook) on the incident row, if that row holds this revision (an older
// revision arriving late changes nothing).
func recordIncidentMilestones(ctx context.Context, tx pgx.Tx, incidentID string, revision int, inc events.IncidentClosed) error {
	if _, err := tx.Exec(ctx, updateIncidentFacts, incidentFactArgs(incidentID, revision, inc)...); err != nil {
		return fmt.Errorf("record milestones of incident %s: %w", incidentID, err)
	}
	return nil
}

// incidentFactArgs are the arguments of updateIncidentFacts for revision of inc.
func incidentFactArgs(incidentID string, revision int, inc events.IncidentClosed) []any {
	ts := inc.Timestamps
	assessed := ts.ImpactAssessedAt
	var labour *float64
	for _, l := range inc.Labour {
		if labour == nil {
			labour = new(float64)
		}
		*labour += l.Hours
	}
	var amount, currency, initial, final, playbook string
	var records, downtime *int64
	if im := inc.Impact; im != nil {
		if im.EstimatedCost != nil {
			amount, currency = im.EstimatedCost.Amount, im.EstimatedCost.Currency
		}
		if im.Initial != nil {
			initial = string(im.Initial.Level)
			if assessed == nil {
				assessed = im.Initial.AssessedAt
			}
		}
		if im.Final != nil {
			final = string(im.Final.Level)
		}
		records, downtime = im.RecordsAffected, im.DowntimeMinutes
	}
	if inc.Playbook != nil {
		playbook = inc.Playbook.Name
	}
	management, external := notifiedAt(inc.Notifications)
	return []any{incidentID, revision, inc.Subcategory, ts.ContainedAt, ts.RecoveredAt,
		ts.ReportedAt, assessed, ts.EradicatedAt, ts.ResolvedAt, management, external, labour, amount, currency,
		initial, final, records, downtime, inc.RootCause, assetsOf(inc), playbook}
}

// externalAudiences are the notified parties outside the organisation.
var externalAudiences = []events.Audience{events.AudienceRegulator, events.AudienceLawEnforcement,
	events.AudienceCustomers, events.AudiencePartners}

// notifiedAt returns the earliest notification of management and of an
// outside party (nil when none has a time).
func notifiedAt(ns []events.Notification) (management, external *time.Time) {
	earliest := func(cur, t *time.Time) *time.Time {
		if cur == nil || t.Before(*cur) {
			return t
		}
		return cur
	}
	for _, n := range ns {
		switch {
		case n.At == nil:
		case n.Audience == events.AudienceManagement:
			management = earliest(management, n.At)
		case slices.Contains(externalAudiences, n.Audience):
			external = earliest(external, n.At)
		}
	}
	return management, external
}

// assetsOf is the lower-cased, deduplicated names and identifiers of the
// assets inc affected.
func assetsOf(inc events.IncidentClosed) []string {
	set := []string{}
	for _, a := range inc.AffectedAssets {
		for _, v := range []string{a.Name, a.Identifier} {
			v = strings.ToLower(strings.TrimSpace(v))
			if v != "" && !slices.Contains(set, v) {
				set = append(set, v)
			}
		}
	}
	return set
}

// LessonTopics are the questionnaire topics whose text answers are the
// lessons a library entry shows and searches.
var LessonTopics = []string{"do_differently", "training", "preventive_measures", "containment_eradication",
	"precursors_indicators", "tools_resources"}

// recordReviewFacts stores what the programme figures and the case library
// need from a completed review: its rating answers and its library entry.
// Only the latest amendment is kept; an older one arriving late changes nothing.
func recordReviewFacts(ctx context.Context, tx pgx.Tx, rc events.ReviewCompleted) error {
	e := libraryEntryOf(rc)
	tag, err := tx.Exec(ctx, `INSERT INTO library_entries (incident_id, review_id, amendment, title, summary, findings,
	lessons, category, subcategory, severity, exercise, tags, assets, closed_at, completed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (incident_id) DO UPDATE SET review_id = excluded.review_id, amendment = excluded.amendment,
	title = excluded.title, summary = excluded.summary, findings = excluded.findings, lessons = excluded.lessons,
	category = excluded.category, subcategory = excluded.subcategory, severity = excluded.severity,
	exercise = excluded.exercise, tags = excluded.tags, assets = excluded.assets, closed_at = excluded.closed_at,
	completed_at = excluded.completed_at
WHERE library_entries.amendment <= excluded.amendment`,
		rc.IncidentID, rc.ReviewID, rc.Amendment, e.Title, e.Summary, e.Findings, e.Lessons, e.Category, e.Subcategory,
		e.Severity, e.Exercise, e.Tags, e.Assets, e.ClosedAt, rc.CompletedAt)
	if err != nil {
		return fmt.Errorf("record library entry of incident %s: %w", rc.IncidentID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM review_ratings WHERE incident_id = $1`, rc.IncidentID); err != nil {
		return fmt.Errorf("replace ratings of incident %s: %w", rc.IncidentID, err)
	}
	for _, r := range ratingsOf(rc) {
		if _, err := tx.Exec(ctx, `INSERT INTO review_ratings (incident_id, question_id, topic, rating_sum, rating_count)
VALUES ($1, $2, $3, $4, $5)`, rc.IncidentID, r.QuestionID, r.Topic, r.Sum, r.Count); err != nil {
			return fmt.Errorf("record rating %s of incident %s: %w", r.QuestionID, rc.IncidentID, err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM review_choices WHERE incident_id = $1`, rc.IncidentID); err != nil {
		return fmt.Errorf("replace choices of incident %s: %w", rc.IncidentID, err)
	}
	for _, c := range choicesOf(rc) {
		if _, err := tx.Exec(ctx, `INSERT INTO review_choices (incident_id, question_id, choice, answers)
VALUES ($1, $2, $3, $4)`, rc.IncidentID, c.QuestionID, c.Choice, c.Answers); err != nil {
			return fmt.Errorf("record choice %s of incident %s: %w", c.QuestionID, rc.IncidentID, err)
		}
	}
	return nil
}

type choiceCount struct {
	QuestionID, Choice string
	Answers            int
}

// choicesOf counts the answers of rc to each choice question, per choice,
// in question order then first answer.
func choicesOf(rc events.ReviewCompleted) []choiceCount {
	var out []choiceCount
	for _, q := range rc.Questions {
		if q.Kind != events.QuestionChoice {
			continue
		}
		start := len(out)
		for _, resp := range rc.Responses {
			for _, a := range resp.Answers {
				if a.QuestionID != q.ID || a.Choice == "" {
					continue
				}
				i := slices.IndexFunc(out[start:], func(c choiceCount) bool { return c.Choice == a.Choice })
				if i < 0 {
					out = append(out, choiceCount{QuestionID: q.ID, Choice: a.Choice})
					i = len(out) - 1 - start
				}
				out[start+i].Answers++
			}
		}
	}
	return out
}

// ProcedureQuestion reports whether a questionnaire question asks whether the
// documented procedures were followed (team_performance.procedures_followed).
func ProcedureQuestion(questionID string) bool {
	return strings.HasPrefix(questionID, "team_performance.") && strings.HasSuffix(questionID, "procedures_followed")
}

type questionRatings struct {
	QuestionID, Topic string
	Sum, Count        int
}

// ratingsOf sums the rating answers of rc per rating question, in question order.
func ratingsOf(rc events.ReviewCompleted) []questionRatings {
	var out []questionRatings
	for _, q := range rc.Questions {
		if q.Kind != events.QuestionRating {
			continue
		}
		r := questionRatings{QuestionID: q.ID, Topic: q.Topic}
		for _, resp := range rc.Responses {
			for _, a := range resp.Answers {
				if a.QuestionID == q.ID && a.Rating != nil {
					r.Sum += *a.Rating
					r.Count++
				}
			}
		}
		if r.Count > 0 {
			out = append(out, r)
		}
	}
	return out
}

// libraryEntryOf is the library entry of a completed review: tags and asset
// names lower-cased and deduplicated, findings and lessons as searchable text.
func libraryEntryOf(rc events.ReviewCompleted) LibraryEntry {
	inc := rc.Incident
	e := LibraryEntry{IncidentID: rc.IncidentID, Title: inc.Title, Summary: rc.Summary, Category: inc.Category,
		Subcategory: inc.Subcategory, Severity: string(inc.Severity), Exercise: inc.Exercise,
		ClosedAt: inc.Timestamps.ClosedAt, Tags: []string{}, Assets: []string{}}
	if e.Summary == "" {
		e.Summary = inc.Summary
	}
	add := func(set []string, v string) []string {
		v = strings.ToLower(strings.TrimSpace(v))
		if v == "" || slices.Contains(set, v) {
			return set
		}
		return append(set, v)
	}
	for _, t := range inc.Tags {
		e.Tags = add(e.Tags, t)
	}
	for _, a := range inc.AffectedAssets {
		e.Assets = add(e.Assets, a.Name)
		e.Assets = add(e.Assets, a.Identifier)
	}
	var findings []string
	for _, f := range rc.Findings {
		findings = append(findings, strings.TrimSpace(f.Summary+" "+f.Detail))
	}
	e.Findings = strings.Join(findings, "\n")
	lessonQuestion := map[string]bool{}
	for _, q := range rc.Questions {
		if q.Kind == events.QuestionText && slices.Contains(LessonTopics, q.Topic) {
			lessonQuestion[q.ID] = true
		}
	}
	var lessons []string
	for _, resp := range rc.Responses {
		for _, a := range resp.Answers {
			if lessonQuestion[a.QuestionID] && strings.TrimSpace(a.Text) != "" {
				lessons = append(lessons, strings.TrimSpace(a.Text))
			}
		}
	}
	e.Lessons = strings.Join(lessons, "\n")
	return e
}

const selectIncidentFacts = `SELECT i.incident_id::text, i.severity, i.category, i.subcategory, i.exercise,
	i.started_at, i.detected_at, i.reported_at, i.impact_assessed_at, i.contained_at, i.eradicated_at, i.recovered_at,
	i.resolved_at, i.management_notified_at, i.external_notified_at, i.closed_at, i.registered_at, c.completed_at,
	i.labour_hours, i.cost_amount, i.cost_currency, i.impact_initial, i.impact_final, i.records_affected,
	i.downtime_minutes, i.root_cause, i.assets, i.playbook
FROM incidents i LEFT JOIN review_completions c USING (incident_id)
WHERE i.closed_at >= $1 AND i.closed_at < $2
ORDER BY i.closed_at, i.incident_id`

const selectRatingFacts = `SELECT r.incident_id::text, r.question_id, r.rating_sum, r.rating_count
FROM review_ratings r JOIN incidents i USING (incident_id)
WHERE i.closed_at >= $1 AND i.closed_at < $2`

const selectChoiceFacts = `SELECT r.incident_id::text, r.question_id, r.choice, r.answers
FROM review_choices r JOIN incidents i USING (incident_id)
WHERE i.closed_at >= $1 AND i.closed_at < $2`

const selectActionFacts = `SELECT a.action_id::text, a.incident_id::text, a.status, a.status_at, a.created_at,
	a.overdue_at IS NOT NULL AND a.status NOT IN ('done', 'wont_do'), a.due_date::timestamp AT TIME ZONE 'UTC'
FROM actions a JOIN incidents i USING (incident_id)
WHERE i.closed_at >= $1 AND i.closed_at < $2`

// ProgrammeFacts implements ProgrammeSource: the incidents closed in
// [from, to) and their actions.
func (s *PostgresStore) ProgrammeFacts(ctx context.Context, from, to time.Time) ([]IncidentFacts, []ActionFacts, error) {
	rows, err := s.pool.Query(ctx, selectIncidentFacts, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("read incident facts: %w", err)
	}
	incidents, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (IncidentFacts, error) {
		var f IncidentFacts
		err := row.Scan(&f.IncidentID, &f.Severity, &f.Category, &f.Subcategory, &f.Exercise, &f.StartedAt,
			&f.DetectedAt, &f.ReportedAt, &f.ImpactAssessedAt, &f.ContainedAt, &f.EradicatedAt, &f.RecoveredAt,
			&f.ResolvedAt, &f.ManagementNotifiedAt, &f.ExternalNotifiedAt, &f.ClosedAt, &f.RegisteredAt,
			&f.ReviewCompletedAt, &f.LabourHours, &f.CostAmount, &f.CostCurrency, &f.InitialImpact, &f.FinalImpact,
			&f.RecordsAffected, &f.DowntimeMinutes, &f.RootCause, &f.Assets, &f.Playbook)
		return f, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read incident facts: %w", err)
	}
	byID := make(map[string]*IncidentFacts, len(incidents))
	for i := range incidents {
		byID[incidents[i].IncidentID] = &incidents[i]
	}
	rows, err = s.pool.Query(ctx, selectRatingFacts, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("read rating facts: %w", err)
	}
	var id, question string
	var sum, count int
	_, err = pgx.ForEachRow(rows, []any{&id, &question, &sum, &count}, func() error {
		if f := byID[id]; f != nil {
			if f.Ratings == nil {
				f.Ratings = map[string]RatingTotal{}
			}
			f.Ratings[question] = RatingTotal{Sum: sum, Count: count}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read rating facts: %w", err)
	}
	rows, err = s.pool.Query(ctx, selectChoiceFacts, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("read choice facts: %w", err)
	}
	var choice string
	var answers int
	_, err = pgx.ForEachRow(rows, []any{&id, &question, &choice, &answers}, func() error {
		if f := byID[id]; f != nil && ProcedureQuestion(question) {
			if f.ProcedureAnswers == nil {
				f.ProcedureAnswers = map[string]int{}
			}
			f.ProcedureAnswers[choice] += answers
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read choice facts: %w", err)
	}
	rows, err = s.pool.Query(ctx, selectActionFacts, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("read action facts: %w", err)
	}
	actions, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ActionFacts, error) {
		var a ActionFacts
		err := row.Scan(&a.ActionID, &a.IncidentID, &a.Status, &a.StatusAt, &a.CreatedAt, &a.Overdue, &a.DueDate)
		return a, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read action facts: %w", err)
	}
	return incidents, actions, nil
}

var _ ProgrammeReportStore = (*PostgresStore)(nil)

const programmeReportCols = `report_id::text, version, period, label, period_start, period_end, incidents, event_id,
	pdf_sha256, data_sha256, size_bytes, pages, object_bucket, object_key, signature, key_id, cert_sha256, published_at`

func scanProgrammeReport(row pgx.Row, extra ...any) (ProgrammeReportVersion, error) {
	var v ProgrammeReportVersion
	err := row.Scan(append([]any{&v.ReportID, &v.Version, &v.Period, &v.Label, &v.Start, &v.End, &v.Incidents, &v.EventID,
		&v.PDFSHA256, &v.DataSHA256, &v.SizeBytes, &v.Pages, &v.ObjectBucket, &v.ObjectKey, &v.Signature, &v.KeyID,
		&v.CertSHA256, &v.PublishedAt}, extra...)...)
	if pg.IsNoRows(err) {
		return v, ErrNotFound
	}
	return v, err
}

// PublishProgrammeReport implements ProgrammeReportStore. Concurrent
// publications of one period queue on a transaction-scoped advisory lock.
func (s *PostgresStore) PublishProgrammeReport(ctx context.Context, reportID, dataSHA256 string,
	build func(ctx context.Context, version int) (ProgrammeRelease, error)) (ProgrammeReportVersion, bool, error) {
	var (
		out     ProgrammeReportVersion
		created bool
	)
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('programme-report/' || $1, 0))`, reportID); err != nil {
			return fmt.Errorf("lock programme report %s: %w", reportID, err)
		}
		latest, err := scanProgrammeReport(tx.QueryRow(ctx, `SELECT `+programmeReportCols+` FROM programme_reports
WHERE report_id = $1 ORDER BY version DESC LIMIT 1`, reportID))
		switch {
		case err == nil && latest.DataSHA256 == dataSHA256:
			out = latest
			return nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return fmt.Errorf("latest version of programme report %s: %w", reportID, err)
		}
		r, err := build(ctx, latest.Version+1)
		if err != nil {
			return err
		}
		v := r.Version
		if _, err := tx.Exec(ctx, `INSERT INTO programme_reports (report_id, version, period, label, period_start, period_end,
	incidents, event_id, pdf_sha256, data_sha256, size_bytes, pages, object_bucket, object_key, signature, key_id,
	cert_sha256, published_at, pdf)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			v.ReportID, v.Version, string(v.Period), v.Label, v.Start, v.End, v.Incidents, v.EventID, v.PDFSHA256,
			v.DataSHA256, v.SizeBytes, v.Pages, v.ObjectBucket, v.ObjectKey, v.Signature, v.KeyID, v.CertSHA256,
			v.PublishedAt, r.PDF); err != nil {
			return fmt.Errorf("insert programme report %s version %d: %w", v.ReportID, v.Version, err)
		}
		if err := pg.Enqueue(ctx, tx, events.SubjectProgrammeReportPublished, r.Event); err != nil {
			return err
		}
		out, created = v, true
		return nil
	})
	return out, created, err
}

// ProgrammeReports implements ProgrammeReportStore.
func (s *PostgresStore) ProgrammeReports(ctx context.Context) ([]ProgrammeReportVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+programmeReportCols+` FROM programme_reports
ORDER BY period_start DESC, period, version DESC LIMIT 1000`)
	if err != nil {
		return nil, fmt.Errorf("list programme reports: %w", err)
	}
	vs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ProgrammeReportVersion, error) { return scanProgrammeReport(r) })
	if err != nil {
		return nil, fmt.Errorf("list programme reports: %w", err)
	}
	return vs, nil
}

// ProgrammeReportPDF implements ProgrammeReportStore.
func (s *PostgresStore) ProgrammeReportPDF(ctx context.Context, reportID string, n int) (ProgrammeReportVersion, []byte, error) {
	var doc []byte
	v, err := scanProgrammeReport(s.pool.QueryRow(ctx, `SELECT `+programmeReportCols+`, pdf FROM programme_reports
WHERE report_id::text = $1 AND ($2 = 0 OR version = $2) ORDER BY version DESC LIMIT 1`, reportID, n), &doc)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return v, nil, fmt.Errorf("get programme report %s version %d: %w", reportID, n, err)
	}
	return v, doc, err
}

// ProgrammeReportByDigest returns the programme report version whose PDF
// has the given SHA-256; ErrNotFound when there is none.
func (s *PostgresStore) ProgrammeReportByDigest(ctx context.Context, pdfSHA256 string) (ProgrammeReportVersion, error) {
	v, err := scanProgrammeReport(s.pool.QueryRow(ctx, `SELECT `+programmeReportCols+` FROM programme_reports
WHERE pdf_sha256 = $1 ORDER BY published_at LIMIT 1`, pdfSHA256))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return v, fmt.Errorf("find programme report by digest: %w", err)
	}
	return v, err
}
