package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/events"
)

// The console's case library page: a search form over the report service's
// GET /v1/library (NIST SP 800-61 §3.4.1, lessons learned as training
// material), with each report's PDF and each category's training pack
// fetched from the report service on the user's behalf (the browser holds a
// console session, not a report service token).

// CaseLibrary reads the report service's case library.
type CaseLibrary struct {
	// BaseURL is the report service (REVIEW_REPORT_URL), e.g. http://report:8083.
	BaseURL string
	// Token is a report service API token of role compliance or facilitator
	// (REVIEW_REPORT_TOKEN).
	Token string
	// Client defaults to one with a 30 s timeout.
	Client *http.Client
}

// LibraryEntry is one search result, as GET /v1/library returns it.
type LibraryEntry struct {
	IncidentID    string    `json:"incident_id"`
	ReportID      string    `json:"report_id"`
	LatestVersion int       `json:"latest_version"`
	Title         string    `json:"title"`
	Summary       string    `json:"summary"`
	Findings      string    `json:"findings"`
	Lessons       string    `json:"lessons"`
	Category      string    `json:"category"`
	Subcategory   string    `json:"subcategory"`
	Severity      string    `json:"severity"`
	Exercise      bool      `json:"exercise"`
	Tags          []string  `json:"tags"`
	Assets        []string  `json:"assets"`
	ClosedAt      time.Time `json:"closed_at"`
}

// LibraryQuery is the console's search form: free text, category, severity,
// tag, asset and a closure period (dates, UTC, the end day included).
type LibraryQuery struct {
	Text, Category, Severity, Tag, Asset, From, To string
}

// ErrLibraryQuery wraps the report service's refusal of a query (HTTP 400);
// its message names the field.
var ErrLibraryQuery = errors.New("the case library refused the search")

// values is q as GET /v1/library parameters (the "to" day included).
func (q LibraryQuery) values() (url.Values, error) {
	v := url.Values{}
	for k, s := range map[string]string{"q": q.Text, "category": q.Category, "severity": q.Severity, "tag": q.Tag,
		"asset": q.Asset, "from": q.From} {
		if s = strings.TrimSpace(s); s != "" {
			v.Set(k, s)
		}
	}
	if to := strings.TrimSpace(q.To); to != "" {
		d, err := time.Parse(time.DateOnly, to)
		if err != nil {
			return nil, fmt.Errorf("%w: to: want a date (YYYY-MM-DD)", ErrLibraryQuery)
		}
		v.Set("to", d.AddDate(0, 0, 1).Format(time.DateOnly))
	}
	if from := v.Get("from"); from != "" {
		if _, err := time.Parse(time.DateOnly, from); err != nil {
			return nil, fmt.Errorf("%w: from: want a date (YYYY-MM-DD)", ErrLibraryQuery)
		}
	}
	return v, nil
}

func (c *CaseLibrary) client() *http.Client {
	if c.Client != nil {
		return c.Client
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// get does an authenticated GET of path on the report service.
func (c *CaseLibrary) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("report service: %w", err)
	}
	return resp, nil
}

