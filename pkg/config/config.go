// Package config reads the configuration every afteraction service shares
// (DATABASE_URL, NATS_*, STREAM_REPLICAS, HTTP_ADDR, API_TOKENS, LOG_*, OTEL_*) and
// offers a Loader that services also use for their own variables, and Main,
// the whole of a service's main function.
package config

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/pkg/logging"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/tracing"
)

// Defaults of the common variables that have one.
const (
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/afteraction?sslmode=disable"
	DefaultNATSURL     = "nats://127.0.0.1:4222"
	DefaultLogFormat   = "json"
	DefaultLogLevel    = "info"
)

// Roles lists the roles an API token may grant.
var Roles = []string{"admin", "facilitator", "compliance", "tracker", "intake"}

// Common is the configuration every afteraction service shares; each
// service's Config embeds it.
type Common struct {
	DatabaseURL    string         // DATABASE_URL
	NATSURL        string         // NATS_URL
	NATSUser       string         // NATS_USER
	NATSPassword   string         // NATS_PASSWORD (secret)
	NATSCreds      string         // NATS_CREDS: path of a .creds file
	StreamReplicas int            // STREAM_REPLICAS: 1 to 5
	HTTPAddr       string         // HTTP_ADDR
	APITokens      httpapi.Tokens // API_TOKENS: "role:token,role:token" (secret)
	LogFormat      string         // LOG_FORMAT: json or console
	LogLevel       string         // LOG_LEVEL
	// Retention of the platform tables (postgres.RunRetention):
	// PROCESSED_EVENTS_RETENTION (default 2880h, 120 days, at least 2160h: the
	// longest a stream keeps a message), DEAD_LETTERS_RETENTION (default 2160h)
	// and RETENTION_INTERVAL (default 1h).
	Retention postgres.Retention
	// Tracing is read from the standard OTEL_* variables (see tracing.LoadConfig);
	// off unless an OTLP endpoint is set.
	Tracing tracing.Config
}

// Loader reads variables through getenv, applies defaults and collects an
// error naming the variable for every value that is wrong, so that a service
// reports all its configuration mistakes at once.
type Loader struct {
	getenv func(string) string
	errs   []error
}

// NewLoader returns a Loader that reads variables through getenv.
func NewLoader(getenv func(string) string) *Loader {
	return &Loader{getenv: getenv}
}

// Raw returns the value of key exactly as set, "" when unset.
func (l *Loader) Raw(key string) string { return l.getenv(key) }

// String returns the value of key with surrounding space trimmed, or def when
// that is empty.
func (l *Loader) String(key, def string) string {
	if v := strings.TrimSpace(l.getenv(key)); v != "" {
		return v
	}
	return def
}

// Int returns key as an integer from lo to hi, def when unset; otherwise it
// records an error and returns def.
func (l *Loader) Int(key string, def, lo, hi int) int {
	v := l.String(key, strconv.Itoa(def))
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		l.Fail(fmt.Errorf("%s=%q: want an integer from %d to %d", key, v, lo, hi))
		return def
	}
	return n
}

// Bool returns key as a boolean, def when unset; otherwise it records an error
// and returns def.
func (l *Loader) Bool(key string, def bool) bool {
	v := l.String(key, strconv.FormatBool(def))
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.Fail(fmt.Errorf("%s=%q: want true or false", key, v))
		return def
	}
	return b
}

// Duration returns key as a positive duration, def when unset; otherwise it
// records an error and returns 0.
func (l *Loader) Duration(key, def string) time.Duration {
	return l.duration(key, def, false)
}

// DurationOrZero is Duration that also accepts zero.
func (l *Loader) DurationOrZero(key, def string) time.Duration {
	return l.duration(key, def, true)
}

func (l *Loader) duration(key, def string, zero bool) time.Duration {
	v := l.String(key, def)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || (d == 0 && !zero) {
		want := "a positive duration"
		if zero {
			want = "a duration of zero or more"
		}
		l.Fail(fmt.Errorf("%s=%q: want %s such as %s", key, v, want, def))
		return 0
	}
	return d
}

// Fail records err, which should name the variable it is about.
func (l *Loader) Fail(err error) {
	if err != nil {
		l.errs = append(l.errs, err)
	}
}

// Err returns every recorded error joined, or nil when there is none.
func (l *Loader) Err() error { return errors.Join(l.errs...) }

