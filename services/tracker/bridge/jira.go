package bridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// JiraConfig configures a Jira bridge.
type JiraConfig struct {
	Name string
	// BaseURL is the site, e.g. https://acme.atlassian.net.
	BaseURL string
	// Cloud selects REST v3 with ADF descriptions and account ids (Jira
	// Cloud); false selects REST v2 with wiki-text descriptions and user
	// names (Jira Server and Data Center).
	Cloud bool
	// Email and Token authenticate with Basic auth (Cloud: e-mail + API token);
	// with Email empty, Token is sent as a Bearer personal access token (Server/DC).
	Email, Token string
	Project      string
	IssueType    string
	// Priorities maps afteraction priorities to Jira priority names; unmapped
	// priorities are not sent.
	Priorities map[string]string
	// Assignees maps an owner's e-mail or name to a Jira account id (Cloud)
	// or user name (Server/DC).
	Assignees map[string]string
	// StatusNames maps Jira status names (case-insensitive) to afteraction
	// statuses; it wins over the status category.
	StatusNames map[string]events.Status
	// WebhookSecret verifies the X-Hub-Signature header of Jira webhooks.
	WebhookSecret []byte
	Client        *http.Client
}

// Jira is the Jira Cloud (REST v3) or Server/Data Center (REST v2) bridge.
type Jira struct {
	cfg JiraConfig
	c   *client
	api string
}

// NewJira returns the Jira bridge for cfg.
func NewJira(cfg JiraConfig) *Jira {
	h := http.Header{}
	if cfg.Email != "" {
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cfg.Email+":"+cfg.Token)))
	} else {
		h.Set("Authorization", "Bearer "+cfg.Token)
	}
	if cfg.IssueType == "" {
		cfg.IssueType = "Task"
	}
	api := "/rest/api/2"
	if cfg.Cloud {
		api = "/rest/api/3"
	}
	return &Jira{cfg: cfg, c: newClient(cfg.Client, cfg.BaseURL, h), api: api}
}

var _ Bridge = (*Jira)(nil)

// Name implements Bridge.
func (j *Jira) Name() string { return j.cfg.Name }

// Kind implements Bridge.
func (j *Jira) Kind() string { return "jira" }

// fields are the issue fields the bridge sets: at creation all of them, on
// update the summary, description, due date and priority.
func (j *Jira) fields(is Issue, create bool) map[string]any {
	f := map[string]any{"summary": is.Title}
	if create {
		f["labels"] = jiraLabels(is)
	}
	if is.DueDate != "" {
		f["duedate"] = is.DueDate
	}
	if name := j.cfg.Priorities[string(is.Priority)]; name != "" {
		f["priority"] = map[string]string{"name": name}
	}
	if who := assignee(j.cfg.Assignees, is); who != "" && create {
		if j.cfg.Cloud {
			f["assignee"] = map[string]string{"accountId": who}
		} else {
			f["assignee"] = map[string]string{"name": who}
		}
	}
	text := plainBody(is)
	if j.cfg.Cloud {
		f["description"] = adf(text)
	} else {
		f["description"] = text
	}
	if create {
		f["project"] = map[string]string{"key": j.cfg.Project}
		f["issuetype"] = map[string]string{"name": j.cfg.IssueType}
	}
	return f
}

// jiraLabels are the marker, category and priority labels; Jira labels
// cannot hold spaces, and these have none.
func jiraLabels(is Issue) []string { return labels(is) }

// plainBody is the description as plain paragraphs.
func plainBody(is Issue) string {
	var b strings.Builder
	if is.Description != "" {
		b.WriteString(is.Description + "\n\n")
	}
	fmt.Fprintf(&b, "Incident: %s (%s)\n", orDash(is.IncidentTitle), is.IncidentID)
	fmt.Fprintf(&b, "Due: %s\n", orDash(is.DueDate))
	if is.ReportURL != "" {
		fmt.Fprintf(&b, "Report: %s\n", is.ReportURL)
	}
	fmt.Fprintf(&b, "afteraction action %s (item %s of review %s)", is.ActionID, is.Key, is.ReviewID)
	return b.String()
}

// adf renders text as an Atlassian Document Format document: one paragraph
// per line (empty lines dropped).
func adf(text string) map[string]any {
	var content []any
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		content = append(content, map[string]any{
			"type":    "paragraph",
			"content": []any{map[string]any{"type": "text", "text": line}},
		})
	}
	return map[string]any{"type": "doc", "version": 1, "content": content}
}

type jiraRef struct {
	ID   string `json:"id"`
	Key  string `json:"key"`
	Self string `json:"self"`
}

func (j *Jira) browse(key string) string {
	return strings.TrimRight(j.cfg.BaseURL, "/") + "/browse/" + key
}

// Find implements Bridge with a JQL search for the marker label (Cloud:
// GET /rest/api/3/search/jql; Server/DC: GET /rest/api/2/search).
func (j *Jira) Find(ctx context.Context, actionID string) (Ref, bool, error) {
	q := url.Values{
		"jql":        {fmt.Sprintf(`project = %q AND labels = %q`, j.cfg.Project, Marker(actionID))},
		"fields":     {"key"},
		"maxResults": {"1"},
	}
	path := j.api + "/search"
	if j.cfg.Cloud {
		path = j.api + "/search/jql"
	}
	var res struct {
		Issues []jiraRef `json:"issues"`
	}
	if err := j.c.do(ctx, "find issue", http.MethodGet, path+"?"+q.Encode(), nil, &res); err != nil {
		return Ref{}, false, err
	}
	if len(res.Issues) == 0 {
		return Ref{}, false, nil
	}
	return Ref{ID: res.Issues[0].Key, URL: j.browse(res.Issues[0].Key)}, true, nil
}

