package tracker

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/pkg/logging"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/tracing"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// Config is the tracker's configuration, read from the environment by LoadConfig.
type Config struct {
	config.Common
	// OverdueInterval is how often the overdue chaser runs (TRACKER_OVERDUE_INTERVAL).
	OverdueInterval time.Duration
	// OverdueDelay is how long after start-up it first runs (TRACKER_OVERDUE_DELAY).
	OverdueDelay time.Duration
	// Timezone (TRACKER_TIMEZONE, an IANA zone) is where due dates fall: an
	// action is overdue once its due date has passed there.
	Timezone *time.Location
	// Bridges are the remote trackers and the routes to them, from
	// TRACKER_BRIDGES (JSON) or TRACKER_BRIDGES_FILE; see BridgesConfig.
	Bridges *Bridges
	// DuePolicy (TRACKER_DUE_DAYS, e.g. "critical=7,high=30,medium=90,low=180,none=90")
	// dates the action items that come without a due date.
	DuePolicy DuePolicy
	// Delivery tunes the delivery loops (TRACKER_BRIDGE_POLL, TRACKER_BRIDGE_LEASE,
	// TRACKER_BRIDGE_BACKOFF, TRACKER_BRIDGE_BACKOFF_MAX).
	Delivery DeliveryOptions
	// DigestWeekday (TRACKER_DIGEST_WEEKDAY, default Monday) is the day the
	// weekly digests go out; "off" disables them.
	DigestWeekday *time.Weekday
}

// LoadConfig reads the configuration through getenv, applies defaults and
// validates it. It returns an error naming every bad variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	l := config.NewLoader(getenv)
	c := Config{
		Common:          l.Common(":8084"),
		OverdueInterval: l.Duration("TRACKER_OVERDUE_INTERVAL", "1h"),
		OverdueDelay:    l.DurationOrZero("TRACKER_OVERDUE_DELAY", "10s"),
		Timezone:        time.UTC,
	}
	c.Delivery = DeliveryOptions{
		Poll:        l.Duration("TRACKER_BRIDGE_POLL", "1s"),
		Lease:       l.Duration("TRACKER_BRIDGE_LEASE", "2m"),
		BackoffBase: l.Duration("TRACKER_BRIDGE_BACKOFF", "2s"),
		BackoffMax:  l.Duration("TRACKER_BRIDGE_BACKOFF_MAX", "10m"),
	}
	bs, err := loadBridges(getenv, nil)
	if err != nil {
		l.Fail(err)
	}
	c.Bridges = bs
	c.DuePolicy = DefaultDuePolicy()
	if v := l.Raw("TRACKER_DUE_DAYS"); v != "" {
		p, err := ParseDuePolicy(v)
		if err != nil {
			l.Fail(fmt.Errorf("TRACKER_DUE_DAYS: %w", err))
		} else {
			c.DuePolicy = p
		}
	}
	monday := time.Monday
	c.DigestWeekday = &monday
	switch v := strings.ToLower(l.Raw("TRACKER_DIGEST_WEEKDAY")); v {
	case "":
	case "off":
		c.DigestWeekday = nil
	default:
		found := false
		for d := time.Sunday; d <= time.Saturday; d++ {
			if strings.EqualFold(d.String(), v) {
				day := d
				c.DigestWeekday, found = &day, true
			}
		}
		if !found {
			l.Fail(fmt.Errorf("TRACKER_DIGEST_WEEKDAY: %q: want a weekday name (Monday) or off", v))
		}
	}
	if name := l.Raw("TRACKER_TIMEZONE"); name != "" {
		zone, err := time.LoadLocation(name)
		if err != nil || name == "Local" {
			l.Fail(fmt.Errorf("TRACKER_TIMEZONE: %q is not an IANA time zone (such as Europe/Berlin)", name))
		} else {
			c.Timezone = zone
		}
	}
	return c, l.Err()
}

