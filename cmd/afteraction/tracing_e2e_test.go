package main

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/postgres/pgtest"
	"github.com/afteraction/afteraction/pkg/servicetest"
)

// One incident is one trace: closed upstream (the test's root span), it is
// registered by intake, opens a review, is completed by a facilitator in the
// console days later as far as the trace knows, and ends as a report. Every
// hop is a span of the root's trace, each the child of the hop that caused
// it, and the completion links to the console request that did it.
func TestOneIncidentIsOneTraceFromIntakeToReport(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, err := StartStack(ctx, StackConfig{
		DatabaseURL: pgtest.NewDatabase(t), StoreDir: t.TempDir(), TracerProvider: tp,
		Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})

	rootCtx, root := tp.Tracer("upstream").Start(ctx, "ticketing system closes the incident")
	res, err := runScenario(rootCtx, s, demoIncidentForTest(t, "SEC-TRACE-1"), zap.NewNop())
	root.End()
	if err != nil {
		t.Fatal(err)
	}
	traceID := root.SpanContext().TraceID()

	// Each hop, found by the span that handles or sends an event of a type
	// (in a consumer group for handling), and the hop that must be its parent.
	type hop struct{ name, kind, typ, group, parent string }
	hops := []hop{
		{"intake handles the closed incident", "process", events.TypeIncidentClosed, "intake-incidents-closed", "root"},
		{"intake's relay sends incident.registered", "send", events.TypeIncidentRegistered, "", "intake handles the closed incident"},
		{"review handles incident.registered", "process", events.TypeIncidentRegistered, "review-incident-registered", "intake's relay sends incident.registered"},
		{"review's relay sends review.opened", "send", events.TypeReviewOpened, "", "review handles incident.registered"},
		{"the review is completed", "complete review", "", "", "review handles incident.registered"},
		{"review's relay sends review.completed", "send", events.TypeReviewCompleted, "", "the review is completed"},
		{"report handles review.completed", "process", events.TypeReviewCompleted, "report-review-completed", "review's relay sends review.completed"},
		{"report's relay sends report.published", "send", events.TypeReportPublished, "", "report handles review.completed"},
	}
	found := map[string]sdktrace.ReadOnlySpan{}
	servicetest.Eventually(t, "a span for every hop", func() bool {
		for _, h := range hops {
			if found[h.name] == nil {
				found[h.name] = findSpan(rec.Ended(), h.kind, h.typ, h.group)
			}
			if found[h.name] == nil {
				return false
			}
		}
		return true
	})
	for _, h := range hops {
		span := found[h.name]
		if span.SpanContext().TraceID() != traceID {
			t.Errorf("%s: trace %s, want the incident's %s", h.name, span.SpanContext().TraceID(), traceID)
		}
		want := root.SpanContext().SpanID()
		if h.parent != "root" {
			want = found[h.parent].SpanContext().SpanID()
		}
		if span.Parent().SpanID() != want {
			t.Errorf("%s: parent %s, want %s (%s)", h.name, span.Parent().SpanID(), h.parent, want)
		}
	}

	// The completion links to the console request that signed the review off.
	completion := found["the review is completed"]
	if links := completion.Links(); len(links) != 1 || !isServerSpan(rec.Ended(), links[0].SpanContext) {
		t.Errorf("the completion links to %v, want the console request's server span", completion.Links())
	}

	// Every span about the pipeline's events is in the one trace: none was
	// left behind in a trace of its own.
	pipeline := map[string]bool{events.TypeIncidentClosed: true, events.TypeIncidentRegistered: true, events.TypeReviewOpened: true,
		events.TypeReviewCompleted: true, events.TypeActionCreated: true, events.TypeReportPublished: true}
	n := 0
	for _, span := range rec.Ended() {
		if typ := attr(span, "cloudevents.event_type"); pipeline[typ] {
			n++
			if span.SpanContext().TraceID() != traceID {
				t.Errorf("span %q (%s, event %s) is in trace %s, want %s", span.Name(), typ,
					attr(span, "cloudevents.event_id"), span.SpanContext().TraceID(), traceID)
			}
		}
	}
	t.Logf("%d spans of pipeline events in trace %s; report %s", n, traceID, res.ReportID)
}

// findSpan returns the first ended span that handles (kind "process", in
// consumer group) or sends (kind "send") an event of type typ, or, for any
// other kind, the span of that name.
func findSpan(spans []sdktrace.ReadOnlySpan, kind, typ, group string) sdktrace.ReadOnlySpan {
	for _, s := range spans {
		switch {
		case kind == "process" && s.SpanKind() == trace.SpanKindConsumer:
			if attr(s, "cloudevents.event_type") == typ && attr(s, "messaging.consumer.group.name") == group {
				return s
			}
		case kind == "send" && s.SpanKind() == trace.SpanKindProducer:
			if attr(s, "cloudevents.event_type") == typ {
				return s
			}
		case kind != "process" && kind != "send" && s.Name() == kind:
			return s
		}
	}
	return nil
}

func isServerSpan(spans []sdktrace.ReadOnlySpan, sc trace.SpanContext) bool {
	for _, s := range spans {
		if s.SpanContext().Equal(sc) {
			return s.SpanKind() == trace.SpanKindServer
		}
	}
	return false
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.AsString()
		}
	}
	return ""
}
