package schemas_test

import (
	"encoding/json"
	"io/fs"
	"path"
	"strings"
	"testing"

	"github.com/afteraction/afteraction/schemas"
)

// TestLayout checks the contract's files against each other: every schema
// declares draft 2020-12 and an $id naming its own file, and has at least one
// example; every example belongs to a schema.
func TestLayout(t *testing.T) {
	t.Parallel()
	fsys := schemas.FS()
	schemaFiles, err := fs.Glob(fsys, "events/*.json")
	if err != nil || len(schemaFiles) == 0 {
		t.Fatalf("no schemas found: %v", err)
	}
	types := map[string]int{}
	for _, f := range schemaFiles {
		typ := strings.TrimSuffix(path.Base(f), ".json")
		types[typ] = 0
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			Schema string `json:"$schema"`
			ID     string `json:"$id"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			t.Errorf("%s: not JSON: %v", f, err)
			continue
		}
		if head.Schema != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema %q, want draft 2020-12", f, head.Schema)
		}
		if want := "https://afteraction.dev/schemas/events/" + typ + ".json"; head.ID != want {
			t.Errorf("%s: $id %q, want %q", f, head.ID, want)
		}
	}
	examples, err := fs.Glob(fsys, "events/examples/*.example.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range examples {
		name := strings.TrimSuffix(path.Base(f), ".example.json")
		typ := name
		if _, ok := types[typ]; !ok {
			typ = name[:max(strings.LastIndex(name, "."), 0)] // <type>.<variant>
		}
		if _, ok := types[typ]; !ok {
			t.Errorf("%s: no schema for this example", f)
			continue
		}
		types[typ]++
	}
	for typ, n := range types {
		if n == 0 {
			t.Errorf("%s: no example", typ)
		}
	}
}
