package intake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/services/intake"
	"github.com/afteraction/afteraction/services/intake/webhook"
)

// The ticketing system's own request body is what a webhook-registered
// revision serves as its raw payload, so a report can cite it and a
// re-mapping can be replayed.
func TestRunWebhookKeepsTheVendorPayload(t *testing.T) {
	e := start(t, map[string]string{"WEBHOOK_PAGERDUTY_SECRET": webhookSecret})
	status, out, sent := e.webhook("pagerduty", "incident_resolved.json", "")
	id, _ := out["incident_id"].(string)
	if status != http.StatusAccepted || id == "" {
		t.Fatalf("webhook: %d %v", status, out)
	}
	e.settle()
	code, raw := e.do(http.MethodGet, "/v1/incidents/"+id+"/revisions/1/raw", readToken, nil)
	if code != http.StatusOK {
		t.Fatalf("GET raw: %d %s", code, raw)
	}
	if !bytes.Equal(raw, sent) {
		t.Errorf("raw payload of revision 1 is not the webhook body as sent:\n got %.200s\nwant %.200s", raw, sent)
	}
}

// A source without a signing secret is refused unless it is listed as one
// that may deliver unsigned: otherwise anyone who reaches intake could inject
// incidents.
func TestRunUnsignedWebhooksNeedConsent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		unsigned string
		want     int
	}{
		{"refused without a secret", "", http.StatusUnauthorized},
		{"accepted when listed", "pagerduty", http.StatusAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := start(t, map[string]string{"WEBHOOK_UNSIGNED_SOURCES": tc.unsigned})
			status, out, _ := e.webhook("pagerduty", "incident_resolved.json", "v1=unused")
			if status != tc.want {
				t.Fatalf("webhook: %d %v, want %d", status, out, tc.want)
			}
			if tc.want == http.StatusUnauthorized && out["reject_id"] == nil {
				t.Errorf("refused delivery not kept in rejects: %v", out)
			}
		})
	}
}

// postWebhook sends body to POST /v1/webhooks/{source} unsigned, with the
// header GitHub sends (the other sources ignore it).
func (e *env) postWebhook(source string, body []byte) (int, map[string]any) {
	e.t.Helper()
	return e.sendWebhook(source, body, http.Header{"X-Github-Event": {"issues"}})
}

// sendWebhook posts body with the headers h (and a JSON content type) to
// POST /v1/webhooks/{source} and decodes the answer.
func (e *env) sendWebhook(source string, body []byte, h http.Header) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/v1/webhooks/"+source, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header = h.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		e.t.Fatalf("webhook %s: %v", source, err)
	}
	return resp.StatusCode, out
}

// setPath decodes the fixture of source (numbers kept exact), sets the value
// at path and re-encodes it.
func setPath(t *testing.T, source, file string, value any, path ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("webhook", "testdata", source, file))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var root map[string]any
	if err := dec.Decode(&root); err != nil {
		t.Fatal(err)
	}
	m := root
	for _, k := range path[:len(path)-1] {
		m = m[k].(map[string]any)
	}
	if _, ok := m[path[len(path)-1]]; !ok {
		t.Fatalf("%s/%s has no %v", source, file, path)
	}
	m[path[len(path)-1]] = value
	out, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every adapter's mapping is checked for chronology: a ticket whose start,
// detection or report lies after its closure is refused with a 422 naming
// the field and kept in rejects, never registered.
func TestRunWebhookClosedBeforeOpened(t *testing.T) {
	e := start(t, map[string]string{"WEBHOOK_UNSIGNED_SOURCES": strings.Join(webhook.Sources(), ",")})
	// A day after every fixture's closure, and before now.
	later := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		source, file string
		value        any
		path         []string
	}{
		{"pagerduty", "incident_resolved.json", later.Format(time.RFC3339), []string{"event", "data", "created_at"}},
		{"jira", "issue_resolved_cloud.json", later.Format("2006-01-02T15:04:05.000-0700"), []string{"issue", "fields", "created"}},
		{"servicenow", "incident_resolved_table_api.json", later.Format(time.DateTime), []string{"result", "opened_at"}},
		{"opsgenie", "close.json", json.Number(fmt.Sprint(later.UnixMilli())), []string{"alert", "createdAt"}},
		{"github", "issues_closed.json", later.Format(time.RFC3339), []string{"issue", "created_at"}},
		{"statuspage", "incident_resolved.json", later.Format(time.RFC3339), []string{"incident", "started_at"}},
		{"thehive", "case_closed_v5.json", json.Number(fmt.Sprint(later.UnixMilli())), []string{"object", "startDate"}},
		{"thehive", "case_resolved_v4.json", json.Number(fmt.Sprint(later.UnixMilli())), []string{"object", "startDate"}},
		{"canonical", "incident_closed.json", later.Format(time.RFC3339), []string{"timestamps", "started_at"}},
	} {
		t.Run(tc.source+"/"+tc.file, func(t *testing.T) {
			e := e.with(t)
			status, out := e.postWebhook(tc.source, setPath(t, tc.source, tc.file, tc.value, tc.path...))
			if status != http.StatusUnprocessableEntity || !strings.HasPrefix(fmt.Sprint(out["title"]), intake.ReasonClosedEarly) {
				t.Fatalf("webhook: %d %v, want 422 %q", status, out, intake.ReasonClosedEarly)
			}
			id, _ := out["reject_id"].(string)
			var rej struct {
				Reason string `json:"reason"`
			}
			if code := e.getJSON("/v1/rejects/"+id, &rej); code != http.StatusOK || !strings.HasPrefix(rej.Reason, intake.ReasonClosedEarly) {
				t.Fatalf("reject %q: %d %+v", id, code, rej)
			}
		})
	}
}

