package report_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/report/custody"
)

// TestEditingAnyCustodyRowBreaksTheChainThere stands in for someone who can
// bypass the append-only trigger (the schema owner): whichever row they edit,
// the recomputed chain breaks at that row.
func TestEditingAnyCustodyRowBreaksTheChainThere(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	reportID := report.ReportIDFor(rv.IncidentID)
	if err := f.svc.HandleReviewCompleted(ctx, message("e1"), rv); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{custody.Downloaded, custody.Verified, custody.Delivered} {
		if _, err := f.store.AppendCustody(ctx, custody.Entry{ReportID: reportID, At: time.Now(), Action: a, Version: 1,
			Actor: "compliance (test)", Detail: a + " in a test"}); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := f.store.Custody(ctx, reportID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
	}
	if fmt.Sprint(actions) != "[rendered published downloaded verified delivered]" {
		t.Fatalf("actions = %v", actions)
	}
	if c := custody.Verify(entries); !c.Valid {
		t.Fatalf("fresh chain: %+v", c)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE custody_log SET detail = 'x'`); err == nil {
		t.Fatal("the append-only trigger let an UPDATE through")
	}

	if _, err := f.pool.Exec(ctx, `ALTER TABLE custody_log DISABLE TRIGGER custody_log_append_only`); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Run(fmt.Sprint("edit entry ", e.Seq), func(t *testing.T) {
			if _, err := f.pool.Exec(ctx, `UPDATE custody_log SET actor = actor || ' (edited)' WHERE seq = $1`, e.Seq); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if _, err := f.pool.Exec(ctx, `UPDATE custody_log SET actor = $2 WHERE seq = $1`, e.Seq, e.Actor); err != nil {
					t.Fatal(err)
				}
			}()
			got, err := f.store.Custody(ctx, reportID)
			if err != nil {
				t.Fatal(err)
			}
			if c := custody.Verify(got); c.Valid || c.BrokenAt != e.Seq {
				t.Errorf("after editing entry %d: %+v, want broken at %d", e.Seq, c, e.Seq)
			}
		})
	}
	got, err := f.store.Custody(ctx, reportID)
	if err != nil {
		t.Fatal(err)
	}
	if c := custody.Verify(got); !c.Valid {
		t.Errorf("restored chain: %+v", c)
	}
}
