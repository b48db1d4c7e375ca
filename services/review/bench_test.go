package review

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/services/review/postgres"
)

// BenchmarkConsumer measures the registered-incident consumer: b.N distinct
// incidents, each opening a review (review row, participants, review.opened
// in the outbox), with one transaction per message (batch=1, the baseline)
// against one per batch with a savepoint per message. Compare msgs/s.
func BenchmarkConsumer(b *testing.B) {
	for _, batch := range []int{1, bus.TxBatchSize} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			pool := pgtest.New(b, pgtest.Migration{Schema: postgres.Schema, FS: postgres.Migrations()})
			policy, err := ParsePolicy(DefaultPolicy)
			if err != nil {
				b.Fatal(err)
			}
			svc, err := NewService(postgres.New(pool), ServiceConfig{Policy: policy, Questionnaire: DefaultQuestionnaire,
				Invites: testInvites, PublicURL: "http://review.test/"}, zap.NewNop(), nil)
			if err != nil {
				b.Fatal(err)
			}
			cfg := IncidentRegisteredConsumer()
			cfg.BatchSize = batch
			closed := time.Now().UTC().Add(-time.Hour)
			bustest.RunConsumerBench(b, bustest.ConsumerBench[events.IncidentRegistered]{
				Service: "review", Type: events.TypeIncidentRegistered, Example: "afteraction.incident.registered.v1.example.json",
				Vary: func(_ int, e *events.IncidentRegistered) string {
					e.IncidentID, e.Incident.Timestamps.ClosedAt = uuid.Must(uuid.NewV7()).String(), closed
					return e.IncidentID
				},
				Consume: func(ctx context.Context, b *bus.Bus) error { return svc.subscribe(ctx, b, cfg) },
				Pool:    pool,
			})
		})
	}
}
