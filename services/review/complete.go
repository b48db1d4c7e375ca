package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/tracing"
	"github.com/afteraction/afteraction/services/review/postgres"
)

// CompleteRequest is the facilitator's conclusion of a review. Without action
// items, they are derived from the participants' action_items answers.
type CompleteRequest struct {
	Facilitator *events.Contact     `json:"facilitator,omitempty"`
	Summary     string              `json:"summary,omitempty"`
	Findings    []events.Finding    `json:"findings,omitempty"`
	ActionItems []events.ActionItem `json:"action_items,omitempty"`
}

// topicCategory maps questionnaire topics whose action_items answers become
// action items to the category they get.
var topicCategory = map[string]events.ActionCategory{
	"preventive_measures": events.CategoryPreventive,
	"tools_resources":     events.CategoryTooling,
	"training":            events.CategoryTraining,
}

var actionKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func validateCompletion(req CompleteRequest) error {
	verr := &ValidationError{}
	checkCompletion(verr, req)
	return verr.orNil()
}

func checkCompletion(verr *ValidationError, req CompleteRequest) {
	if f := req.Facilitator; f != nil {
		if strings.TrimSpace(f.Name) == "" {
			verr.add("facilitator.name", "required")
		}
		checkText(verr, "facilitator.name", f.Name, 200)
		checkText(verr, "facilitator.email", f.Email, 254)
	}
	checkText(verr, "summary", req.Summary, 20000)
	if len(req.Findings) > 500 {
		verr.add("findings", "at most 500 findings")
	}
	for i, f := range req.Findings {
		at := fmt.Sprintf("findings[%d]", i)
		if strings.TrimSpace(f.Summary) == "" {
			verr.add(at+".summary", "required")
		}
		checkText(verr, at+".summary", f.Summary, 2000)
		checkText(verr, at+".topic", f.Topic, 100)
		checkText(verr, at+".detail", f.Detail, 20000)
	}
	if len(req.ActionItems) > 500 {
		verr.add("action_items", "at most 500 action items")
	}
	keys := map[string]int{}
	for i, a := range req.ActionItems {
		at := fmt.Sprintf("action_items[%d]", i)
		switch first, dup := keys[a.Key]; {
		case !actionKeyRE.MatchString(a.Key):
			verr.add(at+".key", "must be 1-64 letters, digits, '_', '.' or '-'")
		case dup:
			verr.add(at+".key", "duplicate of action_items[%d].key %q", first, a.Key)
		default:
			keys[a.Key] = i
		}
		if strings.TrimSpace(a.Title) == "" {
			verr.add(at+".title", "required")
		}
		checkText(verr, at+".title", a.Title, 500)
		checkText(verr, at+".description", a.Description, 20000)
		if !a.Category.Valid() {
			verr.add(at+".category", "must be one of preventive, detection, tooling, training, playbook, policy, process, communication")
		}
		if a.Priority != "" && !a.Priority.Valid() {
			verr.add(at+".priority", "must be one of critical, high, medium, low")
		}
		if a.DueDate != "" {
			if _, err := time.Parse(time.DateOnly, a.DueDate); err != nil {
				verr.add(at+".due_date", "must be a date like 2026-12-31")
			}
		}
		if a.Owner != nil {
			if strings.TrimSpace(a.Owner.Name) == "" {
				verr.add(at+".owner.name", "required")
			}
			checkText(verr, at+".owner.name", a.Owner.Name, 200)
			checkText(verr, at+".owner.email", a.Owner.Email, 254)
		}
	}
}

// Complete finalises an open review with the facilitator's summary, findings
// and action items (derived from the participants' answers when none are
// given) and enqueues review.completed with the incident, the questionnaire
// and every response. It is SignOff without a named person: where a second
// approval is required it returns the zero event and the review awaits
// approval. It returns ErrNotFound, ErrCompleted when the review was already
// completed (a correction is an amendment: see Amend), or a *ValidationError.
func (s *Service) Complete(ctx context.Context, reviewID string, req CompleteRequest) (events.ReviewCompleted, error) {
	out, err := s.SignOff(ctx, reviewID, "", req)
	if err != nil || out.Event == nil {
		return events.ReviewCompleted{}, err
	}
	return *out.Event, nil
}

