package bus_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/afteraction/afteraction/pkg/bus"
	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres"
	"github.com/afteraction/afteraction/pkg/servicetest"
	"github.com/afteraction/afteraction/pkg/tracing"
)

// relayingConsumer consumes action.updated on b in one transaction per batch
// (ConsumeInTx); a message whose note is "first" makes the handler enqueue a
// "second" through the outbox, as a service's handler does.
func (e *env) relayingConsumer(b *bus.Bus, durable string) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := bus.Typed(events.TypeActionUpdated, func(ctx context.Context, m *bus.Message, u events.ActionUpdated) error {
		return postgres.InTx(ctx, e.pool, func(tx pgx.Tx) error {
			fresh, err := postgres.MarkProcessed(ctx, tx, m.Envelope.ID)
			if err != nil || !fresh {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO applied (event_id, note) VALUES ($1, $2)`, m.Envelope.ID, u.Note); err != nil {
				return err
			}
			if u.Note != "first" {
				return nil
			}
			return postgres.Enqueue(ctx, tx, events.SubjectActionUpdated, updated(e.t, "second"))
		})
	})
	go func() { done <- b.ConsumeInTx(ctx, cfg(durable), e.pool, h) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("consume: %v", err)
		}
	})
}

// lastHeader returns the headers of the last message on subject.
func (e *env) lastHeader(subject string) nats.Header {
	e.t.Helper()
	stream, err := e.js().Stream(context.Background(), bus.StreamAfteraction)
	if err != nil {
		e.t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		e.t.Fatal(err)
	}
	return msg.Header
}

// The trace goes publish → handler → outbox row → relay publish → handler:
// every hop is a span of one trace, each the child of the one before, and the
// message the relay sent carries the relay span's context as ce-traceparent.
func TestTraceContextTravelsThroughTheOutboxAndTheHeaders(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b, err := bus.Connect(ctx, e.srv.URL(), "bustest", e.log, bus.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	e.relayingConsumer(b, "traced")
	e.runRelay(b)

	rootCtx, root := tp.Tracer("test").Start(ctx, "upstream")
	first := updated(t, "first")
	if err := b.Publish(rootCtx, events.SubjectActionUpdated, first); err != nil {
		t.Fatal(err)
	}
	root.End()
	// upstream, send, process first, relay send, process second
	servicetest.Eventually(t, "five spans ended", func() bool { return len(rec.Ended()) >= 5 })
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("span %q is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), root.SpanContext().TraceID())
		}
		key := s.Name()
		if s.SpanKind() == trace.SpanKindConsumer || s.SpanKind() == trace.SpanKindProducer {
			key += " " + which(s, first.ID)
		}
		spans[key] = s
	}
	chain := []string{"upstream", "send afteraction.action.updated first", "process afteraction.action.updated first",
		"send afteraction.action.updated second", "process afteraction.action.updated second"}
	for i := 1; i < len(chain); i++ {
		child, parent := spans[chain[i]], spans[chain[i-1]]
		if child == nil || parent == nil {
			t.Fatalf("missing span %q or %q among %v", chain[i], chain[i-1], keys(spans))
		}
		if child.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("parent of %q is %s, want %q (%s)", chain[i], child.Parent().SpanID(), chain[i-1], parent.SpanContext().SpanID())
		}
	}
	relaySpan := spans["send afteraction.action.updated second"]
	if got, want := e.lastHeader(events.SubjectActionUpdated).Get(bus.HeaderTraceParent), tracing.FromContext(
		trace.ContextWithSpanContext(ctx, relaySpan.SpanContext())).Parent; got != want {
		t.Errorf("ce-traceparent of the relayed message = %q, want the relay span's %q", got, want)
	}
}

// which says whether a messaging span is about the event firstID ("first")
// or the one its handler enqueued ("second").
func which(s sdktrace.ReadOnlySpan, firstID string) string {
	for _, kv := range s.Attributes() {
		if kv.Key == "cloudevents.event_id" && kv.Value.AsString() == firstID {
			return "first"
		}
	}
	return "second"
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// A malformed ce-traceparent does not fail the message: it is handled, and
// its span starts a trace of its own.
func TestMalformedTraceparentIsIgnored(t *testing.T) {
	t.Parallel()
	e := setup(t)
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b, err := bus.Connect(ctx, e.srv.URL(), "bustest", e.log, bus.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	e.relayingConsumer(b, "malformed")

	ev := updated(t, "malformed")
	ev.TraceParent = "00-not-a-trace-context-01"
	if _, err := e.js().PublishMsg(ctx, bus.NewMsg(events.SubjectActionUpdated, ev)); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the message applied", func() bool { return e.count(ev.ID) == 1 })
	servicetest.Eventually(t, "its span ended", func() bool { return len(rec.Ended()) == 1 })
	s := rec.Ended()[0]
	if s.Parent().IsValid() || !s.SpanContext().IsValid() {
		t.Errorf("span %q: parent %v, context %v; want a new root", s.Name(), s.Parent(), s.SpanContext())
	}
}

// With tracing off (no provider) nothing is recorded, but a trace context
// that arrives still travels on through the outbox unchanged in its trace.
func TestTraceContextPassesThroughWithTracingOff(t *testing.T) {
	t.Parallel()
	e := setup(t)
	b := connect(t, e.srv.URL(), e.log)
	e.relayingConsumer(b, "untraced")
	e.runRelay(b)

	const upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	first := updated(t, "first")
	first.TraceParent, first.TraceState = upstream, "vendor=x"
	if err := b.Publish(context.Background(), events.SubjectActionUpdated, first); err != nil {
		t.Fatal(err)
	}
	servicetest.Eventually(t, "the second event relayed", func() bool { return e.streamCount(events.SubjectActionUpdated) == 2 })
	h := e.lastHeader(events.SubjectActionUpdated)
	if got := h.Get(bus.HeaderTraceParent); got != upstream {
		t.Errorf("ce-traceparent = %q, want the upstream %q passed on", got, upstream)
	}
	if got := h.Get(bus.HeaderTraceState); got != "vendor=x" {
		t.Errorf("ce-tracestate = %q, want vendor=x", got)
	}
}
