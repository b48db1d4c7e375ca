package notify

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/services/notify/mailpit"
	"github.com/afteraction/afteraction/services/notify/postgres"
)

const adminToken = "admin-token-notify-0123"

// testEnv is a notify service under test: a real mailpit, a real NATS server
// and a fresh database, with the service's environment in env.
type testEnv struct {
	t    *testing.T
	mp   *mailpit.Server
	nats *bustest.Server
	db   string
	env  map[string]string
	bus  *bus.Bus
	base string
	stop func()
}

// startMailpit starts a mailpit for t (stopped when t ends).
func startMailpit(t *testing.T, o mailpit.Options) *mailpit.Server {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	mp, err := mailpit.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("mailpit: %v (the mail tests need it: go install github.com/axllent/mailpit@v1.33.1)", err)
	}
	t.Cleanup(mp.Stop)
	return mp
}

// newEnv prepares NATS, a database and mailpit; start runs the service.
func newEnv(t *testing.T, mo mailpit.Options, env map[string]string) *testEnv {
	t.Helper()
	e := &testEnv{t: t, mp: startMailpit(t, mo), nats: bustest.New(t), db: pgtest.NewDatabase(t)}
	e.env = map[string]string{
		"DATABASE_URL": e.db, "NATS_URL": e.nats.URL(), "API_TOKENS": "admin:" + adminToken,
		"NOTIFY_SMTP_HOST": "127.0.0.1", "NOTIFY_SMTP_PORT": strconv.Itoa(e.mp.SMTPPort), "NOTIFY_SMTP_TLS": "none",
		"NOTIFY_FROM": "Afteraction <afteraction@notify.example>", "NOTIFY_POLL": "100ms",
		"NOTIFY_RETRY_BACKOFF": "200ms", "NOTIFY_SMTP_TIMEOUT": "5s", "NOTIFY_SENDING_LEASE": "10s",
	}
	for k, v := range env {
		e.env[k] = v
	}
	b, err := bus.Connect(context.Background(), e.nats.URL(), "test", zap.NewNop(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	e.bus = b
	return e
}

// start runs notify.Run with deps until the returned stop (also called when t ends).
func (e *testEnv) start(deps Deps) {
	e.t.Helper()
	cfg, err := LoadConfig(func(k string) string { return e.env[k] })
	if err != nil {
		e.t.Fatal(err)
	}
	if deps.Log == nil {
		deps.Log = zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stopped bool
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("Run: %v", err)
			}
		case <-time.After(servicetest.Timeout):
			e.t.Errorf("Run did not stop")
		}
	}
	e.t.Cleanup(e.stop)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.base = "http://" + ln.Addr().String()
	go func() { done <- Run(ctx, cfg, withListener(deps, ln)) }()
	servicetest.Eventually(e.t, "notify ready", func() bool {
		resp, err := http.Get(e.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func withListener(d Deps, ln net.Listener) Deps { d.Listener = ln; return d }

// publish publishes data as an event of typ with a fresh id.
func (e *testEnv) publish(typ, subject string, data any) events.Envelope {
	e.t.Helper()
	env, err := e.bus.PublishEvent(context.Background(), typ, subject, data)
	if err != nil {
		e.t.Fatal(err)
	}
	return env
}

// messages waits until mailpit holds n messages and returns them, oldest first.
func (e *testEnv) messages(n int) []mailpit.Message {
	e.t.Helper()
	ctx := context.Background()
	var list []mailpit.Summary
	servicetest.Eventually(e.t, strconv.Itoa(n)+" mails in mailpit", func() bool {
		var err error
		list, err = e.mp.Messages(ctx)
		return err == nil && len(list) >= n
	})
	out := make([]mailpit.Message, 0, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		m, err := e.mp.Message(ctx, list[i].ID)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// deliveries reads GET /v1/deliveries?query.
func (e *testEnv) deliveries(query string) []DeliveryView {
	e.t.Helper()
	resp, body := servicetest.Do(e.t, http.MethodGet, e.base+"/v1/deliveries?"+query, adminToken, "", nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /v1/deliveries?%s: %d %s", query, resp.StatusCode, body)
	}
	var out struct {
		Deliveries []DeliveryView `json:"deliveries"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Deliveries
}

// waitDeliveries waits until every delivery of query has status and there are n.
func (e *testEnv) waitDeliveries(query string, n int, status string) []DeliveryView {
	e.t.Helper()
	var ds []DeliveryView
	servicetest.Eventually(e.t, strconv.Itoa(n)+" "+status+" deliveries of "+query, func() bool {
		ds = e.deliveries(query)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.Status != status {
				return false
			}
		}
		return true
	})
	return ds
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// invitation returns an invitation of a fresh review to name <email>.
func invitation(name, email string) events.ReviewInvitation {
	rid := newID()
	due := time.Date(2030, 3, 19, 17, 0, 0, 0, time.UTC)
	return events.ReviewInvitation{
		ReviewID: rid, IncidentID: newID(), Title: "Ransomware on the warehouse file server", Severity: events.Severity("high"),
		Participant: events.Participant{ParticipantID: newID(), Name: name, Email: email, Role: events.RoleResponder},
		Facilitator: &events.Contact{Name: "Jonas Berg", Email: "j.berg@ok.example"},
		FormURL:     "http://review.test/review/" + rid + "?token=SECRET-" + strings.ReplaceAll(newID(), "-", ""),
		DueAt:       &due, ExpiresAt: due.Add(90 * 24 * time.Hour), InvitedAt: time.Now().UTC(), Reason: events.InvitationOpened,
	}
}

func openPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Open(context.Background(), dsn, postgres.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
