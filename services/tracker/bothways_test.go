package tracker

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/tracker/bridge"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// TestEveryBridgeBothWays delivers an action through each vendor's bridge to
// a server answering as the vendor documents, then feeds the vendor's
// documented webhook for that issue (found by its key, no marker) back in
// and checks the action's status.
func TestEveryBridgeBothWays(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		createPath string
		created    string // the vendor's create answer
		externalID string
		build      func(url string) bridge.Bridge
		fixture    string
		// inbound rewrites the fixture for the issue and returns the headers.
		inbound func(p map[string]any, at time.Time) http.Header
		want    events.Status
	}{
		{
			name: "jira", createPath: "/rest/api/3/issue", externalID: "SEC-7",
			created: `{"id":"10007","key":"SEC-7","self":"https://x.atlassian.net/rest/api/3/issue/10007"}`,
			build: func(u string) bridge.Bridge {
				return bridge.NewJira(bridge.JiraConfig{Name: "jira", BaseURL: u, Cloud: true, Email: "e", Token: "t", Project: "SEC",
					WebhookSecret: []byte(hookSecret)})
			},
			fixture: "jira_issue_updated.json",
			inbound: func(p map[string]any, at time.Time) http.Header {
				issue := p["issue"].(map[string]any)
				issue["key"] = "SEC-7"
				fields := issue["fields"].(map[string]any)
				fields["labels"] = []any{}
				fields["updated"] = at.UTC().Format("2006-01-02T15:04:05.000-0700")
				return nil // signed below
			},
			want: events.StatusDone,
		},
		{
			name: "gitlab", createPath: "/projects/42/issues", externalID: "14",
			created: `{"id":84,"iid":14,"project_id":42,"state":"opened","web_url":"https://gitlab.example.com/g/p/-/issues/14"}`,
			build: func(u string) bridge.Bridge {
				return bridge.NewGitLab(bridge.GitLabConfig{Name: "gitlab", APIURL: u, Project: "42", Token: "t", WebhookToken: "hook"})
			},
			fixture: "gitlab_issue_close.json",
			inbound: func(p map[string]any, at time.Time) http.Header {
				attrs := p["object_attributes"].(map[string]any)
				attrs["iid"] = 14
				attrs["updated_at"] = at.UTC().Format(time.RFC3339)
				p["labels"] = []any{}
				return http.Header{"X-Gitlab-Event": {"Issue Hook"}, "X-Gitlab-Token": {"hook"}, "X-Gitlab-Event-Uuid": {"u-1"}}
			},
			want: events.StatusDone,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			creates := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				mu.Lock()
				defer mu.Unlock()
				if r.Method == http.MethodPost && r.URL.Path == c.createPath {
					creates++
					w.WriteHeader(http.StatusCreated)
					io.WriteString(w, c.created)
					return
				}
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"message":"404 Not Found","errorMessages":["not found"]}`)
			}))
			defer srv.Close()
			f := newFixture(t)
			f.svc.SetBridges(NewBridges(Routes{Default: c.name}, 0, c.build(srv.URL)))
			rc := exampleReview(t)
			f.create(rc, "ev-1")
			id := ActionID(rc.ReviewID, rc.ActionItems[0].Key)
			b, _ := f.svc.bridges.Get(c.name)
			d := &deliverer{svc: f.svc, b: b, opts: DeliveryOptions{}.withDefaults()}
			if _, err := d.once(context.Background()); err != nil {
				t.Fatal(err)
			}
			dl := f.delivery(id)
			if dl.ExternalID != c.externalID || dl.State != store.DeliveryDelivered || creates != 1 {
				t.Fatalf("delivery %+v after %d creates", dl, creates)
			}

			raw, err := os.ReadFile("bridge/testdata/" + c.fixture)
			if err != nil {
				t.Fatal(err)
			}
			var p map[string]any
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatal(err)
			}
			h := c.inbound(p, f.clock.Now().Add(-time.Minute))
			body, _ := json.Marshal(p)
			if h == nil {
				mac := hmac.New(sha256.New, []byte(hookSecret))
				mac.Write(body)
				h = http.Header{"X-Hub-Signature": {"sha256=" + hex.EncodeToString(mac.Sum(nil))}}
			}
			res, err := f.svc.ReceiveWebhook(context.Background(), c.name, h, body)
			if err != nil || res.ActionID != id || res.Outcome != store.OutcomeChanged {
				t.Fatalf("webhook: %+v %v", res, err)
			}
			if a, _ := f.action(id); a.Status != c.want || !strings.EqualFold(a.Tracker, c.name) {
				t.Errorf("action after the webhook: %s via %s", a.Status, a.Tracker)
			}
		})
	}
}
