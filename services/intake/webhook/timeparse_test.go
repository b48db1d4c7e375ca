package webhook

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

func TestParseTime(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	num := func(s string) value { return value{v: json.Number(s), present: true} }
	str := func(s string) value { return value{v: s, present: true} }
	cases := []struct {
		name  string
		in    value
		loc   *time.Location
		want  string // RFC 3339 in UTC; "" when an error is expected
		shape timeShape
		none  bool // errNoTime
	}{
		{"RFC 3339 Z", str("2026-11-20T10:00:00Z"), nil, "2026-11-20T10:00:00Z", shapeZoned, false},
		{"RFC 3339 fraction and offset", str("2026-11-20T10:00:00.123+02:00"), nil, "2026-11-20T08:00:00.123Z", shapeZoned, false},
		{"offset without colon (Jira)", str("2026-11-20T10:00:00.000-0800"), nil, "2026-11-20T18:00:00Z", shapeZoned, false},
		{"offset +0000", str("2016-04-21T09:05:11.000+0000"), nil, "2016-04-21T09:05:11Z", shapeZoned, false},
		{"no zone, UTC default", str("2026-11-20 17:01:12"), nil, "2026-11-20T17:01:12Z", shapeNoZone, false},
		{"no zone, configured zone (winter)", str("2026-11-20 17:01:12"), berlin, "2026-11-20T16:01:12Z", shapeNoZone, false},
		{"no zone, configured zone (summer)", str("2026-07-20 17:01:12"), berlin, "2026-07-20T15:01:12Z", shapeNoZone, false},
		{"no zone with T", str("2026-11-20T17:01:12"), berlin, "2026-11-20T16:01:12Z", shapeNoZone, false},
		{"date only", str("2026-11-20"), berlin, "2026-11-19T23:00:00Z", shapeDateOnly, false},
		{"epoch seconds", num("1795219200"), nil, "2026-11-21T00:00:00Z", shapeEpoch, false},
		{"epoch seconds with fraction", str("1795219200.25"), nil, "2026-11-21T00:00:00.25Z", shapeEpoch, false},
		{"epoch ms number", num("1795219200123"), nil, "2026-11-21T00:00:00.123Z", shapeEpoch, false},
		{"epoch ms string", str("1795219200123"), nil, "2026-11-21T00:00:00.123Z", shapeEpoch, false},
		{"epoch µs", num("1795219200123456"), nil, "2026-11-21T00:00:00.123456Z", shapeEpoch, false},
		// Through float64 this would lose the last digits.
		{"epoch ns number, exact", num("1795219200123456789"), nil, "2026-11-21T00:00:00.123456789Z", shapeEpoch, false},
		{"epoch ns string, exact", str("1795219200123456789"), nil, "2026-11-21T00:00:00.123456789Z", shapeEpoch, false},
		{"epoch 0 is unset", num("0"), nil, "", 0, true},
		{"null", value{present: true}, nil, "", 0, true},
		{"missing", value{}, nil, "", 0, true},
		{"empty string", str("  "), nil, "", 0, true},
		{"duration encoded as a date", str("1970-01-01 07:47:10"), nil, "", 0, false},
		{"garbage", str("yesterday"), nil, "", 0, false},
		{"too many digits", str("179521920012345678901234"), nil, "", 0, false},
		{"negative", str("-1795219200"), nil, "", 0, false},
		{"year 10000", str("10000-01-01T00:00:00Z"), nil, "", 0, false},
		{"boolean", value{v: true, present: true}, nil, "", 0, false},
		{"object", value{v: map[string]any{}, present: true}, nil, "", 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, shape, err := parseTime(c.in, c.loc)
			switch {
			case c.none:
				if !errors.Is(err, errNoTime) {
					t.Fatalf("got %v, %v; want errNoTime", got, err)
				}
			case c.want == "":
				if err == nil || errors.Is(err, errNoTime) {
					t.Fatalf("got %v, %v; want a parse error", got, err)
				}
			default:
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if got.Format(time.RFC3339Nano) != c.want || shape != c.shape || got.Location() != time.UTC {
					t.Errorf("got %s (shape %d, %s), want %s (shape %d, UTC)", got.Format(time.RFC3339Nano), shape, got.Location(), c.want, c.shape)
				}
			}
		})
	}
}

