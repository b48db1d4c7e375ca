package main

import (
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// The NATS configurations in deploy/ parse with the nats-server version the
// project builds against (2.15: the Debian package on a dev machine may be
// older and not know sync_interval), the single node fsyncs every write, and
// every service has its own user.
func TestDeployNATSConfigs(t *testing.T) {
	for _, v := range []string{"INTAKE", "REVIEW", "REPORT", "TRACKER", "UPSTREAM", "TRACKERS"} {
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
