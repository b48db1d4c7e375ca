package report

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/httpapi"
	"github.com/afteraction/afteraction/services/report/custody"
	"github.com/afteraction/afteraction/services/report/pades"
	"github.com/afteraction/afteraction/services/report/pdf"
)

// Reader is what the HTTP API reads.
type Reader interface {
	Reports(ctx context.Context, incidentID string) ([]Report, error)
	Report(ctx context.Context, reportID string) (Report, []Version, error)
	VersionPDF(ctx context.Context, reportID string, n int) (Version, []byte, error)
	VersionByDigest(ctx context.Context, pdfSHA256 string) (Version, error)
	Keys(ctx context.Context) ([]Key, error)
	Certificates(ctx context.Context) ([]Certificate, error)
	Custody(ctx context.Context, reportID string) ([]custody.Entry, error)
	AppendCustody(ctx context.Context, e custody.Entry) (custody.Entry, error)
	RedactedPDF(ctx context.Context, reportID string, n int) (Version, string, []byte, error)
	ProgrammeReportByDigest(ctx context.Context, pdfSHA256 string) (ProgrammeReportVersion, error)
}

// MaxVerifyBytes bounds the PDF POST /v1/verify accepts.
const MaxVerifyBytes = 20 << 20

// API serves reports, verification, keys and programme metrics.
type API struct {
	Reader  Reader
	Metrics ReadModel
	// Programme computes the programme time series; Library searches the case library.
	Programme ProgrammeSource
	Library   Library
	// Training renders the training packs of the case library.
	Training *pdf.Renderer
	// Programmes publishes programme reports; ProgrammeReports serves them.
	Programmes       *ProgrammePublisher
	ProgrammeReports ProgrammeReportStore
	// RecurrenceWindow is DefaultRecurrenceWindow when zero.
	RecurrenceWindow time.Duration
	// Trusted are the keys POST /v1/verify accepts signatures of.
	Trusted TrustedKeys
	// TrustedCerts are the certificates whose signatures inside a PDF verify.
	TrustedCerts []*x509.Certificate
	// Evidence serves the legal holds (routes_hold.go); nil leaves them out.
	Evidence *Evidence
	Tokens   httpapi.Tokens
	Log      *zap.Logger
}

