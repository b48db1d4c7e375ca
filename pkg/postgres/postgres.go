// Package postgres holds the Postgres building blocks every afteraction service
// shares: a pool bound to the service's own schema, InTx, embedded migrations
// applied under an advisory lock, and the processed_events and outbox tables that
// make event handling exactly-once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned by stores when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by stores when a write violates a uniqueness rule.
var ErrConflict = errors.New("conflict")

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Open returns a pool for dsn whose connections use schema as their search_path,
// so a service's SQL names its own tables unqualified. It pings the server
// before returning and fails if schema is not a plain lower-case identifier.
func Open(ctx context.Context, dsn, schema string) (*pgxpool.Pool, error) {
	if !identRE.MatchString(schema) {
		return nil, fmt.Errorf("schema %q: not a lower-case identifier", schema)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = "afteraction-" + schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping postgres: %w", err)
	}
	return pool, nil
}

// InTx runs fn in a transaction: it commits when fn returns nil and rolls back
// otherwise, returning fn's error unchanged (wrapped only for commit failures).
// Under a context from WithTx for the same pool, fn runs in a savepoint of
// that transaction instead and its writes commit with it.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	if outer := ambient(ctx, pool); outer != nil {
		return inSavepoint(ctx, outer, fn)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// IsUniqueViolation reports whether err is Postgres error 23505.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// IsNoRows reports whether err means a query returned no row.
func IsNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
