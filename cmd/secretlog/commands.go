package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/projections"
	"github.com/secretlog/secretlog/server"
	"github.com/secretlog/secretlog/tracing"
)

func serveCommand(cfg *config) *cobra.Command {
	var noWorker bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the GraphQL API (and GraphiQL) and run the background work (unless --no-worker)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd, cfg, serveMode{noWorker: noWorker})
		},
	}
	cmd.Flags().BoolVar(&noWorker, "no-worker", cfg.envBool("SECRETLOG_NO_WORKER", false),
		"a stateless API server: no leased background work (run `secretlog worker` beside it) [SECRETLOG_NO_WORKER]")
	return cmd
}

func workerCommand(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the background work (change feed forwarder, scheduler, asynchronous projections, log checkpoints) under their leases; no API",
		Long: `Run the background work under its leases: the change feed's forwarder (with SECRETLOG_NATS_URL),
the lifecycle scheduler, the asynchronous projections and the log checkpointer. Any number of
workers and of API servers (serve --no-worker) can run against one database: each piece of work
runs in one process at a time, and another takes over when it dies. --listen serves /healthz,
/readyz and /metrics.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd, cfg, serveMode{workerOnly: true})
		},
	}
}

type serveMode struct{ noWorker, workerOnly bool }

func runServer(cmd *cobra.Command, cfg *config, mode serveMode) error {
	ctx := cmd.Context()
	log := cfg.logger(os.Stderr)
	async, err := cfg.asyncProjections()
	if err != nil {
		return err
	}
	if err := cfg.requireKeys(); err != nil {
		return err
	}
	stopTracing, err := tracing.Setup(ctx)
	if err != nil {
		return err
	}
	defer flushTraces(stopTracing, log)
	logTracing(log)
	keyring, err := cfg.keyring(log)
	if err != nil {
		return err
	}
	tokenKey, devToken, err := cfg.signingKey(log)
	if err != nil {
		return err
	}
	url, stop, err := cfg.database(ctx, log)
	if err != nil {
		return err
	}
	defer stop()
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	remote, err := cfg.eventStore(octx)
	cancel()
	if err != nil {
		return err
	}
	var remoteLog events.Store // nil, not a nil *esdb.Store
	if remote != nil {
		defer remote.Close()
		remoteLog = remote
		log.Info("the log is on EventStoreDB: projections run asynchronously; writes wait for them")
	}
	srv, err := server.New(ctx, server.Config{Log: remoteLog, AsyncProjections: async, ProjectionWait: cfg.projectionWait, DatabaseURL: url, Keyring: keyring, TokenKey: tokenKey, Logger: log,
		Limits: cfg.limits, DisableIntrospection: !cfg.introspection, DisableGraphiQL: !cfg.graphiql,
		MaxTokenTTL: cfg.maxTokenTTL, NoWorker: mode.noWorker, WorkerOnly: mode.workerOnly,
		NatsURL: cfg.natsURL, NatsStream: cfg.natsStream, SchedulerEvery: cfg.schedulerInterval,
		Lifecycle: commands.Lifecycle{RecoveryDays: cfg.recoveryDays, MaxVersions: cfg.maxVersions}})
	if err != nil {
		return err
	}
	defer srv.Close()
	if addr := os.Getenv("SECRETLOG_PPROF"); addr != "" {
		stopPprof, err := servePprof(addr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	l, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	base := "http://" + l.Addr().String()
	if devToken && !mode.workerOnly {
		ttl := min(24*time.Hour, srv.Signer.MaxTTL())
		tok, err := srv.Signer.Mint(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-dev", UserID: "admin@dev"}, ttl)
		if err != nil {
			return err
		}
		srv.SetDevToken(tok)
		fmt.Fprintf(os.Stdout, "\nsecretlog is running.\n  GraphiQL:  %s/ (its Headers hold this token)\n  GraphQL:   %s/graphql\n"+
			"  Development DOMAIN_ADMIN token for domain-dev (%s); for other clients:\n"+
			"  {\"Authorization\": \"Bearer %s\"}\n  More tokens: go run ./cmd/secretlog token --role SYSTEM --domain domain-dev\n\n",
			base, base, strings.TrimSuffix(ttl.String(), "0m0s"), tok)
	}
	if mode.workerOnly {
		log.Info("worker running", "health", base+"/readyz")
	} else {
		log.Info("listening", "url", base, "worker", !mode.noWorker)
	}
	return srv.Serve(ctx, l)
}

// servePprof exposes net/http/pprof on addr (SECRETLOG_PPROF, e.g.
// 127.0.0.1:6060) so the service can be profiled under load (bench/load
// -pprof). It is off unless set, and never shares the API's listener.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("SECRETLOG_PPROF: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	log.Warn("serving pprof (SECRETLOG_PPROF); do not expose it", "url", "http://"+l.Addr().String()+"/debug/pprof/")
	return func() { _ = srv.Close() }, nil
}

func migrateCommand(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the database schema (log and read models) up to date",
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := cfg.logger(os.Stderr)
			url, stop, err := cfg.database(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer stop()
			replay, err := server.Migrate(cmd.Context(), url)
			if err != nil {
				return err
			}
			if replay {
				fmt.Fprintln(os.Stdout, "database schema is up to date; the read models are empty: the next serve (or rebuild) replays the log")
				return nil
			}
			fmt.Fprintln(os.Stdout, "database schema is up to date")
			return nil
		},
	}
}

func tokenCommand(cfg *config) *cobra.Command {
	var role, domain, workspace, user, subject string
	var projects []string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint a bearer token the server accepts",
		Example: `  secretlog token --role DOMAIN_ADMIN --domain domain-dev --user alice@example.com
  secretlog token --role WORKSPACE_MEMBER --domain d1 --workspace ws1 --project p1 --project p2 --ttl 8h`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := cfg.logger(os.Stderr)
			key, _, err := cfg.signingKey(log)
			if err != nil {
				return err
			}
			signer, err := auth.NewSigner(key)
			if err != nil {
				return err
			}
			signer = signer.WithMaxTTL(cfg.maxTokenTTL)
			r, err := auth.ParseRole(strings.ToUpper(role))
			if err != nil {
				return err
			}
			tok, err := signer.Mint(auth.Identity{Role: r, DomainID: domain, WorkspaceID: workspace,
				Projects: projects, UserID: user, Subject: subject}, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stdout, tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&role, "role", "", "DOMAIN_ADMIN, WORKSPACE_OWNER, WORKSPACE_MEMBER, USER or SYSTEM")
	f.StringVar(&domain, "domain", "", "domain id")
	f.StringVar(&workspace, "workspace", "", "workspace id (WORKSPACE_OWNER, WORKSPACE_MEMBER)")
	f.StringArrayVar(&projects, "project", nil, "project id (repeatable; WORKSPACE_MEMBER)")
	f.StringVar(&user, "user", "", "user id")
	f.StringVar(&subject, "subject", "", "token subject (default: the user id)")
	f.DurationVar(&ttl, "ttl", time.Hour, "lifetime, at most --max-token-ttl (SECRETLOG_MAX_TOKEN_TTL, 24h by default)")
	_ = cmd.MarkFlagRequired("role")
	_ = cmd.MarkFlagRequired("domain")
	return cmd
}

func rewrapCommand(cfg *config) *cobra.Command {
	return &cobra.Command{
		Use:   "rewrap",
		Short: "Re-wrap every data key with the newest version of the key it follows (after a key rotation)",
		Long: `Key rotation. Each data key follows a keyring key name: the kmsKeyId its secret chose,
or the primary (the first entry's name). Rotate the primary by putting a new key first
(SECRETLOG_MASTER_KEY=new:...,old:...), or rotate a named key by adding a version of it
(app@2:...,app:...); restart the servers, run rewrap, then remove the old key or version.
Rewrap moves every wrap made by an older version, or by another key, to the newest version
of the key it follows. The log is never rewritten.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := cfg.logger(os.Stderr)
			keyring, err := cfg.keyring(log)
			if err != nil {
				return err
			}
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
			n, err := events.NewKeyStore(pool, keyring).Rewrap(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stdout, "re-wrapped %d data keys to the newest version of their key (primary %q)\n", n, keyring.Primary())
			return nil
		},
	}
}

