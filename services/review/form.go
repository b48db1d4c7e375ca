package review

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
)

//go:embed templates/*.html
var templatesFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	// role shows a role as a person reads it: "Business owner", not business_owner.
	"role": func(r any) string { return events.Role(fmt.Sprint(r)).Label() },
}).ParseFS(templatesFS, "templates/*.html"))

// topicHeadings titles the questionnaire's topics on the form.
var topicHeadings = map[string]string{
	"what_happened":           "What happened, and when",
	"team_performance":        "Plans, playbooks, policies and procedures",
	"business_information":    "Information from the business",
	"containment_eradication": "Containment, eradication and recovery",
	"do_differently":          "Next time",
	"information_sharing":     "Sharing information with other organisations",
	"preventive_measures":     "Preventing similar incidents",
	"precursors_indicators":   "Precursors and indicators",
	"tools_resources":         "Tools and resources",
	"training":                "Training",
	"readiness_structure":     "Readiness and team structure",
	"cost":                    "What it cost",
	"recurrence":              "Has it happened before?",
}

type formQuestion struct {
	ID, Kind, Prompt, Heading string
	// Class marks a conditional question (shown by the page's CSS when its
	// condition holds); Condition says when it is asked, for screen readers
	// and browsers without :has().
	Class, Condition         string
	Choices                  []string
	Text, Items, Yes, Choice string
	Rating                   int
	Error                    string
}

// formCondition is the CSS rule showing a conditional question.
type formCondition struct {
	Class, QuestionID string
	Values            []string
}

type formPage struct {
	Title, ReviewID, Token, Participant, DueAt string
	Summary, Notice                            string
	Facts                                      []fact
	Timeline                                   []events.TimelineEntry
	Conditions                                 []formCondition
	Severity                                   events.Severity
	Questions                                  []formQuestion
	Errors                                     []string
	Ratings                                    []int
	SubmittedAt                                string
}

// formContext is what both form handlers need: the review, the invitee and the questions.
type formContext struct {
	review      ReviewDetail
	participant Participant
	questions   []events.Question
	token       string
}

// loadForm checks the invitation token of the request against the review and
// writes an error page when the form cannot be shown.
func (h *handlers) loadForm(w http.ResponseWriter, r *http.Request) (formContext, bool) {
	id, token := strings.ToLower(r.PathValue("id")), r.URL.Query().Get("token")
	_, invitee, err := h.svc.Invitee(r.Context(), id, token)
	if errors.Is(err, ErrInvalidInvite) {
		h.message(w, http.StatusForbidden, "Link not valid",
			"This review link is not valid, has expired or was withdrawn. Please ask the review's facilitator for a new one.")
		return formContext{}, false
	}
	pid := invitee.ID
	rv, err := h.svc.Review(r.Context(), id)
	if err == nil && pid == "" {
		err = ErrNotFound
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			h.message(w, http.StatusNotFound, "Review not found", "There is no such review.")
		} else {
			h.log.Error("load review form", zap.Error(err))
			h.message(w, http.StatusInternalServerError, "Something went wrong", "Please try again in a moment.")
		}
		return formContext{}, false
	}
	fc := formContext{review: rv, questions: rv.Questions, token: token}
	for _, p := range rv.Participants {
		if p.ParticipantID == pid {
			fc.participant = p
		}
	}
	if fc.participant.ParticipantID == "" {
		h.message(w, http.StatusForbidden, "Link not valid", "This link does not belong to a participant of the review.")
		return formContext{}, false
	}
	if rv.Status != "open" {
		h.message(w, http.StatusConflict, "Review completed",
			"This review has been completed by its facilitator and no longer takes answers. Thank you.")
		return formContext{}, false
	}
	return fc, true
}

func (h *handlers) form(w http.ResponseWriter, r *http.Request) {
	fc, ok := h.loadForm(w, r)
	if !ok {
		return
	}
	var current []events.Answer
	for _, resp := range fc.review.Responses {
		if resp.ParticipantID == fc.participant.ParticipantID {
			current = resp.Answers
		}
	}
	notice := ""
	draft, err := h.svc.Draft(r.Context(), fc.participant.ParticipantID)
	switch {
	case err == nil:
		current = draft.Answers
		notice = "Your draft of " + draft.SavedAt.UTC().Format(timeLayout) + " is filled in; it is not submitted yet."
	case !errors.Is(err, ErrNotFound):
		h.log.Error("load draft", zap.Error(err))
	}
	page := fc.page(current, nil)
	page.Notice = notice
	h.render(w, http.StatusOK, "form", page)
}

