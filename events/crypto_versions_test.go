package events_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
)

func TestParseKeyringVersions(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	kr := mustKeyring(t, keySpec("main", k1)+","+keySpec("app@3", k3)+","+keySpec("app", k2)+","+keySpec("app@2", k1))
	require.Equal(t, "main", kr.Primary())
	require.Equal(t, []events.KeyInfo{
		{Name: "main", Versions: []int{1}, Primary: true},
		{Name: "app", Versions: []int{1, 2, 3}},
	}, kr.Keys(), "primary first, versions ascending whatever the order written")
	require.Equal(t, "app@3", kr.CurrentID("app"), "the newest version wraps")
	require.Equal(t, "main", kr.CurrentID("main"), "version 1 keeps the bare id")
	require.Equal(t, "", kr.CurrentID("other"))
	require.True(t, kr.Has("app"))
	require.False(t, kr.Has("app@2"), "kmsKeyId names a key, not a version")

	same := mustKeyring(t, keySpec("main@1", k1))
	require.Equal(t, "main", same.CurrentID("main"), "name@1 is the bare name")

	for spec, want := range map[string]string{
		keySpec("app", k1) + "," + keySpec("app@1", k2):   `key id "app" appears twice`,
		keySpec("app@2", k1) + "," + keySpec("app@2", k2): `key id "app@2" appears twice`,
		keySpec("app@0", k1):                              "bad version",
		keySpec("app@02", k1):                             "bad version",
		keySpec("app@x", k1):                              "bad version",
		keySpec("app@", k1):                               "bad version",
		keySpec("@2", k1):                                 "id@version:base64key",
		keySpec("a b", k1):                                "id@version:base64key",
		keySpec("a@1@2", k1):                              "bad version",
		keySpec("app@2", k1[:8]):                          `key "app@2" must be 32 bytes`,
	} {
		_, err := events.ParseKeyring(spec)
		require.ErrorContains(t, err, want, spec)
		require.NotContains(t, err.Error(), base64.StdEncoding.EncodeToString(k1), "errors never carry key material")
	}
}

func TestKeyringMACKey(t *testing.T) {
	t.Parallel()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	v1 := mustKeyring(t, keySpec("main", k1))
	v2 := mustKeyring(t, keySpec("main@2", k2)+","+keySpec("main", k1))
	id1, key1, err := v1.MACKey("p")
	require.NoError(t, err)
	require.Equal(t, "main", id1)
	require.NotEqual(t, k1, key1, "a derived key, never the key-encryption key")
	id2, key2, err := v2.MACKey("p")
	require.NoError(t, err)
	require.Equal(t, "main@2", id2, "the newest version of the primary")
	require.NotEqual(t, key1, key2)
	again, err := v2.MACKeyFor("main", "p")
	require.NoError(t, err)
	require.Equal(t, key1, again, "an older version still recomputes its MACs")
	other, err := v2.MACKeyFor("main", "q")
	require.NoError(t, err)
	require.NotEqual(t, key1, other, "purposes are separated")
	_, err = v1.MACKeyFor("main@2", "p")
	require.Error(t, err)
}

// storeKey stores a new data key named stream that follows kmsKeyID.
func storeKey(t *testing.T, pool *pgxpool.Pool, ks *events.KeyStore, stream, kmsKeyID string) []byte {
	t.Helper()
	dk, store, err := ks.New(stream, kmsKeyID)
	require.NoError(t, err)
	b := &pgx.Batch{}
	store(b)
	require.NoError(t, pool.SendBatch(t.Context(), b).Close())
	return dk
}

func TestKeyStoreNamedKeyVersions(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := testContext(t)
	main1, err := events.NewKeySpec("main")
	require.NoError(t, err)
	app1, err := events.NewKeySpec("app")
	require.NoError(t, err)
	app2, err := events.NewKeySpec("app@2")
	require.NoError(t, err)
	main2, err := events.NewKeySpec("main@2")
	require.NoError(t, err)

	before := events.NewKeyStore(pool, mustKeyring(t, main1+","+app1))
	_, _, err = before.New("x", "nope")
	require.ErrorContains(t, err, `no key named "nope"`)
	dataKeys := map[string][]byte{}
	for i := range 3 {
		dataKeys[fmt.Sprintf("named-%d", i)] = storeKey(t, pool, before, fmt.Sprintf("named-%d", i), "app")
		dataKeys[fmt.Sprintf("primary-%d", i)] = storeKey(t, pool, before, fmt.Sprintf("primary-%d", i), "")
	}
	kek := func() map[string]string {
		out := map[string]string{}
		rows, err := pool.Query(ctx, `SELECT stream_id, kek_id, coalesce(kms_key_id, '-') FROM data_keys WHERE destroyed_at IS NULL`)
		require.NoError(t, err)
		for rows.Next() {
			var s, k, n string
			require.NoError(t, rows.Scan(&s, &k, &n))
			out[s] = k + " " + n
		}
		require.NoError(t, rows.Err())
		return out
	}
	require.Equal(t, "app app", kek()["named-0"])
	require.Equal(t, "main -", kek()["primary-0"])

	// Rotate the named key only: new keys naming it take app@2, the others
	// stay; rewrap moves the named ones, not the primary's.
	rotated := events.NewKeyStore(pool, mustKeyring(t, main1+","+app2+","+app1))
	dataKeys["named-new"] = storeKey(t, pool, rotated, "named-new", "app")
	require.Equal(t, "app@2 app", kek()["named-new"])
	moved, err := rotated.Rewrap(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, moved)
	for s, v := range kek() {
		if s[0] == 'n' {
			require.Equal(t, "app@2 app", v, s)
		} else {
			require.Equal(t, "main -", v, s)
		}
	}
	moved, err = rotated.Rewrap(ctx)
	require.NoError(t, err)
	require.Zero(t, moved)

	// Rotate the primary: only the keys that follow it move; a named key
	// never follows the primary.
	rotatedMain := events.NewKeyStore(pool, mustKeyring(t, main2+","+main1+","+app2))
	moved, err = rotatedMain.Rewrap(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, moved)
	for s, v := range kek() {
		if s[0] == 'n' {
			require.Equal(t, "app@2 app", v, s)
		} else {
			require.Equal(t, "main@2 -", v, s)
		}
	}

	// Retired versions can go: everything opens with the newest ones only.
	newest := events.NewKeyStore(pool, mustKeyring(t, main2+","+app2))
	for s, dk := range dataKeys {
		got, err := newest.Get(ctx, s)
		require.NoError(t, err, s)
		require.Equal(t, dk, got, s)
	}

	// A keyring that lacks a name some data key follows: rewrap says so
	// rather than moving those keys to another key.
	_, err = events.NewKeyStore(pool, mustKeyring(t, main2)).Rewrap(ctx)
	require.ErrorContains(t, err, `follows key "app", which the keyring lacks`)
	require.Equal(t, "app@2 app", kek()["named-0"])
}
