package review

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
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
	"github.com/afteraction/afteraction/services/review/postgres"
)

// DefaultQuestionnaire is the questionnaire version new reviews open with.
const DefaultQuestionnaire = "2026-12.1"

// Config is the review service's configuration, read from the environment by LoadConfig.
type Config struct {
	config.Common

	// Policy is REVIEW_POLICY: due dates per severity (see ParsePolicy).
	Policy Policy
	// Questionnaire is REVIEW_QUESTIONNAIRE: the version new reviews open with.
	Questionnaire string
	// InviteSecret is REVIEW_INVITE_SECRET (required, 16+ bytes): the HMAC key of invitation tokens.
	InviteSecret string
	// InviteTTL is REVIEW_INVITE_TTL: how long after opening invitations stay valid.
	InviteTTL time.Duration
	// PublicURL is REVIEW_PUBLIC_URL: the base URL of participants' form links.
	PublicURL string
	// ReminderInterval is REVIEW_REMINDER_INTERVAL: how often the reminder job runs.
	ReminderInterval time.Duration
	// ReminderWindow is REVIEW_REMINDER_WINDOW: how long before the due date due_soon reminders go out.
	ReminderWindow time.Duration
	// MaxAge is REVIEW_MAX_AGE: an incident closed longer than this before its
	// review opens gets a historical review (not required, no due date, no
	// reminders), so importing history sends nobody reminders. 0 disables it.
	MaxAge time.Duration
	// ConsoleAccounts is read from the file REVIEW_CONSOLE_ACCOUNTS_FILE: the
	// local console accounts (see ParseAccounts); without it nobody can sign
	// in to the console with a password.
	ConsoleAccounts Accounts
	// SessionTTL is REVIEW_SESSION_TTL: how long a console session lasts.
	SessionTTL time.Duration
	// Rules is REVIEW_PARTICIPANT_RULES: JSON rules adding people by
	// severity, category or asset (see Rule).
	Rules []Rule
	// ApprovalSeverities is REVIEW_APPROVAL_SEVERITIES, e.g. "critical": reviews
	// of these severities need a second approval after the sign-off.
	ApprovalSeverities []events.Severity
	// ActionDue is REVIEW_ACTION_DUE: due dates by priority for action items without one.
	ActionDue ActionDuePolicy
	// OIDC is single sign-on for the console: REVIEW_OIDC_ISSUER (unset: off),
	// REVIEW_OIDC_CLIENT_ID, REVIEW_OIDC_CLIENT_SECRET, REVIEW_OIDC_SCOPES
	// (space-separated, default "profile email groups") and
	// REVIEW_OIDC_ROLES_CLAIM (default "groups"); the callback is
	// REVIEW_PUBLIC_URL/console/oidc/callback.
	OIDC OIDCConfig
	// ReportURL is REVIEW_REPORT_URL, the report service's base URL, and
	// ReportToken REVIEW_REPORT_TOKEN (secret) an API token of role compliance
	// or facilitator there: together they turn on the console's case library
	// page. Unset: the page says it is not configured.
	ReportURL, ReportToken string
}

