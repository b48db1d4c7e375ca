package report

import (
	"context"
	"time"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
)

// ReadModel keeps what programme metrics need from other services' events.
// Every Apply method records eventID in processed_events in the same
// transaction as its change and does nothing for an event seen before.
type ReadModel interface {
	ApplyIncidentRegistered(ctx context.Context, eventID string, e events.IncidentRegistered) error
	ApplyActionCreated(ctx context.Context, eventID string, e events.ActionCreated) error
	ApplyActionUpdated(ctx context.Context, eventID string, e events.ActionUpdated) error
	ApplyActionOverdue(ctx context.Context, eventID string, e events.ActionOverdue) error
	ProgrammeMetrics(ctx context.Context, from, to time.Time) (ProgrammeMetrics, error)
}

// ProgrammeMetrics measures the incident-response programme over a window of
// incident closure times [From, To).
type ProgrammeMetrics struct {
	From      time.Time      `json:"from"`
	To        time.Time      `json:"to"`
	Incidents IncidentCounts `json:"incidents"`
	// DetectedToClosed is the time from detection to closure of the incidents in the window.
	DetectedToClosed DurationStats `json:"detected_to_closed"`
	// ClosedToReviewed is the time from closure to the completed review.
	ClosedToReviewed DurationStats `json:"closed_to_review_completed"`
	// Actions counts the improvement actions of the incidents in the window.
	Actions ActionCounts `json:"actions"`
}

// IncidentCounts counts incidents handled.
type IncidentCounts struct {
	Total      int            `json:"total"`
	Exercises  int            `json:"exercises"`
	BySeverity map[string]int `json:"by_severity"`
	ByCategory map[string]int `json:"by_category"`
}

// DurationStats summarises durations in seconds.
type DurationStats struct {
	Count         int      `json:"count"`
	MeanSeconds   *float64 `json:"mean_seconds"`
	MedianSeconds *float64 `json:"median_seconds"`
}

// ActionCounts counts actions by what happened to them. Overdue counts
// actions reported overdue that are not done or dropped.
type ActionCounts struct {
	Created    int `json:"created"`
	Open       int `json:"open"`
	InProgress int `json:"in_progress"`
	Done       int `json:"done"`
	WontDo     int `json:"wont_do"`
	Overdue    int `json:"overdue"`
}

// Projector applies events to the read model; its methods are bus handlers.
type Projector struct{ Model ReadModel }

// IncidentRegistered records an incident (the highest revision wins).
func (p Projector) IncidentRegistered(ctx context.Context, m *bus.Message, e events.IncidentRegistered) error {
	return p.Model.ApplyIncidentRegistered(ctx, m.Envelope.ID, e)
}

// ActionCreated records a new action.
func (p Projector) ActionCreated(ctx context.Context, m *bus.Message, e events.ActionCreated) error {
	return p.Model.ApplyActionCreated(ctx, m.Envelope.ID, e)
}

// ActionUpdated records a status change (older changes never overwrite newer ones).
func (p Projector) ActionUpdated(ctx context.Context, m *bus.Message, e events.ActionUpdated) error {
	return p.Model.ApplyActionUpdated(ctx, m.Envelope.ID, e)
}

// ActionOverdue marks an action overdue.
func (p Projector) ActionOverdue(ctx context.Context, m *bus.Message, e events.ActionOverdue) error {
	return p.Model.ApplyActionOverdue(ctx, m.Envelope.ID, e)
}
