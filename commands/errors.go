package commands

import (
	"errors"
	"fmt"
)

// Code classifies a failure; the API maps each code to its error code one to one.
type Code string

// Codes, as the GraphQL API spells them in extensions.code.
const (
	InvalidArgument   Code = "INVALID_ARGUMENT"
	NotFound          Code = "NOT_FOUND"
	PermissionDenied  Code = "PERMISSION_DENIED"
	Conflict          Code = "CONFLICT"
	Unauthenticated   Code = "UNAUTHENTICATED"
	ResourceExhausted Code = "RESOURCE_EXHAUSTED"
	// FailedPrecondition: the resource is not in a state that allows the
	// request (a disabled value, a secret scheduled for deletion).
	FailedPrecondition Code = "FAILED_PRECONDITION"
	Internal           Code = "INTERNAL"
)

// Error is a typed failure of a command or query. Message is safe to show to
// the caller: it names fields, never their values.
type Error struct {
	Code    Code
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Code: InvalidArgument, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(kind, id string) *Error {
	return &Error{Code: NotFound, Message: fmt.Sprintf("%s %q not found", kind, id)}
}

func failedPrecondition(field, format string, args ...any) *Error {
	return &Error{Code: FailedPrecondition, Field: field, Message: fmt.Sprintf(format, args...)}
}

func denied(format string, args ...any) *Error {
	return &Error{Code: PermissionDenied, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err, Internal for untyped errors.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}
