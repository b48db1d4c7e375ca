package bus

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/afteraction/afteraction/pkg/events"
	"github.com/afteraction/afteraction/pkg/tracing"
)

// Spans of the bus (see Options.TracerProvider). A publish (Publish, and the
// relay's publish of an outbox row) is a producer span whose context travels
// in the message as ce-traceparent / ce-tracestate; the handling of a
// received message is a consumer span, a child of that context, ended once
// the message is settled. A missing or malformed traceparent makes the
// consumer span a new root; the message is handled as usual.

// Context returns ctx carrying the span of m's handling, so that what a
// handler writes (outbox rows, further publishes) joins m's trace. Consume
// and ConsumeInTx give their handlers such a context already; a BatchHandler
// calls Context (or Trace) per message. Without tracing and without a
// traceparent on m, it returns ctx as it is.
func (m *Message) Context(ctx context.Context) context.Context {
	if m.span == nil {
		return ctx
	}
	return trace.ContextWithSpan(ctx, m.span)
}

// Trace returns the W3C trace context of m's handling span (with tracing off,
// the one m arrived with), the zero Context when there is none. A batch
// handler that builds events for several messages at once stores it in each
// event's envelope (TraceParent, TraceState) so the event joins its message's trace.
func (m *Message) Trace() tracing.Context {
	return tracing.FromContext(m.Context(context.Background()))
}

// Traced returns env carrying the trace context of m's handling (see Trace),
// unless env has one already. A set-based BatchWriter, which enqueues the
// events of many messages with the batch's context, passes each event it
// makes for m through it, so the event joins m's trace.
func (m *Message) Traced(env events.Envelope) events.Envelope {
	if env.TraceParent == "" {
		tc := m.Trace()
		env.TraceParent, env.TraceState = tc.Parent, tc.State
	}
	return env
}

// tracerOf returns the bus's tracer for tp and whether it records anything.
func tracerOf(tp trace.TracerProvider) (trace.Tracer, bool) {
	if tp == nil {
		return tracing.Tracer(nil), false
	}
	_, off := tp.(noop.TracerProvider)
	return tracing.Tracer(tp), !off
}

// startProcess starts the consumer span of m for durable (a child of the
// trace context m carries).
func (b *Bus) startProcess(durable string, m *Message) {
	tc := tracing.Context{Parent: m.Envelope.TraceParent, State: m.Envelope.TraceState}
	if tc.Parent == "" && !b.traced {
		return // nothing to record and nothing to pass on
	}
	_, m.span = b.tracer.Start(tc.Into(context.Background()), "process "+m.Subject, trace.WithSpanKind(trace.SpanKindConsumer))
	if m.span.IsRecording() {
		m.span.SetAttributes(messageAttributes("process", m.Subject, m.Envelope)...)
		m.span.SetAttributes(attribute.String("messaging.consumer.group.name", durable),
			attribute.Int64("afteraction.stream_seq", int64(m.StreamSeq)), attribute.Int64("afteraction.delivered", int64(m.Delivered)))
	}
}

// endProcess ends m's consumer span with its outcome.
func endProcess(m *Message) {
	if m.span == nil {
		return
	}
	endSpan(m.span, m.outcome)
}

// startPublish starts the producer span of publishing env on subject, a child
// of ctx's span or, when ctx has none, of the trace context env carries (an
// outbox row's), and returns env carrying the new span's trace context.
func (b *Bus) startPublish(ctx context.Context, subject string, env events.Envelope) (events.Envelope, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if env.TraceParent == "" && !b.traced {
			return env, noop.Span{}
		}
		ctx = tracing.Context{Parent: env.TraceParent, State: env.TraceState}.Into(ctx)
	}
	ctx, span := b.tracer.Start(ctx, "send "+subject, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(messageAttributes("send", subject, env)...)
	}
	tc := tracing.FromContext(ctx)
	env.TraceParent, env.TraceState = tc.Parent, tc.State
	return env, span
}

func messageAttributes(op, subject string, env events.Envelope) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", op),
		attribute.String("messaging.destination.name", subject),
		attribute.String("messaging.message.id", env.ID),
		attribute.String("cloudevents.event_id", env.ID),
		attribute.String("cloudevents.event_type", env.Type),
		attribute.String("cloudevents.event_source", env.Source),
		attribute.String("cloudevents.event_subject", env.Subject),
	}
}

// endSpan records err (if any) on span and ends it.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
