package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// FuzzRejectEvent checks that the event announcing a reject stays bounded
// whatever the payload, reason and problems (JSON escapes '<', '>', '&' and
// U+2028 to six bytes each), and that it matches its schema.
func FuzzRejectEvent(f *testing.F) {
	f.Add([]byte(`{"a":1}`), "schema violation", "/title", "required", 3)
	f.Add([]byte(strings.Repeat("<", 5000)), strings.Repeat("<", 5000), strings.Repeat("<", 2100), strings.Repeat("&", 3000), 150)
	f.Add([]byte{0xff, 0, 0xfe}, "\x00\u2028", "\xff", "\u2029", 1)
	f.Fuzz(func(t *testing.T, raw []byte, reason, field, why string, n int) {
		n = min(max(n, 0), 500)
		problems := make([]events.Problem, n)
		for i := range problems {
			problems[i] = events.Problem{Field: field, Reason: why}
		}
		m := Message{EventID: "fuzz", Subject: "incidents.closed.x", ReceivedAt: time.Unix(1795219200, 0), Raw: raw,
			Rejected: &Rejection{Source: "x", Reason: reason, Problems: problems}}
		row, ev, err := newReject(m, time.Unix(1795219200, 0))
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Envelope.Data) > 64<<10 {
			t.Fatalf("rejected event of %d bytes", len(ev.Envelope.Data))
		}
		if err := events.Validate(events.TypeIncidentRejected, ev.Envelope.Data); err != nil {
			t.Fatalf("rejected event fails its schema: %v", err)
		}
		if row.size != int64(len(raw)) || len(row.raw) != len(raw) {
			t.Fatalf("row keeps %d of %d bytes", len(row.raw), len(raw))
		}
	})
}
