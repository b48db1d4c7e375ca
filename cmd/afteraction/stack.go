package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/services/intake"
	"github.com/afteraction/afteraction/services/notify"
	"github.com/afteraction/afteraction/services/notify/mailpit"
	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/review"
	"github.com/afteraction/afteraction/services/tracker"
)

// StackConfig describes a single-process pipeline: an embedded nats-server and
// the five services against one Postgres database (each in its own schema).
type StackConfig struct {
	DatabaseURL string
	// ThrowawayPostgres: when no Postgres answers at DatabaseURL on this
	// machine, start a throwaway cluster with the installed binaries instead
	// of failing (Stack.PostgresNote says so); Stop removes it.
	ThrowawayPostgres bool
	// FreshDatabase drops DatabaseURL's database first, so the run starts empty.
	FreshDatabase bool
	// NATSPort for the embedded server; 0 picks a free port, never 4222 by accident.
	NATSPort int
	// StoreDir keeps JetStream's files; it survives restarts when it is not a temp dir.
	StoreDir string
	// HTTPHost and HTTPPorts: the services listen on HTTPHost:port; port 0 picks a free one.
	HTTPHost  string
	HTTPPorts map[string]int
	// Env overrides the environment the services' LoadConfig reads.
	Env map[string]string
	// AdminToken is the admin bearer token the services accept; empty picks a random one.
	AdminToken string
	// ConsolePassword is the password of the console accounts "facilitator"
	// and "approver" (written to StoreDir); empty picks a random one.
	ConsolePassword string
	// NATSConfigFile, when set, configures the embedded server (users,
	// permissions); ServiceEnv then gives each service its own NATS_USER and
	// NATS_PASSWORD, and Client the identity the CLI publishes with.
	NATSConfigFile string
	ServiceEnv     map[string]map[string]string
	Client         bus.Options
	Log            *zap.Logger
	// Mail starts a mailpit (when installed) as notify's SMTP server, on
	// MailSMTPPort and MailUIPort (0: free ports), keeping its messages in
	// StoreDir/mailpit. Without mailpit, notify runs with mail disabled.
	Mail                     bool
	MailSMTPPort, MailUIPort int
	// MailDir, when set, keeps mailpit's messages instead of StoreDir/mailpit.
	MailDir string
}

// Stack is a running single-process pipeline.
type Stack struct {
	NATSURL string
	// DatabaseURL is the database the services use: StackConfig.DatabaseURL,
	// or the same database on the throwaway cluster PostgresNote describes.
	DatabaseURL, PostgresNote string
	URLs                      map[string]string // service → base URL
	AdminToken                string
	// ConsolePassword signs the accounts "facilitator" and "approver" in to the review console.
	ConsolePassword string
	// Client is how the CLI connects to the stack's NATS (see StackConfig.Client).
	Client bus.Options
	// MailURL is the web UI of the stack's mailpit ("" when none runs);
	// MailNote says why none runs when one was asked for.
	MailURL, MailNote string
	mailpit           *mailpit.Server
	postgres          *throwawayPostgres
	nats              *server.Server
	cancel            context.CancelFunc
	group             *errgroup.Group
}

var serviceNames = []string{"intake", "review", "report", "tracker", "notify"}

