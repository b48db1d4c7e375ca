package webhook

import (
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// normalizeStatuspage maps an Atlassian Statuspage incident webhook; an
// incident whose status is a done status (resolved, postmortem) closes.
// Component updates and scheduled maintenances close nothing.
func normalizeStatuspage(n *normalization) string {
	inc := n.root.get("incident")
	if !inc.isObject() {
		return notClosing("statuspage notification without an incident (a component update?)")
	}
	if inc.get("scheduled_for").str() != "" {
		return notClosing("statuspage scheduled maintenance, not an incident")
	}
	status := n.text(inc.get("status"), true)
	if status == "" {
		return ""
	}
	if !n.cfg.isDone(status) {
		return notClosing("statuspage incident status %q", clip(status, 60))
	}
	id := inc.get("id")
	n.externalID(id.str(), id)
	n.title(inc.get("name"))
	n.setURL(inc.get("shortlink").str())

	var lastResolved *time.Time
	var latestBody string
	var latestAt time.Time
	for _, u := range inc.get("incident_updates").items() {
		at := n.time(u.get("created_at"))
		if at == nil {
			at = n.time(u.get("display_at"))
		}
		st, body := u.get("status").str(), u.get("body").str()
		if at != nil && n.cfg.isDone(st) && (lastResolved == nil || at.After(*lastResolved)) {
			lastResolved = at
		}
		if at != nil && !at.Before(latestAt) && body != "" {
			latestAt, latestBody = *at, body
		}
		n.event(at, events.PhaseCommunication, "", "Status page update: "+st, body)
	}
	if pm := inc.get("postmortem_body").str(); pm != "" {
		n.inc.Summary = pm
	} else {
		n.inc.Summary = latestBody
	}

	resolved := n.requiredTime(inc.get("resolved_at"))
	resolved = n.latest(resolved, inc.get("resolved_at").ptr, lastResolved, "the latest resolved update in /incident/incident_updates")
	n.inc.Timestamps.StartedAt = n.time(inc.get("started_at"))
	backfilled, _ := inc.get("backfilled").boolean()
	if !backfilled {
		// A backfilled incident was entered after the fact: created_at is not a report time.
		n.inc.Timestamps.ReportedAt = n.time(inc.get("created_at"))
	}
	n.inc.Timestamps.RecoveredAt = n.time(inc.get("monitoring_at"))
	n.inc.Timestamps.ResolvedAt = resolved
	n.closeAt(resolved, inc.get("resolved_at"))

	impact := inc.get("impact")
	if override := inc.get("impact_override"); override.str() != "" {
		impact = override
	}
	if _, mapped := n.cfg.Severity["none"]; normKey(impact.str()) == "none" && !mapped {
		// "none" is what Statuspage shows before anyone rates the impact; an
		// incident published on a status page was user-facing all the same.
		n.inc.Severity = n.cfg.defaultSeverity()
		n.note("%s is \"none\" (not rated on the status page); used the default severity %s", impact.ptr, n.inc.Severity)
	} else if impact.ptr != inc.get("impact").ptr {
		n.severity(false, cand(impact), cand(inc.get("impact")))
	} else {
		n.severity(false, cand(impact))
	}
	for _, c := range inc.get("components").items() {
		n.asset(c.get("name").str(), "component", c.get("id").str())
	}
	if backfilled {
		n.note("the incident was backfilled on the status page (entered after the fact); its created_at is not taken as the report time")
	}
	return ""
}
