package tracker

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// BenchmarkConsumer measures the review-completed consumer: b.N completed
// reviews of 5 action items each (5 actions and 5 action.created events per
// message), one transaction per message (batch=1, the baseline) against one
// per batch with a savepoint per message. Compare msgs/s.
func BenchmarkConsumer(b *testing.B) {
	for _, batch := range []int{1, bus.TxBatchSize} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			pool := pgtest.New(b, pgtest.Migration{Schema: store.Schema, FS: store.Migrations()})
			c := NewService(store.New(pool), zap.NewNop(), nil, nil).consumers()[0]
			c.cfg.BatchSize = batch
			bustest.RunConsumerBench(b, bustest.ConsumerBench[events.ReviewCompleted]{
				Service: ServiceName, Type: events.TypeReviewCompleted, Example: "afteraction.review.completed.v1.example.json",
				Vary: func(_ int, rc *events.ReviewCompleted) string {
					rc.ReviewID, rc.IncidentID = uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
					return rc.IncidentID
				},
				Consume: func(ctx context.Context, b *bus.Bus) error { return c.run(ctx, b, pool) },
				Pool:    pool,
			})
		})
	}
}
