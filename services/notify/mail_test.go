package notify

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// No CR or LF in a name or subject reaches a header, whatever it is written
// as; the message parses, and its subject decodes to the text given.
func TestBuildKeepsLineBreaksOutOfHeaders(t *testing.T) {
	t.Parallel()
	for _, evil := range []string{
		"Eve\r\nBcc: victim@evil.example", "Eve\nBcc: victim@evil.example", "Eve\rBcc: victim@evil.example",
		"Evé\r\n\r\n<html>body</html>", "Eve\u2028Bcc: victim@evil.example", "Eve\x00\x0bBcc: x",
	} {
		m := Mail{From: mail.Address{Name: evil, Address: "from@ok.example"}, To: mail.Address{Name: evil, Address: "to@ok.example"},
			Subject: "Review: " + evil, Text: "t", HTML: "<p>h</p>", MessageID: "id@afteraction", Date: time.Unix(0, 0)}
		raw, err := m.Build()
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%q: %v", evil, err)
		}
		if len(msg.Header["Bcc"]) > 0 {
			t.Errorf("%q: a Bcc header was injected", evil)
		}
		for k := range msg.Header {
			switch k {
			case "From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Auto-Submitted", "Content-Type":
			default:
				t.Errorf("%q: unexpected header %s", evil, k)
			}
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || strings.ContainsAny(subject, "\r\n") || !strings.HasPrefix(subject, "Review: Ev") {
			t.Errorf("%q: subject %q (%v)", evil, subject, err)
		}
	}
	if _, err := (Mail{From: mail.Address{Address: "f@ok.example"}, To: mail.Address{Address: "to@ok.example\r\nBcc: x@y.example"}}).Build(); err == nil {
		t.Error("an address with CRLF was accepted")
	}
}

// The bodies are a valid multipart/alternative, and with an invitation a
// multipart/mixed with the calendar inside the alternative and as invite.ics.
func TestBuildMIMEStructure(t *testing.T) {
	t.Parallel()
	ics, method := Calendar(events.ReviewMeeting{UID: "u@afteraction", Title: "T", StartsAt: time.Unix(0, 0), DurationMinutes: 30,
		Attendees: []events.Contact{{Name: "A", Email: "a@ok.example"}}}, events.Contact{Name: "O", Email: "o@ok.example"}, time.Unix(0, 0))
	m := Mail{From: mail.Address{Address: "from@ok.example"}, To: mail.Address{Name: "Zoë", Address: "to@ok.example"},
		Subject: "S", Text: strings.Repeat("long line ", 30) + "\nünïcödé", HTML: "<p>h</p>", ICS: ics, ICSMethod: method,
		MessageID: "id@afteraction", Date: time.Unix(0, 0)}
	raw, err := m.Build()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("Content-Type %q (%v)", mt, err)
	}
	var types []string
	r := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, pp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, pt)
		if pt == "multipart/alternative" {
			ar := multipart.NewReader(p, pp["boundary"])
			for {
				ap, err := ar.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				at, _, _ := mime.ParseMediaType(ap.Header.Get("Content-Type"))
				types = append(types, "  "+at)
				body, _ := io.ReadAll(ap) // multipart decodes quoted-printable
				if at == "text/plain" && !strings.Contains(string(body), "ünïcödé") {
					t.Errorf("text part lost its UTF-8: %q", body)
				}
			}
		}
	}
	want := []string{"multipart/alternative", "  text/plain", "  text/html", "  text/calendar", "application/ics"}
	if strings.Join(types, "|") != strings.Join(want, "|") {
		t.Errorf("parts %q, want %q", types, want)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line of %d octets (RFC 5322 allows 998)", len(line))
		}
	}
}

func TestCalendarEscapesAndFolds(t *testing.T) {
	t.Parallel()
	m := events.ReviewMeeting{UID: "u@afteraction", Sequence: 3, Status: events.MeetingCancelled,
		Title: strings.Repeat("Äöü; ", 30) + "\r\nATTENDEE:mailto:evil@example.com", StartsAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		DurationMinutes: 90, Attendees: []events.Contact{{Name: `Q"uote\r\nX`, Email: "q@ok.example"}}}
	ics, method := Calendar(m, events.Contact{Name: "O", Email: "o@ok.example"}, time.Unix(0, 0))
	if method != "CANCEL" {
		t.Errorf("method %s", method)
	}
	props := parseICS(t, ics)
	if props["DTEND"] != "20300102T043405Z" || props["SEQUENCE"] != "3" || props["STATUS"] != "CANCELLED" {
		t.Errorf("props %v", props)
	}
	if strings.Count(ics, "\r\nATTENDEE") != 1 {
		t.Errorf("a property was injected through the title:\n%s", ics)
	}
}

func TestParseRoutes(t *testing.T) {
	t.Parallel()
	hooks, err := ParseWebhooks("ops=slack:https://hooks.example/a; partner=teams:https://hooks.example/b")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ParseRoutes("action_overdue=mail,webhook:ops; *@Partner.example=webhook:partner", hooks)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		reason Reason
		email  string
		want   string
	}{
		{ReasonActionOverdue, "a@ok.example", "mail,webhook:ops"},
		{ReasonActionOverdue, "a@partner.example", "mail,webhook:ops"},
		{ReasonInvitation, "a@PARTNER.example", "webhook:partner"},
		{ReasonInvitation, "a@ok.example", "mail"},
	} {
		if got := strings.Join(rs.For(c.reason, c.email), ","); got != c.want {
			t.Errorf("For(%s, %s) = %s, want %s", c.reason, c.email, got, c.want)
		}
	}
	for _, bad := range []string{"nonsense", "invitation=webhook:nope", "bogus_reason=mail", "*=fax"} {
		if _, err := ParseRoutes(bad, hooks); err == nil {
			t.Errorf("ParseRoutes(%q) accepted", bad)
		}
	}
	if _, err := ParseWebhooks("x=irc:https://a.example"); err == nil {
		t.Error("unknown webhook kind accepted")
	}
}

func TestLoadConfigNamesBadVariables(t *testing.T) {
	t.Parallel()
	env := map[string]string{"NOTIFY_SMTP_TLS": "ssl3", "NOTIFY_FROM": "nobody", "NOTIFY_ROUTES": "x=y",
		"NOTIFY_SMTP_HOST": "smtp.example", "NOTIFY_SMTP_USERNAME": "u"}
	_, err := LoadConfig(func(k string) string { return env[k] })
	for _, v := range []string{"NOTIFY_SMTP_TLS", "NOTIFY_FROM", "NOTIFY_ROUTES"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("error %v does not name %s", err, v)
		}
	}
	env = map[string]string{"NOTIFY_SMTP_HOST": "smtp.example", "NOTIFY_SMTP_TLS": "none", "NOTIFY_SMTP_USERNAME": "u"}
	if _, err := LoadConfig(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "NOTIFY_SMTP_USERNAME") {
		t.Errorf("authentication in clear accepted: %v", err)
	}
}
