package auth

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// trustedOwnDomain are the well-formed TrustedSecret scopes of d1; every
// other scope of the shared table (projects, other domains, malformed ones)
// is never accessible as a TrustedSecret.
var trustedOwnDomain = []string{"domain/own", "workspace/own", "workspace/other"}

func TestTrustedSecretMatrix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		id                 Identity
		read, write, value map[string]bool
	}{
		{"system", idSystem, set(trustedOwnDomain...), set(), set(trustedOwnDomain...)},
		{"system with user", idSystemUser, set(trustedOwnDomain...), set(), set(trustedOwnDomain...)},
		{"domain admin", idAdmin, set(trustedOwnDomain...), set(trustedOwnDomain...), set()},
		{"domain admin without user", idAdminNoUser, set(trustedOwnDomain...), set(trustedOwnDomain...), set()},
		{"workspace owner", idOwner, set("domain/own", "workspace/own"), set("workspace/own"), set()},
		{"workspace member", idMember, set("domain/own", "workspace/own"), set(), set()},
		{"workspace member without projects", idLonely, set("domain/own", "workspace/own"), set(), set()},
		{"user", idUser, set(), set(), set()},
		{"zero identity", idZero, set(), set(), set()},
		{"admin without domain", idNoDomainAdmin, set(), set(), set()},
		{"system without domain", idNoDomainSystem, set(), set(), set()},
		{"owner without workspace", idOwnerNoWS, set(), set(), set()},
		{"member without workspace", idMemberNoWS, set(), set(), set()},
		{"member with empty project", idMemberEmptyPrj, set(), set(), set()},
		{"unknown role", idBadRole, set(), set(), set()},
		{"user without user id", idUserNoUser, set(), set(), set()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for name, s := range scopes {
				require.Equal(t, tc.read[name], tc.id.CanReadTrustedSecret(s), "read %s", name)
				require.Equal(t, tc.write[name], tc.id.CanWriteTrustedSecret(s), "write %s", name)
				require.Equal(t, tc.value[name], tc.id.CanReadTrustedSecretValue(s), "value %s", name)
				if tc.write[name] || tc.value[name] {
					require.True(t, tc.read[name], "write/value without read for %s", name)
				}
			}
		})
	}
}

func TestTrustedSecretVisibleFrom(t *testing.T) {
	t.Parallel()
	// Secrets (by scope name) that may link to each trusted secret scope.
	want := map[string]map[string]bool{
		"domain/own": set("domain/own", "workspace/own", "workspace/other", "project/own", "project/own2",
			"project/other", "project/own-id-other-ws", "project/other-ws"),
		"workspace/own":          set("workspace/own", "project/own", "project/own2", "project/other"),
		"workspace/other":        set("workspace/other", "project/own-id-other-ws", "project/other-ws"),
		"domain/other":           set("domain/other", "workspace/other-domain", "project/other-domain"),
		"workspace/other-domain": set("workspace/other-domain", "project/other-domain"),
	}
	for tname, trusted := range scopes {
		for sname, secret := range scopes {
			require.Equal(t, want[tname][sname], TrustedSecretVisibleFrom(trusted, secret),
				"trusted %s from secret %s", tname, sname)
		}
	}
}
