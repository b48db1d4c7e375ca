package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// ApplyRoles runs the deployment's role script (deploy/postgres/roles.sql, at
// path) on the database of dsn as the deployment does, with the role names
// made unique to this test (roles are shared by every database of the server:
// "afteraction_" becomes a random prefix), the database's own name, and a test
// password for every psql variable. The roles and what they own are dropped
// when t ends, before the database is. It returns the DSN of a role named by
// its suffix (e.g. as("report_owner")).
func ApplyRoles(t testing.TB, dsn, path string) (as func(role string) string) {
	t.Helper()
	script, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	prefix := "t" + hex.EncodeToString(suffix) + "_"
	sql := strings.ReplaceAll(string(script), "afteraction_", prefix)
	sql = strings.ReplaceAll(sql, "DATABASE afteraction", "DATABASE "+db)
	sql = regexp.MustCompile(`:'[a-z_]+'`).ReplaceAllString(sql, "'test-password'")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	roles := regexp.MustCompile(`CREATE ROLE (\w+)`).FindAllStringSubmatch(sql, -1)
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Logf("drop roles: %v", err)
			return
		}
		defer conn.Close(ctx)
		for _, r := range roles {
			if _, err := conn.Exec(ctx, `DROP OWNED BY `+r[1]+` CASCADE; DROP ROLE `+r[1]); err != nil {
				t.Logf("drop role %s: %v", r[1], err)
			}
		}
	})
	return func(role string) string {
		v := *u
		v.User = url.UserPassword(prefix+role, "test-password")
		return v.String()
	}
}
