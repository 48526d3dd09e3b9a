package events_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
)

func randomKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	key := randomKey(t)
	cases := []struct {
		name      string
		plaintext []byte
	}{
		{"empty", []byte{}},
		{"json", []byte(`{"aws_access_key_id":"AKIA","aws_secret_access_key":"s3cr3t"}`)},
		{"binary", []byte{0, 1, 2, 0xff, 0}},
		{"64 KiB", bytes.Repeat([]byte("x"), 64<<10)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, err := events.Seal(key, "secret-abc", 3, c.plaintext)
			require.NoError(t, err)
			require.Len(t, s.Nonce, 12)
			if len(c.plaintext) >= 4 {
				require.NotContains(t, string(s.Ciphertext), string(c.plaintext))
			}
			got, err := events.Open(key, "secret-abc", 3, s)
			require.NoError(t, err)
			require.Equal(t, len(c.plaintext), len(got))
			require.True(t, bytes.Equal(c.plaintext, got))

			again, err := events.Seal(key, "secret-abc", 3, c.plaintext)
			require.NoError(t, err)
			require.NotEqual(t, s.Nonce, again.Nonce, "every seal takes a fresh nonce")
			require.NotEqual(t, s.Ciphertext, again.Ciphertext)
		})
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	key := randomKey(t)
	sealed, err := events.Seal(key, "secret-abc", 3, []byte("the value"))
	require.NoError(t, err)
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	cases := []struct {
		name    string
		key     []byte
		stream  string
		version int64
		sealed  events.Sealed
	}{
		{"wrong stream", key, "secret-abd", 3, sealed},
		{"stream prefix", key, "secret-ab", 3, sealed},
		{"wrong version", key, "secret-abc", 2, sealed},
		{"version zero", key, "secret-abc", 0, sealed},
		{"wrong key", randomKey(t), "secret-abc", 3, sealed},
		{"short key", key[:16], "secret-abc", 3, sealed},
		{"tampered ciphertext start", key, "secret-abc", 3, events.Sealed{Nonce: sealed.Nonce, Ciphertext: flip(sealed.Ciphertext, 0)}},
		{"tampered tag", key, "secret-abc", 3, events.Sealed{Nonce: sealed.Nonce, Ciphertext: flip(sealed.Ciphertext, len(sealed.Ciphertext)-1)}},
		{"truncated ciphertext", key, "secret-abc", 3, events.Sealed{Nonce: sealed.Nonce, Ciphertext: sealed.Ciphertext[:len(sealed.Ciphertext)-1]}},
		{"empty ciphertext", key, "secret-abc", 3, events.Sealed{Nonce: sealed.Nonce}},
		{"tampered nonce", key, "secret-abc", 3, events.Sealed{Nonce: flip(sealed.Nonce, 5), Ciphertext: sealed.Ciphertext}},
		{"short nonce", key, "secret-abc", 3, events.Sealed{Nonce: sealed.Nonce[:11], Ciphertext: sealed.Ciphertext}},
		{"missing nonce", key, "secret-abc", 3, events.Sealed{Ciphertext: sealed.Ciphertext}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := events.Open(c.key, c.stream, c.version, c.sealed)
			require.Error(t, err)
			require.Nil(t, got)
			require.NotContains(t, err.Error(), "the value", "errors never carry plaintext")
		})
	}

	// Stream and version are separated in the associated data: ("a1", 1) is not ("a", 11).
	s, err := events.Seal(key, "a1", 1, []byte("x"))
	require.NoError(t, err)
	_, err = events.Open(key, "a", 11, s)
	require.Error(t, err)

	_, err = events.Seal(key[:31], "s", 1, []byte("x"))
	require.Error(t, err, "Seal refuses a key that is not 32 bytes")
}

func keySpec(id string, key []byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(key)
}

