package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/intake"
	"github.com/afteraction/afteraction/services/intake/postgres"
)

// BenchmarkIntakeBatch measures registering distinct new incidents in batches
// of 500 per transaction as the consumer does, against the raw baseline of one
// transaction per incident, with and without decoding and schema validation.
// Two payloads: "typical" (~1.8 KiB: 4 timeline entries, 3 people, what a
// ticketing webhook usually carries) and "rich" (the ~9.6 KiB example with 15
// timeline entries, 7 people, indicators, notifications, labour and links).
// ns/op is per incident.
func BenchmarkIntakeBatch(b *testing.B) {
	for _, bc := range []struct {
		name    string
		batch   int
		parse   bool
		typical bool
	}{
		{"typical/tx-per-incident", 1, false, true},
		{"typical/batch=500", 500, false, true},
		{"typical/batch=500+parse", 500, true, true},
		{"rich/tx-per-incident", 1, false, false},
		{"rich/batch=500", 500, false, false},
		{"rich/batch=500+parse", 500, true, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := newStore(b)
			raws := make([][]byte, b.N)
			msgs := make([]postgres.Message, b.N)
			base := example(b, nil)
			if bc.typical {
				base = example(b, typical)
			}
			for i := range raws {
				raws[i] = bytes.ReplaceAll(base, []byte("SEC-2026-0142"), fmt.Appendf(nil, "BENCH-%d", i))
				if !bc.parse {
					msgs[i] = msg(b, fmt.Sprintf("ev-%d", i), raws[i])
				}
			}
			ctx := context.Background()
			b.ResetTimer()
			for lo := 0; lo < b.N; lo += bc.batch {
				hi := min(lo+bc.batch, b.N)
				if bc.parse {
					for i := lo; i < hi; i++ {
						rev, err := intake.Parse(raws[i], "", "jira")
						if err != nil {
							b.Fatal(err)
						}
						msgs[i] = postgres.Message{EventID: fmt.Sprintf("ev-%d", i), Subject: "incidents.closed.jira",
							ReceivedAt: time.Now(), Raw: raws[i], Accepted: rev}
					}
				}
				if _, err := s.Apply(ctx, msgs[lo:hi]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "incidents/s")
		})
	}
}

// typical trims the rich example to what a ticketing system's webhook usually carries.
func typical(inc *events.IncidentClosed) {
	inc.Timeline = inc.Timeline[:4]
	inc.People = inc.People[:3]
	inc.AffectedAssets = inc.AffectedAssets[:1]
	inc.Indicators, inc.Notifications, inc.Labour, inc.Links, inc.Notes = nil, nil, nil, nil, nil
	inc.Impact, inc.Playbook, inc.BusinessUnits = nil, nil, nil
	if len(inc.Summary) > 400 {
		inc.Summary = inc.Summary[:400]
	}
}
