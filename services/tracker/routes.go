package tracker

// The tracker's whole HTTP surface.
//
//	GET  /v1/actions?incident=&status=&owner=&overdue=true&limit=  compliance, facilitator, tracker, admin
//	GET  /v1/actions/{id}                                           compliance, facilitator, tracker, admin
//	POST /v1/actions/{id}/status                                    tracker, facilitator, admin
//	GET  /v1/unmatched?tracker=&limit=                              compliance, facilitator, tracker, admin
//	GET  /v1/bridges                                                compliance, facilitator, tracker, admin
//	GET  /v1/bridges/deliveries?action=&state=&limit=               compliance, facilitator, tracker, admin
//	GET  /v1/bridges/failures?bridge=&limit=                        compliance, facilitator, tracker, admin
//	POST /v1/bridges/{name}/webhook                                 the remote's signature (no token)
//	POST /v1/bridges/{name}/actions/{id}/retry                      tracker, facilitator, admin
//	GET  /healthz, /readyz, /metrics                                no token

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/services/tracker/bridge"
)

const (
	defaultLimit = 100
	maxLimit     = 1000
	// maxStatusBody bounds POST /v1/actions/{id}/status (a note is at most 20000 characters).
	maxStatusBody = 128 << 10
)

var (
	readRoles  = []string{"compliance", "facilitator", "tracker"}
	writeRoles = []string{"tracker", "facilitator"}
)

type api struct {
	svc    *Service
	tokens httpapi.Tokens
	log    *zap.Logger
}

// routes returns the tracker's HTTP handler.
func routes(svc *Service, tokens httpapi.Tokens, gatherer prometheus.Gatherer, checks map[string]httpapi.Check, log *zap.Logger) http.Handler {
	a := &api{svc: svc, tokens: tokens, log: log.Named("http")}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/actions", tokens.Require(http.HandlerFunc(a.listActions), readRoles...))
	mux.Handle("GET /v1/actions/{id}", tokens.Require(http.HandlerFunc(a.getAction), readRoles...))
	mux.Handle("POST /v1/actions/{id}/status", tokens.Require(http.HandlerFunc(a.postStatus), writeRoles...))
	mux.Handle("GET /v1/unmatched", tokens.Require(http.HandlerFunc(a.listUnmatched), readRoles...))
	mux.Handle("GET /v1/bridges", tokens.Require(http.HandlerFunc(a.listBridges), readRoles...))
	mux.Handle("GET /v1/bridges/deliveries", tokens.Require(http.HandlerFunc(a.listDeliveries), readRoles...))
	mux.Handle("GET /v1/bridges/failures", tokens.Require(http.HandlerFunc(a.listFailures), readRoles...))
	mux.HandleFunc("POST /v1/bridges/{name}/webhook", a.bridgeWebhook)
	mux.Handle("POST /v1/bridges/{name}/actions/{id}/retry", tokens.Require(http.HandlerFunc(a.retryDelivery), writeRoles...))
	httpapi.HealthWithLog(mux, checks, a.log)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return httpapi.Logged(mux, a.log)
}

func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *httpapi.Problem
	if !errors.As(err, &p) {
		a.log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	}
	httpapi.WriteError(w, r, err)
}

func invalid(field, reason string) *httpapi.Problem {
	return httpapi.NewProblem(http.StatusUnprocessableEntity, "invalid request", "",
		httpapi.FieldError{Field: field, Reason: reason})
}

func limitParam(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, invalid("limit", fmt.Sprintf("want an integer from 1 to %d", maxLimit))
	}
	return n, nil
}

// GET /v1/actions: {"actions": [...]}.
func (a *api) listActions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{IncidentID: q.Get("incident"), Status: events.Status(q.Get("status")), Owner: q.Get("owner")}
	if f.IncidentID != "" {
		if _, err := uuid.Parse(f.IncidentID); err != nil {
			a.fail(w, r, invalid("incident", "not a UUID"))
			return
		}
	}
	if f.Status != "" && !f.Status.Valid() {
		a.fail(w, r, invalid("status", "want open, in_progress, done or wont_do"))
		return
	}
	switch q.Get("overdue") {
	case "", "false":
	case "true":
		f.OverdueOn = a.svc.Today()
	default:
		a.fail(w, r, invalid("overdue", "want true or false"))
		return
	}
	limit, err := limitParam(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f.Limit = limit
	actions, err := a.svc.Actions(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if actions == nil {
		actions = []Action{}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"actions": actions})
}