// complete completes a review in status from with outcome req and sign-off
// so, in one transaction with the review.completed it enqueues.
func (s *Service) complete(ctx context.Context, reviewID string, req CompleteRequest, so postgres.SignOff, from string) (events.ReviewCompleted, error) {
	// The completion, however long after the review opened, joins the
	// incident's trace, linked to the request that completed it.
	tc, err := s.store.Trace(ctx, reviewID)
	if err != nil {
		return events.ReviewCompleted{}, err
	}
	ctx, span := tracing.Resume(ctx, "complete review", tc)
	defer span.End()
	r, err := s.store.Review(ctx, reviewID)
	if err != nil {
		return events.ReviewCompleted{}, err
	}
	qs, err := s.store.Questionnaire(ctx, r.QuestionnaireVersion)
	if err != nil {
		return events.ReviewCompleted{}, err
	}
	var done events.ReviewCompleted
	err = s.store.InTx(ctx, func(tx *postgres.Tx) error {
		r, err := tx.LockReview(ctx, reviewID)
		if err != nil {
			return err
		}
		if err := wantStatus(r, from); err != nil {
			return err
		}
		resps, err := tx.Responses(ctx, reviewID)
		if err != nil {
			return err
		}
		done = s.completedEvent(r, qs, resps, req)
		if done.Meeting, err = completedMeeting(ctx, tx, r.ID); err != nil {
			return err
		}
		if _, err := boundCompleted(&done); err != nil {
			return err
		}
		env, err := newEvent(events.TypeReviewCompleted, r.ID, done)
		if err != nil {
			return asValidation(err)
		}
		r.CompletedAt, r.Facilitator, r.Summary = &done.CompletedAt, done.Facilitator, done.Summary
		r.Findings, r.ActionItems, r.CompletedEventID, r.SignOff = done.Findings, done.ActionItems, env.ID, so
		if err := tx.Complete(ctx, r); err != nil {
			return err
		}
		return tx.Enqueue(ctx, env)
	})
	if err != nil {
		return events.ReviewCompleted{}, err
	}
	s.metrics.completed.Inc()
	return done, nil
}

func (s *Service) completedEvent(r postgres.Review, qs []events.Question, resps []postgres.Response, req CompleteRequest) events.ReviewCompleted {
	fac := r.Facilitator
	if req.Facilitator != nil {
		fac = events.Contact{Name: strings.TrimSpace(req.Facilitator.Name), Email: strings.TrimSpace(req.Facilitator.Email)}
	}
	ev := events.ReviewCompleted{
		ReviewID: r.ID, IncidentID: r.IncidentID, IncidentRevision: r.IncidentRevision,
		OpenedAt: r.OpenedAt.UTC(), CompletedAt: s.now(), DueAt: r.DueAt, Facilitator: fac,
		Summary: strings.TrimSpace(req.Summary), Incident: r.Incident,
		QuestionnaireVersion: r.QuestionnaireVersion, Questions: qs,
		Responses:   make([]events.Response, 0, len(resps)),
		Findings:    append([]events.Finding{}, req.Findings...),
		ActionItems: append([]events.ActionItem{}, req.ActionItems...),
	}
	if ev.Questions == nil {
		ev.Questions = []events.Question{}
	}
	byID := map[string]postgres.Participant{}
	for _, p := range r.Participants {
		byID[p.ID] = p
	}
	for _, resp := range resps {
		answers := resp.Answers
		if answers == nil {
			answers = []events.Answer{}
		}
		ev.Responses = append(ev.Responses, events.Response{
			Participant: eventParticipant(byID[resp.ParticipantID]), SubmittedAt: resp.SubmittedAt.UTC(), Answers: answers,
		})
	}
	if len(ev.ActionItems) == 0 {
		ev.ActionItems = DeriveActionItems(qs, ev.Responses)
	}
	s.cfg.ActionDue.fill(ev.ActionItems, ev.CompletedAt)
	return ev
}