// LoadConfig reads the configuration through getenv, applying defaults and
// validating every value; the error names every offending variable.
func LoadConfig(getenv func(string) string) (Config, error) {
	l := config.NewLoader(getenv)
	cfg := Config{
		Common:           l.Common(":8082"),
		Questionnaire:    l.String("REVIEW_QUESTIONNAIRE", DefaultQuestionnaire),
		InviteSecret:     l.Raw("REVIEW_INVITE_SECRET"),
		InviteTTL:        l.Duration("REVIEW_INVITE_TTL", "2160h"),
		PublicURL:        l.String("REVIEW_PUBLIC_URL", "http://127.0.0.1:8082"),
		ReminderInterval: l.Duration("REVIEW_REMINDER_INTERVAL", "15m"),
		ReminderWindow:   l.Duration("REVIEW_REMINDER_WINDOW", "24h"),
		MaxAge:           l.DurationOrZero("REVIEW_MAX_AGE", "720h"),
	}
	var err error
	if cfg.Policy, err = ParsePolicy(l.String("REVIEW_POLICY", DefaultPolicy)); err != nil {
		l.Fail(fmt.Errorf("REVIEW_POLICY: %w", err))
	}
	if path := l.String("REVIEW_CONSOLE_ACCOUNTS_FILE", ""); path != "" {
		text, err := os.ReadFile(path)
		if err == nil {
			cfg.ConsoleAccounts, err = ParseAccounts(string(text))
		}
		if err != nil {
			l.Fail(fmt.Errorf("REVIEW_CONSOLE_ACCOUNTS_FILE: %w", err))
		}
	}
	cfg.SessionTTL = l.Duration("REVIEW_SESSION_TTL", "12h")
	if cfg.Rules, err = ParseRules(l.String("REVIEW_PARTICIPANT_RULES", "")); err != nil {
		l.Fail(fmt.Errorf("REVIEW_PARTICIPANT_RULES: %w", err))
	}
	for _, sev := range strings.Split(l.String("REVIEW_APPROVAL_SEVERITIES", ""), ",") {
		if sev = strings.TrimSpace(sev); sev == "" {
			continue
		}
		if !events.Severity(sev).Valid() {
			l.Fail(fmt.Errorf("REVIEW_APPROVAL_SEVERITIES: unknown severity %q", sev))
		}
		cfg.ApprovalSeverities = append(cfg.ApprovalSeverities, events.Severity(sev))
	}
	if cfg.ActionDue, err = ParseActionDue(l.String("REVIEW_ACTION_DUE", DefaultActionDue)); err != nil {
		l.Fail(fmt.Errorf("REVIEW_ACTION_DUE: %w", err))
	}
	cfg.OIDC = OIDCConfig{Issuer: l.String("REVIEW_OIDC_ISSUER", ""), ClientID: l.String("REVIEW_OIDC_CLIENT_ID", ""),
		ClientSecret: l.Raw("REVIEW_OIDC_CLIENT_SECRET"), Scopes: strings.Fields(l.String("REVIEW_OIDC_SCOPES", "")),
		RolesClaim:  l.String("REVIEW_OIDC_ROLES_CLAIM", "groups"),
		RedirectURL: strings.TrimRight(cfg.PublicURL, "/") + "/console/oidc/callback"}
	cfg.ReportURL, cfg.ReportToken = l.String("REVIEW_REPORT_URL", ""), l.Raw("REVIEW_REPORT_TOKEN")
	if cfg.ReportURL != "" {
		if u, err := url.Parse(cfg.ReportURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			l.Fail(errors.New("REVIEW_REPORT_URL: want an absolute http(s) URL"))
		}
		if cfg.ReportToken == "" {
			l.Fail(errors.New("REVIEW_REPORT_TOKEN: required with REVIEW_REPORT_URL"))
		}
	}
	if cfg.OIDC.Issuer != "" && cfg.OIDC.ClientID == "" {
		l.Fail(errors.New("REVIEW_OIDC_CLIENT_ID: required with REVIEW_OIDC_ISSUER"))
	}
	if len(cfg.InviteSecret) < 16 {
		l.Fail(errors.New("REVIEW_INVITE_SECRET: required, at least 16 characters"))
	}
	if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		l.Fail(errors.New("REVIEW_PUBLIC_URL: want an absolute http(s) URL"))
	}
	return cfg, l.Err()
}

// fields renders the configuration for the start-up log line, secrets masked.
func (c Config) fields() []zap.Field {
	return append(c.Common.Fields(),
		zap.String("policy", c.Policy.String()),
		zap.String("questionnaire", c.Questionnaire), zap.Bool("invite_secret_set", c.InviteSecret != ""),
		zap.Duration("invite_ttl", c.InviteTTL), zap.String("public_url", c.PublicURL),
		zap.Duration("reminder_interval", c.ReminderInterval), zap.Duration("reminder_window", c.ReminderWindow),
		zap.Duration("max_age", c.MaxAge), zap.Int("console_accounts", len(c.ConsoleAccounts)),
		zap.Duration("session_ttl", c.SessionTTL), zap.Int("participant_rules", len(c.Rules)),
		zap.Any("approval_severities", c.ApprovalSeverities), zap.Any("action_due", c.ActionDue),
		zap.String("oidc_issuer", c.OIDC.Issuer), zap.String("oidc_client_id", c.OIDC.ClientID),
		zap.Bool("oidc_client_secret_set", c.OIDC.ClientSecret != ""), zap.String("oidc_roles_claim", c.OIDC.RolesClaim),
		zap.String("report_url", c.ReportURL), zap.Bool("report_token_set", c.ReportToken != ""),
	)
}

