package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/server"
)

// fakeClock is a settable clock for the lifecycle (tokens' ages).
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// countRows counts the rows of a table (or a WHERE-qualified table) on the stack's database.
func (s *stack) countRows(from string, args ...any) int {
	s.t.Helper()
	var n int
	require.NoError(s.t, s.Server.Pool.QueryRow(context.Background(), `SELECT count(*) FROM `+from, args...).Scan(&n))
	return n
}

func idemSecret(token string) map[string]any {
	return map[string]any{"name": "db-password", "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
		"data": map[string]any{"aws_access_key_id": "AKIA1", "aws_secret_access_key": "1234"}, "clientRequestToken": token}
}

// createAnswer posts createSecret and returns the secret id answered (or the error code).
func createAnswer(t testing.TB, base, token string, in map[string]any) (id string, version int, code string) {
	r := doGraphQL(t, base, token, `mutation($in: CreateSecretInput!) { createSecret(input: $in) { secretId version } }`, map[string]any{"in": in})
	if c := r.Code(); c != "" {
		return "", 0, c
	}
	var out struct {
		CreateSecret struct {
			SecretID string
			Version  int
		}
	}
	r.Decode(t, &out)
	return out.CreateSecret.SecretID, out.CreateSecret.Version, ""
}

// TestIdempotentCreate: a create retried with its token makes one secret,
// one event, one token row; every answer names the same secret, even when
// the retries race (one server) and after the secret changed since.
func TestIdempotentCreate(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"})

	first, v, code := createAnswer(t, s.HTTP.URL, admin, idemSecret("tok-1"))
	require.Empty(t, code)
	require.Equal(t, 1, v)
	for range 9 {
		id, v, code := createAnswer(t, s.HTTP.URL, admin, idemSecret("tok-1"))
		require.Empty(t, code)
		require.Equal(t, first, id)
		require.Equal(t, 1, v)
	}
	// Ten at once with a fresh token: one secret.
	ids := make([]string, 10)
	codes := make([]string, 10)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); ids[i], _, codes[i] = createAnswer(t, s.HTTP.URL, admin, idemSecret("tok-2")) }()
	}
	wg.Wait()
	for i := range ids {
		require.Empty(t, codes[i], "a concurrent duplicate answers the winner's result, not an error")
		require.Equal(t, ids[0], ids[i])
	}
	require.NotEqual(t, first, ids[0], "another token is another request")
	require.Equal(t, 2, s.countRows(`event_log WHERE type = 'SecretCreated.v1'`), "one secret per token")
	require.Equal(t, 2, s.countRows(`request_tokens`))
	require.Equal(t, 2, s.countRows(`data_keys`), "the losers' data keys rolled back with them")

	// The first answer stands after the secret changed: version 1.
	s.mustOK(admin, `mutation($id: ID!) { updateSecretData(input: {secretId: $id, data: {aws_access_key_id: "AKIA2", aws_secret_access_key: "x"}}) { version } }`,
		map[string]any{"id": first}, nil)
	id, v, code := createAnswer(t, s.HTTP.URL, admin, idemSecret("tok-1"))
	require.Empty(t, code)
	require.Equal(t, first, id)
	require.Equal(t, 1, v, "the first answer, not the secret as it is now")

	// The same token with another request is CONFLICT, whatever differs.
	other := idemSecret("tok-1")
	other["data"] = map[string]any{"aws_access_key_id": "AKIA1", "aws_secret_access_key": "1235"}
	_, _, code = createAnswer(t, s.HTTP.URL, admin, other)
	require.Equal(t, "CONFLICT", code, "another value")
	other = idemSecret("tok-1")
	other["name"] = "other-name"
	_, _, code = createAnswer(t, s.HTTP.URL, admin, other)
	require.Equal(t, "CONFLICT", code, "another name")
	other = idemSecret("tok-1")
	other["tags"] = map[string]any{"env": "prod"}
	_, _, code = createAnswer(t, s.HTTP.URL, admin, other)
	require.Equal(t, "CONFLICT", code, "other tags")
	otherAdmin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "bob"})
	_, _, code = createAnswer(t, s.HTTP.URL, otherAdmin, idemSecret("tok-1"))
	require.Equal(t, "CONFLICT", code, "another caller")
	// Tokens are per domain: another domain's same token is its own.
	foreign := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-b", UserID: "alice"})
	id, _, code = createAnswer(t, s.HTTP.URL, foreign, idemSecret("tok-1"))
	require.Empty(t, code)
	require.NotEqual(t, first, id)

	// Malformed tokens.
	for _, bad := range []string{"has space", "dot.ted", "ünï"} {
		_, _, code = createAnswer(t, s.HTTP.URL, admin, idemSecret(bad))
		require.Equal(t, "INVALID_ARGUMENT", code, "%q", bad)
	}
	long := ""
	for range 64 {
		long += "a"
	}
	_, _, code = createAnswer(t, s.HTTP.URL, admin, idemSecret(long))
	require.Empty(t, code, "64 characters is allowed")
	_, _, code = createAnswer(t, s.HTTP.URL, admin, idemSecret(long+"a"))
	require.Equal(t, "INVALID_ARGUMENT", code)

	// The fingerprint is keyed: the table holds no hash of the value.
	var fp []byte
	var keyID string
	require.NoError(t, s.Server.Pool.QueryRow(context.Background(),
		`SELECT fingerprint, fingerprint_key FROM request_tokens WHERE token = 'tok-1' AND domain_id = 'domain-a'`).Scan(&fp, &keyID))
	require.Len(t, fp, 32)
	require.Equal(t, "test-1", keyID)
}

