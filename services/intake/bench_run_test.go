package intake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/intake"
)

// BenchmarkConsumer measures intake end to end, as it runs in production: b.N
// distinct closed incidents (the ~1.8 KiB "typical" payload) published to
// JetStream, consumed by Run, validated, registered exactly once with their
// raw payload and revision, and their registered events committed to the
// outbox and relayed. The raw baseline is one transaction per message
// (INTAKE_BATCH_SIZE=1); compare incidents/s of the two.
func BenchmarkConsumer(b *testing.B) {
	for _, batch := range []int{1, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			srv := bustest.New(b)
			dsn := pgtest.NewDatabase(b)
			cfg, err := intake.LoadConfig(func(k string) string {
				return map[string]string{"DATABASE_URL": dsn, "NATS_URL": srv.URL(), "AUTH_DISABLED": "true",
					"INTAKE_BATCH_SIZE": fmt.Sprint(batch), "LOG_LEVEL": "error"}[k]
			})
			if err != nil {
				b.Fatal(err)
			}
			servicetest.Start(b, func(ctx context.Context, ln net.Listener) error {
				return intake.Run(ctx, cfg, intake.Deps{Log: zap.NewNop(), Listener: ln})
			})
			ctx := context.Background()
			pool, err := postgres.Open(ctx, dsn, "intake")
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()

			nc, err := nats.Connect(srv.URL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			payload := typicalIncident(b)
			msgs := make([]*nats.Msg, b.N)
			for i := range msgs {
				payload.ExternalID = fmt.Sprintf("BENCH-%d", i)
				env, err := events.New(events.TypeIncidentClosed, "bench", payload.ExternalID, payload)
				if err != nil {
					b.Fatal(err)
				}
				msgs[i] = bus.NewMsg(events.SubjectIncidentClosedPrefix+payload.Source, env)
			}
			b.ResetTimer()
			for i, m := range msgs {
				if _, err := js.PublishMsgAsync(m); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 { // stay under the client's limit of outstanding async publishes
					<-js.PublishAsyncComplete()
				}
			}
			<-js.PublishAsyncComplete()
			for {
				var n int
				if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM outbox_pending p WHERE p.id = o.id)`).Scan(&n); err != nil {
					b.Fatal(err)
				}
				if n >= b.N {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "incidents/s")
		})
	}
}

// typicalIncident is what a ticketing system's webhook usually carries: the
// rich example cut to 4 timeline entries and 3 people (~1.8 KiB).
func typicalIncident(b *testing.B) events.IncidentClosed {
	raw, err := fs.ReadFile(schemas.FS(), "events/examples/incident.closed.v1.example.json")
	if err != nil {
		b.Fatal(err)
	}
	var inc events.IncidentClosed
	if err := json.Unmarshal(raw, &inc); err != nil {
		b.Fatal(err)
	}
	inc.Timeline, inc.People, inc.AffectedAssets = inc.Timeline[:4], inc.People[:3], inc.AffectedAssets[:1]
	inc.Indicators, inc.Notifications, inc.Labour, inc.Links, inc.Notes = nil, nil, nil, nil, nil
	inc.Impact, inc.Playbook, inc.BusinessUnits = nil, nil, nil
	inc.Summary = inc.Summary[:min(len(inc.Summary), 400)]
	return inc
}
