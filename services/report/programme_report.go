package report

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/report/pades"
	"github.com/afteraction/afteraction/services/report/pdf"
)

// ProgrammeManifestPrefix is the first line of every signed programme report manifest.
const ProgrammeManifestPrefix = "afteraction-programme-report-v1"

// ProgrammeManifest is the byte string the Ed25519 signature of a programme
// report version covers:
//
//	afteraction-programme-report-v1\n<report_id>\n<version>\n<pdf_sha256>\n<data_sha256>\n
func ProgrammeManifest(reportID string, version int, pdfSHA256, dataSHA256 string) []byte {
	return []byte(ProgrammeManifestPrefix + "\n" + reportID + "\n" + strconv.Itoa(version) + "\n" + pdfSHA256 + "\n" + dataSHA256 + "\n")
}

// ChartMonths is how many months, up to a programme report's period end, its charts show.
const ChartMonths = 12

// ProgrammeReportIDFor is the id of the programme report of one period: a
// UUIDv5 of the period, so publishing it again adds a version.
func ProgrammeReportIDFor(period Period, label string) string {
	ns := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://afteraction.dev/ns/programme-report"))
	return uuid.NewSHA1(ns, []byte(string(period)+"/"+label)).String()
}

var periodLabel = regexp.MustCompile(`^([0-9]{4})-(?:([0-9]{2})|Q([1-4]))$`)

// ParsePeriodLabel reads "2026-11" (a month) or "2026-Q4" (a quarter) and
// returns the period and its first instant (UTC).
func ParsePeriodLabel(s string) (Period, time.Time, error) {
	m := periodLabel.FindStringSubmatch(s)
	if m == nil {
		return "", time.Time{}, fmt.Errorf("%q is not a period: want YYYY-MM or YYYY-Qn", s)
	}
	year, _ := strconv.Atoi(m[1])
	if m[3] != "" {
		q, _ := strconv.Atoi(m[3])
		return PeriodQuarter, time.Date(year, time.Month(3*q-2), 1, 0, 0, 0, 0, time.UTC), nil
	}
	month, _ := strconv.Atoi(m[2])
	if month < 1 || month > 12 {
		return "", time.Time{}, fmt.Errorf("%q is not a period: month %d", s, month)
	}
	return PeriodMonth, time.Date(year, time.Month(month), 1, 0, 0, 0, 0, time.UTC), nil
}

// ProgrammeReportVersion is one immutable, signed programme report version.
type ProgrammeReportVersion struct {
	ReportID     string    `json:"report_id"`
	Version      int       `json:"version"`
	Period       Period    `json:"period"`
	Label        string    `json:"label"`
	Start        time.Time `json:"period_start"`
	End          time.Time `json:"period_end"`
	Incidents    int       `json:"incidents"`
	EventID      string    `json:"event_id"`
	PDFSHA256    string    `json:"pdf_sha256"`
	DataSHA256   string    `json:"data_sha256"`
	SizeBytes    int64     `json:"size_bytes"`
	Pages        int       `json:"pages"`
	ObjectBucket string    `json:"object_bucket"`
	ObjectKey    string    `json:"object_key"`
	Signature    []byte    `json:"signature"`
	KeyID        string    `json:"key_id"`
	CertSHA256   string    `json:"cert_sha256"`
	PublishedAt  time.Time `json:"published_at"`
}

// DownloadPath is where the report service serves v's PDF.
func (v ProgrammeReportVersion) DownloadPath() string {
	return "/v1/programme-reports/" + v.ReportID + "/versions/" + strconv.Itoa(v.Version) + "/pdf"
}

// ProgrammeObjectKey is where version n of a programme report lives in the reports bucket.
func ProgrammeObjectKey(reportID string, n int) string {
	return "programme/" + reportID + "/v" + strconv.Itoa(n) + ".pdf"
}

// ProgrammeContent is what a programme report is rendered from: the figures
// of its period and the monthly figures of the ChartMonths months up to its end.
type ProgrammeContent struct {
	Period             Period          `json:"period"`
	Label              string          `json:"label"`
	Start              time.Time       `json:"period_start"`
	End                time.Time       `json:"period_end"`
	BackfillAfterHours float64         `json:"backfill_after_hours"`
	RecurrenceDays     float64         `json:"recurrence_window_days"`
	Figures            PeriodFigures   `json:"figures"`
	Monthly            []PeriodFigures `json:"monthly"`
	Recurrences        []Recurrence    `json:"recurrences"`
	DataQuality        []DataProblem   `json:"data_quality"`
}

