package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/projections"
	"github.com/secretlog/secretlog/query"
)

// codeOf maps every typed error to its API code, in one place.
func codeOf(err error) (commands.Code, string) {
	var ce *commands.Error
	var qe *query.Error
	var pg *pgconn.PgError
	switch {
	case errors.As(err, &ce):
		return ce.Code, ce.Error()
	case errors.As(err, &qe) && qe.Exhausted:
		return commands.ResourceExhausted, qe.Error()
	case errors.As(err, &qe):
		return commands.InvalidArgument, qe.Error()
	case errors.Is(err, projections.ErrNotFound):
		return commands.NotFound, "not found"
	case errors.Is(err, projections.ErrPermissionDenied):
		return commands.PermissionDenied, "permission denied"
	case errors.As(err, &pg) && strings.HasPrefix(pg.Code, "22"):
		// data_exception: PostgreSQL cannot take a caller's value (a NUL
		// byte, a number out of range). Its message may quote the value.
		return commands.InvalidArgument, "a value in the request cannot be stored or compared (invalid characters or out of range)"
	case isIntrospectionDisabled(err): // gqlgen's, when the extension is off
		return commands.PermissionDenied, "introspection is disabled on this server (SECRETLOG_INTROSPECTION)"
	case errors.Is(err, context.DeadlineExceeded):
		return commands.ResourceExhausted, "the request ran out of time (SECRETLOG_REQUEST_TIMEOUT)"
	case errors.Is(err, context.Canceled):
		// The client went away (or the server is stopping): nobody reads this.
		return commands.ResourceExhausted, "the request was cancelled"
	}
	return commands.Internal, "internal error"
}

func isIntrospectionDisabled(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "introspection disabled" {
			return true
		}
	}
	return false
}

// literal matches the quoted input values gqlparser echoes in validation
// messages ("found X", "cannot represent ... value: X") and the request body
// gqlgen echoes when it is not valid JSON ("body:..."): an input might be a
// secret, so it never goes back out.
var literal = regexp.MustCompile(`(?s)(found|got|cannot use|value:|body:)(?:[^A-Za-z].*)?$`)

// ErrorPresenter gives every error an extensions.code. Internal causes are
// logged (they never contain secret values) and hidden from the caller.
func ErrorPresenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			// Parse, validation and input coercion errors from gqlgen itself.
			out := *gqlErr
			code := commands.InvalidArgument
			switch {
			case strings.Contains(out.Message, "request body too large"):
				code = commands.ResourceExhausted
				out.Message = "request body exceeds the limit (SECRETLOG_MAX_REQUEST_BYTES)"
			case strings.HasPrefix(out.Message, "exceeded token limit"):
				code = commands.ResourceExhausted
			}
			out.Message = literal.ReplaceAllString(out.Message, "${1} an invalid value")
			out.Extensions = map[string]any{"code": string(code)}
			return &out
		}
		code, msg := codeOf(err)
		if code == commands.Internal {
			logger.ErrorContext(ctx, "request failed", "path", fmt.Sprint(graphql.GetPath(ctx)), "error", err.Error())
		}
		out := graphql.DefaultErrorPresenter(ctx, err)
		var ce *commands.Error
		if code == commands.InvalidArgument && errors.As(err, &ce) && ce.Field == "" && len(out.Path) > 1 {
			// An argument that failed to decode: name it by its path (input.data).
			msg = out.Path[1:].String() + ": " + msg
		}
		out.Message = msg
		out.Extensions = map[string]any{"code": string(code)}
		return out
	}
}

// Recover turns a resolver panic into an INTERNAL error instead of a crash.
func Recover(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "resolver panic", "panic", fmt.Sprint(p))
		return &commands.Error{Code: commands.Internal, Message: "internal error"}
	}
}
