package report_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/services/report"
	reportpg "github.com/afteraction/afteraction/services/report/postgres"
)

// BenchmarkConsumer measures the programme read model's consumer of
// registered incidents: b.N distinct incidents, one transaction per message
// (batch=1, the baseline) against one per batch with a savepoint per
// message. Compare msgs/s.
func BenchmarkConsumer(b *testing.B) {
	for _, batch := range []int{1, bus.TxBatchSize} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			pool := pgtest.New(b, pgtest.Migration{Schema: reportpg.Schema, FS: reportpg.Migrations()})
			sub := report.Subscriptions(nil, report.Projector{Model: report.NewPostgresStore(pool)})[1]
			sub.Config.BatchSize = batch
			bustest.RunConsumerBench(b, bustest.ConsumerBench[events.IncidentRegistered]{
				Service: "report", Type: events.TypeIncidentRegistered, Example: "afteraction.incident.registered.v1.example.json",
				Vary: func(_ int, e *events.IncidentRegistered) string {
					e.IncidentID = uuid.Must(uuid.NewV7()).String()
					return e.IncidentID
				},
				Consume: func(ctx context.Context, b *bus.Bus) error { return sub.Run(ctx, b, pool) },
				Pool:    pool,
			})
		})
	}
}
