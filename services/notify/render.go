package notify

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"
	"time"
)

// Reason is why a person is notified; with the person it is what a
// notification is sent once for.
type Reason string

// Reasons.
const (
	ReasonReviewOpened     Reason = "review_opened"     // to the facilitator
	ReasonInvitation       Reason = "invitation"        // personal form link
	ReasonReminder         Reason = "reminder"          // every NOTIFY_REMINDER_EVERY until answered or due
	ReasonDueSoon          Reason = "due_soon"          // review.reminder due_soon
	ReasonOverdue          Reason = "overdue"           // review.reminder overdue, to the participant
	ReasonEscalation       Reason = "escalation"        // review.reminder overdue, to the facilitator
	ReasonAllAnswered      Reason = "all_answered"      // to the facilitator: please complete
	ReasonMeeting          Reason = "meeting"           // iCalendar REQUEST
	ReasonMeetingCancelled Reason = "meeting_cancelled" // iCalendar CANCEL
	ReasonActionAssigned   Reason = "action_assigned"   // to the action's owner
	ReasonActionOverdue    Reason = "action_overdue"    // to the action's owner
	ReasonActionDigest     Reason = "action_digest"     // weekly, to owners and facilitators
)

// Reasons returns every reason, for configuration checks.
func Reasons() []Reason {
	return []Reason{ReasonReviewOpened, ReasonInvitation, ReasonReminder, ReasonDueSoon, ReasonOverdue, ReasonEscalation,
		ReasonAllAnswered, ReasonMeeting, ReasonMeetingCancelled, ReasonActionAssigned, ReasonActionOverdue, ReasonActionDigest}
}

// view is what the templates see. Link is the participant's personal form
// link: only the mail templates use it, never a chat one.
type view struct {
	Name, Title, Link, Participant, Due, Expires string
	Unanswered                                   int
	Start, Location, VideoURL                    string
	Duration, Sequence                           int
	Action, ActionDescription, ActionDue         string
	DaysOverdue                                  int
	// the weekly digest
	Week, Role                            string
	Overdue, DueSoon, Done                []string
	OverdueCount, DueSoonCount, DoneCount int
}

// Rendered is a notice as it goes out: mail subject and bodies, and the
// one-line chat text (which never holds a link).
type Rendered struct {
	Subject, Text, HTML, Chat string
}

