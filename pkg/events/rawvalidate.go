package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// A rawValidator checks JSON bytes against a compiled schema in one pass over
// the bytes, without building the generic tree the schema library validates
// (that tree and its validation were a third of intake's CPU). It answers
// only "certainly valid": its yes implies the schema library's yes, and
// anything it is not sure of (a keyword it does not implement, a duplicate
// member, a container where a string belongs) is a no, after which Validate
// asks the schema library, which alone words the problems. So Validate's
// answer, and every message it returns, are the library's.
//
// The checks on a value are the library's own: the compiled schema's
// regular expressions, its format functions, its enum values, its lengths
// counted in runes; numbers, booleans and null are handed to the compiled
// subschema itself (they are rare in events). Strings are decoded by
// encoding/json whenever they hold an escape or invalid UTF-8, exactly as the
// library's decoder does.
type rawValidator struct {
	root *rawNode
}

// rawNode is what a schema (with the schemas its $ref chain adds) asks of a
// value. A nil *rawNode allows any value.
type rawNode struct {
	schema *jsonschema.Schema // checks non-string scalars, through the library
	kinds  [][]string         // the JSON types each schema of the chain allows (nil: any)
	// strings
	strChecks []*jsonschema.Schema // the schemas of the chain with string keywords
	// objects
	objSchema *jsonschema.Schema
	props     map[string]int // property name -> index in children
	children  []*rawNode
	required  []int // indexes of required properties
	closed    bool  // additionalProperties: false
	// arrays
	arrSchema *jsonschema.Schema
	items     *rawNode
	hasItems  bool
	minItems  int
	maxItems  int // -1: no bound
	// enum or format on a container: not decided here
	containerNo bool
}

// maxRawDepth bounds the nesting the raw validator follows (encoding/json
// allows 10,000; deeper documents are left to the schema library).
const maxRawDepth = 200

// newRawValidator returns a raw validator for sch, or an error naming the
// keyword it does not implement (then Validate always uses the library).
func newRawValidator(sch *jsonschema.Schema) (*rawValidator, error) {
	root, err := buildRawNode(sch, map[*jsonschema.Schema]*rawNode{})
	if err != nil {
		return nil, err
	}
	return &rawValidator{root: root}, nil
}

func buildRawNode(s *jsonschema.Schema, memo map[*jsonschema.Schema]*rawNode) (*rawNode, error) {
	if n, ok := memo[s]; ok {
		return n, nil
	}
	n := &rawNode{schema: s, maxItems: -1}
	memo[s] = n
	for c := s; c != nil; c = c.Ref {
		if err := rawSupported(c); err != nil {
			return nil, fmt.Errorf("%s: %w", c.Location, err)
		}
		if c.Types != nil && !c.Types.IsEmpty() {
			n.kinds = append(n.kinds, c.Types.ToStrings())
		}
		if c.Enum != nil || c.Format != nil || c.MinLength != nil || c.MaxLength != nil || c.Pattern != nil {
			n.strChecks = append(n.strChecks, c)
		}
		if c.Enum != nil || c.Format != nil {
			n.containerNo = true
		}
		if c.Properties != nil || c.Required != nil || c.AdditionalProperties != nil {
			if n.objSchema != nil {
				return nil, fmt.Errorf("%s: object keywords in two schemas of one $ref chain", c.Location)
			}
			n.objSchema = c
		}
		if c.Items2020 != nil || c.MinItems != nil || c.MaxItems != nil {
			if n.arrSchema != nil {
				return nil, fmt.Errorf("%s: array keywords in two schemas of one $ref chain", c.Location)
			}
			n.arrSchema = c
		}
	}
	if o := n.objSchema; o != nil {
		switch ap := o.AdditionalProperties.(type) {
		case nil:
		case bool:
			n.closed = !ap
		default:
			return nil, fmt.Errorf("%s: additionalProperties as a schema", o.Location)
		}
		names := make([]string, 0, len(o.Properties))
		for name := range o.Properties {
			names = append(names, name)
		}
		slices.Sort(names)
		if len(names) > 64 {
			return nil, fmt.Errorf("%s: more than 64 properties", o.Location)
		}
		n.props = make(map[string]int, len(names))
		for i, name := range names {
			child, err := buildRawNode(o.Properties[name], memo)
			if err != nil {
				return nil, err
			}
			n.props[name] = i
			n.children = append(n.children, child)
		}
		for _, r := range o.Required {
			i, ok := n.props[r]
			if !ok {
				// A required member no property describes: leave such
				// schemas to the library.
				return nil, fmt.Errorf("%s: required %q is not a property", o.Location, r)
			}
			n.required = append(n.required, i)
		}
	}
	if a := n.arrSchema; a != nil {
		if a.Items2020 != nil {
			items, err := buildRawNode(a.Items2020, memo)
			if err != nil {
				return nil, err
			}
			n.items, n.hasItems = items, true
		}
		if a.MinItems != nil {
			n.minItems = *a.MinItems
		}
		if a.MaxItems != nil {
			n.maxItems = *a.MaxItems
		}
	}
	return n, nil
}

