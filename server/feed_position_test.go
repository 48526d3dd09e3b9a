package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// TestFeedPositionSubscription: feedPosition is where a subscription picks
// up everything that commits afterwards, even before it is sent; it needs
// a token.
func TestFeedPositionSubscription(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	require.Equal(t, "UNAUTHENTICATED", s.do("", `{ feedPosition }`, nil).Code())
	before := s.createSecret(admin, map[string]any{"name": "before", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}})
	var out struct{ FeedPosition string }
	s.mustOK(admin, `{ feedPosition }`, nil, &out)
	require.Regexp(t, `^\d+:\d+$`, out.FeedPosition)
	// Committed after the position was read, before the subscription.
	id := s.createSecret(admin, map[string]any{"name": "after", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}})
	c := dialWS(t, s.HTTP.URL, admin, 0)
	c.subscribe("a", "secretEvents", fmt.Sprintf(`after: %q`, out.FeedPosition))
	ev := c.next(10 * time.Second)
	if ev.ResourceID == before {
		// It may come too: it committed while a transaction that is older
		// (a projection's) was still open.
		ev = c.next(10 * time.Second)
	}
	require.Equal(t, id, ev.ResourceID)
	require.Equal(t, "SecretCreated.v1", ev.Type)
	c.quiet(300 * time.Millisecond)
}
