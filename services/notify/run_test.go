package notify

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/services/notify/mailpit"
	"github.com/afteraction/afteraction/services/notify/postgres"
)

// An invitation event in, one personal mail out: to the participant, with the
// link in both bodies, nothing injected into headers, HTML escaped; the same
// invitation again (redelivered or republished) sends nothing more.
func TestRunInvitationInMailOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mailpit.Options{}, nil)
	e.start(Deps{})
	inv := invitation("Eve Example\r\nBcc: victim@evil.example", "eve@ok.example")
	inv.Title = `<script>alert("x")</script> & "Ransomware"`
	env := e.publish(events.TypeReviewInvitation, inv.ReviewID, inv)
	again := inv
	again.InvitedAt = inv.InvitedAt.Add(time.Minute)
	e.publish(events.TypeReviewInvitation, inv.ReviewID, again) // another event, same person and reason
	if err := e.bus.Publish(context.Background(), events.SubjectReviewInvitation, env); err != nil {
		t.Fatal(err) // the same event id again (dropped by the stream or by processed_events)
	}

	ms := e.messages(1)
	ds := e.waitDeliveries("review_id="+inv.ReviewID, 1, postgres.StatusSent)
	m := ms[0]
	if len(m.To) != 1 || m.To[0].Address != "eve@ok.example" || m.From.Address != "afteraction@notify.example" {
		t.Errorf("from %v to %v", m.From, m.To)
	}
	if !strings.Contains(m.Text, inv.FormURL) || !strings.Contains(m.HTML, strings.ReplaceAll(inv.FormURL, "&", "&amp;")) {
		t.Errorf("the link is missing from a body:\ntext: %s\nhtml: %s", m.Text, m.HTML)
	}
	if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "&lt;script&gt;") {
		t.Errorf("HTML not escaped: %s", m.HTML)
	}
	raw, err := e.mp.Raw(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "bcc:") {
			t.Errorf("header injected: %q", line)
		}
	}
	if !strings.Contains(m.Subject, `<script>alert("x")</script>`) {
		t.Errorf("subject = %q, want the title as plain text", m.Subject)
	}
	if ds[0].Reason != string(ReasonInvitation) || ds[0].Attempts != 1 || ds[0].Recipient.Email != "eve@ok.example" {
		t.Errorf("delivery = %+v", ds[0])
	}
	// nothing more arrives: a later, unrelated mail is the barrier
	e.publish(events.TypeReviewInvitation, newID(), invitation("Barrier", "barrier@ok.example"))
	if ms := e.messages(2); len(ms) != 2 {
		t.Errorf("mails = %d, want 2 (one invitation each)", len(ms))
	}
}

// The meeting: every attendee gets an iCalendar REQUEST, an update with the
// same UID and a higher SEQUENCE, then a CANCEL.
func TestRunMeetingSendsCalendarInvitations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mailpit.Options{}, nil)
	e.start(Deps{})
	rid := newID()
	m := events.ReviewMeeting{
		ReviewID: rid, IncidentID: newID(), Title: "Ransomware; on the, file server", UID: rid + "@afteraction",
		Status: events.MeetingScheduled, StartsAt: time.Date(2030, 3, 20, 10, 0, 0, 0, time.UTC), DurationMinutes: 60,
		Location: "Room 4.12", VideoURL: "https://meet.example/x",
		Organizer: &events.Contact{Name: "Jonas Berg", Email: "j.berg@ok.example"},
		Attendees: []events.Contact{{Name: "Jonas Berg", Email: "j.berg@ok.example"}, {Name: "Zoë Ågren", Email: "zoe@ok.example"}},
		ChangedAt: time.Now().UTC(),
	}
	e.publish(events.TypeReviewMeeting, rid, m)
	e.waitDeliveries("review_id="+rid, 2, postgres.StatusSent)
	m.Sequence, m.StartsAt = 1, m.StartsAt.Add(2*time.Hour)
	e.publish(events.TypeReviewMeeting, rid, m)
	e.waitDeliveries("review_id="+rid, 4, postgres.StatusSent)
	m.Sequence, m.Status = 2, events.MeetingCancelled
	e.publish(events.TypeReviewMeeting, rid, m)
	e.waitDeliveries("review_id="+rid, 6, postgres.StatusSent)

	ms := e.messages(6)
	perSeq := map[string]int{}
	for _, msg := range ms {
		if len(msg.Attachments) != 1 || msg.Attachments[0].FileName != "invite.ics" {
			t.Fatalf("%q: attachments %+v, want invite.ics", msg.Subject, msg.Attachments)
		}
		b, err := e.mp.Part(context.Background(), msg.ID, msg.Attachments[0].PartID)
		if err != nil {
			t.Fatal(err)
		}
		cal := parseICS(t, string(b))
		if cal["UID"] != m.UID {
			t.Errorf("UID = %q, want %q", cal["UID"], m.UID)
		}
		if cal["SUMMARY"] != `Lessons-learned meeting: Ransomware\; on the\, file server` {
			t.Errorf("SUMMARY = %q", cal["SUMMARY"])
		}
		seq := cal["SEQUENCE"]
		perSeq[seq]++
		want := map[string]string{"0": "REQUEST", "1": "REQUEST", "2": "CANCEL"}[seq]
		if cal["METHOD"] != want {
			t.Errorf("SEQUENCE %s: METHOD %s, want %s", seq, cal["METHOD"], want)
		}
		if seq == "1" && cal["DTSTART"] != "20300320T120000Z" {
			t.Errorf("updated DTSTART = %s", cal["DTSTART"])
		}
		if seq == "2" && (cal["STATUS"] != "CANCELLED" || !strings.HasPrefix(msg.Subject, "Cancelled")) {
			t.Errorf("cancellation: STATUS %s, subject %q", cal["STATUS"], msg.Subject)
		}
	}
	if perSeq["0"] != 2 || perSeq["1"] != 2 || perSeq["2"] != 2 {
		t.Errorf("mails per SEQUENCE = %v, want 2 each (one per attendee)", perSeq)
	}
}

