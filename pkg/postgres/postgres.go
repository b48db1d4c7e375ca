// Package postgres holds the Postgres building blocks every afteraction service
// shares: a pool bound to the service's own schema, InTx, embedded migrations
// applied under an advisory lock, and the processed_events and outbox tables that
// make event handling exactly-once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned by stores when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by stores when a write violates a uniqueness rule.
var ErrConflict = errors.New("conflict")

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Session limits every connection gets unless the DSN sets its own (as
// statement_timeout=... in a URL's query, or in options): no statement runs
// longer than StatementTimeout, and a session idle inside a transaction for
// IdleInTransactionTimeout (a process stalled or cut off mid-transaction) is
// ended by the server, releasing its locks and its connection.
const (
	StatementTimeout         = 60 * time.Second
	IdleInTransactionTimeout = 60 * time.Second
)

// Open returns a pool for dsn whose connections use schema as their search_path,
// so a service's SQL names its own tables unqualified, with the session limits
// above. It pings the server before returning and fails if schema is not a
// plain lower-case identifier.
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
	setDefault(cfg.ConnConfig.RuntimeParams, "statement_timeout", StatementTimeout)
	setDefault(cfg.ConnConfig.RuntimeParams, "idle_in_transaction_session_timeout", IdleInTransactionTimeout)
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

func setDefault(params map[string]string, key string, d time.Duration) {
	if _, set := params[key]; !set && !strings.Contains(params["options"], key) {
		params[key] = fmt.Sprint(d.Milliseconds())
	}
}

// secretParam matches the value of a password in a key=value connection string.
var secretParam = regexp.MustCompile(`(?i)(^|\s)((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// Redact returns dsn, a URL or a key=value connection string, with every
// password masked (the URL's user password and password or sslpassword
// parameters), fit for a log line or an error message. A URL that does not
// parse is returned as "(unparseable)".
func Redact(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return secretParam.ReplaceAllString(dsn, "${1}${2}xxxxx")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable)"
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
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
