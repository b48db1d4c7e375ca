package bus

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

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

// BatchWriter is the set-based first pass of InOneTxSet. In tx, the batch's
// transaction, it handles the messages of ms it can take together with a few
// statements for all of them (recording their event ids in processed_events
// in tx, as a handler does) and returns the others, in delivery order, for the
// per-message handler. It must leave to the handler every message whose
// outcome could depend on the others: a later message about something an
// earlier one of the batch touches, or one it cannot tell is valid. A message
// it took is acked. An error makes InOneTxSet roll the transaction back and
// handle the batch one message at a time instead.
type BatchWriter func(ctx context.Context, tx pgx.Tx, ms []*Message) (rest []*Message, err error)

// InOneTxSet is InOneTx with a set-based first pass: in the batch's
// transaction write takes what it can of the batch with a few statements for
// all of it, then h handles the messages write left, in order, each in a
// savepoint. So the common case costs a few round trips per batch instead of
// a few per message, and one bad message still fails alone: when write fails
// (a message the set could not take, a constraint, a panic), the transaction
// is rolled back and the whole batch goes through InOneTx(pool, h), which
// isolates the culprit. An infrastructure failure retries the whole batch.
func InOneTxSet(pool *pgxpool.Pool, write BatchWriter, h Handler) BatchHandler {
	each := InOneTx(pool, h)
	return func(ctx context.Context, ms []*Message) []error {
		errs := make([]error, len(ms))
		var fallback error
		err := postgres.InTx(ctx, pool, func(tx pgx.Tx) error {
			rest, err := safeWrite(ctx, write, tx, ms)
			if err != nil {
				if !IsInfrastructure(err) {
					fallback = err
				}
				return err
			}
			index := make(map[*Message]int, len(ms))
			for i, m := range ms {
				index[m] = i
			}
			bctx := postgres.WithTx(ctx, pool, tx)
			for _, m := range rest {
				i, ok := index[m]
				if !ok { // a writer bug: one message at a time still handles the batch right
					fallback = fmt.Errorf("batch writer returned a message that is not of the batch (%s)", m.Envelope.ID)
					return fallback
				}
				errs[i] = safeCall(bctx, h, m)
				if IsInfrastructure(errs[i]) {
					return errs[i]
				}
			}
			return nil
		})
		if fallback != nil {
			// Correct but slow: worth an operator's look when it repeats.
			consumerLog(ctx).Warn("set-based batch write failed; handling the batch one message at a time",
				zap.Int("messages", len(ms)), zap.Error(fallback))
			return each(ctx, ms)
		}
		if err != nil {
			for i := range errs {
				errs[i] = err
			}
		}
		return errs
	}
}

func safeWrite(ctx context.Context, write BatchWriter, tx pgx.Tx, ms []*Message) (rest []*Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("batch writer panic: %v\n%s", r, debug.Stack())
		}
	}()
	return write(ctx, tx, ms)
}
