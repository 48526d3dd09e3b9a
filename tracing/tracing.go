// Package tracing is secretlog's OpenTelemetry wiring, all in one place:
//
//   - Setup installs an OTLP exporter as the global tracer provider when
//     OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
//     set, and does nothing otherwise;
//   - Middleware opens the HTTP server span (continuing a W3C traceparent);
//   - GraphQL (a gqlgen extension) opens the operation span and one span per
//     root field, named "command <field>" for mutations and "query <field>"
//     for queries;
//   - PgxTracer opens a span per SQL statement or batch under them;
//   - Logger adds trace_id and span_id to every log record made with a
//     context that carries a span.
//
// Nothing here records a value or a token: no headers, no query string, no
// GraphQL document or variables, no SQL arguments, no error messages (only
// error codes). SQL text is recorded; the store binds every value as an
// argument.
package tracing

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every span secretlog makes.
const ScopeName = "github.com/secretlog/secretlog"

// tracer is looked up on every use, so a provider installed later (Setup,
// or a test's in-memory one) takes effect.
func tracer() trace.Tracer { return otel.Tracer(ScopeName) }

// Enabled reports whether the environment asks for OTLP export.
func Enabled() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs a tracer provider exporting over OTLP when the standard
// environment asks for it (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_EXPORTER_OTLP_PROTOCOL
// "http/protobuf", the default, or "grpc"; headers, timeouts, TLS,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and OTEL_TRACES_SAMPLER as the
// OpenTelemetry SDK reads them). Without an endpoint it installs nothing and
// spans cost next to nothing. shutdown flushes the spans still queued.
func Setup(ctx context.Context) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	if !Enabled() {
		return noop, nil
	}
	var exp *otlptrace.Exporter
	switch p := protocol(); p {
	case "http/protobuf", "":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return noop, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", p)
	}
	if err != nil {
		return noop, fmt.Errorf("otlp exporter: %w", err)
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the defaults.
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName("secretlog")),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return noop, fmt.Errorf("otel resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

func protocol() string {
	if p := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"); p != "" {
		return p
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
}