// One template set per reason: {{define "subject"}}, "text", "chat" in
// text/template and "html" in html/template (contextual auto-escaping).
var textTemplates = map[Reason]string{
	ReasonReviewOpened: `{{define "subject"}}Review opened: {{.Title}}{{end}}
{{define "text"}}Hello {{.Name}},

the lessons-learned review of "{{.Title}}" is open and you facilitate it. Every participant with an e-mail address gets a personal invitation.{{if .Due}} Answers are due by {{.Due}}.{{end}}
{{end}}
{{define "chat"}}Review opened: "{{.Title}}" (facilitator {{.Name}}){{if .Due}}, due {{.Due}}{{end}}.{{end}}`,
	ReasonInvitation: `{{define "subject"}}Your input for the review of "{{.Title}}"{{end}}
{{define "text"}}Hello {{.Name}},

you were involved in the incident "{{.Title}}". Please answer the lessons-learned questionnaire{{if .Due}} by {{.Due}}{{end}}:

{{.Link}}

This link is personal: whoever has it can answer in your name. It works until {{.Expires}}.
{{end}}
{{define "chat"}}{{.Name}} was invited to the review of "{{.Title}}"; the personal link went by e-mail.{{end}}`,
	ReasonReminder: `{{define "subject"}}Reminder: the review of "{{.Title}}" awaits your answers{{end}}
{{define "text"}}Hello {{.Name}},

the lessons-learned review of "{{.Title}}" still awaits your answers{{if .Due}} (due {{.Due}}){{end}}:

{{.Link}}
{{end}}
{{define "chat"}}Reminder sent to {{.Name}} for the review of "{{.Title}}".{{end}}`,
	ReasonDueSoon: `{{define "subject"}}Due soon: the review of "{{.Title}}"{{end}}
{{define "text"}}Hello {{.Name}},

your answers to the lessons-learned review of "{{.Title}}" are due by {{.Due}}:

{{.Link}}
{{end}}
{{define "chat"}}{{.Name}}'s answers to the review of "{{.Title}}" are due by {{.Due}}.{{end}}`,
	ReasonOverdue: `{{define "subject"}}Overdue: the review of "{{.Title}}"{{end}}
{{define "text"}}Hello {{.Name}},

your answers to the lessons-learned review of "{{.Title}}" were due by {{.Due}}. The facilitator has been told. You can still answer:

{{.Link}}
{{end}}
{{define "chat"}}{{.Name}}'s answers to the review of "{{.Title}}" are overdue (due {{.Due}}).{{end}}`,
	ReasonEscalation: `{{define "subject"}}Escalation: {{.Participant}} has not answered the review of "{{.Title}}"{{end}}
{{define "text"}}Hello {{.Name}},

{{.Participant}} has not answered the lessons-learned review of "{{.Title}}", which was due by {{.Due}}. They have been sent an overdue notice.
{{end}}
{{define "chat"}}Escalation: {{.Participant}} has not answered the review of "{{.Title}}" (due {{.Due}}).{{end}}`,
	ReasonAllAnswered: `{{define "subject"}}All answered: please complete the review of "{{.Title}}"{{end}}
{{define "text"}}Hello {{.Name}},

every participant has answered the lessons-learned review of "{{.Title}}". Please complete it with the findings and action items.
{{end}}
{{define "chat"}}Everyone has answered the review of "{{.Title}}": {{.Name}}, please complete it.{{end}}`,
	ReasonMeeting: `{{define "subject"}}{{if .Sequence}}Updated: {{end}}Lessons-learned meeting: {{.Title}} ({{.Start}}){{end}}
{{define "text"}}Hello {{.Name}},

you are invited to the lessons-learned meeting of "{{.Title}}":

When:  {{.Start}} ({{.Duration}} minutes)
{{if .Location}}Where: {{.Location}}
{{end}}{{if .VideoURL}}Video: {{.VideoURL}}
{{end}}
The attached invitation (invite.ics) adds it to your calendar.
{{end}}
{{define "chat"}}Lessons-learned meeting of "{{.Title}}": {{.Start}} ({{.Duration}} minutes){{if .Location}}, {{.Location}}{{end}}.{{end}}`,
	ReasonMeetingCancelled: `{{define "subject"}}Cancelled: lessons-learned meeting: {{.Title}} ({{.Start}}){{end}}
{{define "text"}}Hello {{.Name}},

the lessons-learned meeting of "{{.Title}}" on {{.Start}} is cancelled. The attached cancellation removes it from your calendar.
{{end}}
{{define "chat"}}Cancelled: the lessons-learned meeting of "{{.Title}}" on {{.Start}}.{{end}}`,
	ReasonActionAssigned: `{{define "subject"}}Action assigned to you: {{.Action}}{{end}}
{{define "text"}}Hello {{.Name}},

{{if .Title}}the review of the incident "{{.Title}}"{{else}}a lessons-learned review{{end}} assigned you an improvement action:

{{.Action}}
{{if .ActionDescription}}
{{.ActionDescription}}
{{end}}{{if .ActionDue}}
Due: {{.ActionDue}}
{{end}}{{end}}
{{define "chat"}}Action assigned to {{.Name}}: {{.Action}}{{if .ActionDue}} (due {{.ActionDue}}){{end}}.{{end}}`,
	ReasonActionOverdue: `{{define "subject"}}Overdue action: {{.Action}}{{end}}
{{define "text"}}Hello {{.Name}},

the improvement action "{{.Action}}" was due on {{.ActionDue}} and is {{.DaysOverdue}} day(s) overdue. Please finish it or agree a new date.
{{end}}
{{define "chat"}}Overdue action ({{.DaysOverdue}} day(s)): {{.Action}}, owner {{.Name}}.{{end}}`,
	ReasonActionDigest: `{{define "subject"}}Improvement actions, week {{.Week}}: {{.OverdueCount}} overdue, {{.DueSoonCount}} due soon{{end}}
{{define "text"}}Hello {{.Name}},

the improvement actions {{if eq .Role "facilitator"}}of the reviews you facilitated{{else}}you own{{end}}, week {{.Week}}.
{{if .Overdue}}
Overdue ({{.OverdueCount}}):
{{range .Overdue}}- {{.}}
{{end}}{{end}}{{if .DueSoon}}
Due within seven days ({{.DueSoonCount}}):
{{range .DueSoon}}- {{.}}
{{end}}{{end}}{{if .Done}}
Done this week ({{.DoneCount}}):
{{range .Done}}- {{.}}
{{end}}{{end}}{{end}}
{{define "chat"}}Improvement actions of {{.Name}}, week {{.Week}}: {{.OverdueCount}} overdue, {{.DueSoonCount}} due soon, {{.DoneCount}} done.{{end}}`,
}

