package report_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/report/pades"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
)

const token = "compliance-token-1234"

type running struct {
	t      *testing.T
	base   string
	nats   string
	js     jetstream.JetStream
	b      *bus.Bus
	signer *pades.Signer // the certificate that signs inside the PDFs
}

func startReport(t *testing.T) *running {
	t.Helper()
	srv := bustest.New(t)
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 7
	certFile, keyFile, pdfSigner := padestest.KeyPairFiles(t, "afteraction run test")
	env := map[string]string{
		"DATABASE_URL":         pgtest.NewDatabase(t),
		"NATS_URL":             srv.URL(),
		"API_TOKENS":           "compliance:" + token + ",tracker:tracker-token-1234",
		"REPORT_SIGNING_KEY":   base64.StdEncoding.EncodeToString(seed),
		"REPORT_CERT_FILE":     certFile,
		"REPORT_CERT_KEY_FILE": keyFile,
	}
	cfg, err := report.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	r := &running{t: t, nats: srv.URL(), signer: pdfSigner}
	r.base = servicetest.Start(t, func(ctx context.Context, ln net.Listener) error {
		return report.Run(ctx, cfg, report.Deps{Log: log, Listener: ln})
	})
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if r.b, err = bus.Connect(context.Background(), srv.URL(), "test", zap.NewNop(), bus.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.b.Close)
	return r
}

func (r *running) publish(env events.Envelope, msgID string) {
	r.t.Helper()
	m := bus.NewMsg(events.SubjectReviewCompleted, env)
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
		r.t.Fatal(err)
	}
}

// published returns every report.published event on the AFTERACTION stream.
func (r *running) published() []events.ReportPublished {
	r.t.Helper()
	var out []events.ReportPublished
	for _, raw := range bustest.StreamMessages(r.t, r.nats, bus.StreamAfteraction, events.SubjectReportPublished) {
		if raw.Header.Get(bus.HeaderType) != events.TypeReportPublished {
			r.t.Errorf("ce-type = %q", raw.Header.Get(bus.HeaderType))
		}
		e, err := events.Decode[events.ReportPublished](events.TypeReportPublished, raw.Data)
		if err != nil {
			r.t.Fatalf("report.published does not match its schema: %v", err)
		}
		out = append(out, e)
	}
	return out
}

func (r *running) do(method, path string, body []byte, auth bool) (*http.Response, []byte) {
	r.t.Helper()
	bearer := ""
	if auth {
		bearer = token
	}
	contentType := ""
	if len(body) > 0 {
		contentType = "application/octet-stream"
	}
	return servicetest.Do(r.t, method, r.base+path, bearer, contentType, body)
}

func (r *running) verify(pdf []byte) report.VerifyResult {
	r.t.Helper()
	resp, body := r.do(http.MethodPost, "/v1/verify", pdf, true)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("verify: %d %s", resp.StatusCode, body)
	}
	var res report.VerifyResult
	if err := json.Unmarshal(body, &res); err != nil {
		r.t.Fatal(err)
	}
	return res
}

