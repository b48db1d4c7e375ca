package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/services/intake/postgres"
)

// TestPruneIntakeTables: rejects and inbox keys older than their retention go,
// several batches of them, and the younger ones stay.
func TestPruneIntakeTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := newStore(t)
	now := time.Now()
	// 7 old and 2 young of each; a batch of 3 takes three statements.
	for i := range 9 {
		at := now.Add(-100 * 24 * time.Hour)
		if i >= 7 {
			at = now.Add(-time.Hour)
		}
		insertReject(t, pool, i, at)
		if _, err := pool.Exec(ctx, `INSERT INTO inbox (subject, message_id, payload_sha256, received_at) VALUES ($1, $2, $3, $4)`,
			"incidents.closed.jira", fmt.Sprintf("INC-%d", i), fmt.Sprintf("%064d", i), at); err != nil {
			t.Fatal(err)
		}
	}
	r := postgres.Retention{Rejects: 90 * 24 * time.Hour, Inbox: 90 * 24 * time.Hour, Batch: 3}
	rejects, inbox, err := postgres.Prune(ctx, pool, r, now)
	if err != nil {
		t.Fatal(err)
	}
	if rejects != 7 || inbox != 7 {
		t.Fatalf("pruned %d rejects and %d inbox keys, want 7 and 7", rejects, inbox)
	}
	for _, table := range []string{"rejects", "inbox"} {
		var left int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE received_at > $1`, now.Add(-2*time.Hour)).Scan(&left); err != nil {
			t.Fatal(err)
		}
		var all int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&all); err != nil {
			t.Fatal(err)
		}
		if left != 2 || all != 2 {
			t.Errorf("%s keeps %d rows (%d young), want the 2 young ones", table, all, left)
		}
	}
	// A second pass finds nothing; a zero retention keeps a table whole.
	if rejects, inbox, err = postgres.Prune(ctx, pool, postgres.Retention{Rejects: time.Minute, Batch: 3}, now); err != nil {
		t.Fatal(err)
	}
	if rejects != 2 || inbox != 0 {
		t.Errorf("pruned %d rejects and %d inbox keys with rejects 1m, inbox unset; want 2 and 0", rejects, inbox)
	}
	if _, _, err := postgres.Prune(ctx, pool, postgres.Retention{Rejects: time.Minute}, now); err == nil {
		t.Error("Prune with batch 0 succeeded, want an error")
	}
}

func insertReject(t *testing.T, pool *pgxpool.Pool, i int, at time.Time) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `INSERT INTO rejects (id, source, subject, received_at, reason, raw, payload_sha256)
		VALUES (gen_random_uuid(), 'jira', 'incidents.closed.jira', $1, 'invalid', $2, $3)`,
		at, []byte(fmt.Sprintf(`{"n":%d}`, i)), fmt.Sprintf("%064d", i)); err != nil {
		t.Fatal(err)
	}
}
