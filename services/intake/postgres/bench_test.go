package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/afteraction/afteraction/services/intake"
	"github.com/afteraction/afteraction/services/intake/postgres"
)

// BenchmarkIntakeBatch measures registering distinct new incidents (the rich
// example, ~8 KiB with 15 timeline entries and 7 people each): in batches of
// 500 per transaction as the consumer does, against one transaction per
// incident, and the batch path including decoding and schema validation.
// ns/op is per incident.
func BenchmarkIntakeBatch(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch int
		parse bool
	}{
		{"batch=500", 500, false},
		{"tx-per-incident", 1, false},
		{"batch=500+parse", 500, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, _ := newStore(b)
			raws := make([][]byte, b.N)
			msgs := make([]postgres.Message, b.N)
			base := example(b, nil)
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