// Routes registers the whole HTTP surface on mux. Every /v1 route needs a
// bearer token of role compliance or facilitator (admin is always allowed):
//
//	GET  /v1/reports?incident_id=            reports with their latest version
//	GET  /v1/reports/{id}                    metadata: every version with digests, signature, key id
//	GET  /v1/reports/{id}/pdf                the latest version's PDF (ETag = its SHA-256); every
//	                                         download is recorded in the custody log first
//	GET  /v1/reports/{id}/versions/{n}/pdf   version n's PDF
//	GET  /v1/reports/{id}/versions/{n}/redacted.pdf  version n's redacted rendition (for external distribution)
//	GET  /v1/reports/{id}/custody            the chain of custody and its check (?format=text: a plain-text export)
//	POST /v1/reports/{id}/custody/deliveries record a delivery of a version outside afteraction
//	POST /v1/verify                          body: a PDF (raw or multipart, ≤ 20 MiB) → VerifyResult
//	GET  /v1/keys                            the public keys that sign report manifests
//	GET  /v1/certificates                    the certificates that sign inside report PDFs (JSON with PEM)
//	GET  /v1/certificates/current.pem        the current signing certificate, PEM, to pin for offline checks
//	GET  /v1/metrics/programme?period=&from=&to=  programme metrics over incidents closed in [from, to),
//	                                         with the time series per month or quarter
//	GET  /v1/library?q=&category=&severity=&tag=&asset=&from=&to=&limit=  the case library
//	GET  /v1/library/training-pack.pdf?category=  the training pack of one category (PDF)
//	POST /v1/programme-reports               body {"period": "2026-11" | "2026-Q4"}: render, sign, store and
//	                                         announce the period's programme report (201; 200 if unchanged)
//	GET  /v1/programme-reports               every programme report version, newest period first
//	GET  /v1/programme-reports/{id}/pdf      the latest version's PDF
//	GET  /v1/programme-reports/{id}/versions/{n}/pdf  version n's PDF
//	GET|PUT|DELETE /v1/incidents/{id}/legal-hold  legal hold and retention (compliance only; routes_hold.go)
//
// /healthz, /readyz and /metrics are registered by Run.
func (a *API) Routes(mux *http.ServeMux) {
	roles := []string{"compliance", "facilitator"}
	handle := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, a.Tokens.Require(h, roles...))
	}
	handle("GET /v1/reports", a.listReports)
	handle("GET /v1/reports/{id}", a.getReport)
	handle("GET /v1/reports/{id}/pdf", a.getPDF)
	handle("GET /v1/reports/{id}/versions/{n}/pdf", a.getPDF)
	handle("GET /v1/reports/{id}/versions/{n}/redacted.pdf", a.getRedacted)
	handle("GET /v1/reports/{id}/custody", a.getCustody)
	handle("POST /v1/reports/{id}/custody/deliveries", a.recordDelivery)
	handle("POST /v1/verify", a.verify)
	handle("GET /v1/keys", a.keys)
	handle("GET /v1/certificates", a.certificates)
	handle("GET /v1/certificates/current.pem", a.currentCertificate)
	handle("GET /v1/metrics/programme", a.programme)
	handle("GET /v1/library", a.library)
	handle("GET /v1/library/training-pack.pdf", a.trainingPack)
	handle("POST /v1/programme-reports", a.publishProgramme)
	handle("GET /v1/programme-reports", a.listProgrammeReports)
	handle("GET /v1/programme-reports/{id}/pdf", a.getProgrammePDF)
	handle("GET /v1/programme-reports/{id}/versions/{n}/pdf", a.getProgrammePDF)
	a.holdRoutes(mux)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var p *httpapi.Problem
	switch {
	case errors.As(err, &p):
	case errors.Is(err, ErrNotFound):
		err = httpapi.NewProblem(http.StatusNotFound, "not found", "no such report or version")
	default:
		a.Log.Error("http request failed", zap.String("path", r.URL.Path), zap.Error(err))
	}
	httpapi.WriteError(w, r, err)
}

func badParam(field, reason string) error {
	return httpapi.NewProblem(http.StatusBadRequest, "invalid parameter", "", httpapi.FieldError{Field: field, Reason: reason})
}

func (a *API) listReports(w http.ResponseWriter, r *http.Request) {
	incident := r.URL.Query().Get("incident_id")
	if incident != "" {
		if _, err := uuid.Parse(incident); err != nil {
			a.fail(w, r, badParam("incident_id", "not a UUID"))
			return
		}
	}
	reports, err := a.Reader.Reports(r.Context(), strings.ToLower(incident))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"reports": orEmpty(reports)})
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (a *API) getReport(w http.ResponseWriter, r *http.Request) {
	rep, versions, err := a.Reader.Report(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	type versionView struct {
		Version
		DownloadPath string `json:"download_path"`
	}
	views := make([]versionView, len(versions))
	for i, v := range versions {
		views[i] = versionView{v, v.DownloadPath()}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{
		"report_id": rep.ReportID, "incident_id": rep.IncidentID, "created_at": rep.CreatedAt,
		"manifest_format": ManifestPrefix + `\n<report_id>\n<version>\n<pdf_sha256>\n<data_sha256>\n`,
		"versions":        views,
	})
}

func (a *API) getPDF(w http.ResponseWriter, r *http.Request) {
	n := 0
	if s := r.PathValue("n"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			a.fail(w, r, badParam("n", "a version number from 1"))
			return
		}
	}
	v, pdf, err := a.Reader.VersionPDF(r.Context(), r.PathValue("id"), n)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	etag := `"` + v.PDFSHA256 + `"`
	w.Header().Set("ETag", etag)
	if n > 0 {
		w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "private, no-cache")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && (match == etag || match == "*") {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if _, err := a.Reader.AppendCustody(r.Context(), custody.Entry{ReportID: v.ReportID, At: time.Now(),
		Action: custody.Downloaded, Version: v.Version, Actor: a.caller(r), Detail: r.Method + " " + r.URL.Path,
		PDFSHA256: v.PDFSHA256}); err != nil {
		a.fail(w, r, err) // a download that cannot be recorded is not served
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Length", strconv.Itoa(len(pdf)))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment",
		map[string]string{"filename": "report-" + v.ReportID + "-v" + strconv.Itoa(v.Version) + ".pdf"}))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Report-Version", strconv.Itoa(v.Version))
	_, _ = w.Write(pdf)
}

