package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/bus/bustest"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/services/intake/webhook"
)

func fixture(t *testing.T, source, name string) json.RawMessage {
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
		st, err := importRecords(ctx, b, cfg, "servicenow", records, &report, func() {})
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
