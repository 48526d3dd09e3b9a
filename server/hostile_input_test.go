package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/projections"
)

// hostileBody is a request body written by hand: query goes in as a JSON
// string with only backslashes, quotes and line breaks escaped (every other
// byte as it is, invalid UTF-8 included), vars as raw JSON ("" for none).
func hostileBody(query, vars string) []byte {
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(query)
	b := `{"query":"` + q + `"`
	if vars != "" {
		b += `,"variables":` + vars
	}
	return []byte(b + "}")
}

// hostileJSON encodes v (encoding/json writes U+0000 as \u0000).
func hostileJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// hostileNested is tags nested levels objects deep (the tags object itself
// is level 1), the innermost holding leaf.
func hostileNested(levels int, leaf any) map[string]any {
	v := map[string]any{"k": leaf}
	for range levels - 1 {
		v = map[string]any{"k": v}
	}
	return v
}

// hostileNestedJSON is hostileNested written as raw JSON around a raw leaf.
func hostileNestedJSON(levels int, leaf string) string {
	return strings.Repeat(`{"k":`, levels) + leaf + strings.Repeat(`}`, levels)
}

// hostilePost posts body and decodes the answer, timing it; it never
// fails the test itself (the caller checks).
func hostilePost(t *testing.T, base, token string, body []byte) (gqlResponse, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	require.NoError(t, err)
	var out gqlResponse
	require.NoError(t, json.Unmarshal(raw, &out), "status %d, body %q", resp.StatusCode, raw)
	out.Status = resp.StatusCode
	return out, took
}

const (
	hostileCreateSecret = `mutation($in: CreateSecretInput!) { createSecret(input: $in) { secretId name tags version } }`
	hostileUpdateSecret = `mutation($in: UpdateSecretInput!) { updateSecret(input: $in) { secretId name tags version } }`
	hostileSecretData   = `mutation($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { secretId name tags version } }`
	hostileCreateUser   = `mutation($in: CreateUserSecretInput!) { createUserSecret(input: $in) { userSecretId name tags version } }`
	hostileUpdateUser   = `mutation($in: UpdateUserSecretInput!) { updateUserSecret(input: $in) { userSecretId name tags version } }`
	hostileUserData     = `mutation($in: UpdateUserSecretDataInput!) { updateUserSecretData(input: $in) { userSecretId name tags version } }`
)

// hostileCase is one hostile request.
type hostileCase struct {
	name  string
	token string
	body  []byte
	// field: the request must be refused with INVALID_ARGUMENT naming it;
	// "" when it must succeed.
	field string
	// invalidUTF8: the request carries invalid UTF-8, which Go's JSON
	// decoding turns into U+FFFD: refused naming field, or stored with
	// U+FFFD (want), the same way for every such case.
	invalidUTF8 bool
	// want: on success, the name and tags the resource must then have
	// (answer and read model); wantData: the value secretData must return.
	want     map[string]any
	wantData map[string]any
}

