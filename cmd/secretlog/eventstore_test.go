package main

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// With an EventStoreDB configured, serve refuses to start (before touching
// keys or a database) instead of keeping the log in PostgreSQL unannounced.
// TestEventStoreSettings: what runs on EventStoreDB and what refuses to,
// decided before anything starts.
func TestEventStoreSettings(t *testing.T) {
	url := "esdb://localhost:2113?tls=false"
	r := runCLI(t, "", "serve", "--data-dir", t.TempDir(), "--eventstore-url", url, "--projections", "inline")
	require.Equal(t, 1, r.status, "%s", r)
	require.Contains(t, r.stderr, "SECRETLOG_PROJECTIONS=inline needs the PostgreSQL log")

	r = runCLI(t, "", "serve", "--data-dir", t.TempDir(), "--projections", "sometimes")
	require.Equal(t, 1, r.status, "%s", r)
	require.Contains(t, r.stderr, "want inline or async")

	for _, cmd := range []string{"verify", "rebuild"} {
		r = runCLI(t, "", cmd, "--data-dir", t.TempDir(), "--eventstore-url", url)
		require.Equal(t, 1, r.status, "%s: %s", cmd, r)
		require.Contains(t, r.stderr, "needs the PostgreSQL log", cmd)
	}
}

func TestEventStoreCheck(t *testing.T) {
	r := runCLI(t, "", "eventstore", "check")
	require.Equal(t, 1, r.status, "%s", r)
	require.Contains(t, r.stderr, "no EventStoreDB configured")

	r = runCLI(t, "", "eventstore", "check", "--eventstore-url", "http://admin:hunter2@localhost:2113")
	require.Equal(t, 1, r.status, "%s", r)
	require.Contains(t, r.stderr, "connection string")
	require.NotContains(t, r.stderr, "hunter2")

	// Nothing listens there: the check fails rather than report a log.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	r = runCLI(t, "", "eventstore", "check", "--eventstore-url", "esdb://"+addr+"?tls=false", "--timeout", "20s")
	require.Equal(t, 1, r.status, "%s", r)
	require.Contains(t, r.stderr, "cannot read $all")
}
