package review

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/review/postgres"
)

// The console's pages: the review list and the review page, whose forms post
// to the handlers below and come back to the review page (POST, redirect,
// GET), or re-render it with 422 and the errors next to their fields.

const timeLayout = "2 Jan 2006 15:04 MST"

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

type listRow struct {
	ID, Title, Severity, Category, Due, Status string
	Answered, Invited                          int
}

type listGroup struct {
	ID, Name, Hint string
	Rows           []listRow
}

type listPage struct {
	User                 user
	Groups               []listGroup
	Severity, Category   string
	Severities           []events.Severity
	Categories           []string
	Total, Shown, Hidden int
}

// group is the heading a review is listed under.
func (h *handlers) group(rv Review, now time.Time) string {
	switch {
	case rv.Status == postgres.StatusAwaitingApproval:
		return "approval"
	case rv.Stale:
		return "stale"
	case rv.Status == postgres.StatusCompleted:
		return "completed"
	case rv.Historical:
		return "historical"
	case rv.DueAt != nil && rv.DueAt.Before(now):
		return "overdue"
	case rv.DueAt != nil && rv.DueAt.Before(now.Add(h.svc.cfg.ReminderWindow*2)):
		return "due_soon"
	}
	return "open"
}

func (h *handlers) consoleList(w http.ResponseWriter, r *http.Request, u user) {
	reviews, err := h.svc.Reviews(r.Context(), "")
	if err != nil {
		h.consoleFail(w, err)
		return
	}
	q := r.URL.Query()
	page := listPage{User: u, Severity: q.Get("severity"), Category: q.Get("category"), Total: len(reviews),
		Severities: []events.Severity{events.SeverityCritical, events.SeverityHigh, events.SeverityMedium,
			events.SeverityLow, events.SeverityInformational}}
	page.Groups = []listGroup{
		{ID: "approval", Name: "Awaiting approval", Hint: "signed off, waiting for the second approval"},
		{ID: "overdue", Name: "Overdue"},
		{ID: "due_soon", Name: "Due soon"},
		{ID: "open", Name: "Open"},
		{ID: "stale", Name: "Stale", Hint: "completed, but the incident was revised since: amend"},
		{ID: "completed", Name: "Completed"},
		{ID: "historical", Name: "Historical", Hint: "imported history: optional, never reminded"},
	}
	now := h.svc.now()
	for _, rv := range reviews {
		if c := rv.Category; c != "" && !slices.Contains(page.Categories, c) {
			page.Categories = append(page.Categories, c)
		}
		if (page.Severity != "" && string(rv.Severity) != page.Severity) || (page.Category != "" && rv.Category != page.Category) {
			page.Hidden++
			continue
		}
		row := listRow{ID: rv.ReviewID, Title: rv.Title, Severity: string(rv.Severity), Category: rv.Category,
			Due: fmtTime(rv.DueAt), Status: strings.ReplaceAll(rv.Status, "_", " "), Invited: len(rv.Participants)}
		for _, p := range rv.Participants {
			if p.SubmittedAt != nil {
				row.Answered++
			}
		}
		g := h.group(rv, now)
		for i := range page.Groups {
			if page.Groups[i].ID == g {
				page.Groups[i].Rows = append(page.Groups[i].Rows, row)
			}
		}
		page.Shown++
	}
	slices.Sort(page.Categories)
	h.render(w, http.StatusOK, "console_list", page)
}

type fact struct{ Label, Value string }

type answerRow struct {
	Prompt string
	Cells  []string
}

type auditRow struct {
	At, Who, Channel, Changed string
}

type itemRow struct {
	Title, Description, Owner, OwnerEmail, Due, Category, Priority, Error string
}

type participantForm struct {
	Name, Email, Role string
	Errors            map[string]string
}

type reviewPage struct {
	User                              user
	R                                 ReviewDetail
	Incident                          events.IncidentClosed
	Facts, Times                      []fact
	Due                               string
	CanManage, CanApprove, SeesLinks  bool
	Roles                             []events.Role
	Responders                        []string
	Answers                           []answerRow
	Audit                             []auditRow
	Changes                           []postgres.ParticipantChange
	Add                               participantForm
	Items                             []itemRow
	Categories, Priorities            []string
	Summary, Findings, Reason         string
	Errors                            []string
	SignedOffAt, ApprovedAt, Rejected string
	Notice                            string
}