// Deps is what the caller may inject.
type Deps struct {
	// Log is required.
	Log *zap.Logger
	// Listener, when set, is served instead of listening on HTTPAddr (tests pass 127.0.0.1:0).
	Listener net.Listener
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Run runs the review service until ctx is cancelled: it migrates its schema,
// consumes registered incidents, relays its outbox, sends reminders and serves
// HTTP; on cancellation the consumers, the reminder job and HTTP stop first
// (in-flight work commits), then the outbox relay makes its final pass, and
// only then do the NATS connection and the pool close. It returns nil after a
// clean shutdown.
func Run(ctx context.Context, cfg Config, deps Deps) error {
	if deps.Log == nil {
		return errors.New("review: Deps.Log is required")
	}
	log := deps.Log.Named("review")
	log.Info("starting", cfg.fields()...)

	pool, err := pg.Open(ctx, cfg.DatabaseURL, postgres.Schema)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pg.Migrate(ctx, pool, postgres.Schema, postgres.Migrations()); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	store := postgres.New(pool)
	if _, err := store.Questionnaire(ctx, cfg.Questionnaire); err != nil {
		return fmt.Errorf("REVIEW_QUESTIONNAIRE: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	b, err := bus.Connect(ctx, cfg.NATSURL, "review", log, cfg.BusOptions(reg))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.EnsureTopology(ctx, bus.Topology{Replicas: cfg.StreamReplicas}); err != nil {
		return err
	}

	svc, err := NewService(store, cfg.serviceConfig(deps.Now), log, reg)
	if err != nil {
		return err
	}
	ln, err := httpapi.Listen(deps.Listener, cfg.HTTPAddr)
	if err != nil {
		return err
	}
	console := ConsoleConfig{Accounts: cfg.ConsoleAccounts, SessionTTL: cfg.SessionTTL,
		SecureCookies: strings.HasPrefix(cfg.PublicURL, "https://")}
	if cfg.ReportURL != "" {
		console.Library = &CaseLibrary{BaseURL: cfg.ReportURL, Token: cfg.ReportToken}
	}
	if cfg.OIDC.Issuer != "" {
		if console.OIDC, err = NewOIDC(ctx, cfg.OIDC); err != nil {
			return fmt.Errorf("REVIEW_OIDC_ISSUER: %w", err)
		}
	}
	handler := Routes(svc, cfg.APITokens, console, reg, map[string]httpapi.Check{
		"postgres": store.Ping,
		"nats":     b.Ping,
	}, log)

	// The relay outlives the workers (consumers, reminder job, HTTP): its final
	// pass publishes everything they committed while shutting down.
	b.RecordDeadLettersIn(pool)
	relay := &bus.Relay{Bus: b, Pool: pool, Schema: postgres.Schema, Log: log}
	err = relay.RunAlongside(ctx,
		func(ctx context.Context) error { return svc.Subscribe(ctx, b) },
		func(ctx context.Context) error {
			return svc.RunReminders(ctx, min(5*time.Second, cfg.ReminderInterval), cfg.ReminderInterval)
		},
		func(ctx context.Context) error { return httpapi.Serve(ctx, ln, handler, log) },
		func(ctx context.Context) error { return pg.RunRetention(ctx, pool, cfg.Retention, log) },
	)
	log.Info("stopped", zap.Error(err))
	return err
}

// serviceConfig is the part of cfg the Service uses.
func (cfg Config) serviceConfig(now func() time.Time) ServiceConfig {
	return ServiceConfig{
		Policy: cfg.Policy, Questionnaire: cfg.Questionnaire,
		Invites:   Invites{Secret: []byte(cfg.InviteSecret), TTL: cfg.InviteTTL},
		PublicURL: cfg.PublicURL, ReminderWindow: cfg.ReminderWindow, MaxAge: cfg.MaxAge, Now: now,
		Rules: cfg.Rules, ApprovalSeverities: cfg.ApprovalSeverities, ActionDue: cfg.ActionDue,
	}
}
