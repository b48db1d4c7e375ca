package webhook

import (
	"net/http"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

func TestPagerDutyResolved(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourcePagerDuty, nil, fixture(t, "pagerduty/incident_resolved.json"))
	eq(t, "source", inc.Source, "pagerduty")
	eq(t, "external_id", inc.ExternalID, "PGR0VU2")
	eq(t, "title", inc.Title, "A little bump in the road")
	eq(t, "url", inc.URL, "https://acme.pagerduty.com/incidents/PGR0VU2")
	eq(t, "severity", inc.Severity, events.SeverityCritical) // P1
	eq(t, "timestamps", inc.Timestamps, events.Timestamps{
		DetectedAt: ts("2026-11-20T15:16:27Z"),
		ResolvedAt: ts("2026-11-20T18:45:22.169Z"),
		ClosedAt:   *ts("2026-11-20T18:45:22.169Z"),
	})
	eq(t, "people", inc.People, []events.Person{
		{Name: "User 123", Role: events.RoleResponder},
		{Name: "Tenex Engineer", Role: events.RoleResponder},
	})
	eq(t, "assets", inc.AffectedAssets, []events.Asset{{Name: "API Service", Kind: "service", Identifier: "PF9KMXH"}})
	eq(t, "links", inc.Links, []events.Link{{Title: "PagerDuty incident #2 (API)", URL: "https://api.pagerduty.com/incidents/PGR0VU2"}})
	eq(t, "tags", inc.Tags, []string{"team:Engineering"})
	eq(t, "timeline", inc.Timeline, []events.TimelineEntry{{At: *ts("2026-11-20T18:45:22.169Z"), Actor: "Tenex Engineer",
		Phase: events.PhaseRecovery, Action: "Incident resolved in PagerDuty"}})
	eq(t, "notes", inc.Notes, []string(nil))
}

func TestPagerDutyNullPriority(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourcePagerDuty, nil, fixture(t, "pagerduty/incident_resolved_no_priority.json"))
	eq(t, "severity from urgency", inc.Severity, events.SeverityLow)
	hasNote(t, inc, "no usable priority at /event/data/priority/summary")

	body := mutate(t, "pagerduty/incident_resolved_no_priority.json", func(m map[string]any) {
		delete(obj(m, "event", "data"), "urgency")
	})
	inc = closing(t, DefaultConfig(), SourcePagerDuty, nil, body)
	eq(t, "default severity", inc.Severity, events.SeverityMedium)
	hasNote(t, inc, "used the default severity medium")
}

func TestPagerDutyIncomplete(t *testing.T) {
	body := mutate(t, "pagerduty/incident_resolved.json", func(m map[string]any) {
		delete(obj(m, "event", "data"), "id")
		obj(m, "event", "data")["title"] = map[string]any{"text": "x"}
	})
	p := problem(t, DefaultConfig(), SourcePagerDuty, nil, body, http.StatusUnprocessableEntity, "/event/data/id")
	problem(t, DefaultConfig(), SourcePagerDuty, nil, body, http.StatusUnprocessableEntity, "/event/data/title")
	if len(p.Errors) != 2 {
		t.Errorf("errors = %+v, want both fields", p.Errors)
	}
	problem(t, DefaultConfig(), SourcePagerDuty, nil, []byte(`{"event":{}}`), http.StatusUnprocessableEntity, "/event/event_type")
}

func TestJiraCloudResolved(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceJira, nil, fixture(t, "jira/issue_resolved_cloud.json"))
	eq(t, "source", inc.Source, "jira")
	eq(t, "external_id", inc.ExternalID, "INC-42")
	eq(t, "title", inc.Title, "Phishing campaign against finance mailboxes")
	eq(t, "summary", inc.Summary, "Several finance users received credential-harvesting e-mails; two entered credentials.")
	eq(t, "url", inc.URL, "https://acme.atlassian.net/browse/INC-42")
	eq(t, "severity", inc.Severity, events.SeverityHigh)
	eq(t, "category", inc.Category, "security")
	// created "2026-11-20T10:00:00.000-0800": an offset without a colon.
	eq(t, "timestamps", inc.Timestamps, events.Timestamps{
		ReportedAt: ts("2026-11-20T18:00:00Z"),
		ResolvedAt: ts("2026-11-21T00:00:00Z"),
		ClosedAt:   *ts("2026-11-21T00:00:00Z"),
	})
	eq(t, "people", inc.People, []events.Person{
		{Name: "Grace Hopper", Email: "grace@acme.example", Role: events.RoleResponder},
		{Name: "Alan Turing", Email: "alan@acme.example", Role: events.RoleReporter},
	})
	eq(t, "tags", inc.Tags, []string{"phishing", "finance"})
	eq(t, "assets", inc.AffectedAssets, []events.Asset{{Name: "Mail gateway", Kind: "component", Identifier: "10100"}})
	eq(t, "timeline", inc.Timeline, []events.TimelineEntry{{At: *ts("2026-11-21T00:00:00Z"), Actor: "Mia Krystof",
		Phase: events.PhasePostIncident, Action: "Status changed from In Progress to Resolved", Detail: "Resolution: Done"}})
	eq(t, "notes", inc.Notes, []string(nil))
}

