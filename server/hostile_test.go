package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/server"
)

// refusedWithin is how long any hostile request may take, generously for a
// loaded CI machine: the refusals themselves take milliseconds.
const refusedWithin = 2 * time.Second

// newStackWith is newStack with a changed configuration.
func newStackWith(t *testing.T, configure func(*server.Config)) *stack {
	t.Helper()
	spec, err := events.NewKeySpec("test-1")
	require.NoError(t, err)
	keyring, err := events.ParseKeyring(spec)
	require.NoError(t, err)
	tokenKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(spec, "test-1:"))
	require.NoError(t, err)
	s := &stack{t: t, DatabaseURL: pgtest.NewDatabase(t), Logs: &syncBuffer{}, keyring: keyring, tokenKey: tokenKey}
	logger := slog.New(slog.NewJSONHandler(s.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := server.Config{DatabaseURL: s.DatabaseURL, Keyring: s.keyring, TokenKey: s.tokenKey, Logger: logger, AsyncProjections: asyncProjections}
	configure(&cfg)
	srv, err := server.New(ctx, cfg)
	require.NoError(t, err)
	s.Server = srv
	s.HTTP = httptest.NewServer(srv.Handler())
	t.Cleanup(s.stop)
	return s
}

// requireCleanLogs: no panic and no request that failed internally.
func requireCleanLogs(t *testing.T, s *stack) {
	t.Helper()
	logs := s.Logs.String()
	require.NotContains(t, logs, "panic")
	require.NotContains(t, logs, `"msg":"request failed"`)
}

// postRaw posts body to /graphql and decodes the answer, timing it.
func postRaw(t *testing.T, base, token string, body []byte) (gqlResponse, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out gqlResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	out.Status = resp.StatusCode
	return out, time.Since(start)
}

func request(query string, vars map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		panic(err)
	}
	return b
}

func repeat(n int, f func(i int) string) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(f(i))
		b.WriteByte(' ')
	}
	return b.String()
}

