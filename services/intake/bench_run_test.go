package intake_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"syscall"
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
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchConsumer(b, batch, 1) })
	}
}

// BenchmarkConsumerReplicas is BenchmarkConsumer (batch 500) with one and
// with two replicas of intake (two Runs in this process, with their own
// pools, relays and pull loops) competing on the one durable consumer.
func BenchmarkConsumerReplicas(b *testing.B) {
	for _, replicas := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) { benchConsumer(b, 500, replicas) })
	}
}

func benchConsumer(b *testing.B, batch, replicas int) {
	srv := bustest.New(b)
	dsn := pgtest.NewDatabase(b)
	cfg, err := intake.LoadConfig(func(k string) string {
		return map[string]string{"DATABASE_URL": dsn, "NATS_URL": srv.URL(), "AUTH_DISABLED": "true",
			"INTAKE_BATCH_SIZE": fmt.Sprint(batch), "LOG_LEVEL": "error"}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	for range replicas {
		servicetest.Start(b, func(ctx context.Context, ln net.Listener) error {
			return intake.Run(ctx, cfg, intake.Deps{Log: zap.NewNop(), Listener: ln})
		})
	}
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
	cpuBefore := processCPU(b)
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
	cpu := processCPU(b) - cpuBefore
	var registered int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM incidents`).Scan(&registered); err != nil {
		b.Fatal(err)
	}
	if registered != b.N {
		b.Fatalf("%d incidents registered, want %d", registered, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "incidents/s")
	// CPU of this process (intake, the embedded NATS server and the
	// publisher; not Postgres) per incident: what a loaded machine inflates
	// least.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/incident")
}

// processCPU returns the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