// DeriveActionItems turns the participants' action_items answers to the
// preventive-measures, tools-and-resources and training questions into action
// items of category preventive, tooling and training, with keys such as
// "preventive-1". The same item (ignoring case and spacing) proposed twice
// becomes one.
func DeriveActionItems(qs []events.Question, resps []events.Response) []events.ActionItem {
	questions := map[string]events.Question{}
	for _, q := range qs {
		questions[q.ID] = q
	}
	items := []events.ActionItem{}
	count := map[events.ActionCategory]int{}
	seen := map[string]bool{}
	for _, resp := range resps {
		for _, a := range resp.Answers {
			q, ok := questions[a.QuestionID]
			cat, derived := topicCategory[q.Topic]
			if !ok || !derived || q.Kind != events.QuestionActionItems {
				continue
			}
			for _, it := range a.Items {
				norm := string(cat) + "\x00" + strings.ToLower(strings.Join(strings.Fields(it), " "))
				if strings.TrimSpace(it) == "" || seen[norm] {
					continue
				}
				seen[norm] = true
				count[cat]++
				items = append(items, events.ActionItem{
					Key:         fmt.Sprintf("%s-%d", cat, count[cat]),
					Title:       truncateRunes(strings.Join(strings.Fields(it), " "), 500),
					Description: fmt.Sprintf("Proposed by %s in answer to: %s", resp.Participant.Name, q.Prompt),
					Category:    cat,
				})
			}
		}
	}
	return items
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// asValidation turns a schema violation of the completed event (caused by what
// the facilitator sent, e.g. a malformed e-mail address) into a *ValidationError.
func asValidation(err error) error {
	var ve *events.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	verr := &ValidationError{}
	for _, p := range ve.Problems {
		verr.add(pointerToField(p.Field), "%s", p.Reason)
	}
	return verr
}

// pointerToField renders a JSON pointer such as /action_items/2/owner/email as
// action_items[2].owner.email.
func pointerToField(ptr string) string {
	var b strings.Builder
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if tok == "" {
			continue
		}
		if strings.Trim(tok, "0123456789") == "" {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// AmendRequest corrects a completed review: an outcome like CompleteRequest
// plus the reason, which says what is corrected. Summary and findings replace
// the current ones as sent. Without action items the current ones are kept;
// with them, every current key must still be there (the tracker never deletes
// an action item, so the report must not silently lose one): an existing key
// keeps identifying its action item and a new key becomes a new action item.
type AmendRequest struct {
	CompleteRequest
	Reason string `json:"reason"`
}

func validateAmendment(req AmendRequest) error {
	verr := &ValidationError{}
	checkCompletion(verr, req.CompleteRequest)
	if strings.TrimSpace(req.Reason) == "" {
		verr.add("reason", "required: say what the amendment corrects")
	}
	checkText(verr, "reason", req.Reason, 2000)
	return verr.orNil()
}

// keepsActionItems checks that amended, when given, still holds every key of current.
func keepsActionItems(current, amended []events.ActionItem) error {
	if len(amended) == 0 {
		return nil
	}
	given := map[string]bool{}
	for _, a := range amended {
		given[a.Key] = true
	}
	verr := &ValidationError{}
	for _, a := range current {
		if !given[a.Key] {
			verr.add("action_items", "action item %q is missing: an amendment keeps every existing action item "+
				"(close it in the tracker with status wont_do instead)", a.Key)
		}
	}
	return verr.orNil()
}

// Amend corrects a completed review, for example after its incident was
// revised (the review is then stale) or a finding turned out wrong. In one
// transaction it replaces the review's outcome, appends amendment n+1 (by,
// when, reason, body as received; body nil stores req) to the amendment log,
// and enqueues a new review.completed (new event id) carrying the latest
// incident snapshot, every response, the amended outcome, the original
// completed_at, and the amendment's number, reason and time (see
// events.ReviewCompleted with Amendment set). It returns ErrNotFound, ErrNotCompleted for a review
// that is still open, or a *ValidationError.
func (s *Service) Amend(ctx context.Context, reviewID, by string, req AmendRequest, body []byte) (events.ReviewCompleted, error) {
	if err := validateAmendment(req); err != nil {
		return events.ReviewCompleted{}, err
	}
	r, err := s.store.Review(ctx, reviewID)
	if err != nil {
		return events.ReviewCompleted{}, err
	}
	if r.Status != postgres.StatusCompleted {
		return events.ReviewCompleted{}, ErrNotCompleted
	}
	qs, err := s.store.Questionnaire(ctx, r.QuestionnaireVersion)
	if err != nil {
		return events.ReviewCompleted{}, err
	}
	if body == nil {
		if body, err = json.Marshal(req); err != nil {
			return events.ReviewCompleted{}, fmt.Errorf("marshal amendment: %w", err)
		}
	}
	var done events.ReviewCompleted
	err = s.store.InTx(ctx, func(tx *postgres.Tx) error {
		r, err := tx.LockReview(ctx, reviewID)
		if err != nil {
			return err
		}
		if r.Status != postgres.StatusCompleted {
			return ErrNotCompleted
		}
		if err := keepsActionItems(r.ActionItems, req.ActionItems); err != nil {
			return err
		}
		outcome := req.CompleteRequest
		if len(outcome.ActionItems) == 0 {
			outcome.ActionItems = r.ActionItems
		}
		resps, err := tx.Responses(ctx, reviewID)
		if err != nil {
			return err
		}
		ev := s.completedEvent(r, qs, resps, outcome)
		if ev.Meeting, err = completedMeeting(ctx, tx, r.ID); err != nil {
			return err
		}
		if r.CompletedAt != nil {
			ev.CompletedAt = r.CompletedAt.UTC()
		}
		amendedAt := s.now()
		ev.Amendment, ev.AmendmentReason, ev.AmendedAt = r.Amendments+1, strings.TrimSpace(req.Reason), &amendedAt
		done = ev
		if _, err := boundCompleted(&done); err != nil {
			return err
		}
		env, err := newEvent(events.TypeReviewCompleted, r.ID, done)
		if err != nil {
			return asValidation(err)
		}
		r.Facilitator, r.Summary, r.Findings, r.ActionItems = ev.Facilitator, ev.Summary, ev.Findings, ev.ActionItems
		if err := tx.Amend(ctx, r, postgres.Amendment{
			Number: done.Amendment, AmendedAt: amendedAt, AmendedBy: by, Reason: done.AmendmentReason,
			IncidentRevision: r.IncidentRevision, EventID: env.ID, Body: body,
		}); err != nil {
			return err
		}
		return tx.Enqueue(ctx, env)
	})
	if err != nil {
		return events.ReviewCompleted{}, err
	}
	s.metrics.amended.Inc()
	return done, nil
}

// Amendments returns a review's amendment log, oldest first.
func (s *Service) Amendments(ctx context.Context, reviewID string) ([]postgres.Amendment, error) {
	return s.store.Amendments(ctx, reviewID)
}
