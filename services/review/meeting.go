package review

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/services/review/postgres"
)

// The debrief meeting: NIST SP 800-61 §3.4.1's lessons-learned meeting with
// everyone involved. The facilitator schedules, changes and cancels it through
// the API; each change enqueues afteraction.review.meeting.v1 (private NOTIFY
// stream: the video link admits whoever holds it), from which the notify
// service mails every attendee an iCalendar invitation with the meeting's
// stable UID and growing SEQUENCE. When it took place, who attended and the
// minutes go into review.completed (completion and every amendment), and so
// into the report.

// MeetingRequest schedules or changes the debrief meeting.
type MeetingRequest struct {
	StartsAt *time.Time `json:"starts_at"`
	// DurationMinutes defaults to 60.
	DurationMinutes int    `json:"duration_minutes,omitempty"`
	Location        string `json:"location,omitempty"`
	VideoURL        string `json:"video_url,omitempty"`
	// Guests are invited besides the participants and the facilitator.
	Guests []events.Contact `json:"guests,omitempty"`
}

// MinutesRequest records the meeting's attendance and minutes.
type MinutesRequest struct {
	Attended []string `json:"attended"`
	Minutes  string   `json:"minutes"`
}

// Meeting is the debrief meeting as the API shows it. Status is "none" until
// one is scheduled; SuggestedStartsAt follows the severity policy.
type Meeting struct {
	ReviewID          string           `json:"review_id"`
	Status            string           `json:"status"`
	UID               string           `json:"uid,omitempty"`
	Sequence          int              `json:"sequence"`
	StartsAt          *time.Time       `json:"starts_at,omitempty"`
	DurationMinutes   int              `json:"duration_minutes,omitempty"`
	Location          string           `json:"location,omitempty"`
	VideoURL          string           `json:"video_url,omitempty"`
	Guests            []events.Contact `json:"guests,omitempty"`
	Attendees         []events.Contact `json:"attendees"`
	Attended          []string         `json:"attended,omitempty"`
	Minutes           string           `json:"minutes,omitempty"`
	UpdatedAt         *time.Time       `json:"updated_at,omitempty"`
	SuggestedStartsAt time.Time        `json:"suggested_starts_at"`
}

const defaultMeetingMinutes = 60

func validateMeeting(req MeetingRequest) error {
	verr := &ValidationError{}
	if req.StartsAt == nil || req.StartsAt.IsZero() {
		verr.add("starts_at", "required (RFC 3339 date-time)")
	}
	if d := req.DurationMinutes; d != 0 && (d < 5 || d > 1440) {
		verr.add("duration_minutes", "between 5 and 1440")
	}
	checkLine(verr, "location", req.Location, 500)
	if req.VideoURL != "" {
		u, err := url.Parse(req.VideoURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(req.VideoURL) > 2000 ||
			strings.ContainsAny(req.VideoURL, " \r\n") {
			verr.add("video_url", "want an absolute http(s) URL of at most 2000 characters")
		}
	}
	if len(req.Guests) > 50 {
		verr.add("guests", "at most 50 guests")
	}
	for i, g := range req.Guests {
		at := "guests[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(g.Name) == "" {
			verr.add(at+".name", "required")
		}
		checkLine(verr, at+".name", g.Name, 200)
		checkEmail(verr, at+".email", g.Email, true)
	}
	return verr.orNil()
}

// checkLine is checkText for a one-line value: it also refuses line breaks.
func checkLine(verr *ValidationError, field, s string, max int) {
	checkText(verr, field, s, max)
	if strings.ContainsAny(s, "\r\n") {
		verr.add(field, "must be a single line")
	}
}

// SuggestedMeetingTime is when the policy suggests the debrief: 10:00 UTC on
// the first weekday on or after the review's due date (or, without one, five
// days after it opened), i.e. "within several days" of the incident.
func SuggestedMeetingTime(r postgres.Review) time.Time {
	base := r.OpenedAt.Add(5 * 24 * time.Hour)
	if r.DueAt != nil {
		base = *r.DueAt
	}
	base = base.UTC()
	t := time.Date(base.Year(), base.Month(), base.Day(), 10, 0, 0, 0, time.UTC)
	if t.Before(base) {
		t = t.AddDate(0, 0, 1)
	}
	for t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		t = t.AddDate(0, 0, 1)
	}
	return t
}

// Meeting returns the debrief meeting of a review (status "none" with a
// suggested time when none was scheduled), or ErrNotFound.
func (s *Service) Meeting(ctx context.Context, reviewID string) (Meeting, error) {
	r, err := s.store.Review(ctx, reviewID)
	if err != nil {
		return Meeting{}, err
	}
	m, err := s.store.Meeting(ctx, reviewID)
	switch {
	case errors.Is(err, ErrNotFound):
		return s.meetingView(r, nil), nil
	case err != nil:
		return Meeting{}, err
	}
	return s.meetingView(r, &m), nil
}

