package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/tracker/bridge"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// Delivery and Failure are the store's types.
type (
	Delivery = store.Delivery
	Failure  = store.Failure
)

// DeliveryOptions tune the delivery loops.
type DeliveryOptions struct {
	// Poll is how often an idle loop looks for due deliveries.
	Poll time.Duration
	// Lease is how long a claimed delivery is reserved for one caller; a
	// crashed caller's deliveries are retried after it.
	Lease time.Duration
	// BackoffBase and BackoffMax bound the exponential back-off after a
	// failure: the n-th consecutive failure waits a random time between half
	// and all of min(BackoffMax, BackoffBase·2ⁿ⁻¹), or longer when the remote
	// asked for it (Retry-After, X-RateLimit-Reset).
	BackoffBase, BackoffMax time.Duration
}

func (o DeliveryOptions) withDefaults() DeliveryOptions {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 2 * time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 10 * time.Minute
	}
	return o
}

// maxRetryAfter caps how long a remote may ask the loop to wait.
const maxRetryAfter = time.Hour

// errCrashed is returned by a test hook that simulates a crash between the
// remote's answer and the local commit.
var errCrashed = errors.New("crashed after the remote answered")

// deliverer works off the pending deliveries of one bridge, one request at a
// time, at most one request per interval. After a failure it pauses the
// whole bridge (not only the failed delivery) for the back-off, so an outage
// costs one probe per back-off period and its end brings no burst: due
// deliveries then go out at the bridge's rate.
type deliverer struct {
	svc      *Service
	b        bridge.Bridge
	interval time.Duration
	opts     DeliveryOptions
	// failures counts consecutive failed calls; pausedUntil is when the next may go.
	failures    int
	pausedUntil time.Time
}

// runDeliveries runs one delivery loop per configured bridge until ctx ends.
func (s *Service) runDeliveries(ctx context.Context, opts DeliveryOptions) error {
	if s.bridges == nil || len(s.bridges.list) == 0 {
		return nil
	}
	opts = opts.withDefaults()
	done := make(chan struct{}, len(s.bridges.list))
	for i, b := range s.bridges.list {
		d := &deliverer{svc: s, b: b, interval: s.bridges.interval[i], opts: opts}
		go func() {
			defer func() { done <- struct{}{} }()
			d.run(ctx)
		}()
	}
	for range s.bridges.list {
		<-done
	}
	return nil
}

func (d *deliverer) run(ctx context.Context) {
	log := d.svc.log.With(zap.String("bridge", d.b.Name()))
	for ctx.Err() == nil {
		if d.paused() {
			sleep(ctx, min(d.pausedUntil.Sub(d.svc.now()), d.opts.Poll))
			continue
		}
		n, err := d.once(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("delivery loop failed; retrying", zap.Error(err))
			sleep(ctx, d.opts.Poll)
		case n == 0:
			sleep(ctx, d.opts.Poll)
		default:
			sleep(ctx, d.interval)
		}
	}
}

// paused reports whether the bridge is backing off after a failure.
func (d *deliverer) paused() bool { return d.svc.now().Before(d.pausedUntil) }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// once claims one due delivery and delivers it; it returns how many it
// claimed (0 or 1). Errors are local (Postgres); remote errors are recorded
// on the delivery.
func (d *deliverer) once(ctx context.Context) (int, error) {
	ds, err := d.svc.store.ClaimDue(ctx, d.b.Name(), d.svc.now(), d.opts.Lease, 1)
	if err != nil || len(ds) == 0 {
		return 0, err
	}
	return 1, d.deliver(ctx, ds[0])
}

