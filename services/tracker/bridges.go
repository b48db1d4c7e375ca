package tracker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/tracker/bridge"
)

// BridgesConfig is the bridges document (TRACKER_BRIDGES or the file named
// by TRACKER_BRIDGES_FILE): the remote trackers and which action goes to
// which. Secrets are never in the document: each *_env field names the
// environment variable that holds one.
type BridgesConfig struct {
	Bridges []BridgeConfig `json:"bridges"`
	Routes  Routes         `json:"routes"`
	// ReportURL is the link to an incident's report put in each issue;
	// {incident_id} is replaced. Empty: no link.
	ReportURL string `json:"report_url,omitempty"`
}

// BridgeConfig is one remote tracker. Kind selects the vendor; the fields
// each kind reads are listed in the README's bridge table.
type BridgeConfig struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// webhook
	URL       string `json:"url,omitempty"`
	SecretEnv string `json:"secret_env,omitempty"`
	// github, gitlab
	APIURL string `json:"api_url,omitempty"`
	Repo   string `json:"repo,omitempty"`
	// jira
	BaseURL     string                   `json:"base_url,omitempty"`
	Cloud       bool                     `json:"cloud,omitempty"`
	Email       string                   `json:"email,omitempty"`
	IssueType   string                   `json:"issue_type,omitempty"`
	Priorities  map[string]string        `json:"priorities,omitempty"`
	StatusNames map[string]events.Status `json:"status_names,omitempty"`
	// jira, gitlab
	Project string `json:"project,omitempty"`
	// github, jira, gitlab
	TokenEnv         string            `json:"token_env,omitempty"`
	WebhookSecretEnv string            `json:"webhook_secret_env,omitempty"`
	Assignees        map[string]string `json:"assignees,omitempty"`
	// RatePerSecond bounds requests to the remote (default 5).
	RatePerSecond float64 `json:"rate_per_second,omitempty"`
}

// Routes says which bridge serves an action: the owner's team first, then
// the category, then the default. An action no route names is not bridged.
type Routes struct {
	Default    string            `json:"default,omitempty"`
	Categories map[string]string `json:"categories,omitempty"`
	Teams      map[string]Team   `json:"teams,omitempty"`
}

// Team is a team whose members' actions go to Bridge; members are owner
// e-mails or names.
type Team struct {
	Bridge  string   `json:"bridge"`
	Members []string `json:"members"`
}