func TestJiraResolvedThenClosed(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceJira, nil, fixture(t, "jira/issue_closed_after_resolved.json"))
	eq(t, "external_id", inc.ExternalID, "INC-42")
	eq(t, "resolved_at keeps the resolution", inc.Timestamps.ResolvedAt, ts("2026-11-21T00:00:00Z"))
	eq(t, "closed_at is the Closed transition", inc.Timestamps.ClosedAt, *ts("2026-11-22T00:00:00Z"))
}

func TestJiraReclosedStaleResolutionDate(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceJira, nil, fixture(t, "jira/issue_reclosed_stale_resolutiondate.json"))
	eq(t, "resolved_at", inc.Timestamps.ResolvedAt, ts("2026-11-25T00:00:00Z"))
	eq(t, "closed_at", inc.Timestamps.ClosedAt, *ts("2026-11-25T00:00:00Z"))
	hasNote(t, inc, "/issue/fields/resolutiondate (2026-11-21T00:00:00Z) predates the status transition")
	eq(t, "severity (priority null)", inc.Severity, events.SeverityMedium)
	hasNote(t, inc, "no priority or severity given (/issue/fields/priority/name)")
}

func TestJiraServerClosed(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceJira, nil, fixture(t, "jira/issue_closed_server.json"))
	eq(t, "external_id", inc.ExternalID, "MYPROJECT-154")
	eq(t, "url under a context path", inc.URL, "http://jira.server.my/jira/browse/MYPROJECT-154")
	eq(t, "severity (Blocker)", inc.Severity, events.SeverityCritical)
	eq(t, "category (Bug is unmapped)", inc.Category, "")
	eq(t, "closed_at (epoch ms /timestamp)", inc.Timestamps.ClosedAt, *ts("2016-04-21T22:30:20.031Z"))
	eq(t, "reported_at (+0000)", inc.Timestamps.ReportedAt, ts("2016-04-21T09:05:11Z"))
}

func TestJiraDoneStatuses(t *testing.T) {
	// A custom done status by name, from the configuration.
	body := mutate(t, "jira/issue_resolved_cloud.json", func(m map[string]any) {
		obj(m, "issue", "fields", "status")["name"] = "Mitigated"
		obj(m, "issue", "fields", "status", "statusCategory")["key"] = "indeterminate"
		obj(m, "changelog")["items"] = []any{map[string]any{"field": "status", "fromString": "In Progress", "toString": "Mitigated"}}
	})
	ignored(t, DefaultConfig(), SourceJira, nil, body)
	cfg, err := LoadConfig(env(map[string]string{"WEBHOOK_JIRA_DONE_STATUSES": "Done, Mitigated"}))
	if err != nil {
		t.Fatal(err)
	}
	closing(t, cfg, SourceJira, nil, body)

	// An unlisted status name whose category is done closes too.
	body = mutate(t, "jira/issue_resolved_cloud.json", func(m map[string]any) {
		obj(m, "issue", "fields", "status")["name"] = "Won't Fix"
		obj(m, "changelog")["items"] = []any{map[string]any{"field": "status", "fromString": "Open", "toString": "Won't Fix"}}
	})
	closing(t, DefaultConfig(), SourceJira, nil, body)

	// No changelog at all (e.g. Jira Automation): the status decides, with a note.
	body = mutate(t, "jira/issue_resolved_cloud.json", func(m map[string]any) { delete(m, "changelog") })
	hasNote(t, closing(t, DefaultConfig(), SourceJira, nil, body), "no changelog")

	// Other webhook events close nothing.
	body = mutate(t, "jira/issue_resolved_cloud.json", func(m map[string]any) { m["webhookEvent"] = "comment_created" })
	ignored(t, DefaultConfig(), SourceJira, nil, body)
}