// TestHostileRequests: each request of the table is refused (or answered
// cheaply) within refusedWithin with RESOURCE_EXHAUSTED or INVALID_ARGUMENT,
// never INTERNAL; another client is answered all along; nothing panics.
func TestHostileRequests(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-hostile", UserID: "mallory"})
	other := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-other", UserID: "olivia"})
	for i := range 30 {
		s.createSecret(admin, map[string]any{"name": fmt.Sprintf("s%02d", i), "resourceGroup": "DOMAIN",
			"tags": map[string]any{"env": "prod"}, "data": map[string]any{"token": "t"}})
	}
	otherID := s.createSecret(other, map[string]any{"name": "mine", "resourceGroup": "DOMAIN", "data": map[string]any{"token": "t"}})

	// Another client keeps asking for its secret the whole time.
	var served, slow atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		body := request(`query($id: ID!) { secret(secretId: $id) { name } }`, map[string]any{"id": otherID})
		for {
			select {
			case <-stop:
				return
			default:
			}
			r, took := postRaw(t, s.HTTP.URL, other, body)
			if len(r.Errors) > 0 {
				failures.Store(r.Errors[0].Message, true)
			}
			if took > refusedWithin {
				slow.Add(1)
			}
			served.Add(1)
			time.Sleep(20 * time.Millisecond)
		}
	}()

	nested := func(depth int, leaf string) string {
		return strings.Repeat("{a:", depth) + leaf + strings.Repeat("}", depth)
	}
	deepJSON := func(depth int) any {
		var v any = "x"
		for range depth {
			v = map[string]any{"a": v}
		}
		return v
	}
	inList := make([]any, 10000)
	for i := range inList {
		inList[i] = fmt.Sprintf("secret-%012x", i)
	}
	many := make([]any, 60000)
	for i := range many {
		many[i] = 1
	}
	sixPush := []any{}
	sixUnwind := []any{}
	for i := range 6 {
		sixPush = append(sixPush, map[string]any{"key": "secretId", "name": fmt.Sprintf("p%d", i), "operator": "push"})
	}
	stages := []any{map[string]any{"group": map[string]any{"fields": sixPush}}}
	for i := range 6 {
		sixUnwind = append(sixUnwind, map[string]any{"unwind": map[string]any{"path": fmt.Sprintf("p%d", i)}})
	}
	stages = append(stages, sixUnwind...)
	statQ := `query($q: Map!) { secretStat(query: $q) }`
	listQ := `query($q: QueryInput) { secrets(query: $q) { totalCount results { secretId } } }`

	cases := []struct {
		name  string
		token string
		body  []byte
		// ok: answered (cheaply) rather than refused.
		ok bool
	}{
		{"85,000 __typename, unauthenticated", "", request("{ "+strings.Repeat("__typename ", 85000)+"}", nil), false},
		{"85,000 __typename", admin, request("{ "+strings.Repeat("__typename ", 85000)+"}", nil), false},
		{"selection nested 3,000 deep", admin, request(strings.Repeat("{ a ", 3000)+strings.Repeat("}", 3000), nil), false},
		{"selection nested 40 deep", "", request(strings.Repeat("{ a ", 40)+strings.Repeat("}", 40), nil), false},
		{"1,000 aliases", admin, request("{ "+repeat(1000, func(i int) string { return fmt.Sprintf("a%d: __typename", i) })+"}", nil), false},
		{"30 aliased secretStat", admin, request("{ "+repeat(30, func(i int) string {
			return fmt.Sprintf(`a%d: secretStat(query: {aggregate: [{count: {}}]})`, i)
		})+"}", nil), false},
		{"11 root fields", admin, request("{ "+repeat(11, func(i int) string {
			return fmt.Sprintf(`s%d: secrets { totalCount }`, i)
		})+"}", nil), false},
		{"fragment bomb", admin, request(`query { ...F0 } `+repeat(20, func(i int) string {
			return fmt.Sprintf("fragment F%d on Query { ...F%d ...F%d }", i, i+1, i+1)
		})+" fragment F20 on Query { __typename }", nil), false},
		{"complexity: two pages of 1,000 with every field", admin, request(`query { a: secrets(query: {page: {limit: 1000}}) { results {
			secretId name schemaId provider tags resourceGroup domainId workspaceId projectId serviceAccountId trustedSecretId
			version createdBy updatedBy createdAt updatedAt } } b: secrets(query: {page: {limit: 1000}}) { results {
			secretId name schemaId provider tags resourceGroup domainId workspaceId projectId serviceAccountId trustedSecretId
			version createdBy updatedBy createdAt updatedAt } } }`, nil), false},
		{"input object nested 40 deep (literal)", admin, request(`{ secretStat(query: `+nested(40, "1")+`) }`, nil), false},
		{"input object nested 2,000 deep (literal)", admin, request(`{ secretStat(query: `+nested(2000, "1")+`) }`, nil), false},
		{"variables nested 40 deep", admin, request(statQ, map[string]any{"q": deepJSON(40)}), false},
		{"variables nested 5,000 deep", admin, request(statQ, map[string]any{"q": deepJSON(5000)}), false},
		{"variables with 60,000 values", admin, request(statQ, map[string]any{"q": map[string]any{"aggregate": many}}), false},
		{"variables over the body limit", admin, request(statQ, map[string]any{"q": map[string]any{"keyword": strings.Repeat("k", 2<<20)}}), false},
		{"regex of 100 KB", admin, request(listQ, map[string]any{"q": map[string]any{"filter": []any{
			map[string]any{"k": "name", "v": strings.Repeat("(a|b)*", 20000), "o": "regex"}}}}), false},
		{"regex_in of long regexes", admin, request(statQ, map[string]any{"q": map[string]any{"distinct": "name", "filter": []any{
			map[string]any{"k": "name", "v": []any{strings.Repeat("x", 300)}, "o": "regex_in"}}}}), false},
		{"10,000-entry in list", admin, request(listQ, map[string]any{"q": map[string]any{"filter": []any{
			map[string]any{"k": "secretId", "v": inList, "o": "in"}}}}), false},
		{"1,000-entry in list in stat", admin, request(statQ, map[string]any{"q": map[string]any{"aggregate": []any{map[string]any{"count": map[string]any{}}},
			"filter": []any{map[string]any{"k": "secretId", "v": inList[:1000], "o": "in"}}}}), false},
		{"200 filter conditions", admin, request(listQ, map[string]any{"q": map[string]any{"filter": func() []any {
			out := []any{}
			for range 200 {
				out = append(out, map[string]any{"k": "name", "v": "x", "o": "contain"})
			}
			return out
		}()}}), false},
		{"secretStat bomb: six push, six unwind over 30 secrets", admin, request(statQ, map[string]any{"q": map[string]any{"aggregate": stages}}), false},
		{"secretStat: 11 stages", admin, request(statQ, map[string]any{"q": map[string]any{"aggregate": func() []any {
			out := []any{}
			for range 11 {
				out = append(out, map[string]any{"skip": 0})
			}
			return out
		}()}}), false},
		{"secretStat: page.limit 100,000", admin, request(statQ, map[string]any{"q": map[string]any{"distinct": "name",
			"page": map[string]any{"limit": 100000}}}), false},
		{"page.limit 100,000", admin, request(listQ, map[string]any{"q": map[string]any{"page": map[string]any{"limit": 100000}}}), false},
		{"page.start 2,000,000,000", admin, request(listQ, map[string]any{"q": map[string]any{"page": map[string]any{"start": 2000000000}}}), false},
		{"page.limit 0: the default page", admin, request(listQ, map[string]any{"q": map[string]any{"page": map[string]any{"limit": 0}}}), true},
		{"no page: the default page", admin, request(listQ, nil), true},
		{"auditEvents first 100,000", admin, request(`{ auditEvents(first: 100000) { results { position } } }`, nil), false},
		{"unknown operator", admin, request(listQ, map[string]any{"q": map[string]any{"filter": []any{
			map[string]any{"k": "name", "v": "x", "o": "$where"}}}}), false},
		{"NUL byte in an id", admin, request(`query($id: ID!) { secret(secretId: $id) { name } }`, map[string]any{"id": "secret-\x00"}), false},
		{"NUL byte in a history id", admin, request(`query($id: ID!) { secretHistory(secretId: $id) { nextCursor } }`, map[string]any{"id": "secret-\x00"}), false},
		{"NUL byte in an audit filter", admin, request(`query($t: [String!]) { auditEvents(filter: {types: $t}) { nextCursor } }`, map[string]any{"t": []any{"\x00"}}), false},
		{"syntax error", "", []byte(`{"query": "{ secrets { "}`), false},
		{"not JSON", "", []byte(`{"query": `), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, took := postRaw(t, s.HTTP.URL, tc.token, tc.body)
			require.Less(t, took, refusedWithin, "answered in %s", took)
			for _, e := range r.Errors {
				require.NotEqual(t, "INTERNAL", e.Extensions["code"], "error %q", e.Message)
			}
			if tc.ok {
				require.Empty(t, r.Errors)
				var out struct{ Secrets struct{ TotalCount int } }
				r.Decode(t, &out)
				require.Equal(t, 30, out.Secrets.TotalCount)
				return
			}
			require.NotEmpty(t, r.Errors, "refused")
			require.Contains(t, []string{"RESOURCE_EXHAUSTED", "INVALID_ARGUMENT", "UNAUTHENTICATED"}, r.Code(), "error %q", r.Errors[0].Message)
			t.Logf("%s in %s: %s", r.Code(), took.Round(time.Millisecond), truncate(r.Errors[0].Message, 160))
		})
	}
	close(stop)
	wg.Wait()
	require.Positive(t, served.Load())
	require.Zero(t, slow.Load(), "the other client waited over %s", refusedWithin)
	failures.Range(func(k, _ any) bool { t.Errorf("the other client got an error: %v", k); return true })
	requireCleanLogs(t, s)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// TestDefaultPage: page.limit 0 or missing answers the default page (with