func (h *handlers) loadReviewPage(r *http.Request, u user) (reviewPage, error) {
	id := strings.ToLower(r.PathValue("id"))
	rv, err := h.svc.Review(r.Context(), id)
	if err != nil {
		return reviewPage{}, err
	}
	p := reviewPage{User: u, R: rv, Incident: rv.incident, Due: fmtTime(rv.DueAt), Roles: ParticipantRoles,
		CanManage: u.has(RoleFacilitator), CanApprove: u.has(RoleApprover), SeesLinks: u.has(RoleFacilitator),
		SignedOffAt: fmtTime(rv.SignOff.SignedOffAt), ApprovedAt: fmtTime(rv.SignOff.ApprovedAt),
		Rejected: fmtTime(rv.SignOff.RejectedAt), Notice: noticeText(r.URL.Query().Get("done"))}
	if !p.SeesLinks {
		p.R.Review = p.R.Review.WithoutInvitations()
	}
	inc := rv.incident
	p.Facts = []fact{{"Severity", string(inc.Severity)}, {"Category", inc.Category}, {"Source", inc.Source + " " + inc.ExternalID}}
	if inc.Impact != nil && inc.Impact.Final != nil {
		impact := string(inc.Impact.Final.Level)
		if d := inc.Impact.Final.Description; d != "" {
			impact = strings.TrimPrefix(impact+": "+d, ": ")
		}
		p.Facts = append(p.Facts, fact{"Impact", impact})
	}
	ts := inc.Timestamps
	for _, t := range []struct {
		label string
		at    *time.Time
	}{{"Started", ts.StartedAt}, {"Detected", ts.DetectedAt}, {"Reported", ts.ReportedAt}, {"Contained", ts.ContainedAt},
		{"Eradicated", ts.EradicatedAt}, {"Recovered", ts.RecoveredAt}, {"Resolved", ts.ResolvedAt}, {"Closed", &ts.ClosedAt}} {
		if t.at != nil {
			p.Times = append(p.Times, fact{t.label, fmtTime(t.at)})
		}
	}
	// Answers side by side: one column per participant who answered.
	for _, resp := range rv.Responses {
		p.Responders = append(p.Responders, resp.Name)
	}
	for _, q := range rv.Questions {
		row := answerRow{Prompt: q.Prompt}
		answered := false
		for _, resp := range rv.Responses {
			cell := ""
			for _, a := range resp.Answers {
				if a.QuestionID == q.ID {
					cell, answered = answerValue(a), true
				}
			}
			row.Cells = append(row.Cells, cell)
		}
		if answered {
			p.Answers = append(p.Answers, row)
		}
	}
	subs, err := h.svc.Submissions(r.Context(), id)
	if err != nil {
		return p, err
	}
	p.Audit = auditOf(subs, rv.Participants)
	if p.Changes, err = h.svc.ParticipantChanges(r.Context(), id); err != nil {
		return p, err
	}
	p.Categories = []string{"preventive", "detection", "tooling", "training", "playbook", "policy", "process", "communication"}
	p.Priorities = []string{"", "critical", "high", "medium", "low"}
	p.Summary = rv.Summary
	for _, f := range rv.Findings {
		p.Findings += f.Summary + "\n"
	}
	items := rv.ActionItems
	if rv.Status == postgres.StatusOpen {
		resps := make([]events.Response, 0, len(rv.Responses))
		for _, resp := range rv.Responses {
			resps = append(resps, events.Response{Participant: events.Participant{Name: resp.Name}, Answers: resp.Answers})
		}
		items = DeriveActionItems(rv.Questions, resps)
	}
	for _, a := range items {
		row := itemRow{Title: a.Title, Description: a.Description, Due: a.DueDate, Category: string(a.Category), Priority: string(a.Priority)}
		if a.Owner != nil {
			row.Owner, row.OwnerEmail = a.Owner.Name, a.Owner.Email
		}
		p.Items = append(p.Items, row)
	}
	for range 3 {
		p.Items = append(p.Items, itemRow{Category: string(events.CategoryProcess)})
	}
	return p, nil
}

func noticeText(done string) string {
	return map[string]string{
		"added": "Participant added: copy their invitation link below.", "resent": "A new invitation link was issued; the old one no longer works.",
		"revoked": "Invitation revoked: the participant's link no longer works.", "removed": "Participant removed.",
		"completed": "Review completed and signed off.", "awaiting": "Signed off: waiting for the second approval.",
		"approved": "Approved: the review is completed.", "rejected": "Rejected: the review is open again.",
		"amended": "Amendment recorded.",
	}[done]
}

