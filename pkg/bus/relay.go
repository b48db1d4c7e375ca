package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/afteraction/afteraction/pkg/postgres"
)

// Relay publishes a service's committed outbox rows to JetStream. It claims
// unsent rows through their narrow outbox_pending markers with FOR UPDATE SKIP
// LOCKED (so replicas share the work), publishes them all asynchronously with
// Nats-Msg-Id = event id, waits for every PubAck and only then deletes the
// acknowledged rows' markers, in the same transaction that holds the claim.
// A row whose publish JetStream refuses MaxAttempts times (or at once, when
// it exceeds the maximum payload) is set aside, logged, and counted in
// afteraction_outbox_set_aside; the rows behind it go on. A crash before that
// commit leaves the rows unsent and they are published again; the stream's
// duplicate window and the consumers' processed_events absorb the copy.
// LISTEN/NOTIFY wakes it on commit; it also polls, because notifications are
// not stored.
type Relay struct {
	Bus    *Bus
	Pool   *pgxpool.Pool
	Schema string
	Log    *zap.Logger
	// BatchSize is how many rows one round claims (default 500).
	BatchSize int
	// PollInterval is how often it looks without a notification (default 1s).
	PollInterval time.Duration
	// Retention is how long sent rows are kept for republishing (default 7 days).
	Retention time.Duration
	// MaxAttempts is how many failed publishes of one row JetStream may answer
	// before the row is set aside (default 10). Failures during an outage
	// (JetStream not answering) do not count.
	MaxAttempts int
}

// finalPassTimeout bounds a relay pass that runs on after shutdown began.
const finalPassTimeout = 10 * time.Second

// Run relays until ctx is cancelled, then makes one last pass (bounded by ten
// seconds) so what was committed before shutdown goes out. It returns nil on
// shutdown; publish and database errors are logged and retried with back-off.
func (r *Relay) Run(ctx context.Context) error {
	batch := orDefault(r.BatchSize, 500)
	poll := orDefault(r.PollInterval, time.Second)
	retention := orDefault(r.Retention, 7*24*time.Hour)
	log := r.Log.Named("relay")
	wake := make(chan struct{}, 1)
	go r.listen(ctx, wake, log)

	lastPrune := time.Time{}
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalPassTimeout)
			defer cancel()
			if _, err := r.Drain(final, batch); err != nil {
				log.Warn("final outbox pass failed; rows stay for the next start", zap.Error(err))
			}
			return nil
		case <-wake:
		case <-timer.C:
		}
		// A pass in progress is finished even when shutdown begins: cut short,
		// its claimed rows could stay locked (the server notices the
		// cancelled connection late) while the final pass below skips them.
		pass, endPass := context.WithTimeout(context.WithoutCancel(ctx), finalPassTimeout)
		n, err := r.Drain(pass, batch)
		endPass()
		wait := poll
		if err != nil && ctx.Err() == nil {
			failures++
			wait = min(time.Duration(failures)*250*time.Millisecond, 10*time.Second)
			log.Warn("outbox relay failed; retrying", zap.Error(err), zap.Duration("retry_in", wait))
		} else {
			failures = 0
			if n > 0 {
				log.Debug("outbox relayed", zap.Int("events", n))
			}
		}
		if time.Since(lastPrune) > time.Hour {
			lastPrune = time.Now()
			r.refreshSetAside(ctx, log)
			if err := postgres.InTx(ctx, r.Pool, func(tx pgx.Tx) error {
				_, err := postgres.PruneOutbox(ctx, tx, time.Now().Add(-retention))
				return err
			}); err != nil && ctx.Err() == nil {
				log.Warn("prune outbox failed", zap.Error(err))
			}
		}
		timer.Reset(wait)
	}
}

