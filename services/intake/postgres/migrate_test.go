package postgres_test

import (
	"context"
	"io/fs"
	"testing"
	"time"

	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/services/intake/postgres"
)

// migrationsBefore is intake's migrations older than name.
func migrationsBefore(t *testing.T, name string) fs.FS {
	t.Helper()
	all := postgres.Migrations()
	names, err := fs.Glob(all, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, n := range names {
		if n < name {
			keep = append(keep, n)
		}
	}
	return filteredFS{all, keep}
}

// filteredFS lists only names (Migrate finds migrations with fs.Glob).
type filteredFS struct {
	fs.FS
	names []string
}

func (f filteredFS) Glob(pattern string) ([]string, error) { return f.names, nil }

// The inbox starts with what was handled before it existed, so a message
// redelivered across the upgrade is still a duplicate.
func TestInboxMigrationKeepsWhatWasHandled(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t, pgtest.Migration{Schema: postgres.Schema, FS: migrationsBefore(t, "0003")})
	ctx := context.Background()
	s := postgres.New(pool)
	// The store of this version writes the inbox, which the old schema lacks:
	// build the old rows by hand.
	raw := example(t, nil)
	m := msgOn(t, "jira", "ev-1", raw)
	_, err := pool.Exec(ctx, `INSERT INTO incidents (id, source, external_id, revision, title, severity, closed_at,
	registered_at, updated_at, content_sha256) VALUES ($1, 'jira', 'SEC-2026-0142', 1, 't', 'high', now(), now(), now(), $2)`,
		m.Accepted.IncidentID, m.Accepted.ContentSHA256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO incident_revisions (incident_id, revision, content_sha256, canonical, raw, received_at, event_id)
	VALUES ($1, 1, $2, $3, $4, now(), 'ev-1')`, m.Accepted.IncidentID, m.Accepted.ContentSHA256, string(m.Accepted.Canonical), raw); err != nil {
		t.Fatal(err)
	}
	bad := []byte(`{"not":"an incident"}`)
	rej := msg(t, "ev-2", bad)
	if _, err := pool.Exec(ctx, `INSERT INTO rejects (id, subject, received_at, reason, raw, payload_sha256, event_id)
	VALUES (gen_random_uuid(), 'incidents.closed.jira', now(), 'schema violation', $1, encode(sha256($1), 'hex'), 'ev-2')`, bad); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := pg.Migrate(cctx, pool, postgres.Schema, postgres.Migrations()); err != nil {
		t.Fatal(err)
	}
	res := apply(t, s, m, rej)
	for i, r := range res {
		if r.Outcome != postgres.Duplicate {
			t.Errorf("message %d after the upgrade: %s, want duplicate", i, r.Outcome)
		}
	}
}
