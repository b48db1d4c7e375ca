package pdf

import (
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// Section headings, exactly as printed.
const (
	HeadingSummary      = "Executive summary"
	HeadingWhatHappened = "What happened and when"
	HeadingTimeMetrics  = "Time metrics"
	HeadingTeam         = "Team performance against plans, playbooks, policies and procedures"
	HeadingBusiness     = "Business cooperation and information flow"
	HeadingContainment  = "Containment and eradication"
	HeadingPreventive   = "Preventive measures"
	HeadingTools        = "Tools and resources needed"
	HeadingTraining     = "Training and readiness"
	HeadingCost         = "Cost and impact"
	HeadingOther        = "Other review answers"
	HeadingActions      = "Action items"
	HeadingParticipants = "Participants"
	HeadingIntegrity    = "Document integrity"
)

// Headings lists every heading a report always contains, in order
// (HeadingOther appears only when the review has answers on other topics).
var Headings = []string{HeadingSummary, HeadingWhatHappened, HeadingTimeMetrics, HeadingTeam,
	HeadingBusiness, HeadingContainment, HeadingPreventive, HeadingTools, HeadingTraining,
	HeadingCost, HeadingActions, HeadingParticipants, HeadingIntegrity}

// sectionTopics maps the questionnaire topics of the review service onto the
// report's sections. Topics not listed here go to HeadingOther, so no answer
// is left out.
var sectionTopics = map[string][]string{
	HeadingWhatHappened: {"what_happened"},
	HeadingTeam:         {"team_performance"},
	HeadingBusiness:     {"business_information", "information_sharing"},
	HeadingContainment:  {"containment_eradication", "do_differently"},
	HeadingPreventive:   {"preventive_measures", "precursors_indicators"},
	HeadingTools:        {"tools_resources"},
	HeadingTraining:     {"training", "readiness_structure"},
}

func knownTopic(t string) bool {
	for _, ts := range sectionTopics {
		if slices.Contains(ts, t) {
			return true
		}
	}
	return false
}

func (d *doc) render() {
	d.cover()
	d.summary()
	d.whatHappened()
	d.timeMetrics()
	d.topicSection(HeadingTeam, func() {
		if pb := d.rv.Incident.Playbook; pb != nil {
			d.labelled("Playbook", strings.TrimSpace(pb.Name+" "+versionOf(pb.Version)))
			if pb.URL != "" {
				d.labelled("Playbook link", pb.URL)
			}
		}
	})
	d.topicSection(HeadingBusiness, d.businessFacts)
	d.topicSection(HeadingContainment, d.containmentFacts)
	d.topicSection(HeadingPreventive, d.preventiveFacts)
	d.topicSection(HeadingTools, func() { d.relatedActions(events.CategoryTooling) })
	d.topicSection(HeadingTraining, func() { d.relatedActions(events.CategoryTraining) })
	d.costAndImpact()
	d.otherAnswers()
	d.actionItems()
	d.participants()
	d.integrity()
}

func versionOf(v string) string {
	if v == "" {
		return ""
	}
	return "(version " + v + ")"
}

func (d *doc) cover() {
	f, rv, inc := d.f, d.rv, &d.rv.Incident
	f.AddPage()
	f.Ln(14)
	d.font("", 11)
	f.SetTextColor(20, 50, 100)
	f.CellFormat(0, 6, "POST-INCIDENT REPORT", "", 1, "L", false, 0, "")
	f.Ln(2)
	d.font("B", 20)
	f.SetTextColor(0, 0, 0)
	f.MultiCell(0, 9, d.text(orDash(inc.Title)), "", "L", false)
	f.Ln(3)
	if d.in.Redacted {
		d.font("B", 12)
		f.SetFillColor(250, 205, 205)
		f.CellFormat(0, 8, "REDACTED RENDITION for external distribution", "", 1, "C", true, 0, "")
		d.font("", bodySize)
		f.MultiCell(0, lineH, "Names of people, e-mail addresses, IP addresses and host names are masked. "+
			"The full version of this report is kept unchanged by the organisation that issued it.", "", "L", false)
		f.Ln(3)
	}
	if inc.Exercise {
		d.font("B", 12)
		f.SetFillColor(250, 225, 120)
		f.CellFormat(0, 8, "EXERCISE: this incident was a drill, not a real attack", "", 1, "C", true, 0, "")
		f.Ln(3)
	}
	classification := inc.Category
	if inc.Subcategory != "" {
		classification += " / " + inc.Subcategory
	}
	exercise := "No"
	if inc.Exercise {
		exercise = "Yes"
	}
	d.kv([][2]string{
		{"Incident id", rv.IncidentID},
		{"Source reference", strings.TrimSpace(inc.Source + " " + inc.ExternalID)},
		{"Severity", humanize(string(inc.Severity))},
		{"Classification", orDash(humanize(classification))},
		{"Exercise", exercise},
		{"Report version", strconv.Itoa(d.in.Version)},
		{"Report id", d.in.ReportID},
		{"Date", fmtTime(d.in.GeneratedAt)},
		{"Incident closed", fmtTime(inc.Timestamps.ClosedAt)},
		{"Review", rv.ReviewID},
		{"Review completed", fmtTime(rv.CompletedAt)},
		{"Facilitator", contact(rv.Facilitator.Name, rv.Facilitator.Email)},
		{"Questionnaire", rv.QuestionnaireVersion},
	})
	if inc.URL != "" {
		d.labelled("Ticket", inc.URL)
	}
	if rv.Amendment > 0 {
		amended := ""
		if rv.AmendedAt != nil {
			amended = " (" + fmtTime(*rv.AmendedAt) + ")"
		}
		d.labelled("Amendment "+strconv.Itoa(rv.Amendment)+amended, rv.AmendmentReason)
	}
	f.Ln(4)
	d.note("This report was rendered by afteraction from the completed lessons-learned review. " +
		"Its integrity can be checked as described in the section \"Document integrity\".")
}

func contact(name, email string) string {
	if email == "" {
		return orDash(name)
	}
	return name + " <" + email + ">"
}

func (d *doc) summary() {
	rv, inc := d.rv, &d.rv.Incident
	d.f.AddPage()
	d.heading(HeadingSummary)
	if rv.Summary == "" && inc.Summary == "" {
		d.note("No summary was given.")
	}
	d.para(rv.Summary)
	if inc.Summary != "" {
		d.subheading("The incident")
		d.para(inc.Summary)
	}
	if inc.AttackVector != "" {
		d.labelled("Attack vector", inc.AttackVector)
	}
	if inc.RootCause != "" {
		d.labelled("Root cause", inc.RootCause)
	}
	var facts []string
	ts := inc.Timestamps
	if ts.DetectedAt != nil && ts.ContainedAt != nil {
		facts = append(facts, "Contained "+fmtDuration(ts.ContainedAt.Sub(*ts.DetectedAt))+" after detection.")
	}
	if im := inc.Impact; im != nil {
		if im.RecordsAffected != nil {
			facts = append(facts, fmt.Sprintf("%d records affected.", *im.RecordsAffected))
		}
		if im.EstimatedCost != nil {
			facts = append(facts, "Estimated cost "+money(im.EstimatedCost)+".")
		}
	}
	facts = append(facts, fmt.Sprintf("%d findings, %d action items, %d participants answered.",
		len(rv.Findings), len(rv.ActionItems), len(rv.Responses)))
	d.subheading("Key figures")
	d.bullets(facts)
	if len(rv.Findings) > 0 {
		d.subheading("Key findings")
		items := make([]string, len(rv.Findings))
		for i, fd := range rv.Findings {
			items[i] = fd.Summary
		}
		d.bullets(items)
	}
	d.meeting()
}

func (d *doc) whatHappened() {
	inc := &d.rv.Incident
	spans := phaseSpans(*inc)
	d.headingBefore(HeadingWhatHappened, subheadingH+phaseChartHeight(spans))
	d.subheadingBefore("Handling phases", phaseChartHeight(spans))
	d.phaseChart(spans)
	d.subheading("Timeline")
	if len(inc.Timeline) == 0 {
		d.note("The incident has no timeline.")
	} else {
		rows := make([][]string, 0, len(inc.Timeline))
		for _, e := range sortedTimeline(inc.Timeline) {
			text := e.Action
			if e.Detail != "" {
				text += "\n" + e.Detail
			}
			rows = append(rows, []string{cellTime(e.At), humanize(string(e.Phase)), orDash(e.Actor), text})
		}
		d.table([]column{{"Time (UTC)", 29}, {"Phase", 24}, {"Actor", 29}, {"What happened", d.width - 82}}, rows)
	}
	d.topicAnswers(HeadingWhatHappened)
}

func (d *doc) timeMetrics() {
	inc := &d.rv.Incident
	ts := inc.Timestamps
	d.heading(HeadingTimeMetrics)
	type metric struct {
		name     string
		from, to *time.Time
		fromName string
	}
	closed := ts.ClosedAt
	metrics := []metric{
		{"Time to detect", ts.StartedAt, ts.DetectedAt, "start"},
		{"Time to report", ts.DetectedAt, ts.ReportedAt, "detection"},
		{"Time to assess impact", ts.DetectedAt, ts.ImpactAssessedAt, "detection"},
		{"Time to contain", ts.DetectedAt, ts.ContainedAt, "detection"},
		{"Time to eradicate", ts.DetectedAt, ts.EradicatedAt, "detection"},
		{"Time to recover", ts.DetectedAt, ts.RecoveredAt, "detection"},
		{"Time to resolve", ts.DetectedAt, ts.ResolvedAt, "detection"},
		{"Time to close", ts.DetectedAt, &closed, "detection"},
	}
	rows := make([][]string, 0, len(metrics))
	for _, m := range metrics {
		dur := "not known"
		if m.from != nil && m.to != nil {
			dur = fmtDuration(m.to.Sub(*m.from))
		}
		rows = append(rows, []string{m.name, "from " + m.fromName, cellTimePtr(m.from), cellTimePtr(m.to), dur})
	}
	d.table([]column{{"Metric", 38}, {"Measured", 28}, {"From (UTC)", 30}, {"To (UTC)", 30}, {"Duration", d.width - 126}}, rows)
	d.subheading("Labour")
	if len(inc.Labour) == 0 {
		d.note("No labour hours were recorded.")
		return
	}
	var total float64
	lrows := make([][]string, 0, len(inc.Labour)+1)
	for _, l := range inc.Labour {
		total += l.Hours
		lrows = append(lrows, []string{contact(l.Person, l.Email), fmtHours(l.Hours)})
	}
	lrows = append(lrows, []string{"Total", fmtHours(total)})
	d.table([]column{{"Person", d.width - 40}, {"Hours", 40}}, lrows)
}

// topicSection draws a section heading, the review's answers and findings on
// the section's topics, then facts drawn from the incident.
func (d *doc) topicSection(heading string, facts func()) {
	d.heading(heading)
	d.topicAnswers(heading)
	if facts != nil {
		facts()
	}
}

// topicAnswers draws every question on the section's topics with each
// participant's answer, then the findings on those topics.
func (d *doc) topicAnswers(heading string) {
	topics := sectionTopics[heading]
	any := false
	for _, q := range d.rv.Questions {
		if slices.Contains(topics, q.Topic) {
			d.question(q)
			any = true
		}
	}
	var findings []events.Finding
	for _, fd := range d.rv.Findings {
		if slices.Contains(topics, fd.Topic) {
			findings = append(findings, fd)
		}
	}
	if len(findings) > 0 {
		d.findings(findings)
		any = true
	}
	if !any {
		d.note("The review recorded no questions or findings on this topic.")
	}
}

func (d *doc) question(q events.Question) {
	d.ensure(16)
	d.font("B", bodySize)
	d.f.SetTextColor(20, 50, 100)
	d.f.MultiCell(0, lineH, d.text(q.Prompt), "", "L", false)
	d.f.SetTextColor(0, 0, 0)
	var answered, ratings, sum, yes, no int
	for _, r := range d.rv.Responses {
		for _, a := range r.Answers {
			if a.QuestionID != q.ID {
				continue
			}
			answered++
			if a.Rating != nil {
				ratings++
				sum += *a.Rating
			}
			if a.Yes != nil {
				if *a.Yes {
					yes++
				} else {
					no++
				}
			}
			who := r.Participant.Name
			if r.Participant.Role != "" {
				who += " (" + humanize(string(r.Participant.Role)) + ")"
			}
			d.labelled(who, answerText(a))
		}
	}
	switch {
	case answered == 0:
		d.note("No participant answered this question.")
	case ratings > 0:
		d.note(fmt.Sprintf("Average rating %.1f of 5 from %d participants.", float64(sum)/float64(ratings), ratings))
	case yes+no > 0:
		d.note(fmt.Sprintf("Yes: %d, no: %d.", yes, no))
	}
	d.f.Ln(1)
}

// answerText renders whatever fields of a are set.
func answerText(a events.Answer) string {
	var parts []string
	if a.Text != "" {
		parts = append(parts, a.Text)
	}
	if a.Rating != nil {
		parts = append(parts, fmt.Sprintf("%d of 5", *a.Rating))
	}
	if a.Yes != nil {
		parts = append(parts, map[bool]string{true: "Yes", false: "No"}[*a.Yes])
	}
	if a.Choice != "" {
		parts = append(parts, a.Choice)
	}
	for _, it := range a.Items {
		parts = append(parts, "• "+it)
	}
	return strings.Join(parts, "\n")
}

func (d *doc) findings(fs []events.Finding) {
	d.subheading("Findings")
	for _, fd := range fs {
		d.ensure(12)
		d.f.SetX(margin)
		d.font("B", bodySize)
		d.f.MultiCell(0, lineH, d.text("• "+fd.Summary), "", "L", false)
		if fd.Detail != "" {
			d.f.SetX(margin + 4)
			d.font("", bodySize)
			d.f.MultiCell(d.width-4, lineH, d.text(fd.Detail), "", "L", false)
		}
		d.f.Ln(1)
	}
}

func (d *doc) businessFacts() {
	inc := &d.rv.Incident
	if len(inc.BusinessUnits) > 0 {
		d.labelled("Business units affected", strings.Join(inc.BusinessUnits, ", "))
	}
	d.subheading("Notifications")
	if len(inc.Notifications) == 0 {
		d.note("No notifications outside the response team were recorded.")
		return
	}
	rows := make([][]string, len(inc.Notifications))
	for i, n := range inc.Notifications {
		rows[i] = []string{humanize(string(n.Audience)), orDash(n.Name), cellTimePtr(n.At), orDash(n.Reference)}
	}
	d.table([]column{{"Audience", 28}, {"Who", d.width - 98}, {"When (UTC)", 32}, {"Reference", 38}}, rows)
}

func (d *doc) containmentFacts() {
	var rows [][]string
	for _, e := range sortedTimeline(d.rv.Incident.Timeline) {
		switch e.Phase {
		case events.PhaseContainment, events.PhaseEradication, events.PhaseRecovery:
			rows = append(rows, []string{cellTime(e.At), humanize(string(e.Phase)), orDash(e.Actor), e.Action})
		}
	}
	d.subheading("Containment, eradication and recovery actions")
	if len(rows) == 0 {
		d.note("The timeline records no containment, eradication or recovery actions.")
		return
	}
	d.table([]column{{"Time (UTC)", 29}, {"Phase", 24}, {"Actor", 29}, {"Action", d.width - 82}}, rows)
}

func (d *doc) preventiveFacts() {
	inc := &d.rv.Incident
	if len(inc.Indicators) > 0 {
		d.subheading("Indicators of compromise")
		rows := make([][]string, len(inc.Indicators))
		for i, ind := range inc.Indicators {
			rows[i] = []string{ind.Type, ind.Value}
		}
		d.table([]column{{"Type", 25}, {"Value", d.width - 25}}, rows)
	}
	d.relatedActions(events.CategoryPreventive, events.CategoryDetection)
}

// relatedActions lists the action items of the given categories.
func (d *doc) relatedActions(cats ...events.ActionCategory) {
	var items []string
	for _, a := range d.rv.ActionItems {
		if slices.Contains(cats, a.Category) {
			items = append(items, a.Title+" ("+string(a.Category)+")")
		}
	}
	if len(items) > 0 {
		d.subheading("Related action items")
		d.bullets(items)
	}
}

func money(m *events.Money) string {
	if m == nil {
		return "–"
	}
	amount := m.Amount
	if r, ok := new(big.Rat).SetString(m.Amount); ok {
		amount = groupThousands(r.FloatString(2))
	}
	return amount + " " + m.Currency
}

// groupThousands inserts thin separators into the integer part of a decimal string.
func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

func (d *doc) costAndImpact() {
	inc := &d.rv.Incident
	d.heading(HeadingCost)
	im := inc.Impact
	if im == nil {
		im = &events.Impact{}
	}
	assess := func(a *events.ImpactAssessment) (level, desc, at string) {
		if a == nil {
			return "not assessed", "–", "–"
		}
		return orDash(humanize(string(a.Level))), orDash(a.Description), cellTimePtr(a.AssessedAt)
	}
	il, idesc, iat := assess(im.Initial)
	fl, fdesc, fat := assess(im.Final)
	d.subheading("Initial and final assessment")
	w := (d.width - 32) / 2
	d.table([]column{{"", 32}, {"Initial assessment", w}, {"Final assessment", w}}, [][]string{
		{"Impact level", il, fl},
		{"Description", idesc, fdesc},
		{"Assessed at (UTC)", iat, fat},
	})
	records, downtime := "not known", "not known"
	if im.RecordsAffected != nil {
		records = strconv.FormatInt(*im.RecordsAffected, 10)
	}
	if im.DowntimeMinutes != nil {
		downtime = fmtDuration(time.Duration(*im.DowntimeMinutes) * time.Minute)
	}
	cost := "not known"
	if im.EstimatedCost != nil {
		cost = money(im.EstimatedCost)
	}
	d.kv([][2]string{
		{"Records affected", records},
		{"Downtime", downtime},
		{"Estimated cost", cost},
	})
	if len(inc.AffectedAssets) > 0 {
		d.subheading("Affected assets")
		rows := make([][]string, len(inc.AffectedAssets))
		for i, a := range inc.AffectedAssets {
			rows[i] = []string{a.Name, orDash(a.Kind), orDash(a.Identifier)}
		}
		d.table([]column{{"Asset", 70}, {"Kind", 25}, {"Identifier", d.width - 95}}, rows)
	}
}

// otherAnswers draws questions and findings whose topic no section takes.
func (d *doc) otherAnswers() {
	var qs []events.Question
	for _, q := range d.rv.Questions {
		if !knownTopic(q.Topic) {
			qs = append(qs, q)
		}
	}
	var fs []events.Finding
	for _, fd := range d.rv.Findings {
		if fd.Topic != "" && !knownTopic(fd.Topic) {
			fs = append(fs, fd)
		}
	}
	if len(qs) == 0 && len(fs) == 0 {
		return
	}
	d.heading(HeadingOther)
	for _, q := range qs {
		d.question(q)
	}
	if len(fs) > 0 {
		d.findings(fs)
	}
}

func (d *doc) actionItems() {
	d.heading(HeadingActions)
	if len(d.rv.ActionItems) == 0 {
		d.note("The review decided on no action items.")
		return
	}
	rows := make([][]string, len(d.rv.ActionItems))
	for i, a := range d.rv.ActionItems {
		what := a.Title
		if a.Description != "" {
			what += "\n" + a.Description
		}
		owner := "–"
		if a.Owner != nil {
			owner = contact(a.Owner.Name, a.Owner.Email)
		}
		rows[i] = []string{a.Key, what, string(a.Category), owner, orDash(a.DueDate), orDash(string(a.Priority))}
	}
	d.table([]column{{"Key", 30}, {"Action", d.width - 130}, {"Category", 22}, {"Owner", 38}, {"Due", 20}, {"Priority", 20}}, rows)
}

func (d *doc) participants() {
	rv, inc := d.rv, &d.rv.Incident
	d.heading(HeadingParticipants)
	d.labelled("Facilitator", contact(rv.Facilitator.Name, rv.Facilitator.Email))
	d.subheading("Review participants who answered")
	if len(rv.Responses) == 0 {
		d.note("No participant answered the questionnaire.")
	} else {
		rows := make([][]string, len(rv.Responses))
		for i, r := range rv.Responses {
			rows[i] = []string{r.Participant.Name, orDash(humanize(string(r.Participant.Role))), orDash(r.Participant.Email), cellTime(r.SubmittedAt)}
		}
		d.table([]column{{"Name", 50}, {"Role", 30}, {"E-mail", d.width - 112}, {"Answered (UTC)", 32}}, rows)
	}
	if len(inc.People) > 0 {
		d.subheading("People involved in the incident")
		rows := make([][]string, len(inc.People))
		for i, p := range inc.People {
			rows[i] = []string{p.Name, humanize(string(p.Role)), orDash(p.Team), orDash(p.Email)}
		}
		d.table([]column{{"Name", 50}, {"Role", 30}, {"Team", 44}, {"E-mail", d.width - 124}}, rows)
	}
}

func (d *doc) integrity() {
	d.heading(HeadingIntegrity)
	rows := [][2]string{
		{"Report id", d.in.ReportID},
		{"Report version", strconv.Itoa(d.in.Version)},
		{"Incident id", d.rv.IncidentID},
		{"Review id", d.rv.ReviewID},
		{"Generated", fmtTime(d.in.GeneratedAt)},
		{"Data SHA-256", d.in.DataSHA256},
	}
	if d.in.CertSHA256 != "" {
		rows = append(rows, [2]string{"Signed by", d.in.CertSubject},
			[2]string{"Certificate SHA-256", d.in.CertSHA256})
	}
	if d.in.Retention != "" {
		rows = append(rows, [2]string{"Evidence retained until", d.in.Retention})
	}
	if d.in.LegalHold != "" {
		rows = append(rows, [2]string{"Legal hold", d.in.LegalHold})
	}
	d.kv(rows)
	if d.rv.Amendment > 0 {
		d.para("This version renders amendment " + strconv.Itoa(d.rv.Amendment) + " of the review: " +
			d.rv.AmendmentReason + " Earlier versions stay as they were published and remain verifiable.")
	}
	d.para("The data SHA-256 is the digest of the canonical JSON of the completed review this report was " +
		"rendered from. This file carries a digital signature (PDF signature with a CMS SignedData over " +
		"every byte of the file but the signature itself) made with the certificate named above: any PDF " +
		"reader, Poppler's pdfsig, or `afteraction verify --cert <certificate.pem> <file.pdf>` checks it " +
		"offline; one changed byte breaks it. afteraction also records the SHA-256 of this file and an " +
		"Ed25519 signature over the report id, version, PDF digest and data digest when the version is published.")
}
