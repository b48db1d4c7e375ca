package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/afteraction/afteraction/pkg/httpapi"
)

// value is one node of a vendor payload together with its JSON pointer, so a
// normalizer can read loosely typed fields (numbers sent as strings, objects
// where a string was expected, nulls) and still name the field when it fails.
// Numbers stay json.Number: nothing passes through float64.
type value struct {
	ptr     string
	v       any // nil, bool, json.Number, string, []any or map[string]any
	present bool
}

// parsePayload decodes body as one JSON object. Its errors are 400 problems.
func parsePayload(body []byte) (value, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return value{}, httpapi.NewProblem(http.StatusBadRequest, "invalid JSON", "empty body")
		}
		return value{}, httpapi.NewProblem(http.StatusBadRequest, "invalid JSON", err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return value{}, httpapi.NewProblem(http.StatusBadRequest, "invalid JSON", "trailing data after the JSON value")
	}
	if _, ok := doc.(map[string]any); !ok {
		return value{}, httpapi.NewProblem(http.StatusBadRequest, "invalid JSON", "the body must be a JSON object",
			httpapi.FieldError{Field: "", Reason: "expected an object, got " + value{v: doc, present: true}.kind()})
	}
	return value{v: doc, present: true}, nil
}

// get returns the member key of an object (absent when v is not an object).
func (v value) get(key string) value {
	p := v.ptr + "/" + escapePointer(key)
	m, ok := v.v.(map[string]any)
	if !ok {
		return value{ptr: p}
	}
	x, ok := m[key]
	return value{ptr: p, v: x, present: ok}
}

// path follows keys from v.
func (v value) path(keys ...string) value {
	for _, k := range keys {
		v = v.get(k)
	}
	return v
}

// items returns the elements of an array (nil when v is not an array).
func (v value) items() []value {
	a, ok := v.v.([]any)
	if !ok {
		return nil
	}
	out := make([]value, len(a))
	for i, x := range a {
		out[i] = value{ptr: v.ptr + "/" + strconv.Itoa(i), v: x, present: true}
	}
	return out
}

// isObject reports whether v is a JSON object.
func (v value) isObject() bool {
	_, ok := v.v.(map[string]any)
	return ok
}

// str returns v as trimmed text: a string as itself, a number in its exact
// decimal form, a boolean as "true"/"false"; anything else as "".
func (v value) str() string {
	switch x := v.v.(type) {
	case string:
		return strings.TrimSpace(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// integer returns v as an exact integer, whether sent as a number or a string.
func (v value) integer() (int64, bool) {
	s := v.str()
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// boolean returns v as a boolean, accepting true/false sent as strings or 0/1.
func (v value) boolean() (bool, bool) {
	switch strings.ToLower(v.str()) {
	case "true", "1", "yes":
		return true, true
	case "false", "0", "no":
		return false, true
	}
	return false, false
}

// kind names v's JSON type for error messages.
func (v value) kind() string {
	if !v.present {
		return "nothing (missing)"
	}
	switch x := v.v.(type) {
	case nil:
		return "null"
	case string:
		if strings.TrimSpace(x) == "" {
			return "an empty string"
		}
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v.v)
}

var sysIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// refValue returns the raw value of a ServiceNow field: the "value" member of
// an object form ({"value":..,"display_value":..} or {"link":..,"value":..}),
// else the field as text.
func (v value) refValue() string {
	if v.isObject() {
		return v.get("value").str()
	}
	return v.str()
}

// refDisplay returns the human-readable text of a ServiceNow field: the
// display_value of an object form, else the field as text unless it is a bare
// sys_id (a reference that was not dereferenced has no readable name).
func (v value) refDisplay() string {
	if v.isObject() {
		if d := v.get("display_value").str(); d != "" {
			return d
		}
		if l := v.get("link"); l.present {
			return "" // a reference without display value: only a sys_id
		}
		return v.get("value").str()
	}
	s := v.str()
	if sysIDPattern.MatchString(s) {
		return ""
	}
	return s
}

func escapePointer(token string) string {
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}
