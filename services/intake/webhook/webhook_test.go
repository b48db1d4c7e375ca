package webhook

import (
	"net/http"
	"strings"
	"testing"

	"github.com/afteraction/afteraction/pkg/events"
)

func TestSources(t *testing.T) {
	eq(t, "Sources()", Sources(), []string{"canonical", "github", "jira", "opsgenie", "pagerduty", "servicenow", "statuspage", "thehive"})
}

func TestUnknownSourceIs404(t *testing.T) {
	problem(t, DefaultConfig(), "zendesk", nil, []byte(`{}`), http.StatusNotFound, "-")
	problem(t, DefaultConfig(), "PagerDuty", nil, []byte(`{}`), http.StatusNotFound, "-")
}

func TestMalformedJSONIs400(t *testing.T) {
	bodies := map[string]string{
		"empty":    ``,
		"syntax":   `{"event": `,
		"trailing": `{"event": {}} {}`,
		"array":    `[{"event": {}}]`,
		"string":   `"incident.resolved"`,
	}
	for _, src := range Sources() {
		for name, body := range bodies {
			t.Run(src+"/"+name, func(t *testing.T) {
				problem(t, DefaultConfig(), src, githubHeader(), []byte(body), http.StatusBadRequest, "-")
			})
		}
	}
}

// A zero Config behaves as DefaultConfig: no secrets, default mappings.
func TestZeroConfigUsesDefaults(t *testing.T) {
	inc := closing(t, Config{}, SourcePagerDuty, nil, fixture(t, "pagerduty/incident_resolved.json"))
	eq(t, "severity", inc.Severity, events.SeverityCritical)
}

// Handle is deterministic: the same request gives the same incident, so a
// retried webhook revises nothing.
func TestDeterministic(t *testing.T) {
	a := closing(t, DefaultConfig(), SourceServiceNow, nil, fixture(t, "servicenow/incident_reclosed_outbound_rest.json"))
	b := closing(t, DefaultConfig(), SourceServiceNow, nil, fixture(t, "servicenow/incident_reclosed_outbound_rest.json"))
	eq(t, "second result", b, a)
}

// Two terminal events for one ticket map to the same (source, external id).
func TestTwoTerminalEventsSameExternalID(t *testing.T) {
	cases := []struct {
		source      string
		h           http.Header
		first, then string
		id          string
	}{
		{SourceJira, nil, "jira/issue_resolved_cloud.json", "jira/issue_closed_after_resolved.json", "INC-42"},
		{SourceServiceNow, nil, "servicenow/incident_resolved_table_api.json", "servicenow/incident_closed_display_all.json", "INC0010023"},
		{SourceGitHub, githubHeader(), "github/issues_closed.json", "github/issues_closed_again.json", "octo-org/payments#1347"},
		{SourceStatuspage, nil, "statuspage/incident_resolved.json", "statuspage/incident_reresolved_stale.json", "z3lct0r596n4"},
	}
	for _, c := range cases {
		t.Run(c.source, func(t *testing.T) {
			a := closing(t, DefaultConfig(), c.source, c.h, fixture(t, c.first))
			b := closing(t, DefaultConfig(), c.source, c.h, fixture(t, c.then))
			eq(t, "first external id", a.ExternalID, c.id)
			eq(t, "second external id", b.ExternalID, c.id)
			if !b.Timestamps.ClosedAt.After(a.Timestamps.ClosedAt) {
				t.Errorf("second closed_at %v is not after the first %v", b.Timestamps.ClosedAt, a.Timestamps.ClosedAt)
			}
		})
	}
}

func TestNonClosingEventsAreIgnored(t *testing.T) {
	cases := []struct {
		source, file string
		h            http.Header
		want         string
	}{
		{SourcePagerDuty, "pagerduty/incident_acknowledged.json", nil, `event_type "incident.acknowledged"`},
		{SourceJira, "jira/issue_priority_changed.json", nil, "without a status change"},
		{SourceServiceNow, "servicenow/incident_in_progress.json", nil, `state "2"`},
		{SourceOpsgenie, "opsgenie/create.json", nil, `action "Create"`},
		{SourceStatuspage, "statuspage/incident_identified.json", nil, `status "identified"`},
		{SourceGitHub, "github/issues_reopened.json", githubHeader(), `action "reopened"`},
		{SourceTheHive, "thehive/case_assigned_v5.json", nil, `status "InProgress"`},
	}
	for _, c := range cases {
		t.Run(c.source, func(t *testing.T) {
			got := ignored(t, DefaultConfig(), c.source, c.h, fixture(t, c.file))
			if !strings.HasPrefix(got, "not a closing event") || !strings.Contains(got, c.want) {
				t.Errorf("ignored = %q, want it to start with \"not a closing event\" and contain %q", got, c.want)
			}
		})
	}
	h := http.Header{}
	h.Set("X-GitHub-Event", "ping")
	ignored(t, DefaultConfig(), SourceGitHub, h, []byte(`{"zen":"Keep it logically awesome.","hook_id":1}`))
}

// Text is cleaned to what the schema and Postgres accept: NUL and control
// characters dropped, invalid UTF-8 repaired, long titles truncated.
func TestTextIsCleaned(t *testing.T) {
	body := mutate(t, "github/issues_closed.json", func(m map[string]any) {
		obj(m, "issue")["title"] = "Bad\x00 title\x07 " + strings.Repeat("é", 600)
		obj(m, "issue")["body"] = "line1\nline2\x00"
		obj(m, "issue")["html_url"] = "javascript:alert(1)"
		obj(m, "issue")["labels"] = []any{map[string]any{"name": strings.Repeat("x", 150)}}
	})
	inc := closing(t, DefaultConfig(), SourceGitHub, githubHeader(), body)
	if strings.ContainsAny(inc.Title, "\x00\x07") || len([]rune(inc.Title)) != 500 {
		t.Errorf("title not cleaned: %d runes %q…", len([]rune(inc.Title)), inc.Title[:20])
	}
	eq(t, "summary", inc.Summary, "line1\nline2")
	eq(t, "url", inc.URL, "")
	eq(t, "tag length", len([]rune(inc.Tags[0])), 100)
}