// ScheduleMeeting schedules the debrief meeting of a review, or changes it:
// a change of time, duration, place, video link or guests raises its SEQUENCE
// and enqueues afteraction.review.meeting.v1, so every attendee gets an
// updated invitation; an identical request changes nothing and sends nothing.
// A cancelled meeting scheduled again keeps its UID. It returns ErrNotFound or
// a *ValidationError naming the offending field.
func (s *Service) ScheduleMeeting(ctx context.Context, reviewID string, req MeetingRequest) (Meeting, error) {
	if err := validateMeeting(req); err != nil {
		return Meeting{}, err
	}
	if req.DurationMinutes == 0 {
		req.DurationMinutes = defaultMeetingMinutes
	}
	var view Meeting
	err := s.store.InTx(ctx, func(tx *postgres.Tx) error {
		r, err := tx.LockReview(ctx, reviewID)
		if err != nil {
			return err
		}
		m, err := tx.LockMeeting(ctx, reviewID)
		fresh := errors.Is(err, ErrNotFound)
		if err != nil && !fresh {
			return err
		}
		next := m
		next.ReviewID, next.UID, next.Status = r.ID, r.ID+"@afteraction", events.MeetingScheduled
		next.StartsAt, next.DurationMinutes = req.StartsAt.UTC().Truncate(time.Second), req.DurationMinutes
		next.Location, next.VideoURL, next.Guests = strings.TrimSpace(req.Location), req.VideoURL, trimContacts(req.Guests)
		if !fresh && sameMeeting(m, next) {
			view = s.meetingView(r, &m)
			return nil
		}
		if !fresh {
			next.Sequence = m.Sequence + 1
		}
		next.UpdatedAt = s.now()
		if err := tx.SaveMeeting(ctx, next); err != nil {
			return err
		}
		view = s.meetingView(r, &next)
		return s.enqueueMeeting(ctx, tx, r, next)
	})
	return view, err
}

// CancelMeeting cancels the scheduled debrief meeting: its SEQUENCE rises and
// every attendee gets a METHOD:CANCEL. It returns ErrNotFound when no meeting
// is scheduled; cancelling a cancelled meeting changes nothing.
func (s *Service) CancelMeeting(ctx context.Context, reviewID string) (Meeting, error) {
	var view Meeting
	err := s.store.InTx(ctx, func(tx *postgres.Tx) error {
		r, err := tx.LockReview(ctx, reviewID)
		if err != nil {
			return err
		}
		m, err := tx.LockMeeting(ctx, reviewID)
		if err != nil {
			return err
		}
		if m.Status == events.MeetingCancelled {
			view = s.meetingView(r, &m)
			return nil
		}
		m.Status, m.Sequence, m.UpdatedAt = events.MeetingCancelled, m.Sequence+1, s.now()
		if err := tx.SaveMeeting(ctx, m); err != nil {
			return err
		}
		view = s.meetingView(r, &m)
		return s.enqueueMeeting(ctx, tx, r, m)
	})
	return view, err
}

// RecordMinutes stores who attended the meeting and its minutes; they go into
// the next review.completed (completion or amendment). It sends nothing and
// returns ErrNotFound when no meeting was scheduled.
func (s *Service) RecordMinutes(ctx context.Context, reviewID string, req MinutesRequest) (Meeting, error) {
	verr := &ValidationError{}
	checkText(verr, "minutes", req.Minutes, 100000)
	if len(req.Attended) > 500 {
		verr.add("attended", "at most 500 names")
	}
	for i, n := range req.Attended {
		if strings.TrimSpace(n) == "" {
			verr.add("attended["+strconv.Itoa(i)+"]", "required")
		}
		checkLine(verr, "attended["+strconv.Itoa(i)+"]", n, 200)
	}
	if err := verr.orNil(); err != nil {
		return Meeting{}, err
	}
	var view Meeting
	err := s.store.InTx(ctx, func(tx *postgres.Tx) error {
		r, err := tx.LockReview(ctx, reviewID)
		if err != nil {
			return err
		}
		m, err := tx.LockMeeting(ctx, reviewID)
		if err != nil {
			return err
		}
		m.Attended, m.Minutes, m.UpdatedAt = nil, req.Minutes, s.now()
		for _, n := range req.Attended {
			m.Attended = append(m.Attended, strings.TrimSpace(n))
		}
		if err := tx.SaveMeeting(ctx, m); err != nil {
			return err
		}
		view = s.meetingView(r, &m)
		return nil
	})
	return view, err
}

// completedMeeting is the meeting as review.completed reports it: nil when
// none was scheduled or it was cancelled. The video link is left out.
func completedMeeting(ctx context.Context, tx *postgres.Tx, reviewID string) (*events.Meeting, error) {
	m, err := tx.LockMeeting(ctx, reviewID)
	if errors.Is(err, ErrNotFound) || (err == nil && m.Status != events.MeetingScheduled) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &events.Meeting{StartsAt: m.StartsAt.UTC(), DurationMinutes: m.DurationMinutes, Location: m.Location,
		Attended: m.Attended, Minutes: m.Minutes}, nil
}

