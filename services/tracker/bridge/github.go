package bridge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// GitHubConfig configures a GitHub Issues bridge.
type GitHubConfig struct {
	Name string
	// APIURL is https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server.
	APIURL string
	// Repo is owner/name.
	Repo  string
	Token string
	// WebhookSecret verifies X-Hub-Signature-256 of the issues webhook.
	WebhookSecret []byte
	// Assignees maps an owner's e-mail or name to a GitHub login.
	Assignees map[string]string
	Client    *http.Client
}

// GitHub is the GitHub Issues bridge (REST API 2022-11-28).
type GitHub struct {
	cfg GitHubConfig
	c   *client
}

// NewGitHub returns the GitHub bridge for cfg.
func NewGitHub(cfg GitHubConfig) *GitHub {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+cfg.Token)
	h.Set("X-GitHub-Api-Version", "2022-11-28")
	h.Set("User-Agent", "afteraction-tracker")
	return &GitHub{cfg: cfg, c: newClient(cfg.Client, cfg.APIURL, h)}
}

var _ Bridge = (*GitHub)(nil)

// Name implements Bridge.
func (g *GitHub) Name() string { return g.cfg.Name }

// Kind implements Bridge.
func (g *GitHub) Kind() string { return "github" }

type githubIssue struct {
	Number      int               `json:"number"`
	HTMLURL     string            `json:"html_url"`
	State       string            `json:"state"`
	StateReason string            `json:"state_reason"`
	UpdatedAt   time.Time         `json:"updated_at"`
	Labels      []json.RawMessage `json:"labels"`
}

type githubIssueRequest struct {
	Title       string   `json:"title"`
	Body        string   `json:"body"`
	Labels      []string `json:"labels,omitempty"`
	Assignees   []string `json:"assignees,omitempty"`
	State       string   `json:"state,omitempty"`
	StateReason string   `json:"state_reason,omitempty"`
}

// request is the issue as created (labels and assignee included) or as
// updated: title, body and state only, so labels and assignees people set on
// GitHub stay (the marker label was set at creation).
func (g *GitHub) request(is Issue, update bool) githubIssueRequest {
	r := githubIssueRequest{Title: is.Title, Body: markdownBody(is)}
	if !update {
		r.Labels = labels(is)
		if login := assignee(g.cfg.Assignees, is); login != "" {
			r.Assignees = []string{login}
		}
	}
	if update {
		switch is.Status {
		case events.StatusDone:
			r.State, r.StateReason = "closed", "completed"
		case events.StatusWontDo:
			r.State, r.StateReason = "closed", "not_planned"
		default:
			r.State = "open"
		}
	}
	return r
}

func (g *GitHub) repoPath() string { return "/repos/" + g.cfg.Repo + "/issues" }

// Find implements Bridge: the repository's issues (open and closed) with the marker label.
func (g *GitHub) Find(ctx context.Context, actionID string) (Ref, bool, error) {
	found, err := findLabelled[githubIssue](ctx, g.c, g.repoPath(), actionID)
	if err != nil || found == nil {
		return Ref{}, false, err
	}
	return Ref{ID: strconv.Itoa(found.Number), URL: found.HTMLURL}, true, nil
}

// Create implements Bridge: POST /repos/{owner}/{repo}/issues, then, for an
// action already finished, a PATCH that closes it.
func (g *GitHub) Create(ctx context.Context, is Issue) (Ref, error) {
	var created githubIssue
	if err := g.c.do(ctx, "create issue", http.MethodPost, g.repoPath(), g.request(is, false), &created); err != nil {
		return Ref{}, err
	}
	return closeIfFinished(ctx, g, Ref{ID: strconv.Itoa(created.Number), URL: created.HTMLURL}, is)
}

// Update implements Bridge: PATCH /repos/{owner}/{repo}/issues/{number}.
func (g *GitHub) Update(ctx context.Context, ref Ref, is Issue) error {
	return g.c.do(ctx, "update issue "+ref.ID, http.MethodPatch, g.repoPath()+"/"+url.PathEscape(ref.ID), g.request(is, true), nil)
}

