package report_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/report"
	"github.com/afteraction/afteraction/services/report/pades"
	"github.com/afteraction/afteraction/services/report/pades/padestest"
	"github.com/afteraction/afteraction/services/report/pdf"
	reportpg "github.com/afteraction/afteraction/services/report/postgres"
)

func exampleReview(t testing.TB) events.ReviewCompleted {
	t.Helper()
	b, err := fs.ReadFile(schemas.FS(), "events/examples/afteraction.review.completed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	rv, err := events.Decode[events.ReviewCompleted](events.TypeReviewCompleted, b)
	if err != nil {
		t.Fatal(err)
	}
	return rv
}

// fakeObjects is an in-memory object store.
type fakeObjects struct {
	mu   sync.Mutex
	objs map[string][]byte
	put  func(key string) error // optional failure injection
}

func (f *fakeObjects) PutObject(_ context.Context, bucket, key string, data []byte) error {
	if f.put != nil {
		if err := f.put(key); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objs == nil {
		f.objs = map[string][]byte{}
	}
	f.objs[bucket+"/"+key] = append([]byte(nil), data...)
	return nil
}

type fixture struct {
	pool    *pgxpool.Pool
	store   *report.PostgresStore
	svc     *report.Service
	objects *fakeObjects
	signer  *report.Signer
	// pdfSigner signs inside the PDFs.
	pdfSigner *pades.Signer
}

var (
	rendererOnce sync.Once
	renderer     *pdf.Renderer
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.New(t, pgtest.Migration{Schema: reportpg.Schema, FS: reportpg.Migrations()})
	store := report.NewPostgresStore(pool)
	signer, err := report.NewSigner(make([]byte, ed25519.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.RegisterKey(context.Background(), signer.KeyID(), signer.Public()); err != nil {
		t.Fatal(err)
	}
	rendererOnce.Do(func() { renderer, err = pdf.NewRenderer() })
	if err != nil || renderer == nil {
		t.Fatalf("renderer: %v", err)
	}
	pdfSigner := testPDFSigner(t)
	if err := store.RegisterCertificate(context.Background(), pdfSigner.Certificate()); err != nil {
		t.Fatal(err)
	}
	objects := &fakeObjects{}
	svc, err := report.NewService(store, objects, renderer, signer, pdfSigner, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{pool: pool, store: store, svc: svc, objects: objects, signer: signer, pdfSigner: pdfSigner}
}

var (
	pdfSignerOnce sync.Once
	pdfSigner     *pades.Signer
)

// testPDFSigner is one self-signed certificate shared by the tests of a run.
func testPDFSigner(t testing.TB) *pades.Signer {
	t.Helper()
	pdfSignerOnce.Do(func() { pdfSigner = padestest.Signer(t, "afteraction report tests") })
	return pdfSigner
}

func message(id string) *bus.Message {
	return &bus.Message{Envelope: events.Envelope{ID: id, Time: time.Date(2026, 3, 20, 11, 5, 0, 0, time.UTC)}}
}

func (f *fixture) versions(t *testing.T, reportID string) []report.Version {
	t.Helper()
	_, vs, err := f.store.Report(context.Background(), reportID)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestReportVersionsAreImmutable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	if err := f.svc.HandleReviewCompleted(ctx, message("e1"), rv); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE report_versions SET pdf_sha256 = repeat('0', 64)`,
		`UPDATE report_versions SET pdf = 'forged'::bytea`,
		`DELETE FROM report_versions`,
		`TRUNCATE report_versions CASCADE`,
	} {
		_, err := f.pool.Exec(ctx, stmt)
		if err == nil || !strings.Contains(err.Error(), "immutable") {
			t.Errorf("%s: err = %v, want the immutability trigger to refuse it", stmt, err)
		}
	}
	if vs := f.versions(t, report.ReportIDFor(rv.IncidentID)); len(vs) != 1 {
		t.Fatalf("versions = %d, want 1", len(vs))
	}
}

func TestHandleReviewCompletedPublishesSignedVersions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	reportID := report.ReportIDFor(rv.IncidentID)

	if err := f.svc.HandleReviewCompleted(ctx, message("e1"), rv); err != nil {
		t.Fatal(err)
	}
	// The same event again, and the same data in a new event: no new version.
	for _, id := range []string{"e1", "e2"} {
		if err := f.svc.HandleReviewCompleted(ctx, message(id), rv); err != nil {
			t.Fatal(err)
		}
	}
	vs := f.versions(t, reportID)
	if len(vs) != 1 {
		t.Fatalf("versions = %d after duplicates, want 1", len(vs))
	}
	v1 := vs[0]
	if !ed25519.Verify(f.signer.Public(), report.Manifest(v1.ReportID, 1, v1.PDFSHA256, v1.DataSHA256), v1.Signature) {
		t.Error("version 1 signature does not verify over the manifest")
	}
	if v1.ObjectKey != reportID+"/v1.pdf" || f.objects.objs["reports/"+v1.ObjectKey] == nil {
		t.Errorf("object key %q not put (have %d objects)", v1.ObjectKey, len(f.objects.objs))
	}
	want, _ := report.DataSHA256(rv)
	if v1.DataSHA256 != want {
		t.Errorf("data digest %s, want %s", v1.DataSHA256, want)
	}

	// A corrected review: version 2; version 1 untouched.
	rv.Summary += " Corrected after legal review."
	rv.Amendment, rv.AmendmentReason = 1, "Legal review."
	if err := f.svc.HandleReviewCompleted(ctx, message("e3"), rv); err != nil {
		t.Fatal(err)
	}
	vs = f.versions(t, reportID)
	if len(vs) != 2 || vs[1].Version != 2 {
		t.Fatalf("versions = %+v, want 2", vs)
	}
	if vs[0].PDFSHA256 != v1.PDFSHA256 || !vs[0].PublishedAt.Equal(v1.PublishedAt) {
		t.Error("version 1 changed")
	}
	var outbox int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE ce_type = $1`, events.TypeReportPublished).Scan(&outbox); err != nil {
		t.Fatal(err)
	}
	if outbox != 2 {
		t.Errorf("outbox holds %d report.published events, want 2", outbox)
	}
}

// TestVersionsFollowAmendmentsNotArrival delivers amendment 2 before
// amendment 1 (a DLQ replay, a reordering): each gets the number of its
// amendment, and the latest version stays amendment 2.
func TestVersionsFollowAmendmentsNotArrival(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	reportID := report.ReportIDFor(rv.IncidentID)
	amend := func(n int) events.ReviewCompleted {
		a := rv
		a.Amendment, a.AmendmentReason = n, fmt.Sprintf("Correction %d.", n)
		a.Summary = rv.Summary + a.AmendmentReason
		return a
	}
	for i, a := range []events.ReviewCompleted{rv, amend(2), amend(1)} {
		if err := f.svc.HandleReviewCompleted(ctx, message(fmt.Sprint("e", i)), a); err != nil {
			t.Fatal(err)
		}
	}
	vs := f.versions(t, reportID)
	if len(vs) != 3 {
		t.Fatalf("versions = %+v, want 3", vs)
	}
	for i, v := range vs {
		want, _ := report.DataSHA256(map[int]events.ReviewCompleted{0: rv, 1: amend(1), 2: amend(2)}[i])
		if v.Version != i+1 || v.DataSHA256 != want {
			t.Errorf("version %d renders data %s, want amendment %d (%s)", v.Version, v.DataSHA256, i, want)
		}
	}
	latest, _, err := f.store.VersionPDF(ctx, reportID, 0)
	if err != nil || latest.Version != 3 {
		t.Fatalf("latest = version %d (%v), want 3 (amendment 2)", latest.Version, err)
	}

	// Other data for an amendment already rendered has no number: permanent.
	other := amend(1)
	other.Summary += " A different text."
	err = f.svc.HandleReviewCompleted(ctx, message("e9"), other)
	if !bus.IsPermanent(err) || !errors.Is(err, report.ErrVersionTaken) {
		t.Fatalf("err = %v, want a permanent ErrVersionTaken", err)
	}
	if vs := f.versions(t, reportID); len(vs) != 3 {
		t.Fatalf("versions = %d after the conflict, want 3", len(vs))
	}
}

func TestObjectStoreFailureIsRetriedWithoutAVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	f.objects.put = func(string) error { return errors.New("object store unavailable") }
	err := f.svc.HandleReviewCompleted(ctx, message("e1"), rv)
	if err == nil || bus.IsPermanent(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
	if _, _, err := f.store.Report(ctx, report.ReportIDFor(rv.IncidentID)); !errors.Is(err, report.ErrNotFound) {
		t.Fatalf("report exists after a rolled-back publish: %v", err)
	}
	f.objects.put = nil
	if err := f.svc.HandleReviewCompleted(ctx, message("e1"), rv); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if vs := f.versions(t, report.ReportIDFor(rv.IncidentID)); len(vs) != 1 || vs[0].Version != 1 {
		t.Fatalf("after retry: %+v", vs)
	}
}

func TestReadModelProgrammeMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	rv := exampleReview(t)
	reg := events.IncidentRegistered{IncidentID: rv.IncidentID, Revision: 1, Source: "jira", ExternalID: "X",
		RegisteredAt: rv.Incident.Timestamps.ClosedAt, Incident: rv.Incident}
	for range 2 { // a redelivery changes nothing
		if err := f.store.ApplyIncidentRegistered(ctx, "inc-1", reg); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.HandleReviewCompleted(ctx, message("rv-1"), rv); err != nil {
		t.Fatal(err)
	}
	actionID := "0195a5d0-1c22-7b00-8e31-5b7d9c0e1f99"
	created := events.ActionCreated{ActionID: actionID, IncidentID: rv.IncidentID, ReviewID: rv.ReviewID, Key: "k",
		Title: "t", Category: events.CategoryTraining, Status: events.StatusOpen, DueDate: "2026-03-31",
		CreatedAt: rv.CompletedAt}
	if err := f.store.ApplyActionCreated(ctx, "a-1", created); err != nil {
		t.Fatal(err)
	}
	if err := f.store.ApplyActionOverdue(ctx, "a-2", events.ActionOverdue{ActionID: actionID, IncidentID: rv.IncidentID,
		Title: "t", DueDate: "2026-03-31", Status: events.StatusOpen, DaysOverdue: 1, DetectedAt: rv.CompletedAt.Add(300 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	m, err := f.store.ProgrammeMetrics(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if m.Incidents.Total != 1 || m.Incidents.BySeverity["high"] != 1 || m.Incidents.ByCategory["phishing"] != 1 {
		t.Errorf("incidents = %+v", m.Incidents)
	}
	wantClose := rv.Incident.Timestamps.ClosedAt.Sub(*rv.Incident.Timestamps.DetectedAt).Seconds()
	if m.DetectedToClosed.Count != 1 || m.DetectedToClosed.MedianSeconds == nil || *m.DetectedToClosed.MedianSeconds != wantClose {
		t.Errorf("detected→closed = %+v, want %v s", m.DetectedToClosed, wantClose)
	}
	if m.ClosedToReviewed.Count != 1 {
		t.Errorf("closed→reviewed = %+v", m.ClosedToReviewed)
	}
	if m.Actions.Created != 1 || m.Actions.Open != 1 || m.Actions.Overdue != 1 {
		t.Errorf("actions = %+v", m.Actions)
	}
	if err := f.store.ApplyActionUpdated(ctx, "a-3", events.ActionUpdated{ActionID: actionID, IncidentID: rv.IncidentID,
		Status: events.StatusDone, ChangedAt: rv.CompletedAt.Add(400 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.ApplyActionUpdated(ctx, "a-4", events.ActionUpdated{ActionID: actionID, IncidentID: rv.IncidentID,
		Status: events.StatusInProgress, ChangedAt: rv.CompletedAt.Add(350 * time.Hour)}); err != nil { // late, older
		t.Fatal(err)
	}
	m, err = f.store.ProgrammeMetrics(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if m.Actions.Done != 1 || m.Actions.Overdue != 0 || m.Actions.InProgress != 0 {
		t.Errorf("after done: actions = %+v", m.Actions)
	}
}
