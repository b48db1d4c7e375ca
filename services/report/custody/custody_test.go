package custody_test

import (
	"testing"
	"time"

	"github.com/afteraction/afteraction/services/report/custody"
)

func chain(t *testing.T) []custody.Entry {
	t.Helper()
	at := time.Date(2026, 3, 20, 11, 5, 0, 0, time.UTC)
	var out []custody.Entry
	for i, a := range []string{custody.Rendered, custody.Published, custody.Downloaded, custody.Verified, custody.Delivered} {
		var prev *custody.Entry
		if i > 0 {
			prev = &out[i-1]
		}
		out = append(out, custody.Next(prev, custody.Entry{ReportID: "r-1", At: at.Add(time.Duration(i) * time.Minute),
			Action: a, Version: 1, Actor: "compliance <\"x\">", Detail: "line\nbreak", PDFSHA256: "ab"}))
	}
	return out
}

func TestVerifyFindsTheEditedEntry(t *testing.T) {
	t.Parallel()
	if c := custody.Verify(chain(t)); !c.Valid || c.Entries != 5 {
		t.Fatalf("intact chain: %+v", c)
	}
	edits := map[string]func([]custody.Entry) []custody.Entry{
		"actor changed": func(e []custody.Entry) []custody.Entry { e[2].Actor = "someone else"; return e },
		"time changed":  func(e []custody.Entry) []custody.Entry { e[2].At = e[2].At.Add(time.Second); return e },
		"rehashed after change": func(e []custody.Entry) []custody.Entry {
			e[2].Detail = "forged"
			e[2].Hash = custody.Hash(e[2])
			return e
		},
		"entry removed": func(e []custody.Entry) []custody.Entry { return append(e[:2], e[3:]...) },
	}
	want := map[string]int64{"actor changed": 3, "time changed": 3, "rehashed after change": 4, "entry removed": 4}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			c := custody.Verify(edit(chain(t)))
			if c.Valid || c.BrokenAt != want[name] || c.Reason == "" {
				t.Errorf("Verify = %+v, want broken at entry %d", c, want[name])
			}
		})
	}
}
