package bus_test

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
)

//go:embed testdata/migrations/*.sql
var migrationsFS embed.FS

const schema = "bustest"

type env struct {
	t    testing.TB
	srv  *bustest.Server
	bus  *bus.Bus
	pool *pgxpool.Pool
	log  *zap.Logger
}

func setup(t testing.TB) *env {
	t.Helper()
	migrations, err := fs.Sub(migrationsFS, "testdata/migrations")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: bustest.New(t), log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
	e.pool = pgtest.New(t, pgtest.Migration{Schema: schema, FS: migrations})
	e.bus = connect(t, e.srv.URL(), e.log)
	e.bus.RecordDeadLettersIn(e.pool)
	if err := e.bus.EnsureTopology(context.Background(), bus.Topology{}); err != nil {
		t.Fatal(err)
	}
	return e
}

func connect(t testing.TB, url string, log *zap.Logger) *bus.Bus {
	t.Helper()
	b, err := bus.Connect(context.Background(), url, "bustest", log, bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// consume runs h in the background until the test ends.
func (e *env) consume(cfg bus.ConsumerConfig, h bus.Handler) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.bus.Consume(ctx, cfg, h) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("consume: %v", err)
		}
	})
}

func updated(t testing.TB, note string) events.Envelope {
	t.Helper()
	env, err := events.New(events.TypeActionUpdated, "afteraction/test", "a1", events.ActionUpdated{
		ActionID: "0192f0c4-1b2c-7d3e-8f40-5a6b7c8d9e0f", IncidentID: "0192f0c4-1b2c-7d3e-8f40-5a6b7c8d9e10",
		Status: events.StatusDone, Note: note, ChangedAt: time.Now().UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func cfg(durable string) bus.ConsumerConfig {
	return bus.ConsumerConfig{
		Durable: durable, Stream: bus.StreamAfteraction, Subjects: []string{events.SubjectActionUpdated},
		MaxDeliver: 4, Backoff: []time.Duration{200 * time.Millisecond}, AckWait: 5 * time.Second,
	}
}

// apply is the exactly-once handler shape every service uses: processed_events
// and the state change in one transaction.
func (e *env) apply(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
	return postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		fresh, err := postgres.MarkProcessed(ctx, tx, m.Envelope.ID)
		if err != nil || !fresh {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO applied (event_id, note) VALUES ($1, $2)`, m.Envelope.ID, u.Note)
		return err
	})
}

func (e *env) count(eventID string) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM applied WHERE event_id = $1`, eventID).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// dlq returns the messages dead-lettered on dlq.bustest.<subject>.
func (e *env) dlq(subject string) []*jetstream.RawStreamMsg {
	e.t.Helper()
	return bustest.StreamMessages(e.t, e.srv.URL(), bus.StreamDLQ, bus.DLQSubject("bustest", subject))
}

func (e *env) nc() *nats.Conn {
	e.t.Helper()
	nc, err := nats.Connect(e.srv.URL())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	return nc
}

func (e *env) streamCount(subject string) uint64 {
	e.t.Helper()
	return bustest.SubjectCount(e.t, e.srv.URL(), bus.StreamAfteraction, subject)
}

func TestTransientErrorIsRedeliveredWithBackoff(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var mu sync.Mutex
	var seen []time.Time
	e.consume(cfg("retry"), bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		mu.Lock()
		seen = append(seen, time.Now())
		n := len(seen)
		mu.Unlock()
		if n < 3 {
			return errors.New("database briefly unavailable")
		}
		return e.apply(ctx, m, u)
	}))
	ev := updated(t, "retry")
	if err := e.bus.Publish(context.Background(), events.SubjectActionUpdated, ev); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the third delivery to succeed", func() bool { return e.count(ev.ID) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("deliveries = %d, want 3", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if gap := seen[i].Sub(seen[i-1]); gap < 200*time.Millisecond {
			t.Errorf("redelivery %d came after %v, before the 200ms back-off", i, gap)
		}
	}
	if got := e.dlq(events.SubjectActionUpdated); len(got) != 0 {
		t.Errorf("dead-lettered %d messages, want none", len(got))
	}
}

func TestPermanentErrorGoesToDLQOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var calls atomic.Int32
	e.consume(cfg("permanent"), bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		calls.Add(1)
		return bus.Permanent(errors.New("action a1 does not exist"))
	}))
	ev := updated(t, "permanent")
	if err := e.bus.Publish(context.Background(), events.SubjectActionUpdated, ev); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the DLQ entry", func() bool { return len(e.dlq(events.SubjectActionUpdated)) == 1 })
	time.Sleep(600 * time.Millisecond) // three back-off periods: a redelivery would show now
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
	m := e.dlq(events.SubjectActionUpdated)[0]
	if r := m.Header.Get(bus.HeaderDLQReason); r != "action a1 does not exist" {
		t.Errorf("reason = %q", r)
	}
	if id := m.Header.Get(bus.HeaderID); id != ev.ID {
		t.Errorf("dead-lettered ce-id = %q, want %q", id, ev.ID)
	}
	if m.Header.Get(bus.HeaderDLQStreamSeq) == "" {
		t.Error("no stream sequence on the DLQ entry")
	}
	var consumer, reason, eventID string
	if err := e.pool.QueryRow(context.Background(), `SELECT consumer, reason, event_id FROM dead_letters`).Scan(&consumer, &reason, &eventID); err != nil {
		t.Fatalf("the service's own dead_letters record: %v", err)
	}
	if consumer != "permanent" || reason != "action a1 does not exist" || eventID != ev.ID {
		t.Errorf("dead_letters row = %s %q %s", consumer, reason, eventID)
	}
}

func TestExhaustedRetriesGoToDLQ(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var calls atomic.Int32
	c := cfg("exhausted")
	c.MaxDeliver = 3
	c.Backoff = []time.Duration{50 * time.Millisecond}
	e.consume(c, func(ctx context.Context, m *bus.Message) error {
		calls.Add(1)
		return errors.New("downstream keeps failing")
	})
	if err := e.bus.Publish(context.Background(), events.SubjectActionUpdated, updated(t, "x")); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the DLQ entry", func() bool { return len(e.dlq(events.SubjectActionUpdated)) == 1 })
	if n := calls.Load(); n != 3 {
		t.Errorf("handler called %d times, want MaxDeliver=3", n)
	}
	if r := e.dlq(events.SubjectActionUpdated)[0].Header.Get(bus.HeaderDLQReason); r != "gave up after 3 deliveries: downstream keeps failing" {
		t.Errorf("reason = %q", r)
	}
}

func TestInvalidPayloadGoesToDLQAndNextMessageFlows(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.consume(cfg("invalid"), bus.Typed(events.TypeActionUpdated, e.apply))
	ctx := context.Background()
	cases := []struct {
		name string
		data string
	}{
		{"not json", `{"action_id": `},
		{"schema violation", `{"action_id":"0192f0c4-1b2c-7d3e-8f40-5a6b7c8d9e0f","incident_id":"0192f0c4-1b2c-7d3e-8f40-5a6b7c8d9e10","status":"finished","changed_at":"2026-11-27T10:00:00Z"}`},
	}
	for _, c := range cases {
		bad := updated(t, c.name)
		bad.Data = []byte(c.data)
		if err := e.bus.Publish(ctx, events.SubjectActionUpdated, bad); err != nil {
			t.Fatal(err)
		}
	}
	good := updated(t, "good")
	if err := e.bus.Publish(ctx, events.SubjectActionUpdated, good); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the valid message to be applied", func() bool { return e.count(good.ID) == 1 })
	servicetest.Eventually(t, "both invalid messages in the DLQ", func() bool { return len(e.dlq(events.SubjectActionUpdated)) == 2 })
	for _, m := range e.dlq(events.SubjectActionUpdated) {
		if r := m.Header.Get(bus.HeaderDLQReason); r == "" {
			t.Error("DLQ entry without a reason")
		}
	}
}

func TestSameEventPublishedTwiceIsHandledOnce(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var calls atomic.Int32
	e.consume(cfg("dupes"), bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		calls.Add(1)
		return e.apply(ctx, m, u)
	}))
	ev := updated(t, "dupe")
	ctx := context.Background()
	// Twice inside the duplicate window: JetStream stores one copy.
	for range 2 {
		if err := e.bus.Publish(ctx, events.SubjectActionUpdated, ev); err != nil {
			t.Fatal(err)
		}
	}
	// Once more as if the window had passed: a different Nats-Msg-Id, same event.
	m := bus.NewMsg(events.SubjectActionUpdated, ev)
	m.Header.Set(jetstream.MsgIDHeader, ev.ID+"-after-window")
	js, _ := jetstream.New(e.nc())
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "both stored copies delivered", func() bool { return calls.Load() == 2 })
	if got := e.streamCount(events.SubjectActionUpdated); got != 2 {
		t.Errorf("stream holds %d copies, want 2 (one dropped by the duplicate window)", got)
	}
	if n := e.count(ev.ID); n != 1 {
		t.Errorf("state applied %d times, want 1", n)
	}
}

