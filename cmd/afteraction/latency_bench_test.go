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
// p99 in milliseconds, and the same split at the time intake registered the
// incident (intake-*: closed → registered, review-*: registered → review
// opened; both times are taken as the handlers start, before their commits).
// b.N is ignored: the rate and duration make the load.
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
			// lat is closed → review opened; intakeHop and reviewHop split it
			// at the time intake registered the incident.
			var lat, intakeHop, reviewHop []time.Duration
			for ctx.Err() == nil {
				rows, err := conn.Query(ctx, `SELECT r.incident->>'external_id', r.opened_at, i.registered_at
FROM review.reviews r JOIN intake.incidents i ON i.source = r.incident->>'source' AND i.external_id = r.incident->>'external_id'`)
				if err != nil {
					b.Fatal(err)
				}
				lat, intakeHop, reviewHop = lat[:0], intakeHop[:0], reviewHop[:0]
				var id string
				var opened, registered time.Time
				_, err = pgx.ForEachRow(rows, []any{&id, &opened, &registered}, func() error {
					if t, ok := sent[id]; ok {
						lat = append(lat, opened.Sub(t))
						intakeHop, reviewHop = append(intakeHop, registered.Sub(t)), append(reviewHop, opened.Sub(registered))
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
			ms := func(ds []time.Duration, q float64) float64 {
				return float64(ds[int(q*float64(len(ds)-1))]) / float64(time.Millisecond)
			}
			for _, ds := range [][]time.Duration{lat, intakeHop, reviewHop} {
				slices.Sort(ds)
			}
			b.ReportMetric(ms(lat, 0.50), "p50-ms")
			b.ReportMetric(ms(lat, 0.99), "p99-ms")
			b.ReportMetric(ms(intakeHop, 0.50), "intake-p50-ms")
			b.ReportMetric(ms(intakeHop, 0.99), "intake-p99-ms")
			b.ReportMetric(ms(reviewHop, 0.50), "review-p50-ms")
			b.ReportMetric(ms(reviewHop, 0.99), "review-p99-ms")
		})
	}
}
