// Package bus is the only code in afteraction that touches NATS JetStream. It
// creates the streams, consumers and the reports object store idempotently,
// carries events as CloudEvents in binary mode (ce-* headers, Nats-Msg-Id =
// ce-id), runs typed and batched pull consumers with the ack/nak/term/DLQ rules
// of the design, and relays each service's Postgres outbox to JetStream.
package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Bus is a connection to NATS with JetStream, named for the service that uses it.
type Bus struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *zap.Logger
	service string
	handled *prometheus.CounterVec
	relayed prometheus.Counter
	backlog *prometheus.GaugeVec
	outbox  outboxMetrics
	// deadLetters, when set, receives a row in dead_letters for every message
	// a consumer gives up on (see RecordDeadLettersIn).
	deadLetters *pgxpool.Pool
	outages     outageCounts
	// topology is what EnsureTopology was last given (replicas and storage of
	// the outage bucket).
	topology Topology
	// tracer makes the publish and consume spans; traced is false for the
	// no-op provider (see Options.TracerProvider).
	tracer trace.Tracer
	traced bool
}

// RecordDeadLettersIn makes every consumer of b also record what it
// dead-letters in the dead_letters table of pool's schema (created by the
// platform migration), next to the copy on the DLQ stream. Call it before
// starting consumers.
func (b *Bus) RecordDeadLettersIn(pool *pgxpool.Pool) { b.deadLetters = pool }

// Options tunes a connection. The zero value is usable.
type Options struct {
	// User and Password, or Token, or CredsFile authenticate the connection.
	User, Password, Token, CredsFile string
	// InboxPrefix is where replies to this connection's requests and its pull
	// deliveries arrive (default "_INBOX_<User>", or "_INBOX_<service>" without
	// a User). A prefix per NATS user lets permissions grant each user its own
	// replies only: the shared default "_INBOX." would let any user read all.
	InboxPrefix string
	// ConnectTimeout bounds the first connection attempt (default 5s).
	ConnectTimeout time.Duration
	// Registerer, when set, receives the bus's metrics:
	// afteraction_messages_total{consumer,outcome}, afteraction_outbox_published_total
	// afteraction_consumer_backlog{consumer} and the relay's
	// afteraction_outbox_set_aside(_total).
	Registerer prometheus.Registerer
	// TracerProvider, when set, makes every publish and every handled message
	// a span (see tracing.go); nil records nothing but still passes on the
	// trace context messages and outbox rows carry.
	TracerProvider trace.TracerProvider
}

// Connect dials url as service, reconnecting forever afterwards. It installs an
// async error handler that logs permission violations and slow consumers, which
// NATS otherwise reports only as timeouts.
func Connect(ctx context.Context, url, service string, log *zap.Logger, o Options) (*Bus, error) {
	log = log.Named("bus")
	inbox := o.InboxPrefix
	if inbox == "" {
		inbox = InboxPrefix(cmp.Or(o.User, service))
	}
	opts := []nats.Option{
		nats.Name("afteraction-" + service),
		nats.CustomInboxPrefix(inbox),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.Timeout(orDefault(o.ConnectTimeout, 5*time.Second)),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats async error", zap.String("subject", subject), zap.Error(err))
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", zap.String("url", nc.ConnectedUrlRedacted()))
		}),
	}
	switch {
	case o.CredsFile != "":
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	case o.Token != "":
		opts = append(opts, nats.Token(o.Token))
	case o.User != "":
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b := &Bus{nc: nc, js: js, log: log, service: service,
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "afteraction_messages_total",
			Help: "Messages settled by consumers, by consumer and outcome (ack, retry, dead_letter).",
		}, []string{"consumer", "outcome"}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "afteraction_outbox_published_total",
			Help: "Outbox events published and acknowledged by JetStream.",
		}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "afteraction_consumer_backlog",
			Help: "Messages waiting for a consumer: pending in the stream plus delivered and not yet acknowledged.",
		}, []string{"consumer"}),
		outbox: newOutboxMetrics(),
	}
	b.tracer, b.traced = tracerOf(o.TracerProvider)
	if o.Registerer != nil {
		for _, c := range append([]prometheus.Collector{b.handled, b.relayed, b.backlog}, b.outbox.collectors()...) {
			if err := o.Registerer.Register(c); err != nil {
				nc.Close()
				return nil, fmt.Errorf("register bus metrics: %w", err)
			}
		}
	}
	return b, nil
}

// InboxPrefix is the inbox prefix Connect uses for a NATS user (or, without
// one, a service): "_INBOX_" followed by the name. deploy/nats/permissions.conf
// grants each user "_INBOX_<user>.>" and nothing else to subscribe to replies.
func InboxPrefix(user string) string { return "_INBOX_" + user }

// Service is the name the bus was connected as; it names durables and DLQ subjects.
func (b *Bus) Service() string { return b.service }

// Connected reports whether the NATS connection is up (for readiness probes).
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// Ping is a readiness check (an httpapi.Check): it returns an error when the
// NATS connection is down, nil otherwise.
func (b *Bus) Ping(context.Context) error {
	if !b.Connected() {
		return errors.New("not connected")
	}
	return nil
}

// Close drains the connection: subscriptions stop, pending publishes flush, then
// the connection closes. It waits at most ten seconds.
func (b *Bus) Close() {
	if b == nil || b.nc.IsClosed() {
		return
	}
	done := make(chan struct{})
	b.nc.SetClosedHandler(func(*nats.Conn) { close(done) })
	if err := b.nc.Drain(); err != nil {
		b.nc.Close()
		return
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		b.nc.Close()
	}
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// errPermanent marks an error that no retry can fix.
type errPermanent struct{ err error }

func (e errPermanent) Error() string { return e.err.Error() }
func (e errPermanent) Unwrap() error { return e.err }

// Permanent marks err as permanent: the consumer sends the message to the DLQ
// with err as the reason and terminates it instead of redelivering it.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return errPermanent{err}
}

// IsPermanent reports whether err, or any error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p errPermanent
	return errors.As(err, &p)
}
