package review

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/httpapi"
)

const libraryToken = "report-token-for-the-console"

// fakeReportService answers the report service's library routes and records
// what it was asked.
type fakeReportService struct {
	mu      sync.Mutex
	queries []url.Values
	paths   []string
}

func (f *fakeReportService) serve(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+libraryToken {
				http.Error(w, "unauthorised", http.StatusUnauthorized)
				return
			}
			f.mu.Lock()
			f.queries, f.paths = append(f.queries, r.URL.Query()), append(f.paths, r.URL.Path)
			f.mu.Unlock()
			h(w, r)
		}
	}
	mux.HandleFunc("GET /v1/library", auth(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("severity") == "urgent" {
			httpapi.WriteError(w, r, httpapi.NewProblem(http.StatusBadRequest, "invalid parameter", "",
				httpapi.FieldError{Field: "severity", Reason: "not a known severity"}))
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"entries": []map[string]any{{
			"incident_id": "0195a3c2-7f41-7b8e-9d2a-4c6e8f1a2b3c", "report_id": "0195b1e4-5a6b-7c8d-9e0f-1a2b3c4d5e6f",
			"latest_version": 2, "title": "MFA fatigue <script>alert(1)</script>", "summary": "A push-bombed approver.",
			"lessons":  "Number matching stops push bombing.\nReport odd prompts.\nThird.\nFourth lesson not shown.",
			"category": "phishing", "subcategory": "mfa_fatigue", "severity": "high", "tags": []string{"mfa"},
			"assets": []string{"vpn"}, "closed_at": "2026-03-05T10:12:37Z"}}})
	}))
	pdf := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/pdf")
			_, _ = w.Write([]byte(body))
		}
	}
	mux.HandleFunc("GET /v1/reports/{id}/versions/{n}/pdf", auth(pdf("%PDF-1.7 report")))
	mux.HandleFunc("GET /v1/library/training-pack.pdf", auth(pdf("%PDF-1.7 training pack")))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *fixture) serveConsoleWith(console ConsoleConfig) string {
	f.t.Helper()
	console.Accounts = testAccounts(f.t)
	h := Routes(f.svc, httpapi.Tokens{}, console, prometheus.NewRegistry(), nil,
		zaptest.NewLogger(f.t, zaptest.Level(zap.ErrorLevel)))
	srv := httptest.NewServer(h)
	f.t.Cleanup(srv.Close)
	return srv.URL
}

// TestConsoleCaseLibrary searches the case library from the console: the
// form's fields reach GET /v1/library (the "until" day included), results
// are escaped and link to the report PDF and the category's training pack,
// which the console fetches with its report service token; a refused query
// names the field; without REVIEW_REPORT_URL the page says so.
func TestConsoleCaseLibrary(t *testing.T) {
	t.Parallel()
	f := setup(t)
	report := &fakeReportService{}
	base := f.serveConsoleWith(ConsoleConfig{Library: &CaseLibrary{BaseURL: report.serve(t), Token: libraryToken}})
	c := newClient(t, base)

	if code := c.get("/console/library"); code != http.StatusOK || !strings.Contains(c.last, "Sign in") {
		t.Fatalf("signed out: %d, want the sign-in page", code)
	}
	if code := c.login("fac", facilitatorPassword); code != http.StatusOK {
		t.Fatalf("sign in: %d", code)
	}
	if code := c.get("/console/library"); code != http.StatusOK {
		t.Fatalf("library: %d %s", code, c.last)
	}
	c.contains("empty library page", `id="library-search"`, `name="asset"`, `name="from"`, `href="/console/library"`)
	if strings.Contains(c.last, `id="results"`) || len(report.queries) != 0 {
		t.Errorf("the empty form searched: %d queries", len(report.queries))
	}

	q := url.Values{"q": {"mfa fatigue"}, "category": {"phishing"}, "severity": {"high"}, "tag": {"mfa"}, "asset": {"vpn"},
		"from": {"2026-03-01"}, "to": {"2026-03-31"}, "search": {"1"}}
	if code := c.get("/console/library?" + q.Encode()); code != http.StatusOK {
		t.Fatalf("search: %d %s", code, c.last)
	}
	got := report.queries[0]
	for k, want := range map[string]string{"q": "mfa fatigue", "category": "phishing", "severity": "high", "tag": "mfa",
		"asset": "vpn", "from": "2026-03-01", "to": "2026-04-01", "search": ""} {
		if got.Get(k) != want {
			t.Errorf("report service got %s=%q, want %q (query %v)", k, got.Get(k), want, got)
		}
	}
	c.contains("results", "1 reviewed incident", "MFA fatigue &lt;script&gt;", "phishing / mfa_fatigue", "5 Mar 2026",
		"Number matching stops push bombing. · Report odd prompts. · Third.",
		`href="/console/library/reports/0195b1e4-5a6b-7c8d-9e0f-1a2b3c4d5e6f/versions/2/pdf"`,
		`href="/console/library/training-pack.pdf?category=phishing"`, `id="category-pack"`)
	if strings.Contains(c.last, "<script>alert") || strings.Contains(c.last, "Fourth lesson") {
		t.Error("the results page shows an unescaped title or more than three lessons")
	}

	for _, get := range []struct{ path, want string }{ // in this order: the training pack is fetched last
		{"/console/library/reports/0195b1e4-5a6b-7c8d-9e0f-1a2b3c4d5e6f/versions/2/pdf", "%PDF-1.7 report"},
		{"/console/library/training-pack.pdf?category=phishing", "%PDF-1.7 training pack"},
	} {
		if code := c.get(get.path); code != http.StatusOK || c.last != get.want {
			t.Errorf("GET %s: %d %q, want the report service's PDF", get.path, code, c.last)
		}
	}
	if last := report.paths[len(report.paths)-1]; last != "/v1/library/training-pack.pdf" || report.queries[len(report.queries)-1].Get("category") != "phishing" {
		t.Errorf("training pack fetched as %s?%v", last, report.queries[len(report.queries)-1])
	}
	if code := c.get("/console/library/reports/not-a-uuid/versions/1/pdf"); code != http.StatusNotFound {
		t.Errorf("a malformed report id: %d, want 404", code)
	}

	if code := c.get("/console/library?severity=urgent"); code != http.StatusUnprocessableEntity {
		t.Errorf("refused search: %d, want 422", code)
	}
	c.contains("refused search", `id="library-error"`, "severity: not a known severity")
	if code := c.get("/console/library?to=yesterday"); code != http.StatusUnprocessableEntity {
		t.Errorf("bad date: %d, want 422", code)
	}
	c.contains("bad date", "to: want a date")

	plain := newClient(t, f.serveConsoleWith(ConsoleConfig{}))
	plain.login("fac", facilitatorPassword)
	if code := plain.get("/console/library?q=x"); code != http.StatusOK {
		t.Fatalf("unconfigured: %d", code)
	}
	plain.contains("unconfigured library", `id="not-configured"`, "REVIEW_REPORT_URL")
}

func TestLoadConfigReportURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url, token, wantErr string
	}{
		{"", "", ""},
		{"http://report:8083", "tok", ""},
		{"http://report:8083", "", "REVIEW_REPORT_TOKEN"},
		{"report:8083", "tok", "REVIEW_REPORT_URL"},
	} {
		env := map[string]string{"REVIEW_INVITE_SECRET": "config-test-secret-0123", "REVIEW_REPORT_URL": tc.url,
			"REVIEW_REPORT_TOKEN": tc.token}
		cfg, err := LoadConfig(func(k string) string { return env[k] })
		switch {
		case tc.wantErr == "" && (err != nil || cfg.ReportURL != tc.url || cfg.ReportToken != tc.token):
			t.Errorf("%q/%q: %+v, %v", tc.url, tc.token, cfg.ReportURL, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q/%q: err %v, want one naming %s", tc.url, tc.token, err, tc.wantErr)
		}
	}
	for _, f := range (Config{ReportURL: "http://report:8083", ReportToken: "s3cret-token"}).fields() {
		if strings.Contains(f.String, "s3cret") {
			t.Errorf("the start-up log shows the report token in %s", f.Key)
		}
	}
}

// TestBrowserCaseLibrary searches the case library in a real browser: from
// the console's navigation to the search form, results with their links.
func TestBrowserCaseLibrary(t *testing.T) {
	t.Parallel()
	f := setup(t)
	report := &fakeReportService{}
	base := f.serveConsoleWith(ConsoleConfig{Library: &CaseLibrary{BaseURL: report.serve(t), Token: libraryToken}})
	ctx, shot := browser(t)
	run(t, ctx, "facilitator signs in", signIn(base, "fac", facilitatorPassword))
	var results, pdfHref, packHref string
	run(t, ctx, "search the library",
		chromedp.Click(byID("nav-library"), chromedp.ByQuery),
		chromedp.WaitVisible(byID("library-search"), chromedp.ByQuery),
		chromedp.SendKeys(byID("q"), "mfa", chromedp.ByQuery),
		chromedp.SetValue(byID("severity"), "high", chromedp.ByQuery),
		chromedp.SendKeys(byID("category"), "phishing", chromedp.ByQuery),
		chromedp.Submit(byID("q"), chromedp.ByQuery),
		chromedp.WaitVisible(byID("results"), chromedp.ByQuery),
		chromedp.Text(byID("results"), &results, chromedp.ByQuery),
		chromedp.AttributeValue(`a.report-pdf`, "href", &pdfHref, nil, chromedp.ByQuery),
		chromedp.AttributeValue(byID("category-pack"), "href", &packHref, nil, chromedp.ByQuery),
	)
	if os.Getenv("REVIEW_SCREENSHOTS") != "" {
		shot("library")
	}
	if !strings.Contains(results, "MFA fatigue <script>alert(1)</script>") || !strings.Contains(results, "training pack of phishing") {
		t.Errorf("results = %q", results)
	}
	if pdfHref != "/console/library/reports/0195b1e4-5a6b-7c8d-9e0f-1a2b3c4d5e6f/versions/2/pdf" ||
		packHref != "/console/library/training-pack.pdf?category=phishing" {
		t.Errorf("links: report %q, training pack %q", pdfHref, packHref)
	}
	if got := report.queries[0]; got.Get("q") != "mfa" || got.Get("severity") != "high" || got.Get("category") != "phishing" {
		t.Errorf("the report service was asked %v", got)
	}
}