// TestIdempotentCreateUserSecret: user secrets' tokens are the user's.
func TestIdempotentCreateUserSecret(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	alice := s.token(auth.Identity{Role: auth.RoleUser, DomainID: "domain-a", UserID: "alice"})
	bob := s.token(auth.Identity{Role: auth.RoleUser, DomainID: "domain-a", UserID: "bob"})
	in := map[string]any{"name": "mine", "schemaId": "aws_access_key", "clientRequestToken": "same",
		"data": map[string]any{"aws_access_key_id": "AKIA1", "aws_secret_access_key": "x"}}
	const q = `mutation($in: CreateUserSecretInput!) { createUserSecret(input: $in) { userSecretId } }`
	var a1, a2, b1 struct{ CreateUserSecret struct{ UserSecretID string } }
	s.mustOK(alice, q, map[string]any{"in": in}, &a1)
	s.mustOK(alice, q, map[string]any{"in": in}, &a2)
	s.mustOK(bob, q, map[string]any{"in": in}, &b1)
	require.Equal(t, a1, a2)
	require.NotEqual(t, a1, b1, "bob's token is bob's")
	in["name"] = "renamed"
	require.Equal(t, "CONFLICT", s.do(alice, q, map[string]any{"in": in}).Code())
	require.Equal(t, 2, s.countRows(`event_log WHERE type = 'UserSecretCreated.v1'`))
}

const updateDataMutation = `mutation($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { secretId version } }`

