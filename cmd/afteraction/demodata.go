package main

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// shiftToNow moves every timestamp of inc by the same amount so that it closes
// at closedAt: durations stay exactly as recorded, and the review's due date
// lands in the future.
func shiftToNow(inc *events.IncidentClosed, closedAt time.Time) {
	d := closedAt.Sub(inc.Timestamps.ClosedAt)
	shift := func(t *time.Time) {
		if t != nil {
			*t = t.Add(d).UTC()
		}
	}
	ts := &inc.Timestamps
	for _, t := range []*time.Time{ts.StartedAt, ts.DetectedAt, ts.ReportedAt, ts.ImpactAssessedAt, ts.ContainedAt,
		ts.EradicatedAt, ts.RecoveredAt, ts.ResolvedAt, &ts.ClosedAt} {
		shift(t)
	}
	for i := range inc.Timeline {
		shift(&inc.Timeline[i].At)
	}
	for i := range inc.Notifications {
		shift(inc.Notifications[i].At)
	}
	if inc.Impact != nil {
		for _, a := range []*events.ImpactAssessment{inc.Impact.Initial, inc.Impact.Final} {
			if a != nil {
				shift(a.AssessedAt)
			}
		}
	}
}

// personas answer the questionnaire in the demo: a commander, a responder and
// the finance colleague who reported the phishing e-mail. Answers are keyed by
// question id, so two questions on one topic never show the same paragraph.
var personas = []map[string]string{
	{
		"what_happened.account":               "Timeline is accurate. The first credential use from the foreign IP was 08:47, an hour before our alert; we only saw it at 09:58 when the impossible-travel rule fired.",
		"what_happened.timeline_corrections":  "Add 08:47: first sign-in from the foreign IP, found afterwards in the sign-in log.",
		"team_performance.notes":              "The phishing playbook was followed for containment, but it has no step for checking inbox rules, which cost us about 40 minutes.",
		"business_information.needed_sooner":  "Which vendors had received mails from the mailbox; a sent-items export should be requested in the first 15 minutes.",
		"business_information.improve":        "Finance should name one contact who can answer vendor and payment questions during an incident.",
		"containment_eradication.helped":      "Session revocation plus password reset worked at once.",
		"containment_eradication.hindered":    "Revoking OAuth grants was manual and slow; it should be scripted.",
		"do_differently.next_time":            "Start the bank call-back in parallel with containment, not after it.",
		"information_sharing.improve":         "Shared the sender domain and URL with our CERT sector group the same afternoon; a template for that message would save time.",
		"preventive_measures.actions":         "Phishing-resistant MFA (FIDO2) for finance\nBlock legacy authentication tenant-wide",
		"precursors_indicators.watch":         "Look-alike domain registered 3 days before; sign-ins from new ASN; new inbox rules forwarding externally.",
		"tools_resources.needed":              "Alert on new external forwarding inbox rules\nScript to revoke OAuth grants and app passwords",
		"training.needs":                      "Record a 20-minute walkthrough of this investigation",
		"training.junior_lessons":             "How we pivoted from the sign-in log to the inbox rules.",
		"readiness_structure.team_structure":  "On-call had no finance contact; add a business liaison to the security on-call rota.",
		"team_performance.steps_not_followed": "The inbox-rule check was skipped because the playbook does not list it.",
		"team_performance.update_which":       "Add inbox-rule and OAuth-grant checks to the compromised-account playbook",
		"cost.effort":                         "About 25 person-hours across security, IT and finance, and a day of month-end work delayed.",
		"cost.money":                          "Around 18,000 EUR in effort and outside help; the diverted payment was stopped, so no direct loss.",
		"recurrence.details":                  "A similar invoice phishing in 2025; the lesson then was user training, not MFA hardening.",
	},
	{
		"what_happened.account":               "Agree, but add that 14 other staff received the same mail and two clicked without entering credentials.",
		"what_happened.timeline_corrections":  "The purge of the other copies finished at 11:40, not 11:21.",
		"team_performance.notes":              "Communication in the incident channel was good; the status page for internal users was updated late.",
		"business_information.needed_sooner":  "The vendor contact list; it took three hours to find who owns it.",
		"business_information.improve":        "Keep the vendor contact list in the incident wiki with a named owner.",
		"containment_eradication.helped":      "Blocking the domain at the gateway early stopped further credential entry.",
		"containment_eradication.hindered":    "Purging copies took long without a search-and-purge permission.",
		"do_differently.next_time":            "Grant the SOC search-and-purge rights before the next incident.",
		"information_sharing.improve":         "Reported the phishing kit URL to the hosting provider; it was taken down within a day. Report to the provider's abuse API, not by e-mail.",
		"preventive_measures.actions":         "Banner for external senders with look-alike domains",
		"precursors_indicators.watch":         "Typosquat domain monitoring would have flagged the domain at registration.",
		"tools_resources.needed":              "Typosquat domain monitoring service",
		"training.needs":                      "Hands-on mail search-and-purge exercise for the SOC",
		"training.junior_lessons":             "Check inbox rules and OAuth grants on every compromised account, not only the password.",
		"readiness_structure.team_structure":  "Two responders were enough; a third for communications would have helped.",
		"team_performance.steps_not_followed": "Mail purge waited for an approval the playbook does not mention.",
		"team_performance.update_which":       "Give the SOC search-and-purge rights in the playbook's prerequisites",
		"cost.effort":                         "My whole shift and half of the next went to this incident.",
		"cost.money":                          "No outside help was paid for on our side; I cannot judge the business cost.",
		"recurrence.details":                  "Look-alike domains have been used against us twice before, never with a mailbox taken over.",
	},
	{
		"what_happened.account":               "I reported the mail at 09:12 through the report button but did not hear back until 10:05.",
		"what_happened.timeline_corrections":  "My report through the button at 09:12 is missing.",
		"team_performance.notes":              "The security team was responsive once engaged and explained clearly what to do.",
		"business_information.needed_sooner":  "That the vendor payment run was that day; nobody asked, and we did not know it mattered.",
		"business_information.improve":        "Tell finance which facts security needs in the first hour; we would have offered them.",
		"containment_eradication.helped":      "The clear instructions on what not to open while the mailbox was examined.",
		"containment_eradication.hindered":    "Having my account locked for half a day stopped the month-end work; a temporary account would have helped.",
		"do_differently.next_time":            "Acknowledge phishing reports within 15 minutes so reporters know it is being handled.",
		"information_sharing.improve":         "Our bank's fraud team was helpful; we should have their direct number on file.",
		"preventive_measures.actions":         "Four-eyes check and call-back on every change of vendor bank details",
		"precursors_indicators.watch":         "Vendors asking about unusual bank-detail letters.",
		"tools_resources.needed":              "Automatic acknowledgement for the phishing report button",
		"training.needs":                      "Finance staff training on payment-diversion fraud with this case as the example",
		"training.junior_lessons":             "A phishing report is worth sending even when you are not sure.",
		"readiness_structure.team_structure":  "Finance needs a named deputy for the incident contact role.",
		"team_performance.steps_not_followed": "I was not told which steps applied to me as the reporter.",
		"team_performance.update_which":       "Tell reporters what happens after they press the report button",
		"cost.effort":                         "Finance lost half a day of month-end work while my account was locked.",
		"cost.money":                          "Two payments were delayed by a day; no late fees were charged.",
		"recurrence.details":                  "Vendors were impersonated by letter last year; nobody connected it to e-mail.",
	},
}

