package bus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/servicetest"
)

// refused is what a handler sees while Postgres is down.
func refused() error {
	return fmt.Errorf("begin: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
}

// runConsumer runs h on b with c until the returned stop is called.
func runConsumer(t *testing.T, b *bus.Bus, c bus.ConsumerConfig, h bus.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Consume(ctx, c, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("consume: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Issue 9 item 4: a consumer restarted during a Postgres outage (a new
// process, or another replica) must not find the message's deliveries used
// up by the outage and dead-letter it.
func TestOutageRetriesSurviveARestartOfTheConsumer(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := cfg("restart-outage")
	c.MaxDeliver = 2
	c.Backoff = []time.Duration{20 * time.Millisecond}
	var down atomic.Bool
	down.Store(true)
	var failed atomic.Int32
	h := bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		if down.Load() {
			failed.Add(1)
			return refused()
		}
		return e.apply(ctx, m, u)
	})
	stop := runConsumer(t, e.bus, c, h)
	ev := updated(t, "outage across a restart")
	if err := e.bus.Publish(context.Background(), events.SubjectActionUpdated, ev); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "deliveries up to MaxDeliver failing in the outage", func() bool { return failed.Load() >= 3 })
	stop()

	replica := connect(t, e.srv.URL(), e.log) // the restarted process: nothing in memory
	replica.RecordDeadLettersIn(e.pool)
	runConsumer(t, replica, c, h)
	servicetest.Eventually(t, "more failing deliveries after the restart", func() bool { return failed.Load() >= 6 })
	down.Store(false)
	servicetest.Eventually(t, "the message applied once Postgres is back", func() bool { return e.count(ev.ID) == 1 })
	if got := e.dlq(events.SubjectActionUpdated); len(got) != 0 {
		t.Errorf("the outage dead-lettered %d messages", len(got))
	}
}

// Issue 9 item 14: a handler that always overruns its deadline while Postgres
// and NATS answer is a counted failure: after MaxDeliver deliveries it is in
// the DLQ, instead of being retried forever as an "outage".
func TestHandlerThatAlwaysOverrunsEndsInTheDLQ(t *testing.T) {
	t.Parallel()
	e := setup(t)
	c := cfg("overrun")
	c.MaxDeliver = 2
	c.AckWait = time.Second
	c.Backoff = []time.Duration{20 * time.Millisecond}
	var calls atomic.Int32
	e.consume(c, func(ctx context.Context, m *bus.Message) error {
		calls.Add(1)
		<-ctx.Done()
		return fmt.Errorf("render: %w", ctx.Err())
	})
	if err := e.bus.Publish(context.Background(), events.SubjectActionUpdated, updated(t, "slow")); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the overrunning message in the DLQ", func() bool {
		return len(e.dlq(events.SubjectActionUpdated)) == 1
	})
	dl, err := e.bus.DeadLetters(context.Background(), "bustest")
	if err != nil || len(dl) != 1 {
		t.Fatalf("dead letters = %v, %v", dl, err)
	}
	if !strings.Contains(dl[0].Reason, "overran") {
		t.Errorf("reason = %q, want it to say the handler overran its deadline", dl[0].Reason)
	}
}

// Issue 9 item 15: the DLQ copy of a message near the maximum payload, with a
// long reason, does not fit; the message must not loop. The copy leaves the
// data out, carries a bounded reason and the original's stream sequence, and
// Replay republishes the original.
func TestDeadLetterOfAMessageNearThePayloadLimit(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var calls atomic.Int32
	var fixed atomic.Bool
	body := []byte(`{"pad":"` + strings.Repeat("x", 1<<20-1600) + `"}`)
	reason := strings.Repeat("the reason is long; ", 250)
	e.consume(cfg("near-limit"), func(ctx context.Context, m *bus.Message) error {
		if fixed.Load() {
			return nil
		}
		calls.Add(1)
		if len(m.Envelope.Data) != len(body) {
			return bus.Permanent(fmt.Errorf("got %d bytes, want %d", len(m.Envelope.Data), len(body)))
		}
		return bus.Permanent(errors.New(reason))
	})
	if err := e.bus.PublishRaw(context.Background(), events.SubjectActionUpdated, "near-limit-1", body); err != nil {
		t.Fatal(err)
	}
	var dl []bus.DeadLetterMsg
	servicetest.Eventually(t, "the dead letter", func() bool {
		var err error
		dl, err = e.bus.DeadLetters(context.Background(), "bustest")
		return err == nil && len(dl) == 1
	})
	if n := calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want once: the message looped", n)
	}
	d := dl[0]
	if !d.DataOmitted || d.Size != 0 || d.Stream != bus.StreamAfteraction || d.StreamSeq == 0 {
		t.Errorf("copy: omitted=%v size=%d original=%s #%d, want the data left out and the original referenced",
			d.DataOmitted, d.Size, d.Stream, d.StreamSeq)
	}
	if len(d.Reason) > 1000 || !strings.HasPrefix(reason, d.Reason) {
		t.Errorf("reason of %d bytes, want a prefix of at most 1000", len(d.Reason))
	}
	fixed.Store(true)
	var replayed atomic.Int32
	e2 := cfg("near-limit-replay")
	e.consume(e2, func(ctx context.Context, m *bus.Message) error {
		if len(m.Envelope.Data) == len(body) {
			replayed.Add(1)
		}
		return nil
	})
	if _, err := e.bus.Replay(context.Background(), d.Seq); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the original and its replay", func() bool { return replayed.Load() == 2 })
}

