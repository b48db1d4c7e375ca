// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// variables and carries W3C Trace Context (traceparent, tracestate) across
// afteraction's hops: HTTP requests, NATS messages (as the CloudEvents
// distributed-tracing extension, ce-traceparent and ce-tracestate) and the
// outbox rows between a handler's commit and the relay's publish.
//
// Tracing is off unless an OTLP endpoint is configured: the provider is then
// OpenTelemetry's no-op one, spans cost a few allocations at most and record
// nothing, and a traceparent that arrives is still passed on unchanged, so a
// trace survives a hop through a service that does not export.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// Config is the tracing configuration, read by LoadConfig from the standard
// OpenTelemetry variables. The zero value is tracing off.
type Config struct {
	// Endpoint is the OTLP/HTTP URL spans are posted to:
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, or else
	// OTEL_EXPORTER_OTLP_ENDPOINT followed by /v1/traces. Empty: tracing off.
	Endpoint string
	// ServiceName (OTEL_SERVICE_NAME) names the service in the spans; empty
	// means the service's own name ("afteraction-intake", ...).
	ServiceName string
	// Sampler (OTEL_TRACES_SAMPLER, default parentbased_always_on) and its
	// ratio SamplerArg (OTEL_TRACES_SAMPLER_ARG, default 1) for the traceidratio kinds.
	Sampler    string
	SamplerArg float64
	// Provider, when set (tests, a program embedding the services), is used
	// as it is, whatever the variables say; Setup's shutdown then does nothing.
	Provider trace.TracerProvider
}

// Enabled reports whether spans are exported (or recorded by Provider).
func (c Config) Enabled() bool { return c.Endpoint != "" || c.Provider != nil }

// samplers are the OTEL_TRACES_SAMPLER values Setup understands.
var samplers = []string{"always_on", "always_off", "traceidratio",
	"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// LoadConfig reads the tracing variables through getenv. Tracing is on when
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set,
// unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. It returns an
// error naming the variable for an endpoint that is not an http(s) URL, a
// protocol other than http/protobuf, an exporter other than otlp or none, an
// unknown sampler, or a sampler ratio outside 0 to 1.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	c := Config{ServiceName: get("OTEL_SERVICE_NAME"), Sampler: strings.ToLower(get("OTEL_TRACES_SAMPLER")), SamplerArg: 1}
	if c.Sampler == "" {
		c.Sampler = "parentbased_always_on"
	}
	if !slices.Contains(samplers, c.Sampler) {
		fail("OTEL_TRACES_SAMPLER=%q: want one of %s", c.Sampler, strings.Join(samplers, ", "))
	}
	if v := get("OTEL_TRACES_SAMPLER_ARG"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			fail("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", v)
		} else {
			c.SamplerArg = f
		}
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if v := get(k); v != "" && v != "http/protobuf" {
			fail("%s=%q: only http/protobuf is supported", k, v)
		}
	}
	switch exp := get("OTEL_TRACES_EXPORTER"); exp {
	case "", "otlp":
	case "none":
		return c, errors.Join(errs...)
	default:
		fail("OTEL_TRACES_EXPORTER=%q: want otlp or none", exp)
	}
	if disabled, _ := strconv.ParseBool(get("OTEL_SDK_DISABLED")); disabled {
		return c, errors.Join(errs...)
	}
	key, endpoint := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		if base := get("OTEL_EXPORTER_OTLP_ENDPOINT"); base != "" {
			key, endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT", strings.TrimRight(base, "/")+"/v1/traces"
		}
	}
	if endpoint != "" {
		if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fail("%s=%q: want an http:// or https:// URL such as http://127.0.0.1:4318", key, getenv(key))
		} else {
			c.Endpoint = endpoint
		}
	}
	return c, errors.Join(errs...)
}