// answersFor answers every question as persona i would, by question kind,
// skipping a conditional question whose condition this persona's earlier
// answers do not meet (the review service refuses those).
func answersFor(qs []events.Question, i int) []map[string]any {
	p := personas[i%len(personas)]
	out := make([]map[string]any, 0, len(qs))
	given := map[string]string{} // question id → the answer as a condition names it
	for _, q := range qs {
		if c := q.ShowWhen; c != nil && !slices.Contains(c.Values, given[c.QuestionID]) {
			continue
		}
		text := p[q.ID]
		if text == "" {
			text = fmt.Sprintf("No further remarks on %q.", q.Prompt)
		}
		a := map[string]any{"question_id": q.ID}
		switch q.Kind {
		case events.QuestionRating:
			a["rating"] = 3 + i%3
			given[q.ID] = strconv.Itoa(3 + i%3)
		case events.QuestionYesNo:
			a["yes"] = i != 2
			given[q.ID] = map[bool]string{true: "yes", false: "no"}[i != 2]
		case events.QuestionChoice:
			if len(q.Choices) == 0 {
				continue
			}
			a["choice"] = q.Choices[i%len(q.Choices)]
			given[q.ID] = q.Choices[i%len(q.Choices)]
		case events.QuestionActionItems:
			a["items"] = splitLines(text)
		default:
			a["text"] = text
		}
		out = append(out, a)
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '\n' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

type completionBody struct {
	Facilitator events.Contact      `json:"facilitator"`
	Summary     string              `json:"summary"`
	Findings    []events.Finding    `json:"findings"`
	ActionItems []events.ActionItem `json:"action_items"`
}

// demoCompletion is the facilitator's consolidation of the three answers.
func demoCompletion(f participantView, inc events.IncidentClosed) completionBody {
	due := func(days int) string { return time.Now().UTC().AddDate(0, 0, days).Format(time.DateOnly) }
	owner := func(name, email string) *events.Owner { return &events.Owner{Name: name, Email: email} }
	return completionBody{
		Facilitator: events.Contact{Name: f.Name, Email: f.Email},
		Summary: "A credential-phishing e-mail compromised a finance mailbox, which was used to send fraudulent " +
			"bank-detail changes to vendors. The account was contained within two hours of detection and no funds " +
			"were lost. Detection lagged the first malicious sign-in by 71 minutes, and the playbook missed inbox " +
			"rules and OAuth grants. Six improvements follow.",
		Findings: []events.Finding{
			{Topic: "what_happened", Summary: "Detection lagged the first malicious sign-in by 71 minutes.", Detail: "Impossible-travel alerting fired only after the second sign-in."},
			{Topic: "team_performance", Summary: "The phishing playbook lacks inbox-rule and OAuth-grant checks."},
			{Topic: "business_information", Summary: "The vendor contact list and payment-run schedule were needed in the first hour."},
			{Topic: "containment_eradication", Summary: "Gateway blocking early was effective; OAuth revocation was manual and slow."},
			{Topic: "training", Summary: "Juniors learn most from the pivot from sign-in logs to inbox rules; record it."},
		},
		ActionItems: []events.ActionItem{
			{Key: "fido2-finance", Title: "Roll out phishing-resistant MFA (FIDO2) to finance", Category: "preventive", Priority: "critical",
				Owner: owner("Kemal Yıldız", "kemal.yildiz@nordlicht-logistik.example"), DueDate: due(30),
				Description: "Hardware keys for the 42 finance staff; conditional access requires them for mail and ERP."},
			{Key: "inbox-rule-alert", Title: "Alert on new external-forwarding inbox rules", Category: "detection", Priority: "high",
				Owner: owner("Zoë Ågren", "zoe.agren@nordlicht-logistik.example"), DueDate: due(14)},
			{Key: "oauth-revoke-script", Title: "Script the revocation of OAuth grants and app passwords", Category: "tooling", Priority: "high",
				Owner: owner("Zoë Ågren", "zoe.agren@nordlicht-logistik.example"), DueDate: due(21)},
			{Key: "playbook-inbox-rules", Title: "Add inbox-rule and OAuth-grant checks to the phishing playbook", Category: "playbook", Priority: "high",
				Owner: owner("Kemal Yıldız", "kemal.yildiz@nordlicht-logistik.example"), DueDate: due(10)},
			{Key: "vendor-callback", Title: "Four-eyes check and call-back for every vendor bank-detail change", Category: "process", Priority: "critical",
				Owner: owner("Margarethe Müller-Lüdenscheidt", "m.mueller@nordlicht-logistik.example"), DueDate: due(7)},
			{Key: "junior-walkthrough", Title: "Record a walkthrough of this investigation for junior analysts", Category: "training", Priority: "medium",
				Owner: owner("Kemal Yıldız", "kemal.yildiz@nordlicht-logistik.example"), DueDate: due(45)},
		},
	}
}