func rebuildCommand(cfg *config) *cobra.Command {
	var only string
	var check bool
	var names []string
	for _, p := range projections.All() {
		names = append(names, p.Name())
	}
	cmd := &cobra.Command{
		Use:   "rebuild [--projection NAME] [--check]",
		Short: "Replay the log into shadow tables and swap them in while servers keep answering",
		Long: `Replay the whole log into fresh shadow tables and swap them in atomically; running
servers keep writing and answering from the old tables until the swap, which waits for
in-flight writes and holds new ones for its duration (the events that arrived meanwhile).
Rebuilding one projection also replays the snapshots it folds from, into a scratch table.
--check replays into shadow tables only, prints every row that differs from the live read
models and exits with status 1 if any does; it changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.refusePostgresOnly("rebuild"); err != nil {
				return err
			}
			ctx := cmd.Context()
			log := cfg.logger(os.Stderr)
			opts := projections.RebuildOptions{Check: check}
			if only != "" {
				p, err := projections.Lookup(only)
				if err != nil {
					return err
				}
				opts.Projections = []projections.Projection{p}
			}
			url, stop, err := cfg.database(ctx, log)
			if err != nil {
				return err
			}
			defer stop()
			if _, err := server.Migrate(ctx, url); err != nil {
				return err
			}
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				return err
			}
			defer pool.Close()
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			description := "replaying the log"
			if check {
				description = "replaying the log to check"
			}
			var bar *progressbar.ProgressBar
			opts.Progress = func(done, total int64) {
				if bar == nil {
					bar = progressbar.NewOptions64(total, progressbar.OptionSetDescription(description),
						progressbar.OptionSetWriter(stderr), progressbar.OptionShowCount(), progressbar.OptionShowIts(),
						progressbar.OptionSetItsString("events"), progressbar.OptionSetPredictTime(true),
						progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionFullWidth())
				}
				bar.ChangeMax64(total)
				_ = bar.Set64(done)
			}
			report, err := projections.RebuildOnline(ctx, pool, opts)
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(stderr)
			}
			if err != nil {
				return err
			}
			if check {
				for _, d := range report.Differences {
					fmt.Fprintln(stdout, d)
				}
				if n := len(report.Differences); n > 0 {
					return &exitError{code: 1, err: fmt.Errorf("%d rows of the read models differ from the log", n)}
				}
				for _, p := range report.Projections {
					fmt.Fprintf(stdout, "checked %s against %d events: no differences\n", p.Name, p.Events)
				}
				return nil
			}
			for _, p := range report.Projections {
				rate := 0.0
				if s := p.Took.Seconds(); s > 0 {
					rate = float64(p.Events) / s
				}
				fmt.Fprintf(stdout, "rebuilt %s from %d events in %s (%.0f events/s)\n", p.Name, p.Events, p.Took.Round(time.Millisecond), rate)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&only, "projection", "", "rebuild only this projection ("+strings.Join(names, ", ")+")")
	cmd.Flags().BoolVar(&check, "check", false, "compare a fresh replay with the live read models instead of swapping; exit 1 on differences")
	return cmd
}
