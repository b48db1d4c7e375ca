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

// Parse decodes data as an incident.closed.v1 payload, checks it and returns
// it in canonical form. ceType is the ce-type it arrived with ("" when it had
// none); subjectSource, when not "", is the source named by the subject it
// arrived on and must equal the payload's source. It returns *Invalid for a
// payload that will never be acceptable, and any other error for a failure
// of intake itself.
func Parse(data []byte, ceType, subjectSource string) (*postgres.Revision, error) {
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
	normalize(&inc)
	if inv := checkRules(&inc, subjectSource); inv != nil {
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

// checkRules checks what the schema cannot express.
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
	for _, earlier := range []struct {
		name string
		at   *time.Time
	}{{"detected_at", ts.DetectedAt}, {"started_at", ts.StartedAt}} {
		if earlier.at != nil && ts.ClosedAt.Before(*earlier.at) {
			problems = append(problems, events.Problem{Field: "/timestamps/closed_at",
				Reason: fmt.Sprintf("closed_at %s is before %s %s", ts.ClosedAt.Format(time.RFC3339Nano),
					earlier.name, earlier.at.Format(time.RFC3339Nano))})
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
	utc := func(t *time.Time) {
		if t != nil {
			*t = t.UTC()
		}
	}
	ts := &inc.Timestamps
	for _, t := range []*time.Time{ts.StartedAt, ts.DetectedAt, ts.ReportedAt, ts.ImpactAssessedAt,
		ts.ContainedAt, ts.EradicatedAt, ts.RecoveredAt, ts.ResolvedAt, &ts.ClosedAt} {
		utc(t)
	}
	for i := range inc.Timeline {
		utc(&inc.Timeline[i].At)
	}
	for i := range inc.Notifications {
		utc(inc.Notifications[i].At)
	}
	if inc.Impact != nil {
		for _, a := range []*events.ImpactAssessment{inc.Impact.Initial, inc.Impact.Final} {
			if a != nil {
				utc(a.AssessedAt)
			}
		}
	}
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
