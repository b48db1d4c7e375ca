package webhook

import (
	"net/url"

	"github.com/afteraction/afteraction/pkg/events"
)

// normalizeTheHive maps a TheHive 4/5 webhook for a case update that closes
// the case: stage Closed (TheHive 5) or a done status (Resolved in TheHive 4;
// TruePositive, FalsePositive, ... in TheHive 5). Times are epoch ms.
//
// Both message formats are read. Format 0 has "operation" and renders the
// case with the v0 API (createdAt, createdBy, updatedAt, updatedBy, caseId,
// owner); format 1 (TheHive 5) is the audit record itself, with "action"
// instead of "operation", the audit's own _id, _createdAt (when the change
// was made) and _createdBy (who made it) on the envelope, and the case
// rendered with the v1 API (_createdAt, _createdBy, number, assignee).
func normalizeTheHive(n *normalization) string {
	objType := n.text(n.root.get("objectType"), true)
	opV := n.root.get("operation")
	if a := n.root.get("action"); !opV.present && a.present {
		opV = a
	}
	op := n.text(opV, true)
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
	// field is the case's field in the v1 rendering, else in the v0 one.
	field := func(v1, v0 string) value {
		if v := obj.get(v1); v.str() != "" {
			return v
		}
		return obj.get(v0)
	}
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
	if num := field("number", "caseId").str(); num != "" {
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
		updated := field("_updatedAt", "updatedAt")
		if !updated.present && n.root.get("action").present {
			updated = n.root.get("_createdAt") // format 1: when the audited change was made
		}
		closedAt = n.latest(closedAt, end.ptr, n.time(updated), "the update time "+updated.ptr)
	}
	n.inc.Timestamps.StartedAt = n.time(obj.get("startDate"))
	n.inc.Timestamps.ReportedAt = n.time(field("_createdAt", "createdAt"))
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
	n.person(field("_createdBy", "createdBy").str(), "", events.RoleReporter, "")
	action := "Case closed"
	if resolution != "" {
		action = "Case closed as " + resolution
	}
	actor := field("_updatedBy", "updatedBy").str()
	if actor == "" && n.root.get("action").present {
		actor = n.root.get("_createdBy").str() // format 1: who made the audited change
	}
	n.event(closedAt, events.PhasePostIncident, actor, action, pick("summary").str())
	return ""
}