// TestHostileStringsAndNumbers: text PostgreSQL cannot store (U+0000,
// invalid UTF-8), numbers beyond float64, tags nested too deep or too large
// are refused with INVALID_ARGUMENT naming the field (never INTERNAL) and
// append nothing, or are stored and round-trip exactly (values, which are
// sealed, may hold U+0000). After each, another tenant's write and the
// audit trail answer within a second; afterwards the read models equal a
// replay, no projection is failing and the service log holds no value.
func TestHostileStringsAndNumbers(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-hostile", UserID: "mallory-admin"})
	user := s.token(auth.Identity{Role: auth.RoleUser, DomainID: "d-hostile", UserID: "mallory"})
	system := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "d-hostile"})
	bystander := s.token(auth.Identity{Role: auth.RoleUser, DomainID: "d-bystander", UserID: "bob"})
	bystanderAdmin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d-bystander", UserID: "bea"})

	// Canaries: one in every refused request's value, one in the values
	// that must be stored. Neither may reach the service log.
	refusedCanary := canaryNew(t, "refused")
	storedCanary := canaryNew(t, "stored")
	secretID := s.createSecret(admin, map[string]any{"name": "target", "resourceGroup": "DOMAIN",
		"data": map[string]any{"token": storedCanary}})
	userSecretID := s.createUserSecret(user, map[string]any{"name": "target", "data": map[string]any{"token": storedCanary}})
	// Renamed with invalid UTF-8, which may be stored (as U+FFFD).
	utf8TargetID := s.createSecret(admin, map[string]any{"name": "utf8-target", "resourceGroup": "DOMAIN",
		"data": map[string]any{"token": storedCanary}})

	in := func(fields map[string]any) string { return hostileJSON(map[string]any{"in": fields}) }
	secretIn := func(extra map[string]any) string {
		f := map[string]any{"name": "s", "resourceGroup": "DOMAIN", "data": map[string]any{"token": refusedCanary}}
		for k, v := range extra {
			f[k] = v
		}
		return in(f)
	}
	userIn := func(extra map[string]any) string {
		f := map[string]any{"name": "u", "data": map[string]any{"token": refusedCanary}}
		for k, v := range extra {
			f[k] = v
		}
		return in(f)
	}
	// Raw JSON inputs, for what encoding/json would escape or refuse.
	rawSecretIn := func(fields string) string {
		return `{"in":{"resourceGroup":"DOMAIN","data":{"token":"` + refusedCanary + `"},` + fields + `}}`
	}
	rawUserIn := func(fields string) string {
		return `{"in":{"data":{"token":"` + refusedCanary + `"},` + fields + `}}`
	}
	huge := strings.Repeat("x", 70<<10)
	manyKeys := map[string]any{}
	for i := range 2000 {
		manyKeys[fmt.Sprintf("key-%04d", i)] = strings.Repeat("v", 40)
	}
	nulData := map[string]any{"password": storedCanary + "\x00after-nul", "k\x00ey": "\x00", "nested": map[string]any{"a\x00": []any{"\x00x"}}}

	cases := []hostileCase{
		// U+0000 in text.
		{name: "NUL in a secret name", token: admin, body: hostileBody(hostileCreateSecret, secretIn(map[string]any{"name": "a\x00b"})), field: "name"},
		{name: "NUL in a secret name (GraphQL literal)", token: admin, field: "name", body: hostileBody(
			`mutation { createSecret(input: {name: "a\u0000b", resourceGroup: DOMAIN, data: {token: "`+refusedCanary+`"}}) { secretId } }`, "")},
		{name: "NUL in a tag key", token: admin, body: hostileBody(hostileCreateSecret, secretIn(map[string]any{"tags": map[string]any{"k\x00": "v"}})), field: "tags"},
		{name: "NUL in a tag value", token: admin, body: hostileBody(hostileCreateSecret, secretIn(map[string]any{"tags": map[string]any{"k": "v\x00"}})), field: "tags"},
		{name: "NUL in a nested tag value", token: admin, body: hostileBody(hostileCreateSecret, secretIn(map[string]any{"tags": map[string]any{
			"k": map[string]any{"l": []any{"x", "y\x00"}}}})), field: "tags"},
		{name: "NUL in a nested tag key", token: admin, body: hostileBody(hostileCreateSecret, secretIn(map[string]any{"tags": map[string]any{
			"k": map[string]any{"l\x00": 1}}})), field: "tags"},
		{name: "NUL in a tag value (GraphQL literal)", token: admin, field: "tags", body: hostileBody(
			`mutation { createSecret(input: {name: "s", resourceGroup: DOMAIN, tags: {k: "v\u0000"}, data: {token: "`+refusedCanary+`"}}) { secretId } }`, "")},
		{name: "NUL in a workspaceId", token: admin, body: hostileBody(hostileCreateSecret, secretIn(map[string]any{
			"resourceGroup": "WORKSPACE", "workspaceId": "w\x00"})), field: "workspaceId"},
		{name: "NUL in a schemaId", token: admin, body: hostileBody(hostileCreateSecret, secretIn(map[string]any{"schemaId": "aws\x00"})), field: "schemaId"},
		{name: "NUL in updateSecret name", token: admin, body: hostileBody(hostileUpdateSecret, in(map[string]any{"secretId": secretID, "name": "x\x00"})), field: "name"},
		{name: "NUL in updateSecret tags", token: admin, body: hostileBody(hostileUpdateSecret, in(map[string]any{"secretId": secretID,
			"tags": map[string]any{"k": map[string]any{"l": "\x00"}}})), field: "tags"},
		{name: "NUL in a user secret name", token: user, body: hostileBody(hostileCreateUser, userIn(map[string]any{"name": "\x00"})), field: "name"},
		{name: "NUL in a user secret tag key", token: user, body: hostileBody(hostileCreateUser, userIn(map[string]any{"tags": map[string]any{"\x00": "v"}})), field: "tags"},
		{name: "NUL in a user secret tag value", token: user, body: hostileBody(hostileCreateUser, userIn(map[string]any{"tags": map[string]any{"k": "v\x00"}})), field: "tags"},
		{name: "NUL in updateUserSecret name", token: user, body: hostileBody(hostileUpdateUser, in(map[string]any{"userSecretId": userSecretID, "name": "x\x00y"})), field: "name"},
		{name: "NUL in updateUserSecret tags", token: user, body: hostileBody(hostileUpdateUser, in(map[string]any{"userSecretId": userSecretID,
			"tags": map[string]any{"k": []any{"\x00"}}})), field: "tags"},

		// Invalid UTF-8, as raw bytes in the body (and one invalid UTF-16 escape).
		{name: "invalid UTF-8 in a secret name", token: admin, invalidUTF8: true, field: "name",
			body: hostileBody(hostileCreateSecret, rawSecretIn(`"name":"bad`+"\xff"+`name"`)), want: map[string]any{"name": "bad\uFFFDname"}},
		{name: "invalid UTF-8 (truncated sequence) in a secret name", token: admin, invalidUTF8: true, field: "name",
			body: hostileBody(hostileCreateSecret, rawSecretIn(`"name":"cut`+"\xc3"+`"`)), want: map[string]any{"name": "cut\uFFFD"}},
		{name: "invalid UTF-8 in a tag key", token: admin, invalidUTF8: true, field: "tags",
			body: hostileBody(hostileCreateSecret, rawSecretIn(`"name":"utf8-key","tags":{"k`+"\xfe\xfe"+`":"v"}`)),
			want: map[string]any{"name": "utf8-key", "tags": map[string]any{"k\uFFFD\uFFFD": "v"}}},
		{name: "invalid UTF-8 in a tag value", token: admin, invalidUTF8: true, field: "tags",
			body: hostileBody(hostileCreateSecret, rawSecretIn(`"name":"utf8-value","tags":{"k":"`+"\xc0\xaf"+`"}`)),
			want: map[string]any{"name": "utf8-value", "tags": map[string]any{"k": "\uFFFD\uFFFD"}}},
		{name: "invalid UTF-8 in a nested tag value", token: admin, invalidUTF8: true, field: "tags",
			body: hostileBody(hostileCreateSecret, rawSecretIn(`"name":"utf8-nested","tags":{"k":{"l":["`+"\xed\xa0\x80"+`"]}}`)),
			want: map[string]any{"name": "utf8-nested", "tags": map[string]any{"k": map[string]any{"l": []any{"\uFFFD\uFFFD\uFFFD"}}}}},
		{name: "invalid UTF-16 escape (lone surrogate) in a tag value", token: admin, invalidUTF8: true, field: "tags",
			body: hostileBody(hostileCreateSecret, rawSecretIn(`"name":"utf16","tags":{"k":"\ud800"}`)),
			want: map[string]any{"name": "utf16", "tags": map[string]any{"k": "\uFFFD"}}},
		{name: "invalid UTF-8 in a secret name (GraphQL literal)", token: admin, invalidUTF8: true, field: "name",
			body: hostileBody(`mutation { createSecret(input: {name: "lit`+"\xff"+`", resourceGroup: DOMAIN, data: {token: "`+refusedCanary+`"}}) { secretId name tags } }`, ""),
			want: map[string]any{"name": "lit\uFFFD"}},
		{name: "invalid UTF-8 in updateSecret name", token: admin, invalidUTF8: true, field: "name",
			body: hostileBody(hostileUpdateSecret, `{"in":{"secretId":"`+utf8TargetID+`","name":"upd`+"\xff"+`"}}`), want: map[string]any{"name": "upd\uFFFD"}},
		{name: "invalid UTF-8 in a user secret name", token: user, invalidUTF8: true, field: "name",
			body: hostileBody(hostileCreateUser, rawUserIn(`"name":"u`+"\xff"+`"`)), want: map[string]any{"name": "u\uFFFD"}},
		{name: "invalid UTF-8 in a user secret tag value", token: user, invalidUTF8: true, field: "tags",
			body: hostileBody(hostileCreateUser, rawUserIn(`"name":"u-tag","tags":{"k":"`+"\x80"+`"}`)),
			want: map[string]any{"name": "u-tag", "tags": map[string]any{"k": "\uFFFD"}}},

		// Numbers beyond float64, written literally.
		{name: "1e400 in tags", token: admin, field: "tags", body: hostileBody(hostileCreateSecret, rawSecretIn(`"name":"n","tags":{"n":1e400}`))},
		{name: "-1e400 in tags", token: admin, field: "tags", body: hostileBody(hostileCreateSecret, rawSecretIn(`"name":"n","tags":{"n":-1e400}`))},
		{name: "1e400 in a nested tag", token: admin, field: "tags", body: hostileBody(hostileCreateSecret, rawSecretIn(`"name":"n","tags":{"a":{"b":[1,1e400]}}`))},
		{name: "1e400 in data", token: admin, field: "data", body: hostileBody(hostileCreateSecret,
			`{"in":{"name":"n","resourceGroup":"DOMAIN","data":{"token":"`+refusedCanary+`","n":1e400}}}`)},
		{name: "-1e400 in nested data", token: admin, field: "data", body: hostileBody(hostileCreateSecret,
			`{"in":{"name":"n","resourceGroup":"DOMAIN","data":{"token":"`+refusedCanary+`","n":{"m":[-1e400]}}}}`)},
		{name: "1e400 in updateSecretData", token: admin, field: "data", body: hostileBody(hostileSecretData,
			`{"in":{"secretId":"`+secretID+`","data":{"token":"`+refusedCanary+`","n":1e400}}}`)},
		{name: "-1e400 in updateSecret tags", token: admin, field: "tags", body: hostileBody(hostileUpdateSecret,
			`{"in":{"secretId":"`+secretID+`","tags":{"n":-1e400}}}`)},
		{name: "1e400 in user secret tags", token: user, field: "tags", body: hostileBody(hostileCreateUser, rawUserIn(`"name":"n","tags":{"n":1e400}`))},
		{name: "1e400 in user secret data", token: user, field: "data", body: hostileBody(hostileCreateUser,
			`{"in":{"name":"n","data":{"token":"`+refusedCanary+`","n":1e400}}}`)},
		{name: "-1e400 in updateUserSecretData", token: user, field: "data", body: hostileBody(hostileUserData,
			`{"in":{"userSecretId":"`+userSecretID+`","data":{"token":"`+refusedCanary+`","n":-1e400}}}`)},

		// Tags nested too deep.
		{name: "tags nested 9 levels", token: admin, field: "tags", body: hostileBody(hostileCreateSecret, secretIn(map[string]any{"tags": hostileNested(9, "x")}))},
		{name: "tags nested 10 levels", token: admin, field: "tags", body: hostileBody(hostileCreateSecret, secretIn(map[string]any{"tags": hostileNested(10, 1)}))},
		{name: "tags nested 12 levels (raw)", token: admin, field: "tags", body: hostileBody(hostileCreateSecret, rawSecretIn(`"name":"deep","tags":`+hostileNestedJSON(12, `"x"`)))},
		{name: "tags nested 9 levels in arrays", token: admin, field: "tags", body: hostileBody(hostileCreateSecret, rawSecretIn(
			`"name":"deep","tags":{"k":`+strings.Repeat("[", 8)+`"x"`+strings.Repeat("]", 8)+`}`))},
		{name: "updateSecret tags nested 9 levels", token: admin, field: "tags", body: hostileBody(hostileUpdateSecret,
			in(map[string]any{"secretId": secretID, "tags": hostileNested(9, "x")}))},
		{name: "user secret tags nested 9 levels", token: user, field: "tags", body: hostileBody(hostileCreateUser, userIn(map[string]any{"tags": hostileNested(9, "x")}))},

		// Tags too large.
		{name: "a 70 KiB tag value", token: admin, field: "tags", body: hostileBody(hostileCreateSecret, secretIn(map[string]any{"tags": map[string]any{"k": huge}}))},
		{name: "2,000 tags of 40 bytes", token: admin, field: "tags", body: hostileBody(hostileCreateSecret, secretIn(map[string]any{"tags": manyKeys}))},
		{name: "updateSecret with a 70 KiB tag", token: admin, field: "tags", body: hostileBody(hostileUpdateSecret,
			in(map[string]any{"secretId": secretID, "tags": map[string]any{"k": huge}}))},
		{name: "user secret with a 70 KiB tag", token: user, field: "tags", body: hostileBody(hostileCreateUser, userIn(map[string]any{"tags": map[string]any{"k": huge}}))},

		// What must be accepted and round-trip exactly.
		{name: "NUL in a secret value", token: admin, body: hostileBody(hostileCreateSecret, in(map[string]any{"name": "nul-value",
			"resourceGroup": "DOMAIN", "data": nulData})), want: map[string]any{"name": "nul-value", "tags": map[string]any{}}, wantData: nulData},
		{name: "NUL in updateSecretData", token: admin, body: hostileBody(hostileSecretData, in(map[string]any{"secretId": secretID, "data": nulData})),
			want: map[string]any{"name": "target"}, wantData: nulData},
		{name: "NUL in a user secret value", token: user, body: hostileBody(hostileCreateUser, in(map[string]any{"name": "nul-user-value", "data": nulData})),
			want: map[string]any{"name": "nul-user-value"}, wantData: nulData},
		{name: "NUL in updateUserSecretData", token: user, body: hostileBody(hostileUserData, in(map[string]any{"userSecretId": userSecretID, "data": nulData})),
			want: map[string]any{"name": "target"}, wantData: nulData},
		{name: "tags 8 levels deep, counting the leaf", token: admin, body: hostileBody(hostileCreateSecret, in(map[string]any{"name": "deep-ok",
			"resourceGroup": "DOMAIN", "tags": hostileNested(7, "x"), "data": map[string]any{"token": storedCanary}})),
			want: map[string]any{"name": "deep-ok", "tags": hostileNested(7, "x")}},
		{name: "1e308 and -1e308 in tags and data", token: admin, body: hostileBody(hostileCreateSecret,
			`{"in":{"name":"big","resourceGroup":"DOMAIN","tags":{"n":1e308,"m":-1e308},"data":{"token":"`+storedCanary+`","n":1e308}}}`),
			want: map[string]any{"name": "big", "tags": map[string]any{"n": 1e308, "m": -1e308}}, wantData: map[string]any{"token": storedCanary, "n": 1e308}},
		{name: "a tag just under 64 KiB", token: admin, body: hostileBody(hostileCreateSecret, in(map[string]any{"name": "wide",
			"resourceGroup": "DOMAIN", "tags": map[string]any{"k": huge[:60<<10]}, "data": map[string]any{"token": storedCanary}})),
			want: map[string]any{"name": "wide", "tags": map[string]any{"k": huge[:60<<10]}}},
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	logSize := func() int64 {
		var n int64
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM event_log`).Scan(&n))
		return n
	}

	utf8Outcomes := map[string][]string{} // "refused" / "stored" -> cases
	bystanderWrites := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := logSize()
			r, took := hostilePost(t, s.HTTP.URL, tc.token, tc.body)
			t.Logf("%s: %s, errors %+v", tc.name, took.Round(time.Millisecond), r.Errors)
			for _, e := range r.Errors {
				require.NotEqual(t, "INTERNAL", e.Extensions["code"], "error %q", e.Message)
			}
			refused := len(r.Errors) > 0
			switch {
			case tc.invalidUTF8 && refused:
				utf8Outcomes["refused"] = append(utf8Outcomes["refused"], tc.name)
			case tc.invalidUTF8:
				utf8Outcomes["stored as U+FFFD"] = append(utf8Outcomes["stored as U+FFFD"], tc.name)
			}
			if refused {
				require.True(t, tc.field != "", "must be accepted, got %+v", r.Errors)
				require.Len(t, r.Errors, 1, "%+v", r.Errors)
				require.Equal(t, "INVALID_ARGUMENT", r.Code(), "%+v", r.Errors)
				require.Contains(t, r.Errors[0].Message, tc.field, "the message names the field")
				require.Equal(t, before, logSize(), "a refused request appended to the log")
			} else {
				require.True(t, tc.field == "" || tc.invalidUTF8, "must be refused naming %s, got %s", tc.field, r.Data)
				hostileRoundTrip(t, s, r, tc, admin, user, system)
			}

			// Everyone else is still served, promptly.
			bystanderWrites++
			w, took := hostilePost(t, s.HTTP.URL, bystander, hostileBody(hostileCreateUser, in(map[string]any{
				"name": fmt.Sprintf("after-%d", bystanderWrites), "tags": map[string]any{"case": tc.name}, "data": map[string]any{"token": "t"}})))
			require.Empty(t, w.Errors, "another tenant's write right after")
			require.Less(t, took, time.Second, "another tenant's write right after")
			for _, tok := range []string{bystanderAdmin, admin} {
				a, took := hostilePost(t, s.HTTP.URL, tok, hostileBody(
					`{ auditEvents(first: 5, newestFirst: true) { results { position type } nextCursor } }`, ""))
				require.Empty(t, a.Errors, "audit query right after")
				require.Less(t, took, time.Second, "audit query right after")
			}
			l, took := hostilePost(t, s.HTTP.URL, admin, hostileBody(`{ secrets { totalCount } userSecrets { totalCount } }`, ""))
			require.Empty(t, l.Errors, "lists right after")
			require.Less(t, took, time.Second, "lists right after")
		})
	}

	// Invalid UTF-8 is handled one way throughout.
	t.Logf("invalid UTF-8: %v", utf8Outcomes)
	require.Len(t, utf8Outcomes, 1, "invalid UTF-8 handled inconsistently: %v", utf8Outcomes)

	// The bystander's writes are all there, and its audit trail holds them.
	var list struct{ UserSecrets struct{ TotalCount int } }
	s.mustOK(bystander, `{ userSecrets { totalCount } }`, nil, &list)
	require.Equal(t, bystanderWrites, list.UserSecrets.TotalCount)

	// Nothing is failing, and the read models equal a replay of the log.
	require.Empty(t, s.Server.Runner.Failing())
	resp, err := http.Get(s.HTTP.URL + "/readyz")
	require.NoError(t, err)
	ready, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "ready\n", string(ready))
	report, err := projections.RebuildOnline(ctx, s.Server.Pool, projections.RebuildOptions{Check: true})
	require.NoError(t, err)
	require.Empty(t, report.Differences)

	// The service log never holds a value.
	logs := []byte(s.Logs.String())
	require.Empty(t, canaryFind(logs, canaryForms(refusedCanary, storedCanary)), "values in the service log")
	requireCleanLogs(t, s)
}

// hostileRoundTrip checks an accepted hostile request: the answer and the
// read model show want, and the value reads back exactly as wantData.
func hostileRoundTrip(t *testing.T, s *stack, r gqlResponse, tc hostileCase, admin, user, system string) {
	t.Helper()
	var data map[string]map[string]any
	r.Decode(t, &data)
	require.Len(t, data, 1)
	var answer map[string]any
	for _, v := range data {
		answer = v
	}
	get, reveal, token, id := `query($id: ID!) { secret(secretId: $id) { name tags } }`, `query($id: ID!) { secretData(secretId: $id) { data } }`, admin, answer["secretId"]
	if id == nil {
		get, reveal, token, id = `query($id: ID!) { userSecret(userSecretId: $id) { name tags } }`, `query($id: ID!) { userSecretData(userSecretId: $id) { data } }`, user, answer["userSecretId"]
	}
	require.NotNil(t, id, "answer %v", answer)
	var stored map[string]map[string]any
	s.mustOK(token, get, map[string]any{"id": id}, &stored)
	for _, v := range stored {
		for field, want := range tc.want {
			require.Equal(t, want, answer[field], "answered %s", field)
			require.Equal(t, want, v[field], "stored %s", field)
		}
	}
	if tc.wantData != nil {
		var revealed map[string]struct{ Data map[string]any }
		s.mustOK(system, reveal, map[string]any{"id": id}, &revealed)
		for _, v := range revealed {
			require.Equal(t, tc.wantData, v.Data, "the value must round-trip exactly")
		}
	}
}