// Setup returns the tracer provider of the service named service and a
// function that flushes and stops it (at most five seconds; failures are
// logged). With tracing off it returns a no-op provider; with cfg.Provider
// set, that provider. Spans are exported over OTLP/HTTP in batches;
// OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION and _CERTIFICATE are
// read by the exporter itself. It returns an error only when the exporter
// cannot be built.
func Setup(ctx context.Context, cfg Config, service string, log *zap.Logger) (trace.TracerProvider, func(), error) {
	switch {
	case cfg.Provider != nil:
		return cfg.Provider, func() {}, nil
	case cfg.Endpoint == "":
		return noop.NewTracerProvider(), func() {}, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.Endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("otlp trace exporter for %s: %w", cfg.Endpoint, err)
	}
	name := cfg.ServiceName
	if name == "" {
		name = "afteraction-" + service
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(cfg.sampler()),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(name))),
	)
	log.Info("tracing on", zap.String("otlp_endpoint", cfg.Endpoint), zap.String("service_name", name),
		zap.String("sampler", cfg.Sampler), zap.Float64("sampler_arg", cfg.SamplerArg))
	return tp, func() {
		stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(stop); err != nil {
			log.Warn("flushing spans failed; some are lost", zap.Error(err))
		}
	}, nil
}

func (c Config) sampler() sdktrace.Sampler {
	ratio := sdktrace.TraceIDRatioBased(c.SamplerArg)
	switch c.Sampler {
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return ratio
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(ratio)
	}
	return sdktrace.ParentBased(sdktrace.AlwaysSample())
}

// Context is a W3C trace context as it travels in headers and outbox rows:
// a traceparent ("00-<trace id>-<span id>-<flags>") and an optional
// tracestate. The zero value is no context.
type Context struct {
	Parent, State string
}

// FromContext returns the trace context of the span in ctx, the zero Context
// when ctx has no valid span context.
func FromContext(ctx context.Context) Context {
	var c Context
	if trace.SpanContextFromContext(ctx).IsValid() {
		propagation.TraceContext{}.Inject(ctx, &c)
	}
	return c
}

// Into returns ctx with tc as its remote parent span context. A malformed or
// empty traceparent is ignored: ctx is returned as it is, and a span started
// from it is a new root (or a child of the span ctx already had).
func (tc Context) Into(ctx context.Context) context.Context {
	if tc.Parent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, &tc)
}

// Get, Set and Keys make *Context a propagation.TextMapCarrier.
func (tc *Context) Get(key string) string {
	switch key {
	case "traceparent":
		return tc.Parent
	case "tracestate":
		return tc.State
	}
	return ""
}

// Set stores the traceparent or tracestate value; other keys are ignored.
func (tc *Context) Set(key, value string) {
	switch key {
	case "traceparent":
		tc.Parent = value
	case "tracestate":
		tc.State = value
	}
}

// Keys lists the two keys a Context carries.
func (tc *Context) Keys() []string { return []string{"traceparent", "tracestate"} }

// Resume starts a span named name in the trace of tc (an aggregate's trace,
// stored when its first event was written), linked to the span ctx already
// has (e.g. the HTTP request that caused the work), with the tracer provider
// of that span. Work a person does days after an incident was registered thus
// stays in the incident's trace while pointing at the request that did it.
// With a zero tc it starts an ordinary child of ctx's span.
func Resume(ctx context.Context, name string, tc Context) (context.Context, trace.Span) {
	cur := trace.SpanFromContext(ctx)
	tracer := cur.TracerProvider().Tracer(instrumentation)
	parent := tc.Into(ctx)
	if tc.Parent == "" || !trace.SpanContextFromContext(parent).IsValid() {
		return tracer.Start(ctx, name)
	}
	var opts []trace.SpanStartOption
	if cur.SpanContext().IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: cur.SpanContext()}))
	}
	return tracer.Start(parent, name, opts...)
}

// instrumentation names the tracer of afteraction's own spans.
const instrumentation = "github.com/afteraction/afteraction"

// Tracer returns afteraction's tracer of tp (a no-op one when tp is nil).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(instrumentation)
}