// githubIssuesEvent is the part of the "issues" webhook payload the bridge reads.
type githubIssuesEvent struct {
	Action string `json:"action"`
	Issue  *struct {
		Number      int       `json:"number"`
		State       string    `json:"state"`
		StateReason string    `json:"state_reason"`
		UpdatedAt   time.Time `json:"updated_at"`
		Labels      []struct {
			Name string `json:"name"`
		} `json:"labels"`
	} `json:"issue"`
	Sender struct {
		Login string `json:"login"`
	} `json:"sender"`
}

// Inbound implements Bridge for the "issues" webhook (refused unless a
// webhook secret is configured and X-Hub-Signature-256 matches): closed as completed →
// done, closed as not planned or duplicate → won't do, reopened → in
// progress; every other event and action is ignored.
func (g *GitHub) Inbound(h http.Header, body []byte, _ time.Time) (Inbound, error) {
	if len(g.cfg.WebhookSecret) == 0 {
		return Inbound{}, fmt.Errorf("%w: no webhook secret is configured for bridge %s", ErrSignature, g.cfg.Name)
	}
	if err := VerifyGitHub(g.cfg.WebhookSecret, h.Get("X-Hub-Signature-256"), body); err != nil {
		return Inbound{}, err
	}
	return DecodeGitHub(h.Get("X-GitHub-Event"), h.Get("X-GitHub-Delivery"), body)
}

// VerifyGitHub checks an X-Hub-Signature-256 value ("sha256=" + hex HMAC of
// the body); errors wrap ErrSignature.
func VerifyGitHub(secret []byte, signature string, body []byte) error {
	got, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return fmt.Errorf("%w: X-Hub-Signature-256 missing or not sha256=", ErrSignature)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal([]byte(got), []byte(hex.EncodeToString(mac.Sum(nil)))) {
		return fmt.Errorf("%w: X-Hub-Signature-256 does not match the body", ErrSignature)
	}
	return nil
}

// DecodeGitHub decodes a verified GitHub webhook; errors wrap ErrPayload.
func DecodeGitHub(event, delivery string, body []byte) (Inbound, error) {
	in := Inbound{DeliveryID: "github:" + delivery}
	if delivery == "" || len(delivery) > 100 {
		return in, fmt.Errorf("%w: X-GitHub-Delivery: want 1-100 characters", ErrPayload)
	}
	if event != "issues" {
		in.Ignored = fmt.Sprintf("event %q carries no issue status", event)
		return in, nil
	}
	var e githubIssuesEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return in, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	if e.Issue == nil || e.Issue.Number <= 0 {
		return in, fmt.Errorf("%w: issue.number required", ErrPayload)
	}
	names := make([]string, len(e.Issue.Labels))
	for i, l := range e.Issue.Labels {
		names[i] = l.Name
	}
	in.ActionID = markerIn(names)
	in.ExternalID = strconv.Itoa(e.Issue.Number)
	in.UpdatedAt = e.Issue.UpdatedAt
	in.ChangedBy = e.Sender.Login
	switch {
	case e.Action == "closed" && (e.Issue.StateReason == "not_planned" || e.Issue.StateReason == "duplicate"):
		in.Status = events.StatusWontDo
		in.Note = "closed on GitHub as " + strings.ReplaceAll(e.Issue.StateReason, "_", " ")
	case e.Action == "closed":
		in.Status = events.StatusDone
		in.Note = "closed on GitHub as completed"
	case e.Action == "reopened":
		in.Status = events.StatusInProgress
		in.Note = "reopened on GitHub"
	default:
		in.Ignored = fmt.Sprintf("issues action %q changes no status", e.Action)
		return in, nil
	}
	if in.UpdatedAt.IsZero() {
		return in, fmt.Errorf("%w: issue.updated_at required", ErrPayload)
	}
	return in, nil
}
