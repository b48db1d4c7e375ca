package intake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/httpapi"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/intake/postgres"
	"github.com/afteraction/afteraction/services/intake/webhook"
)

// Config is intake's configuration, read from the environment by LoadConfig.
type Config struct {
	DatabaseURL    string // DATABASE_URL
	NATSURL        string // NATS_URL
	NATSUser       string // NATS_USER
	NATSPassword   string // NATS_PASSWORD
	NATSCreds      string // NATS_CREDS: path of a .creds file
	StreamReplicas int    // STREAM_REPLICAS
	HTTPAddr       string // HTTP_ADDR
	// Tokens are the API bearer tokens (API_TOKENS, "role:token,...").
	Tokens httpapi.Tokens
	// AuthDisabled (AUTH_DISABLED=true) serves the API without tokens; for
	// development only, and only when API_TOKENS is empty.
	AuthDisabled bool
	LogFormat    string // LOG_FORMAT
	LogLevel     string // LOG_LEVEL
	// BatchSize is how many messages one transaction registers at most (INTAKE_BATCH_SIZE).
	BatchSize int
	// Webhooks configures POST /v1/webhooks/{source} (WEBHOOK_*; see webhook.LoadConfig).
	Webhooks webhook.Config
}

// Roles an API token may have.
var knownRoles = []string{"admin", "facilitator", "compliance", "tracker", "intake"}

