package tracker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/pkg/logging"
	"github.com/afteraction/afteraction/pkg/postgres"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// Config is the tracker's configuration, read from the environment by LoadConfig.
type Config struct {
	DatabaseURL    string         // DATABASE_URL
	NATSURL        string         // NATS_URL
	NATSUser       string         // NATS_USER
	NATSPassword   string         // NATS_PASSWORD (secret)
	NATSCreds      string         // NATS_CREDS: path of a credentials file
	StreamReplicas int            // STREAM_REPLICAS
	HTTPAddr       string         // HTTP_ADDR
	APITokens      httpapi.Tokens // API_TOKENS: role:token,role:token (secret)
	LogFormat      string         // LOG_FORMAT: json or console
	LogLevel       string         // LOG_LEVEL
	// OverdueInterval is how often the overdue chaser runs (TRACKER_OVERDUE_INTERVAL).
	OverdueInterval time.Duration
	// OverdueDelay is how long after start-up it first runs (TRACKER_OVERDUE_DELAY).
	OverdueDelay time.Duration
}

// LoadConfig reads the configuration through getenv, applies defaults and
// validates it. It returns an error naming the first bad variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	c := Config{
		DatabaseURL:  get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/afteraction?sslmode=disable"),
		NATSURL:      get("NATS_URL", "nats://127.0.0.1:4222"),
		NATSUser:     getenv("NATS_USER"),
		NATSPassword: getenv("NATS_PASSWORD"),
		NATSCreds:    getenv("NATS_CREDS"),
		HTTPAddr:     get("HTTP_ADDR", ":8084"),
		LogFormat:    get("LOG_FORMAT", "json"),
		LogLevel:     get("LOG_LEVEL", "info"),
	}
	var err error
	if c.StreamReplicas, err = strconv.Atoi(get("STREAM_REPLICAS", "1")); err != nil || c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		return c, fmt.Errorf("STREAM_REPLICAS %q: want 1 to 5", getenv("STREAM_REPLICAS"))
	}
	if c.APITokens, err = httpapi.ParseTokens(getenv("API_TOKENS")); err != nil {
		return c, fmt.Errorf("API_TOKENS: %w", err)
	}
	for _, d := range []struct {
		name, def string
		dst       *time.Duration
	}{
		{"TRACKER_OVERDUE_INTERVAL", "1h", &c.OverdueInterval},
		{"TRACKER_OVERDUE_DELAY", "10s", &c.OverdueDelay},
	} {
		v, err := time.ParseDuration(get(d.name, d.def))
		if err != nil || v < 0 || (v == 0 && d.name == "TRACKER_OVERDUE_INTERVAL") {
			return c, fmt.Errorf("%s %q: want a positive duration such as 1h", d.name, getenv(d.name))
		}
		*d.dst = v
	}
	if _, err := url.Parse(c.DatabaseURL); err != nil {
		return c, fmt.Errorf("DATABASE_URL: %w", err)
	}
	return c, nil
}

// fields describes c for the start-up log line, with secrets masked.
func (c Config) fields() []zap.Field {
	roles := make([]string, 0, len(c.APITokens))
	for _, role := range c.APITokens {
		roles = append(roles, role)
	}
	return []zap.Field{
		zap.String("database_url", redactURL(c.DatabaseURL)),
		zap.String("nats_url", redactURL(c.NATSURL)),
		zap.String("nats_user", c.NATSUser),
		zap.Bool("nats_password_set", c.NATSPassword != ""),
		zap.String("nats_creds", c.NATSCreds),
		zap.Int("stream_replicas", c.StreamReplicas),
		zap.String("http_addr", c.HTTPAddr),
		zap.Strings("api_token_roles", roles),
		zap.Duration("overdue_interval", c.OverdueInterval),
		zap.Duration("overdue_delay", c.OverdueDelay),
	}
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// Deps is what a caller may inject into Run.
type Deps struct {
	// Log is the logger; when nil, Run builds one from LogFormat and LogLevel.
	Log *zap.Logger
	// Listener, when set, serves HTTP instead of listening on HTTPAddr (tests pass 127.0.0.1:0).
	Listener net.Listener
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
	b, err := bus.Connect(ctx, cfg.NATSURL, ServiceName, log, bus.Options{
		User: cfg.NATSUser, Password: cfg.NATSPassword, CredsFile: cfg.NATSCreds, Registerer: reg,
	})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.EnsureTopology(ctx, bus.Topology{Replicas: cfg.StreamReplicas}); err != nil {
		return err
	}

	svc := NewService(store.New(pool), log, deps.Now)
	if err := svc.Register(reg); err != nil {
		return fmt.Errorf("register metrics: %w", err)
	}
	ln, err := httpapi.Listen(deps.Listener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	checks := map[string]httpapi.Check{
		"postgres": pool.Ping,
		"nats": func(context.Context) error {
			if !b.Connected() {
				return errors.New("not connected")
			}
			return nil
		},
	}
	handler := routes(svc, cfg.APITokens, reg, checks, log)

	// The relay outlives the workers: it stops only after they have, so its
	// final pass publishes everything they committed.
	relayCtx, stopRelay := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelay()
	relay := &bus.Relay{Bus: b, Pool: pool, Schema: store.Schema, Log: log}
	g := new(errgroup.Group)
	g.Go(func() error { return relay.Run(relayCtx) })
	g.Go(func() error {
		defer stopRelay()
		workers, wctx := errgroup.WithContext(ctx)
		for _, c := range svc.consumers() {
			workers.Go(func() error { return b.Consume(wctx, c.cfg, c.handler) })
		}
		workers.Go(func() error { return svc.runOverdue(wctx, cfg.OverdueDelay, cfg.OverdueInterval) })
		workers.Go(func() error { return httpapi.Serve(wctx, ln, handler, log) })
		return workers.Wait()
	})
	err = g.Wait()
	log.Info("stopped", zap.Error(err))
	return err
}
