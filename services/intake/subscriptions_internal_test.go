package intake

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	pg "github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/schemas"
	"github.com/afteraction/afteraction/services/intake/postgres"
)

// newTestService is a Service on a fresh database, without NATS (HandleClosed
// does not publish: its events go through the outbox).
func newTestService(t *testing.T) *Service {
	t.Helper()
	pool := pgtest.New(t, pgtest.Migration{Schema: postgres.Schema, FS: postgres.Migrations()})
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return &Service{store: postgres.New(pool), log: zaptest.NewLogger(t), metrics: m,
		now: func() time.Time { return time.Now().UTC() }}
}

// closedMessage is a delivery of the example incident with externalID.
func closedMessage(t *testing.T, externalID string) *bus.Message {
	t.Helper()
	raw, err := fs.ReadFile(schemas.FS(), "events/examples/incident.closed.v1.example.json")
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.Replace(string(raw), `"external_id": "`, `"external_id": "`+externalID+`-`, 1))
	src := peekSource(raw)
	return &bus.Message{Subject: events.SubjectIncidentClosedPrefix + src, StreamSeq: 1,
		Envelope: events.Envelope{ID: "ev-" + externalID, Type: events.TypeIncidentClosed, Data: raw}}
}

func TestHandleClosedIsolatesAPermanentFailure(t *testing.T) {
	t.Parallel()
	s := newTestService(t)
	ms := []*bus.Message{closedMessage(t, "A"), closedMessage(t, "B"), closedMessage(t, "C")}
	// B passes every check but its registered event cannot fit in NATS: a
	// failure no retry can fix, caused by B alone.
	b, err := check(ms[1])
	if err != nil || b.Accepted == nil {
		t.Fatalf("check B: %v", err)
	}
	b.Accepted.Canonical = []byte(`"` + strings.Repeat("x", pg.MaxEventBytes) + `"`)
	ms[1].Prepared = b

	errs := s.HandleClosed(context.Background(), ms)
	if len(errs) != 3 {
		t.Fatalf("%d outcomes for 3 messages", len(errs))
	}
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("the neighbours of the failing message failed: %v", errs)
	}
	if !errors.Is(errs[1], pg.ErrEventTooLarge) {
		t.Fatalf("B: got %v, want ErrEventTooLarge (dead-lettered by the bus)", errs[1])
	}
	for _, m := range []*bus.Message{ms[0], ms[2]} {
		msg, _ := check(m)
		if _, err := s.store.Incident(context.Background(), msg.Accepted.IncidentID); err != nil {
			t.Errorf("%s not registered: %v", m.Envelope.ID, err)
		}
	}
	// A retry of the whole batch: A and C are duplicates now, B fails again alone.
	errs = s.HandleClosed(context.Background(), ms)
	if errs[0] != nil || errs[2] != nil || errs[1] == nil {
		t.Fatalf("second delivery: %v", errs)
	}
}