func TestParseKeyring(t *testing.T) {
	t.Parallel()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{0xfb}, 32) // 0xfb encodes with '+' and '/' in std base64
	urlK2 := "k2:" + base64.URLEncoding.EncodeToString(k2)
	require.Contains(t, base64.StdEncoding.EncodeToString(k2), "+")
	cases := []struct {
		name        string
		spec        string
		wantPrimary string
		wantErr     string
	}{
		{"one key", keySpec("k1", k1), "k1", ""},
		{"first is primary", keySpec("k2", k2) + "," + keySpec("k1", k1), "k2", ""},
		{"order decides", keySpec("k1", k1) + "," + keySpec("k2", k2), "k1", ""},
		{"spaces and newline", "  " + keySpec("k1", k1) + " , " + keySpec("k2", k2) + "\n", "k1", ""},
		{"URL base64", urlK2, "k2", ""},
		{"empty", "", "", "id:base64key"},
		{"no colon", "k1" + base64.StdEncoding.EncodeToString(k1), "", "id:base64key"},
		{"empty id", ":" + base64.StdEncoding.EncodeToString(k1), "", "id:base64key"},
		{"trailing comma", keySpec("k1", k1) + ",", "", "id:base64key"},
		{"bad base64", "k1:not*base64!", "", `key "k1" is not base64`},
		{"too short", keySpec("k1", k1[:16]), "", `key "k1" must be 32 bytes, got 16`},
		{"too long", keySpec("k1", append(bytes.Clone(k1), 0)), "", `key "k1" must be 32 bytes, got 33`},
		{"empty key", "k1:", "", `must be 32 bytes, got 0`},
		{"duplicate id", keySpec("k1", k1) + "," + keySpec("k1", k2), "", `key id "k1" appears twice`},
		{"duplicate id, same key", keySpec("k1", k1) + "," + keySpec("k2", k2) + "," + keySpec("k1", k1), "", `appears twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			kr, err := events.ParseKeyring(c.spec)
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
				require.Nil(t, kr)
				for _, k := range [][]byte{k1, k2} {
					require.NotContains(t, err.Error(), base64.StdEncoding.EncodeToString(k), "errors never carry key material")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.wantPrimary, kr.Primary())
		})
	}
}

func TestNewKeySpec(t *testing.T) {
	t.Parallel()
	a, err := events.NewKeySpec("dev")
	require.NoError(t, err)
	b, err := events.NewKeySpec("dev")
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	require.True(t, strings.HasPrefix(a, "dev:"))
	kr, err := events.ParseKeyring(a)
	require.NoError(t, err)
	require.Equal(t, "dev", kr.Primary())
}

func mustKeyring(t *testing.T, spec string) *events.Keyring {
	t.Helper()
	kr, err := events.ParseKeyring(spec)
	require.NoError(t, err)
	return kr
}

type dataKeyRow struct {
	kekID       *string
	wrapped     []byte
	rotated     bool
	destroyedAt bool
}

func dataKeyRows(ctx context.Context, t *testing.T, pool *pgxpool.Pool) map[string]dataKeyRow {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT stream_id, kek_id, wrapped_key, rotated_at IS NOT NULL, destroyed_at IS NOT NULL FROM data_keys`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]dataKeyRow{}
	for rows.Next() {
		var stream string
		var r dataKeyRow
		require.NoError(t, rows.Scan(&stream, &r.kekID, &r.wrapped, &r.rotated, &r.destroyedAt))
		out[stream] = r
	}
	require.NoError(t, rows.Err())
	return out
}

// requireNoRawKeys checks that no stored wrapped key contains a data key.
func requireNoRawKeys(ctx context.Context, t *testing.T, pool *pgxpool.Pool, dataKeys map[string][]byte) {
	t.Helper()
	for stream, row := range dataKeyRows(ctx, t, pool) {
		for other, dk := range dataKeys {
			require.False(t, bytes.Contains(row.wrapped, dk), "wrapped key of %s holds the raw data key of %s", stream, other)
			require.False(t, bytes.Contains(row.wrapped, dk[:16]), "wrapped key of %s holds half the raw data key of %s", stream, other)
		}
	}
}

