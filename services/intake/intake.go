// Package intake registers closed incidents from ticketing systems. It
// consumes incident.closed.v1 payloads from NATS (and accepts them over HTTP
// and as native webhooks), checks them against the schema and the rules the
// schema cannot state, stores every distinct content of an incident as a new
// revision, keeps every refused payload with the reason, and announces both
// (afteraction.incident.registered.v1, afteraction.incident.rejected.v1).
package intake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/intake/postgres"
)

// incidentNamespace is UUIDv5(URL, "https://afteraction.dev/ns/incident"); it
// must never change, or every incident would get a new id.
var incidentNamespace = uuid.MustParse("5fcbd394-c4ec-59c2-8c76-fd847d4cd271")

// IncidentID returns the id of the incident (source, externalID): a UUIDv5 of
// "<source>/<externalID>" in a fixed namespace. It is deterministic, so callers
// can know the id before intake has registered the incident.
func IncidentID(source, externalID string) string {
	return uuid.NewSHA1(incidentNamespace, []byte(source+"/"+externalID)).String()
}

// Reasons a payload is rejected (the reason of a reject starts with one of them).
const (
	ReasonInvalidJSON     = "invalid JSON"
	ReasonSchema          = "schema violation"
	ReasonWrongType       = "unexpected ce-type"
	ReasonClosedEarly     = "closed before detection"
	ReasonTimeOutOfRange  = "time out of range"
	ReasonUnknownSeverity = "unknown severity"
	ReasonSourceMismatch  = "source does not match the subject"
	ReasonNUL             = "NUL character in a text field"
	ReasonTooLarge        = "incident too large"
)

// MaxIncidentBytes bounds the canonical JSON of one incident: it travels in
// events (incident.closed, incident.registered) that NATS caps near 1 MiB, so
// what would not fit is rejected at the door instead of failing downstream.
const MaxIncidentBytes = pg.MaxEventBytes - 8<<10

// Invalid says why a payload is not an acceptable incident: a one-line
// reason, the problems naming the fields (JSON pointers) and the HTTP status
// to answer with (400 for what is not JSON, 422 otherwise). It is permanent.
type Invalid struct {
	Status   int
	Reason   string
	Problems []events.Problem
}

func (e *Invalid) Error() string { return e.Reason }

// SourceOfSubject returns the source named by a NATS subject
// incidents.closed.<source> (everything after the prefix).
func SourceOfSubject(subject string) string {
	return strings.TrimPrefix(subject, events.SubjectIncidentClosedPrefix)
}

// Range of acceptable times: nothing in an incident happened before
// MinTime, nor more than MaxFuture after intake received it (clock skew
// between systems stays well below a day).
var MinTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxFuture is how far after its receipt a time of an incident may lie.
const MaxFuture = 24 * time.Hour

// Parse decodes data as an incident.closed.v1 payload, checks it and returns
// it in canonical form. ceType is the ce-type it arrived with ("" when it had
// none); subjectSource, when not "", is the source named by the subject it
// arrived on and must equal the payload's source. Times are checked against
// the current time (see ParseAt). It returns *Invalid for a payload that will
// never be acceptable, and any other error for a failure of intake itself.
func Parse(data []byte, ceType, subjectSource string) (*postgres.Revision, error) {
	return ParseAt(data, ceType, subjectSource, time.Now())
}

