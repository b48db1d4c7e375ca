package bustest

import (
	"context"
	"encoding/json"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/schemas"
)

// ConsumerBench describes a benchmark of one service consumer fed with
// copies of a schema example event.
type ConsumerBench[T any] struct {
	// Service is the bus's service name.
	Service string
	// Type is the ce-type of the events; Example the file under
	// schemas/events/examples that holds one.
	Type, Example string
	// Vary makes the i-th copy distinct (new ids) and returns its ce-subject.
	Vary func(i int, e *T) string
	// Consume runs the consumer on b until ctx is cancelled.
	Consume func(ctx context.Context, b *bus.Bus) error
	// Pool is the service's pool: its processed_events rows count the handled messages.
	Pool *pgxpool.Pool
}

// RunConsumerBench publishes b.N varied copies of the example to a fresh
// in-process NATS server (not timed), runs the consumer until every one is
// in processed_events, reports the rate as the "msgs/s" metric and returns it.
func RunConsumerBench[T any](b *testing.B, c ConsumerBench[T]) float64 {
	b.Helper()
	ctx := context.Background()
	srv := New(b)
	bs, err := bus.Connect(ctx, srv.URL(), c.Service, zap.NewNop(), bus.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	if err := bs.EnsureTopology(ctx, bus.Topology{}); err != nil {
		b.Fatal(err)
	}
	raw, err := fs.ReadFile(schemas.FS(), "events/examples/"+c.Example)
	if err != nil {
		b.Fatal(err)
	}
	var e T
	if err := json.Unmarshal(raw, &e); err != nil {
		b.Fatal(err)
	}
	subject, err := events.SubjectOf(c.Type)
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]*nats.Msg, b.N)
	for i := range msgs {
		about := c.Vary(i, &e)
		env, err := events.New(c.Type, "bench", about, e)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = bus.NewMsg(subject, env)
	}
	return ConsumerRate(b, srv.URL(), msgs, func(ctx context.Context) error { return c.Consume(ctx, bs) },
		func(ctx context.Context) (n int, err error) {
			err = c.Pool.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&n)
			return n, err
		})
}

// ConsumerRate measures one consumer's throughput for a benchmark: it
// publishes msgs to the server at url first (not timed), then runs consume
// until handled reports len(msgs) messages done, stops it, reports the rate
// as the "msgs/s" metric of b and returns it.
func ConsumerRate(b *testing.B, url string, msgs []*nats.Msg, consume func(ctx context.Context) error,
	handled func(ctx context.Context) (int, error)) float64 {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	for i, m := range msgs {
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 { // stay under the client's limit of outstanding async publishes
			<-js.PublishAsyncComplete()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishing did not complete")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- consume(ctx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		n, err := handled(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n >= len(msgs) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("handled %d of %d messages", n, len(msgs))
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	rate := float64(len(msgs)) / elapsed.Seconds()
	b.ReportMetric(rate, "msgs/s")
	return rate
}