// BuildProgrammeContent computes the content of the programme report of the
// period starting at start from the facts of the incidents closed from
// ChartMonths months before its end (and the recurrence window before that).
func BuildProgrammeContent(period Period, start, now time.Time, window time.Duration, incidents []IncidentFacts,
	actions []ActionFacts) ProgrammeContent {
	end := period.Next(start)
	p := BuildProgramme(ProgrammeOptions{Period: period, From: start, To: end, Now: now, RecurrenceWindow: window},
		incidents, actions)
	m := BuildProgramme(ProgrammeOptions{Period: PeriodMonth, From: end.AddDate(0, -ChartMonths, 0), To: end, Now: now,
		RecurrenceWindow: window}, incidents, actions)
	return ProgrammeContent{Period: period, Label: period.Label(start), Start: start, End: end,
		BackfillAfterHours: p.BackfillAfterHours, RecurrenceDays: p.RecurrenceDays, Figures: p.Series[0],
		Monthly: m.Series, Recurrences: p.Recurrences, DataQuality: p.DataQuality}
}

// ProgrammeRelease is what ProgrammePublisher hands the store to commit.
type ProgrammeRelease struct {
	Version ProgrammeReportVersion
	PDF     []byte
	Event   events.Envelope
}

// ProgrammeReportStore keeps programme report versions.
type ProgrammeReportStore interface {
	// PublishProgrammeReport runs one transaction: it locks the report,
	// returns its latest version and false when that one was rendered from
	// dataSHA256, and otherwise calls build with the next version number and
	// stores and enqueues its result (true).
	PublishProgrammeReport(ctx context.Context, reportID, dataSHA256 string,
		build func(ctx context.Context, version int) (ProgrammeRelease, error)) (ProgrammeReportVersion, bool, error)
	// ProgrammeReports lists the versions of every programme report, newest period first.
	ProgrammeReports(ctx context.Context) ([]ProgrammeReportVersion, error)
	// ProgrammeReportPDF returns version n (0: the latest) of a programme
	// report with its PDF; ErrNotFound when there is none.
	ProgrammeReportPDF(ctx context.Context, reportID string, n int) (ProgrammeReportVersion, []byte, error)
}

// ProgrammePublisher renders, signs, stores and announces programme reports.
type ProgrammePublisher struct {
	Source   ProgrammeSource
	Store    ProgrammeReportStore
	Objects  ObjectStore
	Renderer *pdf.Renderer
	Signer   *Signer
	PDFSig   *pades.Signer
	// RecurrenceWindow is DefaultRecurrenceWindow when zero.
	RecurrenceWindow time.Duration
	Now              func() time.Time
}

// ErrPeriodNotStarted is returned for a period that has not begun.
var ErrPeriodNotStarted = errors.New("the period has not started")