// Search returns the entries matching q, best match first for a text query,
// otherwise newest closure first. A query the report service refuses wraps
// ErrLibraryQuery with its reason.
func (c *CaseLibrary) Search(ctx context.Context, q LibraryQuery) ([]LibraryEntry, error) {
	v, err := q.values()
	if err != nil {
		return nil, err
	}
	resp, err := c.get(ctx, "/v1/library?"+v.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("report service: read library: %w", err)
	}
	if resp.StatusCode == http.StatusBadRequest {
		var p struct {
			Errors []struct{ Field, Reason string } `json:"errors"`
			Detail string                           `json:"detail"`
		}
		_ = json.Unmarshal(body, &p)
		var reasons []string
		for _, e := range p.Errors {
			reasons = append(reasons, e.Field+": "+e.Reason)
		}
		if len(reasons) == 0 {
			reasons = append(reasons, p.Detail)
		}
		return nil, fmt.Errorf("%w: %s", ErrLibraryQuery, strings.Join(reasons, "; "))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("report service: GET /v1/library: %s", resp.Status)
	}
	var out struct {
		Entries []LibraryEntry `json:"entries"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("report service: decode library: %w", err)
	}
	return out.Entries, nil
}

// copyPDF streams the PDF at path on the report service to w.
func (c *CaseLibrary) copyPDF(ctx context.Context, w http.ResponseWriter, path, filename string) error {
	resp, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("report service: GET %s: %s", path, resp.Status)
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, no-store")
	_, err = io.Copy(w, resp.Body)
	return err
}

type libraryRow struct {
	LibraryEntry
	Closed, PDFPath, PackPath, Lessons string
}

type libraryPage struct {
	User       user
	Q          LibraryQuery
	Severities []events.Severity
	Configured bool
	Searched   bool
	Error      string
	Rows       []libraryRow
	// PackPath is the training pack of the category searched for.
	PackPath string
}

// trainingPackPath is the console's path of a category's training pack.
func trainingPackPath(category string) string {
	return "/console/library/training-pack.pdf?" + url.Values{"category": {category}}.Encode()
}

// consoleLibrary shows the search form and, once a search was made (any
// parameter set, or search=1), its results.
func (h *handlers) consoleLibrary(w http.ResponseWriter, r *http.Request, u user) {
	v := r.URL.Query()
	p := libraryPage{User: u, Configured: h.console.Library != nil,
		Q: LibraryQuery{Text: v.Get("q"), Category: v.Get("category"), Severity: v.Get("severity"), Tag: v.Get("tag"),
			Asset: v.Get("asset"), From: v.Get("from"), To: v.Get("to")},
		Severities: []events.Severity{events.SeverityCritical, events.SeverityHigh, events.SeverityMedium,
			events.SeverityLow, events.SeverityInformational}}
	p.Searched = len(v) > 0
	if !p.Configured || !p.Searched {
		h.render(w, http.StatusOK, "console_library", p)
		return
	}
	entries, err := h.console.Library.Search(r.Context(), p.Q)
	status := http.StatusOK
	switch {
	case errors.Is(err, ErrLibraryQuery):
		p.Error, status = strings.TrimPrefix(err.Error(), ErrLibraryQuery.Error()+": "), http.StatusUnprocessableEntity
	case err != nil:
		h.log.Error("search the case library", zap.Error(err))
		p.Error, status = "The case library could not be searched: the report service did not answer. Try again in a moment.",
			http.StatusBadGateway
	}
	if c := strings.TrimSpace(p.Q.Category); c != "" {
		p.PackPath = trainingPackPath(c)
	}
	for _, e := range entries {
		row := libraryRow{LibraryEntry: e, Closed: e.ClosedAt.UTC().Format("2 Jan 2006"),
			PDFPath: "/console/library/reports/" + e.ReportID + "/versions/" + strconv.Itoa(e.LatestVersion) + "/pdf",
			Lessons: firstLines(e.Lessons, 3)}
		if e.Category != "" {
			row.PackPath = trainingPackPath(e.Category)
		}
		p.Rows = append(p.Rows, row)
	}
	h.render(w, status, "console_library", p)
}

// firstLines is the first n non-empty lines of s, joined by " · ".
func firstLines(s string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && len(out) < n {
			out = append(out, l)
		}
	}
	return strings.Join(out, " · ")
}

// consoleLibraryPDF serves a report version's PDF from the report service.
func (h *handlers) consoleLibraryPDF(w http.ResponseWriter, r *http.Request, _ user) {
	id, n := r.PathValue("id"), r.PathValue("n")
	if _, err := uuid.Parse(id); err != nil {
		h.message(w, http.StatusNotFound, "Not found", "There is no such report.")
		return
	}
	if v, err := strconv.Atoi(n); err != nil || v < 1 {
		h.message(w, http.StatusNotFound, "Not found", "There is no such report version.")
		return
	}
	h.libraryPDF(w, r, "/v1/reports/"+id+"/versions/"+n+"/pdf", "report-"+id+"-v"+n+".pdf")
}

// consoleTrainingPack serves a category's training pack from the report service.
func (h *handlers) consoleTrainingPack(w http.ResponseWriter, r *http.Request, _ user) {
	category := strings.TrimSpace(r.URL.Query().Get("category"))
	if category == "" || len(category) > 200 {
		h.message(w, http.StatusBadRequest, "No category", "Choose the category of the training pack (at most 200 characters).")
		return
	}
	h.libraryPDF(w, r, "/v1/library/training-pack.pdf?"+url.Values{"category": {category}}.Encode(),
		"training-pack-"+category+".pdf")
}

func (h *handlers) libraryPDF(w http.ResponseWriter, r *http.Request, path, filename string) {
	if h.console.Library == nil {
		h.message(w, http.StatusNotFound, "Case library not configured", "Set REVIEW_REPORT_URL and REVIEW_REPORT_TOKEN.")
		return
	}
	err := h.console.Library.copyPDF(r.Context(), w, path, filename)
	switch {
	case errors.Is(err, ErrNotFound):
		h.message(w, http.StatusNotFound, "Not found", "The report service has no such document.")
	case err != nil && w.Header().Get("Content-Type") == "application/pdf":
		h.log.Error("copy a library pdf", zap.String("path", path), zap.Error(err)) // the body has started: too late for a page
	case err != nil:
		h.log.Error("fetch a library pdf", zap.String("path", path), zap.Error(err))
		h.message(w, http.StatusBadGateway, "Not available", "The report service did not answer. Try again in a moment.")
	}
}
