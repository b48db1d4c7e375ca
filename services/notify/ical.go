package notify

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/afteraction/afteraction/pkg/events"
)

// Calendar renders the meeting m as an iCalendar object (RFC 5545) with one
// VEVENT: METHOD:REQUEST for a scheduled meeting, METHOD:CANCEL (and
// STATUS:CANCELLED) for a cancelled one, with m's stable UID and SEQUENCE so
// calendar clients update or remove the event they already have. organizer
// is who the event comes from; stamp is DTSTAMP. Lines end in CRLF and are
// folded at 75 octets; text values are escaped (backslash, semicolon, comma,
// newline) and parameter values quoted, so no input can add a property.
func Calendar(m events.ReviewMeeting, organizer events.Contact, stamp time.Time) (ics, method string) {
	method = "REQUEST"
	status := "CONFIRMED"
	if m.Status == events.MeetingCancelled {
		method, status = "CANCEL", "CANCELLED"
	}
	var b strings.Builder
	line := func(s string) { b.WriteString(fold(s)) }
	line("BEGIN:VCALENDAR")
	line("VERSION:2.0")
	line("PRODID:-//afteraction//notify//EN")
	line("CALSCALE:GREGORIAN")
	line("METHOD:" + method)
	line("BEGIN:VEVENT")
	line("UID:" + icsText(m.UID))
	line("SEQUENCE:" + strconv.Itoa(m.Sequence))
	line("DTSTAMP:" + icsTime(stamp))
	line("DTSTART:" + icsTime(m.StartsAt))
	line("DTEND:" + icsTime(m.StartsAt.Add(time.Duration(m.DurationMinutes)*time.Minute)))
	line("SUMMARY:" + icsText("Lessons-learned meeting: "+m.Title))
	if m.Location != "" {
		line("LOCATION:" + icsText(m.Location))
	} else if m.VideoURL != "" {
		line("LOCATION:" + icsText(m.VideoURL))
	}
	desc := "The lessons-learned (post-incident) review meeting of \"" + m.Title + "\"."
	if m.VideoURL != "" {
		desc += "\nVideo: " + m.VideoURL
		line("URL:" + icsText(m.VideoURL))
	}
	line("DESCRIPTION:" + icsText(desc))
	line("ORGANIZER;CN=" + icsParam(organizer.Name) + ":mailto:" + organizer.Email)
	for _, a := range m.Attendees {
		if events.ValidEmail(a.Email) {
			line("ATTENDEE;CN=" + icsParam(a.Name) + ";ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:" + a.Email)
		}
	}
	line("STATUS:" + status)
	line("TRANSP:OPAQUE")
	line("END:VEVENT")
	line("END:VCALENDAR")
	return b.String(), method
}

func icsTime(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// icsText escapes a TEXT value (RFC 5545 §3.3.11); other control characters go.
func icsText(s string) string {
	var b strings.Builder
	for _, r := range strings.ReplaceAll(s, "\r\n", "\n") {
		switch {
		case r == '\\' || r == ';' || r == ',':
			b.WriteRune('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case unicode.IsControl(r):
			b.WriteRune(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// icsParam quotes a parameter value (RFC 5545 §3.1: no DQUOTE or controls inside).
func icsParam(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '"' || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return `"` + strings.TrimSpace(s) + `"`
}

// fold splits a content line into lines of at most 75 octets, never inside a
// UTF-8 sequence, continuation lines starting with a space (RFC 5545 §3.1).
func fold(s string) string {
	var b strings.Builder
	limit := 75
	for len(s) > limit {
		cut := limit
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		b.WriteString(s[:cut] + "\r\n ")
		s = s[cut:]
		limit = 74 // the leading space counts
	}
	b.WriteString(s + "\r\n")
	return b.String()
}

func utf8Start(c byte) bool { return c&0xC0 != 0x80 }
