package notify

import (
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/notify/mailpit"
	"github.com/afteraction/afteraction/services/notify/postgres"
)

// receiver is a local chat webhook endpoint that answers status and keeps every body.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	status int
}

func newReceiver(t *testing.T, status int) (*receiver, string) {
	r := &receiver{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		if req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook Content-Type = %q", req.Header.Get("Content-Type"))
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.mu.Unlock()
		w.WriteHeader(r.status)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL + "/hooks/secret-path"
}

func (r *receiver) got() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

// Routed per reason and domain: overdue actions go to Slack, Teams and
// Mattermost besides mail; a partner domain only to its chat; a webhook
// answering 404 is dead after one attempt. No chat message holds the link.
func TestRunChatWebhooksRoutedPerReasonAndDomain(t *testing.T) {
	t.Parallel()
	slack, slackURL := newReceiver(t, http.StatusOK)
	teams, teamsURL := newReceiver(t, http.StatusAccepted)
	mm, mmURL := newReceiver(t, http.StatusOK)
	gone, goneURL := newReceiver(t, http.StatusNotFound)
	e := newEnv(t, mailpit.Options{}, map[string]string{
		"NOTIFY_WEBHOOKS": "ops=slack:" + slackURL + "; teams=teams:" + teamsURL + "; mm=mattermost:" + mmURL + "; gone=slack:" + goneURL,
		"NOTIFY_ROUTES":   "action_overdue=mail,webhook:ops,webhook:teams,webhook:mm; *@partner.example=webhook:mm; action_assigned=webhook:gone",
	})
	e.start(Deps{})

	overdue := events.ActionOverdue{ActionID: newID(), IncidentID: newID(), Title: "Enforce <MFA> number matching",
		Owner: &events.Owner{Name: "Kemal Yıldız", Email: "kemal@ok.example"}, DueDate: "2026-04-30", Status: events.Status("open"),
		DaysOverdue: 3, DetectedAt: time.Now().UTC()}
	e.publish(events.TypeActionOverdue, overdue.ActionID, overdue)
	ds := e.waitDeliveries("action_id="+overdue.ActionID, 4, postgres.StatusSent)
	channels := map[string]bool{}
	for _, d := range ds {
		channels[d.Channel] = true
	}
	for _, c := range []string{"mail", "webhook:ops", "webhook:teams", "webhook:mm"} {
		if !channels[c] {
			t.Errorf("no delivery over %s: %+v", c, ds)
		}
	}
	var s struct{ Text string }
	if err := json.Unmarshal(slack.got()[0], &s); err != nil || !strings.Contains(s.Text, "Enforce &lt;MFA&gt; number matching") {
		t.Errorf("slack body %s (%v), want text with <, > escaped", slack.got()[0], err)
	}
	var card struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Type string `json:"type"`
				Body []struct {
					Text string `json:"text"`
				} `json:"body"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(teams.got()[0], &card); err != nil || card.Type != "message" || len(card.Attachments) != 1 ||
		card.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" || card.Attachments[0].Content.Type != "AdaptiveCard" ||
		!strings.Contains(card.Attachments[0].Content.Body[0].Text, "Enforce <MFA> number matching") {
		t.Errorf("teams body %s (%v)", teams.got()[0], err)
	}

	inv := invitation("Pat Partner", "pat@partner.example")
	e.publish(events.TypeReviewInvitation, inv.ReviewID, inv)
	e.waitDeliveries("review_id="+inv.ReviewID, 1, postgres.StatusSent)
	for _, b := range mm.got() {
		if strings.Contains(string(b), "SECRET") || strings.Contains(string(b), "token=") {
			t.Errorf("the invitation link reached a chat: %s", b)
		}
	}
	if n := len(mm.got()); n != 2 {
		t.Errorf("mattermost got %d posts, want 2 (overdue action, partner invitation)", n)
	}

	assigned := events.ActionCreated{ActionID: newID(), IncidentID: newID(), ReviewID: newID(), Key: "mfa", Title: "MFA",
		Category: events.CategoryPreventive, Owner: &events.Owner{Name: "Kemal", Email: "kemal@ok.example"},
		Status: events.Status("open"), CreatedAt: time.Now().UTC()}
	e.publish(events.TypeActionCreated, assigned.ActionID, assigned)
	dead := e.waitDeliveries("action_id="+assigned.ActionID, 1, postgres.StatusDead)
	if dead[0].Attempts != 1 || !strings.Contains(dead[0].LastError, "404") || strings.Contains(dead[0].LastError, "secret-path") {
		t.Errorf("webhook 404: %+v, want dead after one attempt, the URL kept out of the error", dead[0])
	}
	time.Sleep(500 * time.Millisecond) // several polls
	if n := len(gone.got()); n != 1 {
		t.Errorf("the 404 webhook was called %d times, want 1", n)
	}
}

// Reminders at the configured cadence until the participant answers, then
// none; once nobody is left to answer, the facilitator is asked to complete.
func TestRunRemindersUntilAnsweredThenAllAnswered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mailpit.Options{}, map[string]string{
		"NOTIFY_REMINDER_EVERY": "300ms", "NOTIFY_REMINDER_INTERVAL": "100ms", "NOTIFY_REMINDER_MAX": "2",
	})
	e.start(Deps{})
	inv := invitation("Rae Reminded", "rae@ok.example")
	e.publish(events.TypeReviewInvitation, inv.ReviewID, inv)
	servicetest.Eventually(t, "two reminders", func() bool {
		return len(e.deliveries("reason=reminder&status=sent&review_id="+inv.ReviewID)) == 2
	})
	e.publish(events.TypeReviewAnswered, inv.ReviewID, events.ReviewAnswered{ReviewID: inv.ReviewID, IncidentID: inv.IncidentID,
		Title: inv.Title, Participant: inv.Participant, AnsweredAt: time.Now().UTC(), Unanswered: 0, Facilitator: inv.Facilitator})
	ds := e.waitDeliveries("reason=all_answered&review_id="+inv.ReviewID, 1, postgres.StatusSent)
	if ds[0].Recipient.Email != inv.Facilitator.Email {
		t.Errorf("all_answered went to %v", ds[0].Recipient)
	}
	ms := e.messages(4)
	for _, m := range ms[1:3] {
		if !strings.HasPrefix(m.Subject, "Reminder") || !strings.Contains(m.Text, inv.FormURL) {
			t.Errorf("reminder %q lacks the link", m.Subject)
		}
	}
	if n := len(e.deliveries("reason=reminder&review_id=" + inv.ReviewID)); n != 2 {
		t.Errorf("reminders = %d, want 2 (NOTIFY_REMINDER_MAX)", n)
	}
}

// review.reminder overdue: one overdue notice to the participant (with the
// link) and one escalation to the facilitator, however often it arrives.
func TestRunOverdueNoticeAndEscalationOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mailpit.Options{}, nil)
	e.start(Deps{})
	inv := invitation("Otto Overdue", "otto@ok.example")
	e.publish(events.TypeReviewInvitation, inv.ReviewID, inv)
	rem := events.ReviewReminder{ReviewID: inv.ReviewID, IncidentID: inv.IncidentID, Participant: inv.Participant,
		DueAt: *inv.DueAt, RemindedAt: time.Now().UTC(), Reason: events.ReminderOverdue}
	e.publish(events.TypeReviewReminder, inv.ReviewID, rem)
	e.publish(events.TypeReviewReminder, inv.ReviewID, rem)
	e.waitDeliveries("review_id="+inv.ReviewID, 3, postgres.StatusSent)
	got := map[string]string{}
	for _, d := range e.deliveries("review_id=" + inv.ReviewID) {
		got[d.Reason] = d.Recipient.Email
	}
	if got["invitation"] != "otto@ok.example" || got["overdue"] != "otto@ok.example" || got["escalation"] != inv.Facilitator.Email {
		t.Errorf("deliveries by reason = %v", got)
	}
}

// The weekly digest reaches its recipient once, with every list.
func TestRunDigest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, mailpit.Options{}, nil)
	e.start(Deps{})
	b, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.action.digest.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := events.Decode[events.ActionDigest](events.TypeActionDigest, b)
	if err != nil {
		t.Fatal(err)
	}
	e.publish(events.TypeActionDigest, d.DigestID, d)
	e.publish(events.TypeActionDigest, d.DigestID, d)
	ms := e.messages(1)
	if len(ms) != 1 || ms[0].To[0].Address != d.Recipient.Email || !strings.Contains(ms[0].Text, d.Overdue[0].Title) {
		t.Fatalf("digest mail: %+v", ms)
	}
	if ds := e.deliveries("reason=action_digest"); len(ds) != 1 {
		t.Errorf("digest deliveries = %d, want 1", len(ds))
	}
}

// The facilitator revokes an invitation (or removes the participant): notify
// forgets the link, reminds the participant no more, and withdraws the
// messages carrying the link that it has not managed to send yet.
func TestRunWithdrawnInvitationStopsReminders(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close() // nothing answers there: every attempt fails for now and stays pending
	e := newEnv(t, mailpit.Options{}, map[string]string{
		"NOTIFY_SMTP_PORT": closed, "NOTIFY_RETRY_BACKOFF": "1h", "NOTIFY_SMTP_TIMEOUT": "1s",
		"NOTIFY_REMINDER_EVERY": "200ms", "NOTIFY_REMINDER_INTERVAL": "100ms", "NOTIFY_REMINDER_MAX": "50",
	})
	e.start(Deps{})
	inv := invitation("Wanda Withdrawn", "wanda@ok.example")
	e.publish(events.TypeReviewInvitation, inv.ReviewID, inv)
	servicetest.Eventually(t, "the invitation and a reminder pending", func() bool {
		return len(e.deliveries("status=pending&reason=invitation&review_id="+inv.ReviewID)) == 1 &&
			len(e.deliveries("status=pending&reason=reminder&review_id="+inv.ReviewID)) >= 1
	})
	w := inv
	w.FormURL, w.Reason, w.InvitedAt = "", events.InvitationWithdrawn, time.Now().UTC()
	e.publish(events.TypeReviewInvitation, inv.ReviewID, w)
	servicetest.Eventually(t, "nothing carrying the link pending", func() bool {
		return len(e.deliveries("status=pending&review_id="+inv.ReviewID)) == 0
	})
	withdrawn := e.deliveries("status=withdrawn&review_id=" + inv.ReviewID)
	reminders := len(e.deliveries("reason=reminder&review_id=" + inv.ReviewID))
	if len(withdrawn) < 2 || withdrawn[0].LastError == "" {
		t.Errorf("withdrawn deliveries = %+v, want the invitation and its reminders, with why", withdrawn)
	}
	time.Sleep(time.Second) // five reminder periods: a reminder would show
	if n := len(e.deliveries("reason=reminder&review_id=" + inv.ReviewID)); n != reminders {
		t.Errorf("reminders after the withdrawal: %d, were %d", n, reminders)
	}
	// A resend brings the participant back with a new link.
	r := inv
	r.FormURL, r.Reason, r.InvitedAt = inv.FormURL+"-new", events.InvitationResent, time.Now().UTC()
	e.publish(events.TypeReviewInvitation, inv.ReviewID, r)
	servicetest.Eventually(t, "the resent invitation pending", func() bool {
		return len(e.deliveries("status=pending&reason=invitation&review_id="+inv.ReviewID)) == 1
	})
}