func (h *handlers) submitForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		h.message(w, http.StatusRequestEntityTooLarge, "Answers not saved",
			"The answers could not be read (they may be too long). Please shorten them and try again.")
		return
	}
	fc, ok := h.loadForm(w, r)
	if !ok {
		return
	}
	answers, asked, hidden := answersFromForm(fc.questions, r.PostForm)
	body, err := json.Marshal(map[string]any{"form": r.PostForm})
	if err != nil {
		h.message(w, http.StatusInternalServerError, "Something went wrong", "Please try again in a moment.")
		return
	}
	var verr *ValidationError
	if r.PostForm.Get("action") == "draft" {
		savedAt, err := h.svc.SaveDraft(r.Context(), fc.review.ReviewID, fc.participant.ParticipantID, answers)
		if !errors.As(err, &verr) {
			if err != nil {
				h.formFailed(w, err)
				return
			}
			page := fc.page(answers, nil)
			page.Notice = strings.TrimSpace("Draft saved at " + savedAt.UTC().Format(timeLayout) +
				". Come back with the same link to finish; it is not submitted yet. " + hiddenNotice(hidden))
			h.render(w, http.StatusOK, "form", page)
			return
		}
	} else if len(answers) == 0 {
		verr = &ValidationError{}
		verr.add("answers", "please answer at least one question")
	}
	var resp Response
	if verr == nil {
		resp, err = h.svc.SubmitResponse(r.Context(), Submission{
			ReviewID: fc.review.ReviewID, ParticipantID: fc.participant.ParticipantID,
			By: "participant", Channel: ChannelForm, Answers: answers, Body: body,
		})
	}
	switch {
	case verr != nil || errors.As(err, &verr):
		page := fc.page(answers, nil)
		for _, p := range verr.Problems {
			msg := p.Reason
			if i, ok := answerIndex(p.Field); ok && i < len(asked) {
				for j := range page.Questions {
					if page.Questions[j].ID == asked[i] {
						page.Questions[j].Error = p.Reason
						msg = fmt.Sprintf("%s: %s", page.Questions[j].Prompt, p.Reason)
					}
				}
			}
			page.Errors = append(page.Errors, msg)
		}
		h.render(w, http.StatusUnprocessableEntity, "form", page)
	case err != nil:
		h.formFailed(w, err)
	default:
		h.render(w, http.StatusOK, "thanks", formPage{
			Title: fc.review.Title, ReviewID: fc.review.ReviewID, Token: fc.token, Participant: fc.participant.Name,
			SubmittedAt: resp.SubmittedAt.Format("2 January 2006 15:04 MST"), Notice: hiddenNotice(hidden),
		})
	}
}

// answersFromForm reads one answer per question from form values named by
// question id, skipping empty ones and those to conditional questions the
// form's own answers hide; asked[i] is the question of answers[i].
func answersFromForm(qs []events.Question, form map[string][]string) (answers []events.Answer, asked, hidden []string) {
	for _, q := range qs {
		v := ""
		if vs := form[q.ID]; len(vs) > 0 {
			v = strings.TrimSpace(vs[0])
		}
		if v == "" {
			continue
		}
		a := events.Answer{QuestionID: q.ID}
		switch q.Kind {
		case events.QuestionRating:
			n, err := strconv.Atoi(v)
			if err != nil {
				n = 0 // out of range: validation names it
			}
			a.Rating = &n
		case events.QuestionYesNo:
			yes := v == "yes"
			if v != "yes" && v != "no" {
				a.Text = v // wrong kind: validation names it
				break
			}
			a.Yes = &yes
		case events.QuestionChoice:
			a.Choice = v
		case events.QuestionActionItems:
			for _, line := range strings.Split(v, "\n") {
				if line = strings.TrimSpace(line); line != "" {
					a.Items = append(a.Items, line)
				}
			}
		default:
			a.Text = v
		}
		answers = append(answers, a)
		asked = append(asked, q.ID)
	}
	// A conditional question whose condition the same form does not meet was
	// hidden from the participant: what it still holds is not an answer.
	values := map[string]string{}
	for _, a := range answers {
		values[a.QuestionID] = answerValue(a)
	}
	byID := map[string]events.Question{}
	for _, q := range qs {
		byID[q.ID] = q
	}
	keptAnswers, keptAsked := answers[:0], asked[:0]
	for i, a := range answers {
		if shown(byID[a.QuestionID], values) {
			keptAnswers, keptAsked = append(keptAnswers, a), append(keptAsked, asked[i])
		} else {
			hidden = append(hidden, byID[a.QuestionID].Prompt)
		}
	}
	return keptAnswers, keptAsked, hidden
}

