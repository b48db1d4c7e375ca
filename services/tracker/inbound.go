package tracker

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/tracker/bridge"
	store "github.com/afteraction/afteraction/services/tracker/postgres"
)

// Errors of ReceiveWebhook.
var (
	// ErrUnknownBridge: no bridge has the name in the URL.
	ErrUnknownBridge = errors.New("unknown bridge")
)

// Outcomes of ReceiveWebhook beyond the history outcomes.
const (
	// OutcomeIgnored: the webhook carries no status change (another event,
	// a field edit); nothing is recorded.
	OutcomeIgnored Outcome = "ignored"
	// OutcomeUnmatched: no action matches; recorded in the unmatched list.
	OutcomeUnmatched Outcome = "unmatched"
)

// WebhookResult is what ReceiveWebhook did.
type WebhookResult struct {
	Outcome  Outcome `json:"outcome"`
	Reason   string  `json:"reason,omitempty"`
	ActionID string  `json:"action_id,omitempty"`
}

// ReceiveWebhook verifies and applies a webhook that bridge name's remote
// sent. It returns an error wrapping ErrUnknownBridge, bridge.ErrSignature
// (nothing is recorded for a request that is not authentic) or
// bridge.ErrPayload (recorded in the unmatched list); an update that names no
// known action is recorded as unmatched and answered with OutcomeUnmatched,
// one older than the last applied from that remote (by the remote's update
// time) is kept in the history as stale without changing the status, and a
// repeated delivery is a duplicate.
func (s *Service) ReceiveWebhook(ctx context.Context, name string, h http.Header, body []byte) (WebhookResult, error) {
	b, ok := s.bridges.Get(name)
	if !ok {
		return WebhookResult{}, fmt.Errorf("%w: %q", ErrUnknownBridge, name)
	}
	now := s.now()
	subject := "bridge." + name
	in, err := b.Inbound(h, body, now)
	if errors.Is(err, bridge.ErrSignature) {
		s.metrics.inbound.WithLabelValues(name, "unauthenticated").Inc()
		return WebhookResult{}, err
	}
	if err != nil {
		s.metrics.inbound.WithLabelValues(name, "invalid").Inc()
		id := in.DeliveryID
		if id == "" {
			id = "bridge:" + name + ":invalid:" + now.Format("20060102T150405.000000000")
		}
		if _, rerr := s.store.RecordUnmatched(ctx, Unmatched{EventID: id, Subject: subject, Kind: KindInvalid,
			Reason: err.Error(), Tracker: name, ExternalKey: in.ExternalID, Payload: body, ReceivedAt: now}); rerr != nil {
			return WebhookResult{}, rerr
		}
		return WebhookResult{}, err
	}
	if in.Ignored != "" {
		s.metrics.inbound.WithLabelValues(name, "ignored").Inc()
		return WebhookResult{Outcome: OutcomeIgnored, Reason: in.Ignored}, nil
	}
	eventID := "bridge:" + name + ":" + in.DeliveryID
	actionID := in.ActionID
	if actionID == "" && in.ExternalID != "" {
		err := s.store.InTx(ctx, func(tx *store.Tx) error {
			d, err := tx.DeliveryByExternal(ctx, name, in.ExternalID)
			actionID = d.ActionID
			return err
		})
		if err != nil && !errors.Is(err, postgres.ErrNotFound) {
			return WebhookResult{}, err
		}
	}
	unmatched := func(kind string, reason error) (WebhookResult, error) {
		s.metrics.inbound.WithLabelValues(name, "unmatched").Inc()
		s.metrics.unmatched.WithLabelValues(kind).Inc()
		if _, err := s.store.RecordUnmatched(ctx, Unmatched{EventID: eventID, Subject: subject, Kind: kind,
			Reason: reason.Error(), Tracker: name, ActionID: actionID, ExternalKey: in.ExternalID, Payload: body,
			ReceivedAt: now}); err != nil {
			return WebhookResult{}, err
		}
		return WebhookResult{Outcome: OutcomeUnmatched, Reason: reason.Error(), ActionID: actionID}, nil
	}
	if actionID == "" {
		return unmatched(KindUnknownAction, fmt.Errorf("%w: %s issue %s carries no action marker and is linked to no action",
			ErrUnknownAction, name, in.ExternalID))
	}
	u := StatusUpdate{EventID: eventID, ActionID: actionID, Tracker: name,
		ExternalKey: in.ExternalID, Status: in.Status, Note: in.Note, ChangedAt: in.UpdatedAt, ChangedBy: in.ChangedBy,
		RemoteUpdatedAt: in.UpdatedAt}
	res, err := s.ApplyStatus(ctx, u)
	if errors.Is(err, ErrInvalidTransition) && in.Status == events.StatusInProgress {
		// A finished action whose issue was reopened: reopen it here too
		// (done and won't-do may only become open), then resume the work.
		reopen := u
		reopen.EventID, reopen.Status = eventID+":reopen", events.StatusOpen
		if _, err := s.ApplyStatus(ctx, reopen); err != nil && !errors.Is(err, ErrInvalidTransition) {
			return WebhookResult{}, err
		}
		res, err = s.ApplyStatus(ctx, u)
	}
	switch {
	case errors.Is(err, ErrUnknownAction):
		return unmatched(KindUnknownAction, err)
	case errors.Is(err, ErrInvalidTransition):
		return unmatched(KindInvalidTransition, err)
	case errors.Is(err, ErrLinkConflict):
		return unmatched(KindLinkConflict, err)
	case err != nil:
		return WebhookResult{}, err
	}
	s.metrics.inbound.WithLabelValues(name, string(res.Outcome)).Inc()
	s.log.Info("bridge webhook applied", zap.String("bridge", name), zap.String("event_id", eventID),
		zap.String("action_id", actionID), zap.String("outcome", string(res.Outcome)))
	return WebhookResult{Outcome: res.Outcome, ActionID: actionID}, nil
}
