package report_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"maps"
	"net"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
)

// applyRoles runs deploy/postgres/roles.sql on the database of dsn (see
// pgtest.ApplyRoles) and returns the DSNs of the report schema's owner and of
// the report service's role.
func applyRoles(t *testing.T, dsn string) (ownerDSN, runtimeDSN string) {
	t.Helper()
	as := pgtest.ApplyRoles(t, dsn, "../../deploy/postgres/roles.sql")
	return as("report_owner"), as("report")
}

// startAsServiceRole runs the service as the role of roles.sql, migrated by
// the owner role, with env added to its configuration, and returns it with
// the DSN of that role.
func startAsServiceRole(t *testing.T, env map[string]string) (r *running, runtimeDSN string) {
	t.Helper()
	ownerDSN, runtimeDSN := applyRoles(t, pgtest.NewDatabase(t))
	srv := bustest.New(t)
	seed := make([]byte, ed25519.SeedSize)
	certFile, keyFile, signer := padestest.KeyPairFiles(t, "least privilege test")
	base := map[string]string{
		"DATABASE_URL":                runtimeDSN,
		"REPORT_MIGRATE_DATABASE_URL": ownerDSN,
		"NATS_URL":                    srv.URL(),
		"API_TOKENS":                  "compliance:" + token + ",facilitator:facilitator-token-1234",
		"REPORT_SIGNING_KEY":          base64.StdEncoding.EncodeToString(seed),
		"REPORT_CERT_FILE":            certFile,
		"REPORT_CERT_KEY_FILE":        keyFile,
	}
	maps.Copy(base, env)
	cfg, err := report.LoadConfig(func(k string) string { return base[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	r = &running{t: t, nats: srv.URL(), signer: signer}
	r.base = servicetest.Start(t, func(ctx context.Context, ln net.Listener) error {
		return report.Run(ctx, cfg, report.Deps{Log: log, Listener: ln})
	})
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return r, runtimeDSN
}

// TestServiceRoleCannotChangeWhatItWrote runs the service as the role of
// roles.sql, migrated by the owner role, publishes a version (with its
// custody entries) and a download, then, connected as that role, tries every
// way to change or remove the evidence.
func TestServiceRoleCannotChangeWhatItWrote(t *testing.T) {
	t.Parallel()
	r, runtimeDSN := startAsServiceRole(t, nil)
	rv := exampleReview(t)
	ev, err := events.New(events.TypeReviewCompleted, "afteraction/review", rv.IncidentID, rv)
	if err != nil {
		t.Fatal(err)
	}
	r.publish(ev, ev.ID)
	servicetest.Eventually(t, "report.published", func() bool { return len(r.published()) == 1 })
	reportID := report.ReportIDFor(rv.IncidentID)
	if resp, _ := r.do(http.MethodGet, "/v1/reports/"+reportID+"/pdf", nil, true); resp.StatusCode != http.StatusOK {
		t.Fatalf("download as the service role: %d", resp.StatusCode)
	}

	// A programme report is published as the service role too (the example closed in March 2026).
	if resp, body := r.do(http.MethodPost, "/v1/programme-reports", []byte(`{"period": "2026-03"}`), true); resp.StatusCode != http.StatusCreated {
		t.Fatalf("publish a programme report as the service role: %d %s", resp.StatusCode, body)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, runtimeDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET search_path TO report`); err != nil {
		t.Fatal(err)
	}
	var entries int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM custody_log`).Scan(&entries); err != nil || entries != 4 {
		t.Fatalf("custody entries written as the service role: %d (%v), want rendered, rendered (redacted), published, downloaded", entries, err)
	}
	var denied []string
	for _, table := range []string{"report_versions", "custody_log", "signing_keys", "signing_certificates", "programme_reports"} {
		trigger := map[string]string{"report_versions": "report_versions_immutable", "custody_log": "custody_log_append_only",
			"signing_keys": "signing_keys_immutable", "signing_certificates": "signing_certificates_immutable",
			"programme_reports": "programme_reports_immutable"}[table]
		denied = append(denied,
			`UPDATE `+table+` SET `+map[string]string{"report_versions": "pages = 1", "custody_log": "actor = 'x'",
				"signing_keys": "algorithm = 'x'", "signing_certificates": "subject = 'x'", "programme_reports": "pages = 1"}[table],
			`DELETE FROM `+table,
			`TRUNCATE `+table+` CASCADE`,
			`ALTER TABLE `+table+` DISABLE TRIGGER `+trigger,
			`DROP TRIGGER `+trigger+` ON `+table,
			`ALTER TABLE `+table+` ADD COLUMN forged text`,
			`DROP TABLE `+table+` CASCADE`,
		)
	}
	denied = append(denied,
		`UPDATE reports SET incident_id = gen_random_uuid()`,
		`DELETE FROM reports`,
		`DROP FUNCTION report_versions_immutable() CASCADE`,
		`CREATE OR REPLACE FUNCTION report_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`,
		`CREATE TABLE report.forged (id int)`,
		`INSERT INTO schema_migrations (version) VALUES ('9999_forged')`,
		`UPDATE legal_holds SET action = 'lifted'`,
		`DELETE FROM legal_holds`,
		`TRUNCATE legal_holds`,
		`DROP TRIGGER legal_holds_append_only ON legal_holds`,
		`UPDATE purges SET rule = 'x'`,
		`DELETE FROM purges`,
		`TRUNCATE purges`,
	)
	for _, stmt := range denied {
		_, err := conn.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s: err = %v, want insufficient_privilege (42501)", stmt, err)
		}
	}
}
