package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/afteraction/afteraction/pkg/config"
)

func TestCommon(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		wantErr []string
	}{
		{"defaults", map[string]string{}, nil},
		{"replicas 0", map[string]string{"STREAM_REPLICAS": "0"}, []string{"STREAM_REPLICAS"}},
		{"replicas 6", map[string]string{"STREAM_REPLICAS": "6"}, []string{"STREAM_REPLICAS"}},
		{"replicas not a number", map[string]string{"STREAM_REPLICAS": "three"}, []string{"STREAM_REPLICAS"}},
		{"malformed token", map[string]string{"API_TOKENS": "admin"}, []string{"API_TOKENS"}},
		{"unknown role", map[string]string{"API_TOKENS": "root:0123456789"}, []string{"unknown role"}},
		{"database url", map[string]string{"DATABASE_URL": "postgres://%zz"}, []string{"DATABASE_URL"}},
		{"every error", map[string]string{"STREAM_REPLICAS": "9", "API_TOKENS": "x"}, []string{"STREAM_REPLICAS", "API_TOKENS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := config.NewLoader(func(k string) string { return tc.vars[k] })
			c := l.Common(":9999")
			err := l.Err()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if c.HTTPAddr != ":9999" || c.StreamReplicas != 1 || c.DatabaseURL != config.DefaultDatabaseURL ||
					c.NATSURL != config.DefaultNATSURL || c.LogFormat != "json" || c.LogLevel != "info" {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to mention %q", err, want)
				}
			}
		})
	}
}

func TestLoaderValues(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"N": " 7 ", "B": "true", "D": "0s", "BAD": "x"}
	l := config.NewLoader(func(k string) string { return vars[k] })
	if n := l.Int("N", 1, 1, 10); n != 7 {
		t.Errorf("Int = %d, want 7", n)
	}
	if b := l.Bool("B", false); !b {
		t.Error("Bool = false, want true")
	}
	if d := l.DurationOrZero("D", "1s"); d != 0 {
		t.Errorf("DurationOrZero = %v, want 0", d)
	}
	if d := l.Duration("UNSET", "2s"); d.String() != "2s" {
		t.Errorf("Duration default = %v, want 2s", d)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	l.Duration("D", "1s")
	l.Bool("BAD", false)
	l.Int("BAD", 1, 1, 10)
	err := l.Err()
	for _, want := range []string{`D="0s"`, `BAD="x": want true or false`, `BAD="x": want an integer`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %s", err, want)
		}
	}
}

func TestFieldsMaskSecrets(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"DATABASE_URL":  "postgres://app:db-secret@db:5432/afteraction",
		"NATS_URL":      "nats://u:nats-url-secret@nats:4222",
		"NATS_PASSWORD": "nats-secret",
		"API_TOKENS":    "admin:admin-token-secret,tracker:tracker-token-secret",
	}
	l := config.NewLoader(func(k string) string { return vars[k] })
	c := l.Common(":1")
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.Fields() {
		f.AddTo(enc)
	}
	var all strings.Builder
	for k, v := range enc.Fields {
		all.WriteString(k)
		all.WriteString("=")
		if s, ok := v.(string); ok {
			all.WriteString(s)
		}
		all.WriteString(" ")
	}
	for _, secret := range []string{"db-secret", "nats-url-secret", "nats-secret", "admin-token-secret", "tracker-token-secret"} {
		if strings.Contains(all.String(), secret) {
			t.Errorf("log fields reveal %q: %s", secret, all.String())
		}
	}
	if enc.Fields["nats_password_set"] != true {
		t.Errorf("nats_password_set = %v, want true", enc.Fields["nats_password_set"])
	}
}

// Issue 9 item 16: DATABASE_URL in every form libpq takes keeps its password
// out of the start-up log line.
func TestFieldsMaskEveryFormOfDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"host=db port=5432 user=app password=kv-secret dbname=afteraction sslmode=disable",
		"host=db user=app password = 'kv secret with spaces' dbname=afteraction",
		"host=db user=app sslpassword=kv-secret dbname=afteraction",
		"postgres://app:url-secret@db:5432/afteraction",
		"postgres://app@db:5432/afteraction?password=query-secret&sslmode=disable",
		"postgresql://app@db/afteraction?sslpassword=query-secret",
	} {
		l := config.NewLoader(func(k string) string {
			if k == "DATABASE_URL" {
				return dsn
			}
			return ""
		})
		c := l.Common(":1")
		enc := zapcore.NewMapObjectEncoder()
		for _, f := range c.Fields() {
			f.AddTo(enc)
		}
		got, _ := enc.Fields["database_url"].(string)
		if strings.Contains(got, "secret") || !strings.Contains(got, "db") {
			t.Errorf("DATABASE_URL %q logged as %q", dsn, got)
		}
	}
}

func TestRetentionShorterThanTheStreamsIsRefused(t *testing.T) {
	t.Parallel()
	l := config.NewLoader(func(k string) string {
		if k == "PROCESSED_EVENTS_RETENTION" {
			return "24h"
		}
		return ""
	})
	l.Common(":1")
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "PROCESSED_EVENTS_RETENTION") {
		t.Errorf("err = %v, want one naming PROCESSED_EVENTS_RETENTION", err)
	}
	l = config.NewLoader(func(string) string { return "" })
	if c := l.Common(":1"); c.Retention.ProcessedEvents != 120*24*time.Hour || l.Err() != nil {
		t.Errorf("default retention = %v (%v)", c.Retention.ProcessedEvents, l.Err())
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	load := func(getenv func(string) string) (config.Common, error) {
		l := config.NewLoader(getenv)
		c := l.Common(":9999")
		if c.NATSUser == "" {
			l.Fail(errors.New("NATS_USER: required"))
		}
		return c, l.Err()
	}
	in := config.Inspect(load, map[string]string{"NATS_USER": "intake", "HTTP_ADDR": ":8081", "NATS_PASWORD": "typo"})
	if in.Err != nil {
		t.Errorf("err = %v", in.Err)
	}
	if !slices.Equal(in.Unknown, []string{"NATS_PASWORD"}) {
		t.Errorf("unknown = %q, want the misspelt NATS_PASWORD", in.Unknown)
	}
	if !slices.Equal(in.Required, []string{"NATS_USER"}) {
		t.Errorf("required = %q, want NATS_USER", in.Required)
	}
	for _, known := range []string{"DATABASE_URL", "NATS_PASSWORD", "HTTP_ADDR", "API_TOKENS", "RETENTION_INTERVAL"} {
		if !slices.Contains(in.Read, known) {
			t.Errorf("read %q, want it to include %s", in.Read, known)
		}
	}
	if in := config.Inspect(load, map[string]string{"HTTP_ADDR": ":8081"}); in.Err == nil || !strings.Contains(in.Err.Error(), "NATS_USER") {
		t.Errorf("without NATS_USER: err = %v, want it named", in.Err)
	}
}
