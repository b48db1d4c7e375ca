package webhook

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// normalizeJira maps a Jira Cloud or Server/DC jira:issue_updated webhook
// whose changelog moves the status to a done status (by name, from the
// configured list, or by the new status's category "done"). The webhook's
// timestamp is the time of that transition.
func normalizeJira(n *normalization) string {
	evt := n.text(n.root.get("webhookEvent"), true)
	if evt == "" {
		return ""
	}
	if evt != "jira:issue_updated" {
		return notClosing("jira webhookEvent %q", clip(evt, 60))
	}
	issue := n.root.get("issue")
	fields := issue.get("fields")
	status := fields.get("status")
	categoryDone := normKey(status.path("statusCategory", "key").str()) == "done"

	changelog := n.root.get("changelog")
	var item value
	for _, it := range changelog.path("items").items() {
		if normKey(it.get("field").str()) == "status" || normKey(it.get("fieldId").str()) == "status" {
			item = it
		}
	}
	var to, from string
	switch {
	case item.present:
		to, from = item.get("toString").str(), item.get("fromString").str()
		if !n.cfg.isDone(to) && !(categoryDone && normKey(status.get("name").str()) == normKey(to)) {
			return notClosing("jira status moved to %q, which is not a done status", clip(to, 60))
		}
	case !changelog.present && (categoryDone || n.cfg.isDone(status.get("name").str())):
		to = status.get("name").str()
		n.note("the webhook has no changelog; closing inferred from the issue's status %q", clip(to, 60))
	default:
		return notClosing("jira issue update without a status change to a done status")
	}

	key := issue.get("key")
	n.externalID(key.str(), key)
	n.title(fields.get("summary"))
	n.inc.Summary = plainText(fields.get("description"))
	n.setURL(jiraBrowseURL(issue.get("self").str(), key.str()))

	transition := n.time(n.root.get("timestamp"))
	resolution := n.time(fields.get("resolutiondate"))
	const transitionWhat = "the status transition at /timestamp"
	var resolvedAt, closedAt *time.Time
	if from != "" && n.cfg.isDone(from) {
		// Done → done (e.g. Resolved → Closed): the resolution happened earlier.
		resolvedAt = resolution
		closedAt = transition
		if closedAt == nil {
			closedAt = resolution
		}
	} else {
		resolvedAt = n.latest(resolution, fields.get("resolutiondate").ptr, transition, transitionWhat)
		closedAt = resolvedAt
		if transition != nil {
			closedAt = transition
		}
	}
	n.inc.Timestamps.ResolvedAt = resolvedAt
	n.inc.Timestamps.ReportedAt = n.time(fields.get("created"))
	n.closeAt(closedAt, n.root.get("timestamp"), fields.get("resolutiondate"))

	n.severity(false, cand(fields.path("priority", "name")))
	n.category(false, fields.path("issuetype", "name").str())
	for _, l := range fields.get("labels").items() {
		n.tag(l.str())
	}
	for _, c := range fields.get("components").items() {
		n.asset(c.get("name").str(), "component", c.get("id").str())
	}
	assignee, reporter := fields.get("assignee"), fields.get("reporter")
	n.person(assignee.get("displayName").str(), assignee.get("emailAddress").str(), events.RoleResponder, "")
	n.person(reporter.get("displayName").str(), reporter.get("emailAddress").str(), events.RoleReporter, "")

	action := fmt.Sprintf("Status changed to %s", to)
	if from != "" {
		action = fmt.Sprintf("Status changed from %s to %s", from, to)
	}
	detail := ""
	if r := fields.path("resolution", "name").str(); r != "" {
		detail = "Resolution: " + r
	}
	n.event(&n.inc.Timestamps.ClosedAt, events.PhasePostIncident, n.root.path("user", "displayName").str(), action, detail)
	return ""
}

// jiraBrowseURL turns an issue's REST address ("https://x/rest/api/2/issue/10001",
// also under a context path) into its web address ("https://x/browse/KEY-1").
func jiraBrowseURL(self, key string) string {
	if self == "" || key == "" {
		return ""
	}
	u, err := url.Parse(self)
	if err != nil {
		return ""
	}
	base, _, ok := strings.Cut(u.Path, "/rest/api/")
	if !ok {
		return ""
	}
	u.Path, u.RawQuery, u.Fragment, u.RawPath = base+"/browse/"+key, "", "", ""
	return u.String()
}
