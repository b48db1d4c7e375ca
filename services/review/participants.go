package review

import (
	"context"
	"encoding/json"

	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/review/postgres"
)

// ParticipantRoles are the roles a participant can be invited in, in the
// order the console offers them.
var ParticipantRoles = []events.Role{
	events.RoleCommander, events.RoleResponder, events.RoleBusinessOwner, events.RoleLegal,
	events.RoleCommunications, events.RoleManagement, events.RoleExternal, events.RoleOther,
}

// NewParticipant is a person to invite to a review by hand or by rule.
type NewParticipant struct {
	Name  string      `json:"name"`
	Email string      `json:"email"`
	Role  events.Role `json:"role"`
}

// validate checks p field by field (prefix names the fields, e.g. "person.")
// and returns it trimmed: a name of 1-200 characters without line breaks or
// other control characters, a bare e-mail address, one of ParticipantRoles.
func (p NewParticipant) validate(verr *ValidationError, prefix string) NewParticipant {
	p.Name, p.Email = strings.TrimSpace(p.Name), strings.TrimSpace(p.Email)
	switch {
	case p.Name == "":
		verr.add(prefix+"name", "required")
	case strings.ContainsFunc(p.Name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		verr.add(prefix+"name", "must be one line without control characters (no CR or LF)")
	default:
		checkText(verr, prefix+"name", p.Name, 200)
	}
	checkEmail(verr, prefix+"email", p.Email, true)
	if !slices.Contains(ParticipantRoles, p.Role) {
		roles := make([]string, len(ParticipantRoles))
		for i, r := range ParticipantRoles {
			roles[i] = string(r)
		}
		verr.add(prefix+"role", "must be one of %s", strings.Join(roles, ", "))
	}
	return p
}

func (p NewParticipant) participant(addedBy string) postgres.Participant {
	return postgres.Participant{ID: uuid.Must(uuid.NewV7()).String(), Key: personKey(p.Name, p.Email),
		Name: p.Name, Email: p.Email, Role: p.Role, AddedBy: addedBy}
}

// Rule adds a person to the review of every incident it matches: each given
// criterion must hold (severity one of Severities, category one of
// Categories, an affected asset's name or identifier one of Assets); a rule
// without criteria matches every incident.
type Rule struct {
	Name       string            `json:"name"`
	Severities []events.Severity `json:"severities,omitempty"`
	Categories []string          `json:"categories,omitempty"`
	Assets     []string          `json:"assets,omitempty"`
	Person     NewParticipant    `json:"person"`
}

// ParseRules reads participant rules from JSON (a list of Rule), checking
// every field; an empty string means no rules.
func ParseRules(s string) ([]Rule, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var rules []Rule
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rules); err != nil {
		return nil, fmt.Errorf("participant rules: %w", err)
	}
	verr := &ValidationError{}
	for i, r := range rules {
		at := fmt.Sprintf("[%d].", i)
		if !actionKeyRE.MatchString(r.Name) {
			verr.add(at+"name", "must be 1-64 letters, digits, '_', '.' or '-'")
		}
		for _, sev := range r.Severities {
			if !sev.Valid() {
				verr.add(at+"severities", "unknown severity %q", sev)
			}
		}
		rules[i].Person = r.Person.validate(verr, at+"person.")
	}
	if err := verr.orNil(); err != nil {
		return nil, fmt.Errorf("participant rules: %w", err)
	}
	return rules, nil
}

func (r Rule) matches(inc events.IncidentClosed) bool {
	if len(r.Severities) > 0 && !slices.Contains(r.Severities, inc.Severity) {
		return false
	}
	if len(r.Categories) > 0 && !slices.ContainsFunc(r.Categories, func(c string) bool { return strings.EqualFold(c, inc.Category) }) {
		return false
	}
	if len(r.Assets) > 0 && !slices.ContainsFunc(inc.AffectedAssets, func(a events.Asset) bool {
		return slices.ContainsFunc(r.Assets, func(want string) bool {
			return strings.EqualFold(want, a.Name) || (a.Identifier != "" && strings.EqualFold(want, a.Identifier))
		})
	}) {
		return false
	}
	return true
}

// ruleParticipants returns the people the configured rules add for inc,
// recorded as added by "rule:<name>".
func (s *Service) ruleParticipants(inc events.IncidentClosed) []postgres.Participant {
	var out []postgres.Participant
	for _, r := range s.cfg.Rules {
		if r.matches(inc) {
			out = append(out, r.Person.participant("rule:"+r.Name))
		}
	}
	return out
}