// deliver makes the remote match the action's current state: it creates the
// issue (after searching for its marker when an earlier create call may have
// reached the remote) or updates it, then records the outcome.
func (d *deliverer) deliver(ctx context.Context, dl Delivery) error {
	s := d.svc
	a, err := s.store.Action(ctx, dl.ActionID)
	if err != nil {
		return err
	}
	is := s.issueOf(a, dl)
	ref := bridge.Ref{ID: dl.ExternalID, URL: dl.ExternalURL}
	intent := "update"
	var callErr error
	if ref.ID == "" {
		intent = "create"
		found := false
		if dl.CreateCalls > 1 {
			ref, found, callErr = d.b.Find(ctx, dl.ActionID)
			if found {
				intent = "adopt"
				// The adopted issue may predate later changes: bring it up to date.
				callErr = d.b.Update(ctx, ref, is)
			}
		}
		if callErr == nil && !found {
			ref, callErr = d.b.Create(ctx, is)
		}
	} else {
		callErr = d.b.Update(ctx, ref, is)
	}
	if callErr == nil && s.afterRemote != nil {
		if err := s.afterRemote(dl); err != nil {
			return err
		}
	}
	now := s.now()
	log := s.log.With(zap.String("bridge", d.b.Name()), zap.String("action_id", dl.ActionID),
		zap.String("intent", intent), zap.Int64("version", dl.Version), zap.Int("attempt", dl.Attempts))
	if callErr == nil {
		d.failures, d.pausedUntil = 0, time.Time{}
		err := s.store.InTx(ctx, func(tx *store.Tx) error {
			return tx.MarkDelivered(ctx, dl.ActionID, d.b.Name(), ref.ID, ref.URL, dl.Version, now)
		})
		if err != nil {
			return err
		}
		s.metrics.deliveries.WithLabelValues(d.b.Name(), "delivered").Inc()
		log.Info("action delivered", zap.String("external_id", ref.ID))
		return nil
	}
	var re *bridge.RemoteError
	if !errors.As(callErr, &re) {
		re = &bridge.RemoteError{Op: intent, Message: callErr.Error()}
	}
	if !re.Retryable() {
		s.metrics.deliveries.WithLabelValues(d.b.Name(), "failed").Inc()
		log.Warn("delivery refused by the remote; listed as failed", zap.Int("http_status", re.Status), zap.String("message", re.Message))
		return s.store.InTx(ctx, func(tx *store.Tx) error {
			f := Failure{ActionID: dl.ActionID, Bridge: d.b.Name(), Intent: intent, Version: dl.Version,
				HTTPStatus: re.Status, Message: re.Error(), Attempts: dl.Attempts, FailedAt: now}
			if err := tx.MarkFailed(ctx, f); err != nil {
				return err
			}
			return deadLetterDelivery(ctx, tx, f)
		})
	}
	d.failures++
	wait := backoff(d.opts.BackoffBase, d.opts.BackoffMax, d.failures)
	if re.RetryAfter > 0 {
		wait = max(wait, min(re.RetryAfter, maxRetryAfter)+jitter(re.RetryAfter/10))
	}
	d.pausedUntil = now.Add(wait)
	outcome := "retry"
	if re.Limited {
		outcome = "rate_limited"
	}
	s.metrics.deliveries.WithLabelValues(d.b.Name(), outcome).Inc()
	log.Warn("delivery failed; retrying", zap.Int("http_status", re.Status), zap.String("message", re.Message),
		zap.Bool("rate_limited", re.Limited), zap.Duration("wait", wait))
	return s.store.MarkRetry(ctx, dl.ActionID, d.b.Name(), now.Add(wait), re.Status, re.Error(), now)
}

// backoff is a random duration between half and all of
// min(max, base·2^(n-1)) ("equal jitter"): retries of many deliveries spread
// out instead of arriving together.
func backoff(base, limit time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + jitter(d/2)
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// issueOf is what bridges write for a.
func (s *Service) issueOf(a Action, dl Delivery) bridge.Issue {
	is := bridge.Issue{ActionID: a.ActionID, IncidentID: a.IncidentID, IncidentTitle: a.IncidentTitle,
		ReviewID: a.ReviewID, Key: a.Key, Title: a.Title, Description: a.Description, Category: a.Category,
		Priority: a.Priority, Status: a.Status, DueDate: a.DueDate, ReportURL: s.bridges.report(a.IncidentID),
		Event: "action.updated", Version: dl.Version, ChangedAt: a.UpdatedAt}
	if dl.ExternalID == "" && dl.DeliveredVersion == 0 {
		is.Event = "action.created"
	}
	if a.Owner != nil {
		is.OwnerName, is.OwnerEmail = a.Owner.Name, a.Owner.Email
	}
	return is
}

// TypeDeliveryFailed is the ce-type of the DLQ copy of a delivery a remote
// refused for good (dlq.tracker.bridge.<bridge>); its data is the Failure.
const TypeDeliveryFailed = events.TypeBridgeDeliveryFailed

// deadLetterDelivery writes the failure to the DLQ through the outbox, in
// the transaction that lists it.
func deadLetterDelivery(ctx context.Context, tx *store.Tx, f Failure) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	env := events.Envelope{
		ID:      uuid.NewSHA1(actionNamespace, fmt.Appendf(nil, "delivery-failed/%s/%s/%d", f.ActionID, f.Bridge, f.Version)).String(),
		Type:    TypeDeliveryFailed,
		Source:  Source,
		Subject: f.ActionID,
		Time:    f.FailedAt,
		Data:    data,
	}
	return tx.Enqueue(ctx, bus.DLQSubject(ServiceName, "bridge."+f.Bridge), env)
}

// Failures lists the newest deliveries remotes refused for good.
func (s *Service) Failures(ctx context.Context, bridgeName string, limit int) ([]Failure, error) {
	return s.store.ListFailures(ctx, bridgeName, limit)
}

// Deliveries lists deliveries: those of one action, or the newest in state.
func (s *Service) Deliveries(ctx context.Context, actionID, state string, limit int) ([]Delivery, error) {
	return s.store.ListDeliveries(ctx, actionID, state, limit)
}

// ErrNoDelivery: the action is not delivered to the bridge.
var ErrNoDelivery = errors.New("no such delivery")

// RetryDelivery delivers the action to the bridge again now, whatever the
// delivery's state: after the cause of a failure is fixed (a token, an
// assignee map), an operator retries it. It returns an error wrapping
// ErrNoDelivery when the action was never routed to that bridge.
func (s *Service) RetryDelivery(ctx context.Context, actionID, bridgeName string) (Delivery, error) {
	var d Delivery
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Delivery(ctx, actionID, bridgeName); err != nil {
			if errors.Is(err, postgres.ErrNotFound) {
				return fmt.Errorf("%w: action %s to %s", ErrNoDelivery, actionID, bridgeName)
			}
			return err
		}
		if err := tx.RecordIntent(ctx, actionID, bridgeName, s.now()); err != nil {
			return err
		}
		var err error
		d, err = tx.Delivery(ctx, actionID, bridgeName)
		return err
	})
	return d, err
}
