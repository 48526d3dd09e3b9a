package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg"
	"github.com/secretlog/secretlog/server"
)

// config is the flags shared by the subcommands; environment variables are their defaults.
type config struct {
	databaseURL   string
	listen        string
	dataDir       string
	masterKey     string
	masterKeyFile string
	tokenKey      string
	tokenKeyFile  string
	logFormat     string
	// dev allows development keys (generated into the data directory) with
	// a database URL; without one, the embedded cluster is development mode.
	dev           bool
	introspection bool
	graphiql      bool
	maxTokenTTL   time.Duration
	natsURL       string
	natsStream    string
	limits        server.Limits
	// The lifecycle's defaults.
	recoveryDays      int
	maxVersions       int
	schedulerInterval time.Duration
	// eventStoreURL is the EventStoreDB to use as the log (eventstore.go).
	eventStoreURL string
	// projections is inline or async (eventstore.go); projectionWait bounds
	// a write's wait for its projection when they are asynchronous.
	projections    string
	projectionWait time.Duration
	// envErrs are environment variables that did not parse; reported before any command runs.
	envErrs []error
}

// devMode reports whether development keys may be generated and used: the
// embedded cluster (no database URL), or an explicit --dev.
func (c *config) devMode() bool { return c.dev || c.databaseURL == "" }

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func (c *config) bind(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&c.databaseURL, "database-url", env("SECRETLOG_DATABASE_URL", ""), "PostgreSQL for the log and read models (unset: a private cluster under the data directory) [SECRETLOG_DATABASE_URL]")
	f.StringVar(&c.listen, "listen", env("SECRETLOG_LISTEN", "127.0.0.1:8080"), "HTTP listen address [SECRETLOG_LISTEN]")
	f.StringVar(&c.dataDir, "data-dir", env("SECRETLOG_DATA_DIR", "./.secretlog"), "data directory [SECRETLOG_DATA_DIR]")
	f.StringVar(&c.masterKey, "master-key", "", "key-encryption keyring name[@version]:base64key[,...]; the first name is the primary [SECRETLOG_MASTER_KEY]")
	f.StringVar(&c.masterKeyFile, "master-key-file", env("SECRETLOG_MASTER_KEY_FILE", ""), "file holding the keyring [SECRETLOG_MASTER_KEY_FILE]")
	f.StringVar(&c.tokenKey, "token-key", "", "token signing key, base64 of at least 32 bytes [SECRETLOG_TOKEN_KEY]")
	f.StringVar(&c.tokenKeyFile, "token-key-file", env("SECRETLOG_TOKEN_KEY_FILE", ""), "file holding the token signing key [SECRETLOG_TOKEN_KEY_FILE]")
	f.StringVar(&c.logFormat, "log-format", env("SECRETLOG_LOG_FORMAT", "text"), "log format: text or json [SECRETLOG_LOG_FORMAT]")
	f.BoolVar(&c.dev, "dev", c.envBool("SECRETLOG_DEV", false), "development mode with a database URL: generate keys into the data directory and print a token [SECRETLOG_DEV]")
	f.BoolVar(&c.introspection, "introspection", c.envBool("SECRETLOG_INTROSPECTION", true), "answer GraphQL introspection (__schema, __type) [SECRETLOG_INTROSPECTION]")
	f.BoolVar(&c.graphiql, "graphiql", c.envBool("SECRETLOG_GRAPHIQL", true), "serve GraphiQL at / [SECRETLOG_GRAPHIQL]")
	f.StringVar(&c.natsURL, "nats-url", env("SECRETLOG_NATS_URL", ""), "NATS server with JetStream for the change feed (unset: servers tail the log for their subscribers) [SECRETLOG_NATS_URL]")
	f.StringVar(&c.natsStream, "nats-stream", env("SECRETLOG_NATS_STREAM", "SECRETLOG"), "JetStream stream of the change feed (subjects secretlog.>) [SECRETLOG_NATS_STREAM]")
	f.DurationVar(&c.maxTokenTTL, "max-token-ttl", c.envDuration("SECRETLOG_MAX_TOKEN_TTL", auth.DefaultMaxTTL), "longest token lifetime, minted or accepted [SECRETLOG_MAX_TOKEN_TTL]")
	f.IntVar(&c.recoveryDays, "recovery-days", c.envInt("SECRETLOG_RECOVERY_DAYS", commands.DefaultRecoveryDays), "recovery window of a delete that names none, 7 to 30 days [SECRETLOG_RECOVERY_DAYS]")
	f.IntVar(&c.maxVersions, "max-versions", c.envInt("SECRETLOG_MAX_VERSIONS", commands.DefaultMaxVersions), "readable versions kept of a value whose resource sets none [SECRETLOG_MAX_VERSIONS]")
	f.DurationVar(&c.schedulerInterval, "scheduler-interval", c.envDuration("SECRETLOG_SCHEDULER_INTERVAL", 30*time.Second), "how often the scheduler looks for due deletions and rotations [SECRETLOG_SCHEDULER_INTERVAL]")
	f.StringVar(&c.eventStoreURL, "eventstore-url", env("SECRETLOG_EVENTSTORE_URL", ""), "EventStoreDB connection string for the log, e.g. esdb://localhost:2113?tls=false: the log is kept there and projected asynchronously (README: EventStoreDB) [SECRETLOG_EVENTSTORE_URL]")
	f.StringVar(&c.projections, "projections", env("SECRETLOG_PROJECTIONS", ""), "inline (default: read models commit with each write) or async (a leased runner projects the log and writes wait for it; always with EventStoreDB) [SECRETLOG_PROJECTIONS]")
	f.DurationVar(&c.projectionWait, "projection-wait", c.envDuration("SECRETLOG_PROJECTION_WAIT", 10*time.Second), "with asynchronous projections, how long a write waits for its projection before answering anyway [SECRETLOG_PROJECTION_WAIT]")
	c.limits = server.DefaultLimits()
	for _, st := range c.limits.Settings() {
		usage := st.Usage + " [" + st.Env + "]"
		switch {
		case st.Int != nil:
			f.IntVar(st.Int, st.Flag, c.envInt(st.Env, *st.Int), usage)
		case st.Int64 != nil:
			f.Int64Var(st.Int64, st.Flag, int64(c.envInt(st.Env, int(*st.Int64))), usage)
		case st.Duration != nil:
			f.DurationVar(st.Duration, st.Flag, c.envDuration(st.Env, *st.Duration), usage)
		}
	}
	// Keys are not flag defaults so that --help never prints them.
	if c.masterKey == "" {
		c.masterKey = os.Getenv("SECRETLOG_MASTER_KEY")
	}
	if c.tokenKey == "" {
		c.tokenKey = os.Getenv("SECRETLOG_TOKEN_KEY")
	}
}

