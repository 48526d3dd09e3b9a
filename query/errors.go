package query

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Error is a malformed query; the API answers INVALID_ARGUMENT with its
// message, or RESOURCE_EXHAUSTED when Exhausted (the query is well formed but
// over one of the Limits, or ran out of time).
type Error struct {
	Msg       string
	Exhausted bool
}

func (e *Error) Error() string { return e.Msg }

func qerr(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// overLimit is an Error for a query over one of the Limits.
func overLimit(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...), Exhausted: true}
}

// within prefixes a query error with where it happened (aggregate[1].group, ...).
func within(where string, err error) error {
	var qe *Error
	if errors.As(err, &qe) {
		return &Error{Msg: where + ": " + qe.Msg, Exhausted: qe.Exhausted}
	}
	return err
}

// Failure turns PostgreSQL's rejection of a caller's value in a compiled
// statement into an Error, and a statement that ran out of time into an
// exhausted one; anything else stays internal. regexKeys name the keys
// with a regular expression (SQL.RegexKeys).
func Failure(ctx context.Context, err error, regexKeys []string, timeout time.Duration) error {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	switch pg.Code {
	case "2201B": // invalid_regular_expression
		return qerr("invalid regular expression on key %s: %s", strings.Join(quoteAll(regexKeys), ", "), pg.Message)
	case "57014": // query_canceled: statement_timeout, or the request's context
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return overLimit("the query ran longer than the statement timeout of %s (SECRETLOG_STATEMENT_TIMEOUT): narrow the filter or lower the page size", timeout)
	case "54000", "53200": // program_limit_exceeded, out_of_memory
		return overLimit("the query is too large for the database: narrow the filter or simplify the pipeline")
	}
	if strings.HasPrefix(pg.Code, "22") {
		// data_exception: a value PostgreSQL cannot take (a NUL byte, a
		// number or time out of range). Its message may quote the value:
		// only the condition's name goes back.
		return qerr("a value in the query cannot be used for its key (%s)", dataException(pg.Code))
	}
	return err
}

// dataException names the data exceptions a caller's value can cause.
func dataException(code string) string {
	switch code {
	case "22021", "22P05":
		return "invalid byte sequence, such as a NUL character"
	case "22003":
		return "number out of range"
	case "22008":
		return "time out of range"
	case "22P02", "22007":
		return "invalid text representation"
	case "22001":
		return "string too long"
	}
	return "data exception " + code
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
