package tracing_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/afteraction/afteraction/pkg/tracing"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		env      map[string]string
		endpoint string
		wantErr  string
	}{
		{"off by default", nil, "", ""},
		{"base endpoint gets /v1/traces", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}, "http://collector:4318/v1/traces", ""},
		{"traces endpoint as given", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318",
			"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/otlp/traces"}, "https://b/otlp/traces", ""},
		{"sdk disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_SDK_DISABLED": "true"}, "", ""},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_TRACES_EXPORTER": "none"}, "", ""},
		{"not a URL", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "", "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"grpc refused", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "", "OTEL_TRACES_EXPORTER"},
		{"unknown sampler", map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, "", "OTEL_TRACES_SAMPLER"},
		{"ratio out of range", map[string]string{"OTEL_TRACES_SAMPLER_ARG": "1.5"}, "", "OTEL_TRACES_SAMPLER_ARG"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := tracing.LoadConfig(env(c.env))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Endpoint != c.endpoint || cfg.Enabled() != (c.endpoint != "") {
				t.Errorf("endpoint %q (enabled %v), want %q", cfg.Endpoint, cfg.Enabled(), c.endpoint)
			}
		})
	}
}

func TestSetupOffIsNoop(t *testing.T) {
	t.Parallel()
	tp, stop, err := tracing.Setup(context.Background(), tracing.Config{}, "intake", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	_, span := tp.Tracer("t").Start(context.Background(), "x")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("tracing off records spans")
	}
}

const upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestContextRoundTripAndMalformedIgnored(t *testing.T) {
	t.Parallel()
	ctx := tracing.Context{Parent: upstream, State: "vendor=x"}.Into(context.Background())
	if got := tracing.FromContext(ctx); got.Parent != upstream || got.State != "vendor=x" {
		t.Errorf("round trip = %+v", got)
	}
	for _, bad := range []string{"garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		if got := tracing.FromContext(tracing.Context{Parent: bad}.Into(context.Background())); got.Parent != "" {
			t.Errorf("malformed %q became %+v, want no context", bad, got)
		}
	}
}

func TestHTTPServerSpanHonoursTraceparent(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	mux := http.NewServeMux()
	var inHandler trace.SpanContext
	mux.HandleFunc("POST /v1/webhooks/{source}", func(w http.ResponseWriter, r *http.Request) {
		inHandler = trace.SpanContextFromContext(r.Context())
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	h := tracing.HTTP(tp, mux)
	for _, c := range []struct{ method, path, traceparent string }{
		{"POST", "/v1/webhooks/pagerduty", upstream},
		{"POST", "/v1/webhooks/jira", "00-broken"},
		{"GET", "/healthz", upstream},
	} {
		req := httptest.NewRequest(c.method, c.path, nil)
		req.Header.Set("traceparent", c.traceparent)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2 (probes are not traced)", len(spans))
	}
	first, second := spans[0], spans[1]
	if first.Name() != "POST /v1/webhooks/{source}" || first.SpanKind() != trace.SpanKindServer {
		t.Errorf("span %q of kind %v, want the route's server span", first.Name(), first.SpanKind())
	}
	if got := first.Parent().TraceID().String() + "-" + first.Parent().SpanID().String(); !strings.Contains(upstream, got) {
		t.Errorf("parent %s, want the request's traceparent %s", got, upstream)
	}
	if !inHandler.IsValid() || inHandler.TraceID() != second.SpanContext().TraceID() {
		t.Error("the handler does not see the request's span")
	}
	if second.Parent().IsValid() {
		t.Errorf("a malformed traceparent became parent %v; want a new root", second.Parent())
	}
	var status int64
	for _, kv := range first.Attributes() {
		if kv.Key == "http.response.status_code" {
			status = kv.Value.AsInt64()
		}
	}
	if status != http.StatusAccepted {
		t.Errorf("status attribute %d, want 202", status)
	}
}

// Resume continues a stored trace and links the span the context had.
func TestResumeJoinsTheStoredTraceAndLinksTheRequest(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reqCtx, req := tp.Tracer("t").Start(context.Background(), "request")
	_, span := tracing.Resume(reqCtx, "complete review", tracing.Context{Parent: upstream})
	span.End()
	req.End()
	got := rec.Ended()[0]
	if got.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || got.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("resumed span in trace %s with parent %s, want the stored context", got.SpanContext().TraceID(), got.Parent().SpanID())
	}
	if len(got.Links()) != 1 || got.Links()[0].SpanContext.SpanID() != req.SpanContext().SpanID() {
		t.Errorf("links %v, want the request span", got.Links())
	}
}

// With an endpoint, spans are posted over OTLP/HTTP, named for the service,
// and stop flushes what is still batched.
func TestSetupExportsOverOTLPHTTP(t *testing.T) {
	t.Parallel()
	type post struct {
		path, contentType string
		body              []byte
	}
	posts := make(chan post, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		posts <- post{r.URL.Path, r.Header.Get("Content-Type"), body}
	}))
	defer srv.Close()
	cfg, err := tracing.LoadConfig(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}))
	if err != nil {
		t.Fatal(err)
	}
	tp, stop, err := tracing.Setup(context.Background(), cfg, "intake", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("t").Start(context.Background(), "registered an incident")
	span.End()
	stop()
	select {
	case p := <-posts:
		if p.path != "/v1/traces" || p.contentType != "application/x-protobuf" {
			t.Errorf("posted %s as %s, want /v1/traces as application/x-protobuf", p.path, p.contentType)
		}
		for _, want := range []string{"afteraction-intake", "registered an incident"} {
			if !bytes.Contains(p.body, []byte(want)) {
				t.Errorf("the export lacks %q", want)
			}
		}
	default:
		t.Fatal("nothing was exported by the time stop returned")
	}
}
