package tracing

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// GraphQL is a gqlgen extension: one span per GraphQL response (the
// operation) and, under it, one per root field: "command <field>" for a
// mutation's fields, which each run one command, and "query <field>" for a
// query's (or a subscription's). Spans carry the operation's type and name
// and the field's name; never the document, arguments or variables, and of
// errors only their extensions.code.
type GraphQL struct{}

var (
	_ graphql.HandlerExtension     = GraphQL{}
	_ graphql.ResponseInterceptor  = GraphQL{}
	_ graphql.RootFieldInterceptor = GraphQL{}
)

// ExtensionName implements graphql.HandlerExtension.
func (GraphQL) ExtensionName() string { return "Tracing" }

// Validate implements graphql.HandlerExtension.
func (GraphQL) Validate(graphql.ExecutableSchema) error { return nil }

// maxNameLen bounds the client-chosen operation name kept in a span.
const maxNameLen = 100

// InterceptResponse opens the operation span around the execution of the
// root fields.
func (GraphQL) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	typ, name := "query", oc.OperationName
	if oc.Operation != nil {
		typ = string(oc.Operation.Operation)
		if name == "" {
			name = oc.Operation.Name
		}
	}
	if len(name) > maxNameLen {
		name = name[:maxNameLen]
	}
	spanName := "graphql " + typ
	if name != "" {
		spanName += " " + name
	}
	ctx, span := tracer().Start(ctx, spanName, trace.WithAttributes(
		attribute.String("graphql.operation.type", typ),
		attribute.String("graphql.operation.name", name),
	))
	defer span.End()
	resp := next(ctx)
	if resp != nil && len(resp.Errors) > 0 && span.IsRecording() {
		errorCodes(span, resp.Errors)
	}
	return resp
}

// InterceptRootField opens the command or query span of a root field,
// around its resolver and everything under it.
func (GraphQL) InterceptRootField(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	rf := graphql.GetRootFieldContext(ctx)
	if rf == nil || !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	kind := "query"
	if op := graphql.GetOperationContext(ctx).Operation; op != nil && op.Operation == ast.Mutation {
		kind = "command"
	}
	name := rf.Field.Name
	ctx, span := tracer().Start(ctx, kind+" "+name, trace.WithAttributes(
		attribute.String("secretlog.kind", kind),
		attribute.String("graphql.field.name", name),
	))
	defer span.End()
	res := next(ctx)
	if span.IsRecording() {
		var mine gqlerror.List
		for _, e := range graphql.GetErrors(ctx) {
			if len(e.Path) > 0 && e.Path[0] == ast.PathName(rf.Field.Alias) {
				mine = append(mine, e)
			}
		}
		if len(mine) > 0 {
			errorCodes(span, mine)
		}
	}
	return res
}

// errorCodes marks span failed with the errors' codes (never messages).
func errorCodes(span trace.Span, errs gqlerror.List) {
	seen := map[string]bool{}
	var list []string
	for _, e := range errs {
		c := codeOf(e)
		if !seen[c] {
			seen[c] = true
			list = append(list, c)
		}
	}
	span.SetAttributes(attribute.StringSlice("graphql.error.codes", list))
	span.SetStatus(codes.Error, list[0])
}

// codeOf is an error's extensions.code, "" becoming "ERROR".
func codeOf(err error) string {
	if e, ok := err.(*gqlerror.Error); ok {
		if c, ok := e.Extensions["code"].(string); ok && c != "" {
			return c
		}
	}
	return "ERROR"
}
