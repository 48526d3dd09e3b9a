package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/events"
)

func verifyCommand(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the log's hash chains and checkpoints; exit 1 if a link is broken",
		Long: `Walk the whole log in commit order and check that every event's version and hash
chain to its stream's previous event, and that every log checkpoint matches the events
before it. Reports the first broken link by log position. Read-only; servers may keep running
(events appended meanwhile are left for the next run).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.refusePostgresOnly("verify (of the whole log; \"secretlog eventstore check\" checks one stream)"); err != nil {
				return err
			}
			ctx := cmd.Context()
			log := cfg.logger(cmd.ErrOrStderr())
			url, stop, err := cfg.database(ctx, log)
			if err != nil {
				return err
			}
			defer stop()
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				return err
			}
			defer pool.Close()
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var bar *progressbar.ProgressBar
			report, err := events.NewPostgresStore(pool).Verify(ctx, func(done, total int64) {
				if bar == nil {
					bar = progressbar.NewOptions64(total, progressbar.OptionSetDescription("verifying the log"),
						progressbar.OptionSetWriter(stderr), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
						progressbar.OptionSetItsString("events"), progressbar.OptionSetPredictTime(true),
						progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionFullWidth())
				}
				bar.ChangeMax64(total)
				_ = bar.Set64(done)
			})
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(stderr)
			}
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
				return fmt.Errorf("no log to verify (run secretlog migrate first): %w", err)
			}
			if err != nil {
				return err
			}
			if !report.OK {
				fmt.Fprintf(stdout, "log BROKEN at position %d: %s\n", report.FirstBrokenPosition, report.Reason)
				return errors.New("log verification failed")
			}
			fmt.Fprintf(stdout, "log verified: %d events, all links intact (%d checkpoints)\n", report.EventsChecked, report.CheckpointsChecked)
			return nil
		},
	}
}
