package intake_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/intake"
)

func TestIncidentID(t *testing.T) {
	t.Parallel()
	a := intake.IncidentID("jira", "INC-1")
	if a != intake.IncidentID("jira", "INC-1") {
		t.Fatal("IncidentID is not deterministic")
	}
	if a == intake.IncidentID("pagerduty", "INC-1") {
		t.Fatal("the same external id from two sources must be two incidents")
	}
	// Pinned: changing the namespace would give every incident a new id.
	if want := "8a0699d0-6ee9-5245-9557-60cc1dc40584"; a != want {
		t.Fatalf("IncidentID(jira, INC-1) = %s, want %s", a, want)
	}
}

func TestParseCanonicalContent(t *testing.T) {
	t.Parallel()
	inc := incident(t, "jira", "SEC-1")
	compact, _ := json.Marshal(inc)
	indented, _ := json.MarshalIndent(inc, "", "\t")
	// The same instants written with another offset.
	shifted := inc
	loc := time.FixedZone("CET", 3600)
	closed := inc.Timestamps.ClosedAt.In(loc)
	shifted.Timestamps.ClosedAt = closed
	offset, _ := json.Marshal(shifted)
	if !strings.Contains(string(offset), "+01:00") {
		t.Fatal("test payload lacks the offset")
	}
	var shas []string
	for _, raw := range [][]byte{compact, indented, offset} {
		rev, err := intake.Parse(raw, events.TypeIncidentClosed, "jira")
		if err != nil {
			t.Fatal(err)
		}
		shas = append(shas, rev.ContentSHA256)
		if rev.IncidentID != intake.IncidentID("jira", "SEC-1") {
			t.Fatalf("incident id %s", rev.IncidentID)
		}
	}
	if shas[0] != shas[1] || shas[0] != shas[2] {
		t.Fatalf("same content, different digests: %v", shas)
	}
	inc.Title += "!"
	changed, _ := json.Marshal(inc)
	if rev, err := intake.Parse(changed, "", "jira"); err != nil || rev.ContentSHA256 == shas[0] {
		t.Fatalf("changed content kept its digest (err %v)", err)
	}
}

func noEdit(*events.IncidentClosed) {}

