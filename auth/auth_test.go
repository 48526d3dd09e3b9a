package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

var testKey = []byte("0123456789abcdef0123456789abcdef") // 32 bytes

// ---------------------------------------------------------------------------
// Roles and identities

func TestParseRole(t *testing.T) {
	t.Parallel()
	for _, r := range []Role{RoleDomainAdmin, RoleWorkspaceOwner, RoleWorkspaceMember, RoleUser, RoleSystem} {
		got, err := ParseRole(string(r))
		require.NoError(t, err)
		require.Equal(t, r, got)
	}
	for _, s := range []string{"", "domain_admin", " SYSTEM", "ADMIN", "SYSTEM\x00"} {
		_, err := ParseRole(s)
		require.Error(t, err, "%q", s)
	}
}

func TestIdentityValidate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxIDLength+1)
	max := strings.Repeat("x", MaxIDLength)
	tests := []struct {
		name string
		id   Identity
		ok   bool
	}{
		{"system", Identity{Role: RoleSystem, DomainID: "d1"}, true},
		{"domain admin", Identity{Role: RoleDomainAdmin, DomainID: "d1"}, true},
		{"workspace owner", Identity{Role: RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: "w1"}, true},
		{"workspace member", Identity{Role: RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", Projects: []string{"p1"}}, true},
		{"workspace member no projects", Identity{Role: RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1"}, true},
		{"user", Identity{Role: RoleUser, DomainID: "d1", UserID: "u1"}, true},
		{"max lengths", Identity{Role: RoleWorkspaceMember, DomainID: max, WorkspaceID: max, UserID: max, TokenID: max, Projects: []string{max}}, true},
		{"zero", Identity{}, false},
		{"unknown role", Identity{Role: "ROOT", DomainID: "d1"}, false},
		{"lowercase role", Identity{Role: "system", DomainID: "d1"}, false},
		{"no domain", Identity{Role: RoleSystem}, false},
		{"owner without workspace", Identity{Role: RoleWorkspaceOwner, DomainID: "d1"}, false},
		{"member without workspace", Identity{Role: RoleWorkspaceMember, DomainID: "d1", Projects: []string{"p1"}}, false},
		{"user without user id", Identity{Role: RoleUser, DomainID: "d1"}, false},
		{"long domain", Identity{Role: RoleSystem, DomainID: long}, false},
		{"long user", Identity{Role: RoleUser, DomainID: "d1", UserID: long}, false},
		{"long workspace", Identity{Role: RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: long}, false},
		{"long project", Identity{Role: RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", Projects: []string{long}}, false},
		{"empty project", Identity{Role: RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", Projects: []string{""}}, false},
		{"long token id", Identity{Role: RoleSystem, DomainID: "d1", TokenID: long}, false},
		{"long subject", Identity{Role: RoleSystem, DomainID: "d1", Subject: strings.Repeat("s", MaxSubjectLength+1)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.id.Validate()
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Authorization matrix

var (
	idSystem      = Identity{Role: RoleSystem, DomainID: "d1"}
	idSystemUser  = Identity{Role: RoleSystem, DomainID: "d1", UserID: "svc"}
	idAdmin       = Identity{Role: RoleDomainAdmin, DomainID: "d1", UserID: "admin"}
	idAdminNoUser = Identity{Role: RoleDomainAdmin, DomainID: "d1"}
	idOwner       = Identity{Role: RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: "w1", UserID: "owner"}
	idMember      = Identity{Role: RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", UserID: "member", Projects: []string{"p1", "p3"}}
	idLonely      = Identity{Role: RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", UserID: "lonely"}
	idUser        = Identity{Role: RoleUser, DomainID: "d1", UserID: "alice"}

	// Invalid identities: never allowed anything.
	idZero           = Identity{}
	idNoDomainAdmin  = Identity{Role: RoleDomainAdmin, UserID: "admin"}
	idNoDomainSystem = Identity{Role: RoleSystem}
	idOwnerNoWS      = Identity{Role: RoleWorkspaceOwner, DomainID: "d1", UserID: "owner"}
	idMemberNoWS     = Identity{Role: RoleWorkspaceMember, DomainID: "d1", UserID: "member", Projects: []string{"p1"}}
	idMemberEmptyPrj = Identity{Role: RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", UserID: "member", Projects: []string{""}}
	idBadRole        = Identity{Role: "ROOT", DomainID: "d1", UserID: "root"}
	idUserNoUser     = Identity{Role: RoleUser, DomainID: "d1"}
)

var scopes = map[string]Scope{
	"domain/own":               {Group: GroupDomain, DomainID: "d1"},
	"domain/other":             {Group: GroupDomain, DomainID: "d2"},
	"workspace/own":            {Group: GroupWorkspace, DomainID: "d1", WorkspaceID: "w1"},
	"workspace/other":          {Group: GroupWorkspace, DomainID: "d1", WorkspaceID: "w2"},
	"workspace/other-domain":   {Group: GroupWorkspace, DomainID: "d2", WorkspaceID: "w1"},
	"project/own":              {Group: GroupProject, DomainID: "d1", WorkspaceID: "w1", ProjectID: "p1"},
	"project/own2":             {Group: GroupProject, DomainID: "d1", WorkspaceID: "w1", ProjectID: "p3"},
	"project/other":            {Group: GroupProject, DomainID: "d1", WorkspaceID: "w1", ProjectID: "p2"},
	"project/own-id-other-ws":  {Group: GroupProject, DomainID: "d1", WorkspaceID: "w2", ProjectID: "p1"},
	"project/other-ws":         {Group: GroupProject, DomainID: "d1", WorkspaceID: "w2", ProjectID: "p2"},
	"project/other-domain":     {Group: GroupProject, DomainID: "d2", WorkspaceID: "w1", ProjectID: "p1"},
	"bad/domain-with-ws":       {Group: GroupDomain, DomainID: "d1", WorkspaceID: "w1"},
	"bad/domain-with-project":  {Group: GroupDomain, DomainID: "d1", ProjectID: "p1"},
	"bad/workspace-empty":      {Group: GroupWorkspace, DomainID: "d1"},
	"bad/workspace-w-project":  {Group: GroupWorkspace, DomainID: "d1", WorkspaceID: "w1", ProjectID: "p1"},
	"bad/project-empty":        {Group: GroupProject, DomainID: "d1", WorkspaceID: "w1"},
	"bad/project-no-workspace": {Group: GroupProject, DomainID: "d1", ProjectID: "p1"},
	"bad/no-domain":            {Group: GroupDomain},
	"bad/no-domain-workspace":  {Group: GroupWorkspace, WorkspaceID: "w1"},
	"bad/no-group":             {DomainID: "d1"},
	"bad/unknown-group":        {Group: "USER", DomainID: "d1"},
	"bad/lowercase-group":      {Group: "domain", DomainID: "d1"},
}

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		if _, ok := scopes[n]; !ok {
			panic("unknown scope " + n)
		}
		m[n] = true
	}
	return m
}

var allValidOwnDomain = []string{
	"domain/own", "workspace/own", "workspace/other",
	"project/own", "project/own2", "project/other", "project/own-id-other-ws", "project/other-ws",
}

func TestSecretMatrix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		id                 Identity
		read, write, value map[string]bool
	}{
		{"system", idSystem, set(allValidOwnDomain...), set(), set(allValidOwnDomain...)},
		{"system with user", idSystemUser, set(allValidOwnDomain...), set(), set(allValidOwnDomain...)},
		{"domain admin", idAdmin, set(allValidOwnDomain...), set(allValidOwnDomain...), set()},
		{"domain admin without user", idAdminNoUser, set(allValidOwnDomain...), set(allValidOwnDomain...), set()},
		{
			"workspace owner", idOwner,
			set("domain/own", "workspace/own", "project/own", "project/own2", "project/other"),
			set("workspace/own", "project/own", "project/own2", "project/other"),
			set(),
		},
		{
			"workspace member", idMember,
			set("domain/own", "workspace/own", "project/own", "project/own2"),
			set("project/own", "project/own2"),
			set(),
		},
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
				require.Equal(t, tc.read[name], tc.id.CanReadSecret(s), "read %s", name)
				require.Equal(t, tc.write[name], tc.id.CanWriteSecret(s), "write %s", name)
				require.Equal(t, tc.value[name], tc.id.CanReadSecretValue(s), "value %s", name)
				// Writing or reading values implies reading metadata.
				if tc.write[name] || tc.value[name] {
					require.True(t, tc.read[name], "write/value without read for %s", name)
				}
			}
		})
	}
}

type owner struct{ domain, user string }

var owners = map[string]owner{
	"alice/own-domain":  {"d1", "alice"},
	"alice/other":       {"d2", "alice"},
	"admin/own-domain":  {"d1", "admin"},
	"admin/other":       {"d2", "admin"},
	"owner/own-domain":  {"d1", "owner"},
	"member/own-domain": {"d1", "member"},
	"lonely/own-domain": {"d1", "lonely"},
	"svc/own-domain":    {"d1", "svc"},
	"bob/own-domain":    {"d1", "bob"},
	"bob/other":         {"d2", "bob"},
	"empty-owner":       {"d1", ""},
	"empty-domain":      {"", "alice"},
	"empty-both":        {"", ""},
}

func oset(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		if _, ok := owners[n]; !ok {
			panic("unknown owner " + n)
		}
		m[n] = true
	}
	return m
}

var allOwnDomainOwners = []string{
	"alice/own-domain", "admin/own-domain", "owner/own-domain", "member/own-domain",
	"lonely/own-domain", "svc/own-domain", "bob/own-domain",
}

func TestUserSecretMatrix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		id                 Identity
		read, write, value map[string]bool
	}{
		{"system", idSystem, oset(allOwnDomainOwners...), oset(), oset(allOwnDomainOwners...)},
		{"system with user", idSystemUser, oset(allOwnDomainOwners...), oset(), oset(allOwnDomainOwners...)},
		{"domain admin", idAdmin, oset(allOwnDomainOwners...), oset("admin/own-domain"), oset()},
		{"domain admin without user", idAdminNoUser, oset(allOwnDomainOwners...), oset(), oset()},
		{"workspace owner", idOwner, oset("owner/own-domain"), oset("owner/own-domain"), oset()},
		{"workspace member", idMember, oset("member/own-domain"), oset("member/own-domain"), oset()},
		{"workspace member without projects", idLonely, oset("lonely/own-domain"), oset("lonely/own-domain"), oset()},
		{"user", idUser, oset("alice/own-domain"), oset("alice/own-domain"), oset()},
		{"zero identity", idZero, oset(), oset(), oset()},
		{"admin without domain", idNoDomainAdmin, oset(), oset(), oset()},
		{"system without domain", idNoDomainSystem, oset(), oset(), oset()},
		{"owner without workspace", idOwnerNoWS, oset(), oset(), oset()},
		{"unknown role", idBadRole, oset(), oset(), oset()},
		{"user without user id", idUserNoUser, oset(), oset(), oset()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for name, o := range owners {
				require.Equal(t, tc.read[name], tc.id.CanReadUserSecret(o.domain, o.user), "read %s", name)
				require.Equal(t, tc.write[name], tc.id.CanWriteUserSecret(o.domain, o.user), "write %s", name)
				require.Equal(t, tc.value[name], tc.id.CanReadUserSecretValue(o.domain, o.user), "value %s", name)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Tokens

func newTestSigner(t *testing.T) *Signer {
	t.Helper()
	s, err := NewSigner(testKey)
	require.NoError(t, err)
	return s
}

// signRaw signs arbitrary claims with the given method and key.
func signRaw(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(m, c).SignedString(key)
	require.NoError(t, err)
	return tok
}

// goodClaims returns claims equivalent to a freshly minted WORKSPACE_MEMBER token.
func goodClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss":          Issuer,
		"sub":          "member",
		"jti":          "0123456789abcdef",
		"iat":          now.Unix(),
		"nbf":          now.Unix(),
		"exp":          now.Add(time.Hour).Unix(),
		"user_id":      "member",
		"role":         "WORKSPACE_MEMBER",
		"domain_id":    "d1",
		"workspace_id": "w1",
		"projects":     []string{"p1"},
	}
}

func TestNewSigner(t *testing.T) {
	t.Parallel()
	for _, k := range [][]byte{nil, {}, testKey[:31]} {
		_, err := NewSigner(k)
		require.Error(t, err)
	}
	key := append([]byte(nil), testKey...)
	s, err := NewSigner(key)
	require.NoError(t, err)
	tok, err := s.Mint(idUser, time.Minute)
	require.NoError(t, err)
	key[0] ^= 0xff // the signer keeps its own copy
	_, err = s.Verify(tok)
	require.NoError(t, err)
}

var hex16 = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		id      Identity
		subject string
	}{
		{"system", idSystem, "SYSTEM@d1"},
		{"domain admin", idAdmin, "admin"},
		{"workspace owner", idOwner, "owner"},
		{"workspace member", idMember, "member"},
		{"member without projects", idLonely, "lonely"},
		{"user", idUser, "alice"},
		{"explicit subject", Identity{Role: RoleUser, DomainID: "d1", UserID: "alice", Subject: "alice@example.com"}, "alice@example.com"},
	}
	s := newTestSigner(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := tc.id
			in.TokenID = "ignored"
			tok, err := s.Mint(in, time.Hour)
			require.NoError(t, err)
			require.Equal(t, 2, strings.Count(tok, "."))

			got, err := s.Verify(tok)
			require.NoError(t, err)
			require.Regexp(t, hex16, got.TokenID)
			require.Equal(t, tc.subject, got.Subject)
			want := tc.id
			want.Subject = tc.subject
			want.TokenID = got.TokenID
			require.Equal(t, want, got)

			// Header and registered claims are as promised.
			var header map[string]any
			decodeSegment(t, tok, 0, &header)
			require.Equal(t, "HS256", header["alg"])
			var payload map[string]any
			decodeSegment(t, tok, 1, &payload)
			require.Equal(t, "secretlog", payload["iss"])
			require.Equal(t, got.TokenID, payload["jti"])
			for _, k := range []string{"iat", "nbf", "exp"} {
				require.Contains(t, payload, k)
			}
			require.InDelta(t, 3600, payload["exp"].(float64)-payload["iat"].(float64), 1)

			// Fresh jti on every mint.
			tok2, err := s.Mint(in, time.Hour)
			require.NoError(t, err)
			got2, err := s.Verify(tok2)
			require.NoError(t, err)
			require.NotEqual(t, got.TokenID, got2.TokenID)
		})
	}
}

func decodeSegment(t *testing.T, tok string, i int, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

func TestMintRejects(t *testing.T) {
	t.Parallel()
	s := newTestSigner(t)
	for name, tc := range map[string]struct {
		id  Identity
		ttl time.Duration
	}{
		"invalid identity":    {idOwnerNoWS, time.Hour},
		"zero identity":       {Identity{}, time.Hour},
		"user without id":     {idUserNoUser, time.Hour},
		"zero ttl":            {idUser, 0},
		"negative ttl":        {idUser, -time.Hour},
		"long domain subject": {Identity{Role: RoleSystem, DomainID: strings.Repeat("d", 41)}, time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tok, err := s.Mint(tc.id, tc.ttl)
			require.Error(t, err)
			require.Empty(t, tok)
		})
	}
}

func TestExpiryAndNotBefore(t *testing.T) {
	t.Parallel()
	base := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	minter := newTestSigner(t)
	minter.now = func() time.Time { return base }
	tok, err := minter.Mint(idUser, time.Hour)
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		at    time.Time
		ok    bool
		cause error
	}{
		"at issue":         {base, true, nil},
		"just before exp":  {base.Add(time.Hour - time.Second), true, nil},
		"at exp":           {base.Add(time.Hour), false, jwt.ErrTokenExpired},
		"long after exp":   {base.Add(48 * time.Hour), false, jwt.ErrTokenExpired},
		"before nbf / iat": {base.Add(-time.Minute), false, jwt.ErrTokenNotValidYet},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			v := newTestSigner(t)
			v.now = func() time.Time { return tc.at }
			id, err := v.Verify(tok)
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, "alice", id.UserID)
				return
			}
			require.ErrorIs(t, err, ErrInvalidToken)
			require.ErrorIs(t, err, tc.cause)
			require.Equal(t, Identity{}, id)
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	s := newTestSigner(t)
	good, err := s.Mint(idMember, time.Hour)
	require.NoError(t, err)
	parts := strings.Split(good, ".")

	other, err := NewSigner([]byte("another-key-another-key-another-key"))
	require.NoError(t, err)
	wrongKey, err := other.Mint(idMember, time.Hour)
	require.NoError(t, err)

	// Tampered payload: escalate to DOMAIN_ADMIN, keep the signature.
	var payload map[string]any
	decodeSegment(t, good, 1, &payload)
	payload["role"] = "DOMAIN_ADMIN"
	b, err := json.Marshal(payload)
	require.NoError(t, err)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]

	// Tampered header: claim HS384 over the same payload and signature.
	tamperedHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS384","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2]

	// Flipped signature byte.
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	sig[0] ^= 1
	badSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)

	without := func(k string) jwt.MapClaims {
		c := goodClaims()
		delete(c, k)
		return c
	}
	with := func(k string, v any) jwt.MapClaims {
		c := goodClaims()
		c[k] = v
		return c
	}

	// Sanity check: the crafted good claims are accepted.
	_, err = s.Verify(signRaw(t, jwt.SigningMethodHS256, testKey, goodClaims()))
	require.NoError(t, err)

	tests := map[string]string{
		"empty":             "",
		"garbage":           "not-a-token",
		"three garbage":     "a.b.c",
		"two segments":      parts[0] + "." + parts[1],
		"unsigned":          parts[0] + "." + parts[1] + ".",
		"wrong key":         wrongKey,
		"tampered payload":  tampered,
		"tampered header":   tamperedHeader,
		"bad signature":     badSig,
		"alg none":          signRaw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims()),
		"HS384 same key":    signRaw(t, jwt.SigningMethodHS384, testKey, goodClaims()),
		"HS512 same key":    signRaw(t, jwt.SigningMethodHS512, testKey, goodClaims()),
		"RS256":             signRaw(t, jwt.SigningMethodRS256, rsaKey, goodClaims()),
		"PS256":             signRaw(t, jwt.SigningMethodPS256, rsaKey, goodClaims()),
		"ES256":             signRaw(t, jwt.SigningMethodES256, ecKey, goodClaims()),
		"missing exp":       signRaw(t, jwt.SigningMethodHS256, testKey, without("exp")),
		"missing nbf":       signRaw(t, jwt.SigningMethodHS256, testKey, without("nbf")),
		"missing iat":       signRaw(t, jwt.SigningMethodHS256, testKey, without("iat")),
		"missing iss":       signRaw(t, jwt.SigningMethodHS256, testKey, without("iss")),
		"missing sub":       signRaw(t, jwt.SigningMethodHS256, testKey, without("sub")),
		"missing jti":       signRaw(t, jwt.SigningMethodHS256, testKey, without("jti")),
		"missing role":      signRaw(t, jwt.SigningMethodHS256, testKey, without("role")),
		"missing domain":    signRaw(t, jwt.SigningMethodHS256, testKey, without("domain_id")),
		"missing workspace": signRaw(t, jwt.SigningMethodHS256, testKey, without("workspace_id")),
		"wrong issuer":      signRaw(t, jwt.SigningMethodHS256, testKey, with("iss", "cloudforet")),
		"unknown role":      signRaw(t, jwt.SigningMethodHS256, testKey, with("role", "ROOT")),
		"lowercase role":    signRaw(t, jwt.SigningMethodHS256, testKey, with("role", "workspace_member")),
		"user w/o user id": signRaw(t, jwt.SigningMethodHS256, testKey, func() jwt.MapClaims {
			c := with("role", "USER")
			delete(c, "user_id")
			return c
		}()),
		"long domain":      signRaw(t, jwt.SigningMethodHS256, testKey, with("domain_id", strings.Repeat("d", 41))),
		"empty project":    signRaw(t, jwt.SigningMethodHS256, testKey, with("projects", []string{""})),
		"expired":          signRaw(t, jwt.SigningMethodHS256, testKey, with("exp", time.Now().Add(-time.Minute).Unix())),
		"nbf in future":    signRaw(t, jwt.SigningMethodHS256, testKey, with("nbf", time.Now().Add(time.Hour).Unix())),
		"iat in future":    signRaw(t, jwt.SigningMethodHS256, testKey, with("iat", time.Now().Add(time.Hour).Unix())),
		"string exp":       signRaw(t, jwt.SigningMethodHS256, testKey, with("exp", "tomorrow")),
		"role wrong type":  signRaw(t, jwt.SigningMethodHS256, testKey, with("role", 7)),
		"projects as text": signRaw(t, jwt.SigningMethodHS256, testKey, with("projects", "p1")),
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id, err := s.Verify(tok)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalidToken)
			require.NotEqual(t, ErrInvalidToken, err, "cause must be wrapped")
			require.Equal(t, Identity{}, id)
		})
	}

	// Causes are preserved.
	_, err = s.Verify(wrongKey)
	require.ErrorIs(t, err, jwt.ErrTokenSignatureInvalid)
	_, err = s.Verify(tests["alg none"])
	require.ErrorIs(t, err, jwt.ErrTokenSignatureInvalid)
	_, err = s.Verify(tests["wrong issuer"])
	require.ErrorIs(t, err, jwt.ErrTokenInvalidIssuer)
	_, err = s.Verify(tests["missing exp"])
	require.ErrorIs(t, err, jwt.ErrTokenRequiredClaimMissing)
}