// auditOf renders the submission log: who, when, through which channel,
// and which questions' answers changed from that participant's previous one.
func auditOf(subs []postgres.Submission, ps []Participant) []auditRow {
	names := map[string]string{}
	for _, p := range ps {
		names[p.ParticipantID] = p.Name
	}
	last := map[string]map[string]string{}
	rows := make([]auditRow, 0, len(subs))
	for _, s := range subs {
		vals := submissionValues(s.Body)
		prev := last[s.ParticipantID]
		var changed []string
		for q, v := range vals {
			if prev[q] != v {
				changed = append(changed, q)
			}
		}
		for q := range prev {
			if _, ok := vals[q]; !ok {
				changed = append(changed, q+" (cleared)")
			}
		}
		slices.Sort(changed)
		last[s.ParticipantID] = vals
		who := names[s.ParticipantID]
		if s.SubmittedBy != "participant" {
			who += " (by " + s.SubmittedBy + ")"
		}
		rows = append(rows, auditRow{At: s.SubmittedAt.UTC().Format(timeLayout), Who: who, Channel: s.Channel,
			Changed: strings.Join(changed, ", ")})
	}
	return rows
}

// submissionValues reads the answers of an audited submission body: the
// API's {"answers": [...]} or the form's {"form": {question: [value]}}.
func submissionValues(body []byte) map[string]string {
	out := map[string]string{}
	var b struct {
		Answers []events.Answer     `json:"answers"`
		Form    map[string][]string `json:"form"`
	}
	if json.Unmarshal(body, &b) != nil {
		return out
	}
	for _, a := range b.Answers {
		out[a.QuestionID] = answerValue(a)
	}
	for k, v := range b.Form {
		if strings.Contains(k, ".") && len(v) > 0 && strings.TrimSpace(v[0]) != "" {
			out[k] = strings.TrimSpace(v[0])
		}
	}
	return out
}

func (h *handlers) consoleReview(w http.ResponseWriter, r *http.Request, u user) {
	p, err := h.loadReviewPage(r, u)
	if err != nil {
		h.consoleFail(w, err)
		return
	}
	h.render(w, http.StatusOK, "console_review", p)
}

// consoleFail shows a use-case error as a page.
func (h *handlers) consoleFail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		h.message(w, http.StatusNotFound, "Not found", "There is no such review or participant.")
	case errors.Is(err, ErrCompleted):
		h.message(w, http.StatusConflict, "Review completed", "The review is completed: correct it with an amendment.")
	case errors.Is(err, ErrNotCompleted):
		h.message(w, http.StatusConflict, "Review not completed", "Only a completed review can be amended.")
	case errors.Is(err, ErrConflict):
		h.message(w, http.StatusConflict, "Not possible", conflictDetail(err))
	default:
		h.log.Error("console request failed", zap.Error(err))
		h.message(w, http.StatusInternalServerError, "Something went wrong", "Please try again in a moment.")
	}
}

// back redirects to the review page after a successful POST.
func back(w http.ResponseWriter, r *http.Request, done, anchor string) {
	http.Redirect(w, r, "/console/reviews/"+strings.ToLower(r.PathValue("id"))+"?done="+done+"#"+anchor, http.StatusSeeOther)
}

// invalid re-renders the review page with 422 and the problems of verr
// applied by fill.
func (h *handlers) invalid(w http.ResponseWriter, r *http.Request, u user, verr *ValidationError, fill func(*reviewPage)) {
	p, err := h.loadReviewPage(r, u)
	if err != nil {
		h.consoleFail(w, err)
		return
	}
	fill(&p)
	for _, pr := range verr.Problems {
		p.Errors = append(p.Errors, pr.Field+": "+pr.Reason)
	}
	h.render(w, http.StatusUnprocessableEntity, "console_review", p)
}

func (h *handlers) consoleAddParticipant(w http.ResponseWriter, r *http.Request, u user) {
	np := NewParticipant{Name: r.PostForm.Get("name"), Email: r.PostForm.Get("email"), Role: events.Role(r.PostForm.Get("role"))}
	_, err := h.svc.AddParticipant(r.Context(), strings.ToLower(r.PathValue("id")), u.by(), np)
	var verr *ValidationError
	if errors.As(err, &verr) {
		h.invalid(w, r, u, verr, func(p *reviewPage) {
			p.Add = participantForm{Name: np.Name, Email: np.Email, Role: string(np.Role), Errors: map[string]string{}}
			for _, pr := range verr.Problems {
				p.Add.Errors[pr.Field] = pr.Reason
			}
		})
		return
	}
	if err != nil {
		h.consoleFail(w, err)
		return
	}
	back(w, r, "added", "participants")
}

func (h *handlers) consoleChangeParticipant(w http.ResponseWriter, r *http.Request, u user) {
	if _, err := h.svc.changeParticipant(r, strings.ToLower(r.PathValue("id")), u.by()); err != nil {
		h.consoleFail(w, err)
		return
	}
	back(w, r, map[string]string{"resend": "resent", "revoke": "revoked", "remove": "removed"}[r.PathValue("change")], "participants")
}

