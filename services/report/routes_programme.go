package report

import (
	"context"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/services/report/pdf"
)

// programmeSeries computes the time series of GET /v1/metrics/programme.
func (a *API) programmeSeries(ctx context.Context, period Period, from, to time.Time) (Programme, error) {
	n := 0
	for start := period.Start(from); start.Before(to); start = period.Next(start) {
		if n++; n > MaxProgrammePeriods {
			return Programme{}, badParam("from", "the window spans more than "+strconv.Itoa(MaxProgrammePeriods)+" periods")
		}
	}
	return ComputeProgramme(ctx, a.Programme, ProgrammeOptions{Period: period, From: from, To: to, Now: time.Now().UTC()})
}

// maxLibraryText bounds the free-text query of GET /v1/library.
const maxLibraryText = 500

func (a *API) library(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := LibraryQuery{Text: v.Get("q"), Category: v.Get("category"), Severity: v.Get("severity"),
		Tag: v.Get("tag"), Asset: v.Get("asset")}
	if len(q.Text) > maxLibraryText {
		a.fail(w, r, badParam("q", "longer than "+strconv.Itoa(maxLibraryText)+" bytes"))
		return
	}
	if q.Severity != "" && !events.Severity(q.Severity).Valid() {
		a.fail(w, r, badParam("severity", "not a known severity"))
		return
	}
	for _, p := range []struct {
		name string
		dst  **time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		t, err := parseWhen(s)
		if err != nil {
			a.fail(w, r, badParam(p.name, "want RFC 3339 or YYYY-MM-DD"))
			return
		}
		*p.dst = &t
	}
	if q.From != nil && q.To != nil && !q.From.Before(*q.To) {
		a.fail(w, r, badParam("from", "must be before to"))
		return
	}
	if s := strings.TrimSpace(v.Get("limit")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLibraryLimit {
			a.fail(w, r, badParam("limit", "a number from 1 to "+strconv.Itoa(MaxLibraryLimit)))
			return
		}
		q.Limit = n
	}
	entries, err := a.Library.SearchLibrary(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"entries": orEmpty(entries)})
}

// trainingPack serves the training pack of one category: its newest
// MaxLibraryLimit library entries, newest first, rendered on request.
func (a *API) trainingPack(w http.ResponseWriter, r *http.Request) {
	category := strings.TrimSpace(r.URL.Query().Get("category"))
	if category == "" || len(category) > 200 {
		a.fail(w, r, badParam("category", "required, at most 200 bytes"))
		return
	}
	entries, err := a.Library.SearchLibrary(r.Context(), LibraryQuery{Category: category, Limit: MaxLibraryLimit})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pack := pdf.TrainingPack{Category: category, GeneratedAt: time.Now().UTC().Truncate(time.Second)}
	for _, e := range entries {
		pack.Cases = append(pack.Cases, pdf.TrainingCase{Title: e.Title, Severity: e.Severity, Subcategory: e.Subcategory,
			ClosedAt: e.ClosedAt, Summary: e.Summary, Findings: e.Findings, Lessons: e.Lessons, ReportID: e.ReportID,
			Exercise: e.Exercise})
	}
	out, err := a.Training.RenderTrainingPack(pack)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Length", strconv.Itoa(len(out.PDF)))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment",
		map[string]string{"filename": "training-pack-" + category + ".pdf"}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(out.PDF)
}