// Publish publishes the programme report of the period starting at start:
// a new version, or (false) the latest one when the figures are unchanged.
// Render failures wrap pdf.ErrRender.
func (p *ProgrammePublisher) Publish(ctx context.Context, period Period, start time.Time) (ProgrammeReportVersion, bool, error) {
	now := p.Now().UTC().Truncate(time.Second)
	if start.After(now) {
		return ProgrammeReportVersion{}, false, ErrPeriodNotStarted
	}
	window := p.RecurrenceWindow
	if window == 0 {
		window = DefaultRecurrenceWindow
	}
	end := period.Next(start)
	incidents, actions, err := p.Source.ProgrammeFacts(ctx, end.AddDate(0, -ChartMonths, 0).Add(-window), end)
	if err != nil {
		return ProgrammeReportVersion{}, false, err
	}
	content := BuildProgrammeContent(period, start, now, window, incidents, actions)
	canon, err := CanonicalJSON(content)
	if err != nil {
		return ProgrammeReportVersion{}, false, err
	}
	sum := sha256.Sum256(canon)
	dataSHA := hex.EncodeToString(sum[:])
	reportID := ProgrammeReportIDFor(period, content.Label)
	return p.Store.PublishProgrammeReport(ctx, reportID, dataSHA, func(ctx context.Context, n int) (ProgrammeRelease, error) {
		cert := p.PDFSig.Certificate()
		doc := programmeDocument(content)
		doc.ReportID, doc.Version, doc.DataSHA256, doc.GeneratedAt = reportID, n, dataSHA, now
		doc.CertSubject, doc.CertSHA256 = cert.Subject.String(), p.PDFSig.Fingerprint()
		out, err := p.Renderer.RenderProgramme(doc)
		if err != nil {
			return ProgrammeRelease{}, err
		}
		signed, err := p.PDFSig.Sign(out.PDF, pades.Info{Name: cert.Subject.CommonName, Date: now,
			Reason: "Programme report " + content.Label + " version " + strconv.Itoa(n)})
		if err != nil {
			return ProgrammeRelease{}, fmt.Errorf("%w: %v", pdf.ErrRender, err)
		}
		pdfSum := sha256.Sum256(signed)
		v := ProgrammeReportVersion{ReportID: reportID, Version: n, Period: period, Label: content.Label,
			Start: content.Start, End: content.End, Incidents: content.Figures.Total.Incidents,
			PDFSHA256: hex.EncodeToString(pdfSum[:]), DataSHA256: dataSHA, SizeBytes: int64(len(signed)), Pages: out.Pages,
			ObjectBucket: bus.BucketReports, ObjectKey: ProgrammeObjectKey(reportID, n), KeyID: p.Signer.KeyID(),
			CertSHA256: p.PDFSig.Fingerprint(), PublishedAt: now}
		v.Signature = p.Signer.Sign(ProgrammeManifest(reportID, n, v.PDFSHA256, dataSHA))
		if err := p.Objects.PutObject(ctx, v.ObjectBucket, v.ObjectKey, signed); err != nil {
			return ProgrammeRelease{}, fmt.Errorf("put programme report pdf: %w", err)
		}
		env, err := events.New(events.TypeProgrammeReportPublished, Source, reportID, programmeReportPublished(v))
		if err != nil {
			return ProgrammeRelease{}, err
		}
		v.EventID = env.ID
		return ProgrammeRelease{Version: v, PDF: signed, Event: env}, nil
	})
}

func programmeReportPublished(v ProgrammeReportVersion) events.ProgrammeReportPublished {
	return events.ProgrammeReportPublished{ReportID: v.ReportID, Period: string(v.Period), Label: v.Label,
		PeriodStart: v.Start, PeriodEnd: v.End, Version: v.Version, Incidents: v.Incidents, PublishedAt: v.PublishedAt,
		PDFSHA256: v.PDFSHA256, DataSHA256: v.DataSHA256, SizeBytes: v.SizeBytes, Pages: v.Pages,
		ObjectBucket: v.ObjectBucket, ObjectKey: v.ObjectKey, DownloadPath: v.DownloadPath(),
		Signature: base64.StdEncoding.EncodeToString(v.Signature), KeyID: v.KeyID, CertSHA256: v.CertSHA256}
}

// verifyProgramme is Verify for a file that is no incident report version:
// it must be a published programme report version, its manifest signed by
// a trusted key and the signature inside it authentic.
func verifyProgramme(ctx context.Context, reader Reader, trusted TrustedKeys, embedded pades.Result, res VerifyResult) (VerifyResult, error) {
	v, err := reader.ProgrammeReportByDigest(ctx, res.PDFSHA256)
	if errors.Is(err, ErrNotFound) {
		res.Reason = "no report version has this SHA-256: the file was altered or is not an afteraction report"
		return res, nil
	}
	if err != nil {
		return res, err
	}
	res.Kind, res.ReportID, res.Version, res.DataSHA256, res.KeyID = "programme", v.ReportID, v.Version, v.DataSHA256, v.KeyID
	res.PublishedAt = &v.PublishedAt
	pub, ok := trusted[v.KeyID]
	switch {
	case !ok:
		res.Reason = "the signing key " + v.KeyID + " is not trusted: it is neither this service's key nor listed in REPORT_TRUSTED_PUBLIC_KEYS"
	case !ed25519.Verify(pub, ProgrammeManifest(v.ReportID, v.Version, v.PDFSHA256, v.DataSHA256), v.Signature):
		res.Reason = "the recorded signature does not verify with key " + v.KeyID
	case embedded.Status != pades.Authentic:
		res.Reason = "the signature inside the file is not valid: " + embedded.Reason
	default:
		res.Valid = true
		res.Reason = "the file is programme report " + v.Label + " (" + v.ReportID + ") version " + strconv.Itoa(v.Version) +
			", unaltered, signed by key " + v.KeyID
	}
	return res, nil
}