// ParseAt is Parse for a payload received at now: a time before MinTime or
// more than MaxFuture after now is *Invalid (422) naming the field.
func ParseAt(data []byte, ceType, subjectSource string, now time.Time) (*postgres.Revision, error) {
	if ceType != "" && ceType != events.TypeIncidentClosed {
		return nil, &Invalid{Status: http.StatusUnprocessableEntity, Reason: ReasonWrongType + ": " + ceType,
			Problems: []events.Problem{{Field: "", Reason: fmt.Sprintf("ce-type %q is not %s", ceType, events.TypeIncidentClosed)}}}
	}
	inc, err := events.Decode[events.IncidentClosed](events.TypeIncidentClosed, data)
	if err != nil {
		var verr *events.ValidationError
		if !errors.As(err, &verr) {
			return nil, err
		}
		if len(verr.Problems) == 1 && verr.Problems[0].Field == "" && strings.HasPrefix(verr.Problems[0].Reason, "invalid JSON") {
			return nil, &Invalid{Status: http.StatusBadRequest, Reason: verr.Problems[0].Reason, Problems: verr.Problems}
		}
		return nil, &Invalid{Status: http.StatusUnprocessableEntity, Reason: ReasonSchema + ": " + strings.TrimPrefix(verr.Error(), "invalid incident.closed.v1 data: "),
			Problems: verr.Problems}
	}
	if inv := Check(&inc, subjectSource, now); inv != nil {
		return nil, inv
	}
	canonical, err := json.Marshal(inc)
	if err != nil {
		return nil, fmt.Errorf("canonical JSON of %s/%s: %w", inc.Source, inc.ExternalID, err)
	}
	if len(canonical) > MaxIncidentBytes {
		return nil, &Invalid{Status: http.StatusRequestEntityTooLarge, Reason: ReasonTooLarge,
			Problems: []events.Problem{{Field: "", Reason: fmt.Sprintf(
				"the canonical incident is %d bytes; at most %d fit in the events that carry it", len(canonical), MaxIncidentBytes)}}}
	}
	if hasNUL(canonical) {
		// Postgres text and jsonb cannot hold U+0000.
		return nil, &Invalid{Status: http.StatusUnprocessableEntity, Reason: ReasonNUL,
			Problems: []events.Problem{{Field: "", Reason: "a text value contains U+0000, which cannot be stored"}}}
	}
	sum := sha256.Sum256(canonical)
	return &postgres.Revision{
		IncidentID:    IncidentID(inc.Source, inc.ExternalID),
		Incident:      inc,
		Canonical:     canonical,
		ContentSHA256: hex.EncodeToString(sum[:]),
	}, nil
}

// Check puts inc's times in UTC and checks what the schema cannot express:
// the source (against subjectSource, when not ""), the severity, the range of
// every time (see ParseAt) and the chronology (closure and resolution never
// before detection, report or start). It returns nil or the *Invalid (422)
// naming the fields. A checked incident always marshals.
func Check(inc *events.IncidentClosed, subjectSource string, now time.Time) *Invalid {
	normalize(inc)
	if inv := checkTimes(inc, now); inv != nil {
		return inv
	}
	return checkRules(inc, subjectSource)
}

// checkRules checks the source, the severity and the chronology.
func checkRules(inc *events.IncidentClosed, subjectSource string) *Invalid {
	if subjectSource != "" && subjectSource != inc.Source {
		return &Invalid{Status: http.StatusUnprocessableEntity, Reason: ReasonSourceMismatch,
			Problems: []events.Problem{{Field: "/source",
				Reason: fmt.Sprintf("source %q differs from %q named by the subject", inc.Source, subjectSource)}}}
	}
	if !inc.Severity.Valid() {
		return &Invalid{Status: http.StatusUnprocessableEntity, Reason: ReasonUnknownSeverity,
			Problems: []events.Problem{{Field: "/severity", Reason: fmt.Sprintf("unknown severity %q", inc.Severity)}}}
	}
	ts := inc.Timestamps
	var problems []events.Problem
	for _, end := range []struct {
		name string
		at   *time.Time
	}{{"closed_at", &ts.ClosedAt}, {"resolved_at", ts.ResolvedAt}} {
		for _, earlier := range []struct {
			name string
			at   *time.Time
		}{{"detected_at", ts.DetectedAt}, {"reported_at", ts.ReportedAt}, {"started_at", ts.StartedAt}} {
			if end.at != nil && earlier.at != nil && end.at.Before(*earlier.at) {
				problems = append(problems, events.Problem{Field: "/timestamps/" + end.name,
					Reason: fmt.Sprintf("%s %s is before %s %s", end.name, end.at.Format(time.RFC3339Nano),
						earlier.name, earlier.at.Format(time.RFC3339Nano))})
			}
		}
	}
	if len(problems) > 0 {
		return &Invalid{Status: http.StatusUnprocessableEntity, Reason: ReasonClosedEarly, Problems: problems}
	}
	return nil
}

