package intake_test

import (
	"bytes"
	"net/http"
	"testing"
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
