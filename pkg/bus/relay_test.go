package bus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/servicetest"
)

// Rows JetStream refuses every time (here: a subject no stream takes) used to
// be claimed first on every round, so 500 of them stalled every row behind
// them. After MaxAttempts they are set aside, visibly, and the rest flows.
func TestOutboxRowsThatNeverPublishAreSetAsideAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	b, err := bus.Connect(ctx, e.srv.URL(), "bustest", e.log, bus.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	const bad = 500
	err = postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		msgs := make([]postgres.OutboxMessage, bad)
		for i := range msgs {
			ev := updated(t, fmt.Sprint("nowhere ", i))
			msgs[i] = postgres.OutboxMessage{Subject: "nowhere.stream.takes.this", Envelope: ev}
		}
		return postgres.EnqueueBatch(ctx, tx, msgs)
	})
	if err != nil {
		t.Fatal(err)
	}
	good := updated(t, "behind them")
	enqueue(t, e.pool, good)

	rctx, cancel := context.WithCancel(ctx)
	r := &bus.Relay{Bus: b, Pool: e.pool, Schema: schema, Log: e.log, PollInterval: 50 * time.Millisecond, MaxAttempts: 3}
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })

	servicetest.Eventually(t, "the row behind the bad ones published", func() bool {
		return e.streamCount(events.SubjectActionUpdated) == 1
	})
	servicetest.Eventually(t, "every bad row set aside", func() bool {
		n, err := postgres.CountSetAside(ctx, e.pool)
		return err == nil && n == bad
	})
	// The good row's marker goes once its PubAck is in, which may be a
	// moment after the stream has it.
	servicetest.Eventually(t, "no row pending", func() bool { return e.unsent() == 0 })
	rows, err := postgres.SetAsideOutbox(ctx, e.pool, 1)
	if err != nil || len(rows) != 1 {
		t.Fatalf("set-aside rows: %v %v", rows, err)
	}
	if rows[0].Attempts != 3 || !strings.Contains(rows[0].LastError, "no response from stream") {
		t.Errorf("set-aside row = %+v, want 3 attempts and the publish error", rows[0])
	}
	if got := gauge(t, reg, "afteraction_outbox_set_aside"); got != bad {
		t.Errorf("afteraction_outbox_set_aside = %v, want %d", got, bad)
	}

	// An operator fixes the cause and requeues them: they publish.
	if _, err := e.js().CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "NOWHERE", Subjects: []string{"nowhere.>"}}); err != nil {
		t.Fatal(err)
	}
	err = postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		seqs := make([]int64, 0, bad)
		list, err := postgres.SetAsideOutbox(ctx, tx, bad)
		for _, r := range list {
			seqs = append(seqs, r.Seq)
		}
		if err != nil {
			return err
		}
		n, err := postgres.RequeueOutbox(ctx, tx, seqs)
		if err == nil && n != bad {
			err = fmt.Errorf("requeued %d, want %d", n, bad)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the requeued rows published", func() bool {
		n, _ := postgres.CountUnsent(ctx, e.pool)
		return n == 0 && bustest.SubjectCount(t, e.srv.URL(), "NOWHERE", "nowhere.stream.takes.this") == bad
	})
}

// During an outage nothing is set aside, however often the relay tries.
func TestOutboxRowsAreNotSetAsideDuringAnOutage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	e.srv.Shutdown()
	ev := updated(t, "while down")
	enqueue(t, e.pool, ev)
	rctx, cancel := context.WithCancel(ctx)
	r := &bus.Relay{Bus: e.bus, Pool: e.pool, Schema: schema, Log: e.log, PollInterval: 10 * time.Millisecond, MaxAttempts: 1}
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(time.Second) // the relay tries and fails meanwhile, with MaxAttempts 1
	if n, _ := postgres.CountSetAside(ctx, e.pool); n != 0 {
		t.Fatalf("set aside during an outage: %d rows", n)
	}
	e.srv.Restart()
	servicetest.Eventually(t, "the row sent after the outage", func() bool { return e.unsent() == 0 })
	if n, _ := postgres.CountSetAside(ctx, e.pool); n != 0 {
		t.Errorf("set aside: %d rows, want 0", n)
	}
}

// gauge returns the value of the gauge name gathered from g.
func gauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