// outcomeFromForm reads the sign-off form: summary, findings (one a line)
// and up to 50 action item rows (a row without a title is skipped).
func outcomeFromForm(f map[string][]string) (CompleteRequest, []itemRow) {
	get := func(k string) string {
		if v := f[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	req := CompleteRequest{Summary: get("summary"), Findings: []events.Finding{}}
	for _, line := range strings.Split(get("findings"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			req.Findings = append(req.Findings, events.Finding{Summary: line})
		}
	}
	var rows []itemRow
	for i := range 50 {
		at := func(k string) string { return strings.TrimSpace(get(fmt.Sprintf("item%d_%s", i, k))) }
		row := itemRow{Title: at("title"), Description: at("description"), Owner: at("owner"), OwnerEmail: at("owner_email"),
			Due: at("due"), Category: at("category"), Priority: at("priority")}
		if row.Title == "" && row.Owner == "" && row.Description == "" {
			continue
		}
		rows = append(rows, row)
		a := events.ActionItem{Key: fmt.Sprintf("item-%d", len(rows)), Title: row.Title, Description: row.Description,
			Category: events.ActionCategory(row.Category), Priority: events.Priority(row.Priority), DueDate: row.Due}
		if row.Owner != "" || row.OwnerEmail != "" {
			a.Owner = &events.Owner{Name: row.Owner, Email: row.OwnerEmail}
		}
		req.ActionItems = append(req.ActionItems, a)
	}
	return req, rows
}

// withItemErrors puts each action_items[i] problem next to its row.
func withItemErrors(rows []itemRow, verr *ValidationError) []itemRow {
	for _, pr := range verr.Problems {
		var i int
		var rest string
		if n, _ := fmt.Sscanf(pr.Field, "action_items[%d]%s", &i, &rest); n >= 1 && i < len(rows) {
			rows[i].Error = strings.TrimPrefix(rest, ".") + ": " + pr.Reason
		}
	}
	return rows
}

func (h *handlers) consoleSignOff(w http.ResponseWriter, r *http.Request, u user) {
	req, rows := outcomeFromForm(r.PostForm)
	req.Facilitator = &events.Contact{Name: u.Name, Email: u.Email}
	if len(req.ActionItems) == 0 {
		req.ActionItems = nil
	}
	out, err := h.svc.SignOff(r.Context(), strings.ToLower(r.PathValue("id")), u.by(), req)
	var verr *ValidationError
	if errors.As(err, &verr) {
		h.invalid(w, r, u, verr, func(p *reviewPage) {
			p.Summary, p.Findings, p.Items = req.Summary, r.PostForm.Get("findings"), withItemErrors(rows, verr)
		})
		return
	}
	if err != nil {
		h.consoleFail(w, err)
		return
	}
	if out.Event == nil {
		back(w, r, "awaiting", "outcome")
		return
	}
	back(w, r, "completed", "outcome")
}

func (h *handlers) consoleApproval(w http.ResponseWriter, r *http.Request, u user) {
	req := approvalRequest{Decision: r.PostForm.Get("decision"), Reason: r.PostForm.Get("reason")}
	_, err := h.svc.decide(r.Context(), strings.ToLower(r.PathValue("id")), u.by(), req)
	var verr *ValidationError
	if errors.As(err, &verr) {
		h.invalid(w, r, u, verr, func(p *reviewPage) { p.Reason = req.Reason })
		return
	}
	if err != nil {
		h.consoleFail(w, err)
		return
	}
	back(w, r, map[string]string{"approve": "approved", "reject": "rejected"}[req.Decision], "outcome")
}

func (h *handlers) consoleAmend(w http.ResponseWriter, r *http.Request, u user) {
	out, _ := outcomeFromForm(r.PostForm)
	req := AmendRequest{CompleteRequest: CompleteRequest{Summary: out.Summary, Findings: out.Findings,
		Facilitator: &events.Contact{Name: u.Name, Email: u.Email}}, Reason: r.PostForm.Get("reason")}
	form := map[string][]string{}
	for k, v := range r.PostForm {
		if k != "csrf" {
			form[k] = v
		}
	}
	body, err := json.Marshal(map[string]any{"form": form})
	if err != nil {
		h.consoleFail(w, err)
		return
	}
	_, err = h.svc.Amend(r.Context(), strings.ToLower(r.PathValue("id")), u.by(), req, body)
	var verr *ValidationError
	if errors.As(err, &verr) {
		h.invalid(w, r, u, verr, func(p *reviewPage) {
			p.Summary, p.Findings, p.Reason = req.Summary, r.PostForm.Get("findings"), req.Reason
		})
		return
	}
	if err != nil {
		h.consoleFail(w, err)
		return
	}
	back(w, r, "amended", "outcome")
}