// Drain publishes unsent rows until none are left and returns how many it sent.
func (r *Relay) Drain(ctx context.Context, batch int) (int, error) {
	batch = max(batch, 1)
	total := 0
	for {
		n, err := r.relayOnce(ctx, batch)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

func (r *Relay) relayOnce(ctx context.Context, limit int) (int, error) {
	sent := 0
	var pubErr error
	err := postgres.InTx(ctx, r.Pool, func(tx pgx.Tx) error {
		rows, err := postgres.ClaimOutbox(ctx, tx, limit)
		if err != nil || len(rows) == 0 {
			return err
		}
		// Every claimed row is in flight at once (the window is the claim,
		// at most BatchSize), and only acknowledged rows are marked sent.
		var ok, refused []int64
		failed := map[string][]int64{} // by error text
		var firstErr error
		answered := true // every failure came with JetStream's own answer
		fail := func(seq int64, err error) {
			failed[err.Error()] = append(failed[err.Error()], seq)
			firstErr = cmpErr(firstErr, err)
			var apiErr *jetstream.APIError
			answered = answered && errors.As(err, &apiErr)
		}
		futures := make([]jetstream.PubAckFuture, len(rows))
		// Each publish is a span, a child of the trace context stored with the row.
		spans := make([]trace.Span, len(rows))
		for i, row := range rows {
			env, span := r.Bus.startPublish(ctx, row.Subject, row.Envelope)
			spans[i] = span
			f, err := r.Bus.js.PublishMsgAsync(NewMsg(row.Subject, env), jetstream.WithMsgID(row.Envelope.ID))
			if err != nil {
				endSpan(span, err)
			}
			switch {
			case errors.Is(err, nats.ErrMaxPayload):
				// JetStream will never take it: set it aside rather than retry it forever.
				refused = append(refused, row.Seq)
				r.Log.Error("outbox event refused by NATS as too large; set aside",
					zap.String("event_id", row.Envelope.ID), zap.String("type", row.Envelope.Type), zap.Int("bytes", len(row.Envelope.Data)))
			case err != nil:
				fail(row.Seq, err)
			default:
				futures[i] = f
			}
		}
		wait, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for i, f := range futures {
			if f == nil {
				continue
			}
			var err error
			select {
			case <-f.Ok():
				ok = append(ok, rows[i].Seq)
			case err = <-f.Err():
				fail(rows[i].Seq, err)
			case <-wait.Done():
				err = fmt.Errorf("no PubAck: %w", wait.Err())
				fail(rows[i].Seq, err)
			}
			endSpan(spans[i], err)
		}
		if err := postgres.MarkSent(ctx, tx, ok); err != nil {
			return err
		}
		// A failure counts towards MaxAttempts only when it is the message's
		// own: JetStream answered it, or JetStream is otherwise up. An outage
		// sets nothing aside.
		counted := len(failed) > 0 && (answered || len(ok) > 0 || r.jetStreamUp(ctx))
		var exhausted []int64
		for reason, seqs := range failed {
			if !counted {
				break
			}
			ex, err := postgres.MarkFailed(ctx, tx, seqs, reason, r.maxAttempts())
			if err != nil {
				return err
			}
			exhausted = append(exhausted, ex...)
		}
		slices.Sort(exhausted)
		if err := r.setAside(ctx, tx, exhausted, "", "outbox event failed to publish too often; set aside"); err != nil {
			return err
		}
		if err := r.setAside(ctx, tx, refused, nats.ErrMaxPayload.Error(), ""); err != nil {
			return err
		}
		sent = len(ok)
		r.Bus.relayed.Add(float64(sent))
		pubErr = firstErr // commit what was acknowledged, report the rest
		return nil
	})
	if err == nil && pubErr != nil {
		err = fmt.Errorf("publish outbox: %w", pubErr)
	}
	return sent, err
}

// setAside sets the rows aside in tx, logs each with msg (when not empty)
// and counts them in the set-aside metrics.
func (r *Relay) setAside(ctx context.Context, tx pgx.Tx, seqs []int64, reason, msg string) error {
	if len(seqs) == 0 {
		return nil
	}
	n, err := postgres.SetAside(ctx, tx, seqs, reason)
	if err != nil {
		return err
	}
	if msg != "" {
		r.Log.Error(msg, zap.Int64("rows", n), zap.Int64("first_outbox_id", seqs[0]),
			zap.Int64("last_outbox_id", seqs[len(seqs)-1]), zap.Int("max_attempts", r.maxAttempts()))
	}
	r.Bus.outbox.setAsideTotal.Add(float64(n))
	r.Bus.outbox.setAside.Add(float64(n))
	return nil
}

func (r *Relay) maxAttempts() int { return orDefault(r.MaxAttempts, 10) }

// jetStreamUp reports whether JetStream answers an account info request.
func (r *Relay) jetStreamUp(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := r.Bus.js.AccountInfo(ctx)
	return err == nil
}

// refreshSetAside sets the set-aside gauge from the table.
func (r *Relay) refreshSetAside(ctx context.Context, log *zap.Logger) {
	n, err := postgres.CountSetAside(ctx, r.Pool)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("count set-aside outbox rows failed", zap.Error(err))
		}
		return
	}
	r.Bus.outbox.setAside.Set(float64(n))
	if n > 0 {
		log.Warn("outbox rows are set aside and need an operator", zap.Int("rows", n))
	}
}

// listen turns NOTIFY <schema>_outbox into wake-ups on its own connection,
// reconnecting after errors; polling covers the gaps.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}, log *zap.Logger) {
	for ctx.Err() == nil {
		err := r.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		log.Warn("outbox listener lost; polling meanwhile", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (r *Relay) listenOnce(ctx context.Context, wake chan<- struct{}) error {
	conn, err := pgx.ConnectConfig(ctx, r.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{r.Schema + "_outbox"}.Sanitize()); err != nil {
		return err
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// RunAlongside runs workers (consumers, HTTP server, periodic jobs) and the
// relay together until ctx is cancelled or a worker fails. Shutdown is ordered:
// the workers stop and finish what they were committing first, then the relay
// makes its final pass, so nothing committed during shutdown waits for the
// next start. It returns the first worker error.
func (r *Relay) RunAlongside(ctx context.Context, workers ...func(context.Context) error) error {
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	relayDone := make(chan error, 1)
	go func() { relayDone <- r.Run(relayCtx) }()
	g, gctx := errgroup.WithContext(ctx)
	for _, w := range workers {
		g.Go(func() error { return w(gctx) })
	}
	err := g.Wait()
	stopRelay()
	if rerr := <-relayDone; err == nil {
		err = rerr
	}
	return err
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
