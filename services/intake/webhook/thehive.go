package webhook

import (
	"net/url"

	"github.com/afteraction/afteraction/pkg/events"
)

// normalizeTheHive maps a TheHive 4/5 webhook for a case update that closes
// the case: stage Closed (TheHive 5) or a done status (Resolved in TheHive 4;
// TruePositive, FalsePositive, ... in TheHive 5). Times are epoch ms.
func normalizeTheHive(n *normalization) string {
	objType := n.text(n.root.get("objectType"), true)
	op := n.text(n.root.get("operation"), true)
	if objType == "" || op == "" {
		return ""
	}
	if normKey(objType) != "case" {
		return notClosing("thehive %s %s", clip(objType, 40), clip(op, 40))
	}
	if normKey(op) != "update" {
		return notClosing("thehive case %s", clip(op, 40))
	}
	obj, details := n.root.get("object"), n.root.get("details")
	pick := func(key string) value {
		if d := details.get(key); d.str() != "" {
			return d
		}
		return obj.get(key)
	}
	status, stage := pick("status"), pick("stage")
	if normKey(stage.str()) != "closed" && !n.cfg.isDone(status.str()) {
		return notClosing("thehive case status %q", clip(firstNonEmpty(stage.str(), status.str()), 60))
	}
	if details.isObject() && !details.get("status").present && !details.get("stage").present &&
		!details.get("resolutionStatus").present && !details.get("endDate").present {
		return notClosing("thehive update of an already closed case (no status change in /details)")
	}

	id := obj.get("_id")
	if id.str() == "" {
		id = n.root.get("objectId")
	}
	n.externalID(id.str(), id)
	if num := obj.get("number").str(); num != "" {
		n.note("TheHive case #%s", clip(num, 20))
	}
	n.title(obj.get("title"))
	n.inc.Summary = obj.get("description").str()
	if n.cfg.BaseURL != "" && id.str() != "" {
		n.setURL(n.cfg.BaseURL + "/cases/" + url.PathEscape(id.str()) + "/details")
	}

	end := pick("endDate")
	closedAt := n.requiredTime(end)
	if !details.get("endDate").present {
		// endDate not part of this change may be left from before a reopen.
		closedAt = n.latest(closedAt, end.ptr, n.time(obj.get("_updatedAt")), "the update time /object/_updatedAt")
	}
	n.inc.Timestamps.StartedAt = n.time(obj.get("startDate"))
	n.inc.Timestamps.ReportedAt = n.time(obj.get("_createdAt"))
	n.inc.Timestamps.ResolvedAt = closedAt
	n.closeAt(closedAt, end)

	n.severity(false, cand(obj.get("severity")), cand(obj.get("severityLabel")))
	for _, t := range obj.get("tags").items() {
		n.tag(t.str())
	}
	resolution := pick("resolutionStatus").str()
	if resolution == "" && normKey(status.str()) != "resolved" && normKey(status.str()) != "closed" {
		resolution = status.str() // TheHive 5 keeps the resolution in status
	}
	if resolution != "" {
		n.tag("resolution:" + resolution)
	}
	if impact := pick("impactStatus").str(); impact != "" {
		lvl := events.ImpactLevel("")
		if normKey(impact) == "noimpact" {
			lvl = events.ImpactNone
		}
		n.inc.Impact = &events.Impact{Final: &events.ImpactAssessment{Level: lvl, Description: "TheHive impact status " + impact}}
	}
	n.person(firstNonEmpty(obj.get("assignee").str(), obj.get("owner").str()), "", events.RoleResponder, "")
	n.person(obj.get("_createdBy").str(), "", events.RoleReporter, "")
	action := "Case closed"
	if resolution != "" {
		action = "Case closed as " + resolution
	}
	n.event(closedAt, events.PhasePostIncident, obj.get("_updatedBy").str(), action, pick("summary").str())
	return ""
}
