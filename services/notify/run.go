package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/config"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/tracing"
	"github.com/afteraction/afteraction/services/notify/postgres"
)

// Config is the notify service's configuration, read from the environment by LoadConfig.
type Config struct {
	config.Common

	// SMTPHost is NOTIFY_SMTP_HOST: the mail server; empty disables mail
	// (mail deliveries are then recorded dead, visibly).
	SMTPHost string
	// SMTPPort is NOTIFY_SMTP_PORT (default 587 with starttls, 465 with tls, 25 with none).
	SMTPPort int
	// SMTPTLS is NOTIFY_SMTP_TLS: starttls (default), tls (implicit) or none.
	SMTPTLS TLSMode
	// SMTPUsername and SMTPPassword are NOTIFY_SMTP_USERNAME and
	// NOTIFY_SMTP_PASSWORD (secret): PLAIN authentication, only over TLS
	// (or to localhost).
	SMTPUsername, SMTPPassword string
	// From is NOTIFY_FROM: the sender, e.g. "afteraction <afteraction@example.com>".
	From mail.Address
	// Webhooks is NOTIFY_WEBHOOKS (secret URLs): "name=kind:url;..." with kind slack, teams or mattermost.
	Webhooks map[string]Webhook
	// Routes is NOTIFY_ROUTES: "<reason|*>[@domain]=<channel>,...;..." (default: everything by mail).
	Routes Routes
	// ReminderEvery is NOTIFY_REMINDER_EVERY: the reminder cadence until a
	// participant answers or the review is due (default 72h; 0 disables).
	ReminderEvery time.Duration
	// ReminderMax is NOTIFY_REMINDER_MAX: reminders per participant at most (default 5).
	ReminderMax int
	// ReminderInterval is NOTIFY_REMINDER_INTERVAL: how often due reminders are looked for (default 5m).
	ReminderInterval time.Duration
	// Backoff is NOTIFY_RETRY_BACKOFF: delays between attempts, comma-separated (the last repeats).
	Backoff []time.Duration
	// MaxAttempts is NOTIFY_MAX_ATTEMPTS: attempts before a delivery is dead (default 10).
	MaxAttempts int
	// SendingLease is NOTIFY_SENDING_LEASE: after how long a delivery left
	// "sending" by a sender that died is sent again (default 2m; longer than
	// an SMTP transaction may take, which is bounded by NOTIFY_SMTP_TIMEOUT).
	SendingLease time.Duration
	// SMTPTimeout is NOTIFY_SMTP_TIMEOUT: the bound of one SMTP transaction (default 60s).
	SMTPTimeout time.Duration
	// Poll is NOTIFY_POLL: how often the sender looks for due retries (default 5s).
	Poll time.Duration
}

// LoadConfig reads the configuration through getenv, applying defaults and
// validating every value; the error names every offending variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	l := config.NewLoader(getenv)
	cfg := Config{
		Common:           l.Common(":8085"),
		SMTPHost:         l.Raw("NOTIFY_SMTP_HOST"),
		SMTPTLS:          TLSMode(l.String("NOTIFY_SMTP_TLS", string(TLSStartTLS))),
		SMTPUsername:     l.Raw("NOTIFY_SMTP_USERNAME"),
		SMTPPassword:     l.Raw("NOTIFY_SMTP_PASSWORD"),
		ReminderEvery:    l.DurationOrZero("NOTIFY_REMINDER_EVERY", "72h"),
		ReminderMax:      l.Int("NOTIFY_REMINDER_MAX", 5, 0, 100),
		ReminderInterval: l.Duration("NOTIFY_REMINDER_INTERVAL", "5m"),
		MaxAttempts:      l.Int("NOTIFY_MAX_ATTEMPTS", 10, 1, 1000),
		SendingLease:     l.Duration("NOTIFY_SENDING_LEASE", "2m"),
		SMTPTimeout:      l.Duration("NOTIFY_SMTP_TIMEOUT", "60s"),
		Poll:             l.Duration("NOTIFY_POLL", "5s"),
	}
	defaultPort := map[TLSMode]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}
	switch cfg.SMTPTLS {
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		l.Fail(fmt.Errorf("NOTIFY_SMTP_TLS: %q, want starttls, tls or none", cfg.SMTPTLS))
	}
	cfg.SMTPPort = l.Int("NOTIFY_SMTP_PORT", defaultPort[cfg.SMTPTLS], 1, 65535)
	from, err := mail.ParseAddress(l.String("NOTIFY_FROM", "afteraction <afteraction@localhost.localdomain>"))
	if err != nil || !events.ValidEmail(from.Address) || strings.ContainsAny(from.Name, "\r\n") {
		l.Fail(errors.New(`NOTIFY_FROM: want an address such as "afteraction <afteraction@example.com>"`))
	} else {
		cfg.From = *from
	}
	if cfg.SMTPUsername != "" && cfg.SMTPTLS == TLSNone && !isLocal(cfg.SMTPHost) {
		l.Fail(errors.New("NOTIFY_SMTP_USERNAME: authentication needs NOTIFY_SMTP_TLS starttls or tls (the password would cross the network in clear)"))
	}
	if cfg.Webhooks, err = ParseWebhooks(l.Raw("NOTIFY_WEBHOOKS")); err != nil {
		l.Fail(fmt.Errorf("NOTIFY_WEBHOOKS: %w", err))
	}
	if cfg.Routes, err = ParseRoutes(l.Raw("NOTIFY_ROUTES"), cfg.Webhooks); err != nil {
		l.Fail(fmt.Errorf("NOTIFY_ROUTES: %w", err))
	}
	for _, s := range strings.Split(l.String("NOTIFY_RETRY_BACKOFF", "30s,2m,10m,30m,1h"), ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			l.Fail(fmt.Errorf("NOTIFY_RETRY_BACKOFF: %q is not a positive duration", s))
			continue
		}
		cfg.Backoff = append(cfg.Backoff, d)
	}
	if cfg.SendingLease <= cfg.SMTPTimeout {
		l.Fail(errors.New("NOTIFY_SENDING_LEASE: must be longer than NOTIFY_SMTP_TIMEOUT, or a slow send would be sent twice"))
	}
	return cfg, l.Err()
}

