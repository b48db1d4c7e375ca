package review

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/afteraction/afteraction/services/review/postgres"
)

// OIDCConfig configures single sign-on with the organisation's OpenID
// Connect provider (authorization code flow with PKCE).
type OIDCConfig struct {
	Issuer, ClientID, ClientSecret string
	// RedirectURL is the console's callback, <public URL>/console/oidc/callback.
	RedirectURL string
	// Scopes requested besides openid (default profile, email, groups).
	Scopes []string
	// RolesClaim names the claim (a string or a list) whose values that are
	// console roles (facilitator, approver, compliance, admin) the person gets.
	RolesClaim string
}

// OIDC signs people in with an OpenID Connect provider.
type OIDC struct {
	verifier   *oidc.IDTokenVerifier
	oauth      oauth2.Config
	rolesClaim string
}

// NewOIDC discovers the provider at cfg.Issuer; it fails when the provider
// does not answer or its discovery document is invalid.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	p, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc provider %s: %w", cfg.Issuer, err)
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"profile", "email", "groups"}
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "groups"
	}
	return &OIDC{
		verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: p.Endpoint(),
			RedirectURL: cfg.RedirectURL, Scopes: append([]string{oidc.ScopeOpenID}, scopes...)},
		rolesClaim: cfg.RolesClaim,
	}, nil
}

const oidcCookie = "afteraction_oidc"

// oidcState is what the browser keeps (HttpOnly cookie, 10 minutes) between
// leaving for the provider and coming back.
type oidcState struct {
	State, Nonce, Verifier, Next string
}

// oidcStart sends the browser to the provider with a fresh state, nonce and
// PKCE verifier.
func (h *handlers) oidcStart(w http.ResponseWriter, r *http.Request) {
	if h.console.OIDC == nil {
		h.message(w, http.StatusNotFound, "Single sign-on not configured", "Sign in with your console account instead.")
		return
	}
	st := oidcState{State: newSecret(), Nonce: newSecret(), Verifier: oauth2.GenerateVerifier(), Next: safeNext(r.URL.Query().Get("next"))}
	b, _ := json.Marshal(st)
	// Lax, not Strict: the provider sends the browser back cross-site.
	c := h.cookie(oidcCookie, base64.RawURLEncoding.EncodeToString(b), 600)
	c.SameSite = http.SameSiteLaxMode
	http.SetCookie(w, c)
	http.Redirect(w, r, h.console.OIDC.oauth.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
}

// oidcCallback checks the state, redeems the code with the PKCE verifier,
// verifies the ID token and its nonce, and starts a session with the roles
// of the configured claim.
func (h *handlers) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := h.console.OIDC
	if o == nil {
		h.message(w, http.StatusNotFound, "Single sign-on not configured", "")
		return
	}
	refuse := func(why string, err error) {
		h.log.Info("console single sign-on refused", zap.String("why", why), zap.Error(err))
		h.message(w, http.StatusForbidden, "Sign-in failed", why)
	}
	var st oidcState
	c, err := r.Cookie(oidcCookie)
	if err == nil {
		var b []byte
		if b, err = base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			err = json.Unmarshal(b, &st)
		}
	}
	if err != nil || st.State == "" || subtle.ConstantTimeCompare([]byte(st.State), []byte(r.URL.Query().Get("state"))) != 1 {
		refuse("The sign-in expired or did not start here. Please sign in again.", err)
		return
	}
	http.SetCookie(w, h.cookie(oidcCookie, "", -1))
	if e := r.URL.Query().Get("error"); e != "" {
		refuse("The identity provider refused the sign-in ("+e+").", nil)
		return
	}
	tok, err := o.oauth.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		refuse("The identity provider did not confirm the sign-in.", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := o.verifier.Verify(r.Context(), raw)
	if err != nil || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		refuse("The identity token is not valid.", errors.Join(err, errors.New("or nonce mismatch")))
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		refuse("The identity token is not valid.", err)
		return
	}
	str := func(k string) string { s, _ := claims[k].(string); return s }
	login := str("preferred_username")
	if login == "" {
		login = str("email")
	}
	if login == "" {
		login = idt.Subject
	}
	name := str("name")
	if name == "" {
		name = login
	}
	var roles []string
	switch v := claims[o.rolesClaim].(type) {
	case string:
		roles = strings.Fields(v)
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				roles = append(roles, s)
			}
		}
	}
	roles = slices.DeleteFunc(roles, func(r string) bool { return !slices.Contains(consoleRoles, r) })
	if len(roles) == 0 {
		refuse(fmt.Sprintf("Your account has no console role (claim %q must hold facilitator, approver, compliance or admin).", o.rolesClaim), nil)
		return
	}
	now := h.svc.now()
	id := newSecret()
	s := postgres.Session{IDHash: hashSecret(id), Login: "oidc:" + login, Name: name, Email: str("email"),
		Roles: roles, CSRF: newSecret(), CreatedAt: now, ExpiresAt: now.Add(h.console.SessionTTL)}
	if err := h.svc.store.CreateSession(r.Context(), s); err != nil {
		h.log.Error("create console session", zap.Error(err))
		h.message(w, http.StatusInternalServerError, "Sign-in failed", "Something went wrong. Please try again in a moment.")
		return
	}
	h.log.Info("console single sign-on", zap.String("login", s.Login), zap.Strings("roles", roles))
	http.SetCookie(w, h.cookie(sessionCookie, id, int(h.console.SessionTTL.Seconds())))
	// A page, not a redirect: after the provider's cross-site redirect the
	// browser would not send the SameSite=Strict session cookie yet.
	h.render(w, http.StatusOK, "signed_in", st.Next)
}
