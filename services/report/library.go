package report

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// LibraryEntry is one reviewed incident in the case library: what its
// latest review concluded, for training new team members (NIST SP 800-61 §3.4.1).
type LibraryEntry struct {
	IncidentID    string    `json:"incident_id"`
	ReportID      string    `json:"report_id"`
	LatestVersion int       `json:"latest_version"`
	DownloadPath  string    `json:"download_path"`
	Title         string    `json:"title"`
	Summary       string    `json:"summary"`
	Findings      string    `json:"findings"`
	Lessons       string    `json:"lessons"`
	Category      string    `json:"category"`
	Subcategory   string    `json:"subcategory"`
	Severity      string    `json:"severity"`
	Exercise      bool      `json:"exercise"`
	Tags          []string  `json:"tags"`
	Assets        []string  `json:"assets"`
	ClosedAt      time.Time `json:"closed_at"`
	// Rank orders matches of a free-text query (higher is better); 0 without one.
	Rank float64 `json:"rank"`
}

// LibraryQuery filters the case library; empty fields match everything.
// Text is a web-search style query ("phishing -test", "\"mfa fatigue\"")
// over title, summary, findings and lessons; Tag and Asset match one tag or
// one asset name or identifier, case-insensitively; From and To bound the
// closure time to [From, To).
type LibraryQuery struct {
	Text, Category, Severity, Tag, Asset string
	From, To                             *time.Time
	Limit                                int
}

// DefaultLibraryLimit and MaxLibraryLimit bound one page of the library.
const (
	DefaultLibraryLimit = 50
	MaxLibraryLimit     = 200
)

// Library searches the case library.
type Library interface {
	SearchLibrary(ctx context.Context, q LibraryQuery) ([]LibraryEntry, error)
}

var _ Library = (*PostgresStore)(nil)

// SearchLibrary implements Library: entries whose incident has a published
// report, best match first for a text query, otherwise newest closure first.
func (s *PostgresStore) SearchLibrary(ctx context.Context, q LibraryQuery) ([]LibraryEntry, error) {
	var where []string
	args := []any{}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	rank := "0::float8"
	order := "l.closed_at DESC, l.incident_id"
	if t := strings.TrimSpace(q.Text); t != "" {
		tq := "websearch_to_tsquery('english', " + arg(t) + ")"
		where = append(where, "l.document @@ "+tq)
		rank = "ts_rank(l.document, " + tq + ")::float8"
		order = "rank DESC, " + order
	}
	if q.Category != "" {
		where = append(where, "lower(l.category) = lower("+arg(q.Category)+")")
	}
	if q.Severity != "" {
		where = append(where, "l.severity = "+arg(q.Severity))
	}
	if q.Tag != "" {
		where = append(where, "l.tags @> ARRAY[lower("+arg(q.Tag)+")]")
	}
	if q.Asset != "" {
		where = append(where, "l.assets @> ARRAY[lower("+arg(q.Asset)+")]")
	}
	if q.From != nil {
		where = append(where, "l.closed_at >= "+arg(*q.From))
	}
	if q.To != nil {
		where = append(where, "l.closed_at < "+arg(*q.To))
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxLibraryLimit {
		limit = DefaultLibraryLimit
	}
	sql := `SELECT l.incident_id::text, r.report_id::text, v.latest, l.title, l.summary, l.findings, l.lessons,
	l.category, l.subcategory, l.severity, l.exercise, l.tags, l.assets, l.closed_at, ` + rank + ` AS rank
FROM library_entries l
JOIN reports r USING (incident_id)
JOIN LATERAL (SELECT max(version) AS latest FROM report_versions WHERE report_id = r.report_id) v ON v.latest IS NOT NULL`
	if len(where) > 0 {
		sql += "\nWHERE " + strings.Join(where, " AND ")
	}
	sql += "\nORDER BY " + order + " LIMIT " + arg(limit)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("search library: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (LibraryEntry, error) {
		var e LibraryEntry
		err := row.Scan(&e.IncidentID, &e.ReportID, &e.LatestVersion, &e.Title, &e.Summary, &e.Findings, &e.Lessons,
			&e.Category, &e.Subcategory, &e.Severity, &e.Exercise, &e.Tags, &e.Assets, &e.ClosedAt, &e.Rank)
		e.DownloadPath = Version{ReportID: e.ReportID, Version: e.LatestVersion}.DownloadPath()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("search library: %w", err)
	}
	return entries, nil
}
