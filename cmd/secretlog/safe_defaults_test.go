package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/server"
)

// buildBinary builds secretlog once per test into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "secretlog")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// runBinary runs bin with only the given SECRETLOG_* settings and returns
// its output and exit code.
func runBinary(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECRETLOG_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

// TestSafeDefaults: with a database URL and no keys, serve refuses to start
// and names the variables to set, without generating keys or printing a
// token; the token command refuses a lifetime over the cap.
func TestSafeDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := buildBinary(t)
	dataDir := t.TempDir()
	// Nothing listens there: the refusal must come before any connection.
	url := "SECRETLOG_DATABASE_URL=postgres://nobody@127.0.0.1:1/secretlog?sslmode=disable&connect_timeout=1"

	start := time.Now()
	stdout, stderr, code := runBinary(t, bin, []string{url, "SECRETLOG_DATA_DIR=" + dataDir}, "serve")
	require.Equal(t, 1, code)
	require.Less(t, time.Since(start), 10*time.Second)
	for _, want := range []string{"SECRETLOG_MASTER_KEY", "SECRETLOG_TOKEN_KEY", "--dev"} {
		require.Contains(t, stderr, want)
	}
	require.NotContains(t, stdout, "Bearer")
	entries, err := os.ReadDir(dataDir)
	require.NoError(t, err)
	require.Empty(t, entries, "no development keys generated")

	// Development keys left in the data directory are not used either.
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "token.key"), []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))), 0o600))
	_, stderr, code = runBinary(t, bin, []string{url, "SECRETLOG_DATA_DIR=" + dataDir}, "token", "--role", "SYSTEM", "--domain", "d1")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "SECRETLOG_TOKEN_KEY")

	// One key missing: named alone.
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	_, stderr, code = runBinary(t, bin, []string{url, "SECRETLOG_DATA_DIR=" + dataDir, "SECRETLOG_TOKEN_KEY=" + key}, "serve")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "SECRETLOG_MASTER_KEY")
	require.NotContains(t, stderr, "no token signing key")

	// --dev allows development keys with a database URL: generated, then the
	// (unreachable) database is the error.
	_, stderr, code = runBinary(t, bin, []string{url, "SECRETLOG_DATA_DIR=" + dataDir}, "serve", "--dev")
	require.Equal(t, 1, code)
	require.NotContains(t, stderr, "refusing to start")
	_, err = os.Stat(filepath.Join(dataDir, "master.key"))
	require.NoError(t, err, "--dev generated a master key")

	// Token lifetime is capped.
	env := []string{url, "SECRETLOG_TOKEN_KEY=" + key}
	_, stderr, code = runBinary(t, bin, env, "token", "--role", "SYSTEM", "--domain", "d1", "--ttl", "1000h")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "longer than the maximum of 24h0m0s")
	stdout, _, code = runBinary(t, bin, env, "token", "--role", "SYSTEM", "--domain", "d1", "--ttl", "24h")
	require.Equal(t, 0, code)
	require.NotEmpty(t, strings.TrimSpace(stdout))
	_, _, code = runBinary(t, bin, append(env, "SECRETLOG_MAX_TOKEN_TTL=1000h"), "token", "--role", "SYSTEM", "--domain", "d1", "--ttl", "1000h")
	require.Equal(t, 0, code, "the cap is configurable")

	// A malformed limit is refused, naming the variable.
	_, stderr, code = runBinary(t, bin, append(env, "SECRETLOG_MAX_PAGE_SIZE=lots"), "token", "--role", "SYSTEM", "--domain", "d1")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "SECRETLOG_MAX_PAGE_SIZE")
}

// TestLimitsDocumented: every limit's variable and flag has a row in the
// README's Limits table, and the flag exists.
func TestLimitsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n## Limits\n")
	require.True(t, ok, "README has a Limits section")
	section, _, _ = strings.Cut(section, "\n## ")
	root := rootCommand()
	limits := server.DefaultLimits()
	for _, s := range limits.Settings() {
		require.Contains(t, section, "| `"+s.Env+"` (`--"+s.Flag+"`) |", "README documents %s", s.Env)
		require.NotNil(t, root.PersistentFlags().Lookup(s.Flag), "flag --%s", s.Flag)
	}
	require.Contains(t, section, "`SECRETLOG_MAX_TOKEN_TTL` (`--max-token-ttl`)")
}
