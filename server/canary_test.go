package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// canaryNew is a random marker that cannot occur anywhere by accident.
func canaryNew(t *testing.T, label string) string {
	t.Helper()
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "CANARY-" + label + "-" + hex.EncodeToString(b)
}

// canaryForm is one encoding of a canary that must never be stored or shown.
type canaryForm struct {
	canary string
	how    string
	text   string
}

// canaryForms lists the plaintext and every encoding we look for: hex (both
// cases) and base64 (std and URL alphabets) at each of the three byte
// alignments a value can have inside a longer base64 stream. For an
// alignment only the characters that depend on canary bytes alone are kept,
// so the form matches wherever the canary sits in the encoded stream.
func canaryForms(canaries ...string) []canaryForm {
	var out []canaryForm
	for _, c := range canaries {
		out = append(out,
			canaryForm{c, "plain", c},
			canaryForm{c, "hex", hex.EncodeToString([]byte(c))},
			canaryForm{c, "HEX", strings.ToUpper(hex.EncodeToString([]byte(c)))},
		)
		// The random tail alone: catches truncation or a changed prefix.
		if i := strings.LastIndexByte(c, '-'); i > 0 {
			out = append(out, canaryForm{c, "random tail", c[i+1:]})
		}
		for skip := 0; skip < 3; skip++ {
			// Canary bytes from offset skip on, cut to whole 3-byte groups: when
			// c[skip] starts a base64 group, these characters appear verbatim.
			body := []byte(c)[skip:]
			body = body[:len(body)/3*3]
			std := base64.RawStdEncoding.EncodeToString(body)
			urlForm := base64.RawURLEncoding.EncodeToString(body)
			out = append(out, canaryForm{c, "base64 std, offset " + strconv.Itoa(skip), std})
			if urlForm != std {
				out = append(out, canaryForm{c, "base64 url, offset " + strconv.Itoa(skip), urlForm})
			}
		}
	}
	return out
}

// canaryFind returns a description of every form found in haystack.
func canaryFind(haystack []byte, forms []canaryForm) []string {
	var found []string
	for _, f := range forms {
		if i := bytes.Index(haystack, []byte(f.text)); i >= 0 {
			lo, hi := max(0, i-80), min(len(haystack), i+len(f.text)+80)
			found = append(found, f.how+" of "+f.canary+" near: "+strconv.Quote(string(haystack[lo:hi])))
		}
	}
	return found
}

// canaryPost sends a raw body to /graphql and returns the status and body.
func canaryPost(t *testing.T, base, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, out
}

func canaryRequestBody(t *testing.T, query string, vars map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(t, err)
	return string(b)
}

// canaryPgBinDir is the newest PostgreSQL bin directory (the one localpg runs).
func canaryPgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		a, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		b, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return a > b
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_dump")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("pg_dump"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

