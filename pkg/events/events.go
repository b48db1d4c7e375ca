// Package events is afteraction's event contract in Go: a type, a ce-type
// constant and a NATS subject for every event, the CloudEvents envelope, and
// validation of event data against the JSON Schemas embedded by module
// github.com/afteraction/afteraction/schemas.
//
// The schemas are the contract; the Go types mirror them, and the package's
// tests fail when the two drift apart.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Envelope is an event: the CloudEvents 1.0 attributes plus the data.
// Subject is the ce-subject (what the event is about, e.g. the incident id),
// not the NATS subject.
type Envelope struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Source  string          `json:"source"`
	Subject string          `json:"subject,omitempty"`
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data"`
}

// New returns an envelope of type typ holding data marshalled to JSON, with a
// fresh UUIDv7 as ID and the current UTC time. It does not validate data;
// it returns an error only if data cannot be marshalled or no id can be made.
func New(typ, source, subject string, data any) (Envelope, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("marshal %s data: %w", typ, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Envelope{}, fmt.Errorf("new %s event id: %w", typ, err)
	}
	return Envelope{
		ID:      id.String(),
		Type:    typ,
		Source:  source,
		Subject: subject,
		Time:    time.Now().UTC(),
		Data:    b,
	}, nil
}

// ErrUnknownType is returned (wrapped) for a ce-type this package does not know.
var ErrUnknownType = errors.New("unknown event type")

// eventKind describes one event type: how to make its Go value, where it is
// published, and whether it comes from outside (and is decoded strictly).
type eventKind struct {
	newValue func() any
	subject  string // "" for inbound types, whose subject ends in the sender's name
	inbound  bool
	// dlq: written only to the DLQ stream, on dlq.<service>.<...>.
	dlq bool
}

// registry maps every ce-type to its Go type and subject. The tests check it
// against the schema files in both directions.
var registry = map[string]eventKind{
	TypeIncidentClosed:     {newValue: func() any { return new(IncidentClosed) }, inbound: true},
	TypeIncidentRegistered: {newValue: func() any { return new(IncidentRegistered) }, subject: SubjectIncidentRegistered},
	TypeIncidentRejected:   {newValue: func() any { return new(IncidentRejected) }, subject: SubjectIncidentRejected},
	TypeReviewOpened:       {newValue: func() any { return new(ReviewOpened) }, subject: SubjectReviewOpened},
	TypeReviewReminder:     {newValue: func() any { return new(ReviewReminder) }, subject: SubjectReviewReminder},
	TypeReviewCompleted:    {newValue: func() any { return new(ReviewCompleted) }, subject: SubjectReviewCompleted},
	TypeReportPublished:    {newValue: func() any { return new(ReportPublished) }, subject: SubjectReportPublished},
	TypeProgrammeReportPublished: {newValue: func() any { return new(ProgrammeReportPublished) },
		subject: SubjectProgrammeReportPublished},
	TypeActionCreated:        {newValue: func() any { return new(ActionCreated) }, subject: SubjectActionCreated},
	TypeActionUpdated:        {newValue: func() any { return new(ActionUpdated) }, subject: SubjectActionUpdated},
	TypeActionOverdue:        {newValue: func() any { return new(ActionOverdue) }, subject: SubjectActionOverdue},
	TypeActionStatus:         {newValue: func() any { return new(ActionStatus) }, inbound: true},
	TypeActionDigest:         {newValue: func() any { return new(ActionDigest) }, subject: SubjectActionDigest},
	TypeReviewInvitation:     {newValue: func() any { return new(ReviewInvitation) }, subject: SubjectReviewInvitation},
	TypeReviewMeeting:        {newValue: func() any { return new(ReviewMeeting) }, subject: SubjectReviewMeeting},
	TypeReviewAnswered:       {newValue: func() any { return new(ReviewAnswered) }, subject: SubjectReviewAnswered},
	TypeNotificationFailed:   {newValue: func() any { return new(NotificationFailed) }, subject: SubjectNotificationFailed},
	TypeBridgeDeliveryFailed: {newValue: func() any { return new(BridgeDeliveryFailed) }, dlq: true},
	TypeEvidenceExpired:      {newValue: func() any { return new(EvidenceExpired) }, subject: SubjectEvidenceExpired},
}

// Types returns every known ce-type, sorted.
func Types() []string {
	types := make([]string, 0, len(registry))
	for t := range registry {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

// SubjectOf returns the NATS subject an internal event type is published on,
// e.g. "afteraction.review.completed" for "afteraction.review.completed.v1".
// It returns an error for unknown types (wrapping ErrUnknownType) and for the
// inbound types, whose subjects end in the sender's name (use
// SubjectIncidentClosedPrefix or SubjectActionStatusPrefix).
func SubjectOf(typ string) (string, error) {
	k, ok := registry[typ]
	if !ok {
		return "", fmt.Errorf("subject of %q: %w", typ, ErrUnknownType)
	}
	if k.inbound {
		return "", fmt.Errorf("subject of %q: inbound type, its subject ends in the sender's name", typ)
	}
	if k.dlq {
		return "", fmt.Errorf("subject of %q: dead-letter type, published only on the DLQ stream (dlq.<service>.<...>)", typ)
	}
	return k.subject, nil
}
