package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/afteraction/afteraction/schemas"
)

// An example document of one event type.
type typedDoc struct {
	typ  string
	name string
	data []byte
}

func examples(t testing.TB) []typedDoc {
	t.Helper()
	files, err := fs.Glob(schemas.FS(), "events/examples/*.example.json")
	if err != nil {
		t.Fatal(err)
	}
	var out []typedDoc
	for _, f := range files {
		m := exampleName.FindStringSubmatch(path.Base(f))
		if m == nil {
			t.Fatalf("example %s: unexpected name", f)
		}
		b, err := fs.ReadFile(schemas.FS(), f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, typedDoc{typ: m[1], name: path.Base(f), data: b})
	}
	return out
}

// agree runs the raw validator and the schema library over data: the raw
// validator's yes must be the library's yes. It returns both answers.
func agree(t *testing.T, typ, what string, data []byte) (raw, tree bool) {
	t.Helper()
	sch, rv, err := compiled.get(typ)
	if err != nil {
		t.Fatal(err)
	}
	treeErr := validateTree(typ, sch, data)
	raw = rv != nil && rv.valid(data)
	if raw && treeErr != nil {
		t.Errorf("%s: %s: the raw validator accepts what the schema rejects (%v):\n%s", typ, what, treeErr, data)
	}
	return raw, treeErr == nil
}

func TestRawValidatorCoversIncidentClosed(t *testing.T) {
	t.Parallel()
	_, rv, err := compiled.get(TypeIncidentClosed)
	if err != nil {
		t.Fatal(err)
	}
	if rv == nil {
		sch, _, _ := compiled.get(TypeIncidentClosed)
		_, err := newRawValidator(sch)
		t.Fatalf("no raw validator for %s: %v", TypeIncidentClosed, err)
	}
	var covered []string
	for _, typ := range Types() {
		if _, rv, _ := compiled.get(typ); rv != nil {
			covered = append(covered, typ)
		}
	}
	t.Logf("raw validators: %d of %d types: %s", len(covered), len(Types()), strings.Join(covered, ", "))
}

// TestRawValidatorAgreesOnExamplesAndMutations runs the raw validator and the
// schema library over every example of every type and over mutations of
// each: every value replaced by values of every JSON type, by strings at and
// past each length bound, by dates, e-mail addresses, URIs and enum values
// valid and not; every member removed, a member added, a name in other
// case; arrays emptied and past their bound. For all of these the two must
// give the same answer, both ways.
func TestRawValidatorAgreesOnExamplesAndMutations(t *testing.T) {
	t.Parallel()
	for _, ex := range examples(t) {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			if raw, tree := agree(t, ex.typ, "example", ex.data); !tree {
				t.Errorf("example: raw %v, schema %v; want both true", raw, tree)
			}
			_, rv, _ := compiled.get(ex.typ)
			total, accepted := 0, 0
			for _, m := range treeMutations(t, ex.data, ex.typ == TypeIncidentClosed) {
				raw, tree := agree(t, ex.typ, m.what, m.data)
				total++
				if tree {
					accepted++
				}
				if rv != nil && raw != tree {
					t.Errorf("%s: raw validator says %v, schema %v:\n%.2000s", m.what, raw, tree, m.data)
				}
			}
			if accepted == 0 || accepted == total {
				t.Fatalf("%d of %d mutations valid: the mutations test nothing", accepted, total)
			}
			t.Logf("%d mutations, %d valid (raw validator: %v)", total, accepted, rv != nil)
		})
	}
}

// TestRawValidatorNeverAcceptsWhatTheSchemaRejects mutates the bytes of the
// incident examples (truncation, inserted bytes, duplicate and escaped
// names, trailing data, deep nesting): the raw validator may say no where
// the schema says yes (a duplicate member, an escaped name), never yes where
// it says no.
func TestRawValidatorNeverAcceptsWhatTheSchemaRejects(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(11, 42))
	for _, ex := range examples(t) {
		if ex.typ != TypeIncidentClosed {
			continue
		}
		for _, data := range byteMutations(rng, ex.data) {
			agree(t, ex.typ, ex.name+" (bytes)", data)
		}
	}
}

