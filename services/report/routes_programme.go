package report

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

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
	return ComputeProgramme(ctx, a.Programme, ProgrammeOptions{Period: period, From: from, To: to, Now: time.Now().UTC(),
		RecurrenceWindow: a.RecurrenceWindow})
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
	writePDF(w, "training-pack-"+category+".pdf", out.PDF)
}

// writePDF serves doc as an attachment named filename.
func writePDF(w http.ResponseWriter, filename string, doc []byte) {
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(doc)
}

// maxProgrammeBody bounds the body of POST /v1/programme-reports.
const maxProgrammeBody = 4 << 10

// publishProgramme publishes the programme report of a period: 201 with the
// new version, or 200 with the latest one when the figures are unchanged.
func (a *API) publishProgramme(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Period string `json:"period"`
	}
	if _, err := httpapi.ReadJSON(r, maxProgrammeBody, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	period, start, err := ParsePeriodLabel(strings.TrimSpace(body.Period))
	if err != nil {
		a.fail(w, r, badParam("period", err.Error()))
		return
	}
	v, created, err := a.Programmes.Publish(r.Context(), period, start)
	if errors.Is(err, ErrPeriodNotStarted) {
		a.fail(w, r, badParam("period", "the period has not started yet"))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		a.Log.Info("programme report published", zap.String("report_id", v.ReportID), zap.String("label", v.Label),
			zap.Int("version", v.Version), zap.String("pdf_sha256", v.PDFSHA256), zap.Int("pages", v.Pages))
	}
	w.Header().Set("Location", v.DownloadPath())
	httpapi.WriteJSON(w, status, programmeView(v))
}

type programmeReportView struct {
	ProgrammeReportVersion
	DownloadPath string `json:"download_path"`
}

func programmeView(v ProgrammeReportVersion) programmeReportView {
	return programmeReportView{v, v.DownloadPath()}
}

func (a *API) listProgrammeReports(w http.ResponseWriter, r *http.Request) {
	vs, err := a.ProgrammeReports.ProgrammeReports(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	views := make([]programmeReportView, len(vs))
	for i, v := range vs {
		views[i] = programmeView(v)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"programme_reports": views})
}

func (a *API) getProgrammePDF(w http.ResponseWriter, r *http.Request) {
	n := 0
	if s := r.PathValue("n"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			a.fail(w, r, badParam("n", "a version number from 1"))
			return
		}
	}
	v, doc, err := a.ProgrammeReports.ProgrammeReportPDF(r.Context(), r.PathValue("id"), n)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", `"`+v.PDFSHA256+`"`)
	w.Header().Set("X-Report-Version", strconv.Itoa(v.Version))
	writePDF(w, "programme-report-"+v.Label+"-v"+strconv.Itoa(v.Version)+".pdf", doc)
}
