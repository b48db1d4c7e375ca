// Package report renders the final incident report of every completed
// lessons-learned review as a signed, immutable PDF version, serves and
// verifies those versions, and keeps a read model of incidents and
// improvement actions for programme metrics.
//
// A version is published in one Postgres transaction: the review.completed
// event id is recorded in processed_events, the report (one per incident, id =
// UUIDv5 of the incident id) is locked, the version numbered by the amendment it renders (VersionOf),
// the PDF rendered (deterministically), signed inside the file with the
// service's X.509 certificate (PAdES), hashed, its manifest signed with Ed25519, put into
// the object store, stored with its bytes, and the report.published event
// written to the outbox.
package report

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/report/custody"
	"github.com/afteraction/afteraction/services/report/pades"
	"github.com/afteraction/afteraction/services/report/pdf"
)

// Source is the ce-source of every event this service emits.
const Source = "afteraction/report"

// ManifestPrefix is the first line of every signed manifest.
const ManifestPrefix = "afteraction-report-v1"

// Domain errors returned by stores and mapped to HTTP statuses by routes.go.
var (
	ErrNotFound = errors.New("not found")
	// ErrVersionTaken: the version number of this amendment is held by a
	// version rendered from other data. Permanent.
	ErrVersionTaken = errors.New("report version taken")
)

// VersionOf is the version number that renders rc: its amendment plus one
// (the first completion is version 1, amendment 1 version 2, ...). Numbers
// follow the review's amendments, not arrival order, so an older amendment
// that arrives late (a DLQ replay, a reordering) fills its own number and
// never becomes the latest version.
func VersionOf(rc events.ReviewCompleted) int { return rc.Amendment + 1 }

// Version is one immutable, signed report version.
type Version struct {
	ReportID     string `json:"report_id"`
	IncidentID   string `json:"incident_id"`
	ReviewID     string `json:"review_id"`
	Version      int    `json:"version"`
	EventID      string `json:"source_event_id"`
	PDFSHA256    string `json:"pdf_sha256"`
	DataSHA256   string `json:"data_sha256"`
	SizeBytes    int64  `json:"size_bytes"`
	Pages        int    `json:"pages"`
	ObjectBucket string `json:"object_bucket"`
	ObjectKey    string `json:"object_key"`
	Signature    []byte `json:"signature"` // base64 in JSON
	KeyID        string `json:"key_id"`
	// CertSHA256 is the fingerprint of the certificate whose signature is
	// inside the PDF ("" for versions published before PDFs were signed).
	CertSHA256  string    `json:"cert_sha256,omitempty"`
	PublishedAt time.Time `json:"published_at"`
}

// DownloadPath is where the report service serves v's PDF.
func (v Version) DownloadPath() string {
	return "/v1/reports/" + v.ReportID + "/versions/" + strconv.Itoa(v.Version) + "/pdf"
}

// Manifest is the exact byte string the Ed25519 signature covers:
//
//	afteraction-report-v1\n<report_id>\n<version>\n<pdf_sha256>\n<data_sha256>\n
func Manifest(reportID string, version int, pdfSHA256, dataSHA256 string) []byte {
	return []byte(ManifestPrefix + "\n" + reportID + "\n" + strconv.Itoa(version) + "\n" + pdfSHA256 + "\n" + dataSHA256 + "\n")
}

// Report is a report and its latest version.
type Report struct {
	ReportID   string    `json:"report_id"`
	IncidentID string    `json:"incident_id"`
	CreatedAt  time.Time `json:"created_at"`
	Latest     *Version  `json:"latest,omitempty"`
}

// Key is a recorded public signing key.
type Key struct {
	KeyID     string            `json:"key_id"`
	Algorithm string            `json:"algorithm"`
	PublicKey ed25519.PublicKey `json:"public_key"` // base64 in JSON
	CreatedAt time.Time         `json:"created_at"`
}

// Certificate is a recorded certificate that signs report PDFs.
type Certificate struct {
	SHA256    string    `json:"cert_sha256"`
	Subject   string    `json:"subject"`
	NotAfter  time.Time `json:"not_after"`
	PEM       string    `json:"pem"`
	CreatedAt time.Time `json:"created_at"`
}

// ReportIDFor returns the report id of an incident: a UUIDv5 (SHA-1 name
// based) of the incident id in afteraction's report namespace, so every
// replica and every retry agrees without coordination.
func ReportIDFor(incidentID string) string {
	ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://afteraction.dev/ns/report"))
	return uuid.NewSHA1(ns, []byte(incidentID)).String()
}