func (s *Service) enqueueMeeting(ctx context.Context, tx *postgres.Tx, r postgres.Review, m postgres.Meeting) error {
	ev := events.ReviewMeeting{
		ReviewID: r.ID, IncidentID: r.IncidentID, Title: r.Title, UID: m.UID, Sequence: m.Sequence, Status: m.Status,
		StartsAt: m.StartsAt.UTC(), DurationMinutes: m.DurationMinutes, Location: m.Location, VideoURL: m.VideoURL,
		Attendees: meetingAttendees(r, m), ChangedAt: m.UpdatedAt.UTC(),
	}
	if r.Facilitator.Name != "" {
		ev.Organizer = contactOf(r.Facilitator)
	}
	env, err := newEvent(events.TypeReviewMeeting, r.ID, ev)
	if err != nil {
		return asValidation(err)
	}
	return tx.Enqueue(ctx, env)
}

// meetingAttendees is everyone invited to the meeting who can be mailed: the
// facilitator, the participants and the guests, each address once.
func meetingAttendees(r postgres.Review, m postgres.Meeting) []events.Contact {
	out := []events.Contact{}
	seen := map[string]bool{}
	add := func(name, email string) {
		key := strings.ToLower(email)
		if !ValidEmail(email) || seen[key] {
			return
		}
		seen[key] = true
		if strings.TrimSpace(name) == "" {
			name = email
		}
		out = append(out, events.Contact{Name: name, Email: email})
	}
	add(r.Facilitator.Name, r.Facilitator.Email)
	for _, p := range r.Participants {
		add(p.Name, p.Email)
	}
	for _, g := range m.Guests {
		add(g.Name, g.Email)
	}
	return out
}

func sameMeeting(a, b postgres.Meeting) bool {
	return a.Status == b.Status && a.StartsAt.Equal(b.StartsAt) && a.DurationMinutes == b.DurationMinutes &&
		a.Location == b.Location && a.VideoURL == b.VideoURL && slices.Equal(a.Guests, b.Guests)
}

func trimContacts(cs []events.Contact) []events.Contact {
	out := make([]events.Contact, 0, len(cs))
	for _, c := range cs {
		out = append(out, events.Contact{Name: strings.TrimSpace(c.Name), Email: c.Email})
	}
	return out
}

func (s *Service) meetingView(r postgres.Review, m *postgres.Meeting) Meeting {
	v := Meeting{ReviewID: r.ID, Status: "none", SuggestedStartsAt: SuggestedMeetingTime(r), Attendees: []events.Contact{}}
	if m == nil {
		return v
	}
	starts, updated := m.StartsAt.UTC(), m.UpdatedAt.UTC()
	v.Status, v.UID, v.Sequence = string(m.Status), m.UID, m.Sequence
	v.StartsAt, v.DurationMinutes, v.Location, v.VideoURL = &starts, m.DurationMinutes, m.Location, m.VideoURL
	v.Guests, v.Attended, v.Minutes, v.UpdatedAt = m.Guests, m.Attended, m.Minutes, &updated
	v.Attendees = meetingAttendees(r, *m)
	return v
}

// meeting handlers: GET, PUT and DELETE /v1/reviews/{id}/meeting and PUT
// /v1/reviews/{id}/meeting/minutes (see Routes).

func (h *handlers) getMeeting(w http.ResponseWriter, r *http.Request) {
	if id, ok := h.reviewID(w, r); ok {
		h.writeMeeting(w, r, http.StatusOK)(h.svc.Meeting(r.Context(), id))
	}
}

func (h *handlers) putMeeting(w http.ResponseWriter, r *http.Request) {
	id, ok := h.reviewID(w, r)
	if !ok {
		return
	}
	var req MeetingRequest
	if _, err := httpapi.ReadJSON(r, maxBody, &req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	h.writeMeeting(w, r, http.StatusOK)(h.svc.ScheduleMeeting(r.Context(), id, req))
}

func (h *handlers) cancelMeeting(w http.ResponseWriter, r *http.Request) {
	if id, ok := h.reviewID(w, r); ok {
		h.writeMeeting(w, r, http.StatusOK)(h.svc.CancelMeeting(r.Context(), id))
	}
}

func (h *handlers) putMinutes(w http.ResponseWriter, r *http.Request) {
	id, ok := h.reviewID(w, r)
	if !ok {
		return
	}
	var req MinutesRequest
	if _, err := httpapi.ReadJSON(r, maxBody*4, &req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	h.writeMeeting(w, r, http.StatusOK)(h.svc.RecordMinutes(r.Context(), id, req))
}

func (h *handlers) writeMeeting(w http.ResponseWriter, r *http.Request, status int) func(Meeting, error) {
	return func(m Meeting, err error) {
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, status, m)
	}
}
