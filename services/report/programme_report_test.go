package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/report/pades"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
)

// TestProgrammeReportPublished publishes March 2026: the example review's
// incident (registered with its review, 15 days after closure: a back-fill),
// a copy of it (without notifications and impact) recovered in 2099 and one
// detected before it started. The signed PDF shows the hand-computed figures
// and both data-quality problems; publishing unchanged figures again adds nothing.
func TestProgrammeReportPublished(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	if err := f.svc.HandleReviewCompleted(ctx, message("rv-1"), rv); err != nil {
		t.Fatal(err)
	}
	register := func(id, ext string, ts events.Timestamps) {
		t.Helper()
		inc := rv.Incident
		inc.Timestamps, inc.Notifications, inc.Impact = ts, nil, nil
		e := events.IncidentRegistered{IncidentID: id, Revision: 1, Source: "jira", ExternalID: ext,
			RegisteredAt: ts.ClosedAt, Incident: inc}
		if err := f.store.ApplyIncidentRegistered(ctx, "reg-"+ext, e); err != nil {
			t.Fatal(err)
		}
	}
	march := func(day, hour int) *time.Time { return ptr(time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC)) }
	future := "0195a5d0-1c22-7b00-8e31-5b7d9c0e2a02"
	register(future, "FUT", events.Timestamps{StartedAt: march(10, 0), RecoveredAt: ptr(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)),
		ClosedAt: *march(11, 0)})
	disorder := "0195a5d0-1c22-7b00-8e31-5b7d9c0e2a03"
	register(disorder, "OOO", events.Timestamps{StartedAt: march(12, 6), DetectedAt: march(12, 2), ClosedAt: *march(13, 0)})

	tokens, err := httpapi.ParseTokens("compliance:tok-compliance")
	if err != nil {
		t.Fatal(err)
	}
	clock := servicetest.NewClock(time.Date(2026, 4, 15, 9, 30, 0, 0, time.UTC))
	publisher := &report.ProgrammePublisher{Source: f.store, Store: f.store, Objects: f.objects, Renderer: renderer,
		Signer: f.signer, PDFSig: f.pdfSigner, Now: clock.Now}
	mux := http.NewServeMux()
	(&report.API{Reader: f.store, Metrics: f.store, Programme: f.store, Library: f.store, Training: renderer,
		Programmes: publisher, ProgrammeReports: f.store, Tokens: tokens, Log: zaptest.NewLogger(t)}).Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok-compliance")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	code, body := do(http.MethodPost, "/v1/programme-reports", `{"period": "2026-03"}`)
	if code != http.StatusCreated {
		t.Fatalf("publish: %d %s", code, body)
	}
	var v struct {
		report.ProgrammeReportVersion
		DownloadPath string `json:"download_path"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if v.Version != 1 || v.Label != "2026-03" || v.Incidents != 3 || v.ReportID != report.ProgrammeReportIDFor(report.PeriodMonth, "2026-03") {
		t.Errorf("published = %s", body)
	}
	code, doc := do(http.MethodGet, v.DownloadPath, "")
	if code != http.StatusOK {
		t.Fatalf("download: %d %s", code, doc)
	}
	padestest.RequireValid(t, doc)
	if res := pades.Verify(doc, padestest.Trust(f.pdfSigner)); res.Status != pades.Authentic {
		t.Errorf("embedded signature: %v %s", res.Status, res.Reason)
	}
	trusted := report.NewTrustedKeys(f.signer.Public())
	res, err := report.Verify(ctx, f.store, trusted, padestest.Trust(f.pdfSigner), doc)
	if err != nil || !res.Valid || res.Kind != "programme" || res.ReportID != v.ReportID || res.Version != 1 {
		t.Errorf("verify the published PDF = %+v, %v", res, err)
	}
	altered := bytes.Clone(doc)
	altered[len(altered)/2] ^= 1
	if res, err := report.Verify(ctx, f.store, trusted, padestest.Trust(f.pdfSigner), altered); err != nil || res.Valid {
		t.Errorf("verify an altered copy = %+v, %v", res, err)
	}
	if stored := f.objects.objs["reports/"+report.ProgrammeObjectKey(v.ReportID, 1)]; !bytes.Equal(stored, doc) {
		t.Error("the object store does not hold the published PDF")
	}

	text := strings.Join(strings.Fields(padestest.Text(t, doc)), " ")
	// The example starts at 08:47 and is detected at 09:58 (1.2 h), assessed
	// at 13:10 (4.4 h), tells management at 14:00 (5.2 h), recovers the next
	// day at 09:00 (24.2 h). Labour: 25.25 h each for it and its two copies.
	for _, want := range []string{
		"Incident response programme report 2026-03",
		"Incidents handled 3 (historical back-fills: 1; exercises left out: 0)",
		"Labour 75.8 hours over 3 incidents (mean 25.3 h)",
		"Estimated cost EUR 18450.00 (1 incident)",
		"raised 1, lowered 0, unchanged 0, not comparable 2",
		"Start to detection 1 1.2 h 1.2 h 1 1",
		"Start to initial assessment 1 4.4 h 4.4 h 2 0",
		"Start to notifying management 1 5.2 h 5.2 h 2 0",
		"Start to recovery 1 24.2 h 24.2 h 1 1",
		"Data-quality problems 2",
		"Incidents per month by category",
		"Time to each stage, mean per month",
		"Improvement actions of each month's incidents",
		"Recurrence", "same category and asset",
		"Objective assessment",
		"Data quality",
		"timestamp in the future", "out of order",
		v.DataSHA256,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF text lacks %q:\n%s", want, text)
		}
	}

	// pdftotext joins an id wrapped after a hyphen without the hyphen.
	dehyphenated := strings.ReplaceAll(text, "-", "")
	for _, id := range []string{future, disorder} {
		if !strings.Contains(dehyphenated, strings.ReplaceAll(id, "-", "")) {
			t.Errorf("the PDF text lacks %s", id)
		}
	}

	var outbox []byte
	if err := f.pool.QueryRow(ctx, `SELECT data FROM outbox WHERE ce_type = $1`, events.TypeProgrammeReportPublished).Scan(&outbox); err != nil {
		t.Fatalf("outbox: %v", err)
	}
	if err := events.Validate(events.TypeProgrammeReportPublished, outbox); err != nil {
		t.Errorf("event: %v\n%s", err, outbox)
	}
	ev, err := events.Decode[events.ProgrammeReportPublished](events.TypeProgrammeReportPublished, outbox)
	if err != nil || ev.PDFSHA256 != v.PDFSHA256 || ev.DownloadPath != v.DownloadPath || ev.Incidents != 3 {
		t.Errorf("event = %+v, %v", ev, err)
	}

	clock.Advance(time.Hour) // an hour later the figures are the same: the 2099 recovery is still in the future
	if code, body := do(http.MethodPost, "/v1/programme-reports", `{"period": "2026-03"}`); code != http.StatusOK ||
		!strings.Contains(string(body), `"version": 1,`) {
		t.Errorf("publishing unchanged figures again: %d %s, want 200 and version 1", code, body)
	}
	for _, bad := range []string{`{"period": "2026-13"}`, `{"period": "March"}`, `{"period": "2026-Q5"}`, `{"period": "2026-05"}`,
		`{"period": "2026-03", "extra": 1}`} {
		if code, body := do(http.MethodPost, "/v1/programme-reports", bad); code != http.StatusBadRequest {
			t.Errorf("publish %s: %d %s, want 400", bad, code, body)
		}
	}
	code, body = do(http.MethodGet, "/v1/programme-reports", "")
	if code != http.StatusOK || strings.Count(string(body), `"report_id"`) != 1 {
		t.Errorf("list: %d %s", code, body)
	}
	if code, _ := do(http.MethodGet, "/v1/programme-reports/"+v.ReportID+"/versions/2/pdf", ""); code != http.StatusNotFound {
		t.Errorf("version 2: %d, want 404", code)
	}
}
