package server_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
)

// dataKeyWraps maps each live data key of stream's versions to "kek_id kms_key_id".
func (s *stack) dataKeyWraps(stream string) map[string]string {
	s.t.Helper()
	rows, err := s.Server.Pool.Query(context.Background(), `SELECT stream_id, kek_id, coalesce(kms_key_id, '-') FROM data_keys
		WHERE destroyed_at IS NULL AND stream_id LIKE $1 || '/v%'`, stream)
	require.NoError(s.t, err)
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, kek, named string
		require.NoError(s.t, rows.Scan(&id, &kek, &named))
		out[id[len(stream)+1:]] = kek + " " + named
	}
	require.NoError(s.t, rows.Err())
	return out
}

// TestPerSecretKeyRotation: a secret names a keyring key (kmsKeyId); the key
// is rotated to a new version on restart without the secret changing; new
// values take the new version at once, rewrap moves the old wraps, the old
// version can leave the keyring and every value still opens.
func TestPerSecretKeyRotation(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	spec := func(id string) string {
		sp, err := events.NewKeySpec(id)
		require.NoError(t, err)
		return sp
	}
	// The stack's own key stays the primary (newStack made the token key of its material).
	primarySpec := "test-1:" + base64.StdEncoding.EncodeToString(s.tokenKey)
	app1, app2 := spec("app"), spec("app@2")
	s.keyring = mustParse(t, primarySpec+","+app1)
	s.restart()

	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"})
	system := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "domain-a"})
	member := s.token(auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "domain-a", WorkspaceID: "ws-1"})

	type key struct {
		ID             string
		Versions       []int
		CurrentVersion int
		Primary        bool
	}
	listKeys := func(token string) []key {
		var out struct{ Keys []key }
		s.mustOK(token, `{ keys { id versions currentVersion primary } }`, nil, &out)
		return out.Keys
	}
	require.Equal(t, []key{{"test-1", []int{1}, 1, true}, {"app", []int{1}, 1, false}}, listKeys(admin))
	require.Equal(t, listKeys(admin), listKeys(system))
	require.Equal(t, "PERMISSION_DENIED", s.do(member, `{ keys { id } }`, nil).Code())
	require.Equal(t, "UNAUTHENTICATED", s.do("", `{ keys { id } }`, nil).Code())

	in := func(kms string) map[string]any {
		m := map[string]any{"name": "k-" + kms, "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
			"data": map[string]any{"aws_access_key_id": "AKIA1", "aws_secret_access_key": "v1"}}
		if kms != "" {
			m["kmsKeyId"] = kms
		}
		return m
	}
	r := s.do(admin, createSecretMutation, map[string]any{"in": in("nope")})
	require.Equal(t, "INVALID_ARGUMENT", r.Code())
	require.Contains(t, r.Errors[0].Message, "kmsKeyId")
	r = s.do(admin, createSecretMutation, map[string]any{"in": in("app@2")})
	require.Equal(t, "INVALID_ARGUMENT", r.Code(), "a version is not a key name")

	named := s.createSecret(admin, in("app"))
	plain := s.createSecret(admin, in(""))
	require.Equal(t, map[string]string{"v1": "app app"}, s.dataKeyWraps(named))
	require.Equal(t, map[string]string{"v1": "test-1 -"}, s.dataKeyWraps(plain))

	update := func(id, value string) {
		s.mustOK(admin, `mutation($id: ID!, $v: String!) { updateSecretData(input: {secretId: $id,
			data: {aws_access_key_id: "AKIA1", aws_secret_access_key: $v}}) { version } }`, map[string]any{"id": id, "v": value}, nil)
	}
	update(named, "v2")

	// Rotate the named key: app@2 joins the keyring.
	s.keyring = mustParse(t, primarySpec+","+app2+","+app1)
	s.restart()
	require.Equal(t, []key{{"test-1", []int{1}, 1, true}, {"app", []int{1, 2}, 2, false}}, listKeys(admin))
	update(named, "v3")
	update(plain, "v2")
	require.Equal(t, map[string]string{"v1": "app app", "v2": "app app", "v3": "app@2 app"}, s.dataKeyWraps(named),
		"a new version takes the newest version of the named key at once")
	require.Equal(t, map[string]string{"v1": "test-1 -", "v2": "test-1 -"}, s.dataKeyWraps(plain), "the primary did not move")

	moved, err := s.Server.Keys.Rewrap(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, moved)
	require.Equal(t, map[string]string{"v1": "app@2 app", "v2": "app@2 app", "v3": "app@2 app"}, s.dataKeyWraps(named))

	// The old version leaves the keyring: every value still opens, and the
	// secret still names the same key.
	s.keyring = mustParse(t, primarySpec+","+app2)
	s.restart()
	require.Equal(t, []key{{"test-1", []int{1}, 1, true}, {"app", []int{2}, 2, false}}, listKeys(admin))
	for v, want := range map[int]string{1: "v1", 2: "v2", 3: "v3"} {
		var got struct{ SecretData struct{ Data map[string]any } }
		s.mustOK(system, `query($id: ID!, $v: Int) { secretData(secretId: $id, version: $v) { data } }`,
			map[string]any{"id": named, "v": v}, &got)
		require.Equal(t, want, got.SecretData.Data["aws_secret_access_key"], "version %d", v)
	}
	var meta struct{ Secret struct{ KmsKeyID *string } }
	s.mustOK(admin, `query($id: ID!) { secret(secretId: $id) { kmsKeyId } }`, map[string]any{"id": named}, &meta)
	require.NotNil(t, meta.Secret.KmsKeyID)
	require.Equal(t, "app", *meta.Secret.KmsKeyID)

	// No listing carries key material.
	raw := s.do(admin, `{ keys { id versions currentVersion primary } }`, nil)
	for _, sp := range []string{primarySpec, app1, app2} {
		_, enc, _ := strings.Cut(sp, ":")
		require.NotContains(t, string(raw.Data), enc)
		b, _ := base64.StdEncoding.DecodeString(enc)
		require.NotContains(t, string(raw.Data), base64.URLEncoding.EncodeToString(b))
	}
	require.NotEmpty(t, s.do(admin, `{ keys { id key } }`, nil).Errors, "there is no field to ask for it")
}

func mustParse(t *testing.T, spec string) *events.Keyring {
	t.Helper()
	kr, err := events.ParseKeyring(spec)
	require.NoError(t, err)
	return kr
}
