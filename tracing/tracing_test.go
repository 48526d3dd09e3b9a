package tracing_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/server"
	"github.com/secretlog/secretlog/tracing"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// memoryProvider installs an in-memory exporter as the global provider for
// the test's duration.
func memoryProvider(t *testing.T) *tracetest.InMemoryExporter {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(noop.NewTracerProvider())
	})
	return exp
}

type stack struct {
	srv  *server.Server
	http *httptest.Server
	logs *syncBuffer
}

func newStack(t *testing.T) *stack {
	spec, err := events.NewKeySpec("test-1")
	require.NoError(t, err)
	keyring, err := events.ParseKeyring(spec)
	require.NoError(t, err)
	tokenKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(spec, "test-1:"))
	require.NoError(t, err)
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := server.New(ctx, server.Config{DatabaseURL: pgtest.NewDatabase(t), Keyring: keyring, TokenKey: tokenKey,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &stack{srv: srv, http: hs, logs: logs}
}

func (s *stack) token(t *testing.T, role auth.Role) string {
	tok, err := s.srv.Signer.Mint(auth.Identity{Role: role, DomainID: "domain-t", UserID: "tracy"}, time.Hour)
	require.NoError(t, err)
	return tok
}

// post sends a GraphQL request with the given traceparent ("" for none)
// and returns the response's data, failing on errors.
func (s *stack) post(t *testing.T, token, traceparent, query string, vars map[string]any) json.RawMessage {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.http.URL+"/graphql", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Data   json.RawMessage
		Errors []any
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Empty(t, out.Errors)
	return out.Data
}

// spansOf are the ended spans of one trace.
func spansOf(exp *tracetest.InMemoryExporter, id trace.TraceID) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

func find(spans []tracetest.SpanStub, name string) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

func childrenOf(spans []tracetest.SpanStub, parent tracetest.SpanStub) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Parent.SpanID() == parent.SpanContext.SpanID() {
			out = append(out, s)
		}
	}
	return out
}

// everything a span carries as text, for the canary checks.
func texts(s tracetest.SpanStub) []string {
	out := []string{s.Name, s.Status.Description}
	add := func(kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			out = append(out, string(kv.Key)+"="+kv.Value.Emit())
		}
	}
	add(s.Attributes)
	for _, e := range s.Events {
		out = append(out, e.Name)
		add(e.Attributes)
	}
	add(s.Resource.Attributes())
	return out
}

// One traced request per kind: HTTP → GraphQL operation → command or query
// → SQL, continuing the caller's trace; no attribute holds a value or the
// token; the log lines carry the trace id.
func TestSpanTree(t *testing.T) {
	exp := memoryProvider(t)
	s := newStack(t)
	admin := s.token(t, auth.RoleDomainAdmin)
	system := s.token(t, auth.RoleSystem)
	const canary = "canary-Zx81-value"

	// A command: createSecret, with a canary value, in trace 1.
	tid1 := trace.TraceID{0x51, 0xc7, 1}
	parent := trace.SpanID{0xab, 1}
	tp1 := fmt.Sprintf("00-%s-%s-01", tid1, parent)
	data := s.post(t, admin, tp1, `mutation CreateIt($in: CreateSecretInput!) { createSecret(input: $in) { secretId } }`,
		map[string]any{"in": map[string]any{"name": "traced", "resourceGroup": "DOMAIN",
			"data": map[string]any{"password": canary, "user": canary + "-user"}}})
	var created struct{ CreateSecret struct{ SecretID string } }
	require.NoError(t, json.Unmarshal(data, &created))
	id := created.CreateSecret.SecretID
	require.NotEmpty(t, id)

	// A query that reads the value back, in trace 2.
	tid2 := trace.TraceID{0x51, 0xc7, 2}
	tp2 := fmt.Sprintf("00-%s-%s-01", tid2, parent)
	data = s.post(t, system, tp2, `query ReadIt($id: ID!) { secretData(secretId: $id) { data version } }`,
		map[string]any{"id": id})
	require.Contains(t, string(data), canary, "the read returns the value")

	for _, c := range []struct {
		tid                 trace.TraceID
		operation, resolver string
		token               string
	}{
		{tid1, "graphql mutation CreateIt", "command createSecret", admin},
		{tid2, "graphql query ReadIt", "query secretData", system},
	} {
		spans := spansOf(exp, c.tid)
		t.Logf("trace %s: %v", c.tid, names(spans))
		httpSpan := find(spans, "POST /graphql")
		require.NotNil(t, httpSpan, "http span in %v", names(spans))
		require.Equal(t, trace.SpanKindServer, httpSpan.SpanKind)
		require.Equal(t, parent, httpSpan.Parent.SpanID(), "continues the caller's traceparent")
		require.True(t, httpSpan.Parent.IsRemote())

		op := find(spans, c.operation)
		require.NotNil(t, op, "operation span in %v", names(spans))
		require.Equal(t, httpSpan.SpanContext.SpanID(), op.Parent.SpanID())

		res := find(spans, c.resolver)
		require.NotNil(t, res, "resolver span in %v", names(spans))
		require.Equal(t, op.SpanContext.SpanID(), res.Parent.SpanID())

		var sql []tracetest.SpanStub
		for _, ch := range childrenOf(spans, *res) {
			if attrOf(ch, "db.system.name") == "postgresql" {
				sql = append(sql, ch)
			}
		}
		require.NotEmpty(t, sql, "SQL spans under %s: %v", c.resolver, names(spans))
		for _, q := range sql {
			require.Equal(t, trace.SpanKindClient, q.SpanKind)
			if q.Name != "BATCH" {
				require.NotEmpty(t, attrOf(q, "db.query.text"), "SQL text of %s", q.Name)
			}
		}

		for _, sp := range spans {
			for _, txt := range texts(sp) {
				require.NotContains(t, txt, canary, "span %s", sp.Name)
				require.NotContains(t, txt, c.token, "span %s", sp.Name)
				require.NotContains(t, txt, c.token[:20], "span %s", sp.Name)
				require.NotContains(t, txt, "Bearer", "span %s", sp.Name)
			}
		}

		// Log lines of the request carry its trace id.
		var httpLine, other bool
		for _, line := range strings.Split(s.logs.String(), "\n") {
			if !strings.Contains(line, `"trace_id":"`+c.tid.String()+`"`) {
				continue
			}
			if strings.Contains(line, `"msg":"http request"`) {
				httpLine = true
			} else {
				other = true
			}
		}
		require.True(t, httpLine, "access log line with trace_id %s:\n%s", c.tid, s.logs.String())
		require.True(t, other, "command log line with trace_id %s", c.tid)
	}
	require.NotContains(t, s.logs.String(), canary)
}