// hiddenNotice tells the participant which of their texts were not kept as
// answers because the question they belong to no longer applied (it is in
// the submission's record all the same), or "".
func hiddenNotice(prompts []string) string {
	if len(prompts) == 0 {
		return ""
	}
	return fmt.Sprintf("Not kept as an answer, because the question no longer applies after your other answers: “%s”. "+
		"If it should, change the answer it depends on and save again.", strings.Join(prompts, "”, “"))
}

func (h *handlers) formFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrCompleted) {
		h.message(w, http.StatusConflict, "Review completed",
			"This review has been completed by its facilitator and no longer takes answers. Thank you.")
		return
	}
	h.log.Error("save form answers", zap.Error(err))
	h.message(w, http.StatusInternalServerError, "Answers not saved", "Something went wrong. Please try again in a moment.")
}

func answerIndex(field string) (int, bool) {
	rest, ok := strings.CutPrefix(field, "answers[")
	if !ok {
		return 0, false
	}
	n, _, ok := strings.Cut(rest, "]")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n)
	return i, err == nil
}

func (fc formContext) page(current []events.Answer, errs []string) formPage {
	p := formPage{
		Title: fc.review.Title, Severity: fc.review.Severity, ReviewID: fc.review.ReviewID, Token: fc.token,
		Participant: fc.participant.Name, Errors: errs, Ratings: []int{1, 2, 3, 4, 5},
	}
	if d := fc.review.DueAt; d != nil {
		p.DueAt = d.UTC().Format("2 January 2006 15:04 MST")
	}
	inc := fc.review.incident
	p.Summary, p.Timeline = inc.Summary, inc.Timeline
	p.Facts = []fact{{"Severity", string(inc.Severity)}}
	if inc.Category != "" {
		p.Facts = append(p.Facts, fact{"Category", inc.Category})
	}
	ts := inc.Timestamps
	for _, t := range []struct {
		label string
		at    *time.Time
	}{{"Started", ts.StartedAt}, {"Detected", ts.DetectedAt}, {"Contained", ts.ContainedAt}, {"Recovered", ts.RecoveredAt}, {"Closed", &ts.ClosedAt}} {
		if t.at != nil {
			p.Facts = append(p.Facts, fact{t.label, fmtTime(t.at)})
		}
	}
	prompts := map[string]string{}
	for _, q := range fc.questions {
		prompts[q.ID] = q.Prompt
	}
	byID := map[string]events.Answer{}
	for _, a := range current {
		byID[a.QuestionID] = a
	}
	topic := ""
	for i, q := range fc.questions {
		fq := formQuestion{ID: q.ID, Kind: string(q.Kind), Prompt: q.Prompt, Choices: q.Choices}
		if c := q.ShowWhen; c != nil {
			fq.Class = fmt.Sprintf("cond%d", i)
			fq.Condition = fmt.Sprintf("Asked when the answer to “%s” is %s.", prompts[c.QuestionID], strings.Join(c.Values, " or "))
			p.Conditions = append(p.Conditions, formCondition{Class: fq.Class, QuestionID: c.QuestionID, Values: c.Values})
		}
		if q.Topic != topic {
			topic = q.Topic
			fq.Heading = topicHeadings[q.Topic]
			if fq.Heading == "" {
				fq.Heading = strings.ReplaceAll(q.Topic, "_", " ")
			}
		}
		if a, ok := byID[q.ID]; ok {
			fq.Text, fq.Choice, fq.Items = a.Text, a.Choice, strings.Join(a.Items, "\n")
			if a.Rating != nil {
				fq.Rating = *a.Rating
			}
			if a.Yes != nil {
				fq.Yes = map[bool]string{true: "yes", false: "no"}[*a.Yes]
			}
		}
		p.Questions = append(p.Questions, fq)
	}
	return p
}

func (h *handlers) render(w http.ResponseWriter, status int, name string, data any) {
	var b strings.Builder
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		h.log.Error("render page", zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy",
		"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, b.String())
}

func (h *handlers) message(w http.ResponseWriter, status int, heading, text string) {
	h.render(w, status, "message", struct{ Heading, Text string }{heading, text})
}