// LoadConfig reads the configuration through getenv, applies the defaults and
// validates it. It returns an error naming the variable that is wrong.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	cfg := Config{
		DatabaseURL:  get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/afteraction?sslmode=disable"),
		NATSURL:      get("NATS_URL", "nats://127.0.0.1:4222"),
		NATSUser:     getenv("NATS_USER"),
		NATSPassword: getenv("NATS_PASSWORD"),
		NATSCreds:    getenv("NATS_CREDS"),
		HTTPAddr:     get("HTTP_ADDR", ":8081"),
		LogFormat:    get("LOG_FORMAT", "json"),
		LogLevel:     get("LOG_LEVEL", "info"),
	}
	var errs []error
	intVar := func(key string, def, lo, hi int) int {
		v := get(key, strconv.Itoa(def))
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs = append(errs, fmt.Errorf("%s=%q: want an integer from %d to %d", key, v, lo, hi))
			return def
		}
		return n
	}
	cfg.StreamReplicas = intVar("STREAM_REPLICAS", 1, 1, 5)
	cfg.BatchSize = intVar("INTAKE_BATCH_SIZE", 500, 1, 10000)
	if v := get("AUTH_DISABLED", "false"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("AUTH_DISABLED=%q: want true or false", v))
		}
		cfg.AuthDisabled = b
	}
	tokens, err := httpapi.ParseTokens(getenv("API_TOKENS"))
	if err != nil {
		errs = append(errs, fmt.Errorf("API_TOKENS: %w", err))
	}
	cfg.Tokens = tokens
	for _, role := range tokens {
		if !slices.Contains(knownRoles, role) {
			errs = append(errs, fmt.Errorf("API_TOKENS: unknown role %q (want one of %s)", role, strings.Join(knownRoles, ", ")))
		}
	}
	switch {
	case err == nil && len(tokens) == 0 && !cfg.AuthDisabled:
		errs = append(errs, errors.New("API_TOKENS is empty: set tokens, or AUTH_DISABLED=true for an unauthenticated development setup"))
	case len(tokens) > 0 && cfg.AuthDisabled:
		errs = append(errs, errors.New("AUTH_DISABLED=true and API_TOKENS are both set: choose one"))
	}
	if cfg.Webhooks, err = webhook.LoadConfig(getenv); err != nil {
		errs = append(errs, err)
	}
	if _, err := url.Parse(cfg.DatabaseURL); err != nil {
		errs = append(errs, errors.New("DATABASE_URL: not a URL"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("intake config: %w", err)
	}
	return cfg, nil
}

// logFields describes cfg for the start-up log line, with secrets masked.
func (c Config) logFields() []zap.Field {
	dsn := "(unparseable)"
	if u, err := url.Parse(c.DatabaseURL); err == nil {
		dsn = u.Redacted()
	}
	mask := func(s string) string {
		if s == "" {
			return ""
		}
		return "***"
	}
	roles := make([]string, 0, len(c.Tokens))
	for _, role := range c.Tokens {
		roles = append(roles, role)
	}
	slices.Sort(roles)
	var signed []string
	for name, sc := range c.Webhooks.Sources {
		if sc.Secret != "" {
			signed = append(signed, name)
		}
	}
	slices.Sort(signed)
	return []zap.Field{
		zap.String("database_url", dsn), zap.String("nats_url", c.NATSURL), zap.String("nats_user", c.NATSUser),
		zap.String("nats_password", mask(c.NATSPassword)), zap.String("nats_creds", c.NATSCreds),
		zap.Int("stream_replicas", c.StreamReplicas), zap.String("http_addr", c.HTTPAddr),
		zap.Strings("api_token_roles", roles), zap.Bool("auth_disabled", c.AuthDisabled),
		zap.String("log_format", c.LogFormat), zap.String("log_level", c.LogLevel), zap.Int("batch_size", c.BatchSize),
		zap.Strings("webhook_sources_with_secret", signed),
	}
}

// Deps is what the caller of Run provides.
type Deps struct {
	// Log is required; Run names it "intake".
	Log *zap.Logger
	// Listener, when set, is used instead of listening on Config.HTTPAddr.
	Listener net.Listener
}

// Run runs intake until ctx is cancelled: it migrates its schema, ensures the
// streams, consumes closed incidents, relays its outbox and serves HTTP. On
// cancellation it drains the consumer, the outbox and HTTP, then closes NATS
// and Postgres and returns nil. It returns an error when a part cannot start
// or fails.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if deps.Log == nil {
		return errors.New("intake: Deps.Log is required")
	}
	log := deps.Log.Named("intake")
	log.Info("intake starting", cfg.logFields()...)
	auth := guard(cfg.Tokens.Require)
	if len(cfg.Tokens) == 0 {
		if !cfg.AuthDisabled {
			return errors.New("intake: no API tokens and AUTH_DISABLED is not set")
		}
		log.Warn("AUTH_DISABLED=true: the HTTP API accepts requests without a bearer token; development only")
		auth = openGuard
	}

	pool, err := pg.Open(ctx, cfg.DatabaseURL, postgres.Schema)
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	defer pool.Close()
	if err := pg.Migrate(ctx, pool, postgres.Schema, postgres.Migrations()); err != nil {
		return fmt.Errorf("intake: %w", err)
	}

	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return fmt.Errorf("intake: register go metrics: %w", err)
	}
	b, err := bus.Connect(ctx, cfg.NATSURL, "intake", log, bus.Options{
		User: cfg.NATSUser, Password: cfg.NATSPassword, CredsFile: cfg.NATSCreds, Registerer: reg,
	})
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	defer b.Close()
	if err := b.EnsureTopology(ctx, bus.Topology{Replicas: cfg.StreamReplicas}); err != nil {
		return fmt.Errorf("intake: %w", err)
	}

	m, err := newMetrics(reg)
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	svc := &Service{store: postgres.New(pool), bus: b, log: log, metrics: m, webhooks: cfg.Webhooks,
		now: func() time.Time { return time.Now().UTC() }}
	ln, err := httpapi.Listen(deps.Listener, cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	handler := svc.routes(auth, reg, map[string]httpapi.Check{
		"postgres": pool.Ping,
		"nats": func(context.Context) error {
			if !b.Connected() {
				return errors.New("not connected")
			}
			return nil
		},
	})

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return b.ConsumeBatch(gctx, incidentsClosedConsumer(cfg.BatchSize), svc.HandleClosed)
	})
	g.Go(func() error {
		relay := &bus.Relay{Bus: b, Pool: pool, Schema: postgres.Schema, Log: log}
		return relay.Run(gctx)
	})
	g.Go(func() error { return httpapi.Serve(gctx, ln, handler, log) })
	err = g.Wait()
	log.Info("intake stopped", zap.Error(err))
	return err
}
