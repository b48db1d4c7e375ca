package review

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/afteraction/afteraction/services/review/postgres"
)

// ConsoleConfig configures the facilitator console's sign-in.
type ConsoleConfig struct {
	// Accounts are the local accounts (nil: nobody can sign in with a password).
	Accounts Accounts
	// SessionTTL is how long a session lasts after sign-in (default 12h).
	SessionTTL time.Duration
	// SecureCookies marks cookies Secure (set when the console is served over TLS).
	SecureCookies bool
	// MaxFailures is how many failed sign-ins per login (and four times as
	// many per client address) within FailureWindow lock further attempts
	// out until the window has passed (defaults 5 and 15 minutes).
	MaxFailures   int
	FailureWindow time.Duration
	// OIDC, when set, offers single sign-on with the organisation's provider.
	OIDC *OIDC
	// Library, when set, backs the case library page (/console/library).
	Library *CaseLibrary
}

const (
	sessionCookie = "afteraction_session"
	loginCookie   = "afteraction_login"
)

// newSecret returns 32 random bytes, base64url-encoded.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func (h *handlers) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: h.console.SecureCookies, SameSite: http.SameSiteStrictMode}
}

// user is the person signed in to the console.
type user struct {
	postgres.Session
}

func (u user) has(role string) bool {
	return slices.Contains(u.Roles, role) || slices.Contains(u.Roles, RoleAdmin)
}

// by is how the user is recorded as the author of a change.
func (u user) by() string { return "person:" + u.Login }

// signedIn returns the user of the request's session cookie, if any.
func (h *handlers) signedIn(r *http.Request) (user, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return user{}, false
	}
	s, err := h.svc.store.Session(r.Context(), hashSecret(c.Value), h.svc.now())
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			h.log.Error("read console session", zap.Error(err))
		}
		return user{}, false
	}
	return user{s}, true
}

// page wraps a console handler: without a session it redirects to the
// sign-in page (GET) or refuses (POST); a POST must carry the session's CSRF
// token; the user needs one of roles (none given: any signed-in user).
func (h *handlers) page(fn func(http.ResponseWriter, *http.Request, user), roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := h.signedIn(r)
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			h.message(w, http.StatusUnauthorized, "Signed out", "Your session has ended. Please sign in again.")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			if err := r.ParseForm(); err != nil {
				h.message(w, http.StatusRequestEntityTooLarge, "Not saved", "The form could not be read (it may be too long).")
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(u.CSRF)) != 1 {
				h.message(w, http.StatusForbidden, "Form expired",
					"This form is not from your current session (missing or wrong CSRF token). Go back, reload the page and try again.")
				return
			}
		}
		if len(roles) > 0 && !slices.ContainsFunc(roles, u.has) {
			h.message(w, http.StatusForbidden, "Not allowed", "Your account may not do this; it needs the role "+strings.Join(roles, " or ")+".")
			return
		}
		fn(w, r, u)
	}
}

type loginPage struct {
	CSRF, Next, Login, Error string
	SSO                      bool
}

func (h *handlers) loginForm(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.signedIn(r); ok {
		http.Redirect(w, r, "/console", http.StatusSeeOther)
		return
	}
	tok := newSecret()
	http.SetCookie(w, h.cookie(loginCookie, tok, 3600))
	h.render(w, http.StatusOK, "login", loginPage{CSRF: tok, Next: safeNext(r.URL.Query().Get("next")), SSO: h.console.OIDC != nil})
}

// safeNext keeps a redirect target inside the console.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/console") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return "/console"
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// login checks the password against the local accounts, throttled per
// login and per client address, and starts a session.
func (h *handlers) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.message(w, http.StatusRequestEntityTooLarge, "Sign-in failed", "The form could not be read.")
		return
	}
	page := loginPage{Next: safeNext(r.PostForm.Get("next")), Login: strings.TrimSpace(r.PostForm.Get("login")), SSO: h.console.OIDC != nil}
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
		h.message(w, http.StatusForbidden, "Form expired",
			"The sign-in form is missing its CSRF token or has expired. Please reload the sign-in page.")
		return
	}
	page.CSRF = c.Value
	now, client := h.svc.now(), clientAddr(r)
	byLogin, byClient, err := h.svc.store.LoginFailures(r.Context(), page.Login, client, now.Add(-h.console.FailureWindow))
	if err != nil {
		h.log.Error("count login failures", zap.Error(err))
		h.message(w, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again in a moment.")
		return
	}
	if byLogin >= h.console.MaxFailures || byClient >= 4*h.console.MaxFailures {
		h.svc.metrics.loginThrottled.Inc()
		w.Header().Set("Retry-After", "900")
		page.Error = "Too many failed sign-ins. Please wait " + h.console.FailureWindow.String() + " and try again."
		h.render(w, http.StatusTooManyRequests, "login", page)
		return
	}
	acct, ok := h.console.Accounts.Authenticate(page.Login, r.PostForm.Get("password"))
	if !ok {
		if err := h.svc.store.RecordLoginFailure(r.Context(), page.Login, client, now, h.console.FailureWindow); err != nil {
			h.log.Error("record login failure", zap.Error(err))
		}
		h.log.Info("console sign-in failed", zap.String("login", page.Login), zap.String("client", client))
		page.Error = "The login or password is not right."
		h.render(w, http.StatusUnauthorized, "login", page)
		return
	}
	id := newSecret()
	s := postgres.Session{IDHash: hashSecret(id), Login: acct.Login, Name: acct.Name, Email: acct.Email,
		Roles: acct.Roles, CSRF: newSecret(), CreatedAt: now, ExpiresAt: now.Add(h.console.SessionTTL)}
	if err := h.svc.store.CreateSession(r.Context(), s); err != nil {
		h.log.Error("create console session", zap.Error(err))
		h.message(w, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again in a moment.")
		return
	}
	h.log.Info("console sign-in", zap.String("login", acct.Login), zap.String("client", client))
	http.SetCookie(w, h.cookie(loginCookie, "", -1))
	http.SetCookie(w, h.cookie(sessionCookie, id, int(h.console.SessionTTL.Seconds())))
	http.Redirect(w, r, page.Next, http.StatusSeeOther)
}

func (h *handlers) logout(w http.ResponseWriter, r *http.Request, u user) {
	if err := h.svc.store.DeleteSession(r.Context(), u.IDHash); err != nil {
		h.log.Error("delete console session", zap.Error(err))
	}
	http.SetCookie(w, h.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}