// rawSupported returns an error naming the first keyword of s the raw
// validator does not implement.
func rawSupported(s *jsonschema.Schema) error {
	for _, k := range []struct {
		name string
		used bool
	}{
		{"boolean schema", s.Bool != nil}, {"draft before 2019-09", s.DraftVersion < 2019},
		{"$recursiveRef", s.RecursiveRef != nil}, {"$dynamicRef", s.DynamicRef != nil}, {"const", s.Const != nil},
		{"not", s.Not != nil}, {"allOf", s.AllOf != nil}, {"anyOf", s.AnyOf != nil}, {"oneOf", s.OneOf != nil},
		{"if", s.If != nil || s.Then != nil || s.Else != nil},
		{"maxProperties", s.MaxProperties != nil}, {"minProperties", s.MinProperties != nil},
		{"propertyNames", s.PropertyNames != nil}, {"patternProperties", s.PatternProperties != nil},
		{"dependencies", s.Dependencies != nil || s.DependentRequired != nil || s.DependentSchemas != nil},
		{"unevaluatedProperties", s.UnevaluatedProperties != nil}, {"uniqueItems", s.UniqueItems},
		{"contains", s.Contains != nil || s.MinContains != nil || s.MaxContains != nil},
		{"items (before 2020-12)", s.Items != nil}, {"additionalItems", s.AdditionalItems != nil},
		{"prefixItems", s.PrefixItems != nil}, {"unevaluatedItems", s.UnevaluatedItems != nil},
		{"content keywords", s.ContentEncoding != nil || s.ContentMediaType != nil || s.ContentSchema != nil},
		{"exclusive bounds", s.ExclusiveMaximum != nil || s.ExclusiveMinimum != nil},
		{"multipleOf", s.MultipleOf != nil}, {"extensions", len(s.Extensions) > 0},
	} {
		if k.used {
			return fmt.Errorf("keyword %s is not implemented by the raw validator", k.name)
		}
	}
	return nil
}

// valid reports whether data is certainly one JSON value valid against the
// schema (false also when it is not sure).
func (v *rawValidator) valid(data []byte) bool {
	w := rawWalker{b: data}
	w.ws()
	if !w.value(v.root, 0) {
		return false
	}
	w.ws()
	return w.i == len(w.b)
}

// rawWalker is one pass over a document.
type rawWalker struct {
	b []byte
	i int
}

func (w *rawWalker) ws() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// allows reports whether every schema of n's chain allows JSON type kind.
func (n *rawNode) allows(kind string) bool {
	if n == nil {
		return true
	}
	for _, k := range n.kinds {
		if !slices.Contains(k, kind) {
			return false
		}
	}
	return true
}

func (w *rawWalker) value(n *rawNode, depth int) bool {
	if w.i >= len(w.b) || depth > maxRawDepth {
		return false
	}
	switch c := w.b[w.i]; {
	case c == '{':
		return w.object(n, depth)
	case c == '[':
		return w.array(n, depth)
	case c == '"':
		raw, verbatim, ok := w.str()
		if !ok || !n.allows("string") {
			return false
		}
		if n == nil || len(n.strChecks) == 0 {
			return true
		}
		s, ok := text(raw, verbatim)
		return ok && n.checkString(s)
	case c == 't':
		return w.literal("true") && n.checkScalar(true)
	case c == 'f':
		return w.literal("false") && n.checkScalar(false)
	case c == 'n':
		return w.literal("null") && n.checkScalar(nil)
	case c == '-' || c >= '0' && c <= '9':
		start := w.i
		return w.number() && n.checkScalar(json.Number(w.b[start:w.i]))
	}
	return false
}

func (w *rawWalker) literal(lit string) bool {
	if len(w.b)-w.i < len(lit) || string(w.b[w.i:w.i+len(lit)]) != lit {
		return false
	}
	w.i += len(lit)
	return true
}

