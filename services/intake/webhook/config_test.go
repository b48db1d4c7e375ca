package webhook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/afteraction/afteraction/pkg/events"
)

func TestLoadConfig(t *testing.T) {
	mappings := filepath.Join(t.TempDir(), "mappings.json")
	err := os.WriteFile(mappings, []byte(`{
	  "servicenow": {"severity": {"3": "low", "9": "informational"}, "category": {"Network": "network_outage"}, "done_statuses": ["7"]},
	  "github": {"severity": {"priority/urgent": "critical"}, "default_severity": "low"}
	}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(env(map[string]string{
		"WEBHOOK_MAPPINGS_FILE":      mappings,
		"WEBHOOK_PAGERDUTY_SECRET":   "pd-secret",
		"WEBHOOK_SERVICENOW_TZ":      "Europe/Berlin",
		"WEBHOOK_JIRA_DONE_STATUSES": "Done, Won't Do ,",
	}))
	if err != nil {
		t.Fatal(err)
	}
	sn := cfg.Sources[SourceServiceNow]
	eq(t, "servicenow tz", sn.Location.String(), "Europe/Berlin")
	eq(t, "servicenow severity override", sn.Severity["3"], events.SeverityLow)
	eq(t, "servicenow severity added", sn.Severity["9"], events.SeverityInformational)
	eq(t, "servicenow severity default kept", sn.Severity["1"], events.SeverityCritical)
	eq(t, "servicenow category (key case-insensitive)", sn.Category["network"], "network_outage")
	eq(t, "servicenow done statuses replaced", sn.DoneStatuses, []string{"7"})
	eq(t, "github default severity", cfg.Sources[SourceGitHub].DefaultSeverity, events.SeverityLow)
	eq(t, "jira done statuses", cfg.Sources[SourceJira].DoneStatuses, []string{"Done", "Won't Do"})
	eq(t, "pagerduty secret", cfg.Sources[SourcePagerDuty].Secret, "pd-secret")
	if s := cfg.String(); strings.Contains(s, "pd-secret") || !strings.Contains(s, "pagerduty{secret=***") {
		t.Errorf("String() = %q: secret not masked", s)
	}

	// The overrides take effect: state 6 no longer closes, "9" maps.
	ignored(t, cfg, SourceServiceNow, nil, fixture(t, "servicenow/incident_resolved_table_api.json"))
	body := mutate(t, "servicenow/incident_reclosed_outbound_rest.json", func(m map[string]any) { m["priority"], m["category"] = "9", "network" })
	inc := closing(t, cfg, SourceServiceNow, nil, body)
	eq(t, "severity", inc.Severity, events.SeverityInformational)
	eq(t, "category", inc.Category, "network_outage")
}

func TestLoadConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]map[string]string{
		"unknown zone":       {"WEBHOOK_SERVICENOW_TZ": "Mars/Olympus"},
		"missing file":       {"WEBHOOK_MAPPINGS_FILE": filepath.Join(dir, "nope.json")},
		"bad JSON":           {"WEBHOOK_MAPPINGS_FILE": write("bad.json", `{`)},
		"unknown source":     {"WEBHOOK_MAPPINGS_FILE": write("src.json", `{"zendesk": {}}`)},
		"unknown field":      {"WEBHOOK_MAPPINGS_FILE": write("field.json", `{"jira": {"severities": {}}}`)},
		"invalid severity":   {"WEBHOOK_MAPPINGS_FILE": write("sev.json", `{"jira": {"severity": {"Highest": "urgent"}}}`)},
		"empty done list":    {"WEBHOOK_MAPPINGS_FILE": write("done.json", `{"jira": {"done_statuses": []}}`)},
		"bad base URL":       {"WEBHOOK_THEHIVE_BASE_URL": "thehive.local"},
		"invalid default":    {"WEBHOOK_MAPPINGS_FILE": write("def.json", `{"jira": {"default_severity": "p1"}}`)},
		"canonical mappings": {"WEBHOOK_MAPPINGS_FILE": write("canon.json", `{"canonical": {}}`)},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadConfig(env(e)); err == nil {
				t.Fatal("LoadConfig succeeded, want an error")
			}
		})
	}
}