func TestKeyStoreCreateGetDestroy(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := testContext(t)
	spec, err := events.NewKeySpec("k1")
	require.NoError(t, err)
	ks := events.NewKeyStore(pool, mustKeyring(t, spec))

	dkA, err := ks.Create(ctx, pool, "secret-a")
	require.NoError(t, err)
	require.Len(t, dkA, 32)
	dkB, err := ks.Create(ctx, pool, "secret-b")
	require.NoError(t, err)
	require.NotEqual(t, dkA, dkB, "every stream has its own data key")

	got, err := ks.Get(ctx, "secret-a")
	require.NoError(t, err)
	require.Equal(t, dkA, got)
	got, err = ks.Get(ctx, "secret-b")
	require.NoError(t, err)
	require.Equal(t, dkB, got)

	// A second keystore on the same keyring (another server) reads the same keys.
	got, err = events.NewKeyStore(pool, mustKeyring(t, spec)).Get(ctx, "secret-a")
	require.NoError(t, err)
	require.Equal(t, dkA, got)

	_, err = ks.Create(ctx, pool, "secret-a")
	require.Error(t, err, "a stream has one data key")
	got, err = ks.Get(ctx, "secret-a")
	require.NoError(t, err)
	require.Equal(t, dkA, got, "a failed Create leaves the key alone")

	_, err = ks.Get(ctx, "secret-none")
	require.Error(t, err)
	require.NotErrorIs(t, err, events.ErrKeyDestroyed, "a missing key is not a destroyed one")

	rows := dataKeyRows(ctx, t, pool)
	require.Equal(t, "k1", *rows["secret-a"].kekID)
	requireNoRawKeys(ctx, t, pool, map[string][]byte{"secret-a": dkA, "secret-b": dkB})

	sealed, err := events.Seal(dkA, "secret-a", 1, []byte("value"))
	require.NoError(t, err)

	require.NoError(t, ks.Destroy(ctx, pool, "secret-a"))
	_, err = ks.Get(ctx, "secret-a")
	require.ErrorIs(t, err, events.ErrKeyDestroyed)
	require.NoError(t, ks.Destroy(ctx, pool, "secret-a"), "Destroy is idempotent")
	_, err = ks.Get(ctx, "secret-a")
	require.ErrorIs(t, err, events.ErrKeyDestroyed)

	rows = dataKeyRows(ctx, t, pool)
	require.Nil(t, rows["secret-a"].wrapped, "the wrapped key is erased, not just flagged")
	require.Nil(t, rows["secret-a"].kekID)
	require.True(t, rows["secret-a"].destroyedAt)
	_, err = ks.Create(ctx, pool, "secret-a")
	require.Error(t, err, "a destroyed stream does not get a new key")

	got, err = ks.Get(ctx, "secret-b")
	require.NoError(t, err)
	require.Equal(t, dkB, got, "destroying one key leaves the others")

	// Only the data key could open the value; with it gone the value is shredded.
	opened, err := events.Open(dkA, "secret-a", 1, sealed)
	require.NoError(t, err, "sanity: the key held before Destroy still opens it")
	require.Equal(t, []byte("value"), opened)
}

func TestKeyStoreWrongKeyring(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := testContext(t)
	specA, err := events.NewKeySpec("k1")
	require.NoError(t, err)
	specB, err := events.NewKeySpec("k1") // same id, other key
	require.NoError(t, err)
	specC, err := events.NewKeySpec("k2")
	require.NoError(t, err)

	_, err = events.NewKeyStore(pool, mustKeyring(t, specA)).Create(ctx, pool, "secret-a")
	require.NoError(t, err)

	_, err = events.NewKeyStore(pool, mustKeyring(t, specB)).Get(ctx, "secret-a")
	require.Error(t, err, "another key under the same id cannot unwrap")
	_, err = events.NewKeyStore(pool, mustKeyring(t, specC)).Get(ctx, "secret-a")
	require.ErrorContains(t, err, `no key "k1"`)
}

