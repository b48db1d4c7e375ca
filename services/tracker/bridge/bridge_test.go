package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// vendor describes how one remote's documented API answers (bodies from the
// vendor's API reference; sources in testdata/README.md).
type vendor struct {
	name string
	// build returns the bridge pointed at base.
	build func(base string) Bridge
	// createPath and updatePath are the paths the bridge must call.
	createMethod, createPath string
	updateMethod, updatePath string
	createStatus             int
	createBody               string
	updateStatus             int
	updateBody               string
	wantRef                  Ref
	// errors: documented error bodies by status, with a part of the message the bridge must keep.
	errors []vendorError
	// checkCreate inspects the create request body.
	checkCreate func(t *testing.T, body map[string]any, h http.Header)
	// keepOnUpdate are the request keys an update must not send (people own them there).
	keepOnUpdate []string
}

type vendorError struct {
	status  int
	header  map[string]string
	body    string
	message string
	retry   bool
	limited bool
	wait    time.Duration
}

var testIssue = Issue{
	ActionID: "7d7bd1f6-1c53-5b7e-9a6f-2d1f9d3c8e01", IncidentID: "0195a3c2-7f41-7b8e-9d2a-4c6e8f1a2b3c",
	IncidentTitle: "Finance mailbox compromised", ReviewID: "0195a5d0-1c22-7a4f-8e31-5b7d9c0e1f24", Key: "mfa",
	Title: "Require phishing-resistant MFA", Description: "For every finance account.",
	Category: events.CategoryPreventive, Priority: events.PriorityHigh, Status: events.StatusOpen,
	DueDate: "2026-05-08", OwnerName: "Zoë Ågren", OwnerEmail: "zoe@example.com",
	ReportURL: "https://afteraction.example/v1/reports?incident_id=0195a3c2", Event: "action.created", Version: 1,
}

