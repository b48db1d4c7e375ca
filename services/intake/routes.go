package intake

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/services/intake/postgres"
)

// maxBody bounds every request body intake reads.
const maxBody = 1 << 20

// Roles allowed to read and to submit.
var (
	readRoles   = []string{"compliance", "facilitator", "admin"}
	submitRoles = []string{"intake", "admin"}
)

// guard restricts a handler to bearer tokens of the given roles.
type guard func(h http.Handler, roles ...string) http.Handler

// openGuard lets every request through (AUTH_DISABLED=true, development only).
func openGuard(h http.Handler, _ ...string) http.Handler { return h }

// routes is intake's whole HTTP surface.
func (s *Service) routes(auth guard, reg *prometheus.Registry, checks map[string]httpapi.Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/incidents", auth(http.HandlerFunc(s.listIncidents), readRoles...))
	mux.Handle("GET /v1/incidents/{id}", auth(http.HandlerFunc(s.getIncident), readRoles...))
	mux.Handle("GET /v1/incidents/{id}/revisions/{n}/raw", auth(http.HandlerFunc(s.getRawRevision), readRoles...))
	mux.Handle("GET /v1/rejects", auth(http.HandlerFunc(s.listRejects), readRoles...))
	mux.Handle("GET /v1/rejects/{id}", auth(http.HandlerFunc(s.getReject), readRoles...))
	mux.Handle("POST /v1/incidents", auth(http.HandlerFunc(s.postIncident), submitRoles...))
	// No bearer token: package webhook verifies each system's own signature.
	mux.HandleFunc("POST /v1/webhooks/{source}", s.postWebhook)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	httpapi.HealthWithLog(mux, checks, s.log.Named("http"))
	return httpapi.Logged(mux, s.log.Named("http"))
}

func (s *Service) getIncident(w http.ResponseWriter, r *http.Request) {
	inc, err := s.store.Incident(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeStoreError(w, r, err, "incident")
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, inc)
}

func (s *Service) listIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := parseLimit(w, r)
	if !ok {
		return
	}
	list, err := s.store.Incidents(r.Context(), postgres.Filter{Source: q.Get("source"), ExternalID: q.Get("external_id"), Limit: limit})
	if err != nil {
		s.writeStoreError(w, r, err, "incidents")
		return
	}
	if list == nil {
		list = []postgres.Incident{}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"incidents": list})
}

func (s *Service) getRawRevision(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusBadRequest, "invalid revision", "",
			httpapi.FieldError{Field: "n", Reason: "must be a positive integer"}))
		return
	}
	raw, err := s.store.RawRevision(r.Context(), r.PathValue("id"), n)
	if err != nil {
		s.writeStoreError(w, r, err, "revision")
		return
	}
	// The bytes are whatever the sender sent: never let a browser interpret them.
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", "attachment")
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	_, _ = w.Write(raw)
}

func (s *Service) listRejects(w http.ResponseWriter, r *http.Request) {
	limit, ok := parseLimit(w, r)
	if !ok {
		return
	}
	list, err := s.store.Rejects(r.Context(), limit)
	if err != nil {
		s.writeStoreError(w, r, err, "rejects")
		return
	}
	if list == nil {
		list = []postgres.Reject{}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"rejects": list})
}

func (s *Service) getReject(w http.ResponseWriter, r *http.Request) {
	rej, err := s.store.Reject(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeStoreError(w, r, err, "reject")
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, rej)
}

// postIncident accepts a canonical incident: a bad one is kept in rejects and
// answered with a problem naming the fields; a good one is published on
// incidents.closed.<source> and answered 202 with its id.
func (s *Service) postIncident(w http.ResponseWriter, r *http.Request) {
	body, err := httpapi.ReadBody(r, maxBody)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	rev, err := ParseAt(body, "", "", s.now())
	var inv *Invalid
	switch {
	case errors.As(err, &inv):
		s.writeInvalid(w, r, "POST /v1/incidents", peekSource(body), body, inv, nil)
		return
	case err != nil:
		s.log.Error("check incident failed", zap.Error(err))
		httpapi.WriteError(w, r, err)
		return
	}
	s.accept(w, r, rev, nil)
}

// accept publishes rev and answers 202, or 503 when NATS did not take it.
func (s *Service) accept(w http.ResponseWriter, r *http.Request, rev *postgres.Revision, d *delivery) {
	id, err := s.submit(r.Context(), rev, d)
	if err != nil {
		s.log.Error("publish incident failed", zap.String("incident_id", rev.IncidentID), zap.Error(err))
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusServiceUnavailable, "not accepted",
			"the incident could not be queued; retry later"))
		return
	}
	httpapi.WriteJSON(w, http.StatusAccepted, map[string]string{"incident_id": id, "status": "accepted"})
}

// writeInvalid records a refused request in rejects and answers with a
// problem naming the fields and the reject id.
func (s *Service) writeInvalid(w http.ResponseWriter, r *http.Request, route, source string, body []byte, inv *Invalid, headers map[string][]string) {
	p := httpapi.NewProblem(inv.Status, inv.Reason, "")
	for _, pr := range inv.Problems {
		p.Errors = append(p.Errors, httpapi.FieldError{Field: pr.Field, Reason: pr.Reason})
	}
	rejectID, err := s.Reject(r.Context(), route, source, body, inv, headers)
	if err != nil {
		// The caller still learns what is wrong; only the record is missing.
		s.log.Error("record reject failed", zap.String("route", route), zap.Error(err))
	} else {
		p.Extra = map[string]any{"reject_id": rejectID}
	}
	httpapi.WriteProblem(w, r, p)
}

func (s *Service) writeStoreError(w http.ResponseWriter, r *http.Request, err error, what string) {
	if errors.Is(err, postgres.ErrNotFound) {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusNotFound, what+" not found", ""))
		return
	}
	if errors.Is(err, postgres.ErrPurged) {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusGone, what+" purged", err.Error()))
		return
	}
	s.log.Error("read "+what+" failed", zap.Error(err))
	httpapi.WriteError(w, r, err)
}

func parseLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusBadRequest, "invalid query", "",
			httpapi.FieldError{Field: "limit", Reason: "must be an integer from 1 to 1000"}))
		return 0, false
	}
	return n, true
}
