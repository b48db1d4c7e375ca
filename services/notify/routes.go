package notify

// The notify service's whole HTTP surface.
//
//	GET  /v1/deliveries?review_id=&action_id=&status=&reason=&recipient=&channel=&limit=
//	                                     facilitator, compliance, admin
//	GET  /v1/deliveries/{id}             facilitator, compliance, admin
//	POST /v1/deliveries/{id}/retry       facilitator, admin (a dead delivery, once more)
//	GET  /healthz, /readyz, /metrics     no token
//
// A delivery is shown with its recipient, reason, channel, subject, status,
// attempts and last error; never with its body, which may hold an invitation link.

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/services/notify/postgres"
)

const (
	defaultLimit = 100
	maxLimit     = 1000
)

// DeliveryView is a delivery as the API shows it.
type DeliveryView struct {
	DeliveryID    string         `json:"delivery_id"`
	Reason        string         `json:"reason"`
	Channel       string         `json:"channel"`
	Recipient     events.Contact `json:"recipient"`
	ReviewID      string         `json:"review_id,omitempty"`
	ActionID      string         `json:"action_id,omitempty"`
	Subject       string         `json:"subject"`
	Calendar      string         `json:"calendar,omitempty"`
	Status        string         `json:"status"`
	Attempts      int            `json:"attempts"`
	Reclaims      int            `json:"reclaims"`
	LastError     string         `json:"last_error,omitempty"`
	CreatedAt     time.Time      `json:"created_at"`
	NextAttemptAt *time.Time     `json:"next_attempt_at,omitempty"`
	SentAt        *time.Time     `json:"sent_at,omitempty"`
	DeadAt        *time.Time     `json:"dead_at,omitempty"`
}

func viewOf(d postgres.Delivery) DeliveryView {
	v := DeliveryView{DeliveryID: d.ID, Reason: d.Reason, Channel: d.Channel,
		Recipient: events.Contact{Name: d.RecipientName, Email: d.RecipientEmail}, ReviewID: d.ReviewID, ActionID: d.ActionID,
		Subject: d.Subject, Calendar: d.ICSMethod, Status: d.Status, Attempts: d.Attempts, Reclaims: d.Reclaims,
		LastError: d.LastError, CreatedAt: d.CreatedAt, SentAt: d.SentAt, DeadAt: d.DeadAt}
	if d.Status == postgres.StatusPending {
		next := d.NextAttemptAt
		v.NextAttemptAt = &next
	}
	return v
}

type api struct {
	svc *Service
	log *zap.Logger
}

// Handler returns the notify service's HTTP handler.
func Handler(svc *Service, tokens httpapi.Tokens, gatherer prometheus.Gatherer, checks map[string]httpapi.Check, log *zap.Logger) http.Handler {
	a := &api{svc: svc, log: log.Named("http")}
	mux := http.NewServeMux()
	readers := []string{"facilitator", "compliance"}
	mux.Handle("GET /v1/deliveries", tokens.Require(http.HandlerFunc(a.list), readers...))
	mux.Handle("GET /v1/deliveries/{id}", tokens.Require(http.HandlerFunc(a.get), readers...))
	mux.Handle("POST /v1/deliveries/{id}/retry", tokens.Require(http.HandlerFunc(a.retry), "facilitator"))
	httpapi.HealthWithLog(mux, checks, a.log)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return httpapi.Logged(mux, a.log)
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := postgres.Filter{ReviewID: q.Get("review_id"), ActionID: q.Get("action_id"), Status: q.Get("status"),
		Reason: q.Get("reason"), Recipient: q.Get("recipient"), Channel: q.Get("channel"), Limit: defaultLimit}
	var problems []httpapi.FieldError
	for _, p := range []struct{ field, value string }{{"review_id", f.ReviewID}, {"action_id", f.ActionID}} {
		if p.value != "" && uuid.Validate(p.value) != nil {
			problems = append(problems, httpapi.FieldError{Field: p.field, Reason: "must be a UUID"})
		}
	}
	if f.Status != "" && !slices.Contains([]string{postgres.StatusPending, postgres.StatusSending, postgres.StatusSent, postgres.StatusDead, postgres.StatusWithdrawn}, f.Status) {
		problems = append(problems, httpapi.FieldError{Field: "status", Reason: "one of pending, sending, sent, dead, withdrawn"})
	}
	if f.Reason != "" && !slices.Contains(Reasons(), Reason(f.Reason)) {
		problems = append(problems, httpapi.FieldError{Field: "reason", Reason: "unknown reason"})
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			problems = append(problems, httpapi.FieldError{Field: "limit", Reason: "an integer from 1 to 1000"})
		}
		f.Limit = n
	}
	if len(problems) > 0 {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusBadRequest, "invalid query", "", problems...))
		return
	}
	ds, err := a.svc.store.Deliveries(r.Context(), f)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := make([]DeliveryView, 0, len(ds))
	for _, d := range ds {
		out = append(out, viewOf(d))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	id, ok := deliveryID(w, r)
	if !ok {
		return
	}
	d, err := a.svc.store.Delivery(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, viewOf(d))
}

func (a *api) retry(w http.ResponseWriter, r *http.Request) {
	id, ok := deliveryID(w, r)
	if !ok {
		return
	}
	if err := a.svc.store.Requeue(r.Context(), id, a.svc.now()); err != nil {
		a.fail(w, r, err)
		return
	}
	a.svc.Wake()
	d, err := a.svc.store.Delivery(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, viewOf(d))
}

func deliveryID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if uuid.Validate(id) != nil {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusNotFound, "not found", "no such delivery"))
		return "", false
	}
	return id, true
}

func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, postgres.ErrNotFound) {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusNotFound, "not found", "no such delivery (or, for retry, not dead)"))
		return
	}
	a.log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	httpapi.WriteError(w, r, err)
}
