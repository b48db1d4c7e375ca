package webhook

import (
	"net/url"
	"strings"

	"github.com/afteraction/afteraction/pkg/events"
)

// normalizeGitHub maps a GitHub issues webhook (X-GitHub-Event: issues) with
// action closed. The incident is <owner>/<repo>#<number>; severity comes from
// labels (severity:high, sev1, P1, ... per the mapping; the most severe wins).
func normalizeGitHub(n *normalization) string {
	event := strings.TrimSpace(n.header.Get("X-GitHub-Event"))
	switch event {
	case "":
		n.problems = append(n.problems, problemField("X-GitHub-Event", "required header is missing"))
		return ""
	case "issues":
	default:
		return notClosing("github event %q", clip(event, 60))
	}
	action := n.text(n.root.get("action"), true)
	if action == "" {
		return ""
	}
	if !n.cfg.isDone(action) {
		return notClosing("github issues action %q", clip(action, 60))
	}
	issue := n.root.get("issue")
	number := issue.get("number")
	num, ok := number.integer()
	if !ok || num <= 0 {
		n.fail(number, "required: the issue number; got "+number.kind())
	}
	repo := n.root.path("repository", "full_name").str()
	if repo == "" {
		repo = githubRepoFromURL(issue.get("repository_url").str())
	}
	if repo == "" {
		n.fail(n.root.path("repository", "full_name"), "required: the repository's owner/name; got nothing here or in /issue/repository_url")
	}
	if ok && num > 0 && repo != "" {
		n.externalID(repo+"#"+number.str(), number)
	}
	n.title(issue.get("title"))
	n.inc.Summary = issue.get("body").str()
	n.setURL(issue.get("html_url").str())

	closed := n.requiredTime(issue.get("closed_at"))
	n.inc.Timestamps.ReportedAt = n.time(issue.get("created_at"))
	n.inc.Timestamps.ResolvedAt = closed
	n.closeAt(closed, issue.get("closed_at"))

	var cands []candidate
	var labels []string
	for _, l := range issue.get("labels").items() {
		name := l.str()
		if l.isObject() {
			name = l.get("name").str()
		}
		if name == "" {
			continue
		}
		labels = append(labels, name)
		cands = append(cands, candidate{v: l, key: name})
		n.tag(name)
	}
	if len(cands) == 0 {
		cands = []candidate{{v: issue.get("labels")}}
	}
	n.severity(true, cands...)
	for _, l := range labels {
		if c, ok := cutAnyPrefix(l, "category:", "category/", "type:"); ok {
			n.inc.Category = c
			break
		}
	}
	if n.inc.Category == "" {
		n.category(false, labels...)
	}

	n.person(issue.path("assignee", "login").str(), "", events.RoleResponder, "")
	for _, a := range issue.get("assignees").items() {
		n.person(a.get("login").str(), a.get("email").str(), events.RoleResponder, "")
	}
	n.person(issue.path("user", "login").str(), issue.path("user", "email").str(), events.RoleReporter, "")
	if reason := issue.get("state_reason").str(); reason != "" && reason != "completed" {
		n.note("closed with state_reason %q", clip(reason, 40))
	}
	n.event(closed, events.PhasePostIncident, n.root.path("sender", "login").str(), "Issue closed", "")
	return ""
}

// githubRepoFromURL reads owner/name from "https://api.github.com/repos/owner/name".
func githubRepoFromURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	rest, ok := strings.CutPrefix(u.Path, "/repos/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return ""
	}
	return parts[0] + "/" + parts[1]
}

func cutAnyPrefix(s string, prefixes ...string) (string, bool) {
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(strings.ToLower(s), p); ok && strings.TrimSpace(rest) != "" {
			return strings.TrimSpace(s[len(p):]), true
		}
	}
	return "", false
}
