package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
)

// The NATS configurations in deploy/ parse with the nats-server version the
// project builds against (2.15: the Debian package on a dev machine may be
// older and not know sync_interval), the single node fsyncs every write, and
// every service has its own user.
func TestDeployNATSConfigs(t *testing.T) {
	for _, v := range []string{"INTAKE", "REVIEW", "REPORT", "TRACKER", "UPSTREAM", "TRACKERS", "OPERATOR"} {
		t.Setenv(v+"_NATS_PASSWORD", "secret-"+v)
	}
	t.Setenv("NATS_SERVER_NAME", "nats-0")
	for _, tc := range []struct {
		file       string
		syncAlways bool
		cluster    bool
	}{
		{"nats-server.conf", true, false},
		{"cluster.conf", false, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !opts.JetStream || opts.SyncAlways != tc.syncAlways || (opts.Cluster.Name != "") != tc.cluster {
				t.Errorf("jetstream=%v sync_always=%v cluster=%q", opts.JetStream, opts.SyncAlways, opts.Cluster.Name)
			}
			if opts.MaxPayload != 1<<20 {
				t.Errorf("max_payload = %d, want 1 MiB", opts.MaxPayload)
			}
			users := map[string]bool{}
			for _, u := range opts.Users {
				users[u.Username] = u.Permissions != nil && u.Password != ""
			}
			for _, want := range []string{"intake", "review", "report", "tracker", "upstream", "trackers"} {
				if !users[want] {
					t.Errorf("no user %q with a password and permissions", want)
				}
			}
		})
	}
}

// The per-service NATS users of deploy/nats/permissions.conf let each service
// do its whole job and nothing is refused: the demo scenario runs end to end
// with every service, and the publisher, connected as its own user. A denied
// subject would show up as a timeout (NATS reports it only asynchronously).
func TestPipelineRunsUnderTheDeployedNATSPermissions(t *testing.T) {
	users := []string{"intake", "review", "report", "tracker", "upstream", "trackers", "operator"}
	serviceEnv := map[string]map[string]string{}
	for _, u := range users {
		pw := "pw-" + u + "-0123456789"
		t.Setenv(strings.ToUpper(u)+"_NATS_PASSWORD", pw)
		serviceEnv[u] = map[string]string{"NATS_USER": u, "NATS_PASSWORD": pw}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	core, logged := observer.New(zap.WarnLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()))
	s, err := StartStack(ctx, StackConfig{
		DatabaseURL:    pgtest.NewDatabase(t),
		StoreDir:       t.TempDir(),
		NATSConfigFile: filepath.Join("..", "..", "deploy", "nats", "nats-server.conf"),
		ServiceEnv:     serviceEnv,
		Client:         bus.Options{User: "upstream", Password: serviceEnv["upstream"]["NATS_PASSWORD"]},
		Log:            log,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	res, err := runScenario(ctx, s, demoIncidentForTest(t, "SEC-PERMS-1"), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || len(res.Actions) != 6 {
		t.Errorf("scenario under permissions: verified=%v actions=%d", res.Verified, len(res.Actions))
	}
	for _, e := range logged.FilterMessage("nats async error").All() {
		t.Errorf("refused by NATS: %v", e.ContextMap())
	}
}