// Requests that fail authentication are kept as bounded digests and only so
// many per client address and per source; beyond, 429 with Retry-After and
// nothing kept. An authenticated request is never limited, and its failures
// are kept whole.
func TestRunUnauthenticatedWebhooksAreBounded(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 64<<10)
	rejects := func(e *env) int {
		e.t.Helper()
		var n int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM rejects`).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		return n
	}
	send := func(e *env, source string) *http.Response {
		e.t.Helper()
		resp, _ := servicetest.Do(e.t, http.MethodPost, e.url+"/v1/webhooks/"+source, "", "application/json", big)
		return resp
	}

	// untilLimited sends unauthenticated requests (cycling through sources)
	// until one is answered 429, and returns how many were answered 401/404
	// before it. Tokens refill over the minute: on a slow machine a few more
	// may pass than the budget, never fewer.
	untilLimited := func(e *env, sources ...string) (int, *http.Response) {
		e.t.Helper()
		for i := range 20 {
			resp := send(e, sources[i%len(sources)])
			switch resp.StatusCode {
			case http.StatusTooManyRequests:
				return i, resp
			case http.StatusUnauthorized, http.StatusNotFound:
			default:
				e.t.Fatalf("request %d: %d, want 401, 404 or 429", i, resp.StatusCode)
			}
		}
		e.t.Fatal("no 429 after 20 unauthenticated requests")
		return 0, nil
	}

	t.Run("per client address", func(t *testing.T) {
		e := start(t, map[string]string{"WEBHOOK_PAGERDUTY_SECRET": webhookSecret, "WEBHOOK_UNAUTHENTICATED_PER_MINUTE": "3"}).with(t)
		kept, resp := untilLimited(e, "pagerduty", "no-such-system", "jira")
		if kept < 3 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("429 after %d requests, Retry-After %q: want at least 3 kept and a Retry-After", kept, resp.Header.Get("Retry-After"))
		}
		if n := rejects(e); n != kept {
			t.Fatalf("%d rejects, want the %d answered 401/404", n, kept)
		}
		var size, stored int
		if err := e.pool.QueryRow(context.Background(), `SELECT max(payload_size), max(octet_length(raw)) FROM rejects`).Scan(&size, &stored); err != nil {
			t.Fatal(err)
		}
		if size != len(big) || stored > 256 {
			t.Fatalf("kept %d of %d bytes, want a digest of at most 256", stored, size)
		}
		// A signed request from the same address still goes through.
		if status, out, _ := e.webhook("pagerduty", "incident_resolved.json", ""); status != http.StatusAccepted {
			t.Fatalf("signed webhook after the limit: %d %v", status, out)
		}
		status, body := e.do(http.MethodGet, "/metrics", "", nil)
		if status != http.StatusOK || !strings.Contains(string(body), `afteraction_intake_webhook_unauthenticated_total{outcome="address_limited"} 1`) {
			t.Fatalf("metrics: %d, want one address_limited", status)
		}
	})

	t.Run("per source", func(t *testing.T) {
		e := start(t, map[string]string{"WEBHOOK_PAGERDUTY_SECRET": webhookSecret, "WEBHOOK_UNAUTHENTICATED_PER_SOURCE_PER_MINUTE": "2"}).with(t)
		kept, _ := untilLimited(e, "pagerduty")
		if kept < 2 {
			t.Fatalf("429 after %d bad signatures for pagerduty, want at least 2 kept", kept)
		}
		// Unknown sources have a budget of their own.
		if resp := send(e, "no-such-system"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("unknown source: %d, want 404", resp.StatusCode)
		}
		if n := rejects(e); n != kept+1 {
			t.Fatalf("%d rejects, want %d", n, kept+1)
		}
	})

	t.Run("an authenticated failure is kept whole", func(t *testing.T) {
		e := start(t, map[string]string{"WEBHOOK_UNSIGNED_SOURCES": "canonical"}).with(t)
		body := []byte(`{"source":"x","external_id":"1","title":"` + strings.Repeat("y", 1000) + `"}`)
		status, out := e.postWebhook("canonical", body)
		id, _ := out["reject_id"].(string)
		if status != http.StatusUnprocessableEntity || id == "" {
			t.Fatalf("webhook: %d %v", status, out)
		}
		var rej struct {
			Raw          []byte `json:"raw"`
			RawTruncated bool   `json:"raw_truncated"`
		}
		if code := e.getJSON("/v1/rejects/"+id, &rej); code != http.StatusOK || !bytes.Equal(rej.Raw, body) || rej.RawTruncated {
			t.Fatalf("reject: %d truncated=%v, %d of %d bytes kept", code, rej.RawTruncated, len(rej.Raw), len(body))
		}
	})
}