func TestJiraDescriptionADF(t *testing.T) {
	body := mutate(t, "jira/issue_resolved_cloud.json", func(m map[string]any) {
		obj(m, "issue", "fields")["description"] = map[string]any{"type": "doc", "version": 1, "content": []any{
			map[string]any{"type": "paragraph", "content": []any{map[string]any{"type": "text", "text": "First paragraph."}}},
			map[string]any{"type": "paragraph", "content": []any{map[string]any{"type": "text", "text": "Second."}}},
		}}
	})
	eq(t, "summary", closing(t, DefaultConfig(), SourceJira, nil, body).Summary, "First paragraph.\nSecond.")
}

func TestServiceNowResolvedTableAPI(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceServiceNow, nil, fixture(t, "servicenow/incident_resolved_table_api.json"))
	eq(t, "source", inc.Source, "servicenow")
	eq(t, "external_id", inc.ExternalID, "INC0010023")
	eq(t, "title", inc.Title, "Email server unreachable for all users")
	eq(t, "summary", inc.Summary, "Exchange cluster node 2 ran out of disk; mail queue stalled.")
	eq(t, "url", inc.URL, "https://dev12345.service-now.com/nav_to.do?uri=incident.do%3Fsys_id%3D9d385017c611228701d22104cc95c371")
	eq(t, "links", inc.Links, []events.Link{{Title: "ServiceNow record (Table API)",
		URL: "https://dev12345.service-now.com/api/now/table/incident/9d385017c611228701d22104cc95c371"}})
	eq(t, "severity (priority \"1\")", inc.Severity, events.SeverityCritical)
	eq(t, "category", inc.Category, "outage")
	eq(t, "subcategory", inc.Subcategory, "email")
	eq(t, "timestamps", inc.Timestamps, events.Timestamps{
		ReportedAt: ts("2026-11-20T09:14:02Z"),
		ResolvedAt: ts("2026-11-20T17:01:12Z"),
		ClosedAt:   *ts("2026-11-20T17:01:12Z"), // state 6: closed_at is "", the resolution closes
	})
	eq(t, "impact", inc.Impact, &events.Impact{Final: &events.ImpactAssessment{Level: events.ImpactHigh, Description: "ServiceNow impact 1"}})
	eq(t, "people (references without display values)", inc.People, []events.Person(nil))
	eq(t, "timeline", inc.Timeline, []events.TimelineEntry{{At: *ts("2026-11-20T17:01:12Z"), Phase: events.PhaseRecovery,
		Action: "Resolved: Solved (Permanently)", Detail: "Extended the log volume and restarted the transport service."}})
	hasNote(t, inc, "ServiceNow sys_id 9d385017c611228701d22104cc95c371")
	hasNote(t, inc, "references without a display value")
	hasNote(t, inc, "times without a zone were interpreted in UTC")
}

func TestServiceNowClosedDisplayValueAll(t *testing.T) {
	cfg := DefaultConfig()
	sc := cfg.Sources[SourceServiceNow]
	sc.Location = mustZone(t, "Europe/Berlin")
	cfg.Sources[SourceServiceNow] = sc
	inc := closing(t, cfg, SourceServiceNow, nil, fixture(t, "servicenow/incident_closed_display_all.json"))
	eq(t, "external_id", inc.ExternalID, "INC0010023")
	// The object form's "value" is UTC whatever the configured zone.
	eq(t, "timestamps", inc.Timestamps, events.Timestamps{
		ReportedAt: ts("2026-11-20T09:14:02Z"),
		ResolvedAt: ts("2026-11-20T17:01:12Z"),
		ClosedAt:   *ts("2026-11-23T09:00:00Z"),
	})
	eq(t, "people", inc.People, []events.Person{
		{Name: "Beth Anglin", Role: events.RoleResponder, Team: "Network"},
		{Name: "Fred Luddy", Role: events.RoleReporter},
		{Name: "System Administrator", Role: events.RoleReporter},
	})
	eq(t, "assets", inc.AffectedAssets, []events.Asset{
		{Name: "EXCH-SJC-02", Kind: "configuration_item", Identifier: "b0c25d1bc0a800090168be1bfcdcd759"},
		{Name: "Email", Kind: "service", Identifier: "27d32778c0a8000b00db970eeaa60f16"},
	})
	eq(t, "category", inc.Category, "outage")
	eq(t, "subcategory", inc.Subcategory, "Email")
	for _, n := range inc.Notes {
		if n == "times without a zone were interpreted in Europe/Berlin" {
			t.Errorf("UTC values were noted as zone-less: %q", inc.Notes)
		}
	}
}