// actionWithHistory is the body of GET /v1/actions/{id}.
type actionWithHistory struct {
	Action
	History []HistoryEntry `json:"history"`
	// Deliveries are the action's issues in remote trackers.
	Deliveries []Delivery `json:"deliveries"`
}

func (a *api) action(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		a.fail(w, r, httpapi.NewProblem(http.StatusNotFound, "action not found", fmt.Sprintf("no action %q", id)))
		return "", false
	}
	return id, true
}

// GET /v1/actions/{id}: the action with its history, oldest first, and its
// deliveries to remote trackers.
func (a *api) getAction(w http.ResponseWriter, r *http.Request) {
	id, ok := a.action(w, r)
	if !ok {
		return
	}
	act, history, err := a.svc.Action(r.Context(), id)
	if errors.Is(err, postgres.ErrNotFound) {
		a.fail(w, r, httpapi.NewProblem(http.StatusNotFound, "action not found", "no action "+id))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if history == nil {
		history = []HistoryEntry{}
	}
	ds, err := a.svc.Deliveries(r.Context(), id, "", maxLimit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []Delivery{}
	}
	httpapi.WriteJSON(w, http.StatusOK, actionWithHistory{Action: act, History: history, Deliveries: ds})
}

// statusRequest is the body of POST /v1/actions/{id}/status: action.status.v1
// without action_id; tracker is optional (absent for changes made here).
type statusRequest struct {
	Status      events.Status `json:"status"`
	Note        string        `json:"note,omitempty"`
	ChangedAt   string        `json:"changed_at,omitempty"`
	ChangedBy   string        `json:"changed_by,omitempty"`
	Tracker     string        `json:"tracker,omitempty"`
	ExternalKey string        `json:"external_key,omitempty"`
}

var trackerName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// update checks req against the rules of action.status.v1 and returns the
// update it asks for, or a 422 problem naming the first bad field.
func (req statusRequest) update(actionID string, now time.Time) (StatusUpdate, error) {
	u := StatusUpdate{ActionID: actionID, Status: req.Status, Note: req.Note, ChangedBy: req.ChangedBy,
		Tracker: req.Tracker, ExternalKey: req.ExternalKey, ChangedAt: now}
	switch {
	case req.Status == "":
		return u, invalid("status", "required")
	case !req.Status.Valid():
		return u, invalid("status", "want open, in_progress, done or wont_do")
	case utf8.RuneCountInString(req.Note) > 20000:
		return u, invalid("note", "longer than 20000 characters")
	case utf8.RuneCountInString(req.ChangedBy) > 200:
		return u, invalid("changed_by", "longer than 200 characters")
	case req.Tracker != "" && !trackerName.MatchString(req.Tracker):
		return u, invalid("tracker", "want 1-32 of a-z, 0-9, _ and -, starting with a letter or digit")
	case utf8.RuneCountInString(req.ExternalKey) > 200:
		return u, invalid("external_key", "longer than 200 characters")
	case req.ExternalKey != "" && req.Tracker == "":
		return u, invalid("tracker", "required with external_key")
	}
	if req.ChangedAt != "" {
		t, err := time.Parse(time.RFC3339Nano, req.ChangedAt)
		if err != nil {
			return u, invalid("changed_at", "want an RFC 3339 date-time")
		}
		u.ChangedAt = t
	}
	return u, nil
}

// POST /v1/actions/{id}/status: applies the change by the rules of the NATS
// path and answers {"outcome": ..., "action": {...}}. An Idempotency-Key
// header makes a repeated request a no-op (outcome "duplicate").
func (a *api) postStatus(w http.ResponseWriter, r *http.Request) {
	id, ok := a.action(w, r)
	if !ok {
		return
	}
	var req statusRequest
	if _, err := httpapi.ReadJSON(r, maxStatusBody, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	u, err := req.update(id, a.svc.now())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if u.ChangedBy == "" {
		u.ChangedBy = "api:" + a.tokens.Role(r)
	}
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if len(key) > 200 {
			a.fail(w, r, invalid("Idempotency-Key", "longer than 200 characters"))
			return
		}
		u.EventID = "http:" + id + ":" + key
	} else {
		u.EventID = "http:" + uuid.NewString()
	}
	res, err := a.svc.ApplyStatus(r.Context(), u)
	switch {
	case errors.Is(err, ErrUnknownAction):
		a.fail(w, r, httpapi.NewProblem(http.StatusNotFound, "action not found", "no action "+id))
		return
	case errors.Is(err, ErrInvalidTransition), errors.Is(err, ErrLinkConflict):
		p := httpapi.NewProblem(http.StatusConflict, "status change refused", err.Error())
		a.fail(w, r, p)
		return
	case err != nil:
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"outcome": res.Outcome, "action": res.Action})
}