func isLocal(host string) bool { return host == "localhost" || host == "127.0.0.1" || host == "::1" }

// fields renders the configuration for the start-up log line, secrets masked.
func (c Config) fields() []zap.Field {
	hooks := make([]string, 0, len(c.Webhooks))
	for name, h := range c.Webhooks {
		hooks = append(hooks, name+"="+h.Kind)
	}
	return append(c.Common.Fields(),
		zap.String("smtp_host", c.SMTPHost), zap.Int("smtp_port", c.SMTPPort), zap.String("smtp_tls", string(c.SMTPTLS)),
		zap.Bool("smtp_auth", c.SMTPUsername != ""), zap.String("from", c.From.String()),
		zap.Strings("webhooks", hooks), zap.String("routes", c.Routes.String()),
		zap.Duration("reminder_every", c.ReminderEvery), zap.Int("reminder_max", c.ReminderMax),
		zap.Durations("retry_backoff", c.Backoff), zap.Int("max_attempts", c.MaxAttempts),
		zap.Duration("sending_lease", c.SendingLease),
	)
}

// Deps is what the caller may inject.
type Deps struct {
	// Log is required.
	Log *zap.Logger
	// Listener, when set, is served instead of listening on HTTPAddr (tests pass 127.0.0.1:0).
	Listener net.Listener
	// TracerProvider, when set, records the service's spans instead of the
	// provider the OTEL_* variables configure (tests).
	TracerProvider trace.TracerProvider
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HTTPClient posts chat webhooks (default: a client with a 15s timeout).
	HTTPClient *http.Client

	hooks hooks
}

// Run runs the notify service until ctx is cancelled: it migrates its schema,
// consumes the private NOTIFY stream and the review and action events,
// records deliveries, sends them (SMTP, chat webhooks), records reminders,
// serves the deliveries API and relays its outbox. On cancellation the
// consumers, the sender (after finishing and recording the send in flight),
// the reminder job and HTTP stop first, then the outbox relay makes its final
// pass, and only then do the NATS connection and the pool close. It returns
// nil after a clean shutdown.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if deps.Log == nil {
		return errors.New("notify: Deps.Log is required")
	}
	log := deps.Log.Named("notify")
	log.Info("starting", cfg.fields()...)
	if cfg.SMTPHost == "" {
		log.Warn("NOTIFY_SMTP_HOST is not set: mail is disabled and every mail delivery is recorded dead")
	}

	cfg.Tracing.Provider = deps.TracerProvider
	tp, stopTracing, err := tracing.Setup(ctx, cfg.Tracing, "notify", log)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	defer stopTracing()

	pool, err := pg.Open(ctx, cfg.DatabaseURL, postgres.Schema)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.Migrate(ctx, pool, postgres.Schema, postgres.Migrations()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	store := postgres.New(pool)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	b, err := bus.Connect(ctx, cfg.NATSURL, "notify", log, cfg.BusOptions(reg, tp))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.EnsureTopology(ctx, bus.Topology{Replicas: cfg.StreamReplicas}); err != nil {
		return err
	}

	mailer := &SMTP{Host: cfg.SMTPHost, Port: cfg.SMTPPort, TLS: cfg.SMTPTLS, Username: cfg.SMTPUsername,
		Password: cfg.SMTPPassword, Timeout: cfg.SMTPTimeout}
	svc, err := NewService(store, mailer, deps.HTTPClient, ServiceConfig{
		From: cfg.From, MailEnabled: cfg.SMTPHost != "", Routes: cfg.Routes, Webhooks: cfg.Webhooks,
		ReminderEvery: cfg.ReminderEvery, ReminderMax: cfg.ReminderMax, Backoff: cfg.Backoff,
		MaxAttempts: cfg.MaxAttempts, SendingLease: cfg.SendingLease, Now: deps.Now,
	}, log, reg)
	if err != nil {
		return err
	}
	svc.hooks = deps.hooks
	ln, err := httpapi.Listen(deps.Listener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	handler := Handler(svc, cfg.APITokens, reg, map[string]httpapi.Check{
		"postgres": store.Ping,
		"nats":     b.Ping,
	}, log)

	b.RecordDeadLettersIn(pool)
	relay := &bus.Relay{Bus: b, Pool: pool, Schema: postgres.Schema, Log: log}
	err = relay.RunAlongside(ctx,
		func(ctx context.Context) error { return svc.Subscribe(ctx, b) },
		func(ctx context.Context) error { return svc.RunSender(ctx, cfg.Poll) },
		func(ctx context.Context) error { return svc.RunReminders(ctx, cfg.ReminderInterval) },
		func(ctx context.Context) error { return httpapi.Serve(ctx, ln, tracing.HTTP(tp, handler), log) },
		func(ctx context.Context) error { return pg.RunRetention(ctx, pool, cfg.Retention, log) },
	)
	log.Info("stopped", zap.Error(err))
	return err
}
