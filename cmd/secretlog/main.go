// Command secretlog is the secret store: serve the API, migrate the database,
// mint tokens, rotate keys; and its client: secret, user-secret, trusted-secret, audit.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "secretlog:", err)
		os.Exit(exitCode(err))
	}
}

// exitError is an error that ends the process with a given status, such as
// rebuild --check's 1 for "differences found".
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the process status for err: an exitError's own, otherwise
// the status of its API error code or usage error (exitcodes.go), else 1.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return classify(err)
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "secretlog",
		Short:         "An event-sourced secret store on an append-only, encrypted log",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cfg := &config{}
	cfg.bind(root)
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return cfg.check() }
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(serveCommand(cfg), workerCommand(cfg), migrateCommand(cfg), tokenCommand(cfg), rewrapCommand(cfg), rebuildCommand(cfg), verifyCommand(cfg), eventStoreCommand(cfg))
	root.AddCommand(secretCommand(), userSecretCommand(), trustedSecretCommand(), auditCommand(), exportCommand(), importCommand())
	return root
}
