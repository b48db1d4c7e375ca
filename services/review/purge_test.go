package review

import (
	"context"
	"testing"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
)

// TestEvidenceExpiredPurgesAnswersOnce: the expired incident's answers,
// drafts and submission bodies go, once, with an audit line; who answered
// when stays; another incident's review keeps everything.
func TestEvidenceExpiredPurgesAnswersOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	expired, kept := f.open(registered(t)), f.open(registered(t))
	for _, r := range []Review{expired, kept} {
		for range 2 { // a resubmission: two bodies in the audit log
			if _, err := f.submit(r, 1, events.Answer{QuestionID: "what_happened.account", Text: "The finance mailbox was phished."}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.svc.SaveDraft(ctx, r.ReviewID, r.Participants[2].ParticipantID,
			[]events.Answer{{QuestionID: "what_happened.account", Text: "draft"}}); err != nil {
			t.Fatal(err)
		}
	}
	e := events.EvidenceExpired{IncidentID: expired.IncidentID, IncidentRevision: 1, Severity: events.SeverityHigh,
		Rule: "default=3y", ClosedAt: f.clock.Now().AddDate(-3, 0, -1), RetainUntil: f.clock.Now().AddDate(0, 0, -1), ExpiredAt: f.clock.Now()}
	m := &bus.Message{Subject: events.SubjectEvidenceExpired, Envelope: events.Envelope{ID: "expired-1", Type: events.TypeEvidenceExpired}}
	for range 2 { // a redelivery changes nothing
		if err := f.svc.onEvidenceExpired(ctx, m, e); err != nil {
			t.Fatal(err)
		}
	}

	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := f.pool.QueryRow(ctx, query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	for _, tc := range []struct {
		what            string
		query           string
		expired, intact int
	}{
		{"responses with answers", `SELECT count(*) FROM responses WHERE review_id = $1 AND answers <> '[]'::jsonb`, 0, 1},
		{"responses (who answered when)", `SELECT count(*) FROM responses WHERE review_id = $1`, 1, 1},
		{"drafts", `SELECT count(*) FROM drafts WHERE review_id = $1`, 0, 1},
		{"submission bodies with text", `SELECT count(*) FROM response_submissions WHERE review_id = $1 AND body::text LIKE '%phished%'`, 0, 2},
		{"submissions (who submitted when)", `SELECT count(*) FROM response_submissions WHERE review_id = $1`, 2, 2},
	} {
		if got := count(tc.query, expired.ReviewID); got != tc.expired {
			t.Errorf("%s of the expired review: %d, want %d", tc.what, got, tc.expired)
		}
		if got := count(tc.query, kept.ReviewID); got != tc.intact {
			t.Errorf("%s of the other review: %d, want %d", tc.what, got, tc.intact)
		}
	}
	var removed map[string]int64
	if err := f.pool.QueryRow(ctx, `SELECT removed FROM purges WHERE incident_id = $1`, expired.IncidentID).Scan(&removed); err != nil {
		t.Fatalf("audit line: %v", err)
	}
	if n := count(`SELECT count(*) FROM purges`); n != 1 || removed["responses"] != 1 || removed["drafts"] != 1 ||
		removed["submission_bodies"] != 2 || removed["bytes"] == 0 {
		t.Errorf("audit lines %d, removed %v; want one line with the counts", n, removed)
	}
	got, err := f.svc.Review(ctx, expired.ReviewID)
	if err != nil {
		t.Fatalf("the purged review no longer reads: %v", err)
	}
	if got.Participants[1].SubmittedAt == nil {
		t.Error("the participant no longer counts as having answered")
	}
}
