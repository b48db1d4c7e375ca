package events

import (
	"net/mail"
	"strings"
	"time"
)

// Events of the notify service's contract. The invitation and meeting events
// carry bearer secrets (the personal form link, a meeting's video link) and
// are published on the private stream NOTIFY (subjects notify.>), which only
// the notify service's NATS user may read; review.answered and
// notification.failed carry none and travel on AFTERACTION.
const (
	// TypeReviewInvitation is the ce-type of a personal invitation to answer a review.
	TypeReviewInvitation = "afteraction.review.invitation.v1"
	// SubjectReviewInvitation is the NATS subject of TypeReviewInvitation (stream NOTIFY).
	SubjectReviewInvitation = "notify.review.invitation"

	// TypeReviewMeeting is the ce-type of the debrief meeting of a review being
	// scheduled, changed or cancelled.
	TypeReviewMeeting = "afteraction.review.meeting.v1"
	// SubjectReviewMeeting is the NATS subject of TypeReviewMeeting (stream NOTIFY).
	SubjectReviewMeeting = "notify.review.meeting"

	// TypeReviewAnswered is the ce-type of a participant's answers being stored.
	TypeReviewAnswered = "afteraction.review.answered.v1"
	// SubjectReviewAnswered is the NATS subject of TypeReviewAnswered.
	SubjectReviewAnswered = "afteraction.review.answered"

	// TypeNotificationFailed is the ce-type of a notification given up on for good.
	TypeNotificationFailed = "afteraction.notification.failed.v1"
	// SubjectNotificationFailed is the NATS subject of TypeNotificationFailed.
	SubjectNotificationFailed = "afteraction.notification.failed"

	// SubjectNotifyAll matches every subject of the NOTIFY stream.
	SubjectNotifyAll = "notify.>"
)

// InvitationReason says why an invitation is sent.
type InvitationReason string

// Invitation reasons: the review opened, a participant was added later, the
// facilitator asked for the invitation to be sent again (every resend is
// mailed), or the facilitator revoked the invitation or removed the
// participant (withdrawn: the event carries no link, and the notify service
// forgets the one it holds and reminds the participant no more).
const (
	InvitationOpened    InvitationReason = "opened"
	InvitationAdded     InvitationReason = "added"
	InvitationResent    InvitationReason = "resent"
	InvitationWithdrawn InvitationReason = "withdrawn"
)

// ReviewInvitation is one participant's personal invitation to a review
// (afteraction.review.invitation.v1), or its withdrawal. FormURL is a bearer
// capability: whoever holds it answers as the participant; it is never logged.
// A withdrawal (Reason InvitationWithdrawn) has no FormURL.
type ReviewInvitation struct {
	ReviewID    string           `json:"review_id"`
	IncidentID  string           `json:"incident_id"`
	Title       string           `json:"title"`
	Severity    Severity         `json:"severity"`
	Participant Participant      `json:"participant"`
	Facilitator *Contact         `json:"facilitator,omitempty"`
	FormURL     string           `json:"form_url,omitempty"`
	DueAt       *time.Time       `json:"due_at,omitempty"`
	ExpiresAt   time.Time        `json:"expires_at"`
	InvitedAt   time.Time        `json:"invited_at"`
	Reason      InvitationReason `json:"reason"`
}

// MeetingStatus is the state of a debrief meeting.
type MeetingStatus string

// Meeting states.
const (
	MeetingScheduled MeetingStatus = "scheduled"
	MeetingCancelled MeetingStatus = "cancelled"
)

// ReviewMeeting is the debrief (lessons-learned) meeting of a review as
// scheduled, changed or cancelled (afteraction.review.meeting.v1). UID is
// stable for the review's meeting; Sequence grows with every change (RFC 5545).
type ReviewMeeting struct {
	ReviewID        string        `json:"review_id"`
	IncidentID      string        `json:"incident_id"`
	Title           string        `json:"title"`
	UID             string        `json:"uid"`
	Sequence        int           `json:"sequence"`
	Status          MeetingStatus `json:"status"`
	StartsAt        time.Time     `json:"starts_at"`
	DurationMinutes int           `json:"duration_minutes"`
	Location        string        `json:"location,omitempty"`
	VideoURL        string        `json:"video_url,omitempty"`
	Organizer       *Contact      `json:"organizer,omitempty"`
	Attendees       []Contact     `json:"attendees"`
	ChangedAt       time.Time     `json:"changed_at"`
}

// ReviewAnswered announces that a participant's answers were stored
// (afteraction.review.answered.v1); Unanswered counts the participants of the
// review who have not answered yet.
type ReviewAnswered struct {
	ReviewID    string      `json:"review_id"`
	IncidentID  string      `json:"incident_id"`
	Title       string      `json:"title"`
	Participant Participant `json:"participant"`
	AnsweredAt  time.Time   `json:"answered_at"`
	Unanswered  int         `json:"unanswered"`
	Facilitator *Contact    `json:"facilitator,omitempty"`
}

// NotificationFailed announces a notification the notify service gave up on
// (afteraction.notification.failed.v1): a permanent refusal (mailbox refused,
// webhook 4xx) or too many failed attempts. It never carries the message.
type NotificationFailed struct {
	DeliveryID string    `json:"delivery_id"`
	Reason     string    `json:"reason"`
	Channel    string    `json:"channel"`
	Recipient  Contact   `json:"recipient"`
	ReviewID   string    `json:"review_id,omitempty"`
	ActionID   string    `json:"action_id,omitempty"`
	Attempts   int       `json:"attempts"`
	Error      string    `json:"error"`
	FailedAt   time.Time `json:"failed_at"`
}

// Meeting is the debrief meeting as a completed review reports it: when it
// took place, who attended and the minutes.
type Meeting struct {
	StartsAt        time.Time `json:"starts_at"`
	DurationMinutes int       `json:"duration_minutes"`
	Location        string    `json:"location,omitempty"`
	Attended        []string  `json:"attended,omitempty"`
	Minutes         string    `json:"minutes,omitempty"`
}

// ValidEmail reports whether addr is a bare e-mail address that is safe to
// mail and to put in a header: local@domain.tld, no display name, no spaces,
// angle brackets, quotes or line breaks, at most 254 bytes.
func ValidEmail(addr string) bool {
	if addr == "" || len(addr) > 254 || strings.ContainsAny(addr, " \t\r\n<>\"(),;:\\") {
		return false
	}
	a, err := mail.ParseAddress(addr)
	at := strings.LastIndexByte(addr, '@')
	return err == nil && a.Address == addr && at > 0 && strings.Contains(addr[at+1:], ".") && !strings.HasSuffix(addr, ".")
}

// TypeBridgeDeliveryFailed is the ce-type of the DLQ copy of an action
// delivery a remote tracker refused for good; the tracker writes it on
// dlq.tracker.bridge.<bridge>.
const TypeBridgeDeliveryFailed = "afteraction.bridge.delivery_failed.v1"

// BridgeDeliveryFailed is an action delivery a bridge's remote refused for
// good (afteraction.bridge.delivery_failed.v1).
type BridgeDeliveryFailed struct {
	ID         int64     `json:"id"`
	ActionID   string    `json:"action_id"`
	Bridge     string    `json:"bridge"`
	Intent     string    `json:"intent"`
	Version    int64     `json:"version"`
	HTTPStatus int       `json:"http_status"`
	Message    string    `json:"message"`
	Attempts   int       `json:"attempts"`
	FailedAt   time.Time `json:"failed_at"`
}
