package tracker_test

import (
	"strings"
	"testing"
	_ "time/tzdata" // the zones below resolve without a system zone database

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/tracker"
)

func TestLoadConfigTimezone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value    string
		wantZone string
		wantErr  bool
	}{
		{"", "UTC", false},
		{"UTC", "UTC", false},
		{"Europe/Berlin", "Europe/Berlin", false},
		{"America/Los_Angeles", "America/Los_Angeles", false},
		{"Mars/Olympus_Mons", "", true},
		{"+02:00", "", true},
		{"Local", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			cfg, err := tracker.LoadConfig(func(k string) string {
				if k == "TRACKER_TIMEZONE" {
					return tt.value
				}
				return ""
			})
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "TRACKER_TIMEZONE") {
					t.Fatalf("err = %v, want one naming TRACKER_TIMEZONE", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Timezone.String() != tt.wantZone {
				t.Errorf("zone = %s, want %s", cfg.Timezone, tt.wantZone)
			}
		})
	}
}

func TestLoadConfigBridges(t *testing.T) {
	t.Parallel()
	env := map[string]string{"GH_TOKEN": "ghp", "HOOK_SECRET": "s", "JIRA_TOKEN": "j", "GL_TOKEN": "g"}
	valid := `{"bridges":[
		{"name":"hook","kind":"webhook","url":"http://127.0.0.1:9/hook","secret_env":"HOOK_SECRET"},
		{"name":"github","kind":"github","repo":"acme/security","token_env":"GH_TOKEN","assignees":{"Zoe@Example.com":"zoe"}},
		{"name":"jira","kind":"jira","base_url":"https://acme.atlassian.net","cloud":true,"email":"bot@acme.example","project":"SEC","token_env":"JIRA_TOKEN","status_names":{"Verified":"done"}},
		{"name":"gitlab","kind":"gitlab","project":"acme/security","token_env":"GL_TOKEN"}],
	 "routes":{"default":"hook","categories":{"tooling":"github"},"teams":{"platform":{"bridge":"jira","members":["ops@acme.example"]}}}}`
	tests := []struct {
		name, doc, want string
	}{
		{"valid", valid, ""},
		{"unknown kind", `{"bridges":[{"name":"x","kind":"linear"}]}`, "bridges[0].kind"},
		{"bad name", `{"bridges":[{"name":"X Y","kind":"webhook"}]}`, "bridges[0].name"},
		{"missing secret", `{"bridges":[{"name":"h","kind":"webhook","url":"http://x/","secret_env":"NOPE"}]}`, "bridges[0].secret_env"},
		{"bad repo", `{"bridges":[{"name":"g","kind":"github","repo":"nope","token_env":"GH_TOKEN"}]}`, "bridges[0].repo"},
		{"bad url", `{"bridges":[{"name":"h","kind":"webhook","url":"ftp://x","secret_env":"HOOK_SECRET"}]}`, "bridges[0].url"},
		{"unknown route", `{"bridges":[],"routes":{"default":"ghost"}}`, "routes.default"},
		{"unknown category", `{"bridges":[{"name":"h","kind":"webhook","url":"http://x/","secret_env":"HOOK_SECRET"}],"routes":{"categories":{"cooking":"h"}}}`, "routes.categories.cooking"},
		{"bad status name", `{"bridges":[{"name":"j","kind":"jira","base_url":"https://x","project":"P","token_env":"JIRA_TOKEN","status_names":{"Verified":"finished"}}]}`, "status_names.Verified"},
		{"unknown field", `{"bridges":[],"colour":"red"}`, "colour"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := tracker.LoadConfig(func(k string) string {
				if k == "TRACKER_BRIDGES" {
					return tt.doc
				}
				return env[k]
			})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(cfg.Bridges.Names(), ","); got != "hook,github,jira,gitlab" {
					t.Errorf("bridges %s", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "TRACKER_BRIDGES") {
				t.Errorf("err = %v, want one naming TRACKER_BRIDGES and %s", err, tt.want)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	bs := tracker.NewBridges(tracker.Routes{Default: "hook", Categories: map[string]string{"tooling": "github"},
		Teams: map[string]tracker.Team{"platform": {Bridge: "jira", Members: []string{"ops@acme.example", "Rita Ops"}}}}, 0)
	tests := []struct {
		a    tracker.Action
		want string
	}{
		{tracker.Action{Category: "tooling", Owner: &events.Owner{Name: "x", Email: "OPS@acme.example"}}, "jira"},
		{tracker.Action{Category: "tooling", Owner: &events.Owner{Name: "Rita Ops"}}, "jira"},
		{tracker.Action{Category: "tooling", Owner: &events.Owner{Name: "Other"}}, "github"},
		{tracker.Action{Category: "training"}, "hook"},
	}
	for _, tt := range tests {
		if got := bs.Route(tt.a); got != tt.want {
			t.Errorf("route of %+v = %q, want %q", tt.a, got, tt.want)
		}
	}
}

func TestLoadConfigDuePolicy(t *testing.T) {
	t.Parallel()
	cfg, err := tracker.LoadConfig(func(k string) string {
		if k == "TRACKER_DUE_DAYS" {
			return "critical=3, high=10, none=20"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.DuePolicy.DueDate(events.PriorityCritical, "2026-12-30"); got != "2027-01-02" {
		t.Errorf("critical due %s", got)
	}
	if got := cfg.DuePolicy.DueDate("", "2026-01-01"); got != "2026-01-21" {
		t.Errorf("no priority due %s", got)
	}
	if got := cfg.DuePolicy.DueDate(events.PriorityLow, "2026-01-01"); got != "" {
		t.Errorf("low (not in the policy) due %q", got)
	}
	for _, bad := range []string{"urgent=3", "high=0", "high", "low=abc"} {
		if _, err := tracker.LoadConfig(func(k string) string {
			if k == "TRACKER_DUE_DAYS" {
				return bad
			}
			return ""
		}); err == nil || !strings.Contains(err.Error(), "TRACKER_DUE_DAYS") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}
