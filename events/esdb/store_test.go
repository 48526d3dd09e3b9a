package esdb

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOpenRefusesMalformedURL(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://admin:hunter2@localhost:5432/x")
	require.ErrorContains(t, err, "connection string")
	require.NotContains(t, err.Error(), "hunter2", "the error never repeats the connection string")
}

// Open checks the server at once: with nothing listening it fails within the
// client's discovery attempts rather than handing out a Store that cannot work.
func TestOpenFailsWhenNothingListens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, "esdb://"+addr+"?tls=false")
	require.Error(t, err)
	require.Nil(t, s)
	require.ErrorContains(t, err, "cannot read $all")
}