// unmatchedJSON is one entry of GET /v1/unmatched: the payload as JSON when
// it is JSON, as text otherwise.
type unmatchedJSON struct {
	Unmatched
	Payload     json.RawMessage `json:"payload,omitempty"`
	PayloadText string          `json:"payload_text,omitempty"`
}

// GET /v1/unmatched: {"unmatched": [...]}, newest first.
func (a *api) listUnmatched(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	us, err := a.svc.Unmatched(r.Context(), r.URL.Query().Get("tracker"), limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]unmatchedJSON, len(us))
	for i, u := range us {
		out[i].Unmatched = u
		if json.Valid(u.Payload) {
			out[i].Payload = u.Payload
		} else {
			out[i].PayloadText = string(u.Payload)
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"unmatched": out})
}

// maxWebhookBody bounds a tracker's webhook (GitHub sends at most 25 MB, but
// an issue event is a few tens of KB).
const maxWebhookBody = 1 << 20

// GET /v1/bridges: {"bridges": [{"name", "kind"}]}.
func (a *api) listBridges(w http.ResponseWriter, r *http.Request) {
	out := []map[string]string{}
	for _, name := range a.svc.bridges.Names() {
		b, _ := a.svc.bridges.Get(name)
		out = append(out, map[string]string{"name": name, "kind": b.Kind()})
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"bridges": out})
}

// GET /v1/bridges/deliveries: {"deliveries": [...]}, newest change first.
func (a *api) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	action, state := q.Get("action"), q.Get("state")
	if action != "" {
		if _, err := uuid.Parse(action); err != nil {
			a.fail(w, r, invalid("action", "not a UUID"))
			return
		}
	}
	switch state {
	case "", "pending", "delivered", "failed":
	default:
		a.fail(w, r, invalid("state", "want pending, delivered or failed"))
		return
	}
	limit, err := limitParam(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ds, err := a.svc.Deliveries(r.Context(), action, state, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []Delivery{}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
}

// GET /v1/bridges/failures: {"failures": [...]}, newest first, each with the
// remote's HTTP status and message.
func (a *api) listFailures(w http.ResponseWriter, r *http.Request) {
	limit, err := limitParam(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	fs, err := a.svc.Failures(r.Context(), r.URL.Query().Get("bridge"), limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if fs == nil {
		fs = []Failure{}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"failures": fs})
}

// POST /v1/bridges/{name}/webhook: a remote tracker's webhook, verified by
// that tracker's own scheme. 200 {"outcome", "action_id"} when applied,
// stale, a duplicate, ignored or recorded as unmatched; 401 when the
// signature does not verify; 404 for an unknown bridge; 422 for a payload
// that cannot be decoded (recorded in the unmatched list).
func (a *api) bridgeWebhook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, err := httpapi.ReadBody(r, maxWebhookBody)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	res, err := a.svc.ReceiveWebhook(r.Context(), name, r.Header, body)
	switch {
	case errors.Is(err, ErrUnknownBridge):
		a.fail(w, r, httpapi.NewProblem(http.StatusNotFound, "unknown bridge", err.Error()))
	case errors.Is(err, bridge.ErrSignature):
		a.fail(w, r, httpapi.NewProblem(http.StatusUnauthorized, "webhook not authentic", err.Error()))
	case errors.Is(err, bridge.ErrPayload):
		a.fail(w, r, httpapi.NewProblem(http.StatusUnprocessableEntity, "invalid webhook payload", err.Error()))
	case err != nil:
		a.fail(w, r, err)
	default:
		httpapi.WriteJSON(w, http.StatusOK, res)
	}
}

// POST /v1/bridges/{name}/actions/{id}/retry: delivers the action to the
// bridge again now (after fixing what made the remote refuse it); 200 with
// the delivery, 404 when the action is not delivered there.
func (a *api) retryDelivery(w http.ResponseWriter, r *http.Request) {
	id, ok := a.action(w, r)
	if !ok {
		return
	}
	d, err := a.svc.RetryDelivery(r.Context(), id, r.PathValue("name"))
	if errors.Is(err, ErrNoDelivery) {
		a.fail(w, r, httpapi.NewProblem(http.StatusNotFound, "delivery not found", err.Error()))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, d)
}