// canaryDumpRows reads every row of every table of every schema of the
// database as text, plus the query texts the server has left in
// pg_stat_activity.
func canaryDumpRows(t *testing.T, databaseURL string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)

	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'm') ORDER BY 1, 2`)
	require.NoError(t, err)
	type table struct{ schema, name string }
	var tables []table
	for rows.Next() {
		var tb table
		require.NoError(t, rows.Scan(&tb.schema, &tb.name))
		tables = append(tables, tb)
	}
	require.NoError(t, rows.Err())

	var out bytes.Buffer
	userTables := 0
	for _, tb := range tables {
		system := tb.schema == "pg_catalog" || tb.schema == "information_schema" || strings.HasPrefix(tb.schema, "pg_toast")
		if !system {
			userTables++
		}
		ident := pgx.Identifier{tb.schema, tb.name}.Sanitize()
		rows, err := conn.Query(ctx, "SELECT t::text FROM "+ident+" t")
		if err != nil {
			require.True(t, system, "read %s: %v", ident, err)
			t.Logf("skipping %s: %v", ident, err)
			continue
		}
		fmt.Fprintf(&out, "-- %s\n", ident)
		for rows.Next() {
			var s string
			require.NoError(t, rows.Scan(&s))
			out.WriteString(s)
			out.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			require.True(t, system, "read %s: %v", ident, err)
			t.Logf("skipping %s: %v", ident, err)
		}
	}
	require.NotZero(t, userTables, "the dump found no application table")

	rows, err = conn.Query(ctx, `SELECT coalesce(query, '') FROM pg_stat_activity WHERE datname = current_database()`)
	require.NoError(t, err)
	out.WriteString("-- pg_stat_activity\n")
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out.WriteString(s)
		out.WriteByte('\n')
	}
	require.NoError(t, rows.Err())
	return out.Bytes()
}

// canaryPgDump runs pg_dump on the database (nil when pg_dump is missing).
func canaryPgDump(t *testing.T, databaseURL string) []byte {
	t.Helper()
	bin := canaryPgBinDir()
	if bin == "" {
		t.Log("pg_dump not found: relying on the row dump alone")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The cluster trusts local TCP connections as "postgres", so pg_dump can
	// run as the current user (root included).
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "pg_dump"), "--no-owner", "--no-privileges", "--dbname="+databaseURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "pg_dump: %s", stderr.String())
	require.True(t, bytes.Contains(out, []byte("event_log")), "pg_dump output lacks the log table")
	return out
}

// canaryClusterFiles returns the raw on-disk bytes of this database's heap
// files, the WAL and the server's own log: what an attacker with the disk
// (or a backup) sees, dead tuples included.
func canaryClusterFiles(t *testing.T, databaseURL string) map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var dataDir string
	var dbOID uint32
	require.NoError(t, conn.QueryRow(ctx, `SELECT current_setting('data_directory'),
		(SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&dataDir, &dbOID))
	// Write dirty buffers and the WAL out so the files hold everything committed.
	_, err = conn.Exec(ctx, "CHECKPOINT")
	require.NoError(t, err)

	files := map[string][]byte{}
	for _, pattern := range []string{
		filepath.Join(dataDir, "base", strconv.FormatUint(uint64(dbOID), 10), "*"),
		filepath.Join(dataDir, "pg_wal", "*"),
		filepath.Join(filepath.Dir(dataDir), "postgres.log"),
	} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Logf("skipping %s: %v", p, err)
				continue
			}
			files[p] = b
		}
	}
	return files
}