func TestServiceNowReclosedOutboundREST(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceServiceNow, nil, fixture(t, "servicenow/incident_reclosed_outbound_rest.json"))
	eq(t, "external_id", inc.ExternalID, "INC0010077")
	eq(t, "url (no instance address known)", inc.URL, "")
	eq(t, "resolved_at (stale, replaced by the last update)", inc.Timestamps.ResolvedAt, ts("2026-11-10T09:30:00Z"))
	eq(t, "closed_at", inc.Timestamps.ClosedAt, *ts("2026-11-10T09:30:00Z"))
	hasNote(t, inc, "/resolved_at (2026-11-03T12:00:00Z) predates the reopen")
	hasNote(t, inc, "reopened 1 time(s)")
	eq(t, "severity (priority \"\")", inc.Severity, events.SeverityMedium)
	hasNote(t, inc, "no priority or severity given (/priority)")
	eq(t, "people (plain strings, empty references)", inc.People, []events.Person{{Name: "Beth Anglin", Role: events.RoleResponder, Team: "Network"}})
	eq(t, "category (empty)", inc.Category, "")
}

func TestServiceNowZone(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{"WEBHOOK_SERVICENOW_TZ": "Europe/Berlin", "WEBHOOK_SERVICENOW_BASE_URL": "https://acme.service-now.com/"}))
	if err != nil {
		t.Fatal(err)
	}
	inc := closing(t, cfg, SourceServiceNow, nil, fixture(t, "servicenow/incident_reclosed_outbound_rest.json"))
	// "2026-11-10 09:30:00" in Berlin (CET, +01:00).
	eq(t, "closed_at", inc.Timestamps.ClosedAt, *ts("2026-11-10T08:30:00Z"))
	eq(t, "opened_at", inc.Timestamps.ReportedAt, ts("2026-11-02T07:00:00Z"))
	eq(t, "url from the configured base", inc.URL, "https://acme.service-now.com/nav_to.do?uri=incident.do%3Fsys_id%3Da83820b58f723300e7e16c7827bdeed2")
	hasNote(t, inc, "times without a zone were interpreted in Europe/Berlin")
}

func TestServiceNowIncomplete(t *testing.T) {
	body := mutate(t, "servicenow/incident_reclosed_outbound_rest.json", func(m map[string]any) {
		m["number"] = ""
		m["closed_at"] = "next tuesday"
	})
	problem(t, DefaultConfig(), SourceServiceNow, nil, body, http.StatusUnprocessableEntity, "/number")
	problem(t, DefaultConfig(), SourceServiceNow, nil, body, http.StatusUnprocessableEntity, "/closed_at")
	problem(t, DefaultConfig(), SourceServiceNow, nil, []byte(`{"number":"INC1"}`), http.StatusUnprocessableEntity, "/state")
}

func TestOpsgenieClose(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceOpsgenie, nil, fixture(t, "opsgenie/close.json"))
	eq(t, "source", inc.Source, "opsgenie")
	eq(t, "external_id", inc.ExternalID, "052652ac-5d1c-464a-812a-7dd18bbfba8c")
	eq(t, "title", inc.Title, "Primary database replication lag above 300s")
	eq(t, "severity (P2)", inc.Severity, events.SeverityHigh)
	// createdAt in ms, updatedAt in ns: both exact.
	eq(t, "timestamps", inc.Timestamps, events.Timestamps{
		DetectedAt: ts("2026-11-20T22:00:00Z"),
		ResolvedAt: ts("2026-11-21T00:00:00.123456789Z"),
		ClosedAt:   *ts("2026-11-21T00:00:00.123456789Z"),
	})
	eq(t, "people", inc.People, []events.Person{
		{Name: "oncall-dba@ifountain.com", Email: "oncall-dba@ifountain.com", Role: events.RoleResponder},
		{Name: "fili@ifountain.com", Email: "fili@ifountain.com", Role: events.RoleResponder},
	})
	eq(t, "tags", inc.Tags, []string{"database", "prod", "team:dba"})
	eq(t, "assets", inc.AffectedAssets, []events.Asset{{Name: "db-prod-01", Kind: "entity"}})
	eq(t, "timeline", inc.Timeline, []events.TimelineEntry{{At: *ts("2026-11-21T00:00:00.123456789Z"), Actor: "fili@ifountain.com",
		Phase: events.PhaseRecovery, Action: "Alert closed in Opsgenie", Detail: "Replica caught up after vacuum finished."}})
	hasNote(t, inc, `tinyId "23"`)
}

