package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/afteraction/afteraction/pkg/postgres"
)

// chaosSchemas are the services' schemas; each has the platform tables
// processed_events, outbox and dead_letters.
var chaosSchemas = []string{"intake", "review", "report", "tracker", "notify"}

// check reads every service's schema directly and returns the figures and
// every invariant that does not hold:
//   - each incident sent is registered exactly once, each poison message
//     rejected exactly once;
//   - each registered incident has exactly one review;
//   - no report has two rows for one version;
//   - each completed review has exactly its six action items, and no action
//     item belongs to a review that was not completed;
//   - no event is both dead-lettered and applied by a service;
//   - nothing is left unsent in any outbox.
func (h *harness) check(ctx context.Context, completed *sync.Map) (chaosReport, error) {
	var r chaosReport
	conn, err := pgx.Connect(ctx, h.cfg.DatabaseURL)
	if err != nil {
		return r, fmt.Errorf("checker: %w", err)
	}
	defer conn.Close(ctx)
	prefix := fmt.Sprintf("CHAOS-%d-%%", h.cfg.Seed%100000)
	violate := func(format string, args ...any) { r.Violations = append(r.Violations, fmt.Sprintf(format, args...)) }
	count := func(sql string, args ...any) int {
		var n int
		if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			violate("query %q: %v", sql, err)
		}
		return n
	}

	var lost, dup int
	if err := queryRows(ctx, conn, `SELECT count(*) FROM intake.incidents WHERE external_id LIKE $1 GROUP BY external_id`,
		[]any{prefix}, func(n int) {
			r.Registered++
			if n > 1 {
				dup++
			}
		}); err != nil {
		violate("registered incidents: %v", err)
	}
	if lost = h.sent() - r.Registered; lost != 0 {
		violate("%d incidents sent but not registered", lost)
	}
	if dup != 0 {
		violate("%d incidents registered more than once", dup)
	}
	for _, marker := range h.poison {
		if n := count(`SELECT count(*) FROM intake.rejects WHERE position($1 in encode(raw, 'escape')) > 0`, marker); n != 1 {
			violate("poison %s rejected %d times, want once", marker, n)
		}
	}
	r.Poison = len(h.poison)
	for _, id := range h.skewed {
		if n := count(`SELECT count(*) FROM intake.rejects WHERE position($1 in encode(raw, 'escape')) > 0`, id); n != 1 {
			violate("incident %s closed in the future rejected %d times, want once", id, n)
		}
	}
	for _, id := range h.oversized {
		if n := count(`SELECT count(*) FROM intake.rejects WHERE position($1 in encode(raw, 'escape')) > 0`, id); strings.HasSuffix(id, "-nats") && n != 1 {
			violate("near-limit incident %s rejected %d times, want once", id, n)
		}
	}
	if h.httpAccepted != 0 || h.oversizedHTTP != len(h.oversized)/2 {
		violate("oversized POSTs: %d answered 413 and %d accepted, want all %d answered 413", h.oversizedHTTP, h.httpAccepted, len(h.oversized)/2)
	}
	r.Skewed, r.Oversized = len(h.skewed), len(h.oversized)
	refused := append(slices.Clone(h.skewed), h.oversized...)
	if n := count(`SELECT count(*) FROM intake.incidents WHERE external_id = ANY($1)`, refused); n != 0 {
		violate("%d incidents registered that intake must refuse (closed in the future, or oversized)", n)
	}
	if n := count(`SELECT count(*) FROM intake.incidents WHERE closed_at > registered_at + interval '1 day' OR closed_at < detected_at`); n != 0 {
		violate("%d incidents registered with a closure in the future or before their detection (a negative duration)", n)
	}
	r.Reviews = count(`SELECT count(*) FROM review.reviews rv JOIN intake.incidents i ON i.id = rv.incident_id WHERE i.external_id LIKE $1`, prefix)
	if r.Reviews != r.Registered {
		violate("%d reviews for %d registered incidents", r.Reviews, r.Registered)
	}
	r.ReportVersions = count(`SELECT count(*) FROM report.report_versions`)
	if n := count(`SELECT count(*) FROM (SELECT 1 FROM report.report_versions GROUP BY report_id, version HAVING count(*) > 1) d`); n != 0 {
		violate("%d report versions stored twice", n)
	}
	r.Actions = count(`SELECT count(*) FROM tracker.actions`)
	var want int
	completed.Range(func(id, _ any) bool {
		want += 6
		if n := count(`SELECT count(*) FROM tracker.actions WHERE incident_id = $1`, id); n != 6 {
			violate("incident %s: %d action items, want the completed review's 6", id, n)
		}
		if n := count(`SELECT count(*) FROM report.report_versions WHERE incident_id = $1`, id); n < 1 {
			violate("incident %s: completed review without a report", id)
		}
		return true
	})
	if r.Actions != want {
		violate("%d action items in all, want %d (6 per completed review)", r.Actions, want)
	}
	for _, s := range chaosSchemas {
		sql := fmt.Sprintf(`SELECT count(*) FROM %[1]s.dead_letters d JOIN %[1]s.processed_events p ON p.event_id = d.event_id`, s)
		if n := count(sql); n != 0 {
			violate("%s: %d events both dead-lettered and applied", s, n)
		}
		r.DeadLetters += count(fmt.Sprintf(`SELECT count(*) FROM %s.dead_letters`, s))
		if _, err := conn.Exec(ctx, "SET search_path TO "+s); err != nil {
			return r, fmt.Errorf("checker: %w", err)
		}
		unsent, err := postgres.CountUnsent(ctx, conn)
		if err != nil {
			violate("%s: %v", s, err)
		}
		setAside, err := postgres.CountSetAside(ctx, conn)
		if err != nil {
			violate("%s: %v", s, err)
		}
		if unsent+setAside != 0 {
			violate("%s: %d outbox rows not published, %d set aside", s, unsent, setAside)
		}
		r.UnsentOutbox += unsent + setAside
	}
	if r.DeadLetters != 0 {
		violate("%d messages dead-lettered: the load holds no poison, so an outage or a kill dead-lettered them", r.DeadLetters)
	}
	return r, nil
}

// sent is how many distinct incidents the load generator got accepted.
func (h *harness) sent() int { return int(h.accepted.Load()) }

func queryRows(ctx context.Context, conn *pgx.Conn, sql string, args []any, each func(n int)) error {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return err
		}
		each(n)
	}
	return rows.Err()
}
