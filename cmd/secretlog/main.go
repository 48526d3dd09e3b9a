// Command secretlog is the secret store: serve the API, migrate the database,
// mint tokens, rotate keys.
package main

import (
	"context"
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
		os.Exit(1)
	}
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
	root.AddCommand(serveCommand(cfg), migrateCommand(cfg), tokenCommand(cfg), rewrapCommand(cfg), rebuildCommand(cfg))
	return root
}