// Invitee checks an invitation token for review reviewID and returns the
// review and the participant it invites. It returns ErrInvalidInvite for a
// forged or expired token, a token of another review, and the token of a
// participant who was removed or whose invitation was revoked or renewed
// since; ErrNotFound for an unknown review.
func (s *Service) Invitee(ctx context.Context, reviewID, token string) (postgres.Review, postgres.Participant, error) {
	pid, gen, err := s.cfg.Invites.Verify(reviewID, token, s.now())
	if err != nil {
		return postgres.Review{}, postgres.Participant{}, err
	}
	r, err := s.store.Review(ctx, reviewID)
	if err != nil {
		return r, postgres.Participant{}, err
	}
	for _, p := range r.Participants {
		if p.ID == pid && p.Generation == gen && p.RevokedAt == nil {
			return r, p, nil
		}
	}
	return r, postgres.Participant{}, ErrInvalidInvite
}

// AddParticipant invites a person to an open review by hand, recorded as
// added by by (e.g. "person:jane"), and announces the invitation. It returns
// a *ValidationError naming the field for bad input (nothing is stored),
// ErrNotFound, ErrCompleted for a review that no longer takes answers, or
// ErrConflict when the person (same e-mail address) is already invited.
func (s *Service) AddParticipant(ctx context.Context, reviewID, by string, np NewParticipant) (Participant, error) {
	verr := &ValidationError{}
	np = np.validate(verr, "")
	if err := verr.orNil(); err != nil {
		return Participant{}, err
	}
	now := s.now()
	var added postgres.Participant
	var r postgres.Review
	err := s.store.InTx(ctx, func(tx *postgres.Tx) error {
		var err error
		if r, err = tx.LockReview(ctx, reviewID); err != nil {
			return err
		}
		if r.Status != postgres.StatusOpen {
			return ErrCompleted
		}
		ps, err := tx.AddParticipants(ctx, reviewID, now, []postgres.Participant{np.participant(by)})
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			return fmt.Errorf("%s is already invited: %w", np.Email, ErrConflict)
		}
		added = ps[0]
		if err := tx.RecordParticipantChange(ctx, reviewID, added.ID, now, by, postgres.ChangeAdded, string(added.Role)); err != nil {
			return err
		}
		return s.announceInvitation(ctx, tx, r, added, events.InvitationAdded)
	})
	if err != nil {
		return Participant{}, err
	}
	return s.participantView(r, added), nil
}

// RemoveParticipant withdraws a participant from an open review; their link
// stops working and they are no longer reminded. Someone who has answered
// cannot be removed (their answers are part of the review): revoke their
// invitation instead. It returns ErrNotFound, ErrCompleted or ErrConflict.
func (s *Service) RemoveParticipant(ctx context.Context, reviewID, participantID, by string) error {
	now := s.now()
	return s.store.InTx(ctx, func(tx *postgres.Tx) error {
		r, err := tx.LockReview(ctx, reviewID)
		if err != nil {
			return err
		}
		if r.Status != postgres.StatusOpen {
			return ErrCompleted
		}
		p, ok := findParticipant(r, participantID)
		if !ok {
			return fmt.Errorf("participant %s: %w", participantID, ErrNotFound)
		}
		if p.SubmittedAt != nil {
			return fmt.Errorf("%s has answered and cannot be removed; revoke the invitation instead: %w", p.Name, ErrConflict)
		}
		if err := tx.RemoveParticipant(ctx, reviewID, participantID, now); err != nil {
			return err
		}
		if err := tx.RecordParticipantChange(ctx, reviewID, participantID, now, by, postgres.ChangeRemoved, ""); err != nil {
			return err
		}
		return s.enqueueWithdrawal(ctx, tx, r, p)
	})
}

