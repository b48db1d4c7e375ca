package postgres_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
)

func TestRedactMasksEveryPasswordForm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ dsn, keep string }{
		{"host=db port=5432 user=app password=kv-secret dbname=afteraction", "user=app"},
		{"host=db password = 'kv secret \\' quoted' user=app", "user=app"},
		{"password=kv-secret host=db", "host=db"},
		{"host=db sslpassword=kv-secret", "host=db"},
		{"postgres://app:url-secret@db:5432/afteraction", "db:5432"},
		{"postgres://app@db/afteraction?password=query-secret&sslmode=disable", "sslmode=disable"},
		{"postgresql://app@db/afteraction?sslpassword=query-secret", "app@db"},
	} {
		got := postgres.Redact(tc.dsn)
		if strings.Contains(got, "secret") || !strings.Contains(got, tc.keep) {
			t.Errorf("Redact(%q) = %q", tc.dsn, got)
		}
	}
}

// Issue 9 item 17: every connection runs with a statement timeout and an
// idle-in-transaction timeout, unless the DSN sets its own.
func TestOpenSetsSessionTimeouts(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	ctx := context.Background()
	for _, tc := range []struct {
		dsn, statement, idle string
	}{
		{dsn, "1min", "1min"},
		{dsn + "&statement_timeout=5000", "5s", "1min"},
	} {
		pool, err := postgres.Open(ctx, tc.dsn, "public")
		if err != nil {
			t.Fatal(err)
		}
		var statement, idle string
		err = pool.QueryRow(ctx, `SELECT current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout')`).Scan(&statement, &idle)
		pool.Close()
		if err != nil {
			t.Fatal(err)
		}
		if statement != tc.statement || idle != tc.idle {
			t.Errorf("%s: statement_timeout=%s idle_in_transaction_session_timeout=%s, want %s and %s",
				tc.dsn, statement, idle, tc.statement, tc.idle)
		}
	}
}

// Issue 9 item 17: processed_events and dead_letters do not grow forever.
func TestPruneDeletesOnlyRowsPastTheirRetention(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, pgtest.Migration{Schema: "retention", FS: fstest.MapFS{}})
	ctx := context.Background()
	now := time.Now()
	for i, age := range []time.Duration{time.Hour, 48 * time.Hour, 72 * time.Hour, 200 * 24 * time.Hour} {
		if _, err := pool.Exec(ctx, `INSERT INTO processed_events (event_id, handled_at) VALUES ($1, $2)`,
			"ev-"+string(rune('a'+i)), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO dead_letters (consumer, subject, event_id, stream, stream_seq, delivered, reason, data, dead_at)
			VALUES ('c', 's', $1, 'S', $2, 1, 'r', '', $3)`, "ev-"+string(rune('a'+i)), i+1, now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	processed, dead, err := postgres.Prune(ctx, pool, postgres.Retention{ProcessedEvents: 24 * time.Hour, DeadLetters: 60 * time.Hour, Batch: 1}, now)
	if err != nil {
		t.Fatal(err)
	}
	if processed != 3 || dead != 2 {
		t.Errorf("pruned %d processed events and %d dead letters, want 3 and 2", processed, dead)
	}
	var left []string
	rows, _ := pool.Query(ctx, `SELECT event_id FROM processed_events`)
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		left = append(left, id)
	}
	if rows.Err() != nil || len(left) != 1 || left[0] != "ev-a" {
		t.Errorf("processed_events left = %v (%v), want only the recent ev-a", left, rows.Err())
	}
	// The defaults keep everything younger than the longest stream retention.
	if processed, dead, err := postgres.Prune(ctx, pool, postgres.Retention{}, now); err != nil || processed != 0 || dead != 0 {
		t.Errorf("default retention pruned %d, %d (%v), want nothing", processed, dead, err)
	}
}