// htmlBody is the HTML version of every mail: the text body's paragraphs,
// escaped by html/template, with the link (when there is one) as a button.
const htmlBody = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family: sans-serif; line-height: 1.5; max-width: 40em">
{{range .Paragraphs}}<p style="white-space: pre-line">{{.}}</p>
{{end}}{{if .Link}}<p><a href="{{.Link}}" style="display: inline-block; padding: .6em 1.2em; background: #1f4e79; color: #fff; text-decoration: none; border-radius: 4px">Answer the questionnaire</a></p>
{{end}}<p style="color: #666; font-size: small">Sent by afteraction, the post-incident review service.</p>
</body></html>
`

// renderer holds the parsed templates.
type renderer struct {
	text map[Reason]*texttemplate.Template
	html *htmltemplate.Template
}

// newRenderer parses every template; an error is a bug in a template.
func newRenderer() (*renderer, error) {
	r := &renderer{text: map[Reason]*texttemplate.Template{}}
	var err error
	if r.html, err = htmltemplate.New("html").Parse(htmlBody); err != nil {
		return nil, fmt.Errorf("parse html template: %w", err)
	}
	for reason, src := range textTemplates {
		if r.text[reason], err = texttemplate.New(string(reason)).Option("missingkey=error").Parse(src); err != nil {
			return nil, fmt.Errorf("parse %s template: %w", reason, err)
		}
	}
	return r, nil
}

// render renders the notice for reason with v.
func (rd *renderer) render(reason Reason, v view) (Rendered, error) {
	t, ok := rd.text[reason]
	if !ok {
		return Rendered{}, fmt.Errorf("no template for reason %q", reason)
	}
	exec := func(name string) (string, error) {
		var b bytes.Buffer
		if err := t.ExecuteTemplate(&b, name, v); err != nil {
			return "", fmt.Errorf("render %s %s: %w", reason, name, err)
		}
		return b.String(), nil
	}
	var r Rendered
	var err error
	if r.Subject, err = exec("subject"); err != nil {
		return r, err
	}
	r.Subject = headerText(r.Subject)
	if r.Text, err = exec("text"); err != nil {
		return r, err
	}
	if r.Chat, err = exec("chat"); err != nil {
		return r, err
	}
	var paragraphs []string
	for _, p := range bytes.Split([]byte(r.Text), []byte("\n\n")) {
		if s := string(bytes.TrimSpace(p)); s != "" && s != v.Link {
			paragraphs = append(paragraphs, s)
		}
	}
	var h bytes.Buffer
	if err := rd.html.Execute(&h, map[string]any{"Subject": r.Subject, "Paragraphs": paragraphs, "Link": v.Link}); err != nil {
		return r, fmt.Errorf("render %s html: %w", reason, err)
	}
	r.HTML = h.String()
	return r, nil
}

// when formats a time for people: UTC, unambiguous.
func when(t time.Time) string { return t.UTC().Format("Mon 2 Jan 2006 15:04 MST") }