// StartStack starts NATS, then every service, and returns once each answers
// /readyz. Stop shuts everything down.
func StartStack(ctx context.Context, cfg StackConfig) (_ *Stack, err error) {
	dsn, pg, err := postgresFor(ctx, cfg.DatabaseURL, cfg.ThrowawayPostgres)
	if err != nil {
		return nil, err
	}
	if pg != nil {
		defer func() {
			if err != nil {
				_ = pg.Stop()
			}
		}()
	}
	prepare := ensureDatabase
	if cfg.FreshDatabase {
		prepare = recreateDatabase
	}
	if err := prepare(ctx, dsn); err != nil {
		return nil, err
	}
	ns, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: cfg.NATSPort, StoreDir: cfg.StoreDir, SyncAlways: true,
		ConfigFile: cfg.NATSConfigFile})
	if err != nil {
		return nil, err
	}
	s := &Stack{NATSURL: ns.ClientURL(), URLs: map[string]string{}, nats: ns, AdminToken: orDefault(cfg.AdminToken, randomToken()),
		Client: cfg.Client, DatabaseURL: dsn, postgres: pg}
	if pg != nil {
		s.PostgresNote = pg.Note()
	}
	env := map[string]string{
		"DATABASE_URL":           dsn,
		"NATS_URL":               s.NATSURL,
		"API_TOKENS":             "admin:" + s.AdminToken,
		"REVIEW_INVITE_SECRET":   randomToken(),
		"REPORT_DEV_SIGNING_KEY": "true",
		"STREAM_REPLICAS":        "1",
	}
	listeners := map[string]net.Listener{}
	for _, name := range serviceNames {
		ln, err := net.Listen("tcp", net.JoinHostPort(orDefault(cfg.HTTPHost, "127.0.0.1"), fmt.Sprint(cfg.HTTPPorts[name])))
		if err != nil {
			closeAll(listeners)
			ns.Shutdown()
			return nil, fmt.Errorf("listen for %s: %w", name, err)
		}
		listeners[name] = ln
		s.URLs[name] = "http://" + ln.Addr().String()
	}
	env["REVIEW_PUBLIC_URL"] = s.URLs["review"]
	// The console's case library reads the report service with the admin token.
	env["REVIEW_REPORT_URL"], env["REVIEW_REPORT_TOKEN"] = s.URLs["report"], s.AdminToken
	s.ConsolePassword = orDefault(cfg.ConsolePassword, randomToken())
	accounts, err := writeConsoleAccounts(cfg.StoreDir, s.ConsolePassword)
	if err != nil {
		closeAll(listeners)
		ns.Shutdown()
		return nil, fmt.Errorf("console accounts: %w", err)
	}
	env["REVIEW_CONSOLE_ACCOUNTS_FILE"] = accounts
	if cfg.Mail {
		if err := s.startMail(ctx, cfg, env); err != nil {
			closeAll(listeners)
			ns.Shutdown()
			return nil, err
		}
	}
	for k, v := range cfg.Env {
		env[k] = v
	}
	getenvOf := func(service string) func(string) string {
		return func(key string) string {
			if v, ok := cfg.ServiceEnv[service][key]; ok {
				return v
			}
			if v, ok := env[key]; ok {
				return v
			}
			return os.Getenv(key)
		}
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	g, gctx := errgroup.WithContext(runCtx)
	s.group = g
	log := cfg.Log
	start := []struct {
		name string
		run  func(context.Context) error
	}{
		{"intake", runner(getenvOf("intake"), intake.LoadConfig, intake.Run, intake.Deps{Log: log.Named("intake"), Listener: listeners["intake"]})},
		{"review", runner(getenvOf("review"), review.LoadConfig, review.Run, review.Deps{Log: log.Named("review"), Listener: listeners["review"]})},
		{"report", runner(getenvOf("report"), report.LoadConfig, report.Run, report.Deps{Log: log.Named("report"), Listener: listeners["report"]})},
		{"tracker", runner(getenvOf("tracker"), tracker.LoadConfig, tracker.Run, tracker.Deps{Log: log.Named("tracker"), Listener: listeners["tracker"]})},
		{"notify", runner(getenvOf("notify"), notify.LoadConfig, notify.Run, notify.Deps{Log: log.Named("notify"), Listener: listeners["notify"]})},
	}
	for _, svc := range start {
		g.Go(func() error {
			if err := svc.run(gctx); err != nil {
				return fmt.Errorf("%s: %w", svc.name, err)
			}
			return nil
		})
	}
	if err := s.waitReady(ctx, gctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) waitReady(ctx, gctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, name := range serviceNames {
		for {
			if err := getJSON(ctx, s.URLs[name]+"/readyz", "", nil); err == nil {
				break
			}
			select {
			case <-gctx.Done():
				return fmt.Errorf("a service stopped during start-up: %w", s.group.Wait())
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after 60s", name)
			}
		}
	}
	return nil
}

// Wait blocks until a service fails or the stack is stopped.
func (s *Stack) Wait() error { return s.group.Wait() }

// Stop cancels every service, waits for them to drain, then stops NATS and
// the throwaway Postgres cluster, if one was started, removing it.
func (s *Stack) Stop() error {
	s.cancel()
	err := s.group.Wait()
	s.nats.Shutdown()
	s.nats.WaitForShutdown()
	if s.mailpit != nil {
		s.mailpit.Stop()
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if s.postgres != nil {
		err = errors.Join(err, s.postgres.Stop())
	}
	return err
}

// startMail starts mailpit and points notify at it; a missing binary is not
// an error (MailNote says so and notify runs with mail disabled).
func (s *Stack) startMail(ctx context.Context, cfg StackConfig, env map[string]string) error {
	dir := cfg.MailDir
	if dir == "" {
		dir = filepath.Join(cfg.StoreDir, "mailpit")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mp, err := mailpit.Start(ctx, mailpit.Options{SMTPPort: cfg.MailSMTPPort, HTTPPort: cfg.MailUIPort, Dir: dir})
	if errors.Is(err, mailpit.ErrNotInstalled) {
		s.MailNote = err.Error() + "; mail is disabled, every mail delivery is recorded dead"
		return nil
	}
	if err != nil {
		return fmt.Errorf("mailpit: %w", err)
	}
	s.mailpit, s.MailURL = mp, mp.WebURL
	env["NOTIFY_SMTP_HOST"], env["NOTIFY_SMTP_PORT"], env["NOTIFY_SMTP_TLS"] = "127.0.0.1", fmt.Sprint(mp.SMTPPort), "none"
	return nil
}

// runner loads a service's configuration through getenv and runs it with deps.
func runner[C, D any](getenv func(string) string, load func(func(string) string) (C, error),
	run func(context.Context, C, D) error, deps D) func(context.Context) error {
	return func(ctx context.Context) error {
		cfg, err := load(getenv)
		if err != nil {
			return err
		}
		return run(ctx, cfg, deps)
	}
}

// ensureDatabase creates the database named in dsn when it does not exist.
func ensureDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return nil
	}
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect to postgres at %s: %w", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// recreateDatabase drops and creates the database named in dsn.
func recreateDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return fmt.Errorf("connect to postgres at %s: %w", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return ensureDatabase(ctx, dsn)
}

func closeAll(ls map[string]net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
