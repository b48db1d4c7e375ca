package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
)

// BenchmarkConsume measures exactly-once consumption (processed_events + a state
// row per message, ack after commit) with one transaction per message (the raw
// baseline) against one transaction per batch. Compare msgs/s of the two.
func BenchmarkConsume(b *testing.B) {
	for _, mode := range []string{"per-message", "batched"} {
		b.Run(mode, func(b *testing.B) {
			e := setup(b)
			js := e.js()
			ctx := context.Background()
			n := max(b.N, 1)
			env := updated(b, "bench")
			for i := range n {
				ev := env
				ev.ID = fmt.Sprintf("%s-%d", env.ID, i)
				m := bus.NewMsg(events.SubjectActionUpdated, ev)
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
			var done atomic.Int64
			finished := make(chan struct{})
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			cfg := bus.ConsumerConfig{Durable: "bench", Stream: bus.StreamAfteraction, Subjects: []string{events.SubjectActionUpdated},
				BatchSize: 500, MaxAckPending: 5000, AckWait: time.Minute}
			count := func(k int) {
				if done.Add(int64(k)) == int64(n) {
					close(finished)
				}
			}
			b.ResetTimer()
			start := time.Now()
			if mode == "per-message" {
				go e.bus.Consume(cctx, cfg, func(ctx context.Context, m *bus.Message) error {
					err := postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
						fresh, err := postgres.MarkProcessed(ctx, tx, m.Envelope.ID)
						if err != nil || !fresh {
							return err
						}
						_, err = tx.Exec(ctx, `INSERT INTO applied (event_id) VALUES ($1)`, m.Envelope.ID)
						return err
					})
					if err == nil {
						count(1)
					}
					return err
				})
			} else {
				go e.bus.ConsumeBatch(cctx, cfg, func(ctx context.Context, ms []*bus.Message) []error {
					ids := make([]string, len(ms))
					for i, m := range ms {
						ids[i] = m.Envelope.ID
					}
					err := postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
						fresh, err := postgres.MarkProcessedBatch(ctx, tx, ids)
						if err != nil {
							return err
						}
						rows := make([][]any, 0, len(fresh))
						for id := range fresh {
							rows = append(rows, []any{id})
						}
						_, err = tx.CopyFrom(ctx, pgx.Identifier{"applied"}, []string{"event_id"}, pgx.CopyFromRows(rows))
						return err
					})
					errs := make([]error, len(ms))
					for i := range errs {
						errs[i] = err
					}
					if err == nil {
						count(len(ms))
					}
					return errs
				})
			}
			select {
			case <-finished:
			case <-time.After(5 * time.Minute):
				b.Fatalf("consumed %d of %d", done.Load(), n)
			}
			b.StopTimer()
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

func (e *env) js() jetstream.JetStream {
	js, err := jetstream.New(e.nc())
	if err != nil {
		e.t.Fatal(err)
	}
	return js
}
