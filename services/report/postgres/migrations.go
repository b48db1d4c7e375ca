// Package postgres holds the report service's Postgres schema: its name and
// the embedded, forward-only migrations applied by postgres.Migrate at start-up.
// The SQL that reads and writes the tables sits in the service's root package
// (store.go), beside the domain it serves: a store package implementing the
// root package's interfaces could not be imported by run.go without a cycle.
package postgres

import (
	"embed"
	"io/fs"
)

// Schema is the Postgres schema the report service owns.
const Schema = "report"

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Migrations returns the service's migrations for postgres.Migrate.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		panic(err) // unreachable: the directory is embedded
	}
	return sub
}