// Issue 9 item 13: a consumer holds a bounded number of bytes, not a number of
// messages whatever their size: batches stop at half of MaxBytes, and while
// the handler is stuck the server is not asked for everything in the stream.
func TestPullConsumerIsBoundedByBytes(t *testing.T) {
	t.Parallel()
	e := setup(t)
	const n, size, maxBytes = 40, 256 << 10, 4 << 20
	pad := strings.Repeat("y", size)
	for i := range n {
		if err := e.bus.PublishRaw(context.Background(), events.SubjectActionUpdated, fmt.Sprintf("big-%d", i), []byte(pad)); err != nil {
			t.Fatal(err)
		}
	}
	c := cfg("bytes")
	c.BatchSize = 100
	c.MaxAckPending = 1000
	c.MaxBytes = maxBytes
	release := make(chan struct{})
	var mu sync.Mutex
	var batches []int
	seen := 0
	e.consumeBatch(c, func(ctx context.Context, ms []*bus.Message) []error {
		bytes := 0
		for _, m := range ms {
			bytes += len(m.Envelope.Data)
		}
		mu.Lock()
		batches = append(batches, bytes)
		first := len(batches) == 1
		seen += len(ms)
		mu.Unlock()
		if first {
			<-release
		}
		return make([]error, len(ms))
	})
	js, err := jetstream.New(e.nc())
	if err != nil {
		t.Fatal(err)
	}
	pending := func() int {
		cons, err := js.Consumer(context.Background(), bus.StreamAfteraction, "bytes")
		if err != nil {
			return 0
		}
		info, err := cons.Info(context.Background())
		if err != nil {
			return 0
		}
		return info.NumAckPending
	}
	servicetest.Eventually(t, "the buffer to fill while the handler is stuck", func() bool { return pending() >= maxBytes/size })
	for range 50 { // it must stay below everything while the handler is stuck
		if p := pending(); p >= n {
			t.Fatalf("%d of %d messages delivered to a stuck consumer bounded to %d bytes", p, n, maxBytes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	servicetest.Eventually(t, "every message handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen == n
	})
	mu.Lock()
	defer mu.Unlock()
	for i, b := range batches {
		if b > maxBytes/2+size {
			t.Errorf("batch %d holds %d bytes, want at most half of MaxBytes plus one message", i, b)
		}
	}
}

// Issue 9 item 17: the backlog of a consumer is exported and alerts above
// its threshold.
func TestConsumerBacklogIsExported(t *testing.T) {
	t.Parallel()
	e := setup(t)
	reg := prometheus.NewRegistry()
	b, err := bus.Connect(context.Background(), e.srv.URL(), "bustest", e.log, bus.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	c := cfg("backlog")
	c.BacklogInterval = 20 * time.Millisecond
	c.BacklogAlert = 5
	release := make(chan struct{})
	runConsumer(t, b, c, func(ctx context.Context, m *bus.Message) error {
		<-release
		return nil
	})
	defer close(release)
	e.publishNotes("1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
	servicetest.Eventually(t, "the backlog gauge at 10", func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			return false
		}
		for _, mf := range mfs {
			if mf.GetName() == "afteraction_consumer_backlog" {
				for _, m := range mf.GetMetric() {
					if m.GetGauge().GetValue() == 10 {
						return true
					}
				}
			}
		}
		return false
	})
}