// VerifyResult is the answer of POST /v1/verify.
type VerifyResult struct {
	Valid bool `json:"valid"`
	// Kind is "incident" for an incident report version, "programme" for a
	// programme report version, "" when the file is neither.
	Kind        string     `json:"kind,omitempty"`
	ReportID    string     `json:"report_id,omitempty"`
	Version     int        `json:"version,omitempty"`
	PDFSHA256   string     `json:"pdf_sha256"`
	DataSHA256  string     `json:"data_sha256,omitempty"`
	KeyID       string     `json:"key_id,omitempty"`
	PublishedAt *time.Time `json:"published_at,omitempty"`
	Reason      string     `json:"reason"`
	// Embedded is the check of the signature inside the PDF against the
	// trusted certificates: AUTHENTIC, ALTERED or UNKNOWN SIGNER.
	Embedded       string `json:"embedded_signature"`
	EmbeddedReason string `json:"embedded_signature_reason"`
	CertSHA256     string `json:"cert_sha256,omitempty"`
}

// Verify says whether pdf is an authentic, unaltered, published report
// version: its SHA-256 must match a stored version, that version's key must be
// one of trusted, its stored signature must verify over the manifest with the
// trusted public key (never the bytes recorded in the database), and the
// signature inside the file must verify with one of certs (versions published
// before PDFs were signed carry none and are judged by the manifest alone). A
// mismatch is an invalid result with a reason; the error is for failed reads only.
func Verify(ctx context.Context, reader Reader, trusted TrustedKeys, certs []*x509.Certificate, pdf []byte) (VerifyResult, error) {
	sum := sha256.Sum256(pdf)
	res := VerifyResult{PDFSHA256: hex.EncodeToString(sum[:])}
	embedded := pades.Verify(pdf, certs)
	res.Embedded, res.EmbeddedReason, res.CertSHA256 = embedded.Status.String(), embedded.Reason, embedded.Fingerprint
	v, err := reader.VersionByDigest(ctx, res.PDFSHA256)
	if errors.Is(err, ErrNotFound) {
		return verifyProgramme(ctx, reader, trusted, embedded, res)
	}
	if err != nil {
		return res, err
	}
	res.Kind = "incident"
	res.ReportID, res.Version, res.DataSHA256, res.KeyID = v.ReportID, v.Version, v.DataSHA256, v.KeyID
	res.PublishedAt = &v.PublishedAt
	pub, ok := trusted[v.KeyID]
	if !ok {
		res.Reason = "the signing key " + v.KeyID + " is not trusted: it is neither this service's key nor listed in REPORT_TRUSTED_PUBLIC_KEYS"
		return res, nil
	}
	if !ed25519.Verify(pub, Manifest(v.ReportID, v.Version, v.PDFSHA256, v.DataSHA256), v.Signature) {
		res.Reason = "the recorded signature does not verify with key " + v.KeyID
		return res, nil
	}
	if v.CertSHA256 != "" && embedded.Status != pades.Authentic {
		res.Reason = "the signature inside the file is not valid: " + embedded.Reason
		return res, nil
	}
	res.Valid = true
	res.Reason = "the file is report " + v.ReportID + " version " + strconv.Itoa(v.Version) + ", unaltered, signed by key " + v.KeyID
	return res, nil
}