// normalize puts every time in UTC, so the same instants written with other
// offsets are the same content.
func normalize(inc *events.IncidentClosed) {
	for _, t := range times(inc) {
		if t.at != nil {
			*t.at = t.at.UTC()
		}
	}
}

// namedTime is a time of an incident with the JSON pointer naming it.
type namedTime struct {
	field string
	at    *time.Time
}

// times returns every time of inc (nil for those it leaves out).
func times(inc *events.IncidentClosed) []namedTime {
	ts := &inc.Timestamps
	out := []namedTime{{"/timestamps/started_at", ts.StartedAt}, {"/timestamps/detected_at", ts.DetectedAt},
		{"/timestamps/reported_at", ts.ReportedAt}, {"/timestamps/impact_assessed_at", ts.ImpactAssessedAt},
		{"/timestamps/contained_at", ts.ContainedAt}, {"/timestamps/eradicated_at", ts.EradicatedAt},
		{"/timestamps/recovered_at", ts.RecoveredAt}, {"/timestamps/resolved_at", ts.ResolvedAt},
		{"/timestamps/closed_at", &ts.ClosedAt}}
	for i := range inc.Timeline {
		out = append(out, namedTime{fmt.Sprintf("/timeline/%d/at", i), &inc.Timeline[i].At})
	}
	for i := range inc.Notifications {
		out = append(out, namedTime{fmt.Sprintf("/notifications/%d/at", i), inc.Notifications[i].At})
	}
	if inc.Impact != nil {
		for _, a := range []struct {
			name string
			a    *events.ImpactAssessment
		}{{"initial", inc.Impact.Initial}, {"final", inc.Impact.Final}} {
			if a.a != nil {
				out = append(out, namedTime{"/impact/" + a.name + "/assessed_at", a.a.AssessedAt})
			}
		}
	}
	return out
}

// checkTimes refuses times before MinTime or more than MaxFuture after now
// (which also keeps every year within what JSON and Postgres can hold).
func checkTimes(inc *events.IncidentClosed, now time.Time) *Invalid {
	latest := now.UTC().Add(MaxFuture)
	var problems []events.Problem
	for _, t := range times(inc) {
		switch {
		case t.at == nil:
		case t.at.Before(MinTime):
			problems = append(problems, events.Problem{Field: t.field, Reason: fmt.Sprintf(
				"%s is before %s", t.at.Format(time.RFC3339Nano), MinTime.Format(time.RFC3339))})
		case t.at.After(latest):
			problems = append(problems, events.Problem{Field: t.field, Reason: fmt.Sprintf(
				"%s is more than %s after the incident was received (%s)", t.at.Format(time.RFC3339Nano), MaxFuture,
				now.UTC().Format(time.RFC3339))})
		}
	}
	if len(problems) > 0 {
		return &Invalid{Status: http.StatusUnprocessableEntity, Reason: ReasonTimeOutOfRange + ": " + problems[0].Field,
			Problems: problems}
	}
	return nil
}

// hasNUL reports whether JSON produced by encoding/json has a \u0000 escape
// (and not an escaped backslash followed by "u0000").
func hasNUL(b []byte) bool {
	esc := []byte(`\u0000`)
	for off := 0; ; {
		i := bytes.Index(b[off:], esc)
		if i < 0 {
			return false
		}
		i += off
		slashes := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			slashes++
		}
		if slashes%2 == 0 {
			return true
		}
		off = i + len(esc)
	}
}

// peekSource returns the "source" member of a JSON object if it has a usable
// one, for labelling a reject; "" otherwise.
func peekSource(data []byte) string {
	var v struct {
		Source string `json:"source"`
	}
	if json.Unmarshal(data, &v) != nil || len(v.Source) > 200 {
		return ""
	}
	return v.Source
}
