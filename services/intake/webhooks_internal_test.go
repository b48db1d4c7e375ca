package intake

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// A request failing authentication may carry 1 MB of headers: the reject
// keeps a bounded number of them, of bounded size.
func TestBoundHeaders(t *testing.T) {
	h := map[string][]string{}
	for i := range 100 {
		h[fmt.Sprintf("X-Junk-%03d", i)] = []string{strings.Repeat("<", 5000), "b", "c", "d", "e", "f"}
	}
	got := boundHeaders(h)
	if len(got) != maxKeptHeaders+1 || got["…"][0] != "68 more headers not kept" {
		t.Fatalf("%d headers kept, note %q", len(got), got["…"])
	}
	for k, vs := range got {
		if k == "…" {
			continue
		}
		if len(vs) != maxKeptHeaderValues || utf8.RuneCountInString(vs[0]) != maxKeptHeaderRunes {
			t.Fatalf("%s: %d values, the first of %d runes", k, len(vs), utf8.RuneCountInString(vs[0]))
		}
	}
	if got := boundHeaders(map[string][]string{"A": {"1"}}); len(got) != 1 || got["A"][0] != "1" {
		t.Fatalf("small headers changed: %v", got)
	}
}
