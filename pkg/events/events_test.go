package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/afteraction/afteraction/schemas"
)

// exampleName is <ce-type>[.<variant>].example.json.
var exampleName = regexp.MustCompile(`^(.+\.v[0-9]+)(\.[a-z0-9_-]+)?\.example\.json$`)

func schemaTypes(t *testing.T) []string {
	t.Helper()
	files, err := fs.Glob(schemas.FS(), "events/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, f := range files {
		types = append(types, strings.TrimSuffix(path.Base(f), ".json"))
	}
	return types
}

func TestEverySchemaHasAGoTypeAndViceVersa(t *testing.T) {
	t.Parallel()
	files := schemaTypes(t)
	for _, typ := range files {
		if _, ok := registry[typ]; !ok {
			t.Errorf("schema events/%s.json has no Go type in the registry", typ)
		}
	}
	for _, typ := range Types() {
		if !slices.Contains(files, typ) {
			t.Errorf("Go type for %s has no schema file events/%s.json", typ, typ)
		}
	}
}

func TestSchemaIDsMatchFileNames(t *testing.T) {
	t.Parallel()
	for _, typ := range schemaTypes(t) {
		b, err := fs.ReadFile(schemas.FS(), "events/"+typ+".json")
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			ID     string `json:"$id"`
			Schema string `json:"$schema"`
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if want := "https://afteraction.dev/schemas/events/" + typ + ".json"; s.ID != want {
			t.Errorf("%s: $id = %q, want %q", typ, s.ID, want)
		}
		if s.Schema != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema = %q, want draft 2020-12", typ, s.Schema)
		}
	}
}

// TestExamples validates every example, decodes it into its Go type,
// re-encodes it, and checks that the re-encoded form is valid and carries
// exactly the same data: a field the Go type lacks or mangles fails here.
func TestExamples(t *testing.T) {
	t.Parallel()
	files, err := fs.Glob(schemas.FS(), "events/examples/*")
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, f := range files {
		name := path.Base(f)
		m := exampleName.FindStringSubmatch(name)
		if m == nil {
			t.Errorf("%s: name is not <ce-type>[.<variant>].example.json", name)
			continue
		}
		typ := m[1]
		count[typ]++
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			k, ok := registry[typ]
			if !ok {
				t.Fatalf("example for unknown type %s", typ)
			}
			data, err := fs.ReadFile(schemas.FS(), f)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(typ, data); err != nil {
				t.Fatalf("example is invalid: %v", err)
			}
			v := k.newValue()
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("decode into %T: %v", v, err)
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(typ, again); err != nil {
				t.Fatalf("re-encoded %T is invalid: %v", v, err)
			}
			var want, got any
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(again, &got); err != nil {
				t.Fatal(err)
			}
			if d := diff("", want, got); d != "" {
				t.Errorf("round trip through %T changed the data: %s", v, d)
			}
		})
	}
	for _, typ := range Types() {
		if count[typ] == 0 {
			t.Errorf("%s has no example", typ)
		}
	}
	if count[TypeIncidentClosed] < 2 {
		t.Errorf("%s has %d examples, want a minimal and a rich one", TypeIncidentClosed, count[TypeIncidentClosed])
	}
}

// diff describes the first difference between two decoded JSON documents, or
// returns "". Timestamps are compared as instants, since Go re-encodes
// "10:00:00.010Z" as "10:00:00.01Z".
func diff(at string, want, got any) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return at + ": not an object"
		}
		for k := range w {
			if _, ok := g[k]; !ok {
				return at + "/" + k + ": lost"
			}
			if d := diff(at+"/"+k, w[k], g[k]); d != "" {
				return d
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				return at + "/" + k + ": added"
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return at + ": array length or type changed"
		}
		for i := range w {
			if d := diff(fmt.Sprintf("%s/%d", at, i), w[i], g[i]); d != "" {
				return d
			}
		}
		return ""
	case string:
		if g, ok := got.(string); ok && g != w {
			tw, err1 := time.Parse(time.RFC3339Nano, w)
			tg, err2 := time.Parse(time.RFC3339Nano, g)
			if err1 == nil && err2 == nil && tw.Equal(tg) {
				return ""
			}
		}
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Sprintf("%s: %v became %v", at, want, got)
	}
	return ""
}

