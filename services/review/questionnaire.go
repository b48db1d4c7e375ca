package review

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
)

// Limits on one participant's answers, matching the review.completed schema.
const (
	maxAnswers   = 200
	maxText      = 20000
	maxItems     = 100
	maxItemRunes = 2000
)

// ValidationError lists what is wrong with a request, field by field
// (e.g. "answers[3].rating"). It is bad input: HTTP maps it to 422.
type ValidationError struct {
	Problems []httpapi.FieldError
}

func (e *ValidationError) Error() string {
	if len(e.Problems) == 0 {
		return "invalid request"
	}
	return fmt.Sprintf("invalid request: %s: %s (and %d more)", e.Problems[0].Field, e.Problems[0].Reason, len(e.Problems)-1)
}

func (e *ValidationError) add(field, format string, args ...any) {
	e.Problems = append(e.Problems, httpapi.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// checkText names field when s holds a NUL character, which Postgres text and
// jsonb cannot store, or is longer than max characters.
func checkText(verr *ValidationError, field, s string, max int) {
	switch {
	case strings.ContainsRune(s, 0):
		verr.add(field, "must not contain NUL characters (\\u0000)")
	case utf8.RuneCountInString(s) > max:
		verr.add(field, "at most %d characters", max)
	}
}

func (e *ValidationError) orNil() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

// ValidateAnswers checks answers against the questions: every question id must
// exist and be answered at most once, and each answer must use exactly the
// field of its question's kind (text, rating 1-5, yes, one of the choices, or
// a non-empty list of items), no text may hold a NUL character, and a
// conditional question may be answered only when its condition holds (a
// hidden question is never required: no question is). It returns
// the answers with text trimmed, or a *ValidationError naming each offending
// field.
func ValidateAnswers(questions []events.Question, answers []events.Answer) ([]events.Answer, error) {
	if len(answers) == 0 {
		verr := &ValidationError{}
		verr.add("answers", "at least one answer is required")
		return nil, verr
	}
	return validateAnswers(questions, answers)
}

// validateAnswers is ValidateAnswers without the rule that there must be an
// answer: a draft may be empty.
func validateAnswers(questions []events.Question, answers []events.Answer) ([]events.Answer, error) {
	verr := &ValidationError{}
	if len(answers) > maxAnswers {
		verr.add("answers", "at most %d answers", maxAnswers)
		return nil, verr
	}
	byID := make(map[string]events.Question, len(questions))
	for _, q := range questions {
		byID[q.ID] = q
	}
	seen := map[string]bool{}
	out := make([]events.Answer, 0, len(answers))
	for i, a := range answers {
		at := fmt.Sprintf("answers[%d]", i)
		q, ok := byID[a.QuestionID]
		switch {
		case a.QuestionID == "":
			verr.add(at+".question_id", "required")
			continue
		case !ok:
			verr.add(at+".question_id", "unknown question %q", a.QuestionID)
			continue
		case seen[a.QuestionID]:
			verr.add(at+".question_id", "question %q is answered twice", a.QuestionID)
			continue
		}
		seen[a.QuestionID] = true
		a.Text = strings.TrimSpace(a.Text)
		a.Choice = strings.TrimSpace(a.Choice)
		// Fields that do not belong to the question's kind.
		wrong := func(field string, set bool) {
			if set && field != kindField(q.Kind) {
				verr.add(at+"."+field, "question %q is a %s question; answer it with %q", q.ID, q.Kind, kindField(q.Kind))
			}
		}
		wrong("text", a.Text != "")
		wrong("rating", a.Rating != nil)
		wrong("yes", a.Yes != nil)
		wrong("choice", a.Choice != "")
		wrong("items", a.Items != nil)
		switch q.Kind {
		case events.QuestionText:
			if a.Text == "" {
				verr.add(at+".text", "required for a text question")
			} else {
				checkText(verr, at+".text", a.Text, maxText)
			}
		case events.QuestionRating:
			if a.Rating == nil {
				verr.add(at+".rating", "required for a rating question")
			} else if *a.Rating < 1 || *a.Rating > 5 {
				verr.add(at+".rating", "must be between 1 and 5, got %d", *a.Rating)
			}
		case events.QuestionYesNo:
			if a.Yes == nil {
				verr.add(at+".yes", "required for a yes/no question")
			}
		case events.QuestionChoice:
			if a.Choice == "" {
				verr.add(at+".choice", "required for a choice question")
			} else if !slices.Contains(q.Choices, a.Choice) {
				verr.add(at+".choice", "must be one of %s", strings.Join(quoteAll(q.Choices), ", "))
			}
		case events.QuestionActionItems:
			items := make([]string, 0, len(a.Items))
			for j, it := range a.Items {
				it = strings.TrimSpace(it)
				if it == "" {
					continue
				}
				checkText(verr, fmt.Sprintf("%s.items[%d]", at, j), it, maxItemRunes)
				items = append(items, it)
			}
			switch {
			case len(items) == 0:
				verr.add(at+".items", "at least one non-empty item is required")
			case len(items) > maxItems:
				verr.add(at+".items", "at most %d items", maxItems)
			}
			a.Items = items
		}
		out = append(out, a)
	}
	checkConditions(verr, byID, out, answers)
	if err := verr.orNil(); err != nil {
		return nil, err
	}
	return out, nil
}

// answerValue renders an answer the way a condition names it: the choice,
// "yes" or "no", the rating as digits, or the text.
func answerValue(a events.Answer) string {
	switch {
	case a.Choice != "":
		return a.Choice
	case a.Yes != nil:
		return map[bool]string{true: "yes", false: "no"}[*a.Yes]
	case a.Rating != nil:
		return strconv.Itoa(*a.Rating)
	case len(a.Items) > 0:
		return strings.Join(a.Items, "\n")
	}
	return a.Text
}

// checkConditions names every answer to a conditional question whose
// condition the other answers do not meet: the question was not asked.
func checkConditions(verr *ValidationError, byID map[string]events.Question, valid, given []events.Answer) {
	values := map[string]string{}
	for _, a := range valid {
		values[a.QuestionID] = answerValue(a)
	}
	for i, a := range given {
		q, ok := byID[a.QuestionID]
		if !ok || q.ShowWhen == nil || shown(q, values) {
			continue
		}
		verr.add(fmt.Sprintf("answers[%d].question_id", i), "question %q is asked only when %q is answered %s",
			q.ID, q.ShowWhen.QuestionID, strings.Join(quoteAll(q.ShowWhen.Values), " or "))
	}
}

// shown reports whether q is asked given the answers (question id → value).
func shown(q events.Question, values map[string]string) bool {
	return q.ShowWhen == nil || slices.Contains(q.ShowWhen.Values, values[q.ShowWhen.QuestionID])
}

// kindField is the Answer field that carries the answer to a question of kind k.
func kindField(k events.QuestionKind) string {
	switch k {
	case events.QuestionRating:
		return "rating"
	case events.QuestionYesNo:
		return "yes"
	case events.QuestionChoice:
		return "choice"
	case events.QuestionActionItems:
		return "items"
	default:
		return "text"
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