// ---------------------------------------------------------------------------
// Context and middleware

func TestContext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, ok := FromContext(ctx)
	require.False(t, ok)
	require.NoError(t, TokenError(ctx))

	id := idMember
	id.Projects = []string{"p1", "p3"}
	ctx = WithIdentity(ctx, id)
	got, ok := FromContext(ctx)
	require.True(t, ok)
	require.Equal(t, id, got)
	require.NoError(t, TokenError(ctx))

	// No aliasing of the project list in either direction.
	id.Projects[0] = "evil"
	got.Projects[1] = "evil"
	again, _ := FromContext(ctx)
	require.Equal(t, []string{"p1", "p3"}, again.Projects)

	// A recorded token error hides any outer identity.
	bad := withTokenError(ctx, ErrInvalidToken)
	_, ok = FromContext(bad)
	require.False(t, ok)
	require.ErrorIs(t, TokenError(bad), ErrInvalidToken)
}

type seen struct {
	called bool
	id     Identity
	ok     bool
	err    error
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	s := newTestSigner(t)
	good, err := s.Mint(idOwner, time.Hour)
	require.NoError(t, err)
	other, err := NewSigner([]byte("another-key-another-key-another-key"))
	require.NoError(t, err)
	wrongKey, err := other.Mint(idOwner, time.Hour)
	require.NoError(t, err)
	expired := signRaw(t, jwt.SigningMethodHS256, testKey, func() jwt.MapClaims {
		c := goodClaims()
		c["exp"] = time.Now().Add(-time.Minute).Unix()
		return c
	}())

	tests := []struct {
		name    string
		headers []string // Authorization header values
		outer   bool     // an outer layer already put an identity in the context
		wantID  bool
		wantErr bool
	}{
		{name: "no header"},
		{name: "no header keeps outer identity", outer: true, wantID: true},
		{name: "good", headers: []string{"Bearer " + good}, wantID: true},
		{name: "good lowercase scheme", headers: []string{"bearer " + good}, wantID: true},
		{name: "good with surrounding blanks", headers: []string{"  Bearer   " + good + " "}, wantID: true},
		{name: "good replaces outer identity", headers: []string{"Bearer " + good}, outer: true, wantID: true},
		{name: "garbage token", headers: []string{"Bearer garbage"}, wantErr: true},
		{name: "wrong key", headers: []string{"Bearer " + wrongKey}, wantErr: true},
		{name: "expired", headers: []string{"Bearer " + expired}, wantErr: true},
		{name: "bad token hides outer identity", headers: []string{"Bearer garbage"}, outer: true, wantErr: true},
		{name: "empty header", headers: []string{""}, wantErr: true},
		{name: "scheme only", headers: []string{"Bearer"}, wantErr: true},
		{name: "scheme and blank", headers: []string{"Bearer   "}, wantErr: true},
		{name: "no scheme", headers: []string{good}, wantErr: true},
		{name: "basic scheme", headers: []string{"Basic dXNlcjpwYXNz"}, wantErr: true},
		{name: "two tokens", headers: []string{"Bearer " + good + " " + good}, wantErr: true},
		{name: "two headers", headers: []string{"Bearer " + good, "Bearer " + good}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got seen
			h := s.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got.called = true
				got.id, got.ok = FromContext(r.Context())
				got.err = TokenError(r.Context())
				w.WriteHeader(http.StatusTeapot)
			}))
			req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
			for _, v := range tc.headers {
				req.Header.Add("Authorization", v)
			}
			if tc.outer {
				req = req.WithContext(WithIdentity(req.Context(), idUser))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			require.True(t, got.called, "request must always proceed")
			require.Equal(t, http.StatusTeapot, rec.Code)
			require.Equal(t, tc.wantID, got.ok)
			if tc.wantErr {
				require.ErrorIs(t, got.err, ErrInvalidToken)
				require.Equal(t, Identity{}, got.id)
			} else {
				require.NoError(t, got.err)
			}
			if tc.wantID {
				want := idUser
				if len(tc.headers) > 0 {
					want = idOwner
					want.Subject = "owner"
					want.TokenID = got.id.TokenID
					require.Regexp(t, hex16, got.id.TokenID)
				}
				require.Equal(t, want, got.id)
			}
		})
	}
}

// TestMaxTTL: a lifetime over the cap is refused when minting, and a token
// issued for longer (by a signer with a higher cap) is refused when verified.
func TestMaxTTL(t *testing.T) {
	t.Parallel()
	s := newTestSigner(t)
	require.Equal(t, DefaultMaxTTL, s.MaxTTL())
	_, err := s.Mint(idUser, 1000*time.Hour)
	require.ErrorContains(t, err, "longer than the maximum of 24h0m0s")
	tok, err := s.Mint(idUser, DefaultMaxTTL)
	require.NoError(t, err)
	_, err = s.Verify(tok)
	require.NoError(t, err)

	long, err := s.WithMaxTTL(1000*time.Hour).Mint(idUser, 1000*time.Hour)
	require.NoError(t, err)
	_, err = s.Verify(long)
	require.ErrorIs(t, err, ErrInvalidToken)
	require.ErrorContains(t, err, "lifetime")

	short := s.WithMaxTTL(time.Hour)
	_, err = short.Mint(idUser, 2*time.Hour)
	require.Error(t, err)
	_, err = short.Verify(tok)
	require.Error(t, err, "a 24h token is refused under a 1h cap")
}
