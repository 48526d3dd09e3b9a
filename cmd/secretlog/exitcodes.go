package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/client"
)

// exitStatuses is the process status for each API error code, in one place.
// The README's "Exit codes" table is exitStatusTable() verbatim (a test
// checks it).
var exitStatuses = []struct {
	status  int
	codes   []client.Code
	meaning string
}{
	{0, nil, "success"},
	{1, []client.Code{client.CodeInternal}, "any other failure (a server-side INTERNAL error, a local file that cannot be read, rebuild --check differences)"},
	{2, []client.Code{client.CodeInvalidArgument}, "usage: an unknown flag or command, a missing argument, bad input rejected locally or by the server"},
	{3, []client.Code{client.CodeUnauthenticated, client.CodePermissionDenied}, "no token, an invalid or expired token, or a role that may not do this (e.g. reading a value without SYSTEM)"},
	{4, []client.Code{client.CodeNotFound}, "no such secret, or one the token may not see (another tenant's)"},
	{5, []client.Code{client.CodeConflict, client.CodeFailedPrecondition}, "a concurrent change won, or the secret's state does not allow the change (retry after reading it again)"},
	{6, []client.Code{client.CodeResourceExhausted}, "a request or value over the server's size limits"},
	{7, []client.Code{client.CodeUnavailable}, "the server could not be reached, did not answer in time, or did not answer GraphQL"},
}

// statusOf maps an API code to a process status; unknown codes are 1.
func statusOf(code client.Code) int {
	for _, s := range exitStatuses {
		for _, c := range s.codes {
			if c == code {
				return s.status
			}
		}
	}
	return 1
}

// exitStatusTable renders exitStatuses as the README's Markdown table.
func exitStatusTable() string {
	var b strings.Builder
	b.WriteString("| status | error codes | meaning |\n|--:|---|---|\n")
	for _, s := range exitStatuses {
		codes := make([]string, len(s.codes))
		for i, c := range s.codes {
			codes[i] = "`" + string(c) + "`"
		}
		fmt.Fprintf(&b, "| %d | %s | %s |\n", s.status, strings.Join(codes, ", "), s.meaning)
	}
	return b.String()
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// cobraUsage recognises cobra's own usage errors, which are plain errors.
func cobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command ", "required flag(s) ", "accepts ", "requires at least ", "invalid argument "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// classify is the status for errors that are not an *exitError.
func classify(err error) int {
	var u *usageError
	switch {
	case errors.As(err, &u), cobraUsage(err):
		return 2
	case client.CodeOf(err) != "":
		return statusOf(client.CodeOf(err))
	}
	return 1
}

// flagError makes every flag parsing error a usage error (status 2).
func flagError(_ *cobra.Command, err error) error { return &usageError{err: err} }

// exactArgs is cobra.ExactArgs with a usage error naming what is missing.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s takes %d argument(s): %s (got %d)", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		for i, a := range args {
			if strings.TrimSpace(a) == "" {
				return usagef("%s: %s must not be empty", cmd.CommandPath(), names[i])
			}
		}
		return nil
	}
}

// noArgs is cobra.NoArgs with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments (got %q)", cmd.CommandPath(), args[0])
	}
	return nil
}

// groupRun answers a command group run without (or with an unknown) subcommand.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		cmd.SetOut(cmd.ErrOrStderr())
		_ = cmd.Help()
		return usagef("%s needs a subcommand", cmd.CommandPath())
	}
	return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
}