// ObjectKey is where version n of a report lives in the reports bucket.
func ObjectKey(reportID string, n int) string {
	return reportID + "/v" + strconv.Itoa(n) + ".pdf"
}

// DataSHA256 returns the hex SHA-256 of the canonical JSON of rc: the typed
// review (exactly what the renderer sees, unknown fields dropped) marshalled,
// then re-encoded in the RFC 8785 style: object keys sorted, no insignificant
// whitespace, no HTML escaping, numbers in their shortest form.
func DataSHA256(rc events.ReviewCompleted) (string, error) {
	canon, err := CanonicalJSON(rc)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// CanonicalJSON is the canonical form DataSHA256 hashes.
func CanonicalJSON(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal review data: %w", err)
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, fmt.Errorf("reparse review data: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil { // maps encode with sorted keys
		return nil, fmt.Errorf("canonicalise review data: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Publication is what a handler hands the store to commit: the version row,
// the PDF bytes and the report.published event.
type Publication struct {
	Version Version
	PDF     []byte
	Event   events.Envelope
	// Redacted is the version's redacted rendition (nil without a Redactor).
	Redacted *Rendition
}

// Rendition is the redacted rendition of a version: rendered from the
// redacted review data, marked REDACTED on every page, signed like the full one.
type Rendition struct {
	PDF        []byte
	PDFSHA256  string
	DataSHA256 string
	Pages      int
}

// Draft is the id and number the store allocated for a new version.
type Draft struct {
	ReportID string
	Version  int
	// Hold is the legal hold in force on the incident's evidence (nil: none),
	// printed in the version.
	Hold *LegalHold
}

// Store is the persistence the Service needs.
type Store interface {
	// PublishVersion runs one transaction: it marks eventID processed (a
	// duplicate returns nil, nil), locks the incident's report, returns nil,
	// nil when a version with dataSHA256 exists already, otherwise calls build
	// with VersionOf(rc) (ErrVersionTaken when that number holds other data) and stores and enqueues its result.
	PublishVersion(ctx context.Context, eventID string, rc events.ReviewCompleted, dataSHA256 string,
		build func(ctx context.Context, d Draft) (Publication, error)) (*Version, error)
	// RecordRenderFailure keeps the reason a review could not be rendered.
	RecordRenderFailure(ctx context.Context, eventID, incidentID, reason string) error
	// RegisterKey records a public key (idempotent).
	RegisterKey(ctx context.Context, keyID string, pub ed25519.PublicKey) error
	// DevSeed returns the stored development signing seed, creating it from
	// fresh if none exists (the first replica to commit wins).
	DevSeed(ctx context.Context, fresh []byte) ([]byte, error)
	// RegisterCertificate records a PDF signing certificate (idempotent).
	RegisterCertificate(ctx context.Context, cert *x509.Certificate) error
	// DevCertificate returns the stored development certificate (DER) and
	// key (PKCS #8), storing the fresh pair if none exists (first commit wins).
	DevCertificate(ctx context.Context, freshCert, freshKey []byte) (certDER, keyPKCS8 []byte, err error)
}

// ObjectStore puts PDFs where subscribers of report.published fetch them.
type ObjectStore interface {
	PutObject(ctx context.Context, bucket, key string, data []byte) error
}

// Service publishes report versions.
type Service struct {
	store    Store
	objects  ObjectStore
	renderer *pdf.Renderer
	signer   *Signer
	pdfSig   *pades.Signer
	redactor *Redactor
	policy   RetentionPolicy
	log      *zap.Logger
	now      func() time.Time

	published    prometheus.Counter
	renderFailed prometheus.Counter
	renderTime   prometheus.Histogram
}

// NewService wires a Service: signer signs the manifest of every version,
// pdfSigner signs inside every PDF. reg, when not nil, receives its metrics.
func NewService(store Store, objects ObjectStore, renderer *pdf.Renderer, signer *Signer, pdfSigner *pades.Signer,
	log *zap.Logger, reg prometheus.Registerer) (*Service, error) {
	if pdfSigner == nil {
		return nil, errors.New("report service: a PDF signing certificate is required")
	}
	s := &Service{store: store, objects: objects, renderer: renderer, signer: signer, pdfSig: pdfSigner, log: log, now: time.Now,
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "afteraction_reports_published_total", Help: "Report versions published."}),
		renderFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "afteraction_report_render_failures_total", Help: "Reviews whose report could not be rendered."}),
		renderTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "afteraction_report_render_seconds", Help: "Time to render one report PDF.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 10)}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.published, s.renderFailed, s.renderTime} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register report metrics: %w", err)
			}
		}
	}
	return s, nil
}

