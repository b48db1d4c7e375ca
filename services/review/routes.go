package review

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
)

// maxBody bounds every request body (JSON or form).
const maxBody = 64 << 10

// Roles allowed on the facilitator and read endpoints (admin always is).
const (
	roleFacilitator = "facilitator"
	roleCompliance  = "compliance"
)

// Routes returns the review service's whole HTTP surface:
//
//	GET  /v1/reviews?incident_id=              facilitator, compliance, admin (invitations: facilitator, admin)
//	GET  /v1/reviews/{id}                      facilitator, compliance, admin (with questions and responses;
//	                                           invitations: facilitator, admin)
//	GET  /v1/reviews/{id}/questions            invitation token of the review, facilitator, admin
//	PUT  /v1/reviews/{id}/responses/{pid}      invitation token of that participant, facilitator, admin
//	POST /v1/reviews/{id}/complete             facilitator, admin
//	POST /v1/reviews/{id}/amendments           facilitator, admin (completed reviews only)
//	GET  /v1/reviews/{id}/meeting              facilitator, compliance, admin (debrief meeting, see meeting.go)
//	PUT|DELETE /v1/reviews/{id}/meeting        facilitator, admin (schedule or change | cancel)
//	PUT  /v1/reviews/{id}/meeting/minutes      facilitator, admin (attendance and minutes)
//	POST /v1/reviews/{id}/participants         facilitator, admin: invite a person (name, email, role)
//	POST /v1/reviews/{id}/participants/{pid}/{resend|revoke|remove}   facilitator, admin
//	POST /v1/reviews/{id}/approval             approver, admin: {"decision": "approve"|"reject", "reason"}
//	GET  /review/{id}?token=                   participant web form (invitation token)
//	POST /review/{id}?token=                   form: save a draft (action=draft) or submit
//	GET  /console, /console/reviews/{id}       facilitator console (session; see console.go)
//	GET, POST /console/login; POST /console/logout
//	GET  /console/library[?q=&category=&severity=&tag=&asset=&from=&to=]  the case library (library.go), with
//	     .../reports/{id}/versions/{n}/pdf and .../training-pack.pdf?category= fetched from the report service
//	POST /console/reviews/{id}/participants[/{pid}/{resend|revoke|remove}], .../signoff, .../approval, .../amendments
//	GET  /healthz, /readyz, /metrics
func Routes(svc *Service, tokens httpapi.Tokens, console ConsoleConfig, metrics prometheus.Gatherer, checks map[string]httpapi.Check, log *zap.Logger) http.Handler {
	if console.SessionTTL <= 0 {
		console.SessionTTL = 12 * time.Hour
	}
	if console.MaxFailures <= 0 {
		console.MaxFailures = 5
	}
	if console.FailureWindow <= 0 {
		console.FailureWindow = 15 * time.Minute
	}
	h := &handlers{svc: svc, tokens: tokens, console: console, log: log.Named("http")}
	mux := http.NewServeMux()
	readers := []string{roleFacilitator, roleCompliance}
	mux.Handle("GET /v1/reviews", tokens.Require(http.HandlerFunc(h.listReviews), readers...))
	mux.Handle("GET /v1/reviews/{id}", tokens.Require(http.HandlerFunc(h.getReview), readers...))
	mux.HandleFunc("GET /v1/reviews/{id}/questions", h.getQuestions)
	mux.HandleFunc("PUT /v1/reviews/{id}/responses/{participant_id}", h.putResponse)
	mux.Handle("POST /v1/reviews/{id}/complete", tokens.Require(http.HandlerFunc(h.complete), roleFacilitator))
	mux.Handle("POST /v1/reviews/{id}/amendments", tokens.Require(http.HandlerFunc(h.amend), roleFacilitator))
	mux.Handle("GET /v1/reviews/{id}/meeting", tokens.Require(http.HandlerFunc(h.getMeeting), readers...))
	mux.Handle("PUT /v1/reviews/{id}/meeting", tokens.Require(http.HandlerFunc(h.putMeeting), roleFacilitator))
	mux.Handle("DELETE /v1/reviews/{id}/meeting", tokens.Require(http.HandlerFunc(h.cancelMeeting), roleFacilitator))
	mux.Handle("PUT /v1/reviews/{id}/meeting/minutes", tokens.Require(http.HandlerFunc(h.putMinutes), roleFacilitator))
	mux.Handle("POST /v1/reviews/{id}/participants", tokens.Require(http.HandlerFunc(h.addParticipant), roleFacilitator))
	mux.Handle("POST /v1/reviews/{id}/participants/{participant_id}/{change}", tokens.Require(http.HandlerFunc(h.changeParticipant), roleFacilitator))
	mux.Handle("POST /v1/reviews/{id}/approval", tokens.Require(http.HandlerFunc(h.approval), RoleApprover))
	mux.HandleFunc("GET /review/{id}", h.form)
	mux.HandleFunc("POST /review/{id}", h.submitForm)
	mux.Handle("GET /{$}", http.RedirectHandler("/console", http.StatusSeeOther))
	mux.HandleFunc("GET /console/login", h.loginForm)
	mux.HandleFunc("POST /console/login", h.login)
	mux.HandleFunc("GET /console/login/oidc", h.oidcStart)
	mux.HandleFunc("GET /console/oidc/callback", h.oidcCallback)
	mux.HandleFunc("POST /console/logout", h.page(h.logout))
	mux.HandleFunc("GET /console", h.page(h.consoleList))
	mux.HandleFunc("GET /console/reviews/{id}", h.page(h.consoleReview))
	mux.HandleFunc("GET /console/library", h.page(h.consoleLibrary))
	mux.HandleFunc("GET /console/library/reports/{id}/versions/{n}/pdf", h.page(h.consoleLibraryPDF))
	mux.HandleFunc("GET /console/library/training-pack.pdf", h.page(h.consoleTrainingPack))
	mux.HandleFunc("POST /console/reviews/{id}/participants", h.page(h.consoleAddParticipant, RoleFacilitator))
	mux.HandleFunc("POST /console/reviews/{id}/participants/{participant_id}/{change}", h.page(h.consoleChangeParticipant, RoleFacilitator))
	mux.HandleFunc("POST /console/reviews/{id}/signoff", h.page(h.consoleSignOff, RoleFacilitator))
	mux.HandleFunc("POST /console/reviews/{id}/approval", h.page(h.consoleApproval, RoleApprover))
	mux.HandleFunc("POST /console/reviews/{id}/amendments", h.page(h.consoleAmend, RoleFacilitator))
	httpapi.HealthWithLog(mux, checks, h.log)
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	return httpapi.Logged(mux, log)
}

