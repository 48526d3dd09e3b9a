package server_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// TestHostileLiteralNumberNamesField: a number beyond float64 written as a
// GraphQL literal (not in variables) is refused by the parser with
// INVALID_ARGUMENT naming the input it is in, without echoing the literal
// (in variables the message names the field: "tags: numbers must be
// finite ...").
func TestHostileLiteralNumberNamesField(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-literal", UserID: "mallory"})
	canary := canaryNew(t, "literal")
	for _, tc := range []struct{ field, input string }{
		{"tags", `{name: "n", resourceGroup: DOMAIN, tags: {n: 1e400}, data: {token: "` + canary + `"}}`},
		{"tags", `{name: "n", resourceGroup: DOMAIN, tags: {n: [-1e400]}, data: {token: "` + canary + `"}}`},
		{"data", `{name: "n", resourceGroup: DOMAIN, data: {token: "` + canary + `", n: 1e400}}`},
	} {
		r, _ := hostilePost(t, s.HTTP.URL, admin, hostileBody(`mutation { createSecret(input: `+tc.input+`) { secretId } }`, ""))
		require.Len(t, r.Errors, 1, "%+v", r.Errors)
		require.Equal(t, "INVALID_ARGUMENT", r.Code())
		require.NotContains(t, r.Errors[0].Message, canary)
		require.Contains(t, r.Errors[0].Message, "CreateSecretInput", "a literal out-of-range number in %s: the message names the input", tc.field)
		require.NotEmpty(t, r.Errors[0].Extensions, "it carries a code")
	}
}
