package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ambientKey carries the transaction a batch of work shares (see WithTx).
type ambientKey struct{}

type ambientTx struct {
	pool *pgxpool.Pool
	tx   pgx.Tx
}

// WithTx returns a context under which InTx(ctx, pool, fn), for this pool,
// runs fn in a savepoint of tx instead of a transaction of its own: fn's
// writes are rolled back alone when it fails and commit with tx when it
// succeeds. A batch consumer uses it to handle many messages in one
// transaction (one commit, one fsync) while each message's failure stays its
// own. tx must not be used concurrently, so work under ctx runs one at a time.
func WithTx(ctx context.Context, pool *pgxpool.Pool, tx pgx.Tx) context.Context {
	return context.WithValue(ctx, ambientKey{}, ambientTx{pool: pool, tx: tx})
}

// ambient returns the transaction WithTx put in ctx for pool, or nil.
func ambient(ctx context.Context, pool *pgxpool.Pool) pgx.Tx {
	a, ok := ctx.Value(ambientKey{}).(ambientTx)
	if !ok || a.pool != pool {
		return nil
	}
	return a.tx
}

// inSavepoint runs fn in a savepoint of outer and rolls back to it when fn
// fails. A savepoint that succeeded is not released: it folds into outer at
// commit, and leaving it saves a round trip per message. fn gets outer itself.
func inSavepoint(ctx context.Context, outer pgx.Tx, fn func(pgx.Tx) error) error {
	if _, err := outer.Exec(ctx, "SAVEPOINT afteraction_batch_item"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	ferr := fn(outer)
	if ferr == nil {
		return nil
	}
	if _, err := outer.Exec(ctx, "ROLLBACK TO SAVEPOINT afteraction_batch_item"); err != nil {
		return fmt.Errorf("roll back to savepoint (%v): %w", ferr, err)
	}
	return ferr
}
