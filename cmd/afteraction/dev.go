package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/afteraction/afteraction/pkg/logging"
	"github.com/afteraction/afteraction/pkg/postgres"
)

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dsn := fs.String("database-url", envOr("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/afteraction?sslmode=disable"),
		"Postgres database (created when missing); each service uses its own schema. When no server answers on this machine, a throwaway cluster")
	natsPort := fs.Int("nats-port", 4333, "port of the embedded NATS server (0 picks a free one)")
	store := fs.String("store", filepath.Join(".afteraction", "nats"), "directory for JetStream's files")
	host := fs.String("host", "127.0.0.1", "address the services listen on")
	logFormat := fs.String("log-format", "console", "json or console")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	mailSMTP := fs.Int("mail-smtp-port", 1025, "SMTP port of the mailpit started for notify (0 picks a free one)")
	mailUI := fs.Int("mail-ui-port", 8025, "web UI port of the mailpit started for notify (0 picks a free one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log, err := logging.New(*logFormat, *logLevel)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	if err := os.MkdirAll(*store, 0o755); err != nil {
		return err
	}
	stack, err := StartStack(ctx, StackConfig{
		DatabaseURL: *dsn, ThrowawayPostgres: true, NATSPort: *natsPort, StoreDir: *store, HTTPHost: *host,
		HTTPPorts:       map[string]int{"intake": 8081, "review": 8082, "report": 8083, "tracker": 8084, "notify": 8085},
		AdminToken:      devToken(),
		ConsolePassword: envOr("AFTERACTION_CONSOLE_PASSWORD", "dev-console-password"),
		Log:             log,
		Mail:            true, MailSMTPPort: *mailSMTP, MailUIPort: *mailUI,
	})
	if err != nil {
		return err
	}
	fmt.Printf(`afteraction dev is running (Ctrl-C stops it)
  postgres  %s
  nats      %s  (embedded, JetStream in %s, sync_interval: always)
  intake    %s
  review    %s
  report    %s
  tracker   %s
  notify    %s
  mail      %s
  token     %s  (admin; set AFTERACTION_TOKEN to choose it)
  console   %s/console  sign in as "facilitator" or "approver" with password %q
            (set AFTERACTION_CONSOLE_PASSWORD to choose it)
`, postgresLine(stack), stack.NATSURL, *store, stack.URLs["intake"], stack.URLs["review"], stack.URLs["report"], stack.URLs["tracker"],
		stack.URLs["notify"], mailLine(stack), devToken(), stack.URLs["review"], stack.ConsolePassword)
	select {
	case <-ctx.Done():
	case <-waitErr(stack):
	}
	fmt.Println("stopping: draining consumers and outboxes ...")
	return stack.Stop()
}

// mailLine says where to read the mail notify sent, or why there is none.
func mailLine(s *Stack) string {
	if s.MailURL != "" {
		return s.MailURL + "  (mailpit: every mail notify sent; SMTP on the port notify uses)"
	}
	return "NOT RUNNING: " + s.MailNote
}

// postgresLine says which Postgres the stack uses; the password of a
// throwaway cluster is shown, as the dev token is, so psql can connect.
func postgresLine(s *Stack) string {
	if s.PostgresNote != "" {
		return s.DatabaseURL + "\n            (no Postgres answered at -database-url: " + s.PostgresNote + ")"
	}
	return postgres.Redact(s.DatabaseURL)
}

func devToken() string { return envOr("AFTERACTION_TOKEN", "dev-admin-token") }

func waitErr(s *Stack) <-chan error {
	c := make(chan error, 1)
	go func() { c <- s.Wait() }()
	return c
}