// TestCanaryNeverStoredInPlaintext sends random canaries as secret values
// through every write and read path, and through requests that fail, then
// looks for them (plain, hex, base64) in the whole database, the raw cluster
// files, the server's log and every error the API returned.
func TestCanaryNeverStoredInPlaintext(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"})
	system := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "domain-a"})
	bob := s.token(auth.Identity{Role: auth.RoleUser, DomainID: "domain-a", UserID: "bob"})
	member := s.token(auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: "domain-a", WorkspaceID: "ws-1",
		UserID: "mallory", Projects: []string{"p-1"}})

	var (
		awsKey      = canaryNew(t, "AWS")
		plainValue  = canaryNew(t, "PLAIN")
		nestedValue = canaryNew(t, "NESTED")
		userValue   = canaryNew(t, "USER")
		updated     = canaryNew(t, "UPDATED")
		userUpdated = canaryNew(t, "USERUPDATED")
		rejected    = canaryNew(t, "REJECTED")
		trustedKey  = canaryNew(t, "TRUSTED")
		trustedNew  = canaryNew(t, "TRUSTEDUPDATED")
		linkedOwn   = canaryNew(t, "LINKED")
		canaries    = []string{awsKey, plainValue, nestedValue, userValue, updated, userUpdated, rejected, trustedKey, trustedNew, linkedOwn}
		forms       = canaryForms(canaries...)
	)
	suffix := strings.TrimPrefix(awsKey, "CANARY-AWS-")[:8]
	awsName := "canary-aws-name-" + suffix
	plainName := "canary-plain-name-" + suffix
	userName := "canary-user-name-" + suffix
	trustedName := "canary-trusted-name-" + suffix

	// Every response body except the intended reveals must be free of canaries.
	var bodies [][]byte
	send := func(token, query string, vars map[string]any) gqlResponse {
		t.Helper()
		status, body := canaryPost(t, s.HTTP.URL, token, canaryRequestBody(t, query, vars))
		bodies = append(bodies, body)
		var r gqlResponse
		require.NoError(t, json.Unmarshal(body, &r), "status %d body %s", status, body)
		r.Status = status
		return r
	}
	mustSend := func(token, query string, vars map[string]any, v any) {
		t.Helper()
		r := send(token, query, vars)
		require.Empty(t, r.Errors, "query %s", query)
		if v != nil {
			r.Decode(t, v)
		}
	}
	createSecret := func(in map[string]any) string {
		t.Helper()
		var out struct {
			CreateSecret struct{ SecretID string } `json:"createSecret"`
		}
		mustSend(admin, createSecretMutation, map[string]any{"in": in}, &out)
		require.NotEmpty(t, out.CreateSecret.SecretID)
		return out.CreateSecret.SecretID
	}

	// 1. Writes: a schema-validated secret, a schemaless one, a user secret.
	awsID := createSecret(map[string]any{"name": awsName, "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
		"data": map[string]any{"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": awsKey}})
	plainID := createSecret(map[string]any{"name": plainName, "resourceGroup": "DOMAIN",
		"tags": map[string]any{"env": "canary"},
		"data": map[string]any{"password": plainValue, "nested": map[string]any{"deep": []any{nestedValue}}}})
	var us struct {
		CreateUserSecret struct{ UserSecretID string } `json:"createUserSecret"`
	}
	mustSend(bob, createUserSecretMutation, map[string]any{"in": map[string]any{"name": userName,
		"data": map[string]any{"pin": userValue}}}, &us)
	userID := us.CreateUserSecret.UserSecretID
	require.NotEmpty(t, userID)
	// A trusted secret, and a secret linked to it whose schema needs both values.
	var ts struct {
		CreateTrustedSecret struct{ TrustedSecretID string }
	}
	mustSend(admin, `mutation($in: CreateTrustedSecretInput!) { createTrustedSecret(input: $in) { trustedSecretId } }`,
		map[string]any{"in": map[string]any{"name": trustedName, "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
			"data": map[string]any{"aws_access_key_id": "AKIATRUSTED", "aws_secret_access_key": trustedKey}}}, &ts)
	trustedID := ts.CreateTrustedSecret.TrustedSecretID
	require.NotEmpty(t, trustedID)
	linkedID := createSecret(map[string]any{"name": "canary-linked-" + suffix, "resourceGroup": "DOMAIN",
		"schemaId": "aws_assume_role", "trustedSecretId": trustedID, "data": map[string]any{"role_arn": linkedOwn}})

	// 2. Data updates.
	var upd struct{ UpdateSecretData struct{ Version int } }
	mustSend(admin, `mutation($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { secretId version } }`,
		map[string]any{"in": map[string]any{"secretId": plainID, "data": map[string]any{"password": updated}}}, &upd)
	require.Equal(t, 2, upd.UpdateSecretData.Version)
	var uupd struct{ UpdateUserSecretData struct{ Version int } }
	mustSend(bob, `mutation($in: UpdateUserSecretDataInput!) { updateUserSecretData(input: $in) { userSecretId version } }`,
		map[string]any{"in": map[string]any{"userSecretId": userID, "data": map[string]any{"pin": userUpdated}}}, &uupd)
	require.Equal(t, 2, uupd.UpdateUserSecretData.Version)
	mustSend(admin, `mutation($in: UpdateTrustedSecretDataInput!) { updateTrustedSecretData(input: $in) { version } }`,
		map[string]any{"in": map[string]any{"trustedSecretId": trustedID,
			"data": map[string]any{"aws_access_key_id": "AKIATRUSTED", "aws_secret_access_key": trustedNew}}}, nil)

	// 3. Reads through the decrypting path (these answers carry canaries by design).
	reveal := func(query, id string) map[string]any {
		t.Helper()
		r := doGraphQL(t, s.HTTP.URL, system, query, map[string]any{"id": id})
		require.Empty(t, r.Errors)
		var out map[string]struct{ Data map[string]any }
		r.Decode(t, &out)
		for _, v := range out {
			return v.Data
		}
		return nil
	}
	require.Equal(t, map[string]any{"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": awsKey},
		reveal(`query($id: ID!) { secretData(secretId: $id) { data } }`, awsID))
	require.Equal(t, map[string]any{"password": updated},
		reveal(`query($id: ID!) { secretData(secretId: $id) { data } }`, plainID))
	require.Equal(t, map[string]any{"pin": userUpdated},
		reveal(`query($id: ID!) { userSecretData(userSecretId: $id) { data } }`, userID))
	require.Equal(t, map[string]any{"aws_access_key_id": "AKIATRUSTED", "aws_secret_access_key": trustedNew},
		reveal(`query($id: ID!) { trustedSecretData(trustedSecretId: $id) { data } }`, trustedID))
	require.Equal(t, map[string]any{"aws_access_key_id": "AKIATRUSTED", "aws_secret_access_key": trustedNew, "role_arn": linkedOwn},
		reveal(`query($id: ID!) { secretData(secretId: $id) { data } }`, linkedID))

	// Metadata reads and lists must not carry values either.
	mustSend(admin, `query($id: ID!) { secret(secretId: $id) { secretId name tags version } }`, map[string]any{"id": plainID}, nil)
	mustSend(admin, `{ secrets { totalCount results { secretId name tags schemaId provider } } }`, nil, nil)
	mustSend(bob, `{ userSecrets { totalCount results { userSecretId name tags } } }`, nil, nil)
	mustSend(admin, `{ trustedSecrets { totalCount results { trustedSecretId name tags schemaId provider } } }`, nil, nil)
	mustSend(admin, `query($id: ID!) { trustedSecretHistory(trustedSecretId: $id) { results { type changes { field old new } } } }`,
		map[string]any{"id": trustedID}, nil)
	mustSend(admin, `query($id: ID!) { secretHistory(secretId: $id) { results { type changes { field old new } } } }`,
		map[string]any{"id": linkedID}, nil)

	// 4. Requests that fail: the error must name the problem, never echo the value.
	longName := strings.Repeat("n", 256)
	failing := []struct {
		name  string
		token string
		query string
		vars  map[string]any
		code  string // "" accepts any code
	}{
		{name: "schema: wrong type beside the canary", token: admin, query: createSecretMutation, code: "INVALID_ARGUMENT",
			vars: map[string]any{"in": map[string]any{"name": "bad-1", "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
				"data": map[string]any{"aws_access_key_id": rejected, "aws_secret_access_key": 42}}}},
		{name: "schema: missing field beside the canary", token: admin, query: createSecretMutation, code: "INVALID_ARGUMENT",
			vars: map[string]any{"in": map[string]any{"name": "bad-2", "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
				"data": map[string]any{"aws_secret_access_key": rejected}}}},
		{name: "schema: canary in a field of the wrong type", token: admin, query: createSecretMutation, code: "INVALID_ARGUMENT",
			vars: map[string]any{"in": map[string]any{"name": "bad-3", "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
				"data": map[string]any{"aws_access_key_id": "AKIA", "aws_secret_access_key": []any{rejected}, "region_name": map[string]any{"x": rejected}}}}},
		{name: "name too long", token: admin, query: createSecretMutation, code: "INVALID_ARGUMENT",
			vars: map[string]any{"in": map[string]any{"name": longName, "resourceGroup": "DOMAIN", "data": map[string]any{"k": rejected}}}},
		{name: "data too large", token: admin, query: createSecretMutation, code: "INVALID_ARGUMENT",
			vars: map[string]any{"in": map[string]any{"name": "bad-5", "resourceGroup": "DOMAIN",
				"data": map[string]any{"k": rejected + strings.Repeat("x", 70<<10)}}}},
		{name: "unknown schema", token: admin, query: createSecretMutation, code: "INVALID_ARGUMENT",
			vars: map[string]any{"in": map[string]any{"name": "bad-6", "resourceGroup": "DOMAIN", "schemaId": "nope",
				"data": map[string]any{"k": rejected}}}},
		{name: "project secret without project", token: admin, query: createSecretMutation, code: "INVALID_ARGUMENT",
			vars: map[string]any{"in": map[string]any{"name": "bad-7", "resourceGroup": "PROJECT", "workspaceId": "ws-1",
				"data": map[string]any{"k": rejected}}}},
		{name: "update: schema mismatch", token: admin, code: "INVALID_ARGUMENT",
			query: `mutation($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { version } }`,
			vars:  map[string]any{"in": map[string]any{"secretId": awsID, "data": map[string]any{"aws_access_key_id": rejected}}}},
		{name: "update: not allowed", token: member, code: "",
			query: `mutation($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { version } }`,
			vars:  map[string]any{"in": map[string]any{"secretId": awsID, "data": map[string]any{"k": rejected}}}},
		{name: "update: missing secret", token: admin, code: "NOT_FOUND",
			query: `mutation($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { version } }`,
			vars:  map[string]any{"in": map[string]any{"secretId": "secret-000000000000", "data": map[string]any{"k": rejected}}}},
		{name: "update user secret: schema mismatch", token: bob, code: "INVALID_ARGUMENT",
			query: `mutation($in: UpdateUserSecretDataInput!) { updateUserSecretData(input: $in) { version } }`,
			vars: map[string]any{"in": map[string]any{"userSecretId": userID, "schemaId": "aws_access_key",
				"data": map[string]any{"aws_secret_access_key": rejected}}}},
		{name: "no token", token: "", query: createSecretMutation, code: "UNAUTHENTICATED",
			vars: map[string]any{"in": map[string]any{"name": "bad-8", "resourceGroup": "DOMAIN", "data": map[string]any{"k": rejected}}}},
		{name: "data as a string variable", token: admin, query: createSecretMutation, code: "",
			vars: map[string]any{"in": map[string]any{"name": "bad-9", "resourceGroup": "DOMAIN", "data": rejected}}},
		{name: "data as a string literal", token: admin, code: "",
			query: `mutation { createSecret(input: {name: "bad-10", resourceGroup: DOMAIN, data: "` + rejected + `"}) { secretId } }`},
		{name: "data as a list literal", token: admin, code: "",
			query: `mutation { createSecret(input: {name: "bad-11", resourceGroup: DOMAIN, data: ["` + rejected + `"]}) { secretId } }`},
		{name: "canary in a String field given a Map variable", token: admin, query: createSecretMutation, code: "",
			vars: map[string]any{"in": map[string]any{"name": map[string]any{"k": rejected}, "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}}}},
		{name: "literal of the wrong type for a String field", token: admin, code: "",
			query: `mutation { updateSecretData(input: {secretId: "` + awsID + `", data: {k: "v"}, schemaId: {k: "` + rejected + `"}}) { version } }`},
		{name: "unknown field beside the canary", token: admin, code: "",
			query: `mutation { createSecret(input: {name: "bad-12", resourceGroup: DOMAIN, data: {k: "` + rejected + `"}, bogus: 1}) { secretId } }`},
		{name: "unterminated string literal", token: admin, code: "",
			query: `mutation { createSecret(input: {name: "bad-13", resourceGroup: DOMAIN, data: {k: "` + rejected + `}) { secretId } }`},
		{name: "bad escape in a string literal", token: admin, code: "",
			query: `mutation { createSecret(input: {name: "bad-14", resourceGroup: DOMAIN, data: {k: "` + rejected + `\q"}}) { secretId } }`},
		{name: "trusted: schema mismatch", token: admin, code: "INVALID_ARGUMENT",
			query: `mutation($in: CreateTrustedSecretInput!) { createTrustedSecret(input: $in) { trustedSecretId } }`,
			vars: map[string]any{"in": map[string]any{"name": "bad-t1", "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
				"data": map[string]any{"aws_access_key_id": rejected}}}},
		{name: "trusted: PROJECT group", token: admin, code: "INVALID_ARGUMENT",
			query: `mutation($in: CreateTrustedSecretInput!) { createTrustedSecret(input: $in) { trustedSecretId } }`,
			vars: map[string]any{"in": map[string]any{"name": "bad-t2", "resourceGroup": "PROJECT", "workspaceId": "ws-1",
				"data": map[string]any{"k": rejected}}}},
		{name: "trusted: update not allowed", token: member, code: "",
			query: `mutation($in: UpdateTrustedSecretDataInput!) { updateTrustedSecretData(input: $in) { version } }`,
			vars:  map[string]any{"in": map[string]any{"trustedSecretId": trustedID, "data": map[string]any{"k": rejected}}}},
		{name: "link: missing trusted secret", token: admin, query: createSecretMutation, code: "INVALID_ARGUMENT",
			vars: map[string]any{"in": map[string]any{"name": "bad-l1", "resourceGroup": "DOMAIN",
				"trustedSecretId": "trusted-secret-000000000000", "data": map[string]any{"k": rejected}}}},
		{name: "link: merged value misses a required field", token: admin, query: createSecretMutation, code: "INVALID_ARGUMENT",
			vars: map[string]any{"in": map[string]any{"name": "bad-l2", "resourceGroup": "DOMAIN", "schemaId": "aws_assume_role",
				"trustedSecretId": trustedID, "data": map[string]any{"external_id": rejected}}}},
		{name: "trusted: delete while linked", token: admin, code: "FAILED_PRECONDITION",
			query: `mutation($id: ID!) { deleteTrustedSecret(trustedSecretId: $id, force: true) }`, vars: map[string]any{"id": trustedID}},
		{name: "canary used as a variable default of the wrong type", token: admin, code: "",
			query: `mutation($d: Int = "` + rejected + `") { createSecret(input: {name: "bad-15", resourceGroup: DOMAIN, data: {k: $d}}) { secretId } }`},
	}
	for _, tc := range failing {
		r := send(tc.token, tc.query, tc.vars)
		require.NotEmpty(t, r.Errors, "%s: the request should fail", tc.name)
		if tc.code != "" {
			require.Equal(t, tc.code, r.Code(), "%s: %+v", tc.name, r.Errors)
		} else {
			require.NotEmpty(t, r.Code(), "%s: every error carries a code: %+v", tc.name, r.Errors)
		}
		t.Logf("%s -> %s: %s", tc.name, r.Code(), r.Errors[0].Message)
	}

	// Bodies that are not even valid JSON (a client bug, with a secret inside).
	for _, raw := range []string{
		`{"query": "mutation($in: CreateSecretInput!) { createSecret(input: $in) { secretId } }", "variables": {"in": {"name": "bad-16", "resourceGroup": "DOMAIN", "data": {"k": "` + rejected + `"}}`,
		`{"query": "mutation { createSecret(input: {name: \"x\", resourceGroup: DOMAIN, data: {k: \"` + rejected + `\"}}) { secretId } }", "variables": {"in": ` + rejected + `}}`,
	} {
		status, body := canaryPost(t, s.HTTP.URL, admin, raw)
		bodies = append(bodies, body)
		t.Logf("malformed JSON -> %d: %s", status, canaryRedact(body, forms))
	}
	// And the GET transport, where the request sits in the URL.
	getURL := s.HTTP.URL + "/graphql?query=" + url.QueryEscape(
		`mutation { createSecret(input: {name: "bad-17", resourceGroup: DOMAIN, data: "`+rejected+`"}) { secretId } }`)
	req, err := http.NewRequest(http.MethodGet, getURL, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	getBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	bodies = append(bodies, getBody)

	// 5. Delete one secret (its data key is destroyed; the log keeps the ciphertext).
	var del struct{ DeleteSecret bool }
	mustSend(admin, `mutation($id: ID!) { deleteSecret(secretId: $id, force: true) }`, map[string]any{"id": awsID}, &del)
	require.True(t, del.DeleteSecret)
	// And the linked secret, then its trusted secret (its key is destroyed too).
	mustSend(admin, `mutation($id: ID!) { deleteSecret(secretId: $id) }`, map[string]any{"id": linkedID}, nil)
	mustSend(admin, `mutation($id: ID!) { deleteTrustedSecret(trustedSecretId: $id, force: true) }`, map[string]any{"id": trustedID}, nil)

	// 6. Look everywhere.
	for i, body := range bodies {
		require.Empty(t, canaryFind(body, forms), "response %d leaks a canary: %s", i, canaryRedact(body, forms))
	}
	logs := []byte(s.Logs.String())
	require.Contains(t, string(logs), "createSecret", "the server log should record commands")
	require.Empty(t, canaryFind(logs, forms), "the server log leaks a canary")

	// Known plaintext proves each scan sees the data: live names in the read
	// models, and the deleted secret's name only inside the log's bytea
	// events, which a text dump shows as hex.
	known := []string{plainName, userName, hex.EncodeToString([]byte(awsName)), hex.EncodeToString([]byte(trustedName))}
	rowDump := canaryDumpRows(t, s.DatabaseURL)
	for _, k := range known {
		require.True(t, bytes.Contains(rowDump, []byte(k)), "the row dump must show %q, or it proves nothing", k)
	}
	require.Empty(t, canaryFind(rowDump, forms), "the database (row dump) holds a canary")

	if dump := canaryPgDump(t, s.DatabaseURL); dump != nil {
		for _, k := range known {
			require.True(t, bytes.Contains(dump, []byte(k)), "pg_dump must show %q, or it proves nothing", k)
		}
		require.Empty(t, canaryFind(dump, forms), "the database (pg_dump) holds a canary")
	}

	files := canaryClusterFiles(t, s.DatabaseURL)
	var sawName bool
	for p, b := range files {
		sawName = sawName || bytes.Contains(b, []byte(awsName))
		require.Empty(t, canaryFind(b, forms), "cluster file %s holds a canary", p)
	}
	if len(files) > 0 {
		require.True(t, sawName, "the cluster files must show plaintext metadata, or the scan proves nothing")
	}
}

// canaryRedact shows a body for diagnosis with every canary form masked, so a
// failing test does not itself print the value into CI logs.
func canaryRedact(b []byte, forms []canaryForm) string {
	s := string(b)
	for _, f := range forms {
		s = strings.ReplaceAll(s, f.text, "<"+f.how+" of canary>")
	}
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}