func vendors() []vendor {
	return []vendor{
		{
			name: "github",
			build: func(base string) Bridge {
				return NewGitHub(GitHubConfig{Name: "gh", APIURL: base, Repo: "octocat/Hello-World", Token: "ghp_test",
					Assignees: map[string]string{"zoe@example.com": "zoeagren"}})
			},
			keepOnUpdate: []string{"labels", "assignees"},
			createMethod: "POST", createPath: "/repos/octocat/Hello-World/issues",
			updateMethod: "PATCH", updatePath: "/repos/octocat/Hello-World/issues/1347",
			createStatus: 201,
			createBody:   `{"id":1,"node_id":"MDU6SXNzdWUx","url":"https://api.github.com/repos/octocat/Hello-World/issues/1347","html_url":"https://github.com/octocat/Hello-World/issues/1347","number":1347,"state":"open","title":"Found a bug","body":"I'm having a problem with this.","labels":[],"updated_at":"2011-04-22T13:33:48Z"}`,
			updateStatus: 200,
			updateBody:   `{"id":1,"number":1347,"state":"open","html_url":"https://github.com/octocat/Hello-World/issues/1347"}`,
			wantRef:      Ref{ID: "1347", URL: "https://github.com/octocat/Hello-World/issues/1347"},
			errors: []vendorError{
				{status: 401, body: `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`, message: "Bad credentials"},
				{status: 404, body: `{"message":"Not Found","documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"404"}`, message: "Not Found"},
				{status: 410, body: `{"message":"Issues are disabled for this repo","documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"410"}`, message: "Issues are disabled"},
				{status: 422, body: `{"message":"Validation Failed","errors":[{"value":"nobody","resource":"Issue","field":"assignees","code":"invalid"}],"documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"422"}`, message: "Issue assignees: invalid"},
				{status: 429, header: map[string]string{"Retry-After": "30"}, body: `{"message":"API rate limit exceeded","status":"429"}`, message: "rate limit", retry: true, limited: true, wait: 30 * time.Second},
				{status: 403, header: map[string]string{"Retry-After": "60"}, body: `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.","documentation_url":"https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits","status":"403"}`, message: "secondary rate limit", retry: true, limited: true, wait: time.Minute},
				{status: 403, body: `{"message":"You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits","status":"403"}`, message: "secondary rate limit", retry: true, limited: true, wait: time.Minute},
				{status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "reset+120"}, body: `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit","status":"403"}`, message: "API rate limit exceeded", retry: true, limited: true, wait: 2 * time.Minute},
				{status: 403, body: `{"message":"Resource not accessible by personal access token","documentation_url":"https://docs.github.com/rest/issues/issues#create-an-issue","status":"403"}`, message: "not accessible"},
				{status: 500, body: `{"message":"Server Error"}`, message: "Server Error", retry: true},
				{status: 503, body: `<html>unicorn</html>`, message: "unicorn", retry: true},
			},
			checkCreate: func(t *testing.T, b map[string]any, h http.Header) {
				if h.Get("Authorization") != "Bearer ghp_test" || h.Get("X-GitHub-Api-Version") != "2022-11-28" {
					t.Errorf("headers %v", h)
				}
				if b["title"] != testIssue.Title || !strings.Contains(b["body"].(string), "2026-05-08") ||
					!strings.Contains(b["body"].(string), testIssue.ReportURL) {
					t.Errorf("create body %v", b)
				}
				if got := toStrings(b["labels"]); strings.Join(got, ",") != "afteraction:"+testIssue.ActionID+",category:preventive,priority:high" {
					t.Errorf("labels %v", got)
				}
				if got := toStrings(b["assignees"]); len(got) != 1 || got[0] != "zoeagren" {
					t.Errorf("assignees %v", got)
				}
			},
		},
		{
			name: "jira-cloud",
			build: func(base string) Bridge {
				return NewJira(JiraConfig{Name: "jira", BaseURL: base, Cloud: true, Email: "bot@example.com", Token: "tok",
					Project: "SEC", Priorities: map[string]string{"high": "High"},
					Assignees: map[string]string{"zoe@example.com": "5b10ac8d82e05b22cc7d4ef5"}})
			},
			keepOnUpdate: []string{"fields.labels", "fields.assignee"},
			createMethod: "POST", createPath: "/rest/api/3/issue",
			updateMethod: "PUT", updatePath: "/rest/api/3/issue/ED-24",
			createStatus: 201,
			createBody:   `{"id":"10000","key":"ED-24","self":"https://your-domain.atlassian.net/rest/api/3/issue/10000","transition":{"status":200,"errorCollection":{"errorMessages":[],"errors":{}}}}`,
			updateStatus: 204,
			wantRef:      Ref{ID: "ED-24", URL: "/browse/ED-24"},
			errors: []vendorError{
				{status: 400, body: `{"errorMessages":[],"errors":{"assignee":"User '5b10ac8d82e05b22cc7d4ef5' cannot be assigned issues."}}`, message: "assignee: User"},
				{status: 401, body: `{"errorMessages":["You are not authenticated. Authentication required to perform this operation."],"errors":{}}`, message: "not authenticated"},
				{status: 404, body: `{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}`, message: "Issue does not exist"},
				{status: 429, header: map[string]string{"Retry-After": "5", "X-RateLimit-Reset": "2026-05-04T06:00Z"}, body: ``, message: "Too Many Requests", retry: true, limited: true, wait: 5 * time.Second},
				{status: 500, body: `{"errorMessages":["Internal server error"],"errors":{}}`, message: "Internal server error", retry: true},
			},
			checkCreate: func(t *testing.T, b map[string]any, h http.Header) {
				if !strings.HasPrefix(h.Get("Authorization"), "Basic ") {
					t.Errorf("auth %q", h.Get("Authorization"))
				}
				f := b["fields"].(map[string]any)
				if f["summary"] != testIssue.Title || f["duedate"] != "2026-05-08" ||
					f["priority"].(map[string]any)["name"] != "High" ||
					f["assignee"].(map[string]any)["accountId"] != "5b10ac8d82e05b22cc7d4ef5" ||
					f["project"].(map[string]any)["key"] != "SEC" || f["issuetype"].(map[string]any)["name"] != "Task" {
					t.Errorf("fields %v", f)
				}
				d := f["description"].(map[string]any)
				if d["type"] != "doc" || d["version"] != float64(1) || len(d["content"].([]any)) < 3 {
					t.Errorf("description is not ADF: %v", d)
				}
				if got := toStrings(f["labels"]); len(got) != 3 || got[0] != Marker(testIssue.ActionID) {
					t.Errorf("labels %v", got)
				}
			},
		},
		{
			name: "jira-server",
			build: func(base string) Bridge {
				return NewJira(JiraConfig{Name: "jira", BaseURL: base, Token: "pat", Project: "SEC",
					Assignees: map[string]string{"zoe@example.com": "zagren"}})
			},
			createMethod: "POST", createPath: "/rest/api/2/issue",
			updateMethod: "PUT", updatePath: "/rest/api/2/issue/ED-24",
			createStatus: 201,
			createBody:   `{"id":"10000","key":"ED-24","self":"http://www.example.com/jira/rest/api/2/issue/10000"}`,
			updateStatus: 204,
			wantRef:      Ref{ID: "ED-24", URL: "/browse/ED-24"},
			errors: []vendorError{
				{status: 400, body: `{"errorMessages":["Field 'priority' is required"],"errors":{}}`, message: "Field 'priority' is required"},
				{status: 401, body: ``, message: "Unauthorized"},
				{status: 429, header: map[string]string{"Retry-After": "7"}, body: ``, message: "Too Many Requests", retry: true, limited: true, wait: 7 * time.Second},
				{status: 502, body: `bad gateway`, message: "bad gateway", retry: true},
			},
			checkCreate: func(t *testing.T, b map[string]any, h http.Header) {
				if h.Get("Authorization") != "Bearer pat" {
					t.Errorf("auth %q", h.Get("Authorization"))
				}
				f := b["fields"].(map[string]any)
				if _, ok := f["description"].(string); !ok || f["assignee"].(map[string]any)["name"] != "zagren" {
					t.Errorf("server fields %v", f)
				}
			},
		},
		{
			name: "gitlab",
			build: func(base string) Bridge {
				return NewGitLab(GitLabConfig{Name: "gl", APIURL: base, Project: "my-group/my-project", Token: "glpat",
					Assignees: map[string]string{"zoe@example.com": "51"}})
			},
			keepOnUpdate: []string{"labels", "assignee_ids"},
			createMethod: "POST", createPath: "/projects/my-group%2Fmy-project/issues",
			updateMethod: "PUT", updatePath: "/projects/my-group%2Fmy-project/issues/14",
			createStatus: 201,
			createBody:   `{"project_id":4,"id":84,"created_at":"2016-01-07T12:44:33.959Z","iid":14,"title":"Issues with auth","state":"opened","labels":["bug"],"web_url":"http://gitlab.example.com/my-group/my-project/issues/14"}`,
			updateStatus: 200,
			updateBody:   `{"id":84,"iid":14,"state":"closed","web_url":"http://gitlab.example.com/my-group/my-project/issues/14"}`,
			wantRef:      Ref{ID: "14", URL: "http://gitlab.example.com/my-group/my-project/issues/14"},
			errors: []vendorError{
				{status: 400, body: `{"message":{"title":["can't be blank"]}}`, message: "title: can't be blank"},
				{status: 401, body: `{"message":"401 Unauthorized"}`, message: "401 Unauthorized"},
				{status: 404, body: `{"message":"404 Project Not Found"}`, message: "Project Not Found"},
				{status: 422, body: `{"message":"Unprocessable Entity","error":"assignee_ids is invalid"}`, message: "assignee_ids is invalid"},
				{status: 429, header: map[string]string{"Retry-After": "60", "RateLimit-Remaining": "0"}, body: `Retry later`, message: "Retry later", retry: true, limited: true, wait: time.Minute},
				{status: 500, body: `{"message":"500 Internal Server Error"}`, message: "500 Internal Server Error", retry: true},
			},
			checkCreate: func(t *testing.T, b map[string]any, h http.Header) {
				if h.Get("PRIVATE-TOKEN") != "glpat" {
					t.Errorf("token header %v", h)
				}
				if b["due_date"] != "2026-05-08" || !strings.HasPrefix(b["labels"].(string), Marker(testIssue.ActionID)+",") ||
					b["assignee_ids"].([]any)[0] != float64(51) {
					t.Errorf("create body %v", b)
				}
			},
		},
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// fakeRemote answers every request with the next scripted response and
// records the requests.
type fakeRemote struct {
	mu    sync.Mutex
	next  func(r *http.Request, body []byte) (int, map[string]string, string)
	calls []recorded
}

type recorded struct {
	method, path string
	header       http.Header
	body         []byte
}

func (f *fakeRemote) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, recorded{r.Method, r.URL.EscapedPath(), r.Header.Clone(), b})
	next := f.next
	f.mu.Unlock()
	status, h, body := next(r, b)
	for k, v := range h {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func TestVendorsAgainstDocumentedAnswers(t *testing.T) {
	t.Parallel()
	for _, v := range vendors() {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			fr := &fakeRemote{}
			srv := httptest.NewServer(fr)
			defer srv.Close()
			b := v.build(srv.URL)
			ctx := context.Background()

			fr.next = func(*http.Request, []byte) (int, map[string]string, string) { return v.createStatus, nil, v.createBody }
			ref, err := b.Create(ctx, testIssue)
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			want := v.wantRef
			if strings.HasPrefix(want.URL, "/") {
				want.URL = srv.URL + want.URL
			}
			if ref != want {
				t.Errorf("create gave %+v, want %+v", ref, want)
			}
			c := fr.calls[0]
			if c.method != v.createMethod || c.path != v.createPath {
				t.Errorf("create called %s %s, want %s %s", c.method, c.path, v.createMethod, v.createPath)
			}
			var body map[string]any
			if err := json.Unmarshal(c.body, &body); err != nil {
				t.Fatal(err)
			}
			v.checkCreate(t, body, c.header)

			fr.next = func(*http.Request, []byte) (int, map[string]string, string) { return v.updateStatus, nil, v.updateBody }
			done := testIssue
			done.Status = events.StatusDone
			if err := b.Update(ctx, ref, done); err != nil {
				t.Fatalf("update: %v", err)
			}
			c = fr.calls[len(fr.calls)-1]
			if c.method != v.updateMethod || c.path != v.updatePath {
				t.Errorf("update called %s %s, want %s %s", c.method, c.path, v.updateMethod, v.updatePath)
			}
			var upd map[string]any
			if err := json.Unmarshal(c.body, &upd); err != nil {
				t.Fatal(err)
			}
			for _, k := range v.keepOnUpdate {
				m := upd
				if f, ok := strings.CutPrefix(k, "fields."); ok {
					m, k = upd["fields"].(map[string]any), f
				}
				if _, sent := m[k]; sent {
					t.Errorf("update sends %s, which people may have changed on the remote: %s", k, c.body)
				}
			}

			for _, ve := range v.errors {
				fr.next = func(*http.Request, []byte) (int, map[string]string, string) {
					h := map[string]string{}
					for k, val := range ve.header {
						if rest, ok := strings.CutPrefix(val, "reset+"); ok {
							d, _ := time.ParseDuration(rest + "s")
							val = strconv.FormatInt(time.Now().Add(d).Unix(), 10)
						}
						h[k] = val
					}
					return ve.status, h, ve.body
				}
				_, err := b.Create(ctx, testIssue)
				var re *RemoteError
				if !errors.As(err, &re) {
					t.Fatalf("%d: error %v is not a RemoteError", ve.status, err)
				}
				if re.Status != ve.status || !strings.Contains(re.Message, ve.message) {
					t.Errorf("%d: got status %d message %q, want %q", ve.status, re.Status, re.Message, ve.message)
				}
				if re.Retryable() != ve.retry || re.Limited != ve.limited {
					t.Errorf("%d %q: retryable %v limited %v, want %v %v", ve.status, ve.message, re.Retryable(), re.Limited, ve.retry, ve.limited)
				}
				if ve.wait > 0 && (re.RetryAfter < ve.wait-2*time.Second || re.RetryAfter > ve.wait+time.Second) {
					t.Errorf("%d: wait %s, want about %s", ve.status, re.RetryAfter, ve.wait)
				}
				if Permanent(err) == ve.retry {
					t.Errorf("%d: Permanent = %v", ve.status, Permanent(err))
				}
			}
		})
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	b := NewGitHub(GitHubConfig{Name: "gh", APIURL: srv.URL, Repo: "o/r", Token: "t",
		Client: &http.Client{Timeout: 50 * time.Millisecond}})
	_, err := b.Create(context.Background(), testIssue)
	var re *RemoteError
	if !errors.As(err, &re) || re.Status != 0 || !re.Retryable() {
		t.Fatalf("timeout gave %v, want a retryable RemoteError without status", err)
	}
}