type handlers struct {
	svc     *Service
	tokens  httpapi.Tokens
	console ConsoleConfig
	log     *zap.Logger
}

func (h *handlers) listReviews(w http.ResponseWriter, r *http.Request) {
	incidentID := r.URL.Query().Get("incident_id")
	if incidentID != "" && uuid.Validate(incidentID) != nil {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusBadRequest, "invalid query", "",
			httpapi.FieldError{Field: "incident_id", Reason: "must be a UUID"}))
		return
	}
	reviews, err := h.svc.Reviews(r.Context(), incidentID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.seesInvitations(r) {
		for i := range reviews {
			reviews[i] = reviews[i].WithoutInvitations()
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"reviews": reviews})
}

func (h *handlers) getReview(w http.ResponseWriter, r *http.Request) {
	id, ok := h.reviewID(w, r)
	if !ok {
		return
	}
	rv, err := h.svc.Review(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if rv.Responses == nil {
		rv.Responses = []Response{}
	}
	if !h.seesInvitations(r) {
		rv.Review = rv.Review.WithoutInvitations()
	}
	httpapi.WriteJSON(w, http.StatusOK, rv)
}

func (h *handlers) getQuestions(w http.ResponseWriter, r *http.Request) {
	id, ok := h.reviewID(w, r)
	if !ok {
		return
	}
	if _, _, ok := h.authorize(w, r, id, ""); !ok {
		return
	}
	version, qs, err := h.svc.Questions(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"review_id": id, "questionnaire_version": version, "questions": qs})
}

// responseRequest is the body of PUT /v1/reviews/{id}/responses/{participant_id}.
type responseRequest struct {
	Answers []events.Answer `json:"answers"`
}

