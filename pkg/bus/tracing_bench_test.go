package bus

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/afteraction/afteraction/pkg/events"
)

// BenchmarkTracingPerMessage measures what tracing adds to one message's
// trip through the bus, without NATS or Postgres: the consumer span around
// the handler (started, handed to the handler's context, ended after
// settling) and the relay's publish span with its header. Compare ns/op and
// allocs/op of "off" (no provider, the default) with "on" (an SDK provider
// whose exporter discards every span); "off, upstream context" is tracing
// off with a traceparent arriving, which is passed on; "baseline" builds the
// message alone, as the bus did before tracing.
func BenchmarkTracingPerMessage(b *testing.B) {
	env := events.Envelope{ID: "0192f0c4-1b2c-7d3e-8f40-5a6b7c8d9e0f", Type: events.TypeActionUpdated,
		Source: "afteraction/bench", Subject: "a1", Time: time.Now(), Data: []byte(`{}`)}
	upstream := env
	upstream.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	exporter := tracetest.NewNoopExporter()
	on := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
	b.Cleanup(func() { _ = on.Shutdown(context.Background()) })
	for _, c := range []struct {
		name string
		tp   trace.TracerProvider
		env  events.Envelope
	}{
		{"baseline", nil, env},
		{"off", nil, env},
		{"off, upstream context", nil, upstream},
		{"on", on, env},
	} {
		b.Run(c.name, func(b *testing.B) {
			bus := &Bus{}
			bus.tracer, bus.traced = tracerOf(c.tp)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if c.name == "baseline" {
					_ = NewMsg(events.SubjectActionUpdated, c.env)
					continue
				}
				m := &Message{Subject: events.SubjectActionUpdated, Envelope: c.env}
				bus.startProcess("bench", m)
				hctx := m.Context(ctx)
				out, span := bus.startPublish(hctx, events.SubjectActionUpdated, c.env)
				_ = NewMsg(events.SubjectActionUpdated, out)
				endSpan(span, nil)
				endProcess(m)
			}
		})
	}
}
