package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// readmeCommands returns the two set-up commands from the README's
// "Quick start" block: the run command and the test command.
func readmeCommands(t *testing.T) (run, test string) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	block := regexp.MustCompile("(?s)<!-- quickstart -->\\s*```sh\\n(.*?)```").FindSubmatch(readme)
	require.NotNil(t, block, "README has a quickstart block")
	var cmds []string
	for _, line := range strings.Split(string(block[1]), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	require.Len(t, cmds, 2, "exactly two set-up commands")
	return cmds[0], cmds[1]
}

// TestNewcomerPath runs the README's run command as written, on a fresh data
// directory with no PostgreSQL running: it must start its own cluster, print
// a development token and the GraphiQL URL, serve GraphQL with that token,
// and stop cleanly (taking its cluster down) on SIGTERM.
func TestNewcomerPath(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	run, test := readmeCommands(t)
	require.Equal(t, "go run ./cmd/secretlog serve", run)
	require.Equal(t, "go test -race -count=1 ./...", test)
	ci, err := os.ReadFile("../../.ci/run")
	require.NoError(t, err)
	require.Contains(t, string(ci), "\n"+test+"\n", ".ci/run calls the README's test command")

	port := freePort(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := strings.Fields(run)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "SECRETLOG_DATA_DIR="+dataDir, "SECRETLOG_LISTEN=127.0.0.1:"+port)
	// go run forwards signals to the program; its own process group keeps them ours.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()

	var token, graphiql string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && (token == "" || graphiql == "") {
		line := sc.Text()
		if m := regexp.MustCompile(`Bearer ([A-Za-z0-9_\-.]+)`).FindStringSubmatch(line); m != nil {
			token = m[1]
		}
		if m := regexp.MustCompile(`GraphiQL:\s+(http://\S+)`).FindStringSubmatch(line); m != nil {
			graphiql = m[1]
		}
	}
	require.NotEmpty(t, token, "prints a development token; stderr:\n%s", stderr.String())
	require.Equal(t, "http://127.0.0.1:"+port+"/", graphiql)
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(new(bytes.Buffer)) }()

	resp, err := http.Get(graphiql)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp.Body.Close()

	body := `{"query":"mutation { createSecret(input: {name: \"first\", resourceGroup: DOMAIN, data: {token: \"t0\"}}) { secretId version } }"}`
	req, _ := http.NewRequest(http.MethodPost, graphiql+"graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	var out struct {
		Data struct {
			CreateSecret struct {
				SecretID string
				Version  int
			}
		}
		Errors []any
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	require.Empty(t, out.Errors)
	require.Equal(t, 1, out.Data.CreateSecret.Version)

	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "graceful shutdown; stderr:\n%s", stderr.String())
	// The private cluster went down with it.
	_, err = os.Stat(filepath.Join(dataDir, "postgres", "pgdata", "postmaster.pid"))
	require.True(t, os.IsNotExist(err), "postgres stopped")
	require.NotContains(t, stderr.String(), "t0\"", "no secret value in the log")
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
