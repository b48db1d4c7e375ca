package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/afteraction/afteraction/schemas"
)

// Problem is one reason data failed validation. Field is a JSON pointer to the
// offending value ("" for the document itself, e.g. "/timestamps/closed_at");
// Reason says what is wrong with it in one line.
type Problem struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ValidationError says why data is not a valid event of Type. Validate and
// Decode return it as *ValidationError; it is a permanent error (bad input
// never becomes valid on retry).
type ValidationError struct {
	Type     string
	Problems []Problem
}

// maxProblems bounds ValidationError.Problems, so hostile input cannot make
// an error (or a reject record built from it) arbitrarily large.
const maxProblems = 100

// maxReason bounds the length of a Problem's Reason in runes; reasons quote
// the offending value, which may be long.
const maxReason = 300

// Error lists the first few problems on one line, e.g.
// `invalid incident.closed.v1 data: /timestamps/closed_at: 'yesterday' is not valid date-time: ...`.
func (e *ValidationError) Error() string {
	const shown = 5
	var sb strings.Builder
	fmt.Fprintf(&sb, "invalid %s data: ", e.Type)
	for i, p := range e.Problems {
		if i == shown {
			fmt.Fprintf(&sb, "; and %d more", len(e.Problems)-shown)
			break
		}
		if i > 0 {
			sb.WriteString("; ")
		}
		field := p.Field
		if field == "" {
			field = "(document)"
		}
		fmt.Fprintf(&sb, "%s: %s", field, p.Reason)
	}
	return sb.String()
}

// validators is the compiled schema of every event type, built once from the
// embedded schema files on first use, and the raw validator of every type
// whose schema uses only the keywords rawValidator implements.
type validators struct {
	once    sync.Once
	schemas map[string]*jsonschema.Schema
	raw     map[string]*rawValidator
	err     error
}

// compiled is the package's only mutable state: the lazily compiled schemas.
var compiled validators

func (v *validators) get(typ string) (*jsonschema.Schema, *rawValidator, error) {
	v.once.Do(func() {
		v.schemas, v.err = compileSchemas(schemas.FS())
		v.raw = map[string]*rawValidator{}
		for typ, sch := range v.schemas {
			if raw, err := newRawValidator(sch); err == nil {
				v.raw[typ] = raw
			}
		}
	})
	if v.err != nil {
		return nil, nil, v.err
	}
	sch, ok := v.schemas[typ]
	if !ok {
		return nil, nil, fmt.Errorf("validate %q: %w", typ, ErrUnknownType)
	}
	return sch, v.raw[typ], nil
}

// compileSchemas compiles every events/<type>.json in fsys, keyed by type.
// All files are added as resources first, so one schema can $ref another by
// its $id. Formats are asserted.
func compileSchemas(fsys fs.FS) (map[string]*jsonschema.Schema, error) {
	files, err := fs.Glob(fsys, "events/*.json")
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	ids := make(map[string]string, len(files))
	for _, name := range files {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read schema %s: %w", name, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", name, err)
		}
		obj, _ := doc.(map[string]any)
		id, _ := obj["$id"].(string)
		if id == "" {
			return nil, fmt.Errorf("schema %s: no $id", name)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", name, err)
		}
		ids[strings.TrimSuffix(path.Base(name), ".json")] = id
	}
	out := make(map[string]*jsonschema.Schema, len(ids))
	for typ, id := range ids {
		sch, err := c.Compile(id)
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", typ, err)
		}
		out[typ] = sch
	}
	return out, nil
}

// Validate checks that data is a JSON document valid against the schema of
// event type typ. It returns a *ValidationError listing the problems (not
// valid JSON is one problem with Field ""), an error wrapping ErrUnknownType
// for an unknown type, or nil. A document the raw validator (see
// rawValidator) finds valid is accepted in one pass over its bytes; any
// other is validated by the schema library, which words the problems.
func Validate(typ string, data []byte) error {
	sch, raw, err := compiled.get(typ)
	if err != nil {
		return err
	}
	if num := outOfRangeNumber(data); num != "" {
		// The schema library reads numbers exactly (big rationals): an
		// exponent of a million digits costs it ~100 ms, and a payload can
		// hold thousands. No field of the contract takes such a number.
		return &ValidationError{Type: typ, Problems: []Problem{{Field: "",
			Reason: fmt.Sprintf("number %s is out of range: at most %d characters and an exponent of at most %d", truncate(num, 40), maxNumberLen, maxExponent)}}}
	}
	if raw != nil && raw.valid(data) {
		return nil
	}
	return validateTree(typ, sch, data)
}

