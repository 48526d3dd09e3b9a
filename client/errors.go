package client

import (
	"errors"
	"fmt"
	"strings"
)

// Code is an API error code (extensions.code), or CodeUnavailable for a
// server that could not be reached.
type Code string

// The API's codes (graph/errors.go), plus the client's own CodeUnavailable.
const (
	CodeInvalidArgument    Code = "INVALID_ARGUMENT"
	CodeNotFound           Code = "NOT_FOUND"
	CodePermissionDenied   Code = "PERMISSION_DENIED"
	CodeUnauthenticated    Code = "UNAUTHENTICATED"
	CodeConflict           Code = "CONFLICT"
	CodeFailedPrecondition Code = "FAILED_PRECONDITION"
	CodeResourceExhausted  Code = "RESOURCE_EXHAUSTED"
	CodeInternal           Code = "INTERNAL"
	// CodeUnavailable: no GraphQL answer (connection refused, timeout, an
	// HTTP error page, a dropped websocket). The server sends it only to
	// end a subscription when it stops serving the change feed.
	CodeUnavailable Code = "UNAVAILABLE"
)

// Error is a failed operation: the first GraphQL error's code, message and
// path, or a transport failure. Messages come from the server, which never
// puts input values in them, or from this package, which never does either.
type Error struct {
	Code    Code
	Message string
	// Path is the GraphQL path of the failing field ("createSecret"), if any.
	Path string
	// HTTPStatus is the response's status, 0 when none arrived.
	HTTPStatus int
	// More counts further errors in the same response.
	More  int
	cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.More > 0 {
		fmt.Fprintf(&b, " (and %d more errors)", e.More)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.cause }

// CodeOf is err's API code, "" when err is not (and does not wrap) an *Error.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newError(status int, errs []wireError) *Error {
	first := errs[0]
	e := &Error{Code: CodeInternal, Message: first.Message, HTTPStatus: status, More: len(errs) - 1}
	if c, ok := first.Extensions["code"].(string); ok && c != "" {
		e.Code = Code(c)
	} else if status == 422 || status == 400 {
		// A server without the error presenter: parse and validation errors.
		e.Code = CodeInvalidArgument
	}
	parts := make([]string, 0, len(first.Path))
	for _, p := range first.Path {
		parts = append(parts, fmt.Sprint(p))
	}
	e.Path = strings.Join(parts, ".")
	return e
}
