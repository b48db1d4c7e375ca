// Package bridge connects improvement actions to the issue trackers teams
// use: GitHub Issues, Jira Cloud and Server/Data Center, GitLab Issues and a
// signed generic webhook. Each Bridge creates and updates one remote issue
// per action, finds the issue again by the marker it carries (a label with
// the action id), and decodes the tracker's webhooks into status updates.
//
// The package only talks HTTP; which action goes where, the intents recorded
// before each call, retries and failures live in package tracker.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
)

// Issue is what a bridge writes to the remote tracker for one action.
type Issue struct {
	ActionID      string
	IncidentID    string
	IncidentTitle string
	ReviewID      string
	Key           string
	Title         string
	Description   string
	Category      events.ActionCategory
	Priority      events.Priority
	Status        events.Status
	// DueDate is YYYY-MM-DD or "".
	DueDate    string
	OwnerName  string
	OwnerEmail string
	// ReportURL links to the incident's report, "" when not configured.
	ReportURL string
	// Event is "action.created" for the first delivery and "action.updated"
	// afterwards; Version counts the changes to deliver (1 at creation).
	Event   string
	Version int64
	// ChangedAt is when the action last changed.
	ChangedAt time.Time
}

// Marker is the label that carries the action id on the remote issue; Find
// searches for it before a retried create, so a crash between the remote's
// answer and the local commit never creates a second issue.
func Marker(actionID string) string { return "afteraction:" + actionID }

// Ref names a remote issue.
type Ref struct {
	// ID is the remote's key: the GitHub or GitLab issue number, the Jira key
	// (SEC-12), or the receiver's id for the generic webhook.
	ID  string `json:"id"`
	URL string `json:"url,omitempty"`
}

// Bridge is one configured remote tracker.
type Bridge interface {
	// Name is the configured name (it names the bridge in routes, failures,
	// the inbound URL and as the tracker of status updates).
	Name() string
	// Kind is the vendor: webhook, github, jira, gitlab.
	Kind() string
	// Find returns the remote issue carrying Marker(actionID); ok is false
	// when there is none.
	Find(ctx context.Context, actionID string) (ref Ref, ok bool, err error)
	// Create creates the remote issue for is.
	Create(ctx context.Context, is Issue) (Ref, error)
	// Update writes is to the remote issue ref.
	Update(ctx context.Context, ref Ref, is Issue) error
	// Inbound verifies and decodes a webhook the remote sent. It returns an
	// error wrapping ErrSignature when the request is not authentic and
	// ErrPayload when the body cannot be decoded.
	Inbound(h http.Header, body []byte, now time.Time) (Inbound, error)
}

// Inbound is a status update decoded from a remote tracker's webhook.
type Inbound struct {
	// DeliveryID identifies the delivery; a repeated delivery is applied once.
	DeliveryID string
	// Ignored, when set, says why the webhook carries no status change
	// (another event, a field edit): it is acknowledged and not applied.
	Ignored string
	// ActionID is the action named by the issue's marker, "" without one.
	ActionID string
	// ExternalID is the remote issue's key.
	ExternalID string
	Status     events.Status
	// UpdatedAt is the remote's own update time of the issue; an update older
	// than the last one applied is stale.
	UpdatedAt time.Time
	ChangedBy string
	Note      string
}

// Errors of Inbound.
var (
	ErrSignature = errors.New("signature verification failed")
	ErrPayload   = errors.New("invalid webhook payload")
)

// RemoteError is an unsuccessful answer of a remote tracker, or no answer.
type RemoteError struct {
	// Op is what was attempted ("create issue").
	Op string
	// Status is the HTTP status, 0 when no answer arrived.
	Status int
	// Message is the remote's error message (or the transport error).
	Message string
	// RetryAfter is how long the remote asked to wait, 0 when it did not say.
	RetryAfter time.Duration
	// Limited says the remote refused because of a rate limit.
	Limited bool
}

func (e *RemoteError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("%s: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.Status, e.Message)
}

// Retryable reports whether the same request may succeed later: no answer
// (timeouts, refused connections), rate limits, 408, 409, 425 and 5xx. Every
// other 4xx (bad credentials, missing project, unknown assignee, required
// field) fails again until someone changes the configuration or the data.
func (e *RemoteError) Retryable() bool {
	switch {
	case e.Status == 0, e.Limited, e.Status >= 500:
		return true
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusConflict, e.Status == http.StatusTooEarly,
		e.Status == http.StatusTooManyRequests:
		return true
	}
	return false
}

// Permanent reports whether err is a remote answer that retrying will not change.
func Permanent(err error) bool {
	var re *RemoteError
	return errors.As(err, &re) && !re.Retryable()
}
