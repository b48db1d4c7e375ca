package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/services/intake"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
	reportpdf "github.com/afteraction/afteraction/services/report/pdf"
)

func startTestStack(t *testing.T) *Stack {
	t.Helper()
	return startTestStackOn(t, pgtest.NewDatabase(t))
}

// startTestStackOn starts the stack on the database dsn.
func startTestStackOn(t *testing.T, dsn string) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := StartStack(ctx, StackConfig{
		DatabaseURL: dsn,
		StoreDir:    t.TempDir(),
		Log:         zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

func demoIncidentForTest(t testing.TB, externalID string) events.IncidentClosed {
	t.Helper()
	var inc events.IncidentClosed
	if err := json.Unmarshal(demoIncident, &inc); err != nil {
		t.Fatal(err)
	}
	inc.ExternalID = externalID
	shiftToNow(&inc, time.Now().UTC().Add(-time.Hour))
	return inc
}

func publishIncident(t *testing.T, s *Stack, inc events.IncidentClosed) {
	t.Helper()
	b, err := bus.Connect(context.Background(), s.NATSURL, "e2e", zap.NewNop(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	env, err := events.New(events.TypeIncidentClosed, "e2e", inc.ExternalID, inc)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), events.SubjectIncidentClosedPrefix+inc.Source, env); err != nil {
		t.Fatal(err)
	}
}

// count returns len(list[key]) of a JSON list answer.
func count(t *testing.T, s *Stack, url, key string) int {
	t.Helper()
	var m map[string]json.RawMessage
	if err := getJSON(context.Background(), url, s.AdminToken, &m); err != nil {
		t.Fatal(err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(m[key], &items); err != nil {
		t.Fatalf("%s: %q is not a list: %v", url, key, err)
	}
	return len(items)
}

func TestPipelineEndToEndExactlyOnce(t *testing.T) {
	t.Parallel()
	s := startTestStack(t)
	ctx := context.Background()
	inc := demoIncidentForTest(t, "SEC-E2E-1")

	// An upstream system retries: the same closed incident arrives three times
	// (two copies here, the third inside runScenario), each with its own event id.
	publishIncident(t, s, inc)
	publishIncident(t, s, inc)
	res, err := runScenario(ctx, s, inc, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified {
		t.Error("the report PDF does not verify")
	}
	if !strings.HasPrefix(string(res.PDF), "%PDF-") {
		t.Errorf("report is not a PDF: %.20q", res.PDF)
	}
	id := res.IncidentID
	if id != intake.IncidentID(inc.Source, inc.ExternalID) {
		t.Errorf("incident id %s", id)
	}
	// Give any duplicate that slipped through time to show up before counting.
	time.Sleep(time.Second)
	checks := []struct {
		what, url, key string
		want           int
	}{
		{"registered incidents", s.URLs["intake"] + "/v1/incidents?source=canonical&external_id=SEC-E2E-1", "incidents", 1},
		{"reviews", s.URLs["review"] + "/v1/reviews?incident_id=" + id, "reviews", 1},
		{"reports", s.URLs["report"] + "/v1/reports?incident_id=" + id, "reports", 1},
		{"action items", s.URLs["tracker"] + "/v1/actions?incident=" + id, "actions", 6},
	}
	for _, c := range checks {
		if got := count(t, s, c.url, c.key); got != c.want {
			t.Errorf("%s: got %d, want %d", c.what, got, c.want)
		}
	}
	var inc1 struct {
		Revision int `json:"revision"`
	}
	if err := getJSON(ctx, s.URLs["intake"]+"/v1/incidents/"+id, s.AdminToken, &inc1); err != nil {
		t.Fatal(err)
	}
	if inc1.Revision != 1 {
		t.Errorf("revision = %d, want 1 (identical copies must not revise)", inc1.Revision)
	}
	var rep struct {
		Versions []json.RawMessage `json:"versions"`
	}
	if err := getJSON(ctx, s.URLs["report"]+"/v1/reports/"+res.ReportID, s.AdminToken, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Versions) != 1 {
		t.Errorf("report versions = %d, want 1", len(rep.Versions))
	}
	checkPDF(t, res.PDF, inc.Title)

	// Offline, with only the file and the certificate: pdfsig and verify agree;
	// with --api the service confirms the file is a published version.
	padestest.RequireValid(t, res.PDF)
	certFile, pdfFile := writeTemp(t, "cert.pem", res.CertPEM), writeTemp(t, "report.pdf", res.PDF)
	if code, out := verifyExit(t, "--cert", certFile, pdfFile); code != exitAuthentic {
		t.Errorf("verify --cert: exit %d\n%s", code, out)
	}
	code, out := verifyExit(t, "--cert", certFile, "--api", s.URLs["report"], "--token", s.AdminToken, pdfFile)
	if code != exitAuthentic || !strings.Contains(out, "published    report "+res.ReportID+" version 1") {
		t.Errorf("verify --api: exit %d\n%s", code, out)
	}
}

// checkPDF asserts what a compliance reader relies on: the title and every
// section heading are in the text, and qpdf finds no structural error.
func checkPDF(t *testing.T, pdf []byte, title string) {
	t.Helper()
	for _, tool := range []string{"pdftotext", "qpdf"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (Debian: poppler-utils, qpdf; bash .ci/run installs them)", tool)
		}
	}
	path := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	text := strings.Join(strings.Fields(string(out)), " ")
	for _, want := range append([]string{title}, reportpdf.Headings...) {
		if !strings.Contains(text, strings.Join(strings.Fields(want), " ")) {
			t.Errorf("the report PDF lacks %q", want)
		}
	}
	if out, err := exec.Command("qpdf", "--check", path).CombinedOutput(); err != nil {
		t.Errorf("qpdf --check: %v\n%s", err, out)
	}
}

func TestInvalidIncidentIsRejectedAndTheNextFlows(t *testing.T) {
	t.Parallel()
	s := startTestStack(t)
	ctx := context.Background()
	b, err := bus.Connect(ctx, s.NATSURL, "e2e", zap.NewNop(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	bad := `{"source":"canonical","external_id":"BAD-1","title":"x","severity":"catastrophic","timestamps":{"closed_at":"2026-11-27T10:00:00Z"}}`
	if err := b.PublishRaw(ctx, events.SubjectIncidentClosedPrefix+"canonical", "bad-1", []byte(bad)); err != nil {
		t.Fatal(err)
	}
	good := demoIncidentForTest(t, "SEC-E2E-2")
	publishIncident(t, s, good)
	id := intake.IncidentID(good.Source, good.ExternalID)
	err = poll(ctx, "the review of the valid incident", 30*time.Second, func() (bool, error) {
		return count(t, s, s.URLs["review"]+"/v1/reviews?incident_id="+id, "reviews") == 1, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var rejects struct {
		Rejects []struct {
			Reason string `json:"reason"`
		} `json:"rejects"`
	}
	if err := getJSON(ctx, s.URLs["intake"]+"/v1/rejects", s.AdminToken, &rejects); err != nil {
		t.Fatal(err)
	}
	if len(rejects.Rejects) != 1 {
		t.Fatalf("rejects = %d, want 1", len(rejects.Rejects))
	}
	if r := rejects.Rejects[0].Reason; !strings.Contains(r, "severity") {
		t.Errorf("reject reason %q does not name the severity field", r)
	}
}