func (c *config) envBool(name string, def bool) bool {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s: want true or false, got %q", name, v))
		return def
	}
	return b
}

func (c *config) envInt(name string, def int) int {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s: want a non-negative integer, got %q", name, v))
		return def
	}
	return n
}

func (c *config) envDuration(name string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		c.envErrs = append(c.envErrs, fmt.Errorf("%s: want a duration such as 30s or 24h, got %q", name, v))
		return def
	}
	return d
}

// check reports settings that did not parse.
func (c *config) check() error {
	errs := c.envErrs
	if c.recoveryDays < 7 || c.recoveryDays > 30 {
		errs = append(errs, fmt.Errorf("--recovery-days (SECRETLOG_RECOVERY_DAYS) must be 7 to 30, got %d", c.recoveryDays))
	}
	if c.maxVersions < 1 || c.maxVersions > 1000 {
		errs = append(errs, fmt.Errorf("--max-versions (SECRETLOG_MAX_VERSIONS) must be 1 to 1000, got %d", c.maxVersions))
	}
	if c.schedulerInterval < time.Second {
		errs = append(errs, fmt.Errorf("--scheduler-interval (SECRETLOG_SCHEDULER_INTERVAL) must be at least 1s"))
	}
	return errors.Join(errs...)
}

func (c *config) logger(w io.Writer) *slog.Logger {
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// errNoKey names the settings a key can come from, for a refusal to start.
type errNoKey struct{ what, env, flag string }

func (e errNoKey) Error() string {
	return fmt.Sprintf("no %s configured: set %s or %s_FILE (--%s, --%s-file)", e.what, e.env, e.env, e.flag, e.flag)
}

// secretSetting resolves a key from its value, its file, or, in development
// mode only (no database URL, or --dev), a development default generated
// into the data directory (mode 0600) with a warning.
func (c *config) secretSetting(log *slog.Logger, what, value, file, devFile string, generate func() (string, error)) (string, bool, error) {
	if value != "" {
		return strings.TrimSpace(value), false, nil
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", false, fmt.Errorf("%s file: %w", what, err)
		}
		return strings.TrimSpace(string(b)), false, nil
	}
	if !c.devMode() {
		env, flag := "SECRETLOG_MASTER_KEY", "master-key"
		if devFile == "token.key" {
			env, flag = "SECRETLOG_TOKEN_KEY", "token-key"
		}
		return "", false, errNoKey{what: what, env: env, flag: flag}
	}
	path := filepath.Join(c.dataDir, devFile)
	if b, err := os.ReadFile(path); err == nil {
		log.Warn("using the development "+what+" from the data directory; set it explicitly in production", "file", path)
		return strings.TrimSpace(string(b)), true, nil
	}
	v, err := generate()
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return "", false, err
	}
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", false, err
	}
	log.Warn("generated a development "+what+"; set it explicitly in production", "file", path)
	return v, true, nil
}