func TestKeyStoreRewrap(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := testContext(t)
	oldSpec, err := events.NewKeySpec("old")
	require.NoError(t, err)
	newSpec, err := events.NewKeySpec("new")
	require.NoError(t, err)

	oldKS := events.NewKeyStore(pool, mustKeyring(t, oldSpec))
	dataKeys := map[string][]byte{}
	for i := range 5 {
		stream := fmt.Sprintf("secret-%d", i)
		dk, err := oldKS.Create(ctx, pool, stream)
		require.NoError(t, err)
		dataKeys[stream] = dk
	}
	require.NoError(t, oldKS.Destroy(ctx, pool, "secret-4"))
	delete(dataKeys, "secret-4")
	requireNoRawKeys(ctx, t, pool, dataKeys)

	rotating := events.NewKeyStore(pool, mustKeyring(t, newSpec+","+oldSpec))
	for stream, dk := range dataKeys {
		got, err := rotating.Get(ctx, stream)
		require.NoError(t, err, "the retiring key still unwraps before Rewrap")
		require.Equal(t, dk, got)
	}
	// A key created during rotation is wrapped by the new primary at once.
	dkNew, err := rotating.Create(ctx, pool, "secret-new")
	require.NoError(t, err)
	dataKeys["secret-new"] = dkNew

	moved, err := rotating.Rewrap(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, moved, "the four live old keys move; the destroyed and the new one do not")
	requireNoRawKeys(ctx, t, pool, dataKeys)

	rows := dataKeyRows(ctx, t, pool)
	for stream := range dataKeys {
		require.Equal(t, "new", *rows[stream].kekID, stream)
		require.Equal(t, stream != "secret-new", rows[stream].rotated, "rotated_at of %s", stream)
	}
	require.Nil(t, rows["secret-4"].wrapped, "a destroyed key stays destroyed")

	moved, err = rotating.Rewrap(ctx)
	require.NoError(t, err)
	require.Zero(t, moved, "nothing left to move")

	newOnly := events.NewKeyStore(pool, mustKeyring(t, newSpec))
	for stream, dk := range dataKeys {
		got, err := newOnly.Get(ctx, stream)
		require.NoError(t, err, "the old key can be dropped after Rewrap")
		require.Equal(t, dk, got, "Rewrap keeps the data key itself")
	}
	_, err = newOnly.Get(ctx, "secret-4")
	require.ErrorIs(t, err, events.ErrKeyDestroyed)

	_, err = events.NewKeyStore(pool, mustKeyring(t, oldSpec)).Get(ctx, "secret-0")
	require.Error(t, err, "the retired key no longer unwraps anything")
}

func TestKeyStoreRewrapManyKeys(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := testContext(t)
	oldSpec, err := events.NewKeySpec("old")
	require.NoError(t, err)
	newSpec, err := events.NewKeySpec("new")
	require.NoError(t, err)

	// More than one Rewrap batch (500).
	const n = 520
	oldKS := events.NewKeyStore(pool, mustKeyring(t, oldSpec))
	dataKeys := make(map[string][]byte, n)
	for i := range n {
		stream := fmt.Sprintf("secret-%04d", i)
		dk, err := oldKS.Create(ctx, pool, stream)
		require.NoError(t, err)
		dataKeys[stream] = dk
	}

	moved, err := events.NewKeyStore(pool, mustKeyring(t, newSpec+","+oldSpec)).Rewrap(ctx)
	require.NoError(t, err)
	require.Equal(t, n, moved)

	newOnly := events.NewKeyStore(pool, mustKeyring(t, newSpec))
	for _, stream := range []string{"secret-0000", "secret-0499", "secret-0500", "secret-0519"} {
		got, err := newOnly.Get(ctx, stream)
		require.NoError(t, err)
		require.Equal(t, dataKeys[stream], got)
	}
	var stillOld int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM data_keys WHERE kek_id <> 'new'`).Scan(&stillOld))
	require.Zero(t, stillOld)
}
