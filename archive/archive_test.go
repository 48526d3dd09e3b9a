package archive

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fast keeps the tests quick; archives record their parameters.
var fast = Params{Time: 1, MemoryKiB: 8 << 10, Threads: 1}

func sealed(t *testing.T, pass, plain string) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, Seal(&b, []byte(pass), []byte(plain), fast))
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	const canary = "canary-7f3a9c1e"
	file := sealed(t, "correct horse", `{"v":"`+canary+`"}`)
	require.True(t, strings.HasPrefix(string(file), Magic+"\n{\"kdf\":\"argon2id\""), "%q", file[:40])
	for _, enc := range []string{canary, hex.EncodeToString([]byte(canary)), base64.StdEncoding.EncodeToString([]byte(canary)),
		base64.StdEncoding.EncodeToString([]byte(`{"v":"` + canary))} {
		require.NotContains(t, string(file), enc)
	}
	plain, err := Open(bytes.NewReader(file), []byte("correct horse"))
	require.NoError(t, err)
	require.Equal(t, `{"v":"`+canary+`"}`, string(plain))

	// Two seals of the same plaintext differ (salt and nonce).
	require.NotEqual(t, file, sealed(t, "correct horse", `{"v":"`+canary+`"}`))
}

func TestWrongPassphrase(t *testing.T) {
	file := sealed(t, "correct horse", "{}")
	_, err := Open(bytes.NewReader(file), []byte("correct horsf"))
	require.ErrorIs(t, err, ErrDecrypt)
	_, err = Open(bytes.NewReader(file), nil)
	require.ErrorIs(t, err, ErrEmptyPassphrase)
	require.ErrorIs(t, Seal(&bytes.Buffer{}, nil, nil, fast), ErrEmptyPassphrase)
}

// TestEveryByteFlipped: changing any single byte of the file, header or
// ciphertext, makes Open fail, and it never returns plaintext.
func TestEveryByteFlipped(t *testing.T) {
	file := sealed(t, "pw", `{"k":"value"}`)
	for i := range file {
		for _, mask := range []byte{0x01} {
			bad := bytes.Clone(file)
			bad[i] ^= mask
			plain, err := Open(bytes.NewReader(bad), []byte("pw"))
			require.Error(t, err, "byte %d ^ %#x", i, mask)
			require.Nil(t, plain)
			require.True(t, errors.Is(err, ErrDecrypt) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrNotArchive) ||
				errors.Is(err, ErrUnsupported), "byte %d: %v", i, err)
		}
	}
	// Truncated and extended files fail too.
	for _, bad := range [][]byte{file[:len(file)-1], append(bytes.Clone(file), 0), file[:len(Magic)+1], nil} {
		_, err := Open(bytes.NewReader(bad), []byte("pw"))
		require.Error(t, err)
	}
}

func TestHeaderChecks(t *testing.T) {
	file := sealed(t, "pw", "{}")
	_, err := Open(strings.NewReader("secretlog-archive v2\n{}\n"), []byte("pw"))
	require.ErrorIs(t, err, ErrUnsupported)
	_, err = Open(strings.NewReader("PK\x03\x04"), []byte("pw"))
	require.ErrorIs(t, err, ErrNotArchive)
	// A hostile header cannot ask for unbounded memory.
	huge := strings.Replace(string(file), `"memoryKiB":8192`, `"memoryKiB":4294967295`, 1)
	require.NotEqual(t, string(file), huge)
	_, err = Open(strings.NewReader(huge), []byte("pw"))
	require.ErrorIs(t, err, ErrMalformed)
	require.Error(t, Seal(&bytes.Buffer{}, []byte("pw"), nil, Params{Time: 1, MemoryKiB: 1, Threads: 1}))
}

func TestPayloadDecode(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	p := &Payload{Format: PayloadFormat, ArchiveID: "0b6f3c1e-1d2a-4c1b-9a7e-3f1d2c3b4a59", CreatedAt: now,
		Secrets: []Secret{{ID: "secret-0123456789ab", Name: "db", ResourceGroup: "DOMAIN",
			Versions: []Version{{Version: 1, Data: map[string]any{"n": 12345678901234567}}, {Version: 3, Data: map[string]any{"p": "x"}}}}},
		UserSecrets: []Secret{{ID: "user-secret-0123456789ab", Name: "gh", UserID: "bob", Versions: []Version{{Version: 2, Data: map[string]any{"t": "y"}}}}}}
	b, err := p.Encode()
	require.NoError(t, err)
	got, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, "12345678901234567", got.Secrets[0].Versions[0].Data["n"].(interface{ String() string }).String(), "numbers stay exact")
	require.Equal(t, "bob", got.UserSecrets[0].UserID)

	for name, mutate := range map[string]func(*Payload){
		"format":     func(p *Payload) { p.Format = 2 },
		"archive id": func(p *Payload) { p.ArchiveID = "x" },
		"secret id":  func(p *Payload) { p.Secrets[0].ID = "user-secret-0123456789ab" },
		"no value":   func(p *Payload) { p.Secrets[0].Versions = nil },
		"order":      func(p *Payload) { p.Secrets[0].Versions[1].Version = 1 },
		"empty data": func(p *Payload) { p.UserSecrets[0].Versions[0].Data = map[string]any{} },
		"no name":    func(p *Payload) { p.UserSecrets[0].Name = "" },
	} {
		q := *p
		q.Secrets = []Secret{p.Secrets[0]}
		q.Secrets[0].Versions = append([]Version(nil), p.Secrets[0].Versions...)
		q.UserSecrets = []Secret{p.UserSecrets[0]}
		q.UserSecrets[0].Versions = append([]Version(nil), p.UserSecrets[0].Versions...)
		mutate(&q)
		b, err := q.Encode()
		require.NoError(t, err)
		_, err = Decode(b)
		require.Error(t, err, name)
	}
	_, err = Decode([]byte(`{"format":1,"bogus":true}`))
	require.ErrorIs(t, err, ErrMalformed)
}
