package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
)

// Retention says how long the platform tables of a service keep their rows.
// The zero value of a field means its default.
type Retention struct {
	// ProcessedEvents is how long a handled event id is remembered (default
	// 120 days). It must outlast every way the same event can arrive again: the
	// longest a stream keeps a message (bus.DefaultLimits: 90 days) and the
	// duplicate window, or a late redelivery would be applied twice.
	ProcessedEvents time.Duration
	// DeadLetters is how long a dead_letters row is kept (default 90 days, as
	// long as the DLQ stream keeps its copy).
	DeadLetters time.Duration
	// Every is how often RunRetention prunes (default one hour).
	Every time.Duration
	// Batch is how many rows one DELETE removes at most (default 10000), so a
	// first prune of a large table does not hold locks for long.
	Batch int
}

// Retention defaults.
const (
	DefaultProcessedEventsRetention = 120 * 24 * time.Hour
	DefaultDeadLettersRetention     = 90 * 24 * time.Hour
)

func (r Retention) withDefaults() Retention {
	if r.ProcessedEvents <= 0 {
		r.ProcessedEvents = DefaultProcessedEventsRetention
	}
	if r.DeadLetters <= 0 {
		r.DeadLetters = DefaultDeadLettersRetention
	}
	if r.Every <= 0 {
		r.Every = time.Hour
	}
	if r.Batch <= 0 {
		r.Batch = 10000
	}
	return r
}

const (
	pruneProcessed = `DELETE FROM processed_events WHERE ctid IN (
	SELECT ctid FROM processed_events WHERE handled_at < $1 LIMIT $2)`
	pruneDeadLetters = `DELETE FROM dead_letters WHERE id IN (
	SELECT id FROM dead_letters WHERE dead_at < $1 LIMIT $2)`
	pruneSubjectTraces = `DELETE FROM subject_traces WHERE subject IN (
	SELECT subject FROM subject_traces WHERE created_at < $1 LIMIT $2)`
)

// Prune deletes, in the schema of pool, the processed_events handled (and the
// subject_traces recorded) and the dead_letters recorded before now minus their retention, a batch at a time
// until none is left, and returns how many rows of each it deleted.
func Prune(ctx context.Context, pool *pgxpool.Pool, r Retention, now time.Time) (processed, dead int64, err error) {
	r = r.withDefaults()
	if processed, err = PruneBatched(ctx, pool, pruneProcessed, now.Add(-r.ProcessedEvents), r.Batch); err != nil {
		return processed, 0, fmt.Errorf("prune processed_events: %w", err)
	}
	// A subject's trace is kept as long as the events about it are remembered.
	if _, err = PruneBatched(ctx, pool, pruneSubjectTraces, now.Add(-r.ProcessedEvents), r.Batch); err != nil {
		return processed, 0, fmt.Errorf("prune subject_traces: %w", err)
	}
	if dead, err = PruneBatched(ctx, pool, pruneDeadLetters, now.Add(-r.DeadLetters), r.Batch); err != nil {
		return processed, dead, fmt.Errorf("prune dead_letters: %w", err)
	}
	return processed, dead, nil
}

// PruneBatched runs sql, a DELETE taking (before, batch) that removes at most
// batch rows older than before, until it removes fewer than batch rows, and
// returns how many it removed in all. Each statement is its own short
// transaction, so a first prune of a large table never holds its locks long.
// Services prune their own tables with it.
func PruneBatched(ctx context.Context, pool *pgxpool.Pool, sql string, before time.Time, batch int) (int64, error) {
	var total int64
	for {
		tag, err := pool.Exec(ctx, sql, before, batch)
		if err != nil {
			return total, err
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}

// RunRetention prunes (see Prune) every r.Every until ctx is cancelled, then
// returns nil. A failed prune is logged and tried again at the next tick: it
// must not stop the service.
func RunRetention(ctx context.Context, pool *pgxpool.Pool, r Retention, log *zap.Logger) error {
	r = r.withDefaults()
	log = log.Named("retention")
	t := time.NewTicker(r.Every)
	defer t.Stop()
	for {
		processed, dead, err := Prune(ctx, pool, r, time.Now())
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("prune failed; will retry", zap.Duration("every", r.Every), zap.Error(err))
		case processed > 0 || dead > 0:
			log.Info("pruned", zap.Int64("processed_events", processed), zap.Int64("dead_letters", dead))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