// fields describes c for the start-up log line, with secrets masked.
func (c Config) fields() []zap.Field {
	return append(c.Common.Fields(),
		zap.Duration("overdue_interval", c.OverdueInterval),
		zap.Duration("overdue_delay", c.OverdueDelay),
		zap.Stringer("timezone", c.Timezone),
		zap.Strings("bridges", c.Bridges.Names()),
		zap.Any("due_days", c.DuePolicy),
		zap.Duration("bridge_poll", c.Delivery.Poll),
	)
}

// Deps is what a caller may inject into Run.
type Deps struct {
	// Log is the logger; when nil, Run builds one from LogFormat and LogLevel.
	Log *zap.Logger
	// Listener, when set, serves HTTP instead of listening on HTTPAddr (tests pass 127.0.0.1:0).
	Listener net.Listener
	// TracerProvider, when set, records the service's spans instead of the
	// provider the OTEL_* variables configure (tests).
	TracerProvider trace.TracerProvider
	// Now is the clock (time.Now when nil); tests move it to exercise due dates.
	Now func() time.Time
}

// Run runs the tracker until ctx is cancelled: it migrates the schema,
// ensures the streams, then consumes review.completed and action status
// updates, relays the outbox, chases overdue actions and serves HTTP. On
// cancellation it lets consumers and HTTP finish, relays what they committed,
// and closes NATS and Postgres. It returns the first error that stopped it.
func Run(ctx context.Context, cfg Config, deps Deps) (err error) {
	log := deps.Log
	if log == nil {
		if log, err = logging.New(cfg.LogFormat, cfg.LogLevel); err != nil {
			return err
		}
		defer log.Sync() //nolint:errcheck
	}
	log = log.Named(ServiceName)
	log.Info("starting", cfg.fields()...)

	cfg.Tracing.Provider = deps.TracerProvider
	tp, stopTracing, err := tracing.Setup(ctx, cfg.Tracing, ServiceName, log)
	if err != nil {
		return fmt.Errorf("tracker: %w", err)
	}
	defer stopTracing()

	pool, err := postgres.Open(ctx, cfg.DatabaseURL, store.Schema)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, store.Schema, store.Migrations()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return err
	}
	b, err := bus.Connect(ctx, cfg.NATSURL, ServiceName, log, cfg.BusOptions(reg, tp))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.EnsureTopology(ctx, bus.Topology{Replicas: cfg.StreamReplicas}); err != nil {
		return err
	}

	svc := NewService(store.New(pool), log, deps.Now, cfg.Timezone)
	svc.SetBridges(cfg.Bridges)
	svc.SetDuePolicy(cfg.DuePolicy)
	if err := svc.Register(reg); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	ln, err := httpapi.Listen(deps.Listener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	checks := map[string]httpapi.Check{
		"postgres": pool.Ping,
		"nats":     b.Ping,
	}
	handler := routes(svc, cfg.APITokens, reg, checks, log)

	// The relay outlives the workers: its final pass publishes everything they
	// committed while shutting down.
	b.RecordDeadLettersIn(pool)
	relay := &bus.Relay{Bus: b, Pool: pool, Schema: store.Schema, Log: log}
	var workers []func(context.Context) error
	for _, c := range svc.consumers() {
		workers = append(workers, func(ctx context.Context) error { return c.run(ctx, b, pool) })
	}
	workers = append(workers,
		func(ctx context.Context) error {
			return svc.runOverdue(ctx, cfg.OverdueDelay, cfg.OverdueInterval, cfg.DigestWeekday)
		},
		func(ctx context.Context) error { return svc.runDeliveries(ctx, cfg.Delivery) },
		func(ctx context.Context) error { return httpapi.Serve(ctx, ln, tracing.HTTP(tp, handler), log) },
	)
	workers = append(workers, func(ctx context.Context) error { return postgres.RunRetention(ctx, pool, cfg.Retention, log) })
	err = relay.RunAlongside(ctx, workers...)
	log.Info("stopped", zap.Error(err))
	return err
}