func TestOpsgenieStringsAndMissingTime(t *testing.T) {
	body := mutate(t, "opsgenie/close.json", func(m map[string]any) {
		obj(m, "alert")["createdAt"] = "1795212000000"
		obj(m, "alert")["updatedAt"] = "1795219200123456789"
		obj(m, "alert")["priority"] = nil
	})
	inc := closing(t, DefaultConfig(), SourceOpsgenie, nil, body)
	eq(t, "detected_at", inc.Timestamps.DetectedAt, ts("2026-11-20T22:00:00Z"))
	eq(t, "closed_at", inc.Timestamps.ClosedAt, *ts("2026-11-21T00:00:00.123456789Z"))
	eq(t, "severity", inc.Severity, events.SeverityMedium)

	body = mutate(t, "opsgenie/close.json", func(m map[string]any) { delete(obj(m, "alert"), "updatedAt") })
	inc = closing(t, DefaultConfig(), SourceOpsgenie, nil, body)
	eq(t, "closed_at falls back to receivedAt", inc.Timestamps.ClosedAt, received)
	hasNote(t, inc, "resolution time missing (/alert/updatedAt); closed_at is the time the webhook was received")
}

func TestStatuspageResolved(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceStatuspage, nil, fixture(t, "statuspage/incident_resolved.json"))
	eq(t, "source", inc.Source, "statuspage")
	eq(t, "external_id", inc.ExternalID, "z3lct0r596n4")
	eq(t, "title", inc.Title, "Database query delays")
	eq(t, "summary (latest update)", inc.Summary, "The database issue is resolved.")
	eq(t, "url", inc.URL, "http://stspg.io/646947c1e")
	eq(t, "severity (impact major)", inc.Severity, events.SeverityHigh)
	eq(t, "timestamps", inc.Timestamps, events.Timestamps{
		StartedAt:   ts("2026-11-20T07:20:00Z"),
		ReportedAt:  ts("2026-11-20T07:32:00.507Z"),
		RecoveredAt: ts("2026-11-20T07:35:10Z"),
		ResolvedAt:  ts("2026-11-20T07:37:20.785Z"),
		ClosedAt:    *ts("2026-11-20T07:37:20.785Z"),
	})
	eq(t, "assets", inc.AffectedAssets, []events.Asset{{Name: "Management Portal (example)", Kind: "component", Identifier: "zvdm6f7gf76j"}})
	eq(t, "timeline length", len(inc.Timeline), 2)
	eq(t, "timeline[0]", inc.Timeline[0], events.TimelineEntry{At: *ts("2026-11-20T07:37:20.785Z"), Phase: events.PhaseCommunication,
		Action: "Status page update: resolved", Detail: "The database issue is resolved."})
	eq(t, "notes", inc.Notes, []string(nil))
}

func TestStatuspageReresolvedAndMissing(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceStatuspage, nil, fixture(t, "statuspage/incident_reresolved_stale.json"))
	eq(t, "closed_at (latest resolved update)", inc.Timestamps.ClosedAt, *ts("2026-11-20T10:15:00Z"))
	hasNote(t, inc, "/incident/resolved_at (2026-11-20T07:37:20Z) predates the latest resolved update")

	body := mutate(t, "statuspage/incident_resolved.json", func(m map[string]any) {
		obj(m, "incident")["resolved_at"] = nil
		obj(m, "incident")["incident_updates"] = []any{}
	})
	inc = closing(t, DefaultConfig(), SourceStatuspage, nil, body)
	eq(t, "closed_at", inc.Timestamps.ClosedAt, received)
	hasNote(t, inc, "resolution time missing (/incident/resolved_at)")

	body = mutate(t, "statuspage/incident_resolved.json", func(m map[string]any) {
		obj(m, "incident")["scheduled_for"] = "2026-11-20T07:00:00Z"
	})
	ignored(t, DefaultConfig(), SourceStatuspage, nil, body)
	ignored(t, DefaultConfig(), SourceStatuspage, nil, []byte(`{"meta":{},"page":{},"component_update":{"new_status":"operational"}}`))
}

