package intake_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/intake"
)

const (
	readToken     = "compliance-token-1"
	submitToken   = "intake-token-1"
	webhookSecret = "pagerduty-signing-secret"
)

// env is intake started by Run against a real Postgres and nats-server.
type env struct {
	t    *testing.T
	url  string
	nats string
	bus  *bus.Bus
	js   jetstream.JetStream
	pool *pgxpool.Pool
}

func start(t *testing.T, extra map[string]string) *env {
	t.Helper()
	srv := bustest.New(t)
	dsn := pgtest.NewDatabase(t)
	vars := map[string]string{
		"DATABASE_URL":      dsn,
		"NATS_URL":          srv.URL(),
		"API_TOKENS":        "compliance:" + readToken + ",intake:" + submitToken,
		"INTAKE_BATCH_SIZE": "100",
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := intake.LoadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	e := &env{t: t, nats: srv.URL()}
	e.url = servicetest.Start(t, func(ctx context.Context, ln net.Listener) error {
		return intake.Run(ctx, cfg, intake.Deps{Log: log, Listener: ln})
	})
	if e.bus, err = bus.Connect(context.Background(), srv.URL(), "test", log, bus.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.bus.Close)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if e.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if e.pool, err = postgres.Open(context.Background(), dsn, "intake"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pool.Close)
	return e
}

// with returns e reporting to t (a subtest).
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// settle waits until intake has acknowledged everything in INCIDENTS so far
// (its ack floor reached the stream's last sequence) and relayed every event
// it enqueued.
func (e *env) settle() {
	e.t.Helper()
	ctx := context.Background()
	stream, err := e.js.Stream(ctx, bus.StreamIncidents)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	last := info.State.LastSeq
	servicetest.Eventually(e.t, "consumer and outbox drained", func() bool {
		c, err := e.js.Consumer(ctx, bus.StreamIncidents, intake.DurableIncidentsClosed)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		if err != nil || ci.AckFloor.Stream < last {
			return false
		}
		var unsent int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_pending`).Scan(&unsent); err != nil {
			return false
		}
		return unsent == 0
	})
}

// published counts the messages on an AFTERACTION subject.
func (e *env) published(subject string) uint64 {
	e.t.Helper()
	return bustest.SubjectCount(e.t, e.nats, bus.StreamAfteraction, subject)
}

func (e *env) lastEvent(subject string) (nats.Header, []byte) {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), bus.StreamAfteraction)
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		e.t.Fatal(err)
	}
	return m.Header, m.Data
}

func (e *env) do(method, path, token string, body []byte) (int, []byte) {
	e.t.Helper()
	resp, b := servicetest.Do(e.t, method, e.url+path, token, "", body)
	return resp.StatusCode, b
}

func (e *env) getJSON(path string, v any) int {
	e.t.Helper()
	status, body := e.do(http.MethodGet, path, readToken, nil)
	if status == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			e.t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return status
}

// incident returns the rich example, from source, with the given external id.
func incident(t *testing.T, source, externalID string) events.IncidentClosed {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS(), "events/examples/incident.closed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	var inc events.IncidentClosed
	if err := json.Unmarshal(b, &inc); err != nil {
		t.Fatal(err)
	}
	inc.Source, inc.ExternalID = source, externalID
	return inc
}

func (e *env) publish(inc events.IncidentClosed) {
	e.t.Helper()
	env, err := events.New(events.TypeIncidentClosed, "test/"+inc.Source, inc.ExternalID, inc)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.bus.Publish(context.Background(), events.SubjectIncidentClosedPrefix+inc.Source, env); err != nil {
		e.t.Fatal(err)
	}
}

type incidentView struct {
	ID        string                `json:"incident_id"`
	Revision  int                   `json:"revision"`
	Title     string                `json:"title"`
	Incident  events.IncidentClosed `json:"incident"`
	Revisions []struct {
		Revision int `json:"revision"`
	} `json:"revisions"`
}

type problem struct {
	Status   int    `json:"status"`
	Title    string `json:"title"`
	RejectID string `json:"reject_id"`
	Errors   []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

func TestRun(t *testing.T) {
	e := start(t, map[string]string{"WEBHOOK_PAGERDUTY_SECRET": webhookSecret})

	t.Run("registers an incident from NATS once however often it is sent", func(t *testing.T) {
		e := e.with(t)
		inc := incident(t, "pagerduty", "PD-1001")
		for range 3 {
			e.publish(inc)
		}
		e.settle()
		id := intake.IncidentID("pagerduty", "PD-1001")
		var got incidentView
		if status := e.getJSON("/v1/incidents/"+id, &got); status != http.StatusOK {
			t.Fatalf("GET incident: %d", status)
		}
		if got.ID != id || got.Revision != 1 || len(got.Revisions) != 1 || got.Incident.Source != "pagerduty" ||
			got.Incident.Title != inc.Title || len(got.Incident.Timeline) != len(inc.Timeline) {
			t.Fatalf("incident = %+v", got)
		}
		if n := e.published(events.SubjectIncidentRegistered); n != 1 {
			t.Fatalf("%d registered events, want 1", n)
		}
		h, data := e.lastEvent(events.SubjectIncidentRegistered)
		var ev events.IncidentRegistered
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatal(err)
		}
		if h.Get(bus.HeaderType) != events.TypeIncidentRegistered || ev.IncidentID != id || ev.Revision != 1 || ev.ExternalID != "PD-1001" {
			t.Fatalf("registered event: type %q, data %s", h.Get(bus.HeaderType), data)
		}
		var list struct {
			Incidents []incidentView `json:"incidents"`
		}
		if status := e.getJSON("/v1/incidents?source=pagerduty&external_id=PD-1001", &list); status != http.StatusOK ||
			len(list.Incidents) != 1 || list.Incidents[0].ID != id {
			t.Fatalf("lookup: %d %+v", status, list)
		}
		status, raw := e.do(http.MethodGet, "/v1/incidents/"+id+"/revisions/1/raw", readToken, nil)
		want, _ := json.Marshal(inc)
		if status != http.StatusOK || !bytes.Equal(raw, want) {
			t.Fatalf("raw revision: %d %.80s", status, raw)
		}
	})

	t.Run("changed content is a new revision", func(t *testing.T) {
		e := e.with(t)
		before := e.published(events.SubjectIncidentRegistered)
		inc := incident(t, "pagerduty", "PD-1001")
		inc.Severity = events.SeverityCritical
		e.publish(inc)
		e.settle()
		var got incidentView
		e.getJSON("/v1/incidents/"+intake.IncidentID("pagerduty", "PD-1001"), &got)
		if got.Revision != 2 || len(got.Revisions) != 2 || got.Incident.Severity != events.SeverityCritical {
			t.Fatalf("incident = %+v", got)
		}
		if n := e.published(events.SubjectIncidentRegistered); n != before+1 {
			t.Fatalf("%d new registered events, want 1", n-before)
		}
	})

	t.Run("invalid JSON is rejected and does not block the next incident", func(t *testing.T) {
		e := e.with(t)
		before := e.published(events.SubjectIncidentRegistered)
		if err := e.bus.PublishRaw(context.Background(), "incidents.closed.opsgenie", "", []byte(`{"source": "opsgenie", "title": `)); err != nil {
			t.Fatal(err)
		}
		good, _ := json.Marshal(incident(t, "opsgenie", "OG-7"))
		if err := e.bus.PublishRaw(context.Background(), "incidents.closed.opsgenie", "", good); err != nil {
			t.Fatal(err)
		}
		e.settle()
		var rejects struct {
			Rejects []struct {
				ID      string `json:"reject_id"`
				Subject string `json:"subject"`
				Reason  string `json:"reason"`
			} `json:"rejects"`
		}
		if status := e.getJSON("/v1/rejects?limit=10", &rejects); status != http.StatusOK || len(rejects.Rejects) != 1 {
			t.Fatalf("rejects: %d %+v", status, rejects)
		}
		r := rejects.Rejects[0]
		if r.Subject != "incidents.closed.opsgenie" || !strings.HasPrefix(r.Reason, "invalid JSON") {
			t.Fatalf("reject = %+v", r)
		}
		var full struct {
			Raw []byte `json:"raw"`
		}
		if status := e.getJSON("/v1/rejects/"+r.ID, &full); status != http.StatusOK || string(full.Raw) != `{"source": "opsgenie", "title": ` {
			t.Fatalf("reject %s: %d raw %q", r.ID, status, full.Raw)
		}
		if n := e.published(events.SubjectIncidentRejected); n != 1 {
			t.Fatalf("%d rejected events, want 1", n)
		}
		var got incidentView
		if status := e.getJSON("/v1/incidents/"+intake.IncidentID("opsgenie", "OG-7"), &got); status != http.StatusOK || got.Revision != 1 {
			t.Fatalf("valid incident after the reject: %d %+v", status, got)
		}
		if n := e.published(events.SubjectIncidentRegistered); n != before+1 {
			t.Fatalf("%d new registered events, want 1", n-before)
		}
	})

	t.Run("POST /v1/incidents accepts a valid incident", func(t *testing.T) {
		e := e.with(t)
		body, _ := json.Marshal(incident(t, "servicenow", "INC0012345"))
		status, resp := e.do(http.MethodPost, "/v1/incidents", submitToken, body)
		want := intake.IncidentID("servicenow", "INC0012345")
		var accepted map[string]string
		_ = json.Unmarshal(resp, &accepted)
		if status != http.StatusAccepted || accepted["incident_id"] != want || accepted["status"] != "accepted" {
			t.Fatalf("POST: %d %s", status, resp)
		}
		e.settle()
		var got incidentView
		if status := e.getJSON("/v1/incidents/"+want, &got); status != http.StatusOK || got.Revision != 1 {
			t.Fatalf("GET after POST: %d %+v", status, got)
		}
	})

	closedEarly := incident(t, "servicenow", "INC0012346")
	closedEarly.Timestamps.ClosedAt = closedEarly.Timestamps.DetectedAt.Add(-time.Hour)
	closedEarlyBody, _ := json.Marshal(closedEarly)
	noTitle := incident(t, "servicenow", "INC0012347")
	noTitle.Title = ""
	noTitleBody, _ := json.Marshal(noTitle)
	for _, tc := range []struct {
		name   string
		body   []byte
		status int
		field  string
	}{
		{"invalid JSON", []byte(`{"source": `), http.StatusBadRequest, ""},
		{"schema violation", bytes.Replace(noTitleBody, []byte(`"title":"",`), nil, 1), http.StatusUnprocessableEntity, "/title"},
		{"unknown severity", bytes.Replace(noTitleBody, []byte(`"severity":"high"`), []byte(`"severity":"apocalyptic"`), 1), http.StatusUnprocessableEntity, "/severity"},
		{"closed before detection", closedEarlyBody, http.StatusUnprocessableEntity, "/timestamps/closed_at"},
	} {
		t.Run("POST /v1/incidents refuses "+tc.name, func(t *testing.T) {
			e := e.with(t)
			status, resp := e.do(http.MethodPost, "/v1/incidents", submitToken, tc.body)
			var p problem
			if err := json.Unmarshal(resp, &p); err != nil {
				t.Fatalf("problem body: %v: %s", err, resp)
			}
			if status != tc.status || p.Status != tc.status || p.RejectID == "" || len(p.Errors) == 0 {
				t.Fatalf("POST: %d %s", status, resp)
			}
			named := false
			for _, fe := range p.Errors {
				named = named || fe.Field == tc.field
			}
			if !named {
				t.Fatalf("problem does not name %q: %s", tc.field, resp)
			}
			var full struct {
				Subject string `json:"subject"`
				Raw     []byte `json:"raw"`
			}
			if status := e.getJSON("/v1/rejects/"+p.RejectID, &full); status != http.StatusOK ||
				!bytes.Equal(full.Raw, tc.body) || full.Subject != "POST /v1/incidents" {
				t.Fatalf("reject %s: %d %+v", p.RejectID, status, full)
			}
		})
	}

	t.Run("POST /v1/incidents refuses bodies over 1 MiB", func(t *testing.T) {
		e := e.with(t)
		status, _ := e.do(http.MethodPost, "/v1/incidents", submitToken, bytes.Repeat([]byte(" "), 1<<20+1))
		if status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", status)
		}
	})

	t.Run("tokens and roles are enforced", func(t *testing.T) {
		e := e.with(t)
		for _, tc := range []struct {
			method, path, token string
			want                int
		}{
			{http.MethodGet, "/v1/rejects", "", http.StatusUnauthorized},
			{http.MethodGet, "/v1/rejects", "wrong-token-123", http.StatusUnauthorized},
			{http.MethodGet, "/v1/rejects", submitToken, http.StatusForbidden},
			{http.MethodPost, "/v1/incidents", readToken, http.StatusForbidden},
			{http.MethodPost, "/v1/incidents", "", http.StatusUnauthorized},
			{http.MethodGet, "/v1/incidents/" + intake.IncidentID("x", "y"), readToken, http.StatusNotFound},
			{http.MethodGet, "/healthz", "", http.StatusOK},
		} {
			if status, body := e.do(tc.method, tc.path, tc.token, []byte("{}")); status != tc.want {
				t.Errorf("%s %s with %q: %d, want %d: %s", tc.method, tc.path, tc.token, status, tc.want, body)
			}
		}
	})

	t.Run("metrics count outcomes", func(t *testing.T) {
		e := e.with(t)
		status, body := e.do(http.MethodGet, "/metrics", "", nil)
		for _, want := range []string{
			`afteraction_intake_incidents_total{outcome="registered"} 3`,
			`afteraction_intake_incidents_total{outcome="revised"} 1`,
			`afteraction_intake_incidents_total{outcome="ignored"} 2`,
			`afteraction_messages_total{consumer="intake-incidents-closed",outcome="ack"}`,
		} {
			if status != http.StatusOK || !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func (e *env) webhook(source, file, signature string) (int, map[string]any, []byte) {
	e.t.Helper()
	body, err := os.ReadFile(filepath.Join("webhook", "testdata", source, file))
	if err != nil {
		e.t.Fatal(err)
	}
	if signature == "" {
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write(body)
		signature = "v1=" + hex.EncodeToString(mac.Sum(nil))
	}
	status, out := e.sendWebhook(source, body, http.Header{"X-Pagerduty-Signature": {signature}})
	return status, out, body
}

func TestRunWebhooks(t *testing.T) {
	e := start(t, map[string]string{"WEBHOOK_PAGERDUTY_SECRET": webhookSecret})

	t.Run("a signed closing event is registered", func(t *testing.T) {
		e := e.with(t)
		status, out, _ := e.webhook("pagerduty", "incident_resolved.json", "")
		id, _ := out["incident_id"].(string)
		if status != http.StatusAccepted || out["status"] != "accepted" || id == "" {
			t.Fatalf("webhook: %d %v", status, out)
		}
		e.settle()
		var got incidentView
		if status := e.getJSON("/v1/incidents/"+id, &got); status != http.StatusOK || got.Incident.Source != "pagerduty" ||
			intake.IncidentID("pagerduty", got.Incident.ExternalID) != id {
			t.Fatalf("GET %s: %d %+v", id, status, got)
		}
	})

	t.Run("an event that closes nothing is ignored", func(t *testing.T) {
		e := e.with(t)
		status, out, _ := e.webhook("pagerduty", "incident_acknowledged.json", "")
		if status != http.StatusAccepted || out["status"] != "ignored" || out["reason"] == "" {
			t.Fatalf("webhook: %d %v", status, out)
		}
	})

	t.Run("a wrong signature is refused and kept as a digest, without the signature", func(t *testing.T) {
		e := e.with(t)
		status, out, body := e.webhook("pagerduty", "incident_resolved.json", "v1=0000")
		rejectID, _ := out["reject_id"].(string)
		if status != http.StatusUnauthorized || rejectID == "" {
			t.Fatalf("webhook: %d %v", status, out)
		}
		var full struct {
			Subject       string              `json:"subject"`
			Raw           []byte              `json:"raw"`
			RawTruncated  bool                `json:"raw_truncated"`
			PayloadSize   int                 `json:"payload_size"`
			PayloadSHA256 string              `json:"payload_sha256"`
			Headers       map[string][]string `json:"headers"`
		}
		sum := sha256.Sum256(body)
		if status := e.getJSON("/v1/rejects/"+rejectID, &full); status != http.StatusOK ||
			full.Subject != "POST /v1/webhooks/pagerduty" || !full.RawTruncated || !bytes.Equal(full.Raw, body[:256]) ||
			full.PayloadSize != len(body) || full.PayloadSHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("reject: %d %+v, want the first 256 of %d bytes and the digest of all", status, full, len(body))
		}
		if got := full.Headers["X-Pagerduty-Signature"]; len(got) != 1 || got[0] != "[redacted]" {
			t.Fatalf("signature header kept as %q; headers %v", got, full.Headers)
		}
		if got := full.Headers["Content-Type"]; len(got) != 1 || got[0] != "application/json" {
			t.Fatalf("other headers not kept: %v", full.Headers)
		}
	})
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		wantErr string
	}{
		{"tokens", map[string]string{"API_TOKENS": "admin:0123456789"}, ""},
		{"auth disabled", map[string]string{"AUTH_DISABLED": "true"}, ""},
		{"no tokens", map[string]string{}, "API_TOKENS is empty"},
		{"both", map[string]string{"AUTH_DISABLED": "true", "API_TOKENS": "admin:0123456789"}, "both set"},
		{"unknown role", map[string]string{"API_TOKENS": "root:0123456789"}, "unknown role"},
		{"batch size", map[string]string{"AUTH_DISABLED": "true", "INTAKE_BATCH_SIZE": "0"}, "INTAKE_BATCH_SIZE"},
		{"inbox retention under the stream's age", map[string]string{"AUTH_DISABLED": "true", "INBOX_RETENTION": "240h"}, "INBOX_RETENTION=240h0m0s: want at least 720h"},
		{"rejects retention negative", map[string]string{"AUTH_DISABLED": "true", "REJECTS_RETENTION": "-1h"}, "REJECTS_RETENTION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := intake.LoadConfig(func(k string) string { return tc.vars[k] })
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			case err == nil && (cfg.BatchSize != 500 || cfg.HTTPAddr != ":8081"):
				t.Fatalf("defaults not applied: %+v", cfg)
			case err == nil && (cfg.IntakeRetention.Rejects != 90*24*time.Hour || cfg.IntakeRetention.Inbox != 120*24*time.Hour ||
				cfg.IntakeRetention.Batch != 10000):
				t.Fatalf("retention defaults not applied: %+v", cfg.IntakeRetention)
			}
		})
	}
}

// TestRunPurgesOnEvidenceExpired: the report service's expiry reaches intake
// over NATS and the incident's raw payload is gone, with an audit line.
func TestRunPurgesOnEvidenceExpired(t *testing.T) {
	e := start(t, nil)
	inc := incident(t, "jira", "SEC-RET-1")
	e.publish(inc)
	e.settle()
	id := intake.IncidentID("jira", "SEC-RET-1")
	raw := "/v1/incidents/" + id + "/revisions/1/raw"
	if status, _ := e.do(http.MethodGet, raw, readToken, nil); status != http.StatusOK {
		t.Fatalf("raw payload before expiry: %d", status)
	}
	expired := events.EvidenceExpired{IncidentID: id, IncidentRevision: 1, Severity: inc.Severity, ClosedAt: inc.Timestamps.ClosedAt,
		Rule: "default=30d", RetainUntil: inc.Timestamps.ClosedAt.AddDate(0, 0, 30), ExpiredAt: time.Now().UTC()}
	if _, err := e.bus.PublishEvent(context.Background(), events.TypeEvidenceExpired, id, expired); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "raw payload purged", func() bool {
		status, _ := e.do(http.MethodGet, raw, readToken, nil)
		return status == http.StatusGone
	})
	var lines int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM purges WHERE incident_id = $1 AND rule = 'default=30d'`, id).Scan(&lines); err != nil || lines != 1 {
		t.Errorf("purge audit lines = %d (%v), want 1", lines, err)
	}
}
