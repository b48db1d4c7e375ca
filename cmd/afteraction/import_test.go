package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/services/intake/webhook"
)

func fixture(t testing.TB, source, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "services", "intake", "webhook", "testdata", source, name))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportIsSafeToRerunAndReportsEveryBadRecord(t *testing.T) {
	t.Parallel()
	srv := bustest.New(t)
	ctx := context.Background()
	b, err := bus.Connect(ctx, srv.URL(), "cli", zap.NewNop(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.EnsureTopology(ctx, bus.Topology{}); err != nil {
		t.Fatal(err)
	}
	closed := fixture(t, "servicenow", "incident_resolved_table_api.json")
	inProgress := fixture(t, "servicenow", "incident_in_progress.json")
	// A resolved record whose resolution and closure times are blank: an import
	// must not stamp it with today's date.
	var noClosure map[string]any
	if err := json.Unmarshal(fixture(t, "servicenow", "incident_resolved_table_api.json"), &noClosure); err != nil {
		t.Fatal(err)
	}
	rec := noClosure
	if r, ok := noClosure["result"].(map[string]any); ok {
		rec = r
	}
	rec["number"], rec["resolved_at"], rec["closed_at"], rec["sys_updated_on"] = "INC0099999", "", "", ""
	noClosureJSON, _ := json.Marshal(noClosure)
	records := []json.RawMessage{closed, inProgress, json.RawMessage(`{"result": 42}`), noClosureJSON}

	cfg := webhook.DefaultConfig()
	run := func() (importStats, string) {
		var report bytes.Buffer
		st, err := importRecords(ctx, b, cfg, "servicenow", records, &report, func() {}, importWindow)
		if err != nil {
			t.Fatal(err)
		}
		return st, report.String()
	}
	st, report := run()
	if st.Published != 1 || st.Skipped != 1 || st.Failed != 2 {
		t.Errorf("first run: %+v, want 1 published, 1 skipped (not closing), 2 failed\n%s", st, report)
	}
	lines := strings.Split(strings.TrimSpace(report), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"record":3`) || !strings.Contains(lines[1], `"record":4`) ||
		!strings.Contains(lines[1], "closure") {
		t.Errorf("error report does not name records 3 and 4 and why:\n%s", report)
	}
	run() // again: the same content gets the same Nats-Msg-Id

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(ctx, bus.StreamIncidents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d incidents after two runs, want 1", info.State.Msgs)
	}
	msg, err := stream.GetMsg(ctx, info.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	inc, err := events.Decode[events.IncidentClosed](events.TypeIncidentClosed, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(inc.Timestamps.ClosedAt) < 24*time.Hour {
		t.Errorf("closed_at %s looks like the import time, not the record's own", inc.Timestamps.ClosedAt)
	}
}

// closedRecords returns n distinct resolved ServiceNow records (INC1000000...).
func closedRecords(t testing.TB, n int) []json.RawMessage {
	t.Helper()
	records := make([]json.RawMessage, n)
	var doc map[string]any
	if err := json.Unmarshal(fixture(t, "servicenow", "incident_resolved_table_api.json"), &doc); err != nil {
		t.Fatal(err)
	}
	rec := doc
	if r, ok := doc["result"].(map[string]any); ok {
		rec = r
	}
	for i := range records {
		rec["number"] = fmt.Sprintf("INC%07d", 1000000+i)
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		records[i] = b
	}
	return records
}

func importBus(t testing.TB) (*bustest.Server, *bus.Bus) {
	t.Helper()
	srv := bustest.New(t)
	b, err := bus.Connect(context.Background(), srv.URL(), "cli", zap.NewNop(), bus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.EnsureTopology(context.Background(), bus.Topology{}); err != nil {
		t.Fatal(err)
	}
	return srv, b
}

// TestImportCancelledInTheMiddleThenRerunPublishesEachRecordOnce interrupts an
// import (as Ctrl-C does) after some records, then runs it again: the stream
// must hold every record exactly once, each under its content-derived id.
func TestImportCancelledInTheMiddleThenRerunPublishesEachRecordOnce(t *testing.T) {
	t.Parallel()
	srv, b := importBus(t)
	const n = 400
	records := closedRecords(t, n)
	cfg := webhook.DefaultConfig()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ticks := 0
	var report bytes.Buffer
	st, err := importRecords(ctx, b, cfg, "servicenow", records, &report, func() {
		if ticks++; ticks == 60 {
			cancel()
		}
	}, importWindow)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted import returned %v, want context.Canceled", err)
	}
	if st.Published < 60 || st.Published >= n || st.Failed != 0 {
		t.Fatalf("interrupted import: %+v, want at least 60 and fewer than %d published, none failed\n%s", st, n, report.String())
	}

	report.Reset()
	st, err = importRecords(context.Background(), b, cfg, "servicenow", records, &report, func() {}, importWindow)
	if err != nil {
		t.Fatal(err)
	}
	if st.Published != n || st.Failed != 0 || report.Len() != 0 {
		t.Fatalf("re-run: %+v, want all %d published\n%s", st, n, report.String())
	}

	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	stream, err := js.Stream(context.Background(), bus.StreamIncidents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Fatalf("stream holds %d incidents after an interrupted run and a re-run, want %d", info.State.Msgs, n)
	}
	ids, externals := map[string]bool{}, map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		msg, err := stream.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		id := msg.Header.Get(jetstream.MsgIDHeader)
		if ids[id] {
			t.Errorf("message id %s twice in the stream", id)
		}
		ids[id] = true
		inc, err := events.Decode[events.IncidentClosed](events.TypeIncidentClosed, msg.Data)
		if err != nil {
			t.Fatal(err)
		}
		externals[inc.ExternalID] = true
	}
	if len(externals) != n {
		t.Errorf("stream holds %d distinct incidents, want %d", len(externals), n)
	}
}

// TestImportKilledInTheMiddleThenRerunRegistersAndOpensEachOnce drops the
// import's connection while publishes are in flight (as a killed process
// does: some records were stored, some not, and the import does not know
// which), then imports the file again into the running stack: intake holds
// every record once (one incident and one revision each, no gap in the
// external ids) and review opened exactly one review per incident.
func TestImportKilledInTheMiddleThenRerunRegistersAndOpensEachOnce(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDatabase(t)
	s := startTestStackOn(t, dsn)
	const n = 300
	records := closedRecords(t, n)
	cfg := webhook.DefaultConfig()
	connect := func() *bus.Bus {
		b, err := bus.Connect(context.Background(), s.NATSURL, "import", zap.NewNop(), s.Client)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	killed := connect()
	ticks := 0
	st, err := importRecords(context.Background(), killed, cfg, "servicenow", records, io.Discard, func() {
		if ticks++; ticks == 80 {
			go killed.Close()
		}
	}, importWindow)
	if err == nil || st.Published >= n {
		t.Fatalf("killed import: %+v, %v; want an error and fewer than %d published", st, err, n)
	}

	b := connect()
	defer b.Close()
	var report bytes.Buffer
	if st, err := importRecords(context.Background(), b, cfg, "servicenow", records, &report, func() {}, importWindow); err != nil || st.Published != n {
		t.Fatalf("re-run: %+v, %v\n%s", st, err, report.String())
	}

	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	scan := func(query string, dest ...any) {
		t.Helper()
		if err := pool.QueryRow(context.Background(), query).Scan(dest...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	// Review opens a few dozen reviews a second on a loaded machine.
	for deadline, reviews := time.Now().Add(3*time.Minute), 0; reviews < n && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		scan(`SELECT count(*) FROM review.reviews`, &reviews)
	}
	var incidents, distinct, revisions, maxRevision, reviews, reviewed int
	var first, last string
	scan(`SELECT count(*), count(DISTINCT external_id), max(revision), min(external_id), max(external_id) FROM intake.incidents`,
		&incidents, &distinct, &maxRevision, &first, &last)
	scan(`SELECT count(*) FROM intake.incident_revisions`, &revisions)
	scan(`SELECT count(*), count(DISTINCT incident_id) FROM review.reviews`, &reviews, &reviewed)
	if incidents != n || distinct != n || revisions != n || maxRevision != 1 {
		t.Errorf("intake holds %d incidents (%d distinct), %d revisions, latest revision %d; want %d, %d, %d, 1",
			incidents, distinct, revisions, maxRevision, n, n, n)
	}
	if first != "INC1000000" || last != fmt.Sprintf("INC%07d", 1000000+n-1) {
		t.Errorf("external ids run from %s to %s: a gap", first, last)
	}
	if reviews != n || reviewed != n {
		t.Errorf("review opened %d reviews for %d incidents, want %d each", reviews, reviewed, n)
	}
}

// freshBus connects to a fresh embedded server; with syncAlways it fsyncs
// every write before its PubAck, as the dev stack's does (sync_interval:
// always), else it syncs on the server's interval.
func freshBus(b *testing.B, syncAlways bool) *bus.Bus {
	b.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: b.TempDir(), SyncAlways: syncAlways})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	bb, err := bus.Connect(context.Background(), srv.ClientURL(), "cli", zap.NewNop(), bus.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bb.Close)
	if err := bb.EnsureTopology(context.Background(), bus.Topology{}); err != nil {
		b.Fatal(err)
	}
	return bb
}

// BenchmarkImport publishes 1,000 distinct ServiceNow records per iteration
// (re-runs are deduplicated by the stream, so every iteration gets a fresh
// server, fsyncing every write as the dev stack does) one at a time
// (window=1, the old way) and with the import's window of publishes in flight;
// then with the window into a server that does not fsync every write, which
// shows what the per-write fsync costs.
func BenchmarkImport(b *testing.B) {
	records := closedRecords(b, 1000)
	for _, window := range []int{1, importWindow} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) { benchImport(b, records, window, true) })
	}
	b.Run(fmt.Sprintf("window=%d,sync=interval", importWindow), func(b *testing.B) {
		benchImport(b, records, importWindow, false)
	})
}

// BenchmarkImportBackfill is the back-fill figure of `make bench`: 100,000
// ServiceNow records (~2.6 KiB each) imported into a fresh server that fsyncs
// every write, with the rate and the time 1,000,000 would take at that rate.
func BenchmarkImportBackfill(b *testing.B) {
	benchImport(b, closedRecords(b, 100_000), importWindow, true)
}

func benchImport(b *testing.B, records []json.RawMessage, window int, syncAlways bool) {
	cfg := webhook.DefaultConfig()
	var elapsed time.Duration
	for range b.N {
		b.StopTimer()
		bb := freshBus(b, syncAlways)
		b.StartTimer()
		start := time.Now()
		st, err := importRecords(context.Background(), bb, cfg, "servicenow", records, io.Discard, func() {}, window)
		elapsed += time.Since(start)
		if err != nil || st.Published != len(records) {
			b.Fatalf("%+v %v", st, err)
		}
	}
	rate := float64(len(records)*b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(1e6/rate, "s-per-1M")
}
