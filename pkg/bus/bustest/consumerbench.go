package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConsumerRate measures one consumer's throughput for a benchmark: it
// publishes msgs to the server at url first (not timed), then runs consume
// until handled reports len(msgs) messages done, stops it, reports the rate
// as the "msgs/s" metric of b and returns it. handled typically counts the
// consumer's processed_events rows.
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
