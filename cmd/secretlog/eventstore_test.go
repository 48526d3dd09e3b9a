package main

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// With an EventStoreDB configured, serve refuses to start (before touching
// keys or a database) instead of keeping the log in PostgreSQL unannounced.
func TestServeRefusesEventStoreURL(t *testing.T) {
	r := runCLI(t, "", "serve", "--data-dir", t.TempDir(), "--eventstore-url", "esdb://localhost:2113?tls=false")
	require.Equal(t, 1, r.status, "%s", r)
	require.Contains(t, r.stderr, "SECRETLOG_EVENTSTORE_URL")
	require.Contains(t, r.stderr, "not wired yet")
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
