package bridge

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// GitLabConfig configures a GitLab Issues bridge.
type GitLabConfig struct {
	Name string
	// APIURL is https://gitlab.com/api/v4 or https://HOST/api/v4.
	APIURL string
	// Project is the numeric id or the URL-encoded path (group/project).
	Project string
	Token   string
	// WebhookToken must equal the X-Gitlab-Token of incoming Issue Hooks.
	WebhookToken string
	// Assignees maps an owner's e-mail or name to a GitLab user id.
	Assignees map[string]string
	Client    *http.Client
}

// GitLab is the GitLab Issues bridge (REST API v4).
type GitLab struct {
	cfg GitLabConfig
	c   *client
}

// NewGitLab returns the GitLab bridge for cfg.
func NewGitLab(cfg GitLabConfig) *GitLab {
	h := http.Header{}
	h.Set("PRIVATE-TOKEN", cfg.Token)
	return &GitLab{cfg: cfg, c: newClient(cfg.Client, cfg.APIURL, h)}
}

var _ Bridge = (*GitLab)(nil)

// Name implements Bridge.
func (g *GitLab) Name() string { return g.cfg.Name }

// Kind implements Bridge.
func (g *GitLab) Kind() string { return "gitlab" }

type gitlabIssue struct {
	IID    int    `json:"iid"`
	WebURL string `json:"web_url"`
}

func (g *GitLab) path() string { return "/projects/" + url.PathEscape(g.cfg.Project) + "/issues" }

// request is the issue as created, or as updated (title, description, due
// date, state and the marker label).
func (g *GitLab) request(is Issue, update bool) map[string]any {
	r := map[string]any{
		"title":       is.Title,
		"description": markdownBody(is),
	}
	if is.DueDate != "" {
		r["due_date"] = is.DueDate
	}
	if !update {
		r["labels"] = strings.Join(labels(is), ",")
		if who := assignee(g.cfg.Assignees, is); who != "" {
			if id, err := strconv.Atoi(who); err == nil {
				r["assignee_ids"] = []int{id}
			}
		}
	} else {
		// Labels and assignees people changed on GitLab stay; the marker is
		// added back should someone have removed it.
		r["add_labels"] = Marker(is.ActionID)
	}
	if update {
		if is.Status == events.StatusDone || is.Status == events.StatusWontDo {
			r["state_event"] = "close"
		} else {
			r["state_event"] = "reopen"
		}
	}
	return r
}

// Find implements Bridge: the project's issues (all states) with the marker label.
func (g *GitLab) Find(ctx context.Context, actionID string) (Ref, bool, error) {
	found, err := findLabelled[gitlabIssue](ctx, g.c, g.path(), actionID)
	if err != nil || found == nil {
		return Ref{}, false, err
	}
	return Ref{ID: strconv.Itoa(found.IID), URL: found.WebURL}, true, nil
}

// Create implements Bridge: POST /projects/:id/issues, then a PUT that
// closes it when the action is already finished.
func (g *GitLab) Create(ctx context.Context, is Issue) (Ref, error) {
	var created gitlabIssue
	if err := g.c.do(ctx, "create issue", http.MethodPost, g.path(), g.request(is, false), &created); err != nil {
		return Ref{}, err
	}
	return closeIfFinished(ctx, g, Ref{ID: strconv.Itoa(created.IID), URL: created.WebURL}, is)
}

// Update implements Bridge: PUT /projects/:id/issues/:iid.
func (g *GitLab) Update(ctx context.Context, ref Ref, is Issue) error {
	return g.c.do(ctx, "update issue "+ref.ID, http.MethodPut, g.path()+"/"+url.PathEscape(ref.ID), g.request(is, true), nil)
}

// gitlabEvent is the part of an Issue Hook payload the bridge reads.
type gitlabEvent struct {
	ObjectKind string `json:"object_kind"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectAttributes *struct {
		ID        int    `json:"id"`
		IID       int    `json:"iid"`
		State     string `json:"state"`
		Action    string `json:"action"`
		UpdatedAt string `json:"updated_at"`
	} `json:"object_attributes"`
	Labels []struct {
		Title string `json:"title"`
	} `json:"labels"`
}

// Inbound implements Bridge for Issue Hooks: X-Gitlab-Token must equal the
// configured token; close → done, reopen → in progress, others ignored.
func (g *GitLab) Inbound(h http.Header, body []byte, _ time.Time) (Inbound, error) {
	tok := h.Get("X-Gitlab-Token")
	if g.cfg.WebhookToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(g.cfg.WebhookToken)) != 1 {
		return Inbound{}, fmt.Errorf("%w: X-Gitlab-Token does not match", ErrSignature)
	}
	return DecodeGitLab(h.Get("X-Gitlab-Event"), h.Get("X-Gitlab-Event-UUID"), body)
}

// DecodeGitLab decodes a verified GitLab webhook; errors wrap ErrPayload.
func DecodeGitLab(event, uuid string, body []byte) (Inbound, error) {
	var e gitlabEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return Inbound{}, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	in := Inbound{ChangedBy: e.User.Username}
	if event != "Issue Hook" || e.ObjectKind != "issue" {
		in.Ignored = fmt.Sprintf("event %q carries no issue status", event)
		in.DeliveryID = "gitlab:" + uuid
		return in, nil
	}
	a := e.ObjectAttributes
	if a == nil || a.IID <= 0 {
		return in, fmt.Errorf("%w: object_attributes.iid required", ErrPayload)
	}
	in.ExternalID = strconv.Itoa(a.IID)
	in.DeliveryID = "gitlab:" + uuid
	if uuid == "" {
		in.DeliveryID = fmt.Sprintf("gitlab:%d:%s:%s", a.ID, a.Action, a.UpdatedAt)
	}
	names := make([]string, len(e.Labels))
	for i, l := range e.Labels {
		names[i] = l.Title
	}
	in.ActionID = markerIn(names)
	switch a.Action {
	case "close":
		in.Status, in.Note = events.StatusDone, "closed on GitLab"
	case "reopen":
		in.Status, in.Note = events.StatusInProgress, "reopened on GitLab"
	default:
		in.Ignored = fmt.Sprintf("issue action %q changes no status", a.Action)
		return in, nil
	}
	t, err := parseGitLabTime(a.UpdatedAt)
	if err != nil {
		return in, fmt.Errorf("%w: object_attributes.updated_at: %v", ErrPayload, err)
	}
	in.UpdatedAt = t
	return in, nil
}

// parseGitLabTime reads the two layouts GitLab webhooks use for times:
// RFC 3339 and "2006-01-02 15:04:05 UTC".
func parseGitLabTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02 15:04:05 MST", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time", s)
	}
	return t, nil
}