// the whole total), never the whole table.
func TestDefaultPage(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, func(c *server.Config) { c.Limits.Query.DefaultPageSize = 3 })
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	for i := range 5 {
		s.createSecret(admin, map[string]any{"name": fmt.Sprintf("s%d", i), "resourceGroup": "DOMAIN", "data": map[string]any{"token": "t"}})
	}
	var out struct {
		Secrets struct {
			TotalCount int
			Results    []struct{ Name string }
		}
	}
	for _, q := range []map[string]any{nil, {"page": map[string]any{"limit": 0}}, {"page": map[string]any{"start": 1}}} {
		s.mustOK(admin, `query($q: QueryInput) { secrets(query: $q) { totalCount results { name } } }`, map[string]any{"q": q}, &out)
		require.Equal(t, 5, out.Secrets.TotalCount)
		require.Len(t, out.Secrets.Results, 3)
	}
	// A stat over more rows than allowed is refused, not cut short.
	s2 := newStackWith(t, func(c *server.Config) { c.Limits.Query.MaxStatRows = 4 })
	admin2 := s2.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	for i := range 5 {
		s2.createSecret(admin2, map[string]any{"name": fmt.Sprintf("s%d", i), "resourceGroup": "DOMAIN", "data": map[string]any{"token": "t"}})
	}
	r := s2.do(admin2, `query($q: Map!) { secretStat(query: $q) }`, map[string]any{"q": map[string]any{"distinct": "name"}})
	require.Equal(t, "RESOURCE_EXHAUSTED", r.Code(), "%v", r.Errors)
	var stat struct{ SecretStat map[string]any }
	s2.mustOK(admin2, `query($q: Map!) { secretStat(query: $q) }`, map[string]any{"q": map[string]any{"distinct": "name",
		"page": map[string]any{"limit": 4}}}, &stat)
	require.Len(t, stat.SecretStat["results"], 4)
	require.EqualValues(t, 5, stat.SecretStat["total_count"])
}

