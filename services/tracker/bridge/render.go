package bridge

import (
	"fmt"
	"strings"
)

// markdownBody is the issue body GitHub and GitLab show: the description,
// the incident, the due date, the report link and the action id. The hidden
// comment repeats the marker for people reading the source.
func markdownBody(is Issue) string {
	var b strings.Builder
	if is.Description != "" {
		b.WriteString(is.Description)
		b.WriteString("\n\n")
	}
	b.WriteString("---\n")
	fmt.Fprintf(&b, "- **Incident:** %s (`%s`)\n", orDash(is.IncidentTitle), is.IncidentID)
	fmt.Fprintf(&b, "- **Category:** %s · **Priority:** %s\n", is.Category, orDash(string(is.Priority)))
	fmt.Fprintf(&b, "- **Due:** %s\n", orDash(is.DueDate))
	if is.OwnerName != "" || is.OwnerEmail != "" {
		fmt.Fprintf(&b, "- **Owner:** %s\n", strings.TrimSpace(is.OwnerName+" "+angle(is.OwnerEmail)))
	}
	if is.ReportURL != "" {
		fmt.Fprintf(&b, "- **Report:** %s\n", is.ReportURL)
	}
	fmt.Fprintf(&b, "- **Action:** `%s` (item %s of review `%s`)\n", is.ActionID, is.Key, is.ReviewID)
	fmt.Fprintf(&b, "\n<!-- %s -->\n", Marker(is.ActionID))
	return b.String()
}

// labels are the marker, category and priority labels of is.
func labels(is Issue) []string {
	out := []string{Marker(is.ActionID), "category:" + string(is.Category)}
	if is.Priority != "" {
		out = append(out, "priority:"+string(is.Priority))
	}
	return out
}

// assignee looks the owner up in m by e-mail, then by name.
func assignee(m map[string]string, is Issue) string {
	if v, ok := m[strings.ToLower(is.OwnerEmail)]; ok && is.OwnerEmail != "" {
		return v
	}
	if v, ok := m[is.OwnerEmail]; ok && is.OwnerEmail != "" {
		return v
	}
	if v, ok := m[is.OwnerName]; ok && is.OwnerName != "" {
		return v
	}
	return ""
}

// markerIn returns the action id of the first marker label in names.
func markerIn(names []string) string {
	for _, n := range names {
		if id, ok := strings.CutPrefix(n, "afteraction:"); ok {
			return id
		}
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func angle(s string) string {
	if s == "" {
		return ""
	}
	return "<" + s + ">"
}
