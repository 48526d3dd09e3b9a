package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/server"
)

type verifyReport struct {
	VerifyLog struct {
		Ok                  bool
		EventsChecked       int
		FirstBrokenPosition *string
		Reason              *string
	}
}

const verifyQuery = `{ verifyLog { ok eventsChecked firstBrokenPosition reason } }`

// TestVerifyLogScope: verifyLog checks only the caller's domain: its counts
// are that domain's events, and a broken link in another domain is neither
// reported nor hinted at; the broken domain's own admin sees it.
func TestVerifyLogScope(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, func(c *server.Config) { c.Limits.GraphQL.VerifyInterval = time.Millisecond })
	adminA := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-a", UserID: "alice"})
	adminB := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-b", UserID: "bob"})
	systemB := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "d-b", UserID: "svc"})
	for range 2 {
		s.createSecret(adminA, map[string]any{"name": "a", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}})
	}
	var bID string
	for range 5 {
		bID = s.createSecret(adminB, map[string]any{"name": "b", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}})
	}
	verify := func(tok string, want int) verifyReport {
		var rep verifyReport
		require.Eventually(t, func() bool {
			s.mustOK(tok, verifyQuery, nil, &rep)
			return rep.VerifyLog.EventsChecked == want
		}, 10*time.Second, 20*time.Millisecond)
		return rep
	}
	require.True(t, verify(adminA, 2).VerifyLog.Ok)
	require.True(t, verify(adminB, 5).VerifyLog.Ok)

	// Break a link in domain d-b.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `ALTER TABLE event_log DISABLE TRIGGER event_log_no_update`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `UPDATE event_log SET type = 'SecretUpdated.v1' WHERE stream_id = $1`, bID)
	require.NoError(t, err)

	repA := verify(adminA, 2)
	require.True(t, repA.VerifyLog.Ok, "another domain's broken link is not this domain's business")
	require.Nil(t, repA.VerifyLog.FirstBrokenPosition)
	repB := verify(systemB, 5)
	require.False(t, repB.VerifyLog.Ok)
	require.NotNil(t, repB.VerifyLog.FirstBrokenPosition)
}

// TestVerifyLogRateLimited: a domain's verifications are spaced by the
// configured interval; a call that would wait too long is refused quickly
// with RESOURCE_EXHAUSTED, another domain is not held back, and a call that
// comes within the wait is delayed, not refused.
func TestVerifyLogRateLimited(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, func(c *server.Config) {
		c.Limits.GraphQL.VerifyInterval = time.Hour
		c.Limits.GraphQL.QueueWait = time.Second
	})
	adminA := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-a", UserID: "alice"})
	systemA := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "d-a", UserID: "svc"})
	adminB := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-b", UserID: "bob"})
	s.mustOK(adminA, verifyQuery, nil, nil)
	start := time.Now()
	r := s.do(systemA, verifyQuery, nil)
	require.Equal(t, "RESOURCE_EXHAUSTED", r.Code(), "%v", r.Errors)
	require.Contains(t, r.Errors[0].Message, "retry in")
	require.Less(t, time.Since(start), refusedWithin)
	s.mustOK(adminB, verifyQuery, nil, nil)

	short := newStackWith(t, func(c *server.Config) {
		c.Limits.GraphQL.VerifyInterval = 500 * time.Millisecond
		c.Limits.GraphQL.QueueWait = 5 * time.Second
	})
	admin := short.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-a", UserID: "alice"})
	short.mustOK(admin, verifyQuery, nil, nil)
	start = time.Now()
	short.mustOK(admin, verifyQuery, nil, nil)
	require.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond, "the second run waited for its turn")
}
