package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/afteraction/afteraction/pkg/httpapi"
)

// Issue 9 item 17: /readyz is unauthenticated; it says which dependency is
// unavailable, never why (error text names hosts, users and internals), and
// the reason goes to the log.
func TestReadyzHidesErrorText(t *testing.T) {
	t.Parallel()
	core, logged := observer.New(zap.WarnLevel)
	mux := http.NewServeMux()
	httpapi.HealthWithLog(mux, map[string]httpapi.Check{
		"postgres": func(context.Context) error {
			return errors.New(`failed to connect to host=db.internal user=intake: password authentication failed`)
		},
		"nats": func(context.Context) error { return nil },
	}, zap.New(core))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rec.Code)
	}
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil || strings.Contains(string(body), "db.internal") ||
		strings.Contains(string(body), "password") || got["postgres"] != "unavailable" || got["nats"] != "ok" {
		t.Errorf("body = %s", body)
	}
	if e := logged.FilterMessage("readiness check failed").All(); len(e) != 1 || !strings.Contains(e[0].ContextMap()["error"].(string), "db.internal") {
		t.Errorf("logged = %v, want the reason once in the log", e)
	}
}
