package intake

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/services/intake/postgres"
	"github.com/afteraction/afteraction/services/intake/webhook"
)

// postWebhook turns a ticketing system's native webhook into a canonical
// incident (package webhook verifies its signature and maps it). A closing
// event is published like POST /v1/incidents (202 accepted); an event that
// closes nothing is answered 202 ignored; a request that fails is kept in
// rejects, its secrets stripped, and answered with the problem. A request
// failing authentication (401, 404), which anyone can send, is kept only as a
// bounded digest, and beyond the rate limits not at all (429).
func (s *Service) postWebhook(w http.ResponseWriter, r *http.Request) {
	source := r.PathValue("source")
	route := "POST /v1/webhooks/" + source
	body, err := httpapi.ReadBody(r, maxBody)
	if err != nil {
		httpapi.WriteError(w, r, err)
		return
	}
	var res webhook.Result
	if allowed, known := s.unsigned[source]; known && !allowed && s.webhooks.Sources[source].Secret == "" {
		err = httpapi.NewProblem(http.StatusUnauthorized, "unsigned webhook refused", fmt.Sprintf(
			"source %q has no signing secret configured: set WEBHOOK_%s_SECRET, or list it in WEBHOOK_UNSIGNED_SOURCES",
			source, strings.ToUpper(source)))
	} else {
		res, err = webhook.Handle(s.webhooks, source, r.Header, body, s.now())
	}
	if err != nil {
		var p *httpapi.Problem
		if !errors.As(err, &p) {
			p = httpapi.NewProblem(http.StatusInternalServerError, "internal error", "the error was logged")
			s.log.Error("webhook failed", zap.String("source", source), zap.Error(err))
		}
		keep, headers := 0, redactHeaders(r.Header) // an authenticated sender's request is kept whole
		if p.Status == http.StatusUnauthorized || p.Status == http.StatusNotFound {
			// Anyone who reaches intake can send these: keep a bounded digest, and only so many.
			if limited := s.limitUnauthenticated(w, r, source, p.Status); limited {
				return
			}
			keep, headers = unauthenticatedKeepBytes, boundHeaders(headers)
		}
		inv := &Invalid{Status: p.Status, Reason: p.Title}
		if p.Detail != "" {
			inv.Reason += ": " + p.Detail
		}
		for _, fe := range p.Errors {
			inv.Problems = append(inv.Problems, events.Problem{Field: fe.Field, Reason: fe.Reason})
		}
		out := *p
		if rejectID, err := s.reject(r.Context(), route, source, body, inv, headers, keep); err != nil {
			s.log.Error("record reject failed", zap.String("route", route), zap.Error(err))
		} else {
			out.Extra = map[string]any{"reject_id": rejectID}
			for k, v := range p.Extra {
				out.Extra[k] = v
			}
		}
		httpapi.WriteProblem(w, r, &out)
		return
	}
	if res.Incident == nil {
		httpapi.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "ignored", "reason": res.Ignored})
		return
	}
	// Times out of range cannot even be marshalled (year 10000): check first.
	if inv := Check(res.Incident, "", s.now()); inv != nil {
		s.writeInvalid(w, r, route, source, body, inv, redactHeaders(r.Header))
		return
	}
	canonical, err := json.Marshal(res.Incident)
	if err != nil {
		s.log.Error("marshal webhook incident failed", zap.String("source", source), zap.Error(err))
		httpapi.WriteError(w, r, err)
		return
	}
	// The same checks as every other way in (schema, closure before detection, ...).
	rev, err := ParseAt(canonical, "", "", s.now())
	var inv *Invalid
	switch {
	case errors.As(err, &inv):
		s.writeInvalid(w, r, route, source, body, inv, redactHeaders(r.Header))
		return
	case err != nil:
		s.log.Error("check webhook incident failed", zap.String("source", source), zap.Error(err))
		httpapi.WriteError(w, r, err)
		return
	}
	s.accept(w, r, rev, &delivery{source: source, headers: redactHeaders(r.Header), body: body})
}

// redactHeaders copies h for keeping with a reject, with the values of
// credentials and signatures replaced.
func redactHeaders(h http.Header) map[string][]string {
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		lk := strings.ToLower(k)
		secret := false
		for _, s := range []string{"authorization", "signature", "token", "secret", "cookie", "api-key", "apikey", "password"} {
			secret = secret || strings.Contains(lk, s)
		}
		if secret {
			out[k] = []string{"[redacted]"}
			continue
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Bounds of what a reject keeps of a request failing authentication: the
// first bytes of the body (with the size and SHA-256 of the whole), and at
// most so many headers, values and characters (Go accepts 1 MB of headers).
const (
	unauthenticatedKeepBytes = 256
	maxKeptHeaders           = 32
	maxKeptHeaderValues      = 4
	maxKeptHeaderRunes       = 256
)

// boundHeaders returns h with at most maxKeptHeaders names (the first in
// sorted order), maxKeptHeaderValues values each, each cut to
// maxKeptHeaderRunes characters; a name "…" says how many were left out.
func boundHeaders(h map[string][]string) map[string][]string {
	names := slices.Sorted(maps.Keys(h))
	out := make(map[string][]string, min(len(names), maxKeptHeaders)+1)
	for _, k := range names[:min(len(names), maxKeptHeaders)] {
		vs := h[k][:min(len(h[k]), maxKeptHeaderValues)]
		kept := make([]string, len(vs))
		for i, v := range vs {
			kept[i] = postgres.Clean(v, maxKeptHeaderRunes)
		}
		out[postgres.Clean(k, maxKeptHeaderRunes)] = kept
	}
	if n := len(names) - maxKeptHeaders; n > 0 {
		out["…"] = []string{fmt.Sprintf("%d more headers not kept", n)}
	}
	return out
}

// Outcomes of a webhook request that failed authentication (metric labels).
const (
	unauthKept           = "kept"
	unauthAddressLimited = "address_limited"
	unauthSourceLimited  = "source_limited"
)

// limitUnauthenticated takes a token for a request of source that failed
// authentication with status, from its client address's bucket and its
// source's (one bucket for every unknown source). When either is empty it
// answers 429 with Retry-After and returns true: the request is not kept.
func (s *Service) limitUnauthenticated(w http.ResponseWriter, r *http.Request, source string, status int) bool {
	now := s.now()
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	if status == http.StatusNotFound {
		source = "(unknown source)"
	}
	outcome := unauthKept
	ok, wait := s.unauthByAddress.allow(addr, now)
	if !ok {
		outcome = unauthAddressLimited
	} else if ok, wait = s.unauthBySource.allow(source, now); !ok {
		outcome = unauthSourceLimited
	}
	s.metrics.unauth.WithLabelValues(outcome).Inc()
	if outcome == unauthKept {
		return false
	}
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.log.Debug("unauthenticated webhook rate-limited", zap.String("source", source), zap.String("client", addr),
		zap.String("limit", outcome))
	httpapi.WriteProblem(w, r, httpapi.NewProblem(http.StatusTooManyRequests, "too many unauthenticated requests",
		fmt.Sprintf("too many webhook requests that failed authentication (%s); retry in %d s", outcome, secs)))
	return true
}