// impact "none" is Statuspage's unrated default, not a rating of a
// published, user-facing incident: the default severity applies, noted.
func TestStatuspageImpactNone(t *testing.T) {
	body := mutate(t, "statuspage/incident_resolved.json", func(m map[string]any) { obj(m, "incident")["impact"] = "none" })
	inc := closing(t, DefaultConfig(), SourceStatuspage, nil, body)
	eq(t, "severity", inc.Severity, events.SeverityMedium)
	hasNote(t, inc, `/incident/impact is "none" (not rated on the status page); used the default severity medium`)

	body = mutate(t, "statuspage/incident_resolved.json", func(m map[string]any) { obj(m, "incident")["impact_override"] = "none" })
	inc = closing(t, DefaultConfig(), SourceStatuspage, nil, body)
	eq(t, "severity (override none)", inc.Severity, events.SeverityMedium)
	hasNote(t, inc, `/incident/impact_override is "none"`)

	// An operator who maps "none" explicitly gets what they mapped.
	cfg := DefaultConfig()
	cfg.Sources[SourceStatuspage].Severity["none"] = events.SeverityLow
	body = mutate(t, "statuspage/incident_resolved.json", func(m map[string]any) { obj(m, "incident")["impact"] = "none" })
	eq(t, "severity (mapped)", closing(t, cfg, SourceStatuspage, nil, body).Severity, events.SeverityLow)
}

// A backfilled incident was entered after it ended: its created_at is no
// report time (taken as one, the closure would precede the report).
func TestStatuspageBackfilled(t *testing.T) {
	body := mutate(t, "statuspage/incident_resolved.json", func(m map[string]any) {
		obj(m, "incident")["backfilled"] = true
		obj(m, "incident")["created_at"] = "2026-11-25T09:00:00Z"
	})
	inc := closing(t, DefaultConfig(), SourceStatuspage, nil, body)
	eq(t, "reported_at", inc.Timestamps.ReportedAt, (*time.Time)(nil))
	hasNote(t, inc, "created_at is not taken as the report time")
}

func TestGitHubClosed(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceGitHub, githubHeader(), fixture(t, "github/issues_closed.json"))
	eq(t, "source", inc.Source, "github")
	eq(t, "external_id", inc.ExternalID, "octo-org/payments#1347")
	eq(t, "title", inc.Title, "Card payments declined after certificate rotation")
	eq(t, "summary", inc.Summary, "Payments to the acquirer failed with TLS handshake errors after the 08:00 rotation.")
	eq(t, "url", inc.URL, "https://github.com/octo-org/payments/issues/1347")
	eq(t, "severity (sev2, severity:high)", inc.Severity, events.SeverityHigh)
	eq(t, "category (label incident)", inc.Category, "outage")
	eq(t, "timestamps", inc.Timestamps, events.Timestamps{
		ReportedAt: ts("2026-11-20T08:12:44Z"),
		ResolvedAt: ts("2026-11-20T11:40:02Z"),
		ClosedAt:   *ts("2026-11-20T11:40:02Z"),
	})
	eq(t, "people", inc.People, []events.Person{
		{Name: "hubot", Role: events.RoleResponder},
		{Name: "monalisa", Role: events.RoleResponder},
		{Name: "octocat", Role: events.RoleReporter},
	})
	eq(t, "tags", inc.Tags, []string{"incident", "sev2", "severity:high"})
	eq(t, "timeline", inc.Timeline, []events.TimelineEntry{{At: *ts("2026-11-20T11:40:02Z"), Actor: "hubot",
		Phase: events.PhasePostIncident, Action: "Issue closed"}})
	eq(t, "notes", inc.Notes, []string(nil))
}

func TestGitHubLabelsAndFallbacks(t *testing.T) {
	labels := func(names ...string) []any {
		out := make([]any, len(names))
		for i, n := range names {
			out[i] = map[string]any{"name": n}
		}
		return out
	}
	for _, c := range []struct {
		labels []any
		want   events.Severity
	}{
		{labels("P1"), events.SeverityCritical},
		{labels("sev3", "severity:low"), events.SeverityMedium}, // the most severe wins
		{labels("Severity:High"), events.SeverityHigh},
		{labels("bug"), events.SeverityMedium},
		{labels(), events.SeverityMedium},
	} {
		body := mutate(t, "github/issues_closed.json", func(m map[string]any) { obj(m, "issue")["labels"] = c.labels })
		eq(t, "severity", closing(t, DefaultConfig(), SourceGitHub, githubHeader(), body).Severity, c.want)
	}
	body := mutate(t, "github/issues_closed.json", func(m map[string]any) {
		obj(m, "issue")["labels"] = labels("category:phishing")
		obj(m, "issue")["number"] = "1347" // sent as a string
		obj(m, "issue")["closed_at"] = nil
		delete(m, "repository")
	})
	inc := closing(t, DefaultConfig(), SourceGitHub, githubHeader(), body)
	eq(t, "category", inc.Category, "phishing")
	eq(t, "external_id (repo from repository_url)", inc.ExternalID, "octo-org/payments#1347")
	eq(t, "closed_at", inc.Timestamps.ClosedAt, received)
	hasNote(t, inc, "resolution time missing (/issue/closed_at)")
	hasNote(t, inc, "used the default severity medium")

	problem(t, DefaultConfig(), SourceGitHub, nil, fixture(t, "github/issues_closed.json"), http.StatusUnprocessableEntity, "X-GitHub-Event")
	h := http.Header{}
	h.Set("X-GitHub-Event", "pull_request")
	ignored(t, DefaultConfig(), SourceGitHub, h, fixture(t, "github/issues_closed.json"))
}

