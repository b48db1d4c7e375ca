package intake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/intake/postgres"
	"github.com/afteraction/afteraction/services/intake/webhook"
)

// Config is intake's configuration, read from the environment by LoadConfig.
type Config struct {
	config.Common
	// AuthDisabled (AUTH_DISABLED=true) serves the API without tokens; for
	// development only, and only when API_TOKENS is empty.
	AuthDisabled bool
	// BatchSize is how many messages one transaction registers at most (INTAKE_BATCH_SIZE).
	BatchSize int
	// Webhooks configures POST /v1/webhooks/{source} (WEBHOOK_*; see webhook.LoadConfig).
	Webhooks webhook.Config
	// UnsignedSources (WEBHOOK_UNSIGNED_SOURCES, comma-separated) may deliver
	// webhooks without a configured secret. Any other source without a secret is
	// refused, unless AUTH_DISABLED is set: otherwise anyone who can reach intake
	// could inject incidents.
	UnsignedSources []string
	// UnauthenticatedPerMinute (WEBHOOK_UNAUTHENTICATED_PER_MINUTE, default 20)
	// bounds the webhook requests failing authentication (401, 404) kept per
	// client address a minute; UnauthenticatedPerSourcePerMinute
	// (WEBHOOK_UNAUTHENTICATED_PER_SOURCE_PER_MINUTE, default 120) per source.
	// Beyond either, such requests are answered 429 and not kept; requests that
	// authenticate are never limited.
	UnauthenticatedPerMinute          int
	UnauthenticatedPerSourcePerMinute int
	// IntakeRetention is how long rejects (REJECTS_RETENTION, default 2160h)
	// and inbox keys (INBOX_RETENTION, default 2880h, at least the INCIDENTS
	// stream's max age) are kept; pruned every RETENTION_INTERVAL.
	IntakeRetention postgres.Retention
}

// LoadConfig reads the configuration through getenv, applies the defaults and
// validates it. It returns an error naming every variable that is wrong.
func LoadConfig(getenv func(string) string) (Config, error) {
	l := config.NewLoader(getenv)
	cfg := Config{
		Common:                            l.Common(":8081"),
		BatchSize:                         l.Int("INTAKE_BATCH_SIZE", 500, 1, 10000),
		UnauthenticatedPerMinute:          l.Int("WEBHOOK_UNAUTHENTICATED_PER_MINUTE", 20, 1, 100000),
		UnauthenticatedPerSourcePerMinute: l.Int("WEBHOOK_UNAUTHENTICATED_PER_SOURCE_PER_MINUTE", 120, 1, 100000),
		AuthDisabled:                      l.Bool("AUTH_DISABLED", false),
		IntakeRetention:                   loadRetention(l),
	}
	_, tokensErr := httpapi.ParseTokens(getenv("API_TOKENS")) // a malformed value is reported by Common
	switch {
	case tokensErr == nil && len(cfg.APITokens) == 0 && !cfg.AuthDisabled:
		l.Fail(errors.New("API_TOKENS is empty: set tokens, or AUTH_DISABLED=true for an unauthenticated development setup"))
	case len(cfg.APITokens) > 0 && cfg.AuthDisabled:
		l.Fail(errors.New("AUTH_DISABLED=true and API_TOKENS are both set: choose one"))
	}
	var err error
	if cfg.Webhooks, err = webhook.LoadConfig(getenv); err != nil {
		l.Fail(err)
	}
	for _, src := range strings.Split(getenv("WEBHOOK_UNSIGNED_SOURCES"), ",") {
		if src = strings.TrimSpace(src); src == "" {
			continue
		}
		if !slices.Contains(webhook.Sources(), src) {
			l.Fail(fmt.Errorf("WEBHOOK_UNSIGNED_SOURCES: unknown source %q (known: %s)", src, strings.Join(webhook.Sources(), ", ")))
		}
		cfg.UnsignedSources = append(cfg.UnsignedSources, src)
	}
	if err := l.Err(); err != nil {
		return Config{}, fmt.Errorf("intake config: %w", err)
	}
	return cfg, nil
}

// logFields describes cfg for the start-up log line, with secrets masked.
func (c Config) logFields() []zap.Field {
	var signed []string
	for name, sc := range c.Webhooks.Sources {
		if sc.Secret != "" {
			signed = append(signed, name)
		}
	}
	slices.Sort(signed)
	return append(c.Common.Fields(),
		zap.Bool("auth_disabled", c.AuthDisabled), zap.Int("batch_size", c.BatchSize),
		zap.Strings("webhook_sources_with_secret", signed), zap.Strings("webhook_unsigned_sources", c.UnsignedSources),
		zap.Int("webhook_unauthenticated_per_minute", c.UnauthenticatedPerMinute),
		zap.Int("webhook_unauthenticated_per_source_per_minute", c.UnauthenticatedPerSourcePerMinute),
		zap.Duration("rejects_retention", c.IntakeRetention.Rejects), zap.Duration("inbox_retention", c.IntakeRetention.Inbox))
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
	auth := guard(cfg.APITokens.Require)
	if len(cfg.APITokens) == 0 {
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
	b, err := bus.Connect(ctx, cfg.NATSURL, "intake", log, cfg.BusOptions(reg))
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
	unsigned := map[string]bool{}
	for _, src := range webhook.Sources() {
		unsigned[src] = cfg.AuthDisabled || slices.Contains(cfg.UnsignedSources, src)
	}
	svc := &Service{store: postgres.New(pool), bus: b, log: log, metrics: m, webhooks: cfg.Webhooks, unsigned: unsigned,
		unauthByAddress: newKeyedLimiter(cfg.UnauthenticatedPerMinute),
		unauthBySource:  newKeyedLimiter(cfg.UnauthenticatedPerSourcePerMinute),
		now:             func() time.Time { return time.Now().UTC() }}
	ln, err := httpapi.Listen(deps.Listener, cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("intake: %w", err)
	}
	handler := svc.routes(auth, reg, map[string]httpapi.Check{
		"postgres": pool.Ping,
		"nats":     b.Ping,
	})

	b.RecordDeadLettersIn(pool)
	relay := &bus.Relay{Bus: b, Pool: pool, Schema: postgres.Schema, Log: log}
	err = relay.RunAlongside(ctx,
		func(ctx context.Context) error {
			return b.ConsumeBatch(ctx, incidentsClosedConsumer(cfg.BatchSize), svc.HandleClosed)
		},
		func(ctx context.Context) error {
			return b.ConsumeInTx(ctx, evidenceExpiredConsumer(), pool,
				bus.Typed(events.TypeEvidenceExpired, svc.HandleEvidenceExpired))
		},
		func(ctx context.Context) error { return httpapi.Serve(ctx, ln, handler, log) },
		func(ctx context.Context) error { return pg.RunRetention(ctx, pool, cfg.Retention, log) },
		func(ctx context.Context) error {
			return runRetention(ctx, pool, cfg.IntakeRetention, cfg.Retention.Every, log)
		},
	)
	log.Info("intake stopped", zap.Error(err))
	return err
}
