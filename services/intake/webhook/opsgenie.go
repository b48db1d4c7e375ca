package webhook

import (
	"github.com/afteraction/afteraction/pkg/events"
)

// normalizeOpsgenie maps an Opsgenie webhook integration's alert action; the
// Close action closes. Opsgenie sends createdAt in milliseconds and updatedAt
// in nanoseconds; updatedAt of a Close is the closing time.
func normalizeOpsgenie(n *normalization) string {
	action := n.text(n.root.get("action"), true)
	if action == "" {
		return ""
	}
	if !n.cfg.isDone(action) {
		return notClosing("opsgenie alert action %q", clip(action, 60))
	}
	alert := n.root.get("alert")
	id := alert.get("alertId")
	n.externalID(id.str(), id)
	n.title(alert.get("message"))
	n.inc.Summary = alert.get("description").str()
	if tiny, alias := alert.get("tinyId").str(), alert.get("alias").str(); tiny != "" || alias != "" {
		n.note("Opsgenie tinyId %q, alias %q (the id kept is alertId)", clip(tiny, 40), clip(alias, 100))
	}

	n.inc.Timestamps.DetectedAt = n.time(alert.get("createdAt"))
	closed := n.requiredTime(alert.get("updatedAt"))
	n.inc.Timestamps.ResolvedAt = closed
	n.closeAt(closed, alert.get("updatedAt"))

	n.severity(false, cand(alert.get("priority")))
	for _, t := range alert.get("tags").items() {
		n.tag(t.str())
	}
	for _, t := range alert.get("teams").items() {
		if name := t.str(); name != "" {
			n.tag("team:" + name)
		}
	}
	n.asset(alert.get("entity").str(), "entity", "")
	n.person(alert.get("owner").str(), "", events.RoleResponder, "")
	n.person(alert.get("username").str(), "", events.RoleResponder, "")
	n.event(closed, events.PhaseRecovery, alert.get("username").str(), "Alert closed in Opsgenie", alert.get("note").str())
	return ""
}
