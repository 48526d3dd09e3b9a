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
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg"
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
}

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
	f.StringVar(&c.masterKey, "master-key", "", "key-encryption keyring id:base64key[,id:base64key...], first is primary [SECRETLOG_MASTER_KEY]")
	f.StringVar(&c.masterKeyFile, "master-key-file", env("SECRETLOG_MASTER_KEY_FILE", ""), "file holding the keyring [SECRETLOG_MASTER_KEY_FILE]")
	f.StringVar(&c.tokenKey, "token-key", "", "token signing key, base64 of at least 32 bytes [SECRETLOG_TOKEN_KEY]")
	f.StringVar(&c.tokenKeyFile, "token-key-file", env("SECRETLOG_TOKEN_KEY_FILE", ""), "file holding the token signing key [SECRETLOG_TOKEN_KEY_FILE]")
	f.StringVar(&c.logFormat, "log-format", env("SECRETLOG_LOG_FORMAT", "text"), "log format: text or json [SECRETLOG_LOG_FORMAT]")
	// Keys are not flag defaults so that --help never prints them.
	if c.masterKey == "" {
		c.masterKey = os.Getenv("SECRETLOG_MASTER_KEY")
	}
	if c.tokenKey == "" {
		c.tokenKey = os.Getenv("SECRETLOG_TOKEN_KEY")
	}
}

func (c *config) logger(w io.Writer) *slog.Logger {
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// secretSetting resolves a key from its value, its file, or a development
// default generated into the data directory (mode 0600) with a warning.
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
	log.Info("started private PostgreSQL", "dir", filepath.Join(c.dataDir, "postgres"), "port", cluster.Port())
	if err := cluster.CreateDatabase(ctx, "secretlog"); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P04" { // duplicate_database
			_ = cluster.Stop()
			return "", nil, err
		}
	}
	return cluster.URL("secretlog"), func() { _ = cluster.Stop() }, nil
}
