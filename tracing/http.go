package tracing

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// propagator reads (and answers) W3C traceparent headers; baggage is not
// taken from callers.
var propagator = propagation.TraceContext{}

// Middleware opens the server span of each request, continuing the caller's
// trace when it sends a traceparent header. The span records the method, the
// route and the status; never a header, the query string or the body.
// Health, readiness and metrics requests get no span (the caller's trace id,
// if any, is still carried for the log lines).
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		route := routeOf(r.URL.Path)
		if route == "" {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		ctx, span := tracer().Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", r.Method),
				attribute.String("http.route", route),
				attribute.String("url.path", route),
				attribute.String("url.scheme", scheme(r)),
			))
		defer span.End()
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", rec.status))
		if rec.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(rec.status))
		}
	})
}

// routeOf names a path by its route, so span names stay few; "" for the
// paths that are not traced.
func routeOf(path string) string {
	switch {
	case path == "/graphql":
		return path
	case path == "/healthz", path == "/readyz", path == "/metrics":
		return ""
	case path == "/console", strings.HasPrefix(path, "/console/"):
		return "/console/"
	default:
		return "/"
	}
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// statusWriter remembers the status code; it passes Flush through for
// streaming responses.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer
// (deadlines, hijacking for websockets).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