// heavyStat is a statistics query that is within every static limit but
// costly over many rows: two push arrays unwound against each other (n²
// rows, numbered by a window function).
var heavyStat = map[string]any{"aggregate": []any{
	map[string]any{"group": map[string]any{"fields": []any{
		map[string]any{"key": "secretId", "name": "a", "operator": "push"},
		map[string]any{"key": "name", "name": "b", "operator": "push"}}}},
	map[string]any{"unwind": map[string]any{"path": "a"}},
	map[string]any{"unwind": map[string]any{"path": "b"}},
	map[string]any{"count": map[string]any{"name": "n"}},
}}

// seedRows writes n secrets of domain straight into the read model: the
// tests below need a costly query, not a realistic history.
func seedRows(t *testing.T, databaseURL, domain string, n int) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), databaseURL)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(context.Background(), `INSERT INTO secrets (secret_id, name, resource_group, domain_id, version,
		stream_version, created_by, updated_by, created_at, updated_at)
		SELECT 'secret-' || lpad(to_hex(g), 12, '0'), 'name-' || g, 'DOMAIN', $1, 1, 1, 'seed', 'seed', now(), now()
		FROM generate_series(1, $2::int) g`, domain, n)
	require.NoError(t, err)
}

// TestStatementTimeout: a query within the static limits that runs longer
// than the statement timeout is RESOURCE_EXHAUSTED, quickly.
func TestStatementTimeout(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, func(c *server.Config) { c.Limits.Query.StatementTimeout = 300 * time.Millisecond })
	seedRows(t, s.DatabaseURL, "d-heavy", 3000)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-heavy", UserID: "mallory"})
	r, took := postRaw(t, s.HTTP.URL, admin, request(`query($q: Map!) { secretStat(query: $q) }`, map[string]any{"q": heavyStat}))
	require.Equal(t, "RESOURCE_EXHAUSTED", r.Code(), "%v", r.Errors)
	require.Contains(t, r.Errors[0].Message, "statement timeout")
	require.Less(t, took, refusedWithin)
	requireCleanLogs(t, s)
}