func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	pdf, err := readUpload(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(pdf) == 0 {
		a.fail(w, r, httpapi.NewProblem(http.StatusBadRequest, "empty body", "send the PDF as the request body"))
		return
	}
	res, err := Verify(r.Context(), a.Reader, a.Trusted, a.TrustedCerts, pdf)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if res.Kind == "incident" {
		outcome := "invalid: " + res.Reason
		if res.Valid {
			outcome = "valid: " + res.Reason
		}
		if _, err := a.Reader.AppendCustody(r.Context(), custody.Entry{ReportID: res.ReportID, At: time.Now(),
			Action: custody.Verified, Version: res.Version, Actor: a.caller(r), Detail: outcome,
			PDFSHA256: res.PDFSHA256}); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, res)
}

// readUpload returns the raw body, or the first file part of a multipart
// form (curl -F file=@report.pdf), limited to MaxVerifyBytes.
func readUpload(r *http.Request) ([]byte, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return httpapi.ReadBody(r, MaxVerifyBytes)
	}
	r.Body = http.MaxBytesReader(nil, r.Body, MaxVerifyBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, httpapi.NewProblem(http.StatusBadRequest, "invalid multipart body", err.Error())
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, httpapi.NewProblem(http.StatusBadRequest, "no file", "the multipart body has no file part")
		}
		if err != nil {
			return nil, httpapi.NewProblem(http.StatusBadRequest, "invalid multipart body", err.Error())
		}
		if part.FileName() == "" {
			continue
		}
		body, err := io.ReadAll(io.LimitReader(part, MaxVerifyBytes+1))
		if err != nil {
			return nil, httpapi.NewProblem(http.StatusBadRequest, "unreadable body", err.Error())
		}
		if len(body) > MaxVerifyBytes {
			return nil, httpapi.NewProblem(http.StatusRequestEntityTooLarge, "body too large", "the file exceeds 20 MiB")
		}
		return body, nil
	}
}

func (a *API) keys(w http.ResponseWriter, r *http.Request) {
	keys, err := a.Reader.Keys(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"keys": orEmpty(keys)})
}

func (a *API) certificates(w http.ResponseWriter, r *http.Request) {
	certs, err := a.Reader.Certificates(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	trusted := make([]string, len(a.TrustedCerts))
	for i, c := range a.TrustedCerts {
		trusted[i] = pades.Fingerprint(c)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"certificates": orEmpty(certs), "trusted": trusted})
}

// currentCertificate serves the certificate that signs new versions. Pin it
// from a trusted channel: a copy fetched from the service proves only what
// the service says.
func (a *API) currentCertificate(w http.ResponseWriter, r *http.Request) {
	if len(a.TrustedCerts) == 0 {
		a.fail(w, r, ErrNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(pades.EncodeCertificates(a.TrustedCerts[0]))
}

// parseWhen accepts RFC 3339 times and YYYY-MM-DD dates (midnight UTC).
func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, s)
}

func (a *API) programme(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	to := time.Now().UTC()
	from := to.AddDate(-1, 0, 0)
	var err error
	if s := q.Get("from"); s != "" {
		if from, err = parseWhen(s); err != nil {
			a.fail(w, r, badParam("from", "want RFC 3339 or YYYY-MM-DD"))
			return
		}
	}
	if s := q.Get("to"); s != "" {
		if to, err = parseWhen(s); err != nil {
			a.fail(w, r, badParam("to", "want RFC 3339 or YYYY-MM-DD"))
			return
		}
	}
	if !from.Before(to) {
		a.fail(w, r, badParam("from", "must be before to"))
		return
	}
	period, err := ParsePeriod(q.Get("period"))
	if err != nil {
		a.fail(w, r, badParam("period", "want month or quarter"))
		return
	}
	m, err := a.Metrics.ProgrammeMetrics(r.Context(), from, to)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := a.programmeSeries(r.Context(), period, from, to)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct {
		ProgrammeMetrics
		Programme
	}{m, p})
}