// Common reads the common variables, with defaultHTTPAddr as the default of
// HTTP_ADDR, and records an error for each that is wrong: STREAM_REPLICAS
// outside 1 to 5, a malformed API_TOKENS entry or a role not in Roles, or a
// DATABASE_URL that is not a URL.
func (l *Loader) Common(defaultHTTPAddr string) Common {
	c := Common{
		DatabaseURL:    l.String("DATABASE_URL", DefaultDatabaseURL),
		NATSURL:        l.String("NATS_URL", DefaultNATSURL),
		NATSUser:       l.Raw("NATS_USER"),
		NATSPassword:   l.Raw("NATS_PASSWORD"),
		NATSCreds:      l.Raw("NATS_CREDS"),
		StreamReplicas: l.Int("STREAM_REPLICAS", 1, 1, 5),
		HTTPAddr:       l.String("HTTP_ADDR", defaultHTTPAddr),
		LogFormat:      l.String("LOG_FORMAT", DefaultLogFormat),
		LogLevel:       l.String("LOG_LEVEL", DefaultLogLevel),
	}
	c.Retention = postgres.Retention{
		ProcessedEvents: l.Duration("PROCESSED_EVENTS_RETENTION", postgres.DefaultProcessedEventsRetention.String()),
		DeadLetters:     l.Duration("DEAD_LETTERS_RETENTION", postgres.DefaultDeadLettersRetention.String()),
		Every:           l.Duration("RETENTION_INTERVAL", "1h"),
	}
	if floor := bus.DefaultLimits[bus.StreamAfteraction].MaxAge; c.Retention.ProcessedEvents > 0 && c.Retention.ProcessedEvents < floor {
		l.Fail(fmt.Errorf("PROCESSED_EVENTS_RETENTION=%s: want at least %s, the longest a stream keeps a message, or a late redelivery is applied twice",
			c.Retention.ProcessedEvents, floor))
	}
	if _, err := url.Parse(c.DatabaseURL); err != nil {
		l.Fail(fmt.Errorf("DATABASE_URL: not a URL: %w", err))
	}
	tokens, err := httpapi.ParseTokens(l.Raw("API_TOKENS"))
	if err != nil {
		l.Fail(fmt.Errorf("API_TOKENS: %w", err))
	}
	for _, role := range tokens {
		if !slices.Contains(Roles, role) {
			l.Fail(fmt.Errorf("API_TOKENS: unknown role %q (want one of %s)", role, strings.Join(Roles, ", ")))
		}
	}
	c.APITokens = tokens
	tc, err := tracing.LoadConfig(l.getenv)
	l.Fail(err)
	c.Tracing = tc
	return c
}

// Fields describes c for the start-up log line with secrets masked: URLs are
// redacted, passwords only reported as set or not, tokens only by their roles.
func (c Common) Fields() []zap.Field {
	roles := make([]string, 0, len(c.APITokens))
	for _, role := range c.APITokens {
		roles = append(roles, role)
	}
	slices.Sort(roles)
	return []zap.Field{
		zap.String("database_url", postgres.Redact(c.DatabaseURL)),
		zap.String("nats_url", postgres.Redact(c.NATSURL)),
		zap.String("nats_user", c.NATSUser),
		zap.Bool("nats_password_set", c.NATSPassword != ""),
		zap.String("nats_creds", c.NATSCreds),
		zap.Int("stream_replicas", c.StreamReplicas),
		zap.String("http_addr", c.HTTPAddr),
		zap.Strings("api_token_roles", roles),
		zap.String("log_format", c.LogFormat),
		zap.String("log_level", c.LogLevel),
		zap.Duration("processed_events_retention", c.Retention.ProcessedEvents),
		zap.Duration("dead_letters_retention", c.Retention.DeadLetters),
		zap.String("otlp_traces_endpoint", postgres.Redact(c.Tracing.Endpoint)),
	}
}

// BusOptions returns the options to connect to NATS with c's credentials,
// registering the bus's metrics with reg and making its spans with tp (see
// tracing.Setup).
func (c Common) BusOptions(reg prometheus.Registerer, tp trace.TracerProvider) bus.Options {
	return bus.Options{User: c.NATSUser, Password: c.NATSPassword, CredsFile: c.NATSCreds, Registerer: reg, TracerProvider: tp}
}

// Logging returns the log format and level (LOG_FORMAT, LOG_LEVEL).
func (c Common) Logging() (format, level string) { return c.LogFormat, c.LogLevel }

// Main is the whole of a service's main function: it loads the configuration
// from the environment, builds the logger it asks for, and runs the service
// until SIGINT or SIGTERM. It returns the process exit code: 0 after a clean
// shutdown, 1 when the service failed, 2 for a configuration error.
func Main[C interface{ Logging() (string, string) }](name string, load func(func(string) string) (C, error),
	run func(ctx context.Context, cfg C, log *zap.Logger) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := load(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration: %v\n", name, err)
		return 2
	}
	log, err := logging.New(cfg.Logging())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	defer log.Sync() //nolint:errcheck // stderr may not support sync
	if err := run(ctx, cfg, log); err != nil {
		log.Error(name+" failed", zap.Error(err))
		return 1
	}
	return 0
}