// number scans a JSON number (RFC 8259 grammar).
func (w *rawWalker) number() bool {
	digits := func() int {
		start := w.i
		for w.i < len(w.b) && w.b[w.i] >= '0' && w.b[w.i] <= '9' {
			w.i++
		}
		return w.i - start
	}
	if w.b[w.i] == '-' {
		w.i++
	}
	if w.i < len(w.b) && w.b[w.i] == '0' {
		w.i++
	} else if digits() == 0 {
		return false
	}
	if w.i < len(w.b) && w.b[w.i] == '.' {
		w.i++
		if digits() == 0 {
			return false
		}
	}
	if w.i < len(w.b) && (w.b[w.i] == 'e' || w.b[w.i] == 'E') {
		w.i++
		if w.i < len(w.b) && (w.b[w.i] == '+' || w.b[w.i] == '-') {
			w.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// str scans a string: its bytes between the quotes, and whether they are
// its value as encoding/json decodes it (no escape, valid UTF-8).
func (w *rawWalker) str() (raw []byte, verbatim, ok bool) {
	start := w.i
	w.i++
	ascii, escaped := true, false
	for w.i < len(w.b) {
		c := w.b[w.i]
		switch {
		case c == '"':
			w.i++
			raw = w.b[start+1 : w.i-1]
			return raw, !escaped && (ascii || utf8.Valid(raw)), true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			escaped = true
			if !w.escape() {
				return nil, false, false
			}
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			w.i++
		}
	}
	return nil, false, false
}

// escape scans one escape sequence of a string.
func (w *rawWalker) escape() bool {
	if w.i+1 >= len(w.b) {
		return false
	}
	switch w.b[w.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		w.i += 2
		return true
	case 'u':
		if w.i+6 > len(w.b) {
			return false
		}
		for _, h := range w.b[w.i+2 : w.i+6] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return false
			}
		}
		w.i += 6
		return true
	}
	return false
}

// text returns the value of the string whose bytes between the quotes are
// raw, as encoding/json decodes it.
func text(raw []byte, verbatim bool) (string, bool) {
	if verbatim {
		return string(raw), true
	}
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return "", false
	}
	return s, true
}

// checkString applies the string keywords of n's chain to s.
func (n *rawNode) checkString(s string) bool {
	for _, c := range n.strChecks {
		if c.Enum != nil && !slices.ContainsFunc(c.Enum.Values, func(v any) bool { e, ok := v.(string); return ok && e == s }) {
			return false
		}
		if c.Format != nil && c.Format.Validate(s) != nil {
			return false
		}
		if c.MinLength != nil || c.MaxLength != nil {
			l := utf8.RuneCountInString(s)
			if c.MinLength != nil && l < *c.MinLength || c.MaxLength != nil && l > *c.MaxLength {
				return false
			}
		}
		if c.Pattern != nil && !c.Pattern.MatchString(s) {
			return false
		}
	}
	return true
}

// checkScalar hands a number, boolean or null to the compiled schema.
func (n *rawNode) checkScalar(v any) bool {
	return n == nil || n.schema.Validate(v) == nil
}

func (w *rawWalker) object(n *rawNode, depth int) bool {
	if !n.allows("object") || n != nil && n.containerNo {
		return false
	}
	w.i++ // {
	var seen uint64
	w.ws()
	if w.i < len(w.b) && w.b[w.i] == '}' {
		w.i++
		return n.requiredSeen(seen)
	}
	for {
		w.ws()
		if w.i >= len(w.b) || w.b[w.i] != '"' {
			return false
		}
		key, verbatim, ok := w.str()
		if !ok || (n != nil && n.objSchema != nil && !verbatim) {
			return false // an escaped or invalid name is left to the library
		}
		w.ws()
		if w.i >= len(w.b) || w.b[w.i] != ':' {
			return false
		}
		w.i++
		w.ws()
		var child *rawNode
		if n != nil && n.objSchema != nil {
			i, known := n.props[string(key)]
			switch {
			case known && seen&(1<<i) != 0:
				return false // a duplicate member: the library keeps the last
			case known:
				seen |= 1 << i
				child = n.children[i]
			case n.closed:
				return false
			}
		}
		if !w.value(child, depth+1) {
			return false
		}
		if end, ok := w.separator('}'); !ok || end {
			return ok && n.requiredSeen(seen)
		}
	}
}

// separator scans what follows a member or an item: a comma (end false) or
// the closing bracket (end true); ok is false for anything else.
func (w *rawWalker) separator(closing byte) (end, ok bool) {
	w.ws()
	if w.i >= len(w.b) {
		return false, false
	}
	switch w.b[w.i] {
	case ',':
		w.i++
		return false, true
	case closing:
		w.i++
		return true, true
	}
	return false, false
}

func (n *rawNode) requiredSeen(seen uint64) bool {
	if n == nil {
		return true
	}
	for _, i := range n.required {
		if seen&(1<<i) == 0 {
			return false
		}
	}
	return true
}

func (w *rawWalker) array(n *rawNode, depth int) bool {
	if !n.allows("array") || n != nil && n.containerNo {
		return false
	}
	w.i++ // [
	var items *rawNode
	if n != nil && n.hasItems {
		items = n.items
	}
	count := 0
	w.ws()
	if w.i < len(w.b) && w.b[w.i] == ']' {
		w.i++
		return n.itemCountOK(0)
	}
	for {
		w.ws()
		if !w.value(items, depth+1) {
			return false
		}
		count++
		if end, ok := w.separator(']'); !ok || end {
			return ok && n.itemCountOK(count)
		}
	}
}

func (n *rawNode) itemCountOK(count int) bool {
	return n == nil || count >= n.minItems && (n.maxItems < 0 || count <= n.maxItems)
}