// withTime sets the timestamp name of the incident raw to value, written as
// is (json.Marshal could not write a year beyond 9999).
func withTime(t *testing.T, raw []byte, name, value string) []byte {
	t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	var ts map[string]json.RawMessage
	if err := json.Unmarshal(obj["timestamps"], &ts); err != nil {
		t.Fatal(err)
	}
	ts[name] = json.RawMessage(`"` + value + `"`)
	obj["timestamps"], _ = json.Marshal(ts)
	out, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	good := incident(t, "jira", "SEC-1")
	marshal := func(edit func(*events.IncidentClosed)) []byte {
		inc := good
		inc.Timestamps = good.Timestamps
		edit(&inc)
		b, _ := json.Marshal(inc)
		return b
	}
	for _, tc := range []struct {
		name          string
		raw           []byte
		ceType, src   string
		status        int
		reason, field string
	}{
		{"not JSON", []byte("{"), "", "jira", http.StatusBadRequest, intake.ReasonInvalidJSON, ""},
		{"wrong ce-type", marshal(func(*events.IncidentClosed) {}), "action.status.v1", "jira", http.StatusUnprocessableEntity, intake.ReasonWrongType, ""},
		{"source differs from subject", marshal(func(*events.IncidentClosed) {}), "", "pagerduty", http.StatusUnprocessableEntity, intake.ReasonSourceMismatch, "/source"},
		{"closed before detected", marshal(func(i *events.IncidentClosed) {
			t := i.Timestamps.DetectedAt.Add(-time.Second)
			i.Timestamps.ClosedAt = t
			i.Timestamps.StartedAt = nil
		}), "", "jira", http.StatusUnprocessableEntity, intake.ReasonClosedEarly, "/timestamps/closed_at"},
		{"closed before started", marshal(func(i *events.IncidentClosed) {
			i.Timestamps.ClosedAt = i.Timestamps.StartedAt.Add(-time.Second)
			i.Timestamps.DetectedAt = nil
		}), "", "jira", http.StatusUnprocessableEntity, intake.ReasonClosedEarly, "/timestamps/closed_at"},
		{"closed before reported", marshal(func(i *events.IncidentClosed) {
			i.Timestamps.ClosedAt = i.Timestamps.ReportedAt.Add(-time.Second)
			i.Timestamps.DetectedAt, i.Timestamps.StartedAt, i.Timestamps.ResolvedAt = nil, nil, nil
		}), "", "jira", http.StatusUnprocessableEntity, intake.ReasonClosedEarly, "/timestamps/closed_at"},
		{"resolved before started", marshal(func(i *events.IncidentClosed) {
			r := i.Timestamps.StartedAt.Add(-time.Hour)
			i.Timestamps.ResolvedAt = &r
		}), "", "jira", http.StatusUnprocessableEntity, intake.ReasonClosedEarly, "/timestamps/resolved_at"},
		{"closed in year 10000 UTC", withTime(t, marshal(noEdit), "closed_at", "9999-12-31T23:00:00-05:00"), "", "jira",
			http.StatusUnprocessableEntity, intake.ReasonTimeOutOfRange, "/timestamps/closed_at"},
		{"closed more than a day in the future", withTime(t, marshal(noEdit), "closed_at", time.Now().Add(49*time.Hour).Format(time.RFC3339)), "", "jira",
			http.StatusUnprocessableEntity, intake.ReasonTimeOutOfRange, "/timestamps/closed_at"},
		{"started before 1970", withTime(t, marshal(noEdit), "started_at", "1969-12-31T23:59:59Z"), "", "jira",
			http.StatusUnprocessableEntity, intake.ReasonTimeOutOfRange, "/timestamps/started_at"},
		{"timeline in year 0", marshal(func(i *events.IncidentClosed) {
			i.Timeline = append([]events.TimelineEntry(nil), i.Timeline...)
			i.Timeline[1].At = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
		}), "", "jira", http.StatusUnprocessableEntity, intake.ReasonTimeOutOfRange, "/timeline/1/at"},
		{"unknown severity", marshal(func(i *events.IncidentClosed) { i.Severity = "apocalyptic" }), "", "jira", http.StatusUnprocessableEntity, intake.ReasonSchema, "/severity"},
		{"NUL", marshal(func(i *events.IncidentClosed) { i.Title = "a\x00b" }), "", "jira", http.StatusUnprocessableEntity, intake.ReasonNUL, ""},
		{"too large for the events that carry it", marshal(func(i *events.IncidentClosed) {
			for len(i.Timeline) < 120 {
				e := i.Timeline[0]
				e.Detail = strings.Repeat("log line ", 1500)
				i.Timeline = append(i.Timeline, e)
			}
		}), "", "jira", http.StatusRequestEntityTooLarge, intake.ReasonTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := intake.Parse(tc.raw, tc.ceType, tc.src)
			var inv *intake.Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("Parse = %v, want *Invalid", err)
			}
			if inv.Status != tc.status || !strings.HasPrefix(inv.Reason, tc.reason) {
				t.Fatalf("got %d %q, want %d %q", inv.Status, inv.Reason, tc.status, tc.reason)
			}
			found := false
			for _, p := range inv.Problems {
				found = found || p.Field == tc.field
			}
			if !found {
				t.Fatalf("problems %+v do not name %q", inv.Problems, tc.field)
			}
		})
	}
	// A backslash followed by "u0000" is text, not NUL.
	if _, err := intake.Parse(marshal(func(i *events.IncidentClosed) { i.Title = `C:\u0000` }), "", "jira"); err != nil {
		t.Fatalf("escaped backslash taken for NUL: %v", err)
	}
}

// BenchmarkParse measures decoding, schema validation and canonicalisation of
// the rich example incident (~8 KiB), the CPU part of registering one.
func BenchmarkParse(b *testing.B) {
	raw, err := fs.ReadFile(schemas.FS(), "events/examples/incident.closed.v1.example.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := intake.Parse(raw, "", "jira"); err != nil {
			b.Fatal(err)
		}
	}
}