func readExample(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS(), "events/examples/"+name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	minimal := func(t *testing.T) map[string]any { return readExample(t, "incident.closed.v1.minimal.example.json") }
	rich := func(t *testing.T) map[string]any { return readExample(t, "incident.closed.v1.example.json") }
	tests := []struct {
		name      string
		typ       string
		data      func(t *testing.T) any
		wantField string
		wantIn    string // part of the reason
	}{
		{"closed_at not a date-time", TypeIncidentClosed, func(t *testing.T) any {
			m := minimal(t)
			m["timestamps"] = map[string]any{"closed_at": "yesterday"}
			return m
		}, "/timestamps/closed_at", "date-time"},
		{"unknown severity", TypeIncidentClosed, func(t *testing.T) any {
			m := minimal(t)
			m["severity"] = "P2"
			return m
		}, "/severity", "must be one of"},
		{"missing closed_at", TypeIncidentClosed, func(t *testing.T) any {
			m := minimal(t)
			m["timestamps"] = map[string]any{"started_at": "2026-03-11T16:00:00Z"}
			return m
		}, "/timestamps/closed_at", "missing"},
		{"missing timestamps", TypeIncidentClosed, func(t *testing.T) any {
			m := minimal(t)
			delete(m, "timestamps")
			return m
		}, "/timestamps", "missing"},
		{"bad email", TypeIncidentClosed, func(t *testing.T) any {
			m := rich(t)
			m["people"].([]any)[2].(map[string]any)["email"] = "lukasz.wisniewski(at)nordlicht"
			return m
		}, "/people/2/email", "email"},
		{"additional top-level property", TypeIncidentClosed, func(t *testing.T) any {
			m := minimal(t)
			m["severty"] = "high"
			return m
		}, "/severty", "not allowed"},
		{"misspelt nested property", TypeIncidentClosed, func(t *testing.T) any {
			m := minimal(t)
			m["timestamps"].(map[string]any)["closedAt"] = "2026-03-11T17:04:12Z"
			return m
		}, "/timestamps/closedAt", "not allowed"},
		{"money as a float", TypeIncidentClosed, func(t *testing.T) any {
			m := minimal(t)
			m["impact"] = map[string]any{"estimated_cost": map[string]any{"amount": 18450.5, "currency": "EUR"}}
			return m
		}, "/impact/estimated_cost/amount", "string"},
		{"source with upper case", TypeIncidentClosed, func(t *testing.T) any {
			m := minimal(t)
			m["source"] = "PagerDuty"
			return m
		}, "/source", "pattern"},
		{"title too long", TypeIncidentClosed, func(t *testing.T) any {
			m := minimal(t)
			m["title"] = strings.Repeat("ä", 501)
			return m
		}, "/title", "maxLength"},
		{"embedded incident checked through $ref", TypeIncidentRegistered, func(t *testing.T) any {
			m := readExample(t, "afteraction.incident.registered.v1.example.json")
			m["incident"].(map[string]any)["severity"] = "urgent"
			return m
		}, "/incident/severity", "must be one of"},
		{"rating out of range", TypeReviewCompleted, func(t *testing.T) any {
			m := readExample(t, "afteraction.review.completed.v1.example.json")
			answers := m["responses"].([]any)[0].(map[string]any)["answers"].([]any)
			answers[1].(map[string]any)["rating"] = 6
			return m
		}, "/responses/0/answers/1/rating", "5"},
		{"due date with a time", TypeActionCreated, func(t *testing.T) any {
			m := readExample(t, "afteraction.action.created.v1.example.json")
			m["due_date"] = "2026-04-30T00:00:00Z"
			return m
		}, "/due_date", "date"},
		{"action status names no action", TypeActionStatus, func(t *testing.T) any {
			m := readExample(t, "action.status.v1.example.json")
			delete(m, "external_key")
			return m
		}, "", "action_id, external_key"},
		{"action status with bad uuid", TypeActionStatus, func(t *testing.T) any {
			m := readExample(t, "action.status.v1.example.json")
			m["action_id"] = "SEC-2211"
			return m
		}, "/action_id", "uuid"},
		{"not JSON", TypeIncidentClosed, func(t *testing.T) any {
			return json.RawMessage(`{"source": "jira",`)
		}, "", "invalid JSON"},
		{"trailing data", TypeIncidentClosed, func(t *testing.T) any {
			b, _ := json.Marshal(minimal(t))
			return json.RawMessage(append(b, []byte(` {}`)...))
		}, "", "invalid JSON"},
		{"an array", TypeIncidentClosed, func(t *testing.T) any {
			return []any{}
		}, "", "want object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var data []byte
			if raw, ok := tt.data(t).(json.RawMessage); ok {
				data = raw
			} else {
				var err error
				if data, err = json.Marshal(tt.data(t)); err != nil {
					t.Fatal(err)
				}
			}
			err := Validate(tt.typ, data)
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if verr.Type != tt.typ {
				t.Errorf("Type = %q, want %q", verr.Type, tt.typ)
			}
			i := slices.IndexFunc(verr.Problems, func(p Problem) bool { return p.Field == tt.wantField })
			if i < 0 {
				t.Fatalf("no problem at %q in %+v", tt.wantField, verr.Problems)
			}
			if r := verr.Problems[i].Reason; !strings.Contains(r, tt.wantIn) {
				t.Errorf("reason %q does not mention %q", r, tt.wantIn)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.wantField) || !strings.Contains(msg, tt.typ) {
				t.Errorf("Error() = %q, want one line naming the type and %q", msg, tt.wantField)
			}
			if tt.typ == TypeIncidentClosed {
				if _, err := Decode[IncidentClosed](tt.typ, data); !errors.As(err, new(*ValidationError)) {
					t.Errorf("Decode = %v, want the *ValidationError Validate returned", err)
				}
			}
		})
	}
}