// RedactWith makes every version published from now on come with a redacted
// rendition made by r.
func (s *Service) RedactWith(r *Redactor) { s.redactor = r }

// RetainWith makes every version published from now on print the retention
// date policy gives the evidence behind it.
func (s *Service) RetainWith(policy RetentionPolicy) { s.policy = policy }

// retentionRows are the retention date and legal hold lines of a version of
// rc rendered under hold (nil: none).
func (s *Service) retentionRows(rc events.ReviewCompleted, hold *LegalHold) (retention, legalHold string) {
	inc := rc.Incident
	r := s.policy.For(inc.Category, inc.Severity, inc.Timestamps.ClosedAt)
	switch {
	case r.Indefinite && r.Rule == "":
		retention = "indefinitely: no retention rule applies"
	case r.Indefinite:
		retention = "indefinitely (rule " + r.Rule + ")"
	default:
		retention = r.Until.Format(time.DateOnly) + " (rule " + r.Rule + ", from the incident's closing on " +
			inc.Timestamps.ClosedAt.UTC().Format(time.DateOnly) + "); raw payloads and answers are then deleted, this report is kept"
	}
	legalHold = "none when this version was rendered"
	if hold != nil {
		legalHold = "in force since " + hold.At.UTC().Format(time.DateOnly) + ": nothing is deleted while it lasts"
	}
	return retention, legalHold
}

// render renders and signs one rendition of a version.
func (s *Service) render(in pdf.Input) (pdf.Output, error) {
	cert := s.pdfSig.Certificate()
	in.CertSubject, in.CertSHA256 = cert.Subject.String(), s.pdfSig.Fingerprint()
	out, err := s.renderer.Render(in)
	if err != nil {
		return out, err
	}
	reason := "Incident report " + in.ReportID + " version " + strconv.Itoa(in.Version)
	if in.Redacted {
		reason = "Redacted rendition of " + reason
	}
	if out.PDF, err = s.pdfSig.Sign(out.PDF, pades.Info{Name: cert.Subject.CommonName, Date: in.GeneratedAt, Reason: reason}); err != nil {
		return out, fmt.Errorf("%w: %v", pdf.ErrRender, err)
	}
	return out, nil
}

// redacted renders the redacted rendition of version d of rc.
func (s *Service) redacted(rc events.ReviewCompleted, d Draft, generatedAt time.Time) (*Rendition, error) {
	red, err := s.redactor.Redact(rc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", pdf.ErrRender, err)
	}
	dataSHA, err := DataSHA256(red)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", pdf.ErrRender, err)
	}
	in := pdf.Input{Review: red, ReportID: d.ReportID, Version: d.Version, DataSHA256: dataSHA,
		GeneratedAt: generatedAt, Redacted: true}
	in.Retention, in.LegalHold = s.retentionRows(rc, d.Hold)
	out, err := s.render(in)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(out.PDF)
	return &Rendition{PDF: out.PDF, PDFSHA256: hex.EncodeToString(sum[:]), DataSHA256: dataSHA, Pages: out.Pages}, nil
}

