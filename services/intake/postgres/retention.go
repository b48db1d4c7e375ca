package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	pg "github.com/afteraction/afteraction/pkg/postgres"
)

// Retention says how long intake's own tables keep their rows. The platform
// tables (processed_events, dead_letters) are pruned by pkg/postgres.
type Retention struct {
	// Rejects is how long a rejects row (payload or digest) is kept.
	Rejects time.Duration
	// Inbox is how long a consumed message's key is remembered. The inbox is
	// intake's dedupe record: it must outlast the longest the INCIDENTS stream
	// keeps a message, or a late redelivery registers twice.
	Inbox time.Duration
	// Batch is how many rows one DELETE removes at most, so that a first prune
	// of a large table never holds its locks for long.
	Batch int
}

const (
	pruneRejects = `DELETE FROM rejects WHERE id IN (
	SELECT id FROM rejects WHERE received_at < $1 LIMIT $2)`
	pruneInbox = `DELETE FROM inbox WHERE ctid IN (
	SELECT ctid FROM inbox WHERE received_at < $1 LIMIT $2)`
)

// Prune deletes the rejects and the inbox keys received before now minus their
// retention, r.Batch rows a statement until none is left, and returns how many
// rows of each it deleted. A zero retention keeps that table whole.
func Prune(ctx context.Context, pool *pgxpool.Pool, r Retention, now time.Time) (rejects, inbox int64, err error) {
	if r.Batch <= 0 {
		return 0, 0, fmt.Errorf("prune intake tables: batch %d, want at least 1", r.Batch)
	}
	if r.Rejects > 0 {
		if rejects, err = pg.PruneBatched(ctx, pool, pruneRejects, now.Add(-r.Rejects), r.Batch); err != nil {
			return rejects, 0, fmt.Errorf("prune rejects: %w", err)
		}
	}
	if r.Inbox > 0 {
		if inbox, err = pg.PruneBatched(ctx, pool, pruneInbox, now.Add(-r.Inbox), r.Batch); err != nil {
			return rejects, inbox, fmt.Errorf("prune inbox: %w", err)
		}
	}
	return rejects, inbox, nil
}
