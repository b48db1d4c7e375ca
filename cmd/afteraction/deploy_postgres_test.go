package main

import (
	"context"
	"errors"
	"io/fs"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	intakepg "github.com/afteraction/afteraction/services/intake/postgres"
	notifypg "github.com/afteraction/afteraction/services/notify/postgres"
	reportpg "github.com/afteraction/afteraction/services/report/postgres"
	reviewpg "github.com/afteraction/afteraction/services/review/postgres"
	trackerpg "github.com/afteraction/afteraction/services/tracker/postgres"
)

// Under the roles of deploy/postgres/roles.sql, each service migrates its own
// schema and can neither read nor write another's: no service reads another's
// schema (everything arrives as an event), and a compromised service cannot
// tamper with another's records. Every attempt must fail with 42501
// (insufficient privilege).
func TestDeployedPostgresRolesKeepEachServiceInItsSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	as := pgtest.ApplyRoles(t, dsn, "../../deploy/postgres/roles.sql")
	services := []struct {
		schema, migrator, runtime string
		migrations                fs.FS
	}{
		{intakepg.Schema, "intake", "intake", intakepg.Migrations()},
		{reviewpg.Schema, "review", "review", reviewpg.Migrations()},
		{reportpg.Schema, "report_owner", "report", reportpg.Migrations()},
		{trackerpg.Schema, "tracker", "tracker", trackerpg.Migrations()},
		{notifypg.Schema, "notify", "notify", notifypg.Migrations()},
	}
	for _, s := range services {
		pool, err := postgres.Open(ctx, as(s.migrator), s.schema)
		if err != nil {
			t.Fatal(err)
		}
		if err := postgres.Migrate(ctx, pool, s.schema, s.migrations); err != nil {
			pool.Close()
			t.Fatalf("%s migrating its own schema as %s: %v", s.schema, s.migrator, err)
		}
		pool.Close()
	}
	for _, s := range services {
		conn, err := pgx.Connect(ctx, as(s.runtime))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `SELECT count(*) FROM `+s.schema+`.processed_events`); err != nil {
			t.Errorf("%s reading its own processed_events: %v", s.runtime, err)
		}
		for _, other := range services {
			if other.schema == s.schema {
				continue
			}
			for _, stmt := range []string{
				`SELECT count(*) FROM ` + other.schema + `.outbox`,
				`DELETE FROM ` + other.schema + `.processed_events`,
				`CREATE TABLE ` + other.schema + `.intruder (x int)`,
				`DROP TABLE ` + other.schema + `.outbox`,
			} {
				_, err := conn.Exec(ctx, stmt)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
					t.Errorf("as %s: %s: got %v, want insufficient privilege (42501)", s.runtime, stmt, err)
				}
			}
		}
		conn.Close(ctx)
	}
}
