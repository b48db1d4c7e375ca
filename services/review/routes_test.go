package review

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/pkg/servicetest"
)

// Bearer tokens of the roles the HTTP tests call with.
const (
	adminToken       = "admin-token-0123"
	facilitatorToken = "facilitator-token-0123"
	complianceToken  = "compliance-token-0123"
)

// serve serves the fixture's service over HTTP and returns its base URL.
func (f *fixture) serve() string {
	f.t.Helper()
	tokens := httpapi.Tokens{adminToken: "admin", facilitatorToken: roleFacilitator, complianceToken: roleCompliance}
	h := Routes(f.svc, tokens, ConsoleConfig{}, prometheus.NewRegistry(), nil, zaptest.NewLogger(f.t, zaptest.Level(zap.WarnLevel)))
	srv := httptest.NewServer(h)
	f.t.Cleanup(srv.Close)
	return srv.URL
}

// call sends body (JSON unless contentType says otherwise) with token and
// returns the status and the response body.
func call(t *testing.T, method, u, token, contentType, body string) (int, string) {
	t.Helper()
	if contentType == "" {
		contentType = "application/json"
	}
	resp, b := servicetest.Do(t, method, u, token, contentType, []byte(body))
	return resp.StatusCode, string(b)
}

func TestInvitationsOnlyForFacilitatorAndAdmin(t *testing.T) {
	t.Parallel()
	f := setup(t)
	base := f.serve()
	r := f.open(registered(t))
	if len(r.Participants) == 0 {
		t.Fatal("no participants")
	}
	list := base + "/v1/reviews?incident_id=" + r.IncidentID
	one := base + "/v1/reviews/" + r.ReviewID
	for _, c := range []struct {
		role, token string
		sees        bool
	}{
		{"facilitator", facilitatorToken, true},
		{"admin", adminToken, true},
		{"compliance", complianceToken, false},
	} {
		for _, u := range []string{list, one} {
			code, body := call(t, "GET", u, c.token, "", "")
			if code != http.StatusOK || !strings.Contains(body, r.Participants[0].ParticipantID) {
				t.Fatalf("%s GET %s: %d, want 200 with the participants:\n%.300s", c.role, u, code, body)
			}
			for _, p := range r.Participants {
				if got := strings.Contains(body, p.InvitationToken); got != c.sees {
					t.Errorf("%s GET %s: shows %s's invitation token: %v, want %v", c.role, u, p.Name, got, c.sees)
				}
			}
			for _, key := range []string{`"invitation_token"`, `"form_url"`, "?token="} {
				if got := strings.Contains(body, key); got != c.sees {
					t.Errorf("%s GET %s: body has %s: %v, want %v", c.role, u, key, got, c.sees)
				}
			}
		}
	}
}

func TestNULInInputIsRejectedNamingTheField(t *testing.T) {
	t.Parallel()
	f := setup(t)
	base := f.serve()
	open := f.open(registered(t))
	done := f.open(registered(t))
	if _, err := f.svc.Complete(context.Background(), done.ReviewID, CompleteRequest{}); err != nil {
		t.Fatal(err)
	}
	answers := base + "/v1/reviews/" + open.ReviewID + "/responses/" + open.Participants[0].ParticipantID
	cases := []struct {
		name, method, url, body, field string
	}{
		{"answer text", "PUT", answers,
			`{"answers":[{"question_id":"what_happened.account","text":"we saw\u0000it"}]}`, "answers[0].text"},
		{"answer item", "PUT", answers,
			`{"answers":[{"question_id":"training.needs","items":["drills","a\u0000b"]}]}`, "answers[0].items[1]"},
		{"completion summary", "POST", base + "/v1/reviews/" + open.ReviewID + "/complete",
			`{"summary":"MFA\u0000fatigue"}`, "summary"},
		{"completion finding", "POST", base + "/v1/reviews/" + open.ReviewID + "/complete",
			`{"findings":[{"summary":"ok","detail":"\u0000"}]}`, "findings[0].detail"},
		{"completion facilitator", "POST", base + "/v1/reviews/" + open.ReviewID + "/complete",
			`{"facilitator":{"name":"Kemal\u0000"}}`, "facilitator.name"},
		{"completion action item", "POST", base + "/v1/reviews/" + open.ReviewID + "/complete",
			`{"action_items":[{"key":"a","title":"t\u0000","category":"tooling"}]}`, "action_items[0].title"},
		{"amendment reason", "POST", base + "/v1/reviews/" + done.ReviewID + "/amendments",
			`{"reason":"typo\u0000","summary":"x"}`, "reason"},
		{"amendment summary", "POST", base + "/v1/reviews/" + done.ReviewID + "/amendments",
			`{"reason":"typo","summary":"x\u0000"}`, "summary"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := call(t, c.method, c.url, facilitatorToken, "", c.body)
			var problem struct {
				Errors []httpapi.FieldError `json:"errors"`
			}
			if err := json.Unmarshal([]byte(body), &problem); err != nil {
				t.Fatalf("%d %s: %v", code, body, err)
			}
			if code != http.StatusUnprocessableEntity || len(problem.Errors) != 1 || problem.Errors[0].Field != c.field {
				t.Errorf("%d %+v, want 422 naming %s", code, problem.Errors, c.field)
			}
		})
	}

	t.Run("form", func(t *testing.T) {
		form := url.Values{"what_happened.account": {"we saw\x00it"}, "readiness_structure.readiness": {"3"}}
		formURL := base + "/review/" + open.ReviewID + "?token=" + url.QueryEscape(open.Participants[1].InvitationToken)
		code, page := call(t, "POST", formURL, "", "application/x-www-form-urlencoded", form.Encode())
		if code != http.StatusUnprocessableEntity || !strings.Contains(page, "NUL") {
			t.Errorf("form post with NUL: %d, want 422 saying what is wrong:\n%.500s", code, page)
		}
	})

	if subs, err := f.svc.Submissions(context.Background(), open.ReviewID); err != nil || len(subs) != 0 {
		t.Errorf("submissions stored: %d, %v; want none", len(subs), err)
	}
	if got := f.only(open.IncidentID); got.Status != "open" {
		t.Errorf("review status = %s, want open", got.Status)
	}
}
