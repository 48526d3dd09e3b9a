package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// TestSubscriptionEndsOnShutdown: a server that stops ends its
// subscriptions with UNAVAILABLE, naming the position to resume from, and
// closes their connections: a client is never left on an open connection
// that no event reaches any more.
func TestSubscriptionEndsOnShutdown(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	c := dialWS(t, s.HTTP.URL, admin, 0)
	c.subscribe("a", "secretEvents", "")
	waitSubscribers(t, s.Server, 1)
	id := s.createSecret(admin, map[string]any{"name": "a", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}})
	ev := c.next(10 * time.Second)
	require.Equal(t, id, ev.ResourceID)

	s.stop()
	m, err := c.read(10 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "error", m.Type, "payload %s", m.Payload)
	require.Contains(t, string(m.Payload), `"UNAVAILABLE"`)
	require.Contains(t, string(m.Payload), fmt.Sprintf(`resubscribe with after: \"%s\"`, ev.Position))
	_, err = c.read(10 * time.Second)
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "the server closed the connection")
}

// TestSubscriptionRefusedTokenCloses4403: a connection_init with a bad
// token is closed with graphql-transport-ws's 4403 and a reason that names
// UNAUTHENTICATED, which a client tells from a dropped connection.
func TestSubscriptionRefusedTokenCloses4403(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(s.HTTP.URL, "http://", "ws://", 1)+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	require.NoError(t, err)
	defer conn.CloseNow()
	require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init","payload":{"Authorization":"Bearer nope"}}`)))
	_, _, err = conn.Read(ctx)
	var ce websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, websocket.StatusCode(4403), ce.Code)
	require.Equal(t, "UNAUTHENTICATED: invalid or expired token", ce.Reason)
}