// Bounds of a JSON number Validate accepts (float64 reaches 1.8e308).
const (
	maxNumberLen = 100
	maxExponent  = 400
)

// outOfRangeNumber returns the first number token of the JSON text data
// (outside strings) longer than maxNumberLen or with an exponent beyond
// maxExponent, or "". It does not check that data is JSON.
func outOfRangeNumber(data []byte) string {
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case c == '-' || (c >= '0' && c <= '9'):
			start, exp, inExp := i, 0, false
			for ; i < len(data); i++ {
				d := data[i]
				if d == 'e' || d == 'E' {
					inExp = true
				} else if inExp && d >= '0' && d <= '9' {
					exp = min(exp*10+int(d-'0'), maxExponent+1)
				} else if !(d >= '0' && d <= '9' || d == '.' || d == '-' || d == '+') {
					break
				}
			}
			if i-start > maxNumberLen || exp > maxExponent {
				return string(data[start:i])
			}
			i--
		}
	}
	return ""
}

// validateTree validates data against sch with the schema library, through
// the generic tree it decodes data into.
func validateTree(typ string, sch *jsonschema.Schema, data []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &ValidationError{Type: typ, Problems: []Problem{{Field: "", Reason: "invalid JSON: " + err.Error()}}}
	}
	err = sch.Validate(doc)
	if err == nil {
		return nil
	}
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return fmt.Errorf("validate %s: %w", typ, err)
	}
	var problems []Problem
	collect(verr, &problems)
	slices.SortStableFunc(problems, func(a, b Problem) int { return strings.Compare(a.Field, b.Field) })
	problems = slices.Compact(problems)
	if len(problems) > maxProblems {
		more := len(problems) - maxProblems
		problems = append(problems[:maxProblems:maxProblems], Problem{Reason: fmt.Sprintf("%d more problems not listed", more)})
	}
	return &ValidationError{Type: typ, Problems: problems}
}

var printer = message.NewPrinter(language.English)

// collect flattens a jsonschema error tree into one problem per failing leaf.
func collect(e *jsonschema.ValidationError, out *[]Problem) {
	loc := pointer(e.InstanceLocation)
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			*out = append(*out, Problem{Field: loc + "/" + escape(m), Reason: "required property is missing"})
		}
		return
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			*out = append(*out, Problem{Field: loc + "/" + escape(p), Reason: "property is not allowed"})
		}
		return
	case *kind.AnyOf, *kind.OneOf:
		// "at least one of these properties" reads better as one problem.
		var missing []string
		for _, c := range e.Causes {
			r, ok := c.ErrorKind.(*kind.Required)
			if !ok || len(c.Causes) > 0 || pointer(c.InstanceLocation) != loc {
				missing = nil
				break
			}
			missing = append(missing, r.Missing...)
		}
		if len(missing) > 0 {
			*out = append(*out, Problem{Field: loc, Reason: "needs at least one of: " + strings.Join(missing, ", ")})
			return
		}
	}
	if len(e.Causes) == 0 {
		*out = append(*out, Problem{Field: loc, Reason: truncate(e.ErrorKind.LocalizedString(printer), maxReason)})
		return
	}
	for _, c := range e.Causes {
		collect(c, out)
	}
}

// pointer renders instance location tokens as a JSON pointer (RFC 6901).
func pointer(tokens []string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(escape(t))
	}
	return sb.String()
}

func escape(token string) string {
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// Decode validates data as event type typ and unmarshals it into T, which must
// be the Go type registered for typ (e.g. IncidentClosed for
// TypeIncidentClosed). Inbound types are decoded strictly (unknown fields are
// an error). It returns a *ValidationError for bad data, an error wrapping
// ErrUnknownType for an unknown type, or an error naming the mismatch when T
// is the wrong Go type.
func Decode[T any](typ string, data []byte) (T, error) {
	var v T
	k, ok := registry[typ]
	if !ok {
		return v, fmt.Errorf("decode %q: %w", typ, ErrUnknownType)
	}
	if _, ok := k.newValue().(*T); !ok {
		return v, fmt.Errorf("decode %s into %T: want %T", typ, v, k.newValue())
	}
	if err := Validate(typ, data); err != nil {
		return v, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if k.inbound {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&v); err != nil {
		return v, &ValidationError{Type: typ, Problems: []Problem{{Field: "", Reason: truncate(err.Error(), maxReason)}}}
	}
	return v, nil
}
