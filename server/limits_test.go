package server_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// TestRequestTooLarge: a body over the server's limit is RESOURCE_EXHAUSTED,
// and nothing is stored.
func TestRequestTooLarge(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	huge := strings.Repeat("x", 2<<20)
	r := s.do(admin, createSecretMutation, map[string]any{"in": map[string]any{"name": "big", "resourceGroup": "DOMAIN",
		"data": map[string]any{"blob": huge}}})
	require.Equal(t, "RESOURCE_EXHAUSTED", r.Code())
	require.NotContains(t, r.Errors[0].Message, "xxxx")
	var out struct{ Secrets struct{ TotalCount int } }
	s.mustOK(admin, `{ secrets { totalCount } }`, nil, &out)
	require.Zero(t, out.Secrets.TotalCount)
}
