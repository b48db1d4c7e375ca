package bus

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/afteraction/afteraction/pkg/postgres"
)

// TxBatchSize is the batch size that suits InOneTx. Each message takes a
// savepoint (a subtransaction); past 64 of them Postgres's per-backend
// subtransaction cache overflows and other sessions' snapshots get slower
// while the batch is open, and 64 messages amortise the commit well already.
const TxBatchSize = 64

// InOneTx turns a per-message Handler into a BatchHandler for ConsumeBatch
// that handles the whole batch in one transaction of pool: one commit (one
// fsync) for the batch instead of one per message. The handler keeps its
// shape: every postgres.InTx it makes on pool with the context it is given
// runs in a savepoint of the batch's transaction, so a message that fails
// rolls back its own writes alone and keeps its own outcome (retry, or DLQ
// for Permanent) while its neighbours commit. Messages are handled in order,
// one at a time, and each sees what the earlier ones wrote.
//
// An infrastructure failure (see IsInfrastructure) stops the batch: the
// transaction is rolled back and every message of the batch is retried, as it
// is when the commit fails. A handler must therefore reach Postgres only
// through postgres.InTx on pool (reads through pool on another connection do
// not see the batch's uncommitted writes) and do nothing it cannot repeat
// before its InTx returns.
func InOneTx(pool *pgxpool.Pool, h Handler) BatchHandler {
	return func(ctx context.Context, ms []*Message) []error {
		errs := make([]error, len(ms))
		err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			bctx := postgres.WithTx(ctx, pool, tx)
			for i, m := range ms {
				errs[i] = safeCall(bctx, h, m)
				if IsInfrastructure(errs[i]) {
					return errs[i]
				}
			}
			return nil
		})
		if err != nil {
			for i := range errs {
				errs[i] = err
			}
		}
		return errs
	}
}

// ConsumeInTx is ConsumeBatch with InOneTx(pool, h): it handles up to
// cfg.BatchSize messages per transaction of pool, each in a savepoint, with
// h's per-message rules.
func (b *Bus) ConsumeInTx(ctx context.Context, cfg ConsumerConfig, pool *pgxpool.Pool, h Handler) error {
	return b.ConsumeBatch(ctx, cfg, InOneTx(pool, h))
}
