package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
)

// Nothing lost, nothing doubled, through a crash: incidents (some sent twice)
// are published, NATS dies abruptly while the services are working, the
// services stop, and a new stack starts on the same database and JetStream
// store. Every incident must end up registered once, with one review, and
// counted once by the report's programme metrics.
func TestPipelineSurvivesACrashExactlyOnce(t *testing.T) {
	t.Parallel()
	const n = 40
	dsn := pgtest.NewDatabase(t)
	store := t.TempDir()
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	ctx := context.Background()
	start := func() *Stack {
		t.Helper()
		s, err := StartStack(ctx, StackConfig{DatabaseURL: dsn, StoreDir: store, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	first := start()
	b, err := bus.Connect(ctx, first.NATSURL, "e2e", zap.NewNop(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		inc := demoIncidentForTest(t, fmt.Sprintf("SEC-CRASH-%02d", i))
		copies := 1
		if i%4 == 0 {
			copies = 2 // an upstream retry: the same incident under a new event id
		}
		for range copies {
			env, err := events.New(events.TypeIncidentClosed, "e2e", inc.ExternalID, inc)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(ctx, events.SubjectIncidentClosedPrefix+inc.Source, env); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.Close()
	// Crash in the middle of the work: NATS goes first, without warning, so
	// handlers and relays fail mid-flight; then the services stop.
	servicetest.Eventually(t, "the first reviews to open", func() bool {
		return count(t, first, first.URLs["review"]+"/v1/reviews", "reviews") > 0
	})
	first.nats.Shutdown()
	t.Logf("crashed with %d of %d reviews open", count(t, first, first.URLs["review"]+"/v1/reviews", "reviews"), n)
	stopAt := time.Now()
	if err := first.Stop(); err != nil {
		t.Logf("first stack stopped with: %v", err)
	}

	t.Logf("the first stack took %v to stop", time.Since(stopAt))
	second := start()
	defer func() {
		if err := second.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	servicetest.Eventually(t, "every incident to have its review", func() bool {
		return count(t, second, second.URLs["review"]+"/v1/reviews", "reviews") >= n
	})
	time.Sleep(time.Second) // a duplicate would show up now
	if got := count(t, second, second.URLs["intake"]+"/v1/incidents?limit=1000", "incidents"); got != n {
		t.Errorf("registered incidents = %d, want %d", got, n)
	}
	if got := count(t, second, second.URLs["review"]+"/v1/reviews", "reviews"); got != n {
		t.Errorf("reviews = %d, want %d", got, n)
	}
	var metrics struct {
		Incidents struct {
			Total int `json:"total"`
		} `json:"incidents"`
	}
	servicetest.Eventually(t, "the report's read model to count every incident", func() bool {
		err := getJSON(ctx, second.URLs["report"]+"/v1/metrics/programme", second.AdminToken, &metrics)
		return err == nil && metrics.Incidents.Total >= n
	})
	if metrics.Incidents.Total != n {
		t.Errorf("programme metrics count %d incidents, want %d", metrics.Incidents.Total, n)
	}
}