var bridgeName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// loadBridges reads the bridges document from TRACKER_BRIDGES (JSON) or the
// file TRACKER_BRIDGES_FILE, builds every bridge with its secrets from
// getenv, and checks the routes. It returns an error naming the variable and
// the field at fault.
func loadBridges(getenv func(string) string, client *http.Client) (*Bridges, error) {
	raw := getenv("TRACKER_BRIDGES")
	where := "TRACKER_BRIDGES"
	if file := getenv("TRACKER_BRIDGES_FILE"); file != "" {
		if raw != "" {
			return nil, fmt.Errorf("TRACKER_BRIDGES and TRACKER_BRIDGES_FILE: set one, not both")
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("TRACKER_BRIDGES_FILE: %w", err)
		}
		raw, where = string(b), "TRACKER_BRIDGES_FILE "+file
	}
	bs := &Bridges{byName: map[string]bridge.Bridge{}}
	if strings.TrimSpace(raw) == "" {
		return bs, nil
	}
	var cfg BridgesConfig
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	fail := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %s", where, field, fmt.Sprintf(format, args...))
	}
	secret := func(i int, field, env string, required bool) (string, error) {
		if env == "" {
			if required {
				return "", fail(fmt.Sprintf("bridges[%d].%s", i, field), "required")
			}
			return "", nil
		}
		v := getenv(env)
		if v == "" && required {
			return "", fail(fmt.Sprintf("bridges[%d].%s", i, field), "environment variable %s is empty", env)
		}
		return v, nil
	}
	for i, c := range cfg.Bridges {
		at := func(field string) string { return fmt.Sprintf("bridges[%d].%s", i, field) }
		if !bridgeName.MatchString(c.Name) {
			return nil, fail(at("name"), "want 1-32 of a-z, 0-9, _ and -")
		}
		if _, dup := bs.byName[c.Name]; dup {
			return nil, fail(at("name"), "%q is used twice", c.Name)
		}
		rate := c.RatePerSecond
		if rate == 0 {
			rate = 5
		}
		if rate < 0 || rate > 1000 {
			return nil, fail(at("rate_per_second"), "want 0 < rate <= 1000")
		}
		var tok, ws string
		switch c.Kind {
		case "webhook":
		case "github", "jira", "gitlab":
			var err error
			if tok, err = secret(i, "token_env", c.TokenEnv, true); err != nil {
				return nil, err
			}
			if ws, err = secret(i, "webhook_secret_env", c.WebhookSecretEnv, false); err != nil {
				return nil, err
			}
		default:
			return nil, fail(at("kind"), "%q: want webhook, github, jira or gitlab", c.Kind)
		}
		var b bridge.Bridge
		switch c.Kind {
		case "webhook":
			if err := checkURL(c.URL); err != nil {
				return nil, fail(at("url"), "%v", err)
			}
			s, err := secret(i, "secret_env", c.SecretEnv, true)
			if err != nil {
				return nil, err
			}
			b = bridge.NewWebhook(bridge.WebhookConfig{Name: c.Name, URL: c.URL, Secret: []byte(s), Client: client})
		case "github":
			if c.APIURL == "" {
				c.APIURL = "https://api.github.com"
			}
			if err := checkURL(c.APIURL); err != nil {
				return nil, fail(at("api_url"), "%v", err)
			}
			if strings.Count(c.Repo, "/") != 1 {
				return nil, fail(at("repo"), "want owner/name")
			}
			b = bridge.NewGitHub(bridge.GitHubConfig{Name: c.Name, APIURL: c.APIURL, Repo: c.Repo, Token: tok,
				WebhookSecret: []byte(ws), Assignees: lowerKeys(c.Assignees), Client: client})
		case "jira":
			if err := checkURL(c.BaseURL); err != nil {
				return nil, fail(at("base_url"), "%v", err)
			}
			if c.Project == "" {
				return nil, fail(at("project"), "required")
			}
			for name, st := range c.StatusNames {
				if !st.Valid() {
					return nil, fail(at("status_names."+name), "want open, in_progress, done or wont_do")
				}
			}
			b = bridge.NewJira(bridge.JiraConfig{Name: c.Name, BaseURL: c.BaseURL, Cloud: c.Cloud, Email: c.Email,
				Token: tok, Project: c.Project, IssueType: c.IssueType, Priorities: c.Priorities,
				Assignees: lowerKeys(c.Assignees), StatusNames: c.StatusNames, WebhookSecret: []byte(ws), Client: client})
		case "gitlab":
			if c.APIURL == "" {
				c.APIURL = "https://gitlab.com/api/v4"
			}
			if err := checkURL(c.APIURL); err != nil {
				return nil, fail(at("api_url"), "%v", err)
			}
			if c.Project == "" {
				return nil, fail(at("project"), "required")
			}
			b = bridge.NewGitLab(bridge.GitLabConfig{Name: c.Name, APIURL: c.APIURL, Project: c.Project, Token: tok,
				WebhookToken: ws, Assignees: lowerKeys(c.Assignees), Client: client})
		}
		bs.byName[c.Name] = b
		bs.list = append(bs.list, b)
		bs.interval = append(bs.interval, time.Duration(float64(time.Second)/rate))
	}
	known := func(field, name string) error {
		if _, ok := bs.byName[name]; !ok {
			return fail(field, "no bridge is named %q", name)
		}
		return nil
	}
	r := cfg.Routes
	if r.Default != "" {
		if err := known("routes.default", r.Default); err != nil {
			return nil, err
		}
	}
	for cat, name := range r.Categories {
		if !events.ActionCategory(cat).Valid() {
			return nil, fail("routes.categories."+cat, "not an action category")
		}
		if err := known("routes.categories."+cat, name); err != nil {
			return nil, err
		}
	}
	bs.members = map[string]string{}
	for team, t := range r.Teams {
		if err := known("routes.teams."+team+".bridge", t.Bridge); err != nil {
			return nil, err
		}
		for _, m := range t.Members {
			bs.members[strings.ToLower(m)] = t.Bridge
		}
	}
	bs.routes = r
	if cfg.ReportURL != "" {
		if err := checkURL(strings.ReplaceAll(cfg.ReportURL, "{incident_id}", "x")); err != nil {
			return nil, fail("report_url", "%v", err)
		}
	}
	bs.reportURL = cfg.ReportURL
	return bs, nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if strings.Contains(k, "@") {
			k = strings.ToLower(k)
		}
		out[k] = v
	}
	return out
}

// Bridges are the configured bridges and the routes between them.
type Bridges struct {
	list      []bridge.Bridge
	interval  []time.Duration // minimum time between two requests, per bridge in list
	byName    map[string]bridge.Bridge
	routes    Routes
	members   map[string]string // lower-cased owner e-mail or name → bridge
	reportURL string
}

// NewBridges returns bridges routed by r, for tests and callers that build
// bridges themselves; interval is the minimum time between two requests.
func NewBridges(r Routes, interval time.Duration, bs ...bridge.Bridge) *Bridges {
	out := &Bridges{byName: map[string]bridge.Bridge{}, routes: r, members: map[string]string{}}
	for _, b := range bs {
		out.byName[b.Name()] = b
		out.list = append(out.list, b)
		out.interval = append(out.interval, interval)
	}
	for _, t := range r.Teams {
		for _, m := range t.Members {
			out.members[strings.ToLower(m)] = t.Bridge
		}
	}
	return out
}

// Route returns the bridge that serves a, "" for none.
func (b *Bridges) Route(a Action) string {
	if b == nil {
		return ""
	}
	if a.Owner != nil {
		if name, ok := b.members[strings.ToLower(a.Owner.Email)]; ok && a.Owner.Email != "" {
			return name
		}
		if name, ok := b.members[strings.ToLower(a.Owner.Name)]; ok && a.Owner.Name != "" {
			return name
		}
	}
	if name, ok := b.routes.Categories[string(a.Category)]; ok {
		return name
	}
	return b.routes.Default
}

// Get returns the bridge called name.
func (b *Bridges) Get(name string) (bridge.Bridge, bool) {
	if b == nil {
		return nil, false
	}
	br, ok := b.byName[name]
	return br, ok
}

// Names lists the configured bridges.
func (b *Bridges) Names() []string {
	if b == nil {
		return nil
	}
	out := make([]string, len(b.list))
	for i, br := range b.list {
		out[i] = br.Name()
	}
	return out
}

func (b *Bridges) report(incidentID string) string {
	if b == nil || b.reportURL == "" {
		return ""
	}
	return strings.ReplaceAll(b.reportURL, "{incident_id}", url.PathEscape(incidentID))
}