// TestIdempotentUpdateSecretData: a value update retried with its token
// makes one version, also racing and also after expectedVersion moved on.
func TestIdempotentUpdateSecretData(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"})
	id := s.createSecret(admin, idemSecret(""))
	in := map[string]any{"secretId": id, "data": map[string]any{"aws_access_key_id": "AKIA2", "aws_secret_access_key": "2"},
		"expectedVersion": 1, "clientRequestToken": "u-1"}
	versions := make([]int, 10)
	codes := make([]string, 10)
	var wg sync.WaitGroup
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := doGraphQL(t, s.HTTP.URL, admin, updateDataMutation, map[string]any{"in": in})
			if codes[i] = r.Code(); codes[i] == "" {
				var out struct{ UpdateSecretData struct{ Version int } }
				r.Decode(t, &out)
				versions[i] = out.UpdateSecretData.Version
			}
		}()
	}
	wg.Wait()
	for i := range versions {
		require.Empty(t, codes[i], "a retry answers the first result, before expectedVersion is checked")
		require.Equal(t, 2, versions[i])
	}
	require.Equal(t, 1, s.countRows(`event_log WHERE stream_id = $1 AND type = 'SecretDataUpdated.v1'`, id))

	// Another value under the same token: CONFLICT (before expectedVersion's).
	in2 := map[string]any{"secretId": id, "data": map[string]any{"aws_access_key_id": "AKIA3", "aws_secret_access_key": "3"},
		"expectedVersion": 1, "clientRequestToken": "u-1"}
	r := s.do(admin, updateDataMutation, map[string]any{"in": in2})
	require.Equal(t, "CONFLICT", r.Code())
	require.Contains(t, r.Errors[0].Message, "clientRequestToken")

	// Tokens are per secret: the same token on another secret is fresh.
	other := s.createSecret(admin, idemSecret(""))
	in3 := map[string]any{"secretId": other, "data": in["data"], "clientRequestToken": "u-1"}
	var out struct{ UpdateSecretData struct{ Version int } }
	s.mustOK(admin, updateDataMutation, map[string]any{"in": in3}, &out)
	require.Equal(t, 2, out.UpdateSecretData.Version)

	// Another domain's caller still gets NOT_FOUND, token or not.
	foreign := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-b", UserID: "eve"})
	require.Equal(t, "NOT_FOUND", s.do(foreign, updateDataMutation, map[string]any{"in": in}).Code())

	// User secrets too.
	alice := s.token(auth.Identity{Role: auth.RoleUser, DomainID: "domain-a", UserID: "alice"})
	us := s.createUserSecret(alice, map[string]any{"name": "mine", "schemaId": "aws_access_key",
		"data": map[string]any{"aws_access_key_id": "AKIA1", "aws_secret_access_key": "x"}})
	const uq = `mutation($in: UpdateUserSecretDataInput!) { updateUserSecretData(input: $in) { version } }`
	uin := map[string]any{"userSecretId": us, "data": map[string]any{"aws_access_key_id": "AKIA9", "aws_secret_access_key": "9"},
		"clientRequestToken": "uu"}
	for range 3 {
		var o struct{ UpdateUserSecretData struct{ Version int } }
		s.mustOK(alice, uq, map[string]any{"in": uin}, &o)
		require.Equal(t, 2, o.UpdateUserSecretData.Version)
	}
	uin["schemaId"] = "aws_access_key"
	require.Equal(t, "CONFLICT", s.do(alice, uq, map[string]any{"in": uin}).Code(), "naming the schema is another request")
}

// TestIdempotencyTokenExpiry: a token is remembered 24 hours; after that the
// same token and request make a new secret, and the scheduler purges it.
func TestIdempotencyTokenExpiry(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	s := newStackWith(t, func(cfg *server.Config) {
		cfg.Lifecycle.Now = clock.Now
		cfg.SchedulerEvery = 50 * time.Millisecond
	})
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"})

	first, _, code := createAnswer(t, s.HTTP.URL, admin, idemSecret("old"))
	require.Empty(t, code)
	clock.Advance(23*time.Hour + 59*time.Minute)
	again, _, code := createAnswer(t, s.HTTP.URL, admin, idemSecret("old"))
	require.Empty(t, code)
	require.Equal(t, first, again, "remembered for 24 hours")

	clock.Advance(2 * time.Minute)
	fresh, _, code := createAnswer(t, s.HTTP.URL, admin, idemSecret("old"))
	require.Empty(t, code)
	require.NotEqual(t, first, fresh, "a token older than 24 hours is fresh")
	changed := idemSecret("old")
	changed["name"] = "another"
	_, _, code = createAnswer(t, s.HTTP.URL, admin, changed)
	require.Equal(t, "CONFLICT", code, "the fresh use is remembered in turn")
	require.Equal(t, 1, s.countRows(`request_tokens`), "the expired row gave way")

	// Another token ages out and the scheduler forgets it.
	_, _, code = createAnswer(t, s.HTTP.URL, admin, idemSecret("purged"))
	require.Empty(t, code)
	require.Equal(t, 2, s.countRows(`request_tokens`))
	clock.Advance(25 * time.Hour)
	require.Eventually(t, func() bool { return s.countRows(`request_tokens`) == 0 }, 10*time.Second, 50*time.Millisecond)
}