// RenewInvitation resends a participant's invitation with a new link, or with
// revoke withdraws it; either way their earlier links stop working and
// nobody else's do. A resend is announced like a new invitation. It returns
// the participant with their current link, ErrNotFound or ErrCompleted.
func (s *Service) RenewInvitation(ctx context.Context, reviewID, participantID, by string, revoke bool) (Participant, error) {
	now := s.now()
	var p postgres.Participant
	var r postgres.Review
	err := s.store.InTx(ctx, func(tx *postgres.Tx) error {
		var err error
		if r, err = tx.LockReview(ctx, reviewID); err != nil {
			return err
		}
		if r.Status != postgres.StatusOpen {
			return ErrCompleted
		}
		var ok bool
		if p, ok = findParticipant(r, participantID); !ok {
			return fmt.Errorf("participant %s: %w", participantID, ErrNotFound)
		}
		if p.Generation, err = tx.RenewInvitation(ctx, reviewID, participantID, now, revoke); err != nil {
			return err
		}
		change := postgres.ChangeResent
		if revoke {
			change, p.RevokedAt = postgres.ChangeRevoked, &now
			if err := tx.RecordParticipantChange(ctx, reviewID, participantID, now, by, change, ""); err != nil {
				return err
			}
			return s.enqueueWithdrawal(ctx, tx, r, p)
		}
		p.RevokedAt, p.InvitedAt = nil, now
		if err := tx.RecordParticipantChange(ctx, reviewID, participantID, now, by, change, ""); err != nil {
			return err
		}
		return s.announceInvitation(ctx, tx, r, p, events.InvitationResent)
	})
	if err != nil {
		return Participant{}, err
	}
	return s.participantView(r, p), nil
}

// announceInvitation tells a participant added by hand, or one whose
// invitation was resent, about their link: an invitation event for the
// notify service (see EnqueueInvitation), in the transaction that added them.
func (s *Service) announceInvitation(ctx context.Context, tx *postgres.Tx, r postgres.Review, p postgres.Participant, reason events.InvitationReason) error {
	sent, err := s.EnqueueInvitation(ctx, tx, r, p, reason)
	if sent {
		s.metrics.invitations.Inc()
	}
	return err
}

func findParticipant(r postgres.Review, id string) (postgres.Participant, bool) {
	for _, p := range r.Participants {
		if p.ID == id {
			return p, true
		}
	}
	return postgres.Participant{}, false
}

// ParticipantChanges returns the audit of managing a review's participants.
func (s *Service) ParticipantChanges(ctx context.Context, reviewID string) ([]postgres.ParticipantChange, error) {
	return s.store.ParticipantChanges(ctx, reviewID)
}

// SaveDraft keeps a participant's answers without submitting them (the
// facilitator does not see them; submitting replaces the draft). The answers
// are checked like a submission's but may be empty. It returns ErrNotFound,
// ErrCompleted or a *ValidationError.
func (s *Service) SaveDraft(ctx context.Context, reviewID, participantID string, answers []events.Answer) (time.Time, error) {
	r, err := s.store.Review(ctx, reviewID)
	if err != nil {
		return time.Time{}, err
	}
	if _, ok := findParticipant(r, participantID); !ok {
		return time.Time{}, fmt.Errorf("participant %s of review %s: %w", participantID, reviewID, ErrNotFound)
	}
	qs, err := s.store.Questionnaire(ctx, r.QuestionnaireVersion)
	if err != nil {
		return time.Time{}, err
	}
	if answers, err = validateAnswers(qs, answers); err != nil {
		return time.Time{}, err
	}
	now := s.now()
	err = s.store.InTx(ctx, func(tx *postgres.Tx) error {
		locked, err := tx.LockReview(ctx, reviewID)
		if err != nil {
			return err
		}
		if locked.Status != postgres.StatusOpen {
			return ErrCompleted
		}
		return tx.SaveDraft(ctx, reviewID, participantID, postgres.Draft{Answers: answers, SavedAt: now})
	})
	return now, err
}

// Draft returns a participant's saved draft, or ErrNotFound when there is none.
func (s *Service) Draft(ctx context.Context, participantID string) (postgres.Draft, error) {
	return s.store.Draft(ctx, participantID)
}

// changeParticipant applies the {change} of a participant route (resend,
// revoke or remove) and returns the participant (nil after a removal).
func (s *Service) changeParticipant(r *http.Request, reviewID, by string) (*Participant, error) {
	pid := r.PathValue("participant_id")
	if uuid.Validate(pid) != nil {
		return nil, fmt.Errorf("participant %q: %w", pid, ErrNotFound)
	}
	switch r.PathValue("change") {
	case "resend", "revoke":
		p, err := s.RenewInvitation(r.Context(), reviewID, pid, by, r.PathValue("change") == "revoke")
		return &p, err
	case "remove":
		return nil, s.RemoveParticipant(r.Context(), reviewID, pid, by)
	}
	return nil, fmt.Errorf("change %q: %w", r.PathValue("change"), ErrNotFound)
}
