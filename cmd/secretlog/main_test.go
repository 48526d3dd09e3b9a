package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
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
	require.Equal(t, "go test -race -count=1 ./... && SECRETLOG_TEST_PROJECTIONS=async go test -race -count=1 ./server", test)
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
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()

	tokenRe := regexp.MustCompile(`Bearer ([A-Za-z0-9_\-.]+)`)
	urlRe := regexp.MustCompile(`GraphiQL:\s+(http://\S+)`)
	var token, graphiql string
	require.Eventually(t, func() bool {
		out := stdout.String()
		if m := tokenRe.FindStringSubmatch(out); m != nil {
			token = m[1]
		}
		if m := urlRe.FindStringSubmatch(out); m != nil {
			graphiql = m[1]
		}
		return token != "" && graphiql != ""
	}, 3*time.Minute, 50*time.Millisecond, "prints a development token and the GraphiQL URL")
	require.Equal(t, "http://127.0.0.1:"+port+"/", graphiql)

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

	// Stop the program itself, as a service manager would (go run reports its
	// own interruption as exit status 1; SIGINT may be ignored in background
	// jobs): it shuts down gracefully and go run returns its status.
	// Any thread of go run may have forked the program: look at every task.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", cmd.Process.Pid))
	require.NoError(t, err)
	var kids []string
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		require.NoError(t, err)
		kids = append(kids, strings.Fields(string(b))...)
	}
	require.Len(t, kids, 1, "go run runs one program")
	var pids []int
	for _, pid := range kids {
		n, err := strconv.Atoi(pid)
		require.NoError(t, err)
		pids = append(pids, n)
		require.NoError(t, syscall.Kill(n, syscall.SIGTERM))
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		require.NoError(t, err, "graceful shutdown; stderr:\n%s", stderr.String())
	case <-time.After(60 * time.Second):
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGQUIT) // goroutine dump into stderr
		}
		<-waited
		t.Fatalf("no graceful shutdown within 60s; stderr:\n%s", stderr.String())
	}
	// The private cluster went down with it.
	_, err = os.Stat(filepath.Join(dataDir, "postgres", "pgdata", "postmaster.pid"))
	require.True(t, os.IsNotExist(err), "postgres stopped")
	require.NotContains(t, stderr.String(), "t0\"", "no secret value in the log")
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