func TestRunReviewCompletedToSignedReport(t *testing.T) {
	t.Parallel()
	r := startReport(t)
	ctx := context.Background()
	rv := exampleReview(t)
	env1, err := events.New(events.TypeReviewCompleted, "afteraction/review", rv.IncidentID, rv)
	if err != nil {
		t.Fatal(err)
	}
	r.publish(env1, env1.ID)

	var pub []events.ReportPublished
	servicetest.Eventually(t, "report.published", func() bool { pub = r.published(); return len(pub) == 1 })
	ev := pub[0]
	if ev.ReportID != report.ReportIDFor(rv.IncidentID) || ev.Version != 1 || ev.IncidentID != rv.IncidentID {
		t.Fatalf("event = %+v", ev)
	}

	resp, _ := r.do(http.MethodGet, "/v1/reports/"+ev.ReportID+"/pdf", nil, false)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("pdf without token: %d, want 401", resp.StatusCode)
	}
	resp, pdf := r.do(http.MethodGet, "/v1/reports/"+ev.ReportID+"/pdf", nil, true)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("pdf: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sum := sha256.Sum256(pdf)
	if got := hex.EncodeToString(sum[:]); got != ev.PDFSHA256 || resp.Header.Get("ETag") != `"`+ev.PDFSHA256+`"` {
		t.Fatalf("served pdf sha256 %s (etag %s), event says %s", got, resp.Header.Get("ETag"), ev.PDFSHA256)
	}
	obj, err := r.b.GetObject(ctx, ev.ObjectBucket, ev.ObjectKey)
	if err != nil || !bytes.Equal(obj, pdf) {
		t.Fatalf("object store copy differs (err %v)", err)
	}

	// The event's signature verifies with the published key over the manifest.
	_, body := r.do(http.MethodGet, "/v1/keys", nil, true)
	var keys struct{ Keys []report.Key }
	if err := json.Unmarshal(body, &keys); err != nil || len(keys.Keys) != 1 || keys.Keys[0].KeyID != ev.KeyID {
		t.Fatalf("keys = %s (%v)", body, err)
	}
	sig, _ := base64.StdEncoding.DecodeString(ev.Signature)
	if !ed25519.Verify(keys.Keys[0].PublicKey, report.Manifest(ev.ReportID, ev.Version, ev.PDFSHA256, ev.DataSHA256), sig) {
		t.Error("event signature does not verify")
	}

	// The signature inside the file: Poppler and the offline check agree,
	// with nothing but the certificate, and the service names its fingerprint.
	padestest.RequireValid(t, pdf)
	if res := pades.Verify(pdf, padestest.Trust(r.signer)); res.Status != pades.Authentic {
		t.Errorf("offline verify = %v: %s", res.Status, res.Reason)
	}
	_, certPEM := r.do(http.MethodGet, "/v1/certificates/current.pem", nil, true)
	if !bytes.Equal(certPEM, pades.EncodeCertificates(r.signer.Certificate())) {
		t.Errorf("current.pem = %s", certPEM)
	}
	if !strings.Contains(padestest.Text(t, pdf), r.signer.Fingerprint()) {
		t.Error("the integrity section does not name the certificate fingerprint")
	}

	if res := r.verify(pdf); !res.Valid || res.ReportID != ev.ReportID || res.Version != 1 || res.DataSHA256 != ev.DataSHA256 ||
		res.KeyID != ev.KeyID || res.Embedded != "AUTHENTIC" || res.CertSHA256 != r.signer.Fingerprint() {
		t.Errorf("verify original = %+v", res)
	}
	altered := bytes.Clone(pdf)
	altered[len(altered)/2] ^= 0x01
	if res := r.verify(altered); res.Valid || res.Reason == "" {
		t.Errorf("verify altered = %+v, want invalid with a reason", res)
	}

	// The same event again (past the duplicate window: another Nats-Msg-Id),
	// then a corrected review: exactly one more version.
	r.publish(env1, env1.ID+"-again")
	rv.Summary += " Corrected: the regulator reference was added."
	amendedAt := rv.CompletedAt.Add(time.Hour)
	rv.Amendment, rv.AmendmentReason, rv.AmendedAt = 1, "The regulator reference was added.", &amendedAt
	env2, err := events.New(events.TypeReviewCompleted, "afteraction/review", rv.IncidentID, rv)
	if err != nil {
		t.Fatal(err)
	}
	r.publish(env2, env2.ID)
	servicetest.Eventually(t, "version 2", func() bool { pub = r.published(); return len(pub) >= 2 })
	time.Sleep(300 * time.Millisecond)
	if pub = r.published(); len(pub) != 2 || pub[1].Version != 2 {
		t.Fatalf("published = %+v, want versions 1 and 2", pub)
	}
	_, body = r.do(http.MethodGet, "/v1/reports/"+ev.ReportID, nil, true)
	var meta struct {
		Versions []report.Version `json:"versions"`
	}
	if err := json.Unmarshal(body, &meta); err != nil || len(meta.Versions) != 2 {
		t.Fatalf("metadata = %s (%v)", body, err)
	}
	if meta.Versions[0].PDFSHA256 != ev.PDFSHA256 {
		t.Error("version 1 digest changed")
	}
	_, v1 := r.do(http.MethodGet, "/v1/reports/"+ev.ReportID+"/versions/1/pdf", nil, true)
	if !bytes.Equal(v1, pdf) {
		t.Error("version 1 bytes changed")
	}
	resp, latest := r.do(http.MethodGet, "/v1/reports/"+ev.ReportID+"/pdf", nil, true)
	if s := sha256.Sum256(latest); hex.EncodeToString(s[:]) != pub[1].PDFSHA256 || resp.Header.Get("X-Report-Version") != "2" {
		t.Error("latest pdf is not version 2")
	}
	padestest.RequireValid(t, latest)
	if res := r.verify(pdf); !res.Valid || res.Version != 1 {
		t.Errorf("version 1 no longer verifies: %+v", res)
	}
	_, body = r.do(http.MethodGet, "/v1/reports?incident_id="+rv.IncidentID, nil, true)
	var list struct{ Reports []report.Report }
	if err := json.Unmarshal(body, &list); err != nil || len(list.Reports) != 1 || list.Reports[0].Latest.Version != 2 {
		t.Errorf("list = %s", body)
	}
	resp, red := r.do(http.MethodGet, "/v1/reports/"+ev.ReportID+"/versions/1/redacted.pdf", nil, true)
	if resp.StatusCode != http.StatusOK || bytes.Equal(red, pdf) {
		t.Errorf("redacted rendition: %d, %d bytes", resp.StatusCode, len(red))
	} else {
		padestest.RequireValid(t, red)
	}

	// Every download and verification above is in the custody log, chained.
	resp, body = r.do(http.MethodPost, "/v1/reports/"+ev.ReportID+"/custody/deliveries",
		[]byte(`{"version": 1, "recipient": "Data protection authority", "channel": "regulator portal", "reference": "HmbBfDI 2026-0311"}`), true)
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("record delivery: %d %s", resp.StatusCode, body)
	}
	_, body = r.do(http.MethodGet, "/v1/reports/"+ev.ReportID+"/custody", nil, true)
	var cv report.CustodyView
	if err := json.Unmarshal(body, &cv); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range cv.Entries {
		count[e.Action+" v"+strconv.Itoa(e.Version)]++
	}
	if !cv.Check.Valid || count["rendered v1"] != 2 || count["published v2"] != 1 || count["downloaded v1"] < 3 ||
		count["verified v1"] < 2 || count["delivered v1"] != 1 {
		t.Errorf("custody = %+v (check %+v)", count, cv.Check)
	}
	if _, text := r.do(http.MethodGet, "/v1/reports/"+ev.ReportID+"/custody?format=text", nil, true); !bytes.Contains(text, []byte("Check: INTACT")) ||
		!bytes.Contains(text, []byte("delivered to Data protection authority")) {
		t.Errorf("custody export:\n%s", text)
	}

	resp, body = r.do(http.MethodGet, "/v1/metrics/programme?from=2026-01-01&to=2027-01-01", nil, true)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"total": 1`)) {
		t.Errorf("programme metrics: %d %s", resp.StatusCode, body)
	}
}

// heldObjects is an object store that holds the first PutObject until release
// is closed, after closing started.
type heldObjects struct {
	started, release chan struct{}
	once             sync.Once
}

func (h *heldObjects) PutObject(context.Context, string, string, []byte) error {
	h.once.Do(func() { close(h.started) })
	<-h.release
	return nil
}

// TestRunPublishesWhatCommitsDuringShutdown stops the service while a review
// is being rendered: the consumer finishes it and commits report.published to
// the outbox after the cancel, and Run must still publish it before returning.
func TestRunPublishesWhatCommitsDuringShutdown(t *testing.T) {
	t.Parallel()
	srv := bustest.New(t)
	seed := make([]byte, ed25519.SeedSize)
	env := map[string]string{
		"DATABASE_URL":           pgtest.NewDatabase(t),
		"NATS_URL":               srv.URL(),
		"API_TOKENS":             "compliance:" + token,
		"REPORT_SIGNING_KEY":     base64.StdEncoding.EncodeToString(seed),
		"REPORT_DEV_SIGNING_KEY": "true", // the PDF certificate: generated and kept in the database
	}
	cfg, err := report.LoadConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	objects := &heldObjects{started: make(chan struct{}), release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	go func() { done <- report.Run(ctx, cfg, report.Deps{Log: log, Listener: ln, Objects: objects}) }()
	servicetest.Eventually(t, "readiness", func() bool {
		resp, err := http.Get("http://" + ln.Addr().String() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := &running{t: t, nats: srv.URL()}
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	rv := exampleReview(t)
	ev, err := events.New(events.TypeReviewCompleted, "afteraction/review", rv.IncidentID, rv)
	if err != nil {
		t.Fatal(err)
	}
	r.publish(ev, ev.ID)
	select {
	case <-objects.started:
	case <-time.After(servicetest.Timeout):
		t.Fatal("the review was not rendered")
	}

	cancel()
	// A relay stopped together with the consumers makes its final pass now,
	// before the version below commits; give it the time to.
	time.Sleep(300 * time.Millisecond)
	close(objects.release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(servicetest.Timeout):
		t.Fatal("Run did not stop")
	}
	if pub := r.published(); len(pub) != 1 || pub[0].IncidentID != rv.IncidentID {
		t.Fatalf("published after shutdown = %+v, want the version committed during it", pub)
	}
}
