package webhook

import (
	"net/url"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// normalizeServiceNow maps an incident record as the Table API returns it
// ({"result": {...}}) or as an outbound REST message sends it (the record
// itself), in any sysparm_display_value form: plain values, display values,
// or {"value","display_value"} / reference {"link","value"} objects. A record
// in a done state (6 Resolved, 7 Closed by default) closes the incident.
func normalizeServiceNow(n *normalization) string {
	rec := n.root
	if r := n.root.get("result"); r.isObject() {
		rec = r
	} else if items := r.items(); len(items) > 0 {
		if len(items) > 1 || !items[0].isObject() {
			n.fail(r, "expected one incident record")
			return ""
		}
		rec = items[0]
	}
	state := rec.get("state")
	sv, sd := state.refValue(), state.refDisplay()
	if sv == "" && sd == "" {
		n.fail(state, "required: the incident state; got "+state.kind())
		return ""
	}
	if !n.cfg.isDone(sv) && !n.cfg.isDone(sd) {
		return notClosing("servicenow incident state %q", clip(firstNonEmpty(sd, sv), 60))
	}

	number := rec.get("number")
	n.externalID(number.refValue(), number)
	short := rec.get("short_description")
	if short.isObject() {
		short = short.get("value")
	}
	n.title(short)
	n.inc.Summary = rec.get("description").refValue()

	sysID := rec.get("sys_id").refValue()
	base := n.cfg.BaseURL
	if base == "" {
		base = serviceNowBase(rec)
	}
	if sysID != "" {
		n.note("ServiceNow sys_id %s", clip(sysID, 64))
		if base != "" {
			n.setURL(base + "/nav_to.do?uri=" + url.QueryEscape("incident.do?sys_id="+sysID))
			n.link("ServiceNow record (Table API)", base+"/api/now/table/incident/"+url.PathEscape(sysID))
		}
	}

	opened := n.snTime(rec.get("opened_at"), false)
	resolved := n.snTime(rec.get("resolved_at"), true)
	closed := n.snTime(rec.get("closed_at"), true)
	reopened := n.snTime(rec.get("reopened_time"), false)
	updated := n.snTime(rec.get("sys_updated_on"), false)
	if reopened != nil {
		resolved = n.staleAfterReopen(resolved, rec.get("resolved_at").ptr, reopened, updated)
		closed = n.staleAfterReopen(closed, rec.get("closed_at").ptr, reopened, updated)
	}
	if c, ok := rec.get("reopen_count").integer(); ok && c > 0 {
		n.note("reopened %d time(s) before this closure", c)
	}
	n.inc.Timestamps.ReportedAt = opened
	n.inc.Timestamps.ResolvedAt = resolved
	closedAt := closed
	if closedAt == nil {
		closedAt = resolved
	}
	n.closeAt(closedAt, rec.get("closed_at"), rec.get("resolved_at"))

	priority := rec.get("priority")
	n.severity(false, candidate{v: priority, key: priority.refValue()}, candidate{v: priority, key: priority.refDisplay()})
	n.category(true, rec.get("category").refDisplay(), rec.get("category").refValue())
	n.inc.Subcategory = rec.get("subcategory").refDisplay()
	if lvl := serviceNowImpact(rec.get("impact").refValue()); lvl != "" {
		n.inc.Impact = &events.Impact{Final: &events.ImpactAssessment{Level: lvl,
			Description: "ServiceNow impact " + rec.get("impact").refDisplay()}}
	}

	group := rec.get("assignment_group").refDisplay()
	var unnamed []string
	for _, p := range []struct {
		field string
		role  events.Role
	}{{"assigned_to", events.RoleResponder}, {"resolved_by", events.RoleResponder}, {"closed_by", events.RoleResponder},
		{"caller_id", events.RoleReporter}, {"opened_by", events.RoleReporter}} {
		ref := rec.get(p.field)
		name := ref.refDisplay()
		if name == "" && ref.refValue() != "" {
			unnamed = append(unnamed, ref.ptr)
		}
		team := ""
		if p.field == "assigned_to" {
			team = group
		}
		n.person(name, "", p.role, team)
	}
	if len(unnamed) > 0 {
		n.note("references without a display value (send sysparm_display_value=all to name people): %s", strings.Join(unnamed, ", "))
	}
	n.asset(rec.get("cmdb_ci").refDisplay(), "configuration_item", rec.get("cmdb_ci").refValue())
	n.asset(rec.get("business_service").refDisplay(), "service", rec.get("business_service").refValue())

	code := rec.get("close_code").refDisplay()
	action := "Resolved"
	if code != "" {
		action = "Resolved: " + code
	}
	at := resolved
	if at == nil {
		at = &n.inc.Timestamps.ClosedAt
	}
	n.event(at, events.PhaseRecovery, rec.get("resolved_by").refDisplay(), action, rec.get("close_notes").refValue())
	return ""
}

// snTime reads a ServiceNow date-time: the "value" of the object form is UTC
// (the Table API's internal value); a plain string, or a display value, is in
// the source's configured zone. An unreadable required time is a problem.
func (n *normalization) snTime(v value, required bool) *time.Time {
	if v.isObject() {
		if raw := v.get("value"); raw.str() != "" {
			return n.utcTime(raw, required)
		}
		v = v.get("display_value")
	}
	if required {
		return n.requiredTime(v)
	}
	return n.time(v)
}

// staleAfterReopen drops a resolution/closure time older than the last reopen
// (left from the first closure), preferring the record's last update.
func (n *normalization) staleAfterReopen(t *time.Time, ptr string, reopened, updated *time.Time) *time.Time {
	if t == nil || !t.Before(*reopened) {
		return t
	}
	if updated != nil && !updated.Before(*reopened) {
		n.note("%s (%s) predates the reopen at /reopened_time (%s), so it is stale; used the last update /sys_updated_on (%s)",
			ptr, t.Format(time.RFC3339), reopened.Format(time.RFC3339), updated.Format(time.RFC3339))
		return updated
	}
	n.note("%s (%s) predates the reopen at /reopened_time (%s), so it is stale; ignored it",
		ptr, t.Format(time.RFC3339), reopened.Format(time.RFC3339))
	return nil
}

// serviceNowBase derives the instance address from any reference link in the record.
func serviceNowBase(rec value) string {
	m, _ := rec.v.(map[string]any)
	for _, k := range []string{"assigned_to", "caller_id", "opened_by", "assignment_group", "resolved_by", "closed_by", "cmdb_ci"} {
		if _, ok := m[k]; !ok {
			continue
		}
		link := rec.get(k).get("link").str()
		u, err := url.Parse(link)
		if err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && strings.Contains(u.Path, "/api/now/") {
			return u.Scheme + "://" + u.Host
		}
	}
	return ""
}

func serviceNowImpact(v string) events.ImpactLevel {
	switch v {
	case "1":
		return events.ImpactHigh
	case "2":
		return events.ImpactMedium
	case "3":
		return events.ImpactLow
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
