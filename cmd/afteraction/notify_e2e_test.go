package main

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/services/notify/mailpit"
)

var formLink = regexp.MustCompile(`http://127\.0\.0\.1:\d+/review/[0-9a-f-]{36}\?token=[A-Za-z0-9_-]+`)

// Issue 8 end to end, every service and a real mail server: a closed
// incident makes every participant a personal invitation mail whose link
// opens their form; the debrief meeting reaches every attendee as an
// iCalendar invitation, and its cancellation as a CANCEL.
func TestInvitationMailsOpenTheFormAndTheMeetingIsInEveryCalendar(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := StartStack(ctx, StackConfig{DatabaseURL: pgtest.NewDatabase(t), StoreDir: t.TempDir(), Mail: true,
		Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if s.MailURL == "" {
		t.Fatalf("no mailpit: %s", s.MailNote)
	}
	mp := s.mailpit
	inc := demoIncidentForTest(t, "SEC-NOTIFY-1")
	publishIncident(t, s, inc)
	emails := map[string]bool{}
	for _, p := range inc.People {
		if p.Email != "" {
			emails[strings.ToLower(p.Email)] = true
		}
	}

	// one invitation per person with an address (plus the facilitator's "review opened")
	var invitations []mailpit.Message
	servicetest.Eventually(t, "an invitation to every participant", func() bool {
		invitations = invitations[:0]
		list, err := mp.Messages(ctx)
		if err != nil {
			return false
		}
		for _, sum := range list {
			if strings.HasPrefix(sum.Subject, "Your input for the review") {
				m, err := mp.Message(ctx, sum.ID)
				if err != nil {
					return false
				}
				invitations = append(invitations, m)
			}
		}
		return len(invitations) >= len(emails)
	})
	if len(invitations) != len(emails) {
		t.Errorf("invitations = %d, want one per participant (%d)", len(invitations), len(emails))
	}
	reviewID := ""
	for _, m := range invitations {
		if len(m.To) != 1 || !emails[strings.ToLower(m.To[0].Address)] {
			t.Errorf("invitation to %v", m.To)
		}
		link := formLink.FindString(m.Text)
		if link == "" {
			t.Fatalf("no form link in the invitation to %v: %s", m.To, m.Text)
		}
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("the link of %v answers %d %s, want the participant form", m.To, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		reviewID = link[strings.Index(link, "/review/")+8 : strings.Index(link, "?")]
	}

	meeting := s.URLs["review"] + "/v1/reviews/" + reviewID + "/meeting"
	if err := call(ctx, http.MethodPut, meeting, s.AdminToken, map[string]any{
		"starts_at": time.Now().Add(72 * time.Hour).UTC().Truncate(time.Hour), "location": "Room 4.12"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := call(ctx, http.MethodDelete, meeting, s.AdminToken, nil, nil); err != nil {
		t.Fatal(err)
	}
	methods := map[string]int{}
	servicetest.Eventually(t, "a calendar invitation and a cancellation to every attendee", func() bool {
		clear(methods)
		list, err := mp.Messages(ctx)
		if err != nil {
			return false
		}
		for _, sum := range list {
			if sum.Attachments == 0 {
				continue
			}
			m, err := mp.Message(ctx, sum.ID)
			if err != nil || len(m.Attachments) == 0 {
				return false
			}
			ics, err := mp.Part(ctx, m.ID, m.Attachments[0].PartID)
			if err != nil {
				return false
			}
			if !strings.Contains(string(ics), "UID:"+reviewID+"@afteraction\r\n") {
				t.Errorf("calendar without the meeting's UID: %s", ics)
			}
			switch {
			case strings.Contains(string(ics), "METHOD:REQUEST\r\n") && strings.Contains(string(ics), "SEQUENCE:0\r\n"):
				methods["REQUEST"]++
			case strings.Contains(string(ics), "METHOD:CANCEL\r\n") && strings.Contains(string(ics), "SEQUENCE:1\r\n"):
				methods["CANCEL"]++
			}
		}
		return methods["REQUEST"] >= len(emails) && methods["CANCEL"] >= len(emails)
	})
	if methods["REQUEST"] != len(emails) || methods["CANCEL"] != len(emails) {
		t.Errorf("calendar mails %v, want %d of each", methods, len(emails))
	}
}