// parseICS unfolds an iCalendar object (RFC 5545 §3.1) and returns the value
// of each property name (the last one wins), failing on a line over 75 octets
// or one not ending in CRLF.
func parseICS(t *testing.T, s string) map[string]string {
	t.Helper()
	if !strings.HasSuffix(s, "\r\n") || strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") {
		t.Fatalf("iCalendar lines must end in CRLF: %q", s)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n") {
		if len(l) > 75 {
			t.Errorf("line over 75 octets: %q", l)
		}
		if strings.HasPrefix(l, " ") && len(lines) > 0 {
			lines[len(lines)-1] += l[1:]
			continue
		}
		lines = append(lines, l)
	}
	if lines[0] != "BEGIN:VCALENDAR" || lines[len(lines)-1] != "END:VCALENDAR" {
		t.Fatalf("not a VCALENDAR: %q", lines)
	}
	props := map[string]string{}
	for _, l := range lines {
		nameParams, value, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("line without a value: %q", l)
		}
		name, _, _ := strings.Cut(nameParams, ";")
		props[name] = value
	}
	return props
}

// SMTP down for a while: the mails wait, retried with back-off, and arrive
// once it is back, each exactly once.
func TestRunSMTPDownThenBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mailpit.Options{}, nil)
	e.start(Deps{})
	e.mp.Stop()
	var ids []string
	for _, who := range []string{"ann", "bob", "cid"} {
		inv := invitation(who, who+"@ok.example")
		ids = append(ids, inv.ReviewID)
		e.publish(events.TypeReviewInvitation, inv.ReviewID, inv)
	}
	servicetest.Eventually(t, "failed attempts while SMTP is down", func() bool {
		for _, id := range ids {
			ds := e.deliveries("review_id=" + id)
			if len(ds) != 1 || ds[0].Attempts < 2 || ds[0].LastError == "" || ds[0].Status == postgres.StatusDead {
				return false
			}
		}
		return true
	})
	if err := e.mp.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		e.waitDeliveries("review_id="+id, 1, postgres.StatusSent)
	}
	e.publish(events.TypeReviewInvitation, newID(), invitation("Barrier", "barrier@ok.example"))
	ms := e.messages(4)
	seen := map[string]int{}
	for _, m := range ms {
		seen[m.MessageID]++
	}
	if len(ms) != 4 || len(seen) != 4 {
		t.Errorf("mails = %d with %d distinct Message-IDs, want 4 and 4 (none twice)", len(ms), len(seen))
	}
}