// requireKeys refuses to go on outside development mode unless both keys
// are configured, naming every missing setting at once.
func (c *config) requireKeys() error {
	if c.devMode() {
		return nil
	}
	var missing []string
	if c.masterKey == "" && c.masterKeyFile == "" {
		missing = append(missing, errNoKey{what: "master key", env: "SECRETLOG_MASTER_KEY", flag: "master-key"}.Error())
	}
	if c.tokenKey == "" && c.tokenKeyFile == "" {
		missing = append(missing, errNoKey{what: "token signing key", env: "SECRETLOG_TOKEN_KEY", flag: "token-key"}.Error())
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("refusing to start with a database URL and no keys:\n  %s\n"+
		"development keys are generated only with the embedded database (no SECRETLOG_DATABASE_URL) or with --dev (SECRETLOG_DEV=true)",
		strings.Join(missing, "\n  "))
}

func (c *config) keyring(log *slog.Logger) (*events.Keyring, error) {
	spec, _, err := c.secretSetting(log, "master key", c.masterKey, c.masterKeyFile, "master.key",
		func() (string, error) { return events.NewKeySpec("dev-1") })
	if err != nil {
		return nil, err
	}
	return events.ParseKeyring(spec)
}

// signingKey returns the token key and whether it is the generated development one.
func (c *config) signingKey(log *slog.Logger) ([]byte, bool, error) {
	v, dev, err := c.secretSetting(log, "token key", c.tokenKey, c.tokenKeyFile, "token.key", func() (string, error) {
		spec, err := events.NewKeySpec("x")
		return strings.TrimPrefix(spec, "x:"), err
	})
	if err != nil {
		return nil, false, err
	}
	key, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, false, errors.New("token key must be base64")
	}
	return key, dev, nil
}

// database returns the database URL, starting the private cluster under the
// data directory when none is configured. stop shuts that cluster down.
func (c *config) database(ctx context.Context, log *slog.Logger) (url string, stop func(), err error) {
	if c.databaseURL != "" {
		return c.databaseURL, func() {}, nil
	}
	cluster, err := localpg.Start(ctx, localpg.Options{
		Dir: filepath.Join(c.dataDir, "postgres"), Durable: true, Install: true, Log: os.Stderr,
	})
	if err != nil {
		return "", nil, fmt.Errorf("embedded PostgreSQL: %w", err)
	}
	log.Info("started private PostgreSQL", "dir", filepath.Join(c.dataDir, "postgres"), "socket", cluster.SocketDir())
	if err := cluster.CreateDatabase(ctx, "secretlog"); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P04" { // duplicate_database
			_ = cluster.Stop()
			return "", nil, err
		}
	}
	return cluster.URL("secretlog"), func() { _ = cluster.Stop() }, nil
}
