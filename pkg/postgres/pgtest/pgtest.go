// Package pgtest gives each test a fresh Postgres database of its own, cloned
// from a template that already has the migrations applied, so tests run in
// parallel against the real server without seeing each other's rows.
//
// The server comes from PGTEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); the role needs
// CREATEDB. Databases are dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/postgres"
)

// DefaultURL is the server tests use when PGTEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL returns the maintenance database URL tests connect to.
func ServerURL() string {
	if u := os.Getenv("PGTEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// NewDatabase creates an empty database for t and returns its URL. It is
// dropped (with FORCE) when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return cloneDatabase(t, "template0")
}

// Migration names one schema and the migrations that belong in it.
type Migration struct {
	Schema string
	FS     fs.FS
}

// New returns a pool on a fresh database in which every schema of ms is
// migrated, with search_path set to the first schema. The migrated state is
// built once as a template (named by a hash of the migrations' contents, under
// an advisory lock, so parallel test binaries share it) and cloned per test.
func New(t testing.TB, ms ...Migration) *pgxpool.Pool {
	t.Helper()
	if len(ms) == 0 {
		t.Fatal("pgtest.New: no migrations given")
	}
	dsn := NewMigratedDatabase(t, ms...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := postgres.Open(ctx, dsn, ms[0].Schema)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// NewMigratedDatabase is New without the pool: it returns the URL of a fresh
// database with every schema of ms migrated.
func NewMigratedDatabase(t testing.TB, ms ...Migration) string {
	t.Helper()
	tpl, err := ensureTemplate(ms)
	if err != nil {
		t.Fatalf("pgtest: template: %v", err)
	}
	return cloneDatabase(t, tpl)
}

func cloneDatabase(t testing.TB, template string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v (is Postgres running?)", postgres.Redact(ServerURL()), err)
	}
	defer admin.Close(ctx)
	name := "aa_test_" + randomHex(8)
	if err := retry(ctx, func() error {
		_, err := admin.Exec(ctx, fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s`, name, template))
		return err
	}); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Logf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(ServerURL(), name)
}

// retry repeats CREATE DATABASE while the template is briefly in use by another
// clone (Postgres refuses to copy a database that has other sessions).
func retry(ctx context.Context, fn func() error) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = fn(); err == nil || !strings.Contains(err.Error(), "being accessed by other users") {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
	return err
}

func ensureTemplate(ms []Migration) (string, error) {
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "schema %s\n", m.Schema)
		names, err := fs.Glob(m.FS, "*.sql")
		if err != nil {
			return "", err
		}
		sort.Strings(names)
		for _, n := range names {
			b, err := fs.ReadFile(m.FS, n)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "%s %d\n", n, len(b))
			h.Write(b)
		}
	}
	h.Write([]byte(postgresPlatformVersion()))
	name := "aa_tpl_" + hex.EncodeToString(h.Sum(nil))[:20]

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return "", fmt.Errorf("connect to %s: %w (is Postgres running?)", postgres.Redact(ServerURL()), err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock(hashtext('afteraction.pgtest.template'))`); err != nil {
		return "", err
	}
	defer admin.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext('afteraction.pgtest.template'))`) //nolint:errcheck
	var ready bool
	err = admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, name).Scan(&ready)
	if err != nil {
		return "", err
	}
	if ready {
		return name, nil
	}
	if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0`); err != nil {
		return "", err
	}
	for _, m := range ms {
		pool, err := postgres.Open(ctx, withDatabase(ServerURL(), name), m.Schema)
		if err != nil {
			return "", err
		}
		err = postgres.Migrate(ctx, pool, m.Schema, m.FS)
		pool.Close()
		if err != nil {
			return "", err
		}
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` WITH IS_TEMPLATE true`); err != nil {
		return "", err
	}
	return name, nil
}

// postgresPlatformVersion changes the template name whenever the platform's own
// migrations change.
func postgresPlatformVersion() string {
	return postgres.PlatformDigest()
}

func withDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
