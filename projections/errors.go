package projections

import (
	"fmt"

	"github.com/secretlog/secretlog/query"
)

// qerr is a malformed request to a reader: INVALID_ARGUMENT.
func qerr(format string, args ...any) error {
	return &query.Error{Msg: fmt.Sprintf(format, args...)}
}

// overLimit is a request over one of the limits: RESOURCE_EXHAUSTED.
func overLimit(format string, args ...any) error {
	return &query.Error{Msg: fmt.Sprintf(format, args...), Exhausted: true}
}