func TestCrashAfterCommitBeforeAckDoesNotRepeatTheChange(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var calls atomic.Int32
	e.consume(cfg("crash"), bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		if err := e.apply(ctx, m, u); err != nil {
			return err
		}
		if calls.Add(1) == 1 {
			return errors.New("process died before the ack") // committed, never acked
		}
		return nil
	}))
	ev := updated(t, "crash")
	if err := e.bus.Publish(context.Background(), events.SubjectActionUpdated, ev); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the redelivery", func() bool { return calls.Load() == 2 })
	if n := e.count(ev.ID); n != 1 {
		t.Errorf("state applied %d times, want 1", n)
	}
}

func TestBatchIsolatesABadMessage(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	var envs []events.Envelope
	for i := range 20 {
		ev := updated(t, "batch")
		if i == 7 {
			ev.Data = []byte(`{"bad":`)
		}
		envs = append(envs, ev)
		if err := e.bus.Publish(ctx, events.SubjectActionUpdated, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.bus.Publish(ctx, events.SubjectActionUpdated, envs[3]); err != nil { // a duplicate inside the run
		t.Fatal(err)
	}
	var batches atomic.Int32
	c := cfg("batch")
	c.BatchSize = 50
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- e.bus.ConsumeBatch(bctx, c, func(ctx context.Context, ms []*bus.Message) []error {
			batches.Add(1)
			errs := make([]error, len(ms))
			err := postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
				ids := make([]string, len(ms))
				for i, m := range ms {
					ids[i] = m.Envelope.ID
				}
				fresh, err := postgres.MarkProcessedBatch(ctx, tx, ids)
				if err != nil {
					return err
				}
				for i, m := range ms {
					if _, err := events.Decode[events.ActionUpdated](events.TypeActionUpdated, m.Envelope.Data); err != nil {
						errs[i] = bus.Permanent(err)
						continue
					}
					if !fresh[m.Envelope.ID] {
						continue
					}
					if _, err := tx.Exec(ctx, `INSERT INTO applied (event_id) VALUES ($1)`, m.Envelope.ID); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				for i := range errs {
					errs[i] = err
				}
			}
			return errs
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	servicetest.Eventually(t, "19 valid messages applied", func() bool {
		var n int
		_ = e.pool.QueryRow(ctx, `SELECT count(*) FROM applied`).Scan(&n)
		return n == 19
	})
	servicetest.Eventually(t, "the bad message in the DLQ", func() bool { return len(e.dlq(events.SubjectActionUpdated)) == 1 })
	for i, ev := range envs {
		want := 1
		if i == 7 {
			want = 0
		}
		if n := e.count(ev.ID); n != want {
			t.Errorf("message %d applied %d times, want %d", i, n, want)
		}
	}
}

func enqueue(t *testing.T, pool *pgxpool.Pool, ev events.Envelope) {
	t.Helper()
	err := postgres.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		return postgres.Enqueue(context.Background(), tx, events.SubjectActionUpdated, ev)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) runRelay(b *bus.Bus) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &bus.Relay{Bus: b, Pool: e.pool, Schema: schema, Log: e.log, PollInterval: 100 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

func (e *env) unsent() int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox_pending`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestOutboxCommittedWhileNATSIsDownIsPublishedWhenItReturns(t *testing.T) {
	t.Parallel()
	e := setup(t)
	e.runRelay(e.bus)
	e.srv.Shutdown()
	ev := updated(t, "while down")
	enqueue(t, e.pool, ev)
	time.Sleep(500 * time.Millisecond) // the relay tries and fails meanwhile
	if n := e.unsent(); n != 1 {
		t.Fatalf("unsent rows while NATS is down = %d, want 1", n)
	}
	e.srv.Restart()
	servicetest.Eventually(t, "the outbox row sent", func() bool { return e.unsent() == 0 })
	if got := e.streamCount(events.SubjectActionUpdated); got != 1 {
		t.Errorf("stream holds %d copies, want 1", got)
	}
}

func TestKilledBetweenCommitAndPublishPublishesOnceAfterRestart(t *testing.T) {
	t.Parallel()
	e := setup(t)
	// First life: two rows committed; the process dies before its relay ran.
	a, b := updated(t, "a"), updated(t, "b")
	enqueue(t, e.pool, a)
	enqueue(t, e.pool, b)
	// ...and a second death: row b was published but the process died before
	// marking it sent.
	if err := e.bus.Publish(context.Background(), events.SubjectActionUpdated, b); err != nil {
		t.Fatal(err)
	}
	// After restart: a fresh connection and relay.
	e.runRelay(connect(t, e.srv.URL(), e.log))
	servicetest.Eventually(t, "the outbox drained", func() bool { return e.unsent() == 0 })
	if got := e.streamCount(events.SubjectActionUpdated); got != 2 {
		t.Errorf("stream holds %d messages, want 2 (a once, b once)", got)
	}
}

func TestHeadersArePercentEncodedRoundTrip(t *testing.T) {
	t.Parallel()
	ev := updated(t, "x")
	ev.Subject = "Zoë's incident 100%\nnext"
	m := bus.NewMsg("afteraction.action.updated", ev)
	got := bus.EnvelopeOf(m.Subject, m.Header, m.Data)
	if got.Subject != ev.Subject || got.ID != ev.ID || got.Type != ev.Type || !got.Time.Equal(ev.Time) {
		t.Errorf("round trip = %+v, want %+v", got, ev)
	}
	for k, vs := range m.Header {
		for _, v := range vs {
			for _, c := range []byte(v) {
				if c < 0x20 || c >= 0x7f {
					t.Errorf("header %s carries raw byte %#x", k, c)
				}
			}
		}
	}
}

func TestOversizedOutboxRowIsSetAsideAndDoesNotBlockTheOthers(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	a, c := updated(t, "before"), updated(t, "after")
	enqueue(t, e.pool, a)
	// Enqueue refuses what NATS cannot carry...
	big := updated(t, "big")
	big.Data = []byte(`"` + strings.Repeat("x", 2<<20) + `"`)
	err := postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		return postgres.Enqueue(ctx, tx, events.SubjectActionUpdated, big)
	})
	if !errors.Is(err, postgres.ErrEventTooLarge) {
		t.Fatalf("enqueue of 2 MiB: %v, want ErrEventTooLarge", err)
	}
	// ...but a row written around it (an older version, a smaller server limit)
	// must not stop the relay.
	if _, err := e.pool.Exec(ctx, `INSERT INTO outbox (event_id, subject, ce_type, ce_source, ce_subject, ce_time, data)
VALUES ($1, $2, $3, $4, $5, $6, $7)`, big.ID, events.SubjectActionUpdated, big.Type, big.Source, big.Subject, big.Time, big.Data); err != nil {
		t.Fatal(err)
	}
	enqueue(t, e.pool, c)
	e.runRelay(e.bus)
	servicetest.Eventually(t, "the two normal rows sent", func() bool { return e.streamCount(events.SubjectActionUpdated) == 2 })
	var dead bool
	var lastErr string
	if err := e.pool.QueryRow(ctx, `SELECT dead_at IS NOT NULL, coalesce(last_error, '') FROM outbox WHERE event_id = $1`, big.ID).Scan(&dead, &lastErr); err != nil {
		t.Fatal(err)
	}
	if !dead || !strings.Contains(lastErr, "maximum payload") {
		t.Errorf("oversized row: dead=%v last_error=%q, want set aside with the reason", dead, lastErr)
	}
	if n := e.unsent(); n != 0 {
		t.Errorf("unsent rows = %d, want none (the oversized one is set aside, not pending)", n)
	}
}

func TestInfrastructureFailuresDoNotUseUpDeliveries(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var calls atomic.Int32
	c := cfg("outage")
	c.MaxDeliver = 3
	c.Backoff = []time.Duration{20 * time.Millisecond}
	e.consume(c, bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		if calls.Add(1) <= 6 { // twice MaxDeliver: Postgres is down for a while
			return fmt.Errorf("begin: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
		}
		return e.apply(ctx, m, u)
	}))
	ev := updated(t, "outage")
	if err := e.bus.Publish(context.Background(), events.SubjectActionUpdated, ev); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the message applied after the outage", func() bool { return e.count(ev.ID) == 1 })
	if got := e.dlq(events.SubjectActionUpdated); len(got) != 0 {
		t.Errorf("an outage dead-lettered %d messages", len(got))
	}
}

func TestPlainPublishesOfTheSameBodyAreDistinctEvents(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var mu sync.Mutex
	ids := map[string]int{}
	e.consume(cfg("plain"), func(ctx context.Context, m *bus.Message) error {
		mu.Lock()
		ids[m.Envelope.ID]++
		mu.Unlock()
		return nil
	})
	body := updated(t, "A").Data
	for range 2 { // a ticket that goes A -> B -> A publishes A twice, without any id
		if err := e.bus.PublishRaw(context.Background(), events.SubjectActionUpdated, "", body); err != nil {
			t.Fatal(err)
		}
	}
	servicetest.Eventually(t, "both deliveries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) == 2
	})
}

func TestDeadLetterIsReplayedOnceTheCauseIsFixed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var fixed atomic.Bool
	e.consume(cfg("replay"), bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		if !fixed.Load() {
			return bus.Permanent(errors.New("action a1 does not exist yet"))
		}
		return e.apply(ctx, m, u)
	}))
	ev := updated(t, "replay")
	if err := e.bus.Publish(context.Background(), events.SubjectActionUpdated, ev); err != nil {
		t.Fatal(err)
	}
	var dl []bus.DeadLetterMsg
	servicetest.Eventually(t, "the dead letter", func() bool {
		var err error
		dl, err = e.bus.DeadLetters(context.Background(), "bustest")
		return err == nil && len(dl) == 1
	})
	if dl[0].EventID != ev.ID || dl[0].Subject != events.SubjectActionUpdated || dl[0].Reason != "action a1 does not exist yet" {
		t.Fatalf("dead letter = %+v", dl[0])
	}
	fixed.Store(true)
	if _, err := e.bus.Replay(context.Background(), dl[0].Seq); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the replayed message applied", func() bool { return e.count(ev.ID) == 1 })
	if left, err := e.bus.DeadLetters(context.Background(), ""); err != nil || len(left) != 0 {
		t.Errorf("DLQ after replay: %v %v", left, err)
	}
}

// An event a service writes to the DLQ itself (the tracker's refused bridge
// deliveries) is listed under that service, says what it is, and is not
// replayed (it has no original subject).
func TestServiceWrittenDeadLetterIsListedNotReplayed(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	ev := updated(t, "bridge refused")
	ev.Type = events.TypeBridgeDeliveryFailed
	if err := e.bus.Publish(ctx, "dlq.tracker.bridge.gh", ev); err != nil {
		t.Fatal(err)
	}
	var dl []bus.DeadLetterMsg
	servicetest.Eventually(t, "the tracker's dead letter", func() bool {
		var err error
		dl, err = e.bus.DeadLetters(ctx, "tracker")
		return err == nil && len(dl) == 1
	})
	if dl[0].Service != "tracker" || dl[0].Type != events.TypeBridgeDeliveryFailed || !strings.Contains(dl[0].Reason, "not replayable") {
		t.Errorf("dead letter = %+v", dl[0])
	}
	if _, err := e.bus.Replay(ctx, dl[0].Seq); err == nil {
		t.Error("replayed a dead letter that has no original subject")
	}
}

func TestEnsureTopologyIsIdempotentAndAppliesChanges(t *testing.T) {
	t.Parallel()
	e := setup(t) // has ensured the topology once
	ctx := context.Background()
	if err := e.bus.EnsureTopology(ctx, bus.Topology{}); err != nil {
		t.Fatalf("second ensure: %v", err)
	}
	if err := e.bus.EnsureTopology(ctx, bus.Topology{DuplicateWindow: 5 * time.Minute}); err != nil {
		t.Fatalf("ensure with a new duplicate window: %v", err)
	}
	js, _ := jetstream.New(e.nc())
	s, err := js.Stream(ctx, bus.StreamAfteraction)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Duplicates; got != 5*time.Minute {
		t.Errorf("duplicate window = %v, want the updated 5m", got)
	}
}