// Create implements Bridge: POST /rest/api/{2,3}/issue.
func (j *Jira) Create(ctx context.Context, is Issue) (Ref, error) {
	var created jiraRef
	if err := j.c.do(ctx, "create issue", http.MethodPost, j.api+"/issue",
		map[string]any{"fields": j.fields(is, true)}, &created); err != nil {
		return Ref{}, err
	}
	return Ref{ID: created.Key, URL: j.browse(created.Key)}, nil
}

// Update implements Bridge: PUT /rest/api/{2,3}/issue/{key} with the fields.
// Jira's status follows its workflow and is not set from here: status flows
// from Jira to afteraction.
func (j *Jira) Update(ctx context.Context, ref Ref, is Issue) error {
	return j.c.do(ctx, "update issue "+ref.ID, http.MethodPut, j.api+"/issue/"+url.PathEscape(ref.ID),
		map[string]any{
			"fields": j.fields(is, false),
			// Labels and the assignee people set in Jira stay; the marker is added back if removed.
			"update": map[string]any{"labels": []any{map[string]string{"add": Marker(is.ActionID)}}},
		}, nil)
}

// jiraEvent is the part of a jira:issue_updated webhook the bridge reads.
type jiraEvent struct {
	Timestamp    int64  `json:"timestamp"`
	WebhookEvent string `json:"webhookEvent"`
	User         struct {
		AccountID   string `json:"accountId"`
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	} `json:"user"`
	Issue *struct {
		ID     string `json:"id"`
		Key    string `json:"key"`
		Fields struct {
			Labels  []string `json:"labels"`
			Updated string   `json:"updated"`
			Status  *struct {
				Name           string `json:"name"`
				StatusCategory struct {
					Key string `json:"key"`
				} `json:"statusCategory"`
			} `json:"status"`
		} `json:"fields"`
	} `json:"issue"`
	Changelog struct {
		ID    string `json:"id"`
		Items []struct {
			Field      string `json:"field"`
			FromString string `json:"fromString"`
			ToString   string `json:"toString"`
		} `json:"items"`
	} `json:"changelog"`
}

// Inbound implements Bridge for jira:issue_updated webhooks whose changelog
// changes the status. It is refused unless a webhook secret is configured
// and X-Hub-Signature matches ("sha256=" + hex HMAC of the body, as Jira
// signs webhooks that have a secret).
func (j *Jira) Inbound(h http.Header, body []byte, _ time.Time) (Inbound, error) {
	if len(j.cfg.WebhookSecret) == 0 {
		return Inbound{}, fmt.Errorf("%w: no webhook secret is configured for bridge %s", ErrSignature, j.cfg.Name)
	}
	if err := VerifyGitHub(j.cfg.WebhookSecret, h.Get("X-Hub-Signature"), body); err != nil {
		return Inbound{}, fmt.Errorf("%w (X-Hub-Signature)", err)
	}
	return DecodeJira(j.cfg.StatusNames, body)
}

// jiraTime is the layout of Jira's "updated" field.
const jiraTime = "2006-01-02T15:04:05.000-0700"

// DecodeJira decodes a jira:issue_updated webhook: the status name through
// names (case-insensitive), else the status category (done → done,
// indeterminate → in progress, new → open). Errors wrap ErrPayload.
func DecodeJira(names map[string]events.Status, body []byte) (Inbound, error) {
	var e jiraEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return Inbound{}, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if e.Issue == nil || e.Issue.Key == "" {
		return Inbound{}, fmt.Errorf("%w: issue.key required", ErrPayload)
	}
	in := Inbound{DeliveryID: fmt.Sprintf("jira:%s:%s:%d", e.Issue.ID, e.Changelog.ID, e.Timestamp),
		ExternalID: e.Issue.Key, ActionID: markerIn(e.Issue.Fields.Labels), ChangedBy: e.User.DisplayName}
	if in.ChangedBy == "" {
		in.ChangedBy = e.User.Name
	}
	if e.WebhookEvent != "jira:issue_updated" {
		in.Ignored = fmt.Sprintf("webhookEvent %q carries no status change", e.WebhookEvent)
		return in, nil
	}
	changed := false
	for _, it := range e.Changelog.Items {
		changed = changed || it.Field == "status"
	}
	if !changed {
		in.Ignored = "the changelog changes no status"
		return in, nil
	}
	st := e.Issue.Fields.Status
	if st == nil {
		return in, fmt.Errorf("%w: issue.fields.status required", ErrPayload)
	}
	if s, ok := lookupFold(names, st.Name); ok {
		in.Status = s
	} else {
		switch st.StatusCategory.Key {
		case "done":
			in.Status = events.StatusDone
		case "indeterminate":
			in.Status = events.StatusInProgress
		case "new":
			in.Status = events.StatusOpen
		default:
			return in, fmt.Errorf("%w: status %q has unknown category %q", ErrPayload, st.Name, st.StatusCategory.Key)
		}
	}
	in.Note = "Jira status " + st.Name
	t, err := time.Parse(jiraTime, e.Issue.Fields.Updated)
	if err != nil {
		if e.Timestamp <= 0 {
			return in, fmt.Errorf("%w: issue.fields.updated %q is not a Jira time", ErrPayload, e.Issue.Fields.Updated)
		}
		t = time.UnixMilli(e.Timestamp)
	}
	in.UpdatedAt = t
	return in, nil
}

func lookupFold(m map[string]events.Status, name string) (events.Status, bool) {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}
