package review

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// TestHugeReviewStillCompletes: a ~1 MiB incident (whose '<' characters JSON
// escapes to six bytes each) and 20 participants with long answers used to
// make review.completed exceed the payload limit, so completion failed forever.
// Now the event is shortened to fit, says so in the incident's notes, and the
// review keeps every answer in full.
func TestHugeReviewStillCompletes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	e := registered(t)
	long := strings.Repeat("<script>", 2500) // 20000 characters, ~120 KB as JSON
	e.Incident.Summary = long
	e.Incident.RootCause = long
	e.Incident.Timeline = nil
	for i := range 50 {
		e.Incident.Timeline = append(e.Incident.Timeline, events.TimelineEntry{
			At: e.Incident.Timestamps.ClosedAt.Add(-time.Duration(i) * time.Minute), Phase: events.PhaseDetection,
			Action: fmt.Sprintf("step %d", i), Detail: long,
		})
	}
	e.Incident.People = nil
	for i := range 20 {
		e.Incident.People = append(e.Incident.People, events.Person{
			Name: fmt.Sprintf("Person %d", i), Email: fmt.Sprintf("p%d@example.com", i), Role: events.RoleResponder})
	}
	if raw, _ := json.Marshal(e.Incident); len(raw) < 1<<20 {
		t.Fatalf("incident is %d bytes of JSON, want over 1 MiB", len(raw))
	}
	r := f.open(e)
	for i := range 20 {
		if _, err := f.submit(r, i,
			events.Answer{QuestionID: "what_happened.account", Text: long},
			events.Answer{QuestionID: "do_differently.next_time", Text: long},
			events.Answer{QuestionID: "preventive_measures.actions", Items: []string{fmt.Sprintf("Item %d: %s", i, long[:1900])}},
		); err != nil {
			t.Fatal(err)
		}
	}
	done, err := f.svc.Complete(context.Background(), r.ReviewID, CompleteRequest{Summary: long, Facilitator: &events.Contact{Name: "Fac"}})
	if err != nil {
		t.Fatalf("complete a review of a 1 MiB incident with 20 long answers: %v", err)
	}
	emitted := f.outbox(events.TypeReviewCompleted) // validated against the schema
	if len(emitted) != 1 {
		t.Fatalf("review.completed events = %d, want 1", len(emitted))
	}
	if len(emitted[0]) > maxCompletedBytes {
		t.Errorf("review.completed is %d bytes, want at most %d", len(emitted[0]), maxCompletedBytes)
	}
	var ev events.ReviewCompleted
	if err := json.Unmarshal(emitted[0], &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Responses) != 20 || len(ev.ActionItems) != 20 || len(ev.Incident.People) != 20 {
		t.Errorf("event has %d responses, %d action items, %d people; want 20 each",
			len(ev.Responses), len(ev.ActionItems), len(ev.Incident.People))
	}
	if n := ev.Incident.Notes; len(n) == 0 || !strings.Contains(n[len(n)-1], "shortened") {
		t.Errorf("incident notes %q do not say the event was shortened", n)
	}
	if !strings.HasSuffix(ev.Responses[0].Answers[0].Text, shortenedMark) || done.Summary == "" {
		t.Errorf("a long answer is not marked shortened: %.80q", ev.Responses[0].Answers[0].Text)
	}
	full, err := f.svc.Review(context.Background(), r.ReviewID)
	if err != nil {
		t.Fatal(err)
	}
	if got := full.Responses[0].Answers[0].Text; got != long {
		t.Errorf("the review lost the full answer: %d characters, want %d", len(got), len(long))
	}
}

// TestSmallEventIsNotShortened: an ordinary review.completed is left as it is.
func TestSmallEventIsNotShortened(t *testing.T) {
	t.Parallel()
	ev := events.ReviewCompleted{Summary: strings.Repeat("x", 20000), Incident: events.IncidentClosed{Summary: "s"}}
	changed, err := boundCompleted(&ev)
	if err != nil || changed || len(ev.Summary) != 20000 || len(ev.Incident.Notes) != 0 {
		t.Errorf("boundCompleted of a small event: changed %v, err %v, summary %d, notes %q", changed, err, len(ev.Summary), ev.Incident.Notes)
	}
}
