package main

// The EventStoreDB log (events/esdb) as configuration sees it: serve and
// worker append to it and project it asynchronously, "eventstore check"
// connects with it, and the commands that read the PostgreSQL log refuse
// to run with it. See the README's EventStoreDB section.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/events/esdb"
)

// asyncProjections reads SECRETLOG_PROJECTIONS: inline (the default with the
// PostgreSQL log) or async (always with EventStoreDB).
func (c *config) asyncProjections() (bool, error) {
	switch c.projections {
	case "", "inline":
		if c.eventStoreURL != "" {
			if c.projections == "inline" {
				return false, errors.New("SECRETLOG_PROJECTIONS=inline needs the PostgreSQL log: with EventStoreDB (SECRETLOG_EVENTSTORE_URL) projections are asynchronous")
			}
			return true, nil
		}
		return false, nil
	case "async":
		return true, nil
	}
	return false, fmt.Errorf("SECRETLOG_PROJECTIONS (--projections) is %q: want inline or async", c.projections)
}

// refusePostgresOnly stops a command that reads the PostgreSQL log (verify,
// rebuild) when the log is on EventStoreDB.
func (c *config) refusePostgresOnly(what string) error {
	if c.eventStoreURL != "" {
		return fmt.Errorf("%s needs the PostgreSQL log; the log is on EventStoreDB (SECRETLOG_EVENTSTORE_URL). "+
			"To replay it into the read models, drop their tables: the next server start recreates them and the runner refills them (README: EventStoreDB)", what)
	}
	return nil
}

// eventStore opens the configured EventStoreDB log (nil when none is set).
func (c *config) eventStore(ctx context.Context) (*esdb.Store, error) {
	if c.eventStoreURL == "" {
		return nil, nil
	}
	return esdb.Open(ctx, c.eventStoreURL)
}

func eventStoreCommand(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eventstore",
		Short: "The log on EventStoreDB (SECRETLOG_EVENTSTORE_URL)",
	}
	var timeout time.Duration
	check := &cobra.Command{
		Use:   "check",
		Short: "Connect to the configured EventStoreDB and report the head of the log",
		Long: `Connect to the EventStoreDB named by SECRETLOG_EVENTSTORE_URL (--eventstore-url) as the
server would: read the last secretlog event of $all and read it again from its stream
(EventStoreDB 22.6 or later reports its $all position there, which the store needs). Then
check that stream's hash chain. Read-only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.eventStoreURL == "" {
				return errors.New("no EventStoreDB configured: set SECRETLOG_EVENTSTORE_URL or --eventstore-url (e.g. esdb://localhost:2113?tls=false)")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			s, err := cfg.eventStore(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			out := cmd.OutOrStdout()
			last, ok, err := s.Last(ctx)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintln(out, "EventStoreDB reachable; $all holds no secretlog events yet")
				return nil
			}
			// Open has read it again from its stream and compared the positions.
			if err := s.VerifyStream(ctx, last.Stream); err != nil {
				return err
			}
			fmt.Fprintf(out, "EventStoreDB reachable; head of the log: %s@%d at commit %d, prepare %d; its stream's hash chain is intact\n",
				last.Stream, last.Version, last.Cursor.Commit, last.Cursor.Position)
			return nil
		},
	}
	check.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long")
	cmd.AddCommand(check)
	return cmd
}
