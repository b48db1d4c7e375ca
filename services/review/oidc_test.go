package review

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauth2-proxy/mockoidc"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/httpapi"
)

// TestConsoleSingleSignOn signs in through an in-process OpenID Connect
// provider (authorization code + PKCE): roles come from the groups claim, a
// person without a console role is refused, and a callback that did not
// start here is refused.
func TestConsoleSingleSignOn(t *testing.T) {
	t.Parallel()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	f := setup(t)
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	cfg := m.Config()
	o, err := NewOIDC(context.Background(), OIDCConfig{Issuer: cfg.Issuer, ClientID: cfg.ClientID,
		ClientSecret: cfg.ClientSecret, RedirectURL: srv.URL + "/console/oidc/callback"})
	if err != nil {
		t.Fatal(err)
	}
	handler = Routes(f.svc, httpapi.Tokens{}, ConsoleConfig{OIDC: o}, prometheus.NewRegistry(), nil,
		zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)))

	m.QueueUser(&mockoidc.MockUser{Subject: "42", Email: "olga@example.com", PreferredUsername: "olga",
		EmailVerified: true, Groups: []string{"staff", "facilitator"}})
	c := newClient(t, srv.URL)
	if code := c.get("/console/login"); code != http.StatusOK || !strings.Contains(c.last, `id="sso"`) {
		t.Fatalf("sign-in page: %d, want a single sign-on link", code)
	}
	if code := c.get("/console/login/oidc?next=/console"); code != http.StatusOK || !strings.Contains(c.last, "Signed in") {
		t.Fatalf("single sign-on: %d %s", code, c.last)
	}
	if code := c.get("/console"); code != http.StatusOK || !strings.Contains(c.last, "olga (facilitator)") {
		t.Fatalf("console after single sign-on: %d, want olga as facilitator", code)
	}

	m.QueueUser(&mockoidc.MockUser{Subject: "43", PreferredUsername: "nobody", Groups: []string{"staff"}})
	c2 := newClient(t, srv.URL)
	if code := c2.get("/console/login/oidc"); code != http.StatusForbidden || !strings.Contains(c2.last, "no console role") {
		t.Errorf("person without a console role: %d, want 403", code)
	}
	if code := newClient(t, srv.URL).get("/console/oidc/callback?code=x&state=y"); code != http.StatusForbidden {
		t.Errorf("callback that did not start here: %d, want 403", code)
	}
}