func TestTheHiveClosedV5(t *testing.T) {
	cfg, err := LoadConfig(env(map[string]string{"WEBHOOK_THEHIVE_BASE_URL": "https://thehive.soc.example"}))
	if err != nil {
		t.Fatal(err)
	}
	inc := closing(t, cfg, SourceTheHive, nil, fixture(t, "thehive/case_closed_v5.json"))
	eq(t, "source", inc.Source, "thehive")
	eq(t, "external_id", inc.ExternalID, "~4264")
	eq(t, "title", inc.Title, "Emotet infection on finance workstations")
	eq(t, "summary", inc.Summary, "EDR flagged Emotet loader on FIN-WS-031 and two neighbours.")
	eq(t, "url", inc.URL, "https://thehive.soc.example/cases/~4264/details")
	eq(t, "severity (3)", inc.Severity, events.SeverityHigh)
	eq(t, "timestamps", inc.Timestamps, events.Timestamps{
		StartedAt:  ts("2026-11-20T01:00:00Z"),
		ReportedAt: ts("2026-11-20T02:00:00Z"),
		ResolvedAt: ts("2026-11-21T00:00:00Z"),
		ClosedAt:   *ts("2026-11-21T00:00:00Z"),
	})
	eq(t, "people", inc.People, []events.Person{
		{Name: "lead@soc.example", Email: "lead@soc.example", Role: events.RoleResponder},
		{Name: "analyst@soc.example", Email: "analyst@soc.example", Role: events.RoleReporter},
	})
	eq(t, "tags", inc.Tags, []string{"malware", "emotet", "resolution:TruePositive"})
	eq(t, "impact", inc.Impact, &events.Impact{Final: &events.ImpactAssessment{Description: "TheHive impact status WithImpact"}})
	eq(t, "timeline", inc.Timeline, []events.TimelineEntry{{At: *ts("2026-11-21T00:00:00Z"), Actor: "lead@soc.example",
		Phase: events.PhasePostIncident, Action: "Case closed as TruePositive",
		Detail: "Malicious macro document; 3 hosts re-imaged, credentials rotated."}})
	eq(t, "notes", inc.Notes, []string{"TheHive case #1042"})
}

func TestTheHiveResolvedV4(t *testing.T) {
	// TheHive 4: status Resolved + resolutionStatus; severity and endDate sent as strings.
	inc := closing(t, DefaultConfig(), SourceTheHive, nil, fixture(t, "thehive/case_resolved_v4.json"))
	eq(t, "external_id", inc.ExternalID, "~41160")
	eq(t, "severity (\"2\")", inc.Severity, events.SeverityMedium)
	eq(t, "closed_at", inc.Timestamps.ClosedAt, *ts("2026-11-21T00:00:00Z"))
	eq(t, "tags", inc.Tags, []string{"powershell", "resolution:FalsePositive"})
	eq(t, "impact", inc.Impact, &events.Impact{Final: &events.ImpactAssessment{Level: events.ImpactNone, Description: "TheHive impact status NoImpact"}})
	eq(t, "people", inc.People, []events.Person{{Name: "analyst@thehive.local", Email: "analyst@thehive.local", Role: events.RoleResponder},
		{Name: "analyst@thehive.local", Email: "analyst@thehive.local", Role: events.RoleReporter}})
}