func TestProblemsAreBounded(t *testing.T) {
	t.Parallel()
	m := readExample(t, "incident.closed.v1.minimal.example.json")
	var tags []any
	for range 150 {
		tags = append(tags, 7)
	}
	m["tags"] = tags
	data, _ := json.Marshal(m)
	var verr *ValidationError
	if err := Validate(TypeIncidentClosed, data); !errors.As(err, &verr) {
		t.Fatalf("Validate = %v, want a *ValidationError", err)
	}
	if n := len(verr.Problems); n != maxProblems+1 {
		t.Errorf("%d problems, want %d and a note of the rest", n, maxProblems+1)
	}
}

func TestUnknownType(t *testing.T) {
	t.Parallel()
	if err := Validate("incident.opened.v1", []byte(`{}`)); !errors.Is(err, ErrUnknownType) {
		t.Errorf("Validate = %v, want ErrUnknownType", err)
	}
	if _, err := Decode[IncidentClosed]("incident.closed.v2", []byte(`{}`)); !errors.Is(err, ErrUnknownType) {
		t.Errorf("Decode = %v, want ErrUnknownType", err)
	}
	if _, err := SubjectOf("afteraction.review.completed.v2"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("SubjectOf = %v, want ErrUnknownType", err)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	data, err := fs.ReadFile(schemas.FS(), "events/examples/incident.closed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	inc, err := Decode[IncidentClosed](TypeIncidentClosed, data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := inc.Timestamps.ClosedAt, time.Date(2026, 3, 5, 10, 12, 37, 500_000_000, time.UTC); !got.Equal(want) {
		t.Errorf("ClosedAt = %v, want %v", got, want)
	}
	if len(inc.Timeline) != 15 || inc.Severity != SeverityHigh || inc.Impact.EstimatedCost.Amount != "18450.00" {
		t.Errorf("decoded %d timeline entries, severity %q, cost %+v", len(inc.Timeline), inc.Severity, inc.Impact.EstimatedCost)
	}
	if _, err := Decode[ReviewCompleted](TypeIncidentClosed, data); err == nil || errors.As(err, new(*ValidationError)) {
		t.Errorf("Decode into the wrong Go type = %v, want a type mismatch error", err)
	}
}

// privateSubjects are the types that carry bearer secrets (invitation links,
// meeting video links): they go on the NOTIFY stream, readable only by notify.
var privateSubjects = map[string]string{
	TypeReviewInvitation: "notify.review.invitation",
	TypeReviewMeeting:    "notify.review.meeting",
}

func TestSubjectOf(t *testing.T) {
	t.Parallel()
	version := regexp.MustCompile(`\.v[0-9]+$`)
	for _, typ := range Types() {
		subject, err := SubjectOf(typ)
		if typ == TypeIncidentClosed || typ == TypeActionStatus {
			if err == nil {
				t.Errorf("SubjectOf(%s) = %q, want an error for an inbound type", typ, subject)
			}
			continue
		}
		if typ == TypeBridgeDeliveryFailed {
			if err == nil {
				t.Errorf("SubjectOf(%s) = %q, want an error for a dead-letter type", typ, subject)
			}
			continue
		}
		if private := privateSubjects[typ]; private != "" {
			if subject != private || err != nil || !strings.HasPrefix(subject, "notify.") {
				t.Errorf("SubjectOf(%s) = %q, %v; want %q in the private NOTIFY stream", typ, subject, err, private)
			}
			continue
		}
		if want := version.ReplaceAllString(typ, ""); subject != want || err != nil {
			t.Errorf("SubjectOf(%s) = %q, %v; want %q", typ, subject, err, want)
		}
		if !strings.HasPrefix(subject, "afteraction.") {
			t.Errorf("SubjectOf(%s) = %q, outside the AFTERACTION stream", typ, subject)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	before := time.Now()
	e, err := New(TypeActionUpdated, "afteraction/tracker", "0195a3c2-7f41-7b8e-9d2a-4c6e8f1a2b3c",
		ActionUpdated{ActionID: "0195b1e4-7d10-7e21-8f32-4a5b6c7d8e9f", IncidentID: "0195a3c2-7f41-7b8e-9d2a-4c6e8f1a2b3c",
			Status: StatusDone, ChangedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	id, err := uuid.Parse(e.ID)
	if err != nil || id.Version() != 7 {
		t.Errorf("ID = %q (%v), want a UUIDv7", e.ID, err)
	}
	if e.Time.Location() != time.UTC || e.Time.Before(before.Add(-time.Second)) {
		t.Errorf("Time = %v, want now in UTC", e.Time)
	}
	if err := Validate(e.Type, e.Data); err != nil {
		t.Errorf("data of New is invalid: %v", err)
	}
	e2, _ := New(TypeActionUpdated, "afteraction/tracker", "", struct{}{})
	if e2.ID == e.ID {
		t.Error("two events got the same id")
	}
	if _, err := New(TypeActionUpdated, "afteraction/tracker", "", func() {}); err == nil {
		t.Error("New accepted data that cannot be marshalled")
	}
}

func TestEnums(t *testing.T) {
	t.Parallel()
	if !SeverityInformational.Valid() || Severity("P1").Valid() {
		t.Error("Severity.Valid")
	}
	if !PhasePostIncident.Valid() || Phase("lessons").Valid() {
		t.Error("Phase.Valid")
	}
	if !RoleBusinessOwner.Valid() || Role("").Valid() {
		t.Error("Role.Valid")
	}
	if !StatusWontDo.Valid() || Status("closed").Valid() {
		t.Error("Status.Valid")
	}
}

// Every role of the contract has a label a person reads.
func TestRoleLabels(t *testing.T) {
	t.Parallel()
	b, err := fs.ReadFile(schemas.FS(), "events/incident.closed.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var sch struct {
		Defs struct {
			Role struct {
				Enum []Role `json:"enum"`
			} `json:"role"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(b, &sch); err != nil || len(sch.Defs.Role.Enum) == 0 {
		t.Fatalf("roles of the schema: %v", err)
	}
	for _, r := range sch.Defs.Role.Enum {
		if l := r.Label(); l == string(r) || l == "" || strings.Contains(l, "_") {
			t.Errorf("role %s has label %q", r, l)
		}
	}
	if RoleBusinessOwner.Label() != "Business owner" || Role("auditor").Label() != "auditor" {
		t.Errorf("labels: %q %q", RoleBusinessOwner.Label(), Role("auditor").Label())
	}
}

// An invitation carries its link; a withdrawal never does.
func TestInvitationLinkOnlyWhenNotWithdrawn(t *testing.T) {
	t.Parallel()
	b, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.review.invitation.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	check := func(name string, mutate func(map[string]any), wantField string) {
		t.Helper()
		d := maps.Clone(doc)
		mutate(d)
		data, _ := json.Marshal(d)
		err := Validate(TypeReviewInvitation, data)
		if wantField == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			return
		}
		var verr *ValidationError
		if !errors.As(err, &verr) || !strings.Contains(verr.Error(), wantField) {
			t.Errorf("%s: error %v, want one naming %s", name, err, wantField)
		}
	}
	check("opened without a link", func(d map[string]any) { delete(d, "form_url") }, "form_url")
	check("withdrawn with a link", func(d map[string]any) { d["reason"] = "withdrawn" }, "form_url")
	check("withdrawn without a link", func(d map[string]any) { d["reason"] = "withdrawn"; delete(d, "form_url") }, "")
}

// A number no field of the contract could hold is refused before the schema
// library reads it exactly (which costs it ~100 ms for a million-digit
// exponent); ordinary numbers, and such text inside strings, pass.
func TestOutOfRangeNumbersRefusedCheaply(t *testing.T) {
	t.Parallel()
	b, err := fs.ReadFile(schemas.FS(), "events/examples/incident.closed.v1.minimal.example.json")
	if err != nil {
		t.Fatal(err)
	}
	with := func(impact string) []byte {
		return []byte(strings.Replace(string(b), "{", `{"impact": {"records_affected": `+impact+`}, `, 1))
	}
	for _, n := range []string{"1e1000000", "1E-1000000", "-2e+401", strings.Repeat("9", 101)} {
		var verr *ValidationError
		if err := Validate(TypeIncidentClosed, with(n)); !errors.As(err, &verr) || !strings.Contains(verr.Error(), "out of range") {
			t.Errorf("%.20s: %v, want out of range", n, err)
		}
	}
	for _, n := range []string{"0", "12", "1e3", "1.5e+2"} {
		if err := Validate(TypeIncidentClosed, with(n)); err != nil && strings.Contains(err.Error(), "out of range") {
			t.Errorf("%s: %v", n, err)
		}
	}
	inText := []byte(strings.Replace(string(b), "{", `{"summary": "see \"1e1000000\" and 1e1000000", `, 1))
	if err := Validate(TypeIncidentClosed, inText); err != nil && strings.Contains(err.Error(), "out of range") {
		t.Errorf("a number inside a string: %v", err)
	}
}