// HandleReviewCompleted publishes a new report version for rc, unless the
// event was handled before or a version of this report was already rendered
// from identical data (both: nil, nothing published). A render failure is
// recorded and returned as bus.Permanent; other errors are transient.
//
// The PDF is put into the object store before the transaction commits. If the
// commit then fails, the retry renders the same document (the generation time
// comes from the event, not the clock), signs it afresh and overwrites the same
// key, so the object store holds the bytes whose digest was committed.
func (s *Service) HandleReviewCompleted(ctx context.Context, m *bus.Message, rc events.ReviewCompleted) error {
	dataSHA, err := DataSHA256(rc)
	if err != nil {
		return bus.Permanent(err)
	}
	generatedAt := m.Envelope.Time
	if generatedAt.IsZero() {
		generatedAt = rc.CompletedAt
	}
	generatedAt = generatedAt.UTC().Truncate(time.Second)
	v, err := s.store.PublishVersion(ctx, m.Envelope.ID, rc, dataSHA, func(ctx context.Context, d Draft) (Publication, error) {
		start := time.Now()
		in := pdf.Input{Review: rc, ReportID: d.ReportID, Version: d.Version, DataSHA256: dataSHA, GeneratedAt: generatedAt}
		in.Retention, in.LegalHold = s.retentionRows(rc, d.Hold)
		out, err := s.render(in)
		if err != nil {
			return Publication{}, err
		}
		var red *Rendition
		if s.redactor != nil {
			if red, err = s.redacted(rc, d, generatedAt); err != nil {
				return Publication{}, err
			}
		}
		s.renderTime.Observe(time.Since(start).Seconds())
		_ = m.InProgress()
		sum := sha256.Sum256(out.PDF)
		pdfSHA := hex.EncodeToString(sum[:])
		v := Version{
			ReportID: d.ReportID, IncidentID: rc.IncidentID, ReviewID: rc.ReviewID, Version: d.Version,
			EventID: m.Envelope.ID, PDFSHA256: pdfSHA, DataSHA256: dataSHA,
			SizeBytes: int64(len(out.PDF)), Pages: out.Pages,
			ObjectBucket: bus.BucketReports, ObjectKey: ObjectKey(d.ReportID, d.Version),
			Signature:   s.signer.Sign(Manifest(d.ReportID, d.Version, pdfSHA, dataSHA)),
			KeyID:       s.signer.KeyID(),
			CertSHA256:  s.pdfSig.Fingerprint(),
			PublishedAt: s.now().UTC().Truncate(time.Microsecond),
		}
		if err := s.objects.PutObject(ctx, v.ObjectBucket, v.ObjectKey, out.PDF); err != nil {
			return Publication{}, fmt.Errorf("put report pdf: %w", err)
		}
		env, err := events.New(events.TypeReportPublished, Source, rc.IncidentID, reportPublished(v))
		if err != nil {
			return Publication{}, err
		}
		return Publication{Version: v, PDF: out.PDF, Event: env, Redacted: red}, nil
	})
	if errors.Is(err, pdf.ErrRender) || errors.Is(err, ErrVersionTaken) {
		s.renderFailed.Inc()
		if rerr := s.store.RecordRenderFailure(ctx, m.Envelope.ID, rc.IncidentID, err.Error()); rerr != nil {
			return fmt.Errorf("record render failure (%v): %w", err, rerr)
		}
		return bus.Permanent(err)
	}
	if err != nil {
		return fmt.Errorf("publish report for incident %s: %w", rc.IncidentID, err)
	}
	if v != nil {
		s.published.Inc()
		s.log.Info("report version published", zap.String("report_id", v.ReportID), zap.Int("version", v.Version),
			zap.String("incident_id", v.IncidentID), zap.String("pdf_sha256", v.PDFSHA256), zap.Int("pages", v.Pages))
	}
	return nil
}

// CustodyActorService names the report service in custody entries.
const CustodyActorService = "afteraction report service"

// publicationCustody are the custody entries of a version's publication:
// rendered (from which data, signed with which certificate) and published.
func publicationCustody(v Version, rc events.ReviewCompleted, eventID string, red *Rendition) []custody.Entry {
	rendered := fmt.Sprintf("rendered from review %s (amendment %d), data sha256 %s; %d pages; signed inside the PDF with certificate %s; manifest key %s",
		rc.ReviewID, rc.Amendment, v.DataSHA256, v.Pages, v.CertSHA256, v.KeyID)
	entries := []custody.Entry{{ReportID: v.ReportID, At: v.PublishedAt, Action: custody.Rendered, Version: v.Version,
		Actor: CustodyActorService, Detail: rendered, PDFSHA256: v.PDFSHA256}}
	if red != nil {
		entries = append(entries, custody.Entry{ReportID: v.ReportID, At: v.PublishedAt, Action: custody.Rendered,
			Version: v.Version, Actor: CustodyActorService, PDFSHA256: red.PDFSHA256,
			Detail: fmt.Sprintf("redacted rendition rendered from the redacted review data (sha256 %s), %d pages, signed with certificate %s",
				red.DataSHA256, red.Pages, v.CertSHA256)})
	}
	entries = append(entries, custody.Entry{ReportID: v.ReportID, At: v.PublishedAt, Action: custody.Published,
		Version: v.Version, Actor: CustodyActorService, PDFSHA256: v.PDFSHA256,
		Detail: "stored immutably, put in object store " + v.ObjectBucket + "/" + v.ObjectKey +
			", afteraction.report.published event " + eventID + " queued"})
	return entries
}

func reportPublished(v Version) events.ReportPublished {
	return events.ReportPublished{
		ReportID: v.ReportID, IncidentID: v.IncidentID, ReviewID: v.ReviewID, Version: v.Version,
		PublishedAt: v.PublishedAt, PDFSHA256: v.PDFSHA256, DataSHA256: v.DataSHA256,
		SizeBytes: v.SizeBytes, Pages: v.Pages, ObjectBucket: v.ObjectBucket, ObjectKey: v.ObjectKey,
		DownloadPath: v.DownloadPath(), Signature: base64.StdEncoding.EncodeToString(v.Signature), KeyID: v.KeyID,
	}
}