// TestClientGoneCancelsQuery: when the client goes away, its query stops
// running in the database.
func TestClientGoneCancelsQuery(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, func(c *server.Config) { c.Limits.Query.StatementTimeout = time.Minute })
	seedRows(t, s.DatabaseURL, "d-heavy", 3000)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-heavy", UserID: "mallory"})
	pool, err := pgxpool.New(context.Background(), s.DatabaseURL)
	require.NoError(t, err)
	defer pool.Close()
	running := func() int {
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND query LIKE '%jsonb_array_elements%' AND pid <> pg_backend_pid()`).Scan(&n))
		return n
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.HTTP.URL+"/graphql",
		bytes.NewReader(request(`query($q: Map!) { secretStat(query: $q) }`, map[string]any{"q": heavyStat})))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return running() > 0 }, 10*time.Second, 20*time.Millisecond, "the query runs")
	cancel()
	<-done
	require.Eventually(t, func() bool { return running() == 0 }, refusedWithin, 20*time.Millisecond, "the query stops with its client")
}

// TestOneTenantCannotTakeEveryConnection: a caller flooding the server with
// heavy many-field queries holds at most its share of connections; another
// tenant is answered meanwhile, and the flood is refused, never INTERNAL.
func TestOneTenantCannotTakeEveryConnection(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, func(c *server.Config) {
		c.Limits.Query.StatementTimeout = 2 * time.Second
		c.Limits.GraphQL.CallerConcurrency = 2
		c.Limits.GraphQL.QueueWait = time.Second
		c.MaxConns = 16
	})
	seedRows(t, s.DatabaseURL, "d-heavy", 3000)
	attacker := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-heavy", UserID: "mallory"})
	other := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-other", UserID: "olivia"})
	otherID := s.createSecret(other, map[string]any{"name": "mine", "resourceGroup": "DOMAIN", "data": map[string]any{"token": "t"}})
	flood := request("query($q: Map!) { "+repeat(10, func(i int) string { return fmt.Sprintf("a%d: secretStat(query: $q)", i) })+" }",
		map[string]any{"q": heavyStat})
	var wg sync.WaitGroup
	codes := make(chan string, 1000)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, _ := postRaw(t, s.HTTP.URL, attacker, flood)
			for _, e := range r.Errors {
				c, _ := e.Extensions["code"].(string)
				codes <- c
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	for range 5 {
		r, took := postRaw(t, s.HTTP.URL, other, request(`query($id: ID!) { secret(secretId: $id) { name } }`, map[string]any{"id": otherID}))
		require.Empty(t, r.Errors)
		require.Less(t, took, refusedWithin)
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	close(codes)
	n := 0
	for c := range codes {
		n++
		require.Equal(t, "RESOURCE_EXHAUSTED", c)
	}
	require.Positive(t, n)
}

// TestIntrospectionAndGraphiQLSwitchedOff: both can be disabled.
func TestIntrospectionAndGraphiQLSwitchedOff(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, func(c *server.Config) { c.DisableIntrospection, c.DisableGraphiQL = true, true })
	r := s.do("", `{ __schema { queryType { name } } }`, nil)
	require.Equal(t, "PERMISSION_DENIED", r.Code(), "%v", r.Errors)
	resp, err := http.Get(s.HTTP.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	on := newStack(t)
	var out struct {
		Schema struct{ QueryType struct{ Name string } } `json:"__schema"`
	}
	on.mustOK("", introspectionQuery, nil, nil)
	on.mustOK("", `{ __schema { queryType { name } } }`, nil, &out)
	require.Equal(t, "Query", out.Schema.QueryType.Name)
}

// introspectionQuery is graphql-js's getIntrospectionQuery(), which GraphiQL
// sends: it must pass the depth and field limits.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name } } } } } } } }
}`

// TestRequestDeadline: a request is cut at the configured deadline, with
// RESOURCE_EXHAUSTED, even when its statements may run longer.
func TestRequestDeadline(t *testing.T) {
	t.Parallel()
	s := newStackWith(t, func(c *server.Config) {
		c.Limits.RequestTimeout = 500 * time.Millisecond
		c.Limits.Query.StatementTimeout = time.Minute
	})
	seedRows(t, s.DatabaseURL, "d-heavy", 3000)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-heavy", UserID: "mallory"})
	r, took := postRaw(t, s.HTTP.URL, admin, request(`query($q: Map!) { secretStat(query: $q) }`, map[string]any{"q": heavyStat}))
	require.Equal(t, "RESOURCE_EXHAUSTED", r.Code(), "%v", r.Errors)
	require.Less(t, took, refusedWithin)
	requireCleanLogs(t, s)
}
