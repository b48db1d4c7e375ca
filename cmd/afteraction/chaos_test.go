package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/services/intake"
)

// TestMain lets the chaos harness start this test binary as a service process.
func TestMain(m *testing.M) {
	if code, ok := serveChaosChild(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// The short fault suite: two replicas of every service as processes, a
// single NATS node restarted, replicas killed with SIGKILL, Postgres
// connections dropped and stalled, while incidents (with duplicates) arrive
// and reviews are completed; then every invariant must hold. `make chaos`
// runs the same for minutes over a three-node cluster.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts eight service processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var out bytes.Buffer
	rep, err := chaos(ctx, chaosConfig{
		DatabaseURL: pgtest.NewDatabase(t), Duration: 15 * time.Second, Settle: 3 * time.Minute,
		Replicas: 2, Incidents: 12, CompleteEvery: 4, FaultEvery: 1500 * time.Millisecond, Seed: 1,
		Faults: []string{"kill", "nats", "pgdrop", "pgstall"}, Dir: t.TempDir(), Out: &out,
	})
	rep.print(&out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Violations) > 0 || rep.Registered != 12 {
		t.Errorf("invariants violated: %v", rep.Violations)
	}
}

// The near-limit incident of the chaos load is over intake's limit yet fits
// a NATS message; the HTTP one is over the 1 MiB body limit.
func TestChaosBigIncident(t *testing.T) {
	t.Parallel()
	near, err := bigIncident("BIG-near", intake.MaxIncidentBytes)
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.New(events.TypeIncidentClosed, "afteraction/chaos", near.ExternalID, near)
	if err != nil {
		t.Fatal(err)
	}
	canonical, _ := json.Marshal(near)
	msg, _ := json.Marshal(env)
	if len(canonical) <= intake.MaxIncidentBytes || len(msg) > 1<<20-4096 {
		t.Errorf("near-limit incident: canonical %d bytes (want over %d), message %d (want under 1 MiB less headers)",
			len(canonical), intake.MaxIncidentBytes, len(msg))
	}
	over, err := bigIncident("BIG-over", 1<<20+4096)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := json.Marshal(over); len(body) <= 1<<20 {
		t.Errorf("oversized incident: %d bytes, want over 1 MiB", len(body))
	}
}
