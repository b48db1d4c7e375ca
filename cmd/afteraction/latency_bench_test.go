package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
)

// BenchmarkCloseToReview is the load generator of the close → review-opened
// latency: on the dev stack's settings (embedded NATS with fsync always,
// every service in this process, one Postgres), it publishes closed
// incidents at a steady rate for five seconds and measures, per incident, its
// ce-time (set when it is sent) to its review's opened_at; it reports p50 and
// p99 in milliseconds. b.N is ignored: the rate and duration make the load.
func BenchmarkCloseToReview(b *testing.B) {
	for _, rate := range []int{100, 500} {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			dsn := pgtest.NewDatabase(b)
			s, err := StartStack(ctx, StackConfig{DatabaseURL: dsn, StoreDir: b.TempDir(), Log: zap.NewNop()})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Stop() //nolint:errcheck
			nc, err := nats.Connect(s.NATSURL)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			var inc events.IncidentClosed
			if err := json.Unmarshal(demoIncident, &inc); err != nil {
				b.Fatal(err)
			}
			shiftToNow(&inc, time.Now().UTC().Add(-time.Hour))
			n := rate * 5
			sent := map[string]time.Time{}
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			b.ResetTimer()
			for i := range n {
				<-tick.C
				inc.ExternalID = fmt.Sprintf("LOAD-%d-%d", rate, i)
				env, err := events.New(events.TypeIncidentClosed, "load", inc.ExternalID, inc)
				if err != nil {
					b.Fatal(err)
				}
				sent[inc.ExternalID] = env.Time
				if _, err := js.PublishMsgAsync(bus.NewMsg(events.SubjectIncidentClosedPrefix+inc.Source, env)); err != nil {
					b.Fatal(err)
				}
			}
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close(context.Background())
			var lat []time.Duration
			for ctx.Err() == nil {
				rows, err := conn.Query(ctx, `SELECT incident->>'external_id', opened_at FROM review.reviews`)
				if err != nil {
					b.Fatal(err)
				}
				lat = lat[:0]
				var id string
				var opened time.Time
				_, err = pgx.ForEachRow(rows, []any{&id, &opened}, func() error {
					if t, ok := sent[id]; ok {
						lat = append(lat, opened.Sub(t))
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				if len(lat) == n {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			b.StopTimer()
			if len(lat) < n {
				b.Fatalf("%d of %d reviews opened", len(lat), n)
			}
			slices.Sort(lat)
			ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
			b.ReportMetric(ms(0.50), "p50-ms")
			b.ReportMetric(ms(0.99), "p99-ms")
		})
	}
}