// TheHive 5's format version 1 is the audit record itself: "action" for
// "operation", and the audit's own _id, _createdAt, _createdBy on the envelope.
func TestTheHiveFormat1(t *testing.T) {
	v0 := closing(t, DefaultConfig(), SourceTheHive, nil, fixture(t, "thehive/case_closed_v5.json"))
	v1 := closing(t, DefaultConfig(), SourceTheHive, nil, fixture(t, "thehive/case_closed_v5_format1.json"))
	eq(t, "format 1 maps like the same close in format 0", v1, v0)

	// The envelope's _id is the audit's, never the case's.
	body := mutate(t, "thehive/case_closed_v5_format1.json", func(m map[string]any) { delete(obj(m, "object"), "_id") })
	eq(t, "external_id from objectId", closing(t, DefaultConfig(), SourceTheHive, nil, body).ExternalID, "~4264")
	// Without endDate and _updatedAt, the audit's _createdAt is when the case closed.
	body = mutate(t, "thehive/case_closed_v5_format1.json", func(m map[string]any) {
		delete(obj(m, "details"), "endDate")
		delete(obj(m, "object"), "endDate")
		delete(obj(m, "object"), "_updatedAt")
	})
	eq(t, "closed_at from the audit", closing(t, DefaultConfig(), SourceTheHive, nil, body).Timestamps.ClosedAt, *ts("2026-11-21T00:00:00.412Z"))

	body = mutate(t, "thehive/case_closed_v5_format1.json", func(m map[string]any) { delete(m, "action") })
	problem(t, DefaultConfig(), SourceTheHive, nil, body, http.StatusUnprocessableEntity, "/operation")
}

// Format version 0 renders the case with the v0 API: createdAt, createdBy,
// caseId and owner instead of _createdAt, _createdBy, number and assignee.
func TestTheHiveFormat0(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceTheHive, nil, fixture(t, "thehive/case_resolved_format0.json"))
	eq(t, "external_id", inc.ExternalID, "~45088")
	eq(t, "severity", inc.Severity, events.SeverityHigh)
	eq(t, "timestamps", inc.Timestamps, events.Timestamps{
		StartedAt:  ts("2026-11-20T15:00:00Z"),
		ReportedAt: ts("2026-11-20T16:00:00Z"),
		ResolvedAt: ts("2026-11-21T00:00:00Z"),
		ClosedAt:   *ts("2026-11-21T00:00:00Z"),
	})
	eq(t, "people", inc.People, []events.Person{
		{Name: "handler@cert.example", Email: "handler@cert.example", Role: events.RoleResponder},
		{Name: "triage@cert.example", Email: "triage@cert.example", Role: events.RoleReporter},
	})
	eq(t, "notes", inc.Notes, []string{"TheHive case #63"})
	eq(t, "timeline actor", inc.Timeline[0].Actor, "handler@cert.example")
}

func TestTheHiveStaleEndDate(t *testing.T) {
	// Reclosed: the change does not carry endDate and the object's endDate is
	// older than the update that closed it.
	body := mutate(t, "thehive/case_closed_v5.json", func(m map[string]any) {
		delete(obj(m, "details"), "endDate")
		obj(m, "object")["endDate"] = 1795140000000
	})
	inc := closing(t, DefaultConfig(), SourceTheHive, nil, body)
	eq(t, "closed_at", inc.Timestamps.ClosedAt, *ts("2026-11-21T00:00:00.412Z"))
	hasNote(t, inc, "/object/endDate (2026-11-20T02:00:00Z) predates the update time /object/_updatedAt")

	// An edit of an already closed case (no status in details) closes nothing new.
	body = mutate(t, "thehive/case_closed_v5.json", func(m map[string]any) { m["details"] = map[string]any{"tags": []any{"x"}} })
	ignored(t, DefaultConfig(), SourceTheHive, nil, body)
}

func TestCanonical(t *testing.T) {
	inc := closing(t, DefaultConfig(), SourceCanonical, nil, fixture(t, "canonical/incident_closed.json"))
	eq(t, "source kept from the body", inc.Source, "jira")
	eq(t, "external_id", inc.ExternalID, "SEC-2026-0142")
	inc = closing(t, DefaultConfig(), SourceCanonical, nil, fixture(t, "canonical/incident_closed_minimal.json"))
	eq(t, "closed_at", inc.Timestamps.ClosedAt, time.Date(2026, 3, 11, 17, 4, 12, 0, time.UTC))

	problem(t, DefaultConfig(), SourceCanonical, nil, []byte(`{"source":"x","external_id":"1","severity":"medium","timestamps":{"closed_at":"2026-01-01T00:00:00Z"}}`),
		http.StatusUnprocessableEntity, "/title")
	problem(t, DefaultConfig(), SourceCanonical, nil, []byte(`{"source":"x","external_id":"1","title":"t","severity":"medium","timestamps":{"closed_at":"yesterday"}}`),
		http.StatusUnprocessableEntity, "/timestamps/closed_at")
	problem(t, DefaultConfig(), SourceCanonical, nil, []byte(`{"source":"x","external_id":"1","title":"t","severity":"medium","timestamps":{"closed_at":"2026-01-01T00:00:00Z"},"titel":"t"}`),
		http.StatusUnprocessableEntity, "/titel")
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("zone %s: %v", name, err)
	}
	return loc
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