// TestIdempotentCreateTwoServers: the same token sent to two servers on one
// database at once makes one secret; every answer names it.
func TestIdempotentCreateTwoServers(t *testing.T) {
	t.Parallel()
	c := newMSCluster(t, 2, false)
	admin := c.admin("domain-a")
	for round := range 3 {
		token := fmt.Sprintf("multi-%d", round)
		ids := make([]string, 10)
		codes := make([]string, 10)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i], _, codes[i] = createAnswer(t, c.urls[i%2], admin, idemSecret(token))
			}()
		}
		wg.Wait()
		for i := range ids {
			require.Empty(t, codes[i], "round %d request %d", round, i)
			require.Equal(t, ids[0], ids[i], "round %d", round)
		}
	}
	require.Equal(t, 3, c.nodes[0].countRows(`event_log WHERE type = 'SecretCreated.v1'`))

	// Value updates racing on two servers: one version.
	id, _, code := createAnswer(t, c.urls[0], admin, idemSecret(""))
	require.Empty(t, code)
	in := map[string]any{"secretId": id, "clientRequestToken": "upd",
		"data": map[string]any{"aws_access_key_id": "AKIA2", "aws_secret_access_key": "2"}}
	codes := make([]string, 10)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = doGraphQL(t, c.urls[i%2], admin, updateDataMutation, map[string]any{"in": in}).Code()
		}()
	}
	wg.Wait()
	for _, code := range codes {
		require.Empty(t, code)
	}
	require.Equal(t, 1, c.nodes[0].countRows(`event_log WHERE stream_id = $1 AND type = 'SecretDataUpdated.v1'`, id))
}

// TestIdempotentUpdateGrouped: retries queued behind a commit in flight are
// decided in one group: the first claims the token, the same request after
// it gets its answer (not the CONFLICT of its expectedVersion, which the
// first moved on), another request under the token CONFLICT.
func TestIdempotentUpdateGrouped(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"})
	id := s.createSecret(admin, idemSecret(""))

	// Hold every writer at BEGIN (the projections' write lock, taken
	// exclusively as a rebuild's swap does) so that requests queue.
	ctx := context.Background()
	conn, err := s.Server.Pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	const writeLockSpace = 0x5eb1e // projections.writeLockSpace
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, writeLockSpace)
	require.NoError(t, err)
	locked := true
	defer func() {
		if locked {
			_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, writeLockSpace)
		}
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // in flight: the stream's next requests queue behind it
		defer wg.Done()
		doGraphQL(t, s.HTTP.URL, admin, updateDataMutation, map[string]any{"in": map[string]any{"secretId": id,
			"data": map[string]any{"aws_access_key_id": "AKIA2", "aws_secret_access_key": "2"}}})
	}()
	time.Sleep(200 * time.Millisecond)
	in := map[string]any{"secretId": id, "expectedVersion": 2, "clientRequestToken": "grouped",
		"data": map[string]any{"aws_access_key_id": "AKIA3", "aws_secret_access_key": "3"}}
	versions := make([]int, 8)
	codes := make([]string, 8)
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := doGraphQL(t, s.HTTP.URL, admin, updateDataMutation, map[string]any{"in": in})
			if codes[i] = r.Code(); codes[i] == "" {
				var out struct{ UpdateSecretData struct{ Version int } }
				r.Decode(t, &out)
				versions[i] = out.UpdateSecretData.Version
			}
		}()
	}
	var otherCode string
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(100 * time.Millisecond) // after the first of them
		otherCode = doGraphQL(t, s.HTTP.URL, admin, updateDataMutation, map[string]any{"in": map[string]any{"secretId": id,
			"clientRequestToken": "grouped", "data": map[string]any{"aws_access_key_id": "AKIA4", "aws_secret_access_key": "4"}}}).Code()
	}()
	time.Sleep(400 * time.Millisecond)
	_, err = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, writeLockSpace)
	require.NoError(t, err)
	locked = false
	wg.Wait()
	for i := range versions {
		require.Empty(t, codes[i], "request %d", i)
		require.Equal(t, 3, versions[i], "request %d", i)
	}
	require.Equal(t, "CONFLICT", otherCode)
	require.Equal(t, 2, s.countRows(`event_log WHERE stream_id = $1 AND type = 'SecretDataUpdated.v1'`, id))
}