func (h *handlers) putResponse(w http.ResponseWriter, r *http.Request) {
	id, ok := h.reviewID(w, r)
	if !ok {
		return
	}
	pid := r.PathValue("participant_id")
	if uuid.Validate(pid) != nil {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusNotFound, "not found", "no such participant"))
		return
	}
	by, _, ok := h.authorize(w, r, id, pid)
	if !ok {
		return
	}
	var req responseRequest
	body, err := httpapi.ReadJSON(r, maxBody, &req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	resp, err := h.svc.SubmitResponse(r.Context(), Submission{
		ReviewID: id, ParticipantID: pid, By: by, Channel: ChannelAPI, Answers: req.Answers, Body: body,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
}

func (h *handlers) complete(w http.ResponseWriter, r *http.Request) {
	id, ok := h.reviewID(w, r)
	if !ok {
		return
	}
	var req CompleteRequest
	if _, err := httpapi.ReadJSON(r, maxBody, &req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out, err := h.svc.SignOff(r.Context(), id, "role:"+h.tokens.Role(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if out.Event == nil {
		httpapi.WriteJSON(w, http.StatusAccepted, out)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out.Event)
}

func (h *handlers) amend(w http.ResponseWriter, r *http.Request) {
	id, ok := h.reviewID(w, r)
	if !ok {
		return
	}
	var req AmendRequest
	body, err := httpapi.ReadJSON(r, maxBody, &req)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	done, err := h.svc.Amend(r.Context(), id, "role:"+h.tokens.Role(r), req, body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, done)
}

// seesInvitations reports whether the caller may see participants'
// invitation tokens and form links: whoever holds one can answer as that
// participant, so only those who run reviews (facilitator, admin) get them;
// readers such as compliance see the participants without them.
func (h *handlers) seesInvitations(r *http.Request) bool {
	role := h.tokens.Role(r)
	return role == "admin" || role == roleFacilitator
}

// authorize admits an API caller with the facilitator or admin role, or a
// participant presenting an invitation token for review id (and, when
// participantID is not empty, for that participant). It returns who is
// calling ("role:<role>" or "participant") and the invited participant, or
// writes 401/403 and returns false.
func (h *handlers) authorize(w http.ResponseWriter, r *http.Request, id, participantID string) (by, invited string, ok bool) {
	role := h.tokens.Role(r)
	if role == "admin" || role == roleFacilitator {
		return "role:" + role, "", true
	}
	if tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found && role == "" {
		_, p, err := h.svc.Invitee(r.Context(), id, tok)
		if err != nil && !errors.Is(err, ErrInvalidInvite) && !errors.Is(err, ErrNotFound) {
			h.fail(w, r, err)
			return "", "", false
		}
		if err == nil && (participantID == "" || p.ID == participantID) {
			return "participant", p.ID, true
		}
		if err == nil {
			httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusForbidden, "forbidden",
				"this invitation is for another participant"))
			return "", "", false
		}
	}
	if role != "" {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusForbidden, "forbidden",
			"needs an invitation token for this review, or the facilitator or admin role"))
		return "", "", false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="afteraction"`)
	httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusUnauthorized, "unauthorized",
		"a valid invitation token or API token is required"))
	return "", "", false
}

func (h *handlers) reviewID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if uuid.Validate(id) != nil {
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusNotFound, "not found", "no such review"))
		return "", false
	}
	return strings.ToLower(id), true
}

// fail maps a use-case error to its problem: 404, 409, 422, or a logged 500.
func (h *handlers) fail(w http.ResponseWriter, r *http.Request, err error) {
	var verr *ValidationError
	switch {
	case errors.As(err, &verr):
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusUnprocessableEntity, "invalid request",
			"the request does not fit the review", verr.Problems...))
	case errors.Is(err, ErrNotFound):
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusNotFound, "not found", "no such review or participant"))
	case errors.Is(err, ErrCompleted):
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusConflict, "review completed",
			"the review is completed: correct it with POST /v1/reviews/{id}/amendments"))
	case errors.Is(err, ErrConflict):
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusConflict, "conflict", conflictDetail(err)))
	case errors.Is(err, ErrNotCompleted):
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusConflict, "review not completed",
			"only a completed review can be amended: complete it with POST /v1/reviews/{id}/complete"))
	case errors.Is(err, context.Canceled):
		httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusServiceUnavailable, "shutting down", ""))
	default:
		h.log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		httpapi.WriteError(w, r, err)
	}
}

// conflictDetail is the message of an ErrConflict without the sentinel's text.
func conflictDetail(err error) string {
	return strings.TrimSuffix(err.Error(), ": "+ErrConflict.Error())
}

// addParticipant invites a person by API: {"name", "email", "role"}.
func (h *handlers) addParticipant(w http.ResponseWriter, r *http.Request) {
	id, ok := h.reviewID(w, r)
	if !ok {
		return
	}
	var req NewParticipant
	if _, err := httpapi.ReadJSON(r, maxBody, &req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	p, err := h.svc.AddParticipant(r.Context(), id, "role:"+h.tokens.Role(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusCreated, p)
}

// changeParticipant resends, revokes or removes one participant's invitation by API.
func (h *handlers) changeParticipant(w http.ResponseWriter, r *http.Request) {
	id, ok := h.reviewID(w, r)
	if !ok {
		return
	}
	p, err := h.svc.changeParticipant(r, id, "role:"+h.tokens.Role(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if p == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, p)
}

// approvalRequest is the body of POST /v1/reviews/{id}/approval.
type approvalRequest struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
}

func (h *handlers) approval(w http.ResponseWriter, r *http.Request) {
	id, ok := h.reviewID(w, r)
	if !ok {
		return
	}
	var req approvalRequest
	if _, err := httpapi.ReadJSON(r, maxBody, &req); err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	out, err := h.svc.decide(r.Context(), id, "role:"+h.tokens.Role(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}
