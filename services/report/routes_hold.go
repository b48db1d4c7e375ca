package report

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/afteraction/afteraction/pkg/httpapi"
)

// holdRoutes registers the legal-hold surface; only the compliance role (and
// admin) may see or change a hold:
//
//	GET    /v1/incidents/{id}/legal-hold  retention date, hold in force, hold history, purges
//	PUT    /v1/incidents/{id}/legal-hold  body {"by", "reason"}: place a hold (201; 200 if one is in force)
//	DELETE /v1/incidents/{id}/legal-hold  body {"by", "reason"}: lift it (200; 409 if none)
func (a *API) holdRoutes(mux *http.ServeMux) {
	if a.Evidence == nil {
		return
	}
	handle := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, a.Tokens.Require(h, "compliance")) }
	handle("GET /v1/incidents/{id}/legal-hold", a.getHold)
	handle("PUT /v1/incidents/{id}/legal-hold", a.changeHold)
	handle("DELETE /v1/incidents/{id}/legal-hold", a.changeHold)
}

// holdRequest is the body of PUT and DELETE /v1/incidents/{id}/legal-hold.
type holdRequest struct {
	// By names who decided (a person, a legal matter's owner).
	By string `json:"by"`
	// Reason says why (e.g. the matter or case number).
	Reason string `json:"reason"`
}

func (a *API) incidentParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		a.fail(w, r, badParam("id", "not a UUID"))
		return "", false
	}
	return id.String(), true
}

func (a *API) holdFail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		err = httpapi.NewProblem(http.StatusNotFound, "not found", "the report service has not seen this incident")
	case errors.Is(err, ErrHoldState):
		err = httpapi.NewProblem(http.StatusConflict, "no legal hold", err.Error())
	}
	a.fail(w, r, err)
}

func (a *API) getHold(w http.ResponseWriter, r *http.Request) {
	id, ok := a.incidentParam(w, r)
	if !ok {
		return
	}
	st, err := a.Evidence.Status(r.Context(), id)
	if err != nil {
		a.holdFail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
}

func (a *API) changeHold(w http.ResponseWriter, r *http.Request) {
	id, ok := a.incidentParam(w, r)
	if !ok {
		return
	}
	var req holdRequest
	if _, err := httpapi.ReadJSON(r, 16<<10, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	var problems []httpapi.FieldError
	for _, f := range []struct {
		name, value string
		max         int
	}{{"by", req.By, MaxHoldByRunes}, {"reason", req.Reason, MaxHoldReasonRunes}} {
		if strings.TrimSpace(f.value) == "" || utf8.RuneCountInString(f.value) > f.max {
			problems = append(problems, httpapi.FieldError{Field: f.name, Reason: "required, at most " + strconv.Itoa(f.max) + " characters"})
		}
	}
	if len(problems) > 0 {
		a.fail(w, r, httpapi.NewProblem(http.StatusUnprocessableEntity, "invalid legal hold request", "", problems...))
		return
	}
	by := strings.TrimSpace(req.By) + " (via " + a.caller(r) + ")"
	if r.Method == http.MethodDelete {
		st, err := a.Evidence.LiftHold(r.Context(), id, by, req.Reason)
		if err != nil {
			a.holdFail(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, st)
		return
	}
	st, changed, err := a.Evidence.PlaceHold(r.Context(), id, by, req.Reason)
	if err != nil {
		a.holdFail(w, r, err)
		return
	}
	status := http.StatusOK
	if changed {
		status = http.StatusCreated
	}
	httpapi.WriteJSON(w, status, st)
}
