package tracing

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// maxSQLLen bounds the SQL text kept in a span.
const maxSQLLen = 4096

// PgxTracer returns a pgx tracer (for pgx.ConnConfig.Tracer) that opens a
// client span per statement, batch and COPY FROM, with the SQL text
// (db.query.text) and never its arguments. Statements run outside a traced
// request (projections, the scheduler, background flushers) get no span, so
// polling does not fill the exporter with one-span traces.
func PgxTracer() pgx.QueryTracer { return pgxTracer{} }

type pgxTracer struct{}

var (
	_ pgx.QueryTracer    = pgxTracer{}
	_ pgx.BatchTracer    = pgxTracer{}
	_ pgx.CopyFromTracer = pgxTracer{}
)

// spanKey marks the contexts whose span this tracer opened, so an end never
// closes the caller's span.
type spanKey struct{}

func (pgxTracer) start(ctx context.Context, name string, attrs ...attribute.KeyValue) context.Context {
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		return ctx
	}
	attrs = append(attrs, attribute.String("db.system.name", "postgresql"))
	ctx, span := tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return context.WithValue(ctx, spanKey{}, span)
}

func (pgxTracer) end(ctx context.Context, err error, attrs ...attribute.KeyValue) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return
	}
	span.SetAttributes(attrs...)
	if err != nil {
		// The SQLSTATE only: a message or detail may quote a row's values.
		code := "ERROR"
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr):
			code = pgErr.Code
			span.SetAttributes(attribute.String("db.response.status_code", code))
		case errors.Is(err, context.Canceled):
			code = "canceled"
		case errors.Is(err, context.DeadlineExceeded):
			code = "deadline_exceeded"
		case errors.Is(err, pgx.ErrNoRows):
			code = ""
		}
		if code != "" {
			span.SetAttributes(attribute.String("error.type", code))
			span.SetStatus(codes.Error, code)
		}
	}
	span.End()
}

func (t pgxTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, operation(data.SQL), attribute.String("db.query.text", clip(data.SQL)))
}

func (t pgxTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	t.end(ctx, data.Err, attribute.Int64("db.response.affected_rows", data.CommandTag.RowsAffected()))
}

func (t pgxTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	n := 0
	if data.Batch != nil {
		n = data.Batch.Len()
	}
	return t.start(ctx, "BATCH", attribute.Int("db.operation.batch.size", n))
}

func (pgxTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchQueryData) {
	span, ok := ctx.Value(spanKey{}).(trace.Span)
	if !ok {
		return
	}
	attrs := []attribute.KeyValue{attribute.String("db.query.text", clip(data.SQL))}
	if data.Err != nil {
		attrs = append(attrs, attribute.Bool("error", true))
	}
	span.AddEvent("query", trace.WithAttributes(attrs...))
}

func (t pgxTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	t.end(ctx, data.Err)
}

func (t pgxTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromStartData) context.Context {
	return t.start(ctx, "COPY", attribute.String("db.collection.name", data.TableName.Sanitize()))
}

func (t pgxTracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceCopyFromEndData) {
	t.end(ctx, data.Err, attribute.Int64("db.response.affected_rows", data.CommandTag.RowsAffected()))
}

// operation is the statement's first keyword (SELECT, INSERT, WITH, ...),
// the span's name.
func operation(sql string) string {
	sql = strings.TrimSpace(sql)
	for strings.HasPrefix(sql, "--") {
		_, rest, _ := strings.Cut(sql, "\n")
		sql = strings.TrimSpace(rest)
	}
	word, _, _ := strings.Cut(sql, " ")
	word, _, _ = strings.Cut(word, "\n")
	word, _, _ = strings.Cut(word, "\t")
	word, _, _ = strings.Cut(word, "(")
	word = strings.TrimSuffix(word, ";")
	if word == "" || len(word) > 16 {
		return "SQL"
	}
	return strings.ToUpper(word)
}

func clip(sql string) string {
	if len(sql) > maxSQLLen {
		return sql[:maxSQLLen]
	}
	return sql
}