// A mailbox refused with a 5xx: the delivery is dead after one attempt,
// visible in the API and announced as notification.failed; no retry storm.
func TestRunMailboxRefusedIsDeadAndVisible(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mailpit.Options{AllowedRecipients: `@ok\.example$`}, nil)
	e.start(Deps{})
	inv := invitation("Rita Refused", "rita@refused.example")
	e.publish(events.TypeReviewInvitation, inv.ReviewID, inv)
	ds := e.waitDeliveries("status=dead&review_id="+inv.ReviewID, 1, postgres.StatusDead)
	if ds[0].Attempts != 1 || !strings.Contains(ds[0].LastError, "55") || ds[0].DeadAt == nil {
		t.Errorf("dead delivery = %+v, want one attempt and the 5xx reply", ds[0])
	}
	failed := bustest.StreamMessages(t, e.nats.URL(), bus.StreamAfteraction, events.SubjectNotificationFailed)
	servicetest.Eventually(t, "notification.failed", func() bool {
		failed = bustest.StreamMessages(t, e.nats.URL(), bus.StreamAfteraction, events.SubjectNotificationFailed)
		return len(failed) == 1
	})
	nf, err := events.Decode[events.NotificationFailed](events.TypeNotificationFailed, failed[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if nf.DeliveryID != ds[0].DeliveryID || nf.Recipient.Email != "rita@refused.example" || strings.Contains(string(failed[0].Data), "SECRET") {
		t.Errorf("notification.failed = %+v", nf)
	}
	// later mails go out while the dead one stays at one attempt
	e.publish(events.TypeReviewInvitation, newID(), invitation("Barrier", "barrier@ok.example"))
	e.messages(1)
	time.Sleep(500 * time.Millisecond) // several poll intervals: a retry would show in attempts
	if d := e.deliveries("review_id=" + inv.ReviewID)[0]; d.Attempts != 1 || d.Status != postgres.StatusDead {
		t.Errorf("refused delivery after more polls: %+v", d)
	}
}

// The process killed between recording "sending" and recording "sent":
// before the SMTP transaction nothing went out, and the restarted service
// sends it once; after it, the restarted service sends it again (the
// documented duplicate, with the same Message-ID, counted in reclaims).
func TestRunKilledBetweenSendingAndSent(t *testing.T) {
	t.Parallel()
	for _, stage := range []string{"before", "after"} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, mailpit.Options{}, map[string]string{"NOTIFY_SENDING_LEASE": "5s", "NOTIFY_SMTP_TIMEOUT": "4s"})
			killed := make(chan struct{})
			e.start(Deps{hooks: hooks{abandon: func(s string, d postgres.Delivery) bool {
				if s != stage {
					return false
				}
				select {
				case <-killed:
				default:
					close(killed)
				}
				return true // every send stops here, as in a dead process
			}}})
			inv := invitation("Kim Killed", "kim@ok.example")
			e.publish(events.TypeReviewInvitation, inv.ReviewID, inv)
			select {
			case <-killed:
			case <-time.After(servicetest.Timeout):
				t.Fatal("the send never reached the kill point")
			}
			e.stop()
			if d := e.deliveries2(inv.ReviewID); d.Status != postgres.StatusSending {
				t.Fatalf("after the kill: %+v, want it left sending", d)
			}
			e.start(Deps{})
			ds := e.waitDeliveries("review_id="+inv.ReviewID, 1, postgres.StatusSent)
			want := map[string]int{"before": 1, "after": 2}[stage]
			ms := e.messages(want)
			if len(ms) != want || ds[0].Reclaims != 1 || ds[0].Attempts != 2 {
				t.Errorf("mails %d (want %d), delivery %+v (want reclaims 1, attempts 2)", len(ms), want, ds[0])
			}
			if want == 2 && ms[0].MessageID != ms[1].MessageID {
				t.Errorf("the duplicate has another Message-ID: %s, %s", ms[0].MessageID, ms[1].MessageID)
			}
		})
	}
}

// deliveries2 reads the one delivery of a review straight from the database
// (the service is stopped).
func (e *testEnv) deliveries2(reviewID string) postgres.Delivery {
	e.t.Helper()
	pool := openPool(e.t, e.db)
	ds, err := postgres.New(pool).Deliveries(context.Background(), postgres.Filter{ReviewID: reviewID, Limit: 10})
	if err != nil || len(ds) != 1 {
		e.t.Fatalf("deliveries of %s: %v %v", reviewID, ds, err)
	}
	return ds[0]
}

// Events are consumed in batches, one transaction each: a burst of
// invitations is sent at once after its batch commits (the sender is woken
// then, not at its next poll, which here is an hour away), each once, and a
// poison event among them is dead-lettered alone.
func TestRunBurstOfInvitationsSentAfterTheBatchCommits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mailpit.Options{}, map[string]string{"NOTIFY_POLL": "1h"})
	if err := e.bus.EnsureTopology(context.Background(), bus.Topology{}); err != nil {
		t.Fatal(err) // the streams, so that the burst waits in them before notify starts
	}
	const n = 30
	for i := range n {
		inv := invitation(fmt.Sprintf("Burst %02d", i), fmt.Sprintf("burst%02d@ok.example", i))
		e.publish(events.TypeReviewInvitation, inv.ReviewID, inv)
		if i == n/2 {
			bad := events.Envelope{ID: newID(), Type: events.TypeReviewInvitation, Source: "test", Subject: inv.ReviewID,
				Time: time.Now().UTC(), Data: []byte(`{"review_id": "not a uuid"}`)}
			if err := e.bus.Publish(context.Background(), events.SubjectReviewInvitation, bad); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.start(Deps{}) // the whole burst is waiting: the consumer takes it in batches
	if ms := e.messages(n); len(ms) != n {
		t.Fatalf("mails = %d, want %d", len(ms), n)
	}
	if ds := e.deliveries("reason=invitation&status=sent&limit=1000"); len(ds) != n {
		t.Errorf("sent invitations = %d, want %d", len(ds), n)
	}
	servicetest.Eventually(t, "the poison event in the DLQ", func() bool {
		dl, err := e.bus.DeadLetters(context.Background(), "notify")
		return err == nil && len(dl) == 1
	})
}
