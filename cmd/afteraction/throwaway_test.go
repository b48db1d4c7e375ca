package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// closedPortURL returns a loopback URL where no Postgres answers.
func closedPortURL(t *testing.T, db string) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", port, db)
}

// Issue 11: `afteraction dev` and `make demo` on a machine where no Postgres
// answers start a throwaway cluster with the installed binaries, say so, and
// remove it on shutdown. .ci/run installs the binaries, so this runs in CI.
func TestStackStartsAThrowawayPostgresWhenNoneAnswers(t *testing.T) {
	t.Parallel()
	if _, err := postgresBinDir(); errors.Is(err, errNoPostgresBinaries) {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dsn := closedPortURL(t, "afteraction_throwaway")
	s, err := StartStack(ctx, StackConfig{DatabaseURL: dsn, ThrowawayPostgres: true, FreshDatabase: true,
		StoreDir: t.TempDir(), Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = s.Stop()
		}
	}()
	if s.PostgresNote == "" || s.postgres == nil || s.DatabaseURL == dsn {
		t.Fatalf("no throwaway cluster reported: note %q, database %s", s.PostgresNote, s.DatabaseURL)
	}
	dir := s.postgres.dir
	if !strings.Contains(s.PostgresNote, dir) {
		t.Errorf("note %q does not say where the cluster is (%s)", s.PostgresNote, dir)
	}
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatalf("the throwaway cluster does not answer: %v", err)
	}
	var db string
	var schemas int
	err = conn.QueryRow(ctx, `SELECT current_database(), (SELECT count(*) FROM information_schema.schemata
		WHERE schema_name IN ('intake', 'review', 'report', 'tracker', 'notify'))`).Scan(&db, &schemas)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if db != "afteraction_throwaway" || schemas != 5 {
		t.Errorf("database %q with %d service schemas, want afteraction_throwaway with 5 (every service migrated)", db, schemas)
	}

	stopped = true
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s after stop: %v, want it removed", dir, err)
	}
	if conn, err := pgx.Connect(ctx, s.DatabaseURL); err == nil {
		conn.Close(ctx)
		t.Errorf("the throwaway cluster still answers after stop")
	}
}

// Without ThrowawayPostgres (every caller but dev and demo), a Postgres that
// does not answer is an error naming where it was looked for.
func TestStackWithoutPostgresFailsUnlessThrowawayIsAllowed(t *testing.T) {
	t.Parallel()
	dsn := closedPortURL(t, "afteraction")
	_, err := StartStack(context.Background(), StackConfig{DatabaseURL: dsn, StoreDir: t.TempDir(), Log: zap.NewNop()})
	if err == nil || !strings.Contains(err.Error(), "connect to postgres at "+dsn) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v, want the connection refused, naming the address", err)
	}
}

// Only "nothing listens on this machine" starts a throwaway cluster: a remote
// host, or a server that answers and refuses, is the user's to fix.
func TestNoPostgresAnswers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connErr := func(dsn string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			conn.Close(ctx)
		}
		return err
	}
	refused := closedPortURL(t, "postgres")
	for _, tc := range []struct {
		name string
		dsn  string
		err  error
		want bool
	}{
		{"closed loopback port", refused, connErr(refused), true},
		{"localhost", strings.Replace(refused, "127.0.0.1", "localhost", 1), connErr(strings.Replace(refused, "127.0.0.1", "localhost", 1)), true},
		{"remote host refusing", "postgres://postgres@db.example.com:5432/x", connErr(refused), false},
		{"server answers, role unknown", "postgres://no_such_role_zz@127.0.0.1:5432/postgres?sslmode=disable",
			connErr("postgres://no_such_role_zz@127.0.0.1:5432/postgres?sslmode=disable"), false},
		{"no error", refused, nil, false},
	} {
		if got := noPostgresAnswers(tc.dsn, tc.err); got != tc.want {
			t.Errorf("%s (%v): %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
