// Package httpapi holds the HTTP conventions every afteraction service shares:
// RFC 9457 problem bodies that name the failing field, strict size-limited JSON
// decoding, bearer tokens scoped to roles, health probes, and a server that
// shuts down gracefully with its context.
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// FieldError says which field of a request is wrong and why.
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Problem is an RFC 9457 problem body.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
	// Extra carries additional members (e.g. reject_id) merged into the body.
	Extra map[string]any `json:"-"`
}

// Error makes a Problem usable as an error.
func (p *Problem) Error() string {
	if len(p.Errors) > 0 {
		return fmt.Sprintf("%s: %s: %s", p.Title, p.Errors[0].Field, p.Errors[0].Reason)
	}
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}

// NewProblem returns a problem with the given status, title and detail.
func NewProblem(status int, title, detail string, fields ...FieldError) *Problem {
	return &Problem{Type: "about:blank", Title: title, Status: status, Detail: detail, Errors: fields}
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	body := map[string]any{"type": p.Type, "title": p.Title, "status": p.Status}
	if p.Detail != "" {
		body["detail"] = p.Detail
	}
	if len(p.Errors) > 0 {
		body["errors"] = p.Errors
	}
	if r != nil {
		body["instance"] = r.URL.Path
	}
	for k, v := range p.Extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// WriteError writes err as a problem: a *Problem as itself, anything else as 500
// without leaking its text (the caller logs it).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var p *Problem
	if errors.As(err, &p) {
		WriteProblem(w, r, p)
		return
	}
	WriteProblem(w, r, NewProblem(http.StatusInternalServerError, "internal error", "the error was logged"))
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ReadBody reads at most limit bytes of r's body; a larger body is a 413 problem.
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, NewProblem(http.StatusBadRequest, "unreadable body", err.Error())
	}
	if int64(len(body)) > limit {
		return nil, NewProblem(http.StatusRequestEntityTooLarge, "body too large",
			fmt.Sprintf("the body exceeds %d bytes", limit))
	}
	return body, nil
}

// DecodeStrict decodes exactly one JSON value from body into dst, refusing
// unknown fields and trailing data. Its errors are 400 problems naming the field.
func DecodeStrict(body []byte, dst any) error {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err)
	}
	if dec.More() {
		return NewProblem(http.StatusBadRequest, "invalid JSON", "trailing data after the JSON value")
	}
	return nil
}

func decodeProblem(err error) *Problem {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return NewProblem(http.StatusBadRequest, "invalid JSON", "",
			FieldError{Field: typeErr.Field, Reason: fmt.Sprintf("expected %s, got JSON %s", typeErr.Type, typeErr.Value)})
	case errors.As(err, &syntaxErr):
		return NewProblem(http.StatusBadRequest, "invalid JSON", fmt.Sprintf("%v at byte %d", err, syntaxErr.Offset))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return NewProblem(http.StatusBadRequest, "invalid JSON", "", FieldError{Field: field, Reason: "unknown field"})
	case errors.Is(err, io.EOF):
		return NewProblem(http.StatusBadRequest, "invalid JSON", "empty body")
	default:
		return NewProblem(http.StatusBadRequest, "invalid JSON", err.Error())
	}
}

// Tokens maps bearer tokens to the role they grant.
type Tokens map[string]string

// ParseTokens reads "role:token,role:token" (the form services take from their
// environment). It fails on an entry without a role or token.
func ParseTokens(s string) (Tokens, error) {
	t := Tokens{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		role, tok, ok := strings.Cut(part, ":")
		if !ok || role == "" || len(tok) < 8 {
			return nil, fmt.Errorf("api token entry %q: want role:token with a token of 8+ characters", maskToken(part))
		}
		t[tok] = role
	}
	return t, nil
}

func maskToken(s string) string {
	role, _, ok := strings.Cut(s, ":")
	if !ok {
		return "***"
	}
	return role + ":***"
}

// Role returns the role granted by r's bearer token, or "" when there is none.
func (t Tokens) Role(r *http.Request) string {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return ""
	}
	for known, role := range t {
		if subtle.ConstantTimeCompare([]byte(known), []byte(tok)) == 1 {
			return role
		}
	}
	return ""
}

// Require wraps h so that only requests whose bearer token grants one of roles
// reach it; others get 401 (no or unknown token) or 403 (wrong role). The role
// "admin" is always allowed.
func (t Tokens) Require(h http.Handler, roles ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role := t.Role(r)
		if role == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="afteraction"`)
			WriteProblem(w, r, NewProblem(http.StatusUnauthorized, "unauthorized", "a bearer token is required"))
			return
		}
		if role == "admin" {
			h.ServeHTTP(w, r)
			return
		}
		for _, want := range roles {
			if role == want {
				h.ServeHTTP(w, r)
				return
			}
		}
		WriteProblem(w, r, NewProblem(http.StatusForbidden, "forbidden",
			fmt.Sprintf("role %q may not do this; needs one of %s", role, strings.Join(roles, ", "))))
	})
}

// Check is one readiness check; it returns nil when the dependency is usable.
type Check func(ctx context.Context) error

// HealthWithLog registers GET /healthz (the process is up) and GET /readyz
// (every check passes within two seconds) on mux. /readyz answers each check's
// name with "ok" or "unavailable", never the error itself: it is
// unauthenticated, and error text names hosts, users and internals. Why a
// check failed is logged instead, at most once a minute per check, where
// operators (and nobody else) can read it.
func HealthWithLog(mux *http.ServeMux, checks map[string]Check, log *zap.Logger) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	var mu sync.Mutex
	logged := map[string]time.Time{}
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		result := map[string]string{}
		status := http.StatusOK
		for name, check := range checks {
			if err := check(ctx); err != nil {
				result[name] = "unavailable"
				status = http.StatusServiceUnavailable
				mu.Lock()
				if time.Since(logged[name]) > time.Minute {
					logged[name] = time.Now()
					log.Warn("readiness check failed", zap.String("check", name), zap.Error(err))
				}
				mu.Unlock()
				continue
			}
			result[name] = "ok"
		}
		WriteJSON(w, status, result)
	})
}

// Serve serves h on ln until ctx is cancelled, then shuts down gracefully,
// letting in-flight requests finish for up to ten seconds.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *zap.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("http listening", zap.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// Listen returns deps' listener when one is given (tests pass 127.0.0.1:0),
// otherwise listens on addr.
func Listen(given net.Listener, addr string) (net.Listener, error) {
	if given != nil {
		return given, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Logged wraps h to log one line per request with method, path, status and duration.
func Logged(h http.Handler, log *zap.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		log.Debug("http request", zap.String("method", r.Method), zap.String("path", r.URL.Path),
			zap.Int("status", sw.status), zap.Duration("took", time.Since(start)))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// ReadJSON reads at most limit bytes of r's body and decodes them strictly
// into dst (see ReadBody and DecodeStrict). It returns the body as received,
// for callers that keep it (audit logs, rejects); its errors are problems.
func ReadJSON(r *http.Request, limit int64, dst any) ([]byte, error) {
	body, err := ReadBody(r, limit)
	if err != nil {
		return nil, err
	}
	return body, DecodeStrict(body, dst)
}
