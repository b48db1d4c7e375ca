package postgres_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/afteraction/afteraction/pkg/events"
)

// hostilePayload is a schema-invalid incident of ~210 KB: ~100 unknown
// property names made of '<', which JSON escapes to six bytes each.
func hostilePayload(t testing.TB) []byte {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(example(t, nil), &obj); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		obj[strings.Repeat("<", 2090)+fmt.Sprint(i)] = true
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		t.Fatal(err)
	}
	if buf.Len() < 200<<10 {
		t.Fatalf("hostile payload is only %d bytes", buf.Len())
	}
	return buf.Bytes()
}

func TestRejectEventOfHostilePayloadIsBounded(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	raw := hostilePayload(t)
	bad := msg(t, "hostile-1", raw)
	if bad.Rejected == nil || len(bad.Rejected.Problems) < 100 {
		t.Fatalf("want a reject with ~100 problems, got %+v", bad.Rejected)
	}
	res := apply(t, s, msg(t, "good-1", example(t, nil)), bad)
	if res[0].Outcome != "registered" || res[1].Outcome != "rejected" {
		t.Fatalf("outcomes %v, want registered, rejected", res)
	}
	var ev events.IncidentRejected
	for _, r := range outbox(t, pool) {
		if r.Type != events.TypeIncidentRejected {
			continue
		}
		if len(r.Data) > 64<<10 {
			t.Fatalf("rejected event is %d bytes, want at most 64 KiB", len(r.Data))
		}
		if err := events.Validate(r.Type, r.Data); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(r.Data, &ev); err != nil {
			t.Fatal(err)
		}
	}
	if ev.RejectID != res[1].RejectID || ev.PayloadSize != int64(len(raw)) {
		t.Fatalf("event %+v does not reference reject %s of %d bytes", ev, res[1].RejectID, len(raw))
	}
	last := ev.Problems[len(ev.Problems)-1]
	if !strings.Contains(last.Reason, "more problems") || !strings.Contains(last.Reason, ev.RejectID) {
		t.Fatalf("last problem %q does not say what was left out and where it is kept", last.Reason)
	}
	// The row keeps the payload and every problem.
	if n := count(t, pool, `SELECT count(*) FROM rejects WHERE id = $1 AND raw = $2 AND jsonb_array_length(problems) >= 100`,
		res[1].RejectID, raw); n != 1 {
		t.Fatalf("reject row with the raw payload and every problem: %d rows", n)
	}
}