func names(spans []tracetest.SpanStub) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attrOf(s tracetest.SpanStub, key string) string {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// An error answers with its code in the span, never its message.
func TestErrorCodeOnly(t *testing.T) {
	exp := memoryProvider(t)
	s := newStack(t)
	admin := s.token(t, auth.RoleDomainAdmin)
	tid := trace.TraceID{0x51, 0xc7, 3}
	body := `{"query":"query Missing { secret(secretId: \"secret-nope\") { name } }"}`
	req, err := http.NewRequest(http.MethodPost, s.http.URL+"/graphql", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("traceparent", fmt.Sprintf("00-%s-%s-01", tid, trace.SpanID{1}))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(out), "NOT_FOUND")
	spans := spansOf(exp, tid)
	q := find(spans, "query secret")
	require.NotNil(t, q, "%v", names(spans))
	require.Equal(t, "NOT_FOUND", q.Status.Description)
	require.Equal(t, "NOT_FOUND", find(spans, "graphql query Missing").Status.Description)
}

// Without a span in the context (background work), SQL gets none.
func TestPgxTracerNeedsParent(t *testing.T) {
	exp := memoryProvider(t)
	tr := tracing.PgxTracer()
	ctx := tr.TraceQueryStart(context.Background(), nil, pgxStart("SELECT 1"))
	tr.TraceQueryEnd(ctx, nil, pgxEnd())
	require.Empty(t, exp.GetSpans())

	ctx, parent := otel.Tracer("t").Start(context.Background(), "parent")
	qctx := tr.TraceQueryStart(ctx, nil, pgxStart("  select $1::text"))
	tr.TraceQueryEnd(qctx, nil, pgxEnd())
	require.Len(t, exp.GetSpans(), 1, "the query's span only; the parent is still open")
	require.Equal(t, "SELECT", exp.GetSpans()[0].Name)
	parent.End()
}

// Health, readiness and metrics get no span.
func TestMiddlewareSkipsProbes(t *testing.T) {
	exp := memoryProvider(t)
	h := tracing.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	require.Empty(t, exp.GetSpans())
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/console/app.js?x=secret", nil))
	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	require.Equal(t, "GET /console/", spans[0].Name)
	require.Equal(t, "418", attrOf(spans[0], "http.response.status_code"))
	for _, txt := range texts(spans[0]) {
		require.NotContains(t, txt, "x=secret")
	}
}

// Setup exports over OTLP/HTTP when the endpoint is set, and installs
// nothing when it is not.
func TestSetupExportsOTLP(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	prev := otel.GetTracerProvider()
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	shutdown, err := tracing.Setup(context.Background())
	require.NoError(t, err)
	require.NoError(t, shutdown(context.Background()))
	require.Equal(t, prev, otel.GetTracerProvider(), "nothing installed without an endpoint")

	var posts atomic.Int32
	var path atomic.Value
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.Path)
		_, _ = io.Copy(io.Discard, r.Body)
		posts.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	shutdown, err = tracing.Setup(context.Background())
	require.NoError(t, err)
	_, span := otel.Tracer("t").Start(context.Background(), "exported")
	span.End()
	require.NoError(t, shutdown(context.Background()))
	require.Equal(t, int32(1), posts.Load())
	require.Equal(t, "/v1/traces", path.Load())

	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
	_, err = tracing.Setup(context.Background())
	require.ErrorContains(t, err, "carrier-pigeon")
}

// Log records made with a span's context get its ids.
func TestLoggerAddsTraceID(t *testing.T) {
	var buf bytes.Buffer
	log := tracing.Logger(slog.New(slog.NewJSONHandler(&buf, nil)))
	log.Info("no context")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9, 9}, SpanID: trace.SpanID{7}, TraceFlags: trace.FlagsSampled})
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "with span", "k", "v")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	require.NotContains(t, lines[0], "trace_id")
	require.Contains(t, lines[1], `"trace_id":"`+sc.TraceID().String()+`"`)
	require.Contains(t, lines[1], `"span_id":"`+sc.SpanID().String()+`"`)
}

// With export off, a caller's traceparent still names the log lines.
func TestTraceIDWithoutExport(t *testing.T) {
	otel.SetTracerProvider(noop.NewTracerProvider())
	var buf syncBuffer
	log := tracing.Logger(slog.New(slog.NewJSONHandler(&buf, nil)))
	h := tracing.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "handled")
	}))
	tid := trace.TraceID{0x77, 1}
	req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	req.Header.Set("traceparent", fmt.Sprintf("00-%s-%s-01", tid, trace.SpanID{2}))
	h.ServeHTTP(httptest.NewRecorder(), req)
	require.Contains(t, buf.String(), `"trace_id":"`+tid.String()+`"`)
}