func TestFindByMarker(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		build func(string) Bridge
		path  string
		query string
		found string
		none  string
		want  string
	}{
		{"github", func(u string) Bridge { return NewGitHub(GitHubConfig{Name: "gh", APIURL: u, Repo: "o/r", Token: "t"}) },
			"/repos/o/r/issues", "labels=afteraction%3A" + testIssue.ActionID,
			`[{"number":7,"html_url":"https://github.com/o/r/issues/7","state":"closed"}]`, `[]`, "7"},
		{"jira-cloud", func(u string) Bridge {
			return NewJira(JiraConfig{Name: "j", BaseURL: u, Cloud: true, Email: "e", Token: "t", Project: "SEC"})
		}, "/rest/api/3/search/jql", "labels+%3D+%22afteraction%3A" + testIssue.ActionID,
			`{"issues":[{"id":"10068","key":"SEC-7","self":"https://x/rest/api/3/issue/10068"}],"isLast":true}`, `{"issues":[],"isLast":true}`, "SEC-7"},
		{"jira-server", func(u string) Bridge { return NewJira(JiraConfig{Name: "j", BaseURL: u, Token: "t", Project: "SEC"}) },
			"/rest/api/2/search", "maxResults=1",
			`{"startAt":0,"maxResults":1,"total":1,"issues":[{"id":"10068","key":"SEC-7"}]}`, `{"startAt":0,"maxResults":1,"total":0,"issues":[]}`, "SEC-7"},
		{"gitlab", func(u string) Bridge {
			return NewGitLab(GitLabConfig{Name: "gl", APIURL: u, Project: "42", Token: "t"})
		},
			"/projects/42/issues", "labels=afteraction%3A" + testIssue.ActionID,
			`[{"id":84,"iid":7,"web_url":"https://gitlab.example.com/g/p/issues/7"}]`, `[]`, "7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			answer := c.found
			var got *http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r
				io.WriteString(w, answer)
			}))
			defer srv.Close()
			b := c.build(srv.URL)
			ref, ok, err := b.Find(context.Background(), testIssue.ActionID)
			if err != nil || !ok || ref.ID != c.want {
				t.Fatalf("find = %+v %v %v, want %s", ref, ok, err, c.want)
			}
			if got.URL.Path != c.path || !strings.Contains(got.URL.RawQuery, c.query) {
				t.Errorf("find called %s?%s, want %s with %s", got.URL.Path, got.URL.RawQuery, c.path, c.query)
			}
			answer = c.none
			if _, ok, err := b.Find(context.Background(), testIssue.ActionID); ok || err != nil {
				t.Errorf("find with no match = %v %v", ok, err)
			}
		})
	}
}
