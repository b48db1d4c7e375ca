package report

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/report/pdf"
	reportpg "github.com/afteraction/afteraction/services/report/postgres"
)

// ServiceName names the service on NATS (durables, DLQ subjects) and in logs.
const ServiceName = "report"

// Config is the report service's configuration, read from the environment.
type Config struct {
	DatabaseURL    string // DATABASE_URL
	NATSURL        string // NATS_URL
	NATSUser       string // NATS_USER
	NATSPassword   string // NATS_PASSWORD (secret)
	NATSCreds      string // NATS_CREDS (path)
	StreamReplicas int    // STREAM_REPLICAS
	HTTPAddr       string // HTTP_ADDR
	Tokens         httpapi.Tokens
	// SigningKey is the Ed25519 seed from REPORT_SIGNING_KEY (secret).
	SigningKey []byte
	// SigningKeyFile is REPORT_SIGNING_KEY_FILE: a file holding the base64 seed.
	SigningKeyFile string
	// DevSigningKey (REPORT_DEV_SIGNING_KEY=true) generates and persists a key
	// in the database when neither of the above is set. Development only.
	DevSigningKey bool
	LogFormat     string // LOG_FORMAT
	LogLevel      string // LOG_LEVEL
}

// LoadConfig reads the configuration through getenv, applies defaults and
// validates it. It does no I/O: REPORT_SIGNING_KEY_FILE is read by Run.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:    or(getenv("DATABASE_URL"), "postgres://postgres@127.0.0.1:5432/afteraction?sslmode=disable"),
		NATSURL:        or(getenv("NATS_URL"), "nats://127.0.0.1:4222"),
		NATSUser:       getenv("NATS_USER"),
		NATSPassword:   getenv("NATS_PASSWORD"),
		NATSCreds:      getenv("NATS_CREDS"),
		HTTPAddr:       or(getenv("HTTP_ADDR"), ":8083"),
		SigningKeyFile: getenv("REPORT_SIGNING_KEY_FILE"),
		LogFormat:      getenv("LOG_FORMAT"),
		LogLevel:       getenv("LOG_LEVEL"),
	}
	var errs []error
	var err error
	if c.StreamReplicas, err = strconv.Atoi(or(getenv("STREAM_REPLICAS"), "1")); err != nil || c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("STREAM_REPLICAS: want 1..5"))
	}
	if c.Tokens, err = httpapi.ParseTokens(getenv("API_TOKENS")); err != nil {
		errs = append(errs, fmt.Errorf("API_TOKENS: %w", err))
	}
	if s := getenv("REPORT_SIGNING_KEY"); s != "" {
		if c.SigningKey, err = DecodeSeed(s); err != nil {
			errs = append(errs, fmt.Errorf("REPORT_SIGNING_KEY: %w", err))
		}
	}
	if s := getenv("REPORT_DEV_SIGNING_KEY"); s != "" {
		if c.DevSigningKey, err = strconv.ParseBool(s); err != nil {
			errs = append(errs, fmt.Errorf("REPORT_DEV_SIGNING_KEY: want true or false"))
		}
	}
	if c.SigningKey != nil && c.SigningKeyFile != "" {
		errs = append(errs, errors.New("set REPORT_SIGNING_KEY or REPORT_SIGNING_KEY_FILE, not both"))
	}
	if c.SigningKey == nil && c.SigningKeyFile == "" && !c.DevSigningKey {
		errs = append(errs, errors.New("no signing key: set REPORT_SIGNING_KEY or REPORT_SIGNING_KEY_FILE (or REPORT_DEV_SIGNING_KEY=true in development)"))
	}
	return c, errors.Join(errs...)
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// fields logs the configuration with secrets masked.
func (c Config) fields() []zap.Field {
	roles := map[string]int{}
	for _, role := range c.Tokens {
		roles[role]++
	}
	keySource := "dev (database)"
	switch {
	case c.SigningKey != nil:
		keySource = "REPORT_SIGNING_KEY"
	case c.SigningKeyFile != "":
		keySource = "file " + c.SigningKeyFile
	}
	return []zap.Field{
		zap.String("database_url", redactURL(c.DatabaseURL)), zap.String("nats_url", redactURL(c.NATSURL)),
		zap.String("nats_user", c.NATSUser), zap.Bool("nats_password_set", c.NATSPassword != ""),
		zap.String("nats_creds", c.NATSCreds), zap.Int("stream_replicas", c.StreamReplicas),
		zap.String("http_addr", c.HTTPAddr), zap.Any("api_token_roles", roles),
		zap.String("signing_key_source", keySource),
	}
}

