package webhook

import (
	"github.com/afteraction/afteraction/pkg/events"
)

// normalizePagerDuty maps a PagerDuty v3 webhook (event.event_type
// incident.resolved by default). The event's occurred_at is the resolution.
func normalizePagerDuty(n *normalization) string {
	ev := n.root.get("event")
	typ := n.text(ev.get("event_type"), true)
	if typ == "" {
		return ""
	}
	if !n.cfg.isDone(typ) {
		return notClosing("pagerduty event_type %q", clip(typ, 60))
	}
	d := ev.get("data")
	if t := d.get("type").str(); t != "" && t != "incident" {
		return notClosing("pagerduty event data of type %q, not an incident", clip(t, 60))
	}
	n.externalID(d.get("id").str(), d.get("id"))
	title := d.get("title")
	if title.str() == "" && d.get("summary").str() != "" {
		title = d.get("summary")
	}
	n.title(title)
	n.setURL(d.get("html_url").str())
	if num := d.get("number").str(); num != "" {
		n.link("PagerDuty incident #"+num+" (API)", d.get("self").str())
	} else {
		n.link("PagerDuty incident (API)", d.get("self").str())
	}

	occurred := n.requiredTime(ev.get("occurred_at"))
	n.inc.Timestamps.DetectedAt = n.time(d.get("created_at"))
	n.inc.Timestamps.ResolvedAt = occurred
	n.closeAt(occurred, ev.get("occurred_at"))

	urgency := d.get("urgency")
	n.severity(false, cand(d.path("priority", "summary")), candidate{v: urgency, key: "urgency:" + urgency.str()})

	for _, a := range d.get("assignees").items() {
		n.person(a.get("summary").str(), "", events.RoleResponder, "")
	}
	agent := ev.get("agent")
	if agent.get("type").str() == "user_reference" {
		n.person(agent.get("summary").str(), "", events.RoleResponder, "")
	}
	for _, t := range d.get("teams").items() {
		if name := t.get("summary").str(); name != "" {
			n.tag("team:" + name)
		}
	}
	svc := d.get("service")
	n.asset(svc.get("summary").str(), "service", svc.get("id").str())
	if rr := d.get("resolve_reason"); rr.isObject() {
		if merged := rr.path("incident", "id").str(); merged != "" {
			n.note("resolved by merging into PagerDuty incident %s", merged)
		}
	}
	n.event(occurred, events.PhaseRecovery, agent.get("summary").str(), "Incident resolved in PagerDuty", "")
	return ""
}
