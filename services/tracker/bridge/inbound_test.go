package bridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

const markedAction = "7d7bd1f6-1c53-5b7e-9a6f-2d1f9d3c8e01"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hubSignature(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestGitHubInbound(t *testing.T) {
	t.Parallel()
	secret := []byte("It's a Secret to Everybody")
	g := NewGitHub(GitHubConfig{Name: "gh", APIURL: "https://api.github.com", Repo: "o/r", Token: "t", WebhookSecret: secret})
	cases := []struct {
		file, event string
		want        events.Status
		ignored     bool
		updated     string
	}{
		{"github_issues_closed.json", "issues", events.StatusDone, false, "2019-05-15T15:20:21Z"},
		{"github_issues_closed_not_planned.json", "issues", events.StatusWontDo, false, "2019-05-15T15:20:30Z"},
		{"github_issues_reopened.json", "issues", events.StatusInProgress, false, "2019-05-15T15:21:00Z"},
		{"github_issues_labeled.json", "issues", "", true, ""},
		{"github_issues_closed.json", "ping", "", true, ""},
	}
	for _, c := range cases {
		body := fixture(t, c.file)
		h := http.Header{}
		h.Set("X-GitHub-Event", c.event)
		h.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
		h.Set("X-Hub-Signature-256", hubSignature(secret, body))
		in, err := g.Inbound(h, body, time.Now())
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if c.ignored {
			if in.Ignored == "" {
				t.Errorf("%s %s: not ignored: %+v", c.event, c.file, in)
			}
			continue
		}
		if in.Status != c.want || in.ActionID != markedAction || in.ExternalID != "1" || in.ChangedBy != "Codertocat" ||
			in.UpdatedAt.Format(time.RFC3339) != c.updated || in.DeliveryID != "github:72d3162e-cc78-11e3-81ab-4c9367dc0958" {
			t.Errorf("%s: %+v", c.file, in)
		}
	}
	unconfigured := NewGitHub(GitHubConfig{Name: "gh", APIURL: "https://api.github.com", Repo: "o/r", Token: "t"})
	closed := fixture(t, "github_issues_closed.json")
	if _, err := unconfigured.Inbound(http.Header{"X-Hub-Signature-256": {hubSignature(nil, closed)}, "X-Github-Event": {"issues"},
		"X-Github-Delivery": {"d"}}, closed, time.Now()); !errors.Is(err, ErrSignature) {
		t.Errorf("no secret configured: %v, want every webhook refused", err)
	}
	// GitHub's documented test vector: secret "It's a Secret to Everybody", body "Hello, World!".
	if err := VerifyGitHub(secret, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", []byte("Hello, World!")); err != nil {
		t.Errorf("documented test vector: %v", err)
	}
	body := fixture(t, "github_issues_closed.json")
	for name, sig := range map[string]string{
		"missing":    "",
		"sha1":       "sha1=" + hubSignature(secret, body)[7:],
		"wrong":      hubSignature([]byte("other"), body),
		"truncated":  hubSignature(secret, body)[:20],
		"other body": hubSignature(secret, append([]byte(" "), body...)),
	} {
		h := http.Header{}
		h.Set("X-GitHub-Event", "issues")
		h.Set("X-GitHub-Delivery", "d")
		h.Set("X-Hub-Signature-256", sig)
		if _, err := g.Inbound(h, body, time.Now()); !errors.Is(err, ErrSignature) {
			t.Errorf("%s signature: %v, want ErrSignature", name, err)
		}
	}
}

func TestJiraInbound(t *testing.T) {
	t.Parallel()
	secret := []byte("jira-secret")
	j := NewJira(JiraConfig{Name: "jira", BaseURL: "https://x.atlassian.net", Cloud: true, Token: "t", Project: "SEC",
		WebhookSecret: secret, StatusNames: map[string]events.Status{"won't fix": events.StatusWontDo}})
	sign := func(body []byte) http.Header {
		h := http.Header{}
		h.Set("X-Hub-Signature", hubSignature(secret, body))
		return h
	}
	body := fixture(t, "jira_issue_updated.json")
	in, err := j.Inbound(sign(body), body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantTime := time.Date(2018, 9, 4, 17, 52, 39, 129e6, time.UTC)
	if in.Status != events.StatusDone || in.ExternalID != "SEC-24" || in.ActionID != markedAction ||
		!in.UpdatedAt.Equal(wantTime) || in.ChangedBy != "Mia Krystof" || in.DeliveryID != "jira:10002:10120:1536083559131" {
		t.Errorf("done: %+v", in)
	}
	body = fixture(t, "jira_issue_updated_indeterminate.json")
	if in, err := j.Inbound(sign(body), body, time.Now()); err != nil || in.Status != events.StatusInProgress {
		t.Errorf("indeterminate: %+v %v", in, err)
	}
	body = fixture(t, "jira_issue_updated_summary.json")
	if in, err := j.Inbound(sign(body), body, time.Now()); err != nil || in.Ignored == "" {
		t.Errorf("summary edit not ignored: %+v %v", in, err)
	}
	// A configured status name wins over the category.
	named := []byte(`{"timestamp":1,"webhookEvent":"jira:issue_updated","issue":{"id":"1","key":"SEC-1","fields":{"updated":"2026-05-01T10:00:00.000+0000","status":{"name":"Won't Fix","statusCategory":{"key":"done"}}}},"changelog":{"id":"2","items":[{"field":"status"}]}}`)
	if in, err := j.Inbound(sign(named), named, time.Now()); err != nil || in.Status != events.StatusWontDo {
		t.Errorf("status name map: %+v %v", in, err)
	}
	if _, err := j.Inbound(http.Header{}, body, time.Now()); !errors.Is(err, ErrSignature) {
		t.Errorf("unsigned: %v", err)
	}
	unconfigured := NewJira(JiraConfig{Name: "jira", BaseURL: "https://x", Token: "t", Project: "SEC"})
	if _, err := unconfigured.Inbound(http.Header{"X-Hub-Signature": {hubSignature(nil, body)}}, body, time.Now()); !errors.Is(err, ErrSignature) {
		t.Errorf("no secret configured: %v, want every webhook refused", err)
	}
	bad := []byte(`{"webhookEvent":"jira:issue_updated","issue":{"key":"SEC-1","fields":{"status":{"name":"X","statusCategory":{"key":"weird"}}}},"changelog":{"items":[{"field":"status"}]}}`)
	if _, err := j.Inbound(sign(bad), bad, time.Now()); !errors.Is(err, ErrPayload) {
		t.Errorf("unknown category: %v", err)
	}
}

func TestGitLabInbound(t *testing.T) {
	t.Parallel()
	g := NewGitLab(GitLabConfig{Name: "gl", APIURL: "https://gitlab.com/api/v4", Project: "1", Token: "t", WebhookToken: "hook-token"})
	h := http.Header{}
	h.Set("X-Gitlab-Event", "Issue Hook")
	h.Set("X-Gitlab-Token", "hook-token")
	h.Set("X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e")
	in, err := g.Inbound(h, fixture(t, "gitlab_issue_close.json"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if in.Status != events.StatusDone || in.ExternalID != "23" || in.ActionID != markedAction || in.ChangedBy != "root" ||
		!in.UpdatedAt.Equal(time.Date(2013, 12, 3, 17, 15, 43, 0, time.UTC)) {
		t.Errorf("close: %+v", in)
	}
	in, err = g.Inbound(h, fixture(t, "gitlab_issue_reopen.json"), time.Now())
	if err != nil || in.Status != events.StatusInProgress || !in.UpdatedAt.Equal(time.Date(2013, 12, 3, 17, 20, 0, 0, time.UTC)) {
		t.Errorf("reopen (older time layout): %+v %v", in, err)
	}
	if in, err := g.Inbound(h, fixture(t, "gitlab_issue_update.json"), time.Now()); err != nil || in.Ignored == "" {
		t.Errorf("update not ignored: %+v %v", in, err)
	}
	h.Set("X-Gitlab-Token", "wrong")
	if _, err := g.Inbound(h, fixture(t, "gitlab_issue_close.json"), time.Now()); !errors.Is(err, ErrSignature) {
		t.Errorf("wrong token: %v", err)
	}
}

func TestWebhookSignature(t *testing.T) {
	t.Parallel()
	secret := []byte("s3cret")
	w := NewWebhook(WebhookConfig{Name: "hook", URL: "http://127.0.0.1:1/", Secret: secret})
	now := time.Unix(1777777777, 0)
	body := []byte(`{"action_id":"` + markedAction + `","status":"done","updated_at":"2026-05-03T06:00:00Z","changed_by":"ops"}`)
	sign := func(ts time.Time, b []byte) http.Header {
		h := http.Header{}
		h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
		h.Set(HeaderSignature, Sign(secret, ts, b))
		h.Set(HeaderDelivery, "d-1")
		return h
	}
	in, err := w.Inbound(sign(now, body), body, now)
	if err != nil || in.Status != events.StatusDone || in.ActionID != markedAction || in.DeliveryID != "d-1" {
		t.Fatalf("signed status: %+v %v", in, err)
	}
	// A known vector, so receivers in other languages can check their code.
	if got := Sign([]byte("s3cret"), time.Unix(1700000000, 0), []byte(`{"id":"x"}`)); got != "v1="+hexHMAC("s3cret", `1700000000.{"id":"x"}`) {
		t.Errorf("Sign = %s", got)
	}
	for name, h := range map[string]http.Header{
		"replayed (10 minutes old)": sign(now.Add(-10*time.Minute), body),
		"from the future":           sign(now.Add(10*time.Minute), body),
		"other body":                sign(now, append(body, ' ')),
		"no timestamp":              {HeaderSignature: {Sign(secret, now, body)}},
	} {
		if _, err := w.Inbound(h, body, now); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
	for name, b := range map[string]string{
		"unknown field": `{"action_id":"a","status":"done","updated_at":"2026-05-03T06:00:00Z","colour":"red"}`,
		"bad status":    `{"action_id":"a","status":"finished","updated_at":"2026-05-03T06:00:00Z"}`,
		"no time":       `{"action_id":"a","status":"done"}`,
		"no id":         `{"status":"done","updated_at":"2026-05-03T06:00:00Z"}`,
	} {
		if _, err := w.Inbound(sign(now, []byte(b)), []byte(b), now); !errors.Is(err, ErrPayload) {
			t.Errorf("%s: %v, want ErrPayload", name, err)
		}
	}
}

func hexHMAC(key, msg string) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(msg))
	return hex.EncodeToString(mac.Sum(nil))
}
