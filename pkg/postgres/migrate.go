package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed platform/*.sql
var platformFS embed.FS

// Migrate brings schema up to date: it creates the schema and its
// schema_migrations table, applies the platform's own migrations
// (processed_events, outbox and its NOTIFY trigger) and then every *.sql file at
// the root of migrations in lexical order, each in its own transaction. It holds
// a session advisory lock for the schema throughout, so replicas starting at once
// apply each migration exactly once. Migrations are forward-only: a recorded
// version is never re-run.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, migrations fs.FS) error {
	if !identRE.MatchString(schema) {
		return fmt.Errorf("schema %q: not a lower-case identifier", schema)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	// Migrations, and waiting for another replica's, may take longer than the
	// statement timeout Open sets; RESET restores it before the pool reuses conn.
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return fmt.Errorf("lift statement timeout for migrations: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET statement_timeout`) //nolint:errcheck
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext('afteraction.migrate.' || $1))`, schema); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('afteraction.migrate.' || $1))`, schema) //nolint:errcheck
	// CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the
	// schema exists; a deployed role owns its schema but may not have that
	// (deploy/postgres/roles.sql), so the schema is created only when missing.
	setup := fmt.Sprintf(`DO $$ BEGIN IF to_regnamespace('%[1]s') IS NULL THEN CREATE SCHEMA %[1]s; END IF; END $$;
SET search_path TO %[1]s;
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    text PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`, schema)
	if _, err := conn.Exec(ctx, setup); err != nil {
		return fmt.Errorf("prepare schema %s: %w", schema, err)
	}
	platform, err := fs.Sub(platformFS, "platform")
	if err != nil {
		return err
	}
	for _, src := range []struct {
		prefix string
		fsys   fs.FS
	}{{"platform/", platform}, {"", migrations}} {
		if src.fsys == nil {
			continue
		}
		names, err := fs.Glob(src.fsys, "*.sql")
		if err != nil {
			return fmt.Errorf("list migrations: %w", err)
		}
		sort.Strings(names)
		for _, name := range names {
			version := src.prefix + strings.TrimSuffix(name, ".sql")
			body, err := fs.ReadFile(src.fsys, name)
			if err != nil {
				return fmt.Errorf("read migration %s: %w", name, err)
			}
			if err := applyMigration(ctx, conn, version, string(body)); err != nil {
				return fmt.Errorf("migration %s.%s: %w", schema, version, err)
			}
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *pgxpool.Conn, version, body string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	tag, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING`, version)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, body); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// PlatformDigest is a digest of the platform's own migrations; it changes when
// they do (test templates use it to know when to rebuild).
func PlatformDigest() string {
	h := sha256.New()
	names, _ := fs.Glob(platformFS, "platform/*.sql")
	sort.Strings(names)
	for _, n := range names {
		b, _ := platformFS.ReadFile(n)
		h.Write([]byte(n))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}