func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.LastIndex(s, "@"); at > i {
			if colon := strings.Index(s[i+3:at], ":"); colon >= 0 {
				return s[:i+3+colon] + ":***" + s[at:]
			}
		}
	}
	return s
}

// Deps is what the caller may inject.
type Deps struct {
	// Log is required.
	Log *zap.Logger
	// Listener, when set, is served instead of listening on HTTPAddr.
	Listener net.Listener
}

// Run runs the report service until ctx is cancelled: migrations, signing
// key, JetStream topology, the three consumers, the outbox relay and the HTTP
// server. On cancellation everything drains before the connections close.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if deps.Log == nil {
		return errors.New("report: Deps.Log is required")
	}
	log := deps.Log.Named(ServiceName)
	log.Info("starting", cfg.fields()...)

	pool, err := postgres.Open(ctx, cfg.DatabaseURL, reportpg.Schema)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, reportpg.Schema, reportpg.Migrations()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	store := NewPostgresStore(pool)

	signer, err := loadSigner(ctx, cfg, store, log)
	if err != nil {
		return err
	}
	if err := store.RegisterKey(ctx, signer.KeyID(), signer.Public()); err != nil {
		return err
	}
	log.Info("signing key ready", zap.String("key_id", signer.KeyID()))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	b, err := bus.Connect(ctx, cfg.NATSURL, ServiceName, log, bus.Options{
		User: cfg.NATSUser, Password: cfg.NATSPassword, CredsFile: cfg.NATSCreds, Registerer: reg})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.EnsureTopology(ctx, bus.Topology{Replicas: cfg.StreamReplicas}); err != nil {
		return err
	}

	renderer, err := pdf.NewRenderer()
	if err != nil {
		return err
	}
	svc, err := NewService(store, b, renderer, signer, log, reg)
	if err != nil {
		return err
	}

	ln, err := httpapi.Listen(deps.Listener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	api := &API{Reader: store, Metrics: store, Tokens: cfg.Tokens, Log: log}
	api.Routes(mux)
	httpapi.Health(mux, map[string]httpapi.Check{
		"postgres": store.Ping,
		"nats": func(context.Context) error {
			if !b.Connected() {
				return errors.New("not connected")
			}
			return nil
		},
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	g, gctx := errgroup.WithContext(ctx)
	for _, sub := range Subscriptions(svc, Projector{Model: store}) {
		g.Go(func() error { return b.Consume(gctx, sub.Config, sub.Handler) })
	}
	relay := &bus.Relay{Bus: b, Pool: pool, Schema: reportpg.Schema, Log: log}
	g.Go(func() error { return relay.Run(gctx) })
	g.Go(func() error { return httpapi.Serve(gctx, ln, httpapi.Logged(mux, log), log) })
	err = g.Wait()
	log.Info("stopped", zap.Error(err))
	return err
}

// loadSigner picks the signing key: REPORT_SIGNING_KEY, then
// REPORT_SIGNING_KEY_FILE, then (development only) a key kept in the database.
func loadSigner(ctx context.Context, cfg Config, store Store, log *zap.Logger) (*Signer, error) {
	switch {
	case cfg.SigningKey != nil:
		return NewSigner(cfg.SigningKey)
	case cfg.SigningKeyFile != "":
		b, err := os.ReadFile(cfg.SigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("REPORT_SIGNING_KEY_FILE: %w", err)
		}
		seed, err := DecodeSeed(string(b))
		if err != nil {
			return nil, fmt.Errorf("REPORT_SIGNING_KEY_FILE %s: %w", cfg.SigningKeyFile, err)
		}
		return NewSigner(seed)
	case cfg.DevSigningKey:
		log.Warn("using a development signing key stored in the database: reports signed with it prove nothing; set REPORT_SIGNING_KEY or REPORT_SIGNING_KEY_FILE in production")
		return DevSigner(ctx, store)
	default:
		return nil, errors.New("no signing key configured")
	}
}