// TestValidateWordsProblemsAsTheLibrary checks that Validate returns, to the
// letter, what the schema library says of documents the raw validator does
// not accept.
func TestValidateWordsProblemsAsTheLibrary(t *testing.T) {
	t.Parallel()
	sch, _, err := compiled.get(TypeIncidentClosed)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		``, `{`, `[]`, `{}`, `{"source":"Jira"}`, `{"source":"jira","external_id":"A","title":"t","severity":"bad",` +
			`"timestamps":{"closed_at":"yesterday"},"people":[{"name":"","role":"x"}],"extra":1}`,
	} {
		got, want := Validate(TypeIncidentClosed, []byte(doc)), validateTree(TypeIncidentClosed, sch, []byte(doc))
		if want == nil || got == nil || got.Error() != want.Error() {
			t.Errorf("%s: Validate says %v, the schema library %v", doc, got, want)
		}
	}
}

// FuzzRawValidator checks, for any bytes, that the raw validator accepts
// only what the schema accepts.
func FuzzRawValidator(f *testing.F) {
	for _, ex := range examples(f) {
		if ex.typ == TypeIncidentClosed {
			f.Add(ex.data)
		}
	}
	f.Add([]byte(`{"source":"jira","external_id":"A","title":"t","severity":"low","timestamps":{"closed_at":"2026-01-01T00:00:00Z"},"title":"u"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		agree(t, TypeIncidentClosed, "fuzz", data)
	})
}

type mutation struct {
	what string
	data []byte
}

// replacements are the values put in place of a value: values of every JSON
// type, and when full (for incident.closed, whose validation intake's rate
// hangs on) numbers at their bounds and in other forms, strings at and past
// each length bound, dates, e-mail addresses, URIs and enum values valid and
// not.
func replacements(v any, full bool, k int) []any {
	n := func(s string) json.Number { return json.Number(s) }
	out := []any{nil, true, n("0"), "x", map[string]any{}, []any{}, []any{"x"}}
	if !full {
		return out
	}
	switch v.(type) {
	case json.Number:
		return append(out, false, n("-1"), n("1.5"), n("1e2"), n("1.0"), n("-0"), n("100000"), n("-1e-400"),
			n("100000.0000000000000001"), n("1e400"), n("99999999999999999999"), "7")
	case string:
		out = append(out, "", "critical", "Critical", "commander", "detection", "regulator", "none", "EUR", "eur",
			"12.34", "12.34567", "-7", "jira", "Jira", "a b", "2026-01-01T00:00:00Z", "2026-01-01t00:00:00z",
			"2026-02-30T00:00:00Z", "2026-12-31T23:59:60Z", "2026-01-01T00:00:00+24:00", "2026-01-01 00:00:00Z",
			"2026-01-01T00:00:00.5-03:30", "2026-01-01T00:00:00."+strings.Repeat("1", 50)+"Z", "yesterday",
			"a@example.com", "not an e-mail", "https://example.com/x?y=1", "/relative/path", "mailto:a@example.com",
			"http://[::1:80/", "é\u00e9\t\"\\", "\ufffd", "\u2028<&>")
		// Two of the lengths at and past the schema's bounds, another two at
		// the next path.
		lengths := []int{32, 33, 50, 51, 64, 65, 100, 101, 200, 201, 254, 255, 500, 501, 2000, 2001, 20000, 20001}
		for _, l := range []int{lengths[2*k%len(lengths)], lengths[(2*k+1)%len(lengths)]} {
			out = append(out, strings.Repeat("é", l))
		}
	}
	return out
}

// treeMutations returns data with each value replaced, each member removed,
// members added and arrays resized, one change per document.
func treeMutations(t *testing.T, data []byte, full bool) []mutation {
	t.Helper()
	var out []mutation
	add := func(what string, doc any) {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, mutation{what, b})
	}
	parse := func() any {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	var paths [][]any // each a list of map keys (string) and array indexes (int)
	var walk func(v any, p []any)
	walk = func(v any, p []any) {
		paths = append(paths, slices.Clone(p))
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				walk(c, append(p, k))
			}
		case []any:
			if len(v) > 0 { // the other items are alike
				walk(v[0], append(p, 0))
			}
		}
	}
	walk(parse(), nil)
	slices.SortFunc(paths, func(a, b []any) int { return strings.Compare(fmt.Sprint(a...), fmt.Sprint(b...)) })
	// edit applies f to the value at p in a fresh copy of the document.
	get := func(parent, key any) any {
		if k, ok := key.(string); ok {
			return parent.(map[string]any)[k]
		}
		return parent.([]any)[key.(int)]
	}
	edit := func(p []any, f func(parent any, key any)) any {
		doc := parse()
		if len(p) == 0 {
			return doc
		}
		parent := doc
		for _, k := range p[:len(p)-1] {
			parent = get(parent, k)
		}
		f(parent, p[len(p)-1])
		return doc
	}
	set := func(parent, key, v any) {
		switch k := key.(type) {
		case string:
			parent.(map[string]any)[k] = v
		case int:
			parent.([]any)[k] = v
		}
	}
	for k, p := range paths {
		where := fmt.Sprint(p)
		var current any = edit(nil, nil)
		for _, k := range p {
			current = get(current, k)
		}
		for _, r := range replacements(current, full, k) {
			if len(p) == 0 {
				add(fmt.Sprintf("document = %.20v", r), r)
				continue
			}
			add(fmt.Sprintf("%s = %.20v", where, r), edit(p, func(parent, key any) { set(parent, key, r) }))
		}
		if len(p) == 0 {
			continue
		}
		if k, ok := p[len(p)-1].(string); ok {
			add(where+" removed", edit(p, func(parent, _ any) { delete(parent.(map[string]any), k) }))
			add(where+" in capitals", edit(p, func(parent, _ any) {
				m := parent.(map[string]any)
				m[strings.ToUpper(k)] = m[k]
				delete(m, k)
			}))
		}
		add(where+" gains a member", edit(p, func(parent, key any) {
			if m, ok := get(parent, key).(map[string]any); ok {
				m["extra"] = "x"
			}
		}))
		sizes := []int{0}
		if a, isArray := current.([]any); !isArray {
			sizes = nil
		} else if full {
			sizes = []int{0, 201, 501} // past the maxItems of 200 and 500
			if len(a) > 0 && len(fmt.Sprint(a[0])) < 200 {
				sizes = append(sizes, 5001) // past 5000, where that stays small
			}
		}
		for _, size := range sizes {
			add(fmt.Sprintf("%s with %d items", where, size), edit(p, func(parent, key any) {
				a := get(parent, key).([]any)
				resized := make([]any, size)
				for i := range resized {
					resized[i] = a[i%max(len(a), 1)]
				}
				set(parent, key, resized)
			}))
		}
	}
	return out
}

// byteMutations returns data cut, with bytes inserted or replaced, with a
// member duplicated or its name escaped, with trailing data and nested deep.
func byteMutations(rng *rand.Rand, data []byte) [][]byte {
	var out [][]byte
	with := func(i int, insert string, drop int) []byte {
		b := slices.Clone(data[:i])
		b = append(b, insert...)
		return append(b, data[min(len(data), i+drop):]...)
	}
	inserts := []string{`"`, `\`, "\x00", "\xff", ",", "}", "]", " ", "{", "[", "\\u0000", "\\ud800", "null", "0", "-", "e", "\n"}
	for i := 0; i < len(data); i += 1 + rng.IntN(40) {
		out = append(out, data[:i])
		out = append(out, with(i, inserts[rng.IntN(len(inserts))], 0))
		out = append(out, with(i, inserts[rng.IntN(len(inserts))], 1))
	}
	dup := bytes.Replace(data, []byte(`"title":`), []byte(`"title":"","title":`), 1)
	dupValid := bytes.Replace(data, []byte(`"title":`), []byte(`"title":"first","title":`), 1)
	escaped := bytes.Replace(data, []byte(`"title":`), []byte(`"\u0074itle":`), 1)
	deep := append([]byte(`{"source":`), bytes.Repeat([]byte("["), 300)...)
	out = append(out, dup, dupValid, escaped, deep,
		append(slices.Clone(data), " x"...), append(slices.Clone(data), "{}"...), append([]byte("\xef\xbb\xbf"), data...),
		[]byte(" "), []byte(""), []byte("null"), []byte("[]"), []byte(`"x"`))
	return out
}

// BenchmarkValidate compares validating the rich incident example through the
// schema library's generic tree with the raw validator's one pass.
func BenchmarkValidate(b *testing.B) {
	var data []byte
	for _, ex := range examples(b) {
		if ex.name == TypeIncidentClosed+".example.json" {
			data = ex.data
		}
	}
	sch, rv, err := compiled.get(TypeIncidentClosed)
	if err != nil || rv == nil {
		b.Fatalf("no raw validator: %v", err)
	}
	b.Run("tree", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if err := validateTree(TypeIncidentClosed, sch, data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if !rv.valid(data) {
				b.Fatal("rejected")
			}
		}
	})
}