// The traps, end to end: each payload variation still gives a valid incident
// with the right value and, where something was assumed, a note.
func TestTraps(t *testing.T) {
	cases := []struct {
		name   string
		source string
		file   string
		edit   func(m map[string]any)
		check  func(t *testing.T, inc *events.IncidentClosed)
	}{
		{"date-only resolution date", SourceJira, "jira/issue_resolved_cloud.json",
			func(m map[string]any) {
				delete(m, "timestamp")
				obj(m, "issue", "fields")["resolutiondate"] = "2026-11-21"
			},
			func(t *testing.T, inc *events.IncidentClosed) {
				eq(t, "closed_at", inc.Timestamps.ClosedAt, *ts("2026-11-21T00:00:00Z"))
				hasNote(t, inc, "/issue/fields/resolutiondate is a date without a time")
			}},
		{"epoch ms as a string", SourceJira, "jira/issue_resolved_cloud.json",
			func(m map[string]any) { m["timestamp"] = "1795219200000" },
			func(t *testing.T, inc *events.IncidentClosed) {
				eq(t, "closed_at", inc.Timestamps.ClosedAt, *ts("2026-11-21T00:00:00Z"))
			}},
		{"every value a string", SourceTheHive, "thehive/case_closed_v5.json",
			func(m map[string]any) {
				o := obj(m, "object")
				o["severity"], o["_createdAt"], o["startDate"], o["number"] = "4", "1795140000000", "1795136400000", "1042"
				obj(m, "details")["endDate"] = "1795219200000"
			},
			func(t *testing.T, inc *events.IncidentClosed) {
				eq(t, "severity", inc.Severity, events.SeverityCritical)
				eq(t, "reported_at", inc.Timestamps.ReportedAt, ts("2026-11-20T02:00:00Z"))
				eq(t, "closed_at", inc.Timestamps.ClosedAt, *ts("2026-11-21T00:00:00Z"))
			}},
		{"booleans as strings", SourceStatuspage, "statuspage/incident_resolved.json",
			func(m map[string]any) { obj(m, "incident")["backfilled"] = "true" },
			func(t *testing.T, inc *events.IncidentClosed) { hasNote(t, inc, "backfilled") }},
		{"reference objects vs empty strings", SourceServiceNow, "servicenow/incident_reclosed_outbound_rest.json",
			func(m map[string]any) {
				m["assigned_to"] = map[string]any{"link": "https://x.service-now.com/api/now/table/sys_user/46d44a23a9fe19810012d100cca80666", "value": "46d44a23a9fe19810012d100cca80666"}
				m["caller_id"] = map[string]any{"display_value": "Fred Luddy", "value": "5137153cc611227c000bbd1bd8cd2005"}
				m["closed_by"] = ""
				m["assignment_group"] = map[string]any{"display_value": "", "value": ""}
			},
			func(t *testing.T, inc *events.IncidentClosed) {
				eq(t, "people", inc.People, []events.Person{{Name: "Fred Luddy", Role: events.RoleReporter}})
				eq(t, "url (instance from a reference link)", inc.URL, "https://x.service-now.com/nav_to.do?uri=incident.do%3Fsys_id%3Da83820b58f723300e7e16c7827bdeed2")
				hasNote(t, inc, "references without a display value")
			}},
		{"bare sys_id reference is not a name", SourceServiceNow, "servicenow/incident_reclosed_outbound_rest.json",
			func(m map[string]any) { m["assigned_to"] = "46d44a23a9fe19810012d100cca80666" },
			func(t *testing.T, inc *events.IncidentClosed) {
				// Only closed_by ("Beth Anglin") names someone; the assignee is a bare sys_id.
				eq(t, "people", inc.People, []events.Person{{Name: "Beth Anglin", Role: events.RoleResponder}})
				hasNote(t, inc, "references without a display value (send sysparm_display_value=all to name people): /assigned_to")
			}},
		{"null priority", SourceServiceNow, "servicenow/incident_resolved_table_api.json",
			func(m map[string]any) { obj(m, "result")["priority"] = nil },
			func(t *testing.T, inc *events.IncidentClosed) {
				eq(t, "severity", inc.Severity, events.SeverityMedium)
				hasNote(t, inc, "no priority or severity given (/result/priority)")
			}},
		{"unknown priority", SourceServiceNow, "servicenow/incident_resolved_table_api.json",
			func(m map[string]any) { obj(m, "result")["priority"] = "9" },
			func(t *testing.T, inc *events.IncidentClosed) {
				eq(t, "severity", inc.Severity, events.SeverityMedium)
				hasNote(t, inc, `priority /result/priority "9"`)
			}},
		{"missing resolution time", SourceServiceNow, "servicenow/incident_resolved_table_api.json",
			func(m map[string]any) { obj(m, "result")["resolved_at"] = "" },
			func(t *testing.T, inc *events.IncidentClosed) {
				eq(t, "closed_at", inc.Timestamps.ClosedAt, received)
				hasNote(t, inc, "resolution time missing (/result/closed_at, /result/resolved_at); closed_at is the time the webhook was received")
			}},
		{"unreadable optional time is dropped", SourcePagerDuty, "pagerduty/incident_resolved.json",
			func(m map[string]any) { obj(m, "event", "data")["created_at"] = "soon" },
			func(t *testing.T, inc *events.IncidentClosed) {
				eq(t, "detected_at", inc.Timestamps.DetectedAt, (*time.Time)(nil))
				hasNote(t, inc, "/event/data/created_at ignored")
			}},
		{"state as display value", SourceServiceNow, "servicenow/incident_reclosed_outbound_rest.json",
			func(m map[string]any) { m["state"] = "Closed" },
			func(t *testing.T, inc *events.IncidentClosed) { eq(t, "external_id", inc.ExternalID, "INC0010077") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.check(t, closing(t, DefaultConfig(), c.source, nil, mutate(t, c.file, c.edit)))
		})
	}
}
