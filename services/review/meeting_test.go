package review

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/review/postgres"
)

func TestOpeningEnqueuesOnePrivateInvitationPerParticipantWithWorkingLink(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.open(registered(t))
	raw := f.outbox(events.TypeReviewInvitation)
	if len(raw) != len(r.Participants) {
		t.Fatalf("invitations = %d, want one per participant (%d)", len(raw), len(r.Participants))
	}
	var subject string
	if err := f.pool.QueryRow(context.Background(),
		`SELECT DISTINCT subject FROM outbox WHERE ce_type = $1`, events.TypeReviewInvitation).Scan(&subject); err != nil {
		t.Fatal(err)
	}
	if subject != "notify.review.invitation" {
		t.Errorf("invitation subject = %q, want the private notify.review.invitation", subject)
	}
	for _, b := range raw {
		var inv events.ReviewInvitation
		if err := json.Unmarshal(b, &inv); err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(inv.FormURL)
		if err != nil {
			t.Fatal(err)
		}
		pid, _, err := testInvites.Verify(r.ReviewID, u.Query().Get("token"), f.clock.Now())
		if err != nil || pid != inv.Participant.ParticipantID || inv.Reason != events.InvitationOpened {
			t.Errorf("invitation of %s: token for %q (%v), reason %s", inv.Participant.ParticipantID, pid, err, inv.Reason)
		}
	}
}

func TestEveryAnswerEnqueuesAnsweredWithWhatIsLeft(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.open(registered(t))
	for i := range r.Participants {
		if _, err := f.submit(r, i, events.Answer{QuestionID: "training.junior_lessons", Text: "Check inbox rules first."}); err != nil {
			t.Fatal(err)
		}
	}
	raw := f.outbox(events.TypeReviewAnswered)
	if len(raw) != len(r.Participants) {
		t.Fatalf("answered events = %d, want %d", len(raw), len(r.Participants))
	}
	var last events.ReviewAnswered
	if err := json.Unmarshal(raw[len(raw)-1], &last); err != nil {
		t.Fatal(err)
	}
	if last.Unanswered != 0 || last.Facilitator == nil {
		t.Errorf("last answered: unanswered %d, facilitator %v; want 0 and the facilitator", last.Unanswered, last.Facilitator)
	}
}

func TestMeetingScheduleUpdateCancelKeepUIDAndRaiseSequence(t *testing.T) {
	t.Parallel()
	f := setup(t)
	base := f.serve()
	r := f.open(registered(t))
	u := base + "/v1/reviews/" + r.ReviewID + "/meeting"

	status, body := call(t, "GET", u, complianceToken, "", "")
	if status != 200 || !strings.Contains(body, `"status": "none"`) || !strings.Contains(body, "suggested_starts_at") {
		t.Fatalf("GET before scheduling: %d %s", status, body)
	}
	for _, c := range []struct{ body, field string }{
		{`{"duration_minutes": 60}`, "starts_at"},
		{`{"starts_at": "2026-03-10T10:00:00Z", "guests": [{"name": "Eve", "email": "eve@example.com\r\nBcc: all@example.com"}]}`, "guests[0].email"},
		{`{"starts_at": "2026-03-10T10:00:00Z", "guests": [{"name": "Eve", "email": "not-an-address"}]}`, "guests[0].email"},
		{`{"starts_at": "2026-03-10T10:00:00Z", "video_url": "javascript:alert(1)"}`, "video_url"},
		{`{"starts_at": "2026-03-10T10:00:00Z", "location": "Room 1\r\nX-Evil: 1"}`, "location"},
	} {
		status, body := call(t, "PUT", u, facilitatorToken, "", c.body)
		if status != 422 || !strings.Contains(body, `"`+c.field+`"`) {
			t.Errorf("PUT %s: %d %s; want 422 naming %s", c.body, status, body, c.field)
		}
	}
	if n := len(f.outbox(events.TypeReviewMeeting)); n != 0 {
		t.Fatalf("refused requests enqueued %d meeting events", n)
	}

	put := `{"starts_at": "2026-03-10T10:00:00Z", "duration_minutes": 45, "location": "Room 4.12",
		"video_url": "https://meet.example.com/x", "guests": [{"name": "Guest Expert", "email": "guest@partner.example"}]}`
	for range 2 { // the second, identical request changes nothing
		if status, body := call(t, "PUT", u, facilitatorToken, "", put); status != 200 {
			t.Fatalf("PUT meeting: %d %s", status, body)
		}
	}
	moved := strings.Replace(put, "10:00", "14:00", 1)
	if status, body := call(t, "PUT", u, facilitatorToken, "", moved); status != 200 {
		t.Fatalf("PUT moved meeting: %d %s", status, body)
	}
	if status, body := call(t, "DELETE", u, facilitatorToken, "", ""); status != 200 || !strings.Contains(body, `"status": "cancelled"`) {
		t.Fatalf("DELETE meeting: %d %s", status, body)
	}
	raw := f.outbox(events.TypeReviewMeeting)
	if len(raw) != 3 {
		t.Fatalf("meeting events = %d, want 3 (scheduled, moved, cancelled)", len(raw))
	}
	var ms []events.ReviewMeeting
	for _, b := range raw {
		var m events.ReviewMeeting
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	for i, m := range ms {
		if m.UID != ms[0].UID || m.Sequence != i {
			t.Errorf("event %d: uid %s sequence %d; want uid %s sequence %d", i, m.UID, m.Sequence, ms[0].UID, i)
		}
	}
	if ms[2].Status != events.MeetingCancelled || !ms[1].StartsAt.Equal(time.Date(2026, 3, 10, 14, 0, 0, 0, time.UTC)) {
		t.Errorf("moved %v, last status %s", ms[1].StartsAt, ms[2].Status)
	}
	if len(ms[0].Attendees) != len(r.Participants)+1 { // the facilitator is a participant; plus the guest
		t.Errorf("attendees = %d, want participants + guest (%d)", len(ms[0].Attendees), len(r.Participants)+1)
	}
}

func TestMeetingAndMinutesAppearInReviewCompleted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.open(registered(t))
	ctx := context.Background()
	start := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	if _, err := f.svc.ScheduleMeeting(ctx, r.ReviewID, MeetingRequest{StartsAt: &start, Location: "Room 4.12"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RecordMinutes(ctx, r.ReviewID, MinutesRequest{Attended: []string{"Kemal Yıldız"}, Minutes: "Agreed on MFA."}); err != nil {
		t.Fatal(err)
	}
	done, err := f.svc.Complete(ctx, r.ReviewID, CompleteRequest{Summary: "done"})
	if err != nil {
		t.Fatal(err)
	}
	m := done.Meeting
	if m == nil || !m.StartsAt.Equal(start) || m.DurationMinutes != 60 || m.Location != "Room 4.12" ||
		len(m.Attended) != 1 || m.Minutes != "Agreed on MFA." {
		t.Fatalf("review.completed meeting = %+v", m)
	}
	if n := len(f.outbox(events.TypeReviewCompleted)); n != 1 {
		t.Fatalf("completed events = %d", n)
	}
}

func TestSuggestedMeetingTimeIsAWeekdayMorningOnOrAfterTheDueDate(t *testing.T) {
	t.Parallel()
	due := time.Date(2026, 3, 7, 17, 0, 0, 0, time.UTC) // a Saturday evening
	r := reviewWithDue(&due)
	if got, want := SuggestedMeetingTime(r), time.Date(2026, 3, 9, 10, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("suggested %v, want %v", got, want)
	}
}

func reviewWithDue(due *time.Time) (r postgres.Review) {
	r.DueAt = due
	return r
}
