package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/client"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/server"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// cliStack is the whole service on a private database, served over HTTP,
// and the CLI driven through cobra against it.
type cliStack struct {
	t    *testing.T
	srv  *server.Server
	http *httptest.Server
	logs *lockedBuffer
}

func newCLIStack(t *testing.T) *cliStack {
	t.Helper()
	spec, err := events.NewKeySpec("test-1")
	require.NoError(t, err)
	keyring, err := events.ParseKeyring(spec)
	require.NoError(t, err)
	tokenKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(spec, "test-1:"))
	require.NoError(t, err)
	logs := &lockedBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := server.New(ctx, server.Config{DatabaseURL: pgtest.NewDatabase(t), Keyring: keyring, TokenKey: tokenKey,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	require.NoError(t, err)
	s := &cliStack{t: t, srv: srv, http: httptest.NewServer(srv.Handler()), logs: logs}
	t.Cleanup(func() { s.http.Close(); s.srv.Close() })
	return s
}

// tokenFile mints a token for id into a 0600 file and returns its path.
func (s *cliStack) tokenFile(id auth.Identity) string {
	s.t.Helper()
	tok, err := s.srv.Signer.Mint(id, time.Hour)
	require.NoError(s.t, err)
	path := filepath.Join(s.t.TempDir(), "token")
	require.NoError(s.t, os.WriteFile(path, []byte(tok+"\n"), 0o600))
	return path
}

type result struct {
	stdout, stderr string
	status         int
}

func (r result) String() string {
	return fmt.Sprintf("status %d\nstdout:\n%s\nstderr:\n%s", r.status, r.stdout, r.stderr)
}

// run executes `secretlog ARGS --server URL --token-file TOKEN` in process,
// with stdin, as main would: the status is exitCode's.
func (s *cliStack) run(token, stdin string, args ...string) result {
	s.t.Helper()
	if token != "" {
		args = append(args, "--token-file", token)
	}
	return runCLI(s.t, stdin, append(args, "--server", s.http.URL)...)
}

func runCLI(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	root := rootCommand()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	err := root.ExecuteContext(ctx)
	r := result{stdout: out.String()}
	if err != nil {
		errOut.WriteString("secretlog: " + err.Error() + "\n")
		r.status = exitCode(err)
	}
	r.stderr = errOut.String()
	return r
}

// ok runs a command that must succeed and returns its stdout.
func (s *cliStack) ok(token, stdin string, args ...string) string {
	s.t.Helper()
	r := s.run(token, stdin, args...)
	require.Equal(s.t, 0, r.status, "%v: %s", args, r)
	return r.stdout
}

// okJSON runs a command with -o json and decodes its output into v.
func (s *cliStack) okJSON(v any, token, stdin string, args ...string) {
	s.t.Helper()
	out := s.ok(token, stdin, append(args, "-o", "json")...)
	reflect.ValueOf(v).Elem().SetZero() // no leftovers from an earlier decode
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	require.NoError(s.t, dec.Decode(v), "output of %v:\n%s", args, out)
}

// fails runs a command that must fail with status and returns its result.
func (s *cliStack) fails(status int, token, stdin string, args ...string) result {
	s.t.Helper()
	r := s.run(token, stdin, args...)
	require.Equal(s.t, status, r.status, "%v: %s", args, r)
	require.Contains(s.t, r.stderr, "secretlog: ")
	return r
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data.json")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

type secretJSON struct {
	client.Secret
	Data map[string]any `json:"data"`
}

type userSecretJSON struct {
	client.UserSecret
	Data map[string]any `json:"data"`
}

func types(p client.AuditEventPage) []string {
	var out []string
	for _, e := range p.Results {
		out = append(out, e.Type)
	}
	return out
}

// TestCLISecretCommands drives every secret command against a real server
// and parses the JSON output back.
func TestCLISecretCommands(t *testing.T) {
	t.Parallel()
	s := newCLIStack(t)
	admin := s.tokenFile(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	system := s.tokenFile(auth.Identity{Role: auth.RoleSystem, DomainID: "d1"})

	// create: value from a file, with a schema and tags.
	var a secretJSON
	s.okJSON(&a, admin, "", "secret", "create", "--name", "db-dev", "--schema", "basic_auth", "--tag", "env=dev", "--tag", "team=core",
		"--data-file", writeFile(t, `{"username": "app", "password": "pw-1"}`))
	require.Regexp(t, `^secret-[0-9a-f]{12}$`, a.SecretID)
	require.Equal(t, "db-dev", a.Name)
	require.Equal(t, client.ResourceGroupDomain, a.ResourceGroup)
	require.Equal(t, "generic", *a.Provider)
	require.Equal(t, map[string]any{"env": "dev", "team": "core"}, a.Tags)
	require.Equal(t, 1, a.Version)
	require.Equal(t, "alice", a.CreatedBy)
	require.Nil(t, a.Data, "create never prints a value")

	// create: value from standard input; the workspace sets the resource group.
	var b secretJSON
	s.okJSON(&b, admin, `{"token": "t-1"}`, "secret", "create", "--name", "api", "--workspace", "ws-1", "--data", "-")
	require.Equal(t, client.ResourceGroupWorkspace, b.ResourceGroup)
	require.Equal(t, "ws-1", *b.WorkspaceID)

	// list, with and without filters.
	var list client.SecretList
	s.okJSON(&list, admin, "", "secret", "list")
	require.Equal(t, 2, list.TotalCount)
	require.Equal(t, []string{b.SecretID, a.SecretID}, []string{list.Results[0].SecretID, list.Results[1].SecretID}, "newest first")
	s.okJSON(&list, admin, "", "secret", "list", "--tag", "env=dev")
	require.Equal(t, 1, list.TotalCount)
	require.Equal(t, a.SecretID, list.Results[0].SecretID)
	s.okJSON(&list, admin, "", "secret", "list", "--workspace", "ws-1")
	require.Equal(t, []string{b.SecretID}, []string{list.Results[0].SecretID})
	s.okJSON(&list, admin, "", "secret", "list", "--filter", "name!=api", "--provider", "generic")
	require.Equal(t, 1, list.TotalCount)
	s.okJSON(&list, admin, "", "secret", "list", "--sort", "name", "--limit", "1")
	require.Equal(t, 2, list.TotalCount)
	require.Len(t, list.Results, 1)
	require.Equal(t, "api", list.Results[0].Name)
	r := s.run(admin, "", "secret", "list", "--sort", "name", "--limit", "1")
	require.Equal(t, 0, r.status, r)
	require.Contains(t, r.stderr, "showing 1 of 2 secrets")
	s.okJSON(&list, admin, "", "secret", "list", "--query-json", `{"filter": [{"k": "tags.team", "v": "core"}]}`)
	require.Equal(t, 1, list.TotalCount)
	table := s.ok(admin, "", "secret", "list")
	require.Contains(t, table, "ID")
	require.Contains(t, table, "NAME")
	require.Contains(t, table, a.SecretID)
	require.Contains(t, table, "env=dev,team=core")
	t.Logf("secret list:\n%s", table)

	// get: metadata only, as a table and as JSON.
	var got secretJSON
	s.okJSON(&got, admin, "", "secret", "get", a.SecretID)
	require.Equal(t, a.Secret, got.Secret)
	require.Nil(t, got.Data)
	table = s.ok(admin, "", "secret", "get", a.SecretID)
	require.Contains(t, table, "db-dev")
	require.NotContains(t, table, "pw-1")
	t.Logf("secret get:\n%s", table)

	// update: name, tags (replaced), then cleared.
	s.okJSON(&got, admin, "", "secret", "update", a.SecretID, "--name", "db-prod", "--tag", "env=prod")
	require.Equal(t, "db-prod", got.Name)
	require.Equal(t, map[string]any{"env": "prod"}, got.Tags)
	require.Equal(t, 1, got.Version, "metadata changes keep the data version")
	s.okJSON(&got, admin, "", "secret", "update", a.SecretID, "--clear-tags")
	require.Empty(t, got.Tags)
	require.Equal(t, "db-prod", got.Name)

	// put-data: a new data version, from standard input.
	s.okJSON(&got, admin, `{"username": "app", "password": "pw-2"}`, "secret", "put-data", a.SecretID, "--data", "-")
	require.Equal(t, 2, got.Version)
	require.Nil(t, got.Data)

	// get --data: SYSTEM reads the value.
	s.okJSON(&got, system, "", "secret", "get", a.SecretID, "--data")
	require.Equal(t, map[string]any{"username": "app", "password": "pw-2"}, got.Data)
	require.Equal(t, "db-prod", got.Name)
	require.Equal(t, "pw-2\n", s.ok(system, "", "secret", "get", a.SecretID, "--data", "--field", "password"))
	table = s.ok(system, "", "secret", "get", a.SecretID, "--data")
	require.Contains(t, table, "DATA KEY")
	require.Contains(t, table, "pw-2")
	s.fails(4, system, "", "secret", "get", a.SecretID, "--data", "--field", "nope")

	// --as-of: the metadata before the rename.
	s.okJSON(&got, admin, "", "secret", "get", a.SecretID, "--as-of", a.CreatedAt.Add(time.Millisecond).Format(time.RFC3339Nano))
	require.Equal(t, "db-dev", got.Name)

	// history: every event, oldest first; pages.
	var h client.AuditEventPage
	s.okJSON(&h, admin, "", "secret", "history", a.SecretID)
	// Four reads: --data, --field password, the table, --field nope (read, then not found).
	require.Equal(t, []string{"SecretCreated.v1", "SecretUpdated.v1", "SecretUpdated.v1", "SecretDataUpdated.v1",
		"SecretDataRead.v1", "SecretDataRead.v1", "SecretDataRead.v1", "SecretDataRead.v1"}, types(h))
	require.Nil(t, h.NextCursor)
	require.Contains(t, h.Results[1].Changes, client.FieldChange{Field: "name", Old: "db-dev", New: "db-prod"})
	require.Contains(t, h.Results[3].Changes, client.FieldChange{Field: "data"}, "a value change, without values")
	var p1 client.AuditEventPage
	s.okJSON(&p1, admin, "", "secret", "history", a.SecretID, "--first", "2")
	require.Len(t, p1.Results, 2)
	require.NotNil(t, p1.NextCursor)
	var p2 client.AuditEventPage
	s.okJSON(&p2, admin, "", "secret", "history", a.SecretID, "--first", "2", "--after", *p1.NextCursor)
	require.Equal(t, h.Results[2:4], p2.Results)
	var all client.AuditEventPage
	s.okJSON(&all, admin, "", "secret", "history", a.SecretID, "--first", "2", "--all")
	require.Equal(t, h.Results, all.Results)
	require.Nil(t, all.NextCursor)
	r = s.run(admin, "", "secret", "history", a.SecretID, "--first", "2")
	require.Equal(t, 0, r.status, r)
	require.Contains(t, r.stdout, "SecretCreated")
	require.Contains(t, r.stdout, "alice (DOMAIN_ADMIN)")
	require.Contains(t, r.stderr, "more: --after ")
	table = s.ok(admin, "", "secret", "history", a.SecretID)
	require.Contains(t, table, "name: db-dev → db-prod")
	t.Logf("secret history:\n%s", table)

	// delete: refuses without --yes when nobody can be asked.
	r = s.fails(2, admin, "", "secret", "delete", a.SecretID)
	require.Contains(t, r.stderr, "--yes")
	s.okJSON(&got, admin, "", "secret", "get", a.SecretID)
	var del map[string]any
	s.okJSON(&del, admin, "", "secret", "delete", a.SecretID, "--yes", "--force")
	require.Equal(t, map[string]any{"secretId": a.SecretID, "deleted": true}, del)
	s.fails(4, admin, "", "secret", "get", a.SecretID)
	require.Equal(t, "deleted "+b.SecretID+"\n", s.ok(admin, "", "secret", "delete", b.SecretID, "-y"))
	s.okJSON(&h, admin, "", "secret", "history", a.SecretID)
	require.Equal(t, "SecretDeleted.v1", h.Results[len(h.Results)-1].Type, "history survives deletion")
	s.okJSON(&list, admin, "", "secret", "list")
	require.Zero(t, list.TotalCount)
	require.NotNil(t, list.Results, "an empty list is [] in JSON")
}

// TestCLIUserSecretCommands drives every user-secret command.
func TestCLIUserSecretCommands(t *testing.T) {
	t.Parallel()
	s := newCLIStack(t)
	bob := s.tokenFile(auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "bob"})
	carol := s.tokenFile(auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "carol"})
	system := s.tokenFile(auth.Identity{Role: auth.RoleSystem, DomainID: "d1"})

	var u userSecretJSON
	s.okJSON(&u, bob, `{"token": "gh-1"}`, "user-secret", "create", "--name", "gh", "--schema", "api_token", "--tag", "kind=pat", "--data", "-")
	require.Regexp(t, `^user-secret-[0-9a-f]{12}$`, u.UserSecretID)
	require.Equal(t, "bob", u.UserID)
	require.Equal(t, 1, u.Version)
	var u2 userSecretJSON
	s.okJSON(&u2, bob, "", "user-secret", "create", "--name", "npm", "--data-file", writeFile(t, `{"token": "npm-1"}`))

	var list client.UserSecretList
	s.okJSON(&list, bob, "", "user-secret", "list")
	require.Equal(t, 2, list.TotalCount)
	s.okJSON(&list, bob, "", "user-secret", "list", "--name", "gh")
	require.Equal(t, []string{u.UserSecretID}, []string{list.Results[0].UserSecretID})
	s.okJSON(&list, carol, "", "user-secret", "list")
	require.Zero(t, list.TotalCount, "another user's secrets are not listed")
	require.Contains(t, s.ok(bob, "", "user-secret", "list"), "npm")

	var got userSecretJSON
	s.okJSON(&got, bob, "", "user-secret", "get", u.UserSecretID)
	require.Equal(t, u.UserSecret, got.UserSecret)
	s.fails(4, carol, "", "user-secret", "get", u.UserSecretID)

	s.okJSON(&got, bob, "", "user-secret", "update", u.UserSecretID, "--name", "github", "--tag", "kind=app")
	require.Equal(t, "github", got.Name)
	require.Equal(t, map[string]any{"kind": "app"}, got.Tags)
	s.okJSON(&got, bob, `{"token": "gh-2"}`, "user-secret", "put-data", u.UserSecretID, "--data-file", "-")
	require.Equal(t, 2, got.Version)

	s.fails(3, bob, "", "user-secret", "get", u.UserSecretID, "--data")
	s.okJSON(&got, system, "", "user-secret", "get", u.UserSecretID, "--data")
	require.Equal(t, map[string]any{"token": "gh-2"}, got.Data)
	require.Equal(t, "gh-2\n", s.ok(system, "", "user-secret", "get", u.UserSecretID, "--data", "--field", "token"))

	var h client.AuditEventPage
	s.okJSON(&h, bob, "", "user-secret", "history", u.UserSecretID)
	require.Equal(t, []string{"UserSecretCreated.v1", "UserSecretUpdated.v1", "UserSecretDataUpdated.v1", "UserSecretDataRead.v1", "UserSecretDataRead.v1"}, types(h))
	require.Contains(t, s.ok(bob, "", "user-secret", "history", u.UserSecretID), "UserSecretDataRead")

	s.fails(2, bob, "", "user-secret", "delete", u.UserSecretID)
	require.Equal(t, "deleted "+u.UserSecretID+"\n", s.ok(bob, "", "user-secret", "delete", u.UserSecretID, "--yes"))
	s.fails(4, bob, "", "user-secret", "get", u.UserSecretID)
	s.okJSON(&list, bob, "", "user-secret", "list")
	require.Equal(t, 1, list.TotalCount)
}

// TestCLIAudit: the domain's trail with every filter, newest first.
func TestCLIAudit(t *testing.T) {
	t.Parallel()
	s := newCLIStack(t)
	admin := s.tokenFile(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	owner := s.tokenFile(auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: "ws-1", UserID: "olga"})
	system := s.tokenFile(auth.Identity{Role: auth.RoleSystem, DomainID: "d1"})
	other := s.tokenFile(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d2", UserID: "zed"})

	start := time.Now().Add(-time.Second)
	var a, b secretJSON
	s.okJSON(&a, admin, `{"k": "v1"}`, "secret", "create", "--name", "a", "--data", "-")
	s.okJSON(&b, owner, `{"k": "v1"}`, "secret", "create", "--name", "b", "--workspace", "ws-1", "--data", "-")
	s.ok(admin, `{"k": "v2"}`, "secret", "put-data", a.SecretID, "--data", "-")
	s.ok(system, "", "secret", "get", a.SecretID, "--data", "--field", "k")

	var all client.AuditEventPage
	s.okJSON(&all, admin, "", "audit")
	require.Equal(t, []string{"SecretDataRead.v1", "SecretDataUpdated.v1", "SecretCreated.v1", "SecretCreated.v1"}, types(all), "newest first")
	var oldest client.AuditEventPage
	s.okJSON(&oldest, system, "", "audit", "--oldest-first")
	require.Equal(t, []string{"SecretCreated.v1", "SecretCreated.v1", "SecretDataUpdated.v1", "SecretDataRead.v1"}, types(oldest))

	var p client.AuditEventPage
	s.okJSON(&p, admin, "", "audit", "--type", "SecretDataRead")
	require.Len(t, p.Results, 1)
	require.Equal(t, a.SecretID, p.Results[0].ResourceID)
	require.Equal(t, "SYSTEM", p.Results[0].Actor.Role)
	require.Equal(t, 2, p.Results[0].DataVersion, "the read names the version read")
	s.okJSON(&p, admin, "", "audit", "--type", "SecretCreated,SecretDataUpdated.v1")
	require.Len(t, p.Results, 3)
	s.okJSON(&p, admin, "", "audit", "--resource", b.SecretID)
	require.Equal(t, []string{"SecretCreated.v1"}, types(p))
	s.okJSON(&p, admin, "", "audit", "--actor", "olga")
	require.Equal(t, []string{b.SecretID}, []string{p.Results[0].ResourceID})
	require.Len(t, p.Results, 1)
	s.okJSON(&p, admin, "", "audit", "--role", "system")
	require.Equal(t, []string{"SecretDataRead.v1"}, types(p))
	s.okJSON(&p, admin, "", "audit", "--resource-type", "UserSecret")
	require.Empty(t, p.Results)
	s.okJSON(&p, admin, "", "audit", "--from", start.UTC().Format(time.RFC3339Nano), "--to", time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	require.Len(t, p.Results, 4)
	s.okJSON(&p, admin, "", "audit", "--from", "1h")
	require.Len(t, p.Results, 4)
	s.okJSON(&p, admin, "", "audit", "--to", "1h")
	require.Empty(t, p.Results)
	s.okJSON(&p, admin, "", "audit", "--from", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	require.Empty(t, p.Results)

	s.okJSON(&p, admin, "", "audit", "--first", "3")
	require.Equal(t, all.Results[:3], p.Results)
	require.NotNil(t, p.NextCursor)
	s.okJSON(&p, admin, "", "audit", "--first", "3", "--after", *p.NextCursor)
	require.Equal(t, all.Results[3:], p.Results)
	s.okJSON(&p, admin, "", "audit", "--first", "1", "--all")
	require.Equal(t, all.Results, p.Results)

	table := s.ok(admin, "", "audit")
	for _, want := range []string{"POSITION", "RESOURCE", "ACTOR", "SecretDataRead", a.SecretID, "olga (WORKSPACE_OWNER)"} {
		require.Contains(t, table, want)
	}
	t.Logf("audit:\n%s", table)

	// Another domain sees nothing; the owner may not read the trail at all.
	s.okJSON(&p, other, "", "audit")
	require.Empty(t, p.Results)
	s.fails(3, owner, "", "audit")
	s.fails(2, admin, "", "audit", "--from", "yesterday")
	s.fails(2, admin, "", "audit", "--from", "1h", "--to", "2h")
}

// TestCLIErrors: each error code ends with its exit status and a message
// that names no value.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	s := newCLIStack(t)
	admin := s.tokenFile(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	const canary = "canary-7f3a9c2e"
	var a secretJSON
	s.okJSON(&a, admin, `{"k": "`+canary+`"}`, "secret", "create", "--name", "a", "--data", "-")

	// NOT_FOUND: 4.
	r := s.fails(4, admin, "", "secret", "get", "secret-000000000000")
	require.Contains(t, r.stderr, "NOT_FOUND")
	s.fails(4, admin, "", "secret", "history", "secret-000000000000")
	s.fails(4, admin, "", "secret", "update", "secret-000000000000", "--name", "x")
	s.fails(4, admin, "", "secret", "delete", "secret-000000000000", "--yes")
	s.fails(4, admin, `{"k": "v"}`, "secret", "put-data", "secret-000000000000", "--data", "-")
	s.fails(4, admin, "", "user-secret", "get", "user-secret-000000000000")

	// PERMISSION_DENIED: a value read without SYSTEM is 3, and prints no metadata either.
	r = s.fails(3, admin, "", "secret", "get", a.SecretID, "--data")
	require.Contains(t, r.stderr, "PERMISSION_DENIED")
	require.Empty(t, r.stdout)
	member := s.tokenFile(auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "ws-1", Projects: []string{"p-1"}, UserID: "m"})
	s.fails(3, member, `{"k": "v"}`, "secret", "create", "--name", "x", "--data", "-")

	// UNAUTHENTICATED: 3 (no token, a bad token, an empty file).
	r = s.fails(3, "", "", "secret", "list")
	require.Contains(t, r.stderr, "SECRETLOG_TOKEN")
	bad := writeFile(t, "not-a-token\n")
	r = s.fails(3, bad, "", "secret", "list")
	require.Contains(t, r.stderr, "UNAUTHENTICATED")
	require.NotContains(t, r.stderr, "not-a-token", "the token is never echoed")
	s.fails(3, writeFile(t, "\n"), "", "secret", "list")
	r = s.fails(1, filepath.Join(t.TempDir(), "missing"), "", "secret", "list")
	require.Contains(t, r.stderr, "token file")
	require.NoError(t, os.Chmod(admin, 0o644))
	r = s.run(admin, "", "secret", "list")
	require.Equal(t, 0, r.status, r)
	require.Contains(t, r.stderr, "readable by other users")
	require.NoError(t, os.Chmod(admin, 0o600))

	// INVALID_ARGUMENT from the server: 2, without the value.
	r = s.fails(2, admin, `{"k": "`+canary+`"}`, "secret", "create", "--name", "   ", "--data", "-")
	require.Contains(t, r.stderr, "INVALID_ARGUMENT")
	require.Contains(t, r.stderr, "name")
	require.NotContains(t, r.stderr, canary)
	s.fails(2, admin, `{"k": "v"}`, "secret", "create", "--name", strings.Repeat("n", 300), "--data", "-")
	r = s.fails(2, admin, `{"password": "`+canary+`"}`, "secret", "create", "--name", "x", "--schema", "basic_auth", "--data", "-")
	require.Contains(t, r.stderr, "username")
	require.NotContains(t, r.stderr, canary)
	s.fails(2, admin, "", "secret", "list", "--filter", "nosuchkey=1")
	s.fails(2, admin, "", "secret", "update", a.SecretID, "--project", "p 1")

	// Usage, caught before anything is sent: 2.
	for _, args := range [][]string{
		{"secret", "get"},
		{"secret", "get", "a", "b"},
		{"secret", "bogus"},
		{"secret"},
		{"secret", "list", "--bogus"},
		{"secret", "list", "-o", "yaml"},
		{"secret", "list", "--limit", "-1"},
		{"secret", "list", "--tag", "novalue"},
		{"secret", "list", "--query-json", `{"nope": 1}`},
		{"secret", "create", "--data", "-"},
		{"secret", "create", "--name", "x"},
		{"secret", "create", "--name", "x", "--resource-group", "GALAXY", "--data", "-"},
		{"secret", "update", a.SecretID},
		{"secret", "update", a.SecretID, "--tag", "a=b", "--clear-tags"},
		{"secret", "get", a.SecretID, "--field", "k"},
		{"secret", "get", a.SecretID, "--data", "--as-of", "1h"},
		{"secret", "history", a.SecretID, "--first", "0"},
		{"user-secret", "create", "--name", "x"},
		{"audit", "extra"},
	} {
		r := s.run(admin, `{"k": "v"}`, args...)
		require.Equal(t, 2, r.status, "%v: %s", args, r)
	}
	// A value literal on the command line is refused and never echoed.
	r = s.fails(2, admin, "", "secret", "create", "--name", "x", "--data", `{"k": "`+canary+`"}`)
	require.Contains(t, r.stderr, "shell history")
	require.NotContains(t, r.stderr, canary)
	// ... unless asked for with --data-json, which warns.
	r = s.run(admin, "", "secret", "create", "--name", "lit", "--data-json", `{"k": "v"}`)
	require.Equal(t, 0, r.status, r)
	require.Contains(t, r.stderr, "warning: --data-json")
	// Bad JSON values: the error names a byte offset, not the content.
	for _, in := range []string{`{"k": ` + canary + `}`, `["` + canary + `"]`, `{}`, `{"k": "v"} {"k": "` + canary + `"}`} {
		r = s.fails(2, admin, in, "secret", "create", "--name", "x", "--data", "-")
		require.NotContains(t, r.stderr, canary)
		require.NotContains(t, r.stderr, canary[:2]+"\"", in)
	}
	r = s.fails(1, admin, "", "secret", "create", "--name", "x", "--data-file", filepath.Join(t.TempDir(), "nope.json"))
	require.Contains(t, r.stderr, "data file")

	// RESOURCE_EXHAUSTED from the server's request limit: 6.
	huge := `{"blob": "` + strings.Repeat("x", 2<<20) + `"}`
	r = s.fails(6, admin, huge, "secret", "put-data", a.SecretID, "--data", "-")
	require.Contains(t, r.stderr, "RESOURCE_EXHAUSTED")
	require.NotContains(t, r.stderr, "xxxx")
	// ... and locally, before sending, past the client's own bound.
	s.fails(6, admin, `{"blob": "`+strings.Repeat("x", 5<<20)+`"}`, "secret", "put-data", a.SecretID, "--data", "-")

	// Unreachable: 7.
	r = runCLI(t, "", "secret", "list", "--token-file", admin, "--server", "http://127.0.0.1:1")
	require.Equal(t, 7, r.status, r)
	require.Contains(t, r.stderr, "UNAVAILABLE: cannot reach http://127.0.0.1:1/graphql")
	r = runCLI(t, "", "secret", "list", "--token-file", admin, "--server", "127.0.0.1:1")
	require.Equal(t, 2, r.status, r)

	// Nothing above put the canary in the server's log.
	require.NotContains(t, s.logs.String(), canary)
}

// TestCLIValueOnlyWhenAsked: only get --data prints a value; every other
// command, in both output formats, keeps it out of stdout and stderr.
func TestCLIValueOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	s := newCLIStack(t)
	admin := s.tokenFile(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	system := s.tokenFile(auth.Identity{Role: auth.RoleSystem, DomainID: "d1"})
	user := s.tokenFile(auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "bob"})
	const canary = "canary-5b1e0d44"
	b64 := base64.StdEncoding.EncodeToString([]byte(canary))
	value := `{"username": "app", "password": "` + canary + `"}`

	var outputs []result
	run := func(token, stdin string, args ...string) result {
		r := s.run(token, stdin, args...)
		require.Equal(t, 0, r.status, "%v: %s", args, r)
		outputs = append(outputs, r)
		return r
	}
	var a secretJSON
	r := run(admin, value, "secret", "create", "--name", "db", "--schema", "basic_auth", "--data", "-", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &a))
	var u userSecretJSON
	r = run(user, value, "user-secret", "create", "--name", "mine", "--data", "-", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &u))
	for _, o := range []string{"table", "json"} {
		run(admin, "", "secret", "list", "-o", o)
		run(admin, "", "secret", "get", a.SecretID, "-o", o)
		run(system, "", "secret", "get", a.SecretID, "-o", o)
		run(admin, "", "secret", "update", a.SecretID, "--tag", "o="+o, "-o", o)
		run(admin, value, "secret", "put-data", a.SecretID, "--data", "-", "-o", o)
		run(admin, "", "secret", "history", a.SecretID, "-o", o)
		run(user, "", "user-secret", "list", "-o", o)
		run(user, "", "user-secret", "get", u.UserSecretID, "-o", o)
		run(system, "", "user-secret", "get", u.UserSecretID, "-o", o)
		run(user, value, "user-secret", "put-data", u.UserSecretID, "--data", "-", "-o", o)
		run(user, "", "user-secret", "history", u.UserSecretID, "-o", o)
		run(admin, "", "audit", "-o", o)
	}
	for _, r := range outputs {
		for _, s := range []string{r.stdout, r.stderr} {
			require.NotContains(t, s, canary)
			require.NotContains(t, s, b64)
		}
	}
	// Asked for, it is there.
	require.Contains(t, s.ok(system, "", "secret", "get", a.SecretID, "--data"), canary)
	require.Contains(t, s.ok(system, "", "secret", "get", a.SecretID, "--data", "-o", "json"), canary)
	require.Contains(t, s.ok(system, "", "user-secret", "get", u.UserSecretID, "--data"), canary)
	require.NotContains(t, s.logs.String(), canary)
}

// TestCLITerminalSafe: names with escape sequences do not reach the terminal raw.
func TestCLITerminalSafe(t *testing.T) {
	t.Parallel()
	s := newCLIStack(t)
	admin := s.tokenFile(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	s.ok(admin, `{"k": "v"}`, "secret", "create", "--name", "evil\x1b[2Jname", "--tag", "t=\x1b]0;x\x07", "--data", "-")
	for _, args := range [][]string{{"secret", "list"}, {"audit"}} {
		out := s.ok(admin, "", args...)
		require.NotContains(t, out, "\x1b", "%v", args)
		require.NotContains(t, out, "\x07", "%v", args)
	}
	require.Contains(t, s.ok(admin, "", "secret", "list", "-o", "json"), `\u001b[2J`, "JSON keeps the exact value, escaped")
}

// TestExitStatusTableInREADME: the README documents exitStatuses as they are.
func TestExitStatusTableInREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	require.True(t, strings.Contains(string(readme), exitStatusTable()), "README lacks the exit status table:\n%s", exitStatusTable())
	require.Equal(t, 4, statusOf(client.CodeNotFound))
	require.Equal(t, 5, statusOf(client.CodeConflict))
	require.Equal(t, 1, statusOf("SOMETHING_NEW"))
}

// TestCLIBinary runs the built binary: real exit statuses, the token and the
// server from the environment.
func TestCLIBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	s := newCLIStack(t)
	bin := filepath.Join(t.TempDir(), "secretlog")
	build := execCommand(t, "go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	tok, err := s.srv.Signer.Mint(auth.Identity{Role: auth.RoleSystem, DomainID: "d1"}, time.Hour)
	require.NoError(t, err)
	admin, err := s.srv.Signer.Mint(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"}, time.Hour)
	require.NoError(t, err)

	exec := func(token, stdin string, args ...string) (string, string, int) {
		cmd := execCommand(t, bin, args...)
		cmd.Env = append(os.Environ(), "SECRETLOG_ADDR="+s.http.URL, "SECRETLOG_TOKEN="+token, "SECRETLOG_TOKEN_FILE=")
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if err != nil {
			code = cmd.ProcessState.ExitCode()
		}
		return stdout.String(), stderr.String(), code
	}
	stdout, stderr, code := exec(admin, `{"k": "bin-value"}`, "secret", "create", "--name", "bin", "--data", "-", "-o", "json")
	require.Equal(t, 0, code, stderr)
	var a client.Secret
	require.NoError(t, json.Unmarshal([]byte(stdout), &a))
	stdout, stderr, code = exec(tok, "", "secret", "get", a.SecretID, "--data", "--field", "k")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "bin-value\n", stdout)
	_, stderr, code = exec(admin, "", "secret", "get", a.SecretID, "--data")
	require.Equal(t, 3, code)
	require.Equal(t, "secretlog: secret "+a.SecretID+": PERMISSION_DENIED: only SYSTEM reads secret values\n", stderr)
	_, stderr, code = exec(admin, "", "secret", "get", "secret-000000000000")
	require.Equal(t, 4, code)
	require.Equal(t, "secretlog: secret secret-000000000000: NOT_FOUND: not found\n", stderr)
	_, _, code = exec(admin, "", "secret", "list", "--server", "http://127.0.0.1:1")
	require.Equal(t, 7, code)
	_, _, code = exec(admin, "", "secret", "list", "--bogus")
	require.Equal(t, 2, code)
	_, stderr, code = exec("", "", "secret", "list")
	require.Equal(t, 3, code)
	require.NotContains(t, stderr, admin)
}

func execCommand(t *testing.T, name string, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return exec.CommandContext(ctx, name, args...)
}

// TestCLIHelp: the client commands' help shows the client's flags only, and
// leaves the server commands' help as it was.
func TestCLIHelp(t *testing.T) {
	for _, args := range [][]string{{"secret", "--help"}, {"secret", "get", "--help"}, {"user-secret", "list", "--help"}, {"trusted-secret", "get", "--help"}, {"trusted-secret", "versions", "--help"}, {"audit", "--help"}} {
		r := runCLI(t, "", args...)
		require.Equal(t, 0, r.status, "%v: %s", args, r)
		require.Contains(t, r.stdout, "--token-file")
		require.NotContains(t, r.stdout, "--database-url")
		require.NotContains(t, r.stdout, "--master-key")
	}
	r := runCLI(t, "", "serve", "--help")
	require.Contains(t, r.stdout, "--database-url")
	require.NotContains(t, r.stdout, "--token-file")
}

// apiClient is a client of the stack with a token minted for id, for the
// operations the CLI has no command for.
func (s *cliStack) apiClient(id auth.Identity) *client.Client {
	s.t.Helper()
	tok, err := s.srv.Signer.Mint(id, time.Hour)
	require.NoError(s.t, err)
	c, err := client.New(s.http.URL, tok)
	require.NoError(s.t, err)
	return c
}

func versionNumbers(p client.SecretVersionPage) []int {
	out := []int{}
	for _, v := range p.Results {
		out = append(out, v.Version)
	}
	return out
}

// TestCLIVersions: secret and user-secret versions, newest first, with
// stages, readability (a destroyed version), paging and NOT_FOUND.
func TestCLIVersions(t *testing.T) {
	t.Parallel()
	s := newCLIStack(t)
	adminID := auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"}
	admin := s.tokenFile(adminID)
	bob := s.tokenFile(auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "bob"})
	const canary = "canary-7e31c0aa"

	var a secretJSON
	s.okJSON(&a, admin, `{"k": "`+canary+`"}`, "secret", "create", "--name", "v", "--data", "-")
	s.ok(admin, `{"k": "v2"}`, "secret", "put-data", a.SecretID, "--data", "-")
	s.ok(admin, `{"k": "v3"}`, "secret", "put-data", a.SecretID, "--data", "-")
	ctx := context.Background()
	require.NoError(t, s.apiClient(adminID).Do(ctx, `mutation($id: ID!) { destroySecretVersions(secretId: $id, versions: [1]) { version } }`,
		map[string]any{"id": a.SecretID}, nil))

	var p client.SecretVersionPage
	s.okJSON(&p, admin, "", "secret", "versions", a.SecretID)
	require.Equal(t, []int{3, 2, 1}, versionNumbers(p), "newest first")
	require.Nil(t, p.NextCursor)
	require.Equal(t, []string{"SYSCURRENT"}, p.Results[0].Stages)
	require.Equal(t, []string{"SYSPREVIOUS"}, p.Results[1].Stages)
	require.True(t, p.Results[0].Readable)
	require.False(t, p.Results[2].Readable, "version 1 was destroyed")
	require.Equal(t, "alice", p.Results[0].CreatedBy)

	// Paging: --first, --after, --all.
	var p1, p2, all client.SecretVersionPage
	s.okJSON(&p1, admin, "", "secret", "versions", a.SecretID, "--first", "2")
	require.Equal(t, []int{3, 2}, versionNumbers(p1))
	require.NotNil(t, p1.NextCursor)
	s.okJSON(&p2, admin, "", "secret", "versions", a.SecretID, "--first", "2", "--after", *p1.NextCursor)
	require.Equal(t, []int{1}, versionNumbers(p2))
	s.okJSON(&all, admin, "", "secret", "versions", a.SecretID, "--first", "1", "--all")
	require.Equal(t, p.Results, all.Results)
	require.Nil(t, all.NextCursor)

	// The table: every column, the cursor on stderr, never the value.
	r := s.run(admin, "", "secret", "versions", a.SecretID, "--first", "2")
	require.Equal(t, 0, r.status, r)
	for _, h := range []string{"VERSION", "STAGES", "CREATED", "BY", "READABLE", "SYSCURRENT", "SYSPREVIOUS", "alice", "yes"} {
		require.Contains(t, r.stdout, h)
	}
	require.Contains(t, r.stderr, "more: --after ")
	table := s.ok(admin, "", "secret", "versions", a.SecretID)
	require.Contains(t, table, "no (destroyed)")
	require.NotContains(t, table, canary)
	t.Logf("secret versions:\n%s", table)

	s.fails(4, admin, "", "secret", "versions", "secret-000000000000")
	s.fails(2, admin, "", "secret", "versions")
	s.fails(2, admin, "", "secret", "versions", a.SecretID, "--first", "0")

	// user-secret versions.
	var u userSecretJSON
	s.okJSON(&u, bob, `{"token": "t1"}`, "user-secret", "create", "--name", "gh", "--data", "-")
	s.ok(bob, `{"token": "t2"}`, "user-secret", "put-data", u.UserSecretID, "--data", "-")
	s.okJSON(&p, bob, "", "user-secret", "versions", u.UserSecretID)
	require.Equal(t, []int{2, 1}, versionNumbers(p))
	require.Equal(t, []string{"SYSCURRENT"}, p.Results[0].Stages)
	require.Equal(t, "bob", p.Results[1].CreatedBy)
	require.Contains(t, s.ok(bob, "", "user-secret", "versions", u.UserSecretID), "SYSPREVIOUS")
	r = s.fails(4, bob, "", "user-secret", "versions", "user-secret-000000000000")
	require.Contains(t, r.stderr, "user secret user-secret-000000000000: NOT_FOUND")
}

type trustedSecretJSON struct {
	client.TrustedSecret
	Data map[string]any `json:"data"`
}

// TestCLITrustedSecretCommands drives every trusted-secret command against a
// real server: JSON parsed back, values only with get --data (SYSTEM), exit
// statuses, and a canary that no other command prints.
func TestCLITrustedSecretCommands(t *testing.T) {
	t.Parallel()
	s := newCLIStack(t)
	admin := s.tokenFile(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	member := s.tokenFile(auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "ws-1", UserID: "mia"})
	system := s.tokenFile(auth.Identity{Role: auth.RoleSystem, DomainID: "d1"})
	other := s.tokenFile(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d2", UserID: "zed"})
	const canary = "canary-3f9a1c27"
	b64 := base64.StdEncoding.EncodeToString([]byte(canary))

	var outputs []result
	ok := func(token, stdin string, args ...string) string {
		t.Helper()
		r := s.run(token, stdin, args...)
		require.Equal(t, 0, r.status, "%v: %s", args, r)
		outputs = append(outputs, r)
		return r.stdout
	}
	okJSON := func(v any, token, stdin string, args ...string) {
		t.Helper()
		out := ok(token, stdin, append(args, "-o", "json")...)
		reflect.ValueOf(v).Elem().SetZero()
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(v), "output of %v:\n%s", args, out)
	}

	// create: DOMAIN by default, WORKSPACE with --workspace.
	var a trustedSecretJSON
	okJSON(&a, admin, `{"username": "root", "password": "`+canary+`"}`, "trusted-secret", "create", "--name", "org-root",
		"--schema", "basic_auth", "--tag", "env=prod", "--description", "the org's root", "--data", "-")
	require.Regexp(t, `^trusted-secret-[0-9a-f]{12}$`, a.TrustedSecretID)
	require.Equal(t, client.ResourceGroupDomain, a.ResourceGroup)
	require.Equal(t, "org-root", a.Name)
	require.Equal(t, map[string]any{"env": "prod"}, a.Tags)
	require.Equal(t, "the org's root", *a.Description)
	require.Equal(t, "ENABLED", a.State)
	require.Equal(t, 1, a.Version)
	require.Equal(t, "alice", a.CreatedBy)
	require.Nil(t, a.Data)
	var b trustedSecretJSON
	okJSON(&b, admin, "", "trusted-secret", "create", "--name", "ws-root", "--workspace", "ws-1",
		"--data-file", writeFile(t, `{"token": "t-1"}`))
	require.Equal(t, client.ResourceGroupWorkspace, b.ResourceGroup)
	require.Equal(t, "ws-1", *b.WorkspaceID)
	s.fails(2, admin, `{"k": "v"}`, "trusted-secret", "create", "--name", "x", "--resource-group", "PROJECT", "--data", "-")
	s.fails(2, admin, "", "trusted-secret", "create", "--name", "x")
	s.fails(3, member, `{"k": "v"}`, "trusted-secret", "create", "--name", "x", "--data", "-")

	// list.
	var list client.TrustedSecretList
	okJSON(&list, admin, "", "trusted-secret", "list")
	require.Equal(t, 2, list.TotalCount)
	require.Equal(t, []string{b.TrustedSecretID, a.TrustedSecretID}, []string{list.Results[0].TrustedSecretID, list.Results[1].TrustedSecretID})
	okJSON(&list, admin, "", "trusted-secret", "list", "--workspace", "ws-1")
	require.Equal(t, []string{b.TrustedSecretID}, []string{list.Results[0].TrustedSecretID})
	okJSON(&list, admin, "", "trusted-secret", "list", "--tag", "env=prod")
	require.Equal(t, []string{a.TrustedSecretID}, []string{list.Results[0].TrustedSecretID})
	okJSON(&list, member, "", "trusted-secret", "list")
	require.Equal(t, 2, list.TotalCount, "a member reads DOMAIN ones and its workspace's")
	okJSON(&list, other, "", "trusted-secret", "list")
	require.Zero(t, list.TotalCount)
	require.NotNil(t, list.Results)
	table := ok(admin, "", "trusted-secret", "list")
	require.Contains(t, table, "STATE")
	require.Contains(t, table, a.TrustedSecretID)
	t.Logf("trusted-secret list:\n%s", table)

	// get: metadata only.
	var got trustedSecretJSON
	okJSON(&got, admin, "", "trusted-secret", "get", a.TrustedSecretID)
	require.Equal(t, a.TrustedSecret, got.TrustedSecret)
	require.Nil(t, got.Data)
	table = ok(admin, "", "trusted-secret", "get", a.TrustedSecretID)
	require.Contains(t, table, "org-root")
	t.Logf("trusted-secret get:\n%s", table)
	s.fails(4, admin, "", "trusted-secret", "get", "trusted-secret-000000000000")
	r := s.fails(4, other, "", "trusted-secret", "get", a.TrustedSecretID)
	require.Contains(t, r.stderr, "trusted secret "+a.TrustedSecretID+": NOT_FOUND")
	s.fails(3, admin, "", "trusted-secret", "get", a.TrustedSecretID, "--data")
	s.fails(2, admin, "", "trusted-secret", "get", a.TrustedSecretID, "--field", "password")

	// update.
	okJSON(&got, admin, "", "trusted-secret", "update", a.TrustedSecretID, "--name", "org-root-2", "--tag", "env=stage", "--max-versions", "5")
	require.Equal(t, "org-root-2", got.Name)
	require.Equal(t, map[string]any{"env": "stage"}, got.Tags)
	require.Equal(t, 5, *got.MaxVersions)
	require.Equal(t, 1, got.Version)
	okJSON(&got, admin, "", "trusted-secret", "update", a.TrustedSecretID, "--clear-tags")
	require.Empty(t, got.Tags)
	s.fails(2, admin, "", "trusted-secret", "update", a.TrustedSecretID)
	s.fails(3, member, "", "trusted-secret", "update", a.TrustedSecretID, "--name", "x")

	// put-data: a new version.
	okJSON(&got, admin, `{"username": "root", "password": "`+canary+`-2"}`, "trusted-secret", "put-data", a.TrustedSecretID, "--data", "-")
	require.Equal(t, 2, got.Version)
	require.Nil(t, got.Data)

	// versions, history.
	var vp client.SecretVersionPage
	okJSON(&vp, admin, "", "trusted-secret", "versions", a.TrustedSecretID)
	require.Equal(t, []int{2, 1}, versionNumbers(vp))
	require.Equal(t, []string{"SYSCURRENT"}, vp.Results[0].Stages)
	require.Contains(t, ok(admin, "", "trusted-secret", "versions", a.TrustedSecretID), "SYSPREVIOUS")

	// Nothing so far printed the value: now SYSTEM reads it.
	for _, r := range outputs {
		for _, out := range []string{r.stdout, r.stderr} {
			require.NotContains(t, out, canary)
			require.NotContains(t, out, b64)
		}
	}
	s.okJSON(&got, system, "", "trusted-secret", "get", a.TrustedSecretID, "--data") // not in outputs: asked for
	require.Equal(t, map[string]any{"username": "root", "password": canary + "-2"}, got.Data)
	require.Equal(t, "org-root-2", got.Name)
	require.Equal(t, canary+"-2\n", s.ok(system, "", "trusted-secret", "get", a.TrustedSecretID, "--data", "--field", "password"))
	require.Contains(t, s.ok(system, "", "trusted-secret", "get", a.TrustedSecretID, "--data"), "DATA KEY")

	var h client.AuditEventPage
	okJSON(&h, admin, "", "trusted-secret", "history", a.TrustedSecretID)
	// --max-versions is a lifecycle setting: its own SettingsChanged event.
	require.Equal(t, []string{"TrustedSecretCreated.v1", "TrustedSecretUpdated.v1", "SettingsChanged.v1", "TrustedSecretUpdated.v1",
		"TrustedSecretDataUpdated.v1", "TrustedSecretDataRead.v1", "TrustedSecretDataRead.v1", "TrustedSecretDataRead.v1"}, types(h))
	var p1 client.AuditEventPage
	okJSON(&p1, admin, "", "trusted-secret", "history", a.TrustedSecretID, "--first", "3")
	require.Equal(t, h.Results[:3], p1.Results)
	require.NotNil(t, p1.NextCursor)
	require.Contains(t, ok(admin, "", "trusted-secret", "history", a.TrustedSecretID), "name: org-root → org-root-2")

	// delete: --yes; refused while a secret links to it (5); --force.
	var linked secretJSON
	s.okJSON(&linked, admin, `{"extra": "x"}`, "secret", "create", "--name", "linked", "--trusted-secret", b.TrustedSecretID,
		"--workspace", "ws-1", "--data", "-")
	r = s.fails(2, admin, "", "trusted-secret", "delete", a.TrustedSecretID)
	require.Contains(t, r.stderr, "--yes")
	s.fails(5, admin, "", "trusted-secret", "delete", b.TrustedSecretID, "--yes", "--force")
	s.fails(2, admin, "", "trusted-secret", "delete", a.TrustedSecretID, "--yes", "--recovery-window-days", "1")
	var del map[string]any
	okJSON(&del, admin, "", "trusted-secret", "delete", a.TrustedSecretID, "--yes", "--force")
	require.Equal(t, map[string]any{"trustedSecretId": a.TrustedSecretID, "deleted": true}, del)
	s.fails(4, admin, "", "trusted-secret", "get", a.TrustedSecretID)
	s.fails(4, admin, "", "trusted-secret", "delete", a.TrustedSecretID, "--yes", "--force")
	okJSON(&h, admin, "", "trusted-secret", "history", a.TrustedSecretID)
	require.Equal(t, "TrustedSecretDeleted.v1", h.Results[len(h.Results)-1].Type, "history survives deletion")
	s.ok(admin, "", "secret", "delete", linked.SecretID, "--yes", "--force")
	require.Equal(t, "deleted "+b.TrustedSecretID+"\n", ok(admin, "", "trusted-secret", "delete", b.TrustedSecretID, "-y", "--recovery-window-days", "7"))
	okJSON(&list, admin, "", "trusted-secret", "list")
	require.Zero(t, list.TotalCount)
	var trail client.AuditEventPage
	okJSON(&trail, admin, "", "audit", "--resource-type", "TrustedSecret", "--resource", a.TrustedSecretID, "--oldest-first", "--all")
	require.Equal(t, h.Results[0].Position, trail.Results[0].Position, "the domain's trail has the trusted secret's events")
	require.Equal(t, "TrustedSecretDeleted.v1", trail.Results[len(trail.Results)-1].Type)

	for _, r := range outputs {
		for _, out := range []string{r.stdout, r.stderr} {
			require.NotContains(t, out, canary)
			require.NotContains(t, out, b64)
		}
	}
	require.NotContains(t, s.logs.String(), canary)
}

// follow starts `secretlog audit --follow ARGS` against the stack in a
// goroutine; stop cancels its context and returns the command's error.
func (s *cliStack) follow(token string, args ...string) (stdout, stderr *lockedBuffer, stop func() error) {
	s.t.Helper()
	return followCLI(s.t, s.http.URL, token, args...)
}

// followCLI starts `secretlog audit --follow ARGS` against the server at
// url in a goroutine; stop cancels its context and returns the command's
// error.
func followCLI(t *testing.T, url, token string, args ...string) (stdout, stderr *lockedBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &lockedBuffer{}, &lockedBuffer{}
	root := rootCommand()
	root.SetArgs(append([]string{"audit", "--follow", "--token-file", token, "--server", url}, args...))
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetIn(strings.NewReader(""))
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var once bool
	var err error
	stop = func() error {
		if !once {
			once = true
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("audit --follow did not stop after its context was cancelled")
			}
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stdout, stderr, stop
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 15*time.Second, 10*time.Millisecond, what)
}

// TestCLIAuditFollow: audit --follow prints the page, then one line per new
// event from the change feed (each event once), with the filters mapped onto
// the feed's, until its context is cancelled.
func TestCLIAuditFollow(t *testing.T) {
	t.Parallel()
	s := newCLIStack(t)
	admin := s.tokenFile(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	bob := s.tokenFile(auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "bob"})
	system := s.tokenFile(auth.Identity{Role: auth.RoleSystem, DomainID: "d1"})
	const canary = "canary-c0ffee42"

	var a secretJSON
	s.okJSON(&a, admin, `{"k": "`+canary+`"}`, "secret", "create", "--name", "a", "--data", "-")

	// Table: the page, then a line per event.
	out, errOut, stop := s.follow(admin)
	eventually(t, "following", func() bool { return strings.Contains(errOut.String(), "following the change feed") })
	require.Contains(t, out.String(), "SecretCreated")
	s.ok(admin, `{"k": "`+canary+`-2"}`, "secret", "put-data", a.SecretID, "--data", "-")
	eventually(t, "the put-data line", func() bool { return strings.Contains(out.String(), "SecretDataUpdated") })
	var u userSecretJSON
	s.okJSON(&u, bob, `{"t": "x"}`, "user-secret", "create", "--name", "mine", "--data", "-")
	eventually(t, "the user secret line", func() bool { return strings.Contains(out.String(), "UserSecretCreated") })
	s.ok(system, "", "secret", "get", a.SecretID, "--data", "--field", "k")
	eventually(t, "the read line", func() bool { return strings.Contains(out.String(), "SecretDataRead") })
	require.NoError(t, stop(), "interrupted: success")
	lines := out.String()
	t.Logf("audit --follow:\n%s", lines)
	require.Equal(t, 1, strings.Count(lines, "  SecretCreated  "), "the page's event is not printed again")
	require.Regexp(t, `(?m)^\d+:\d+  \S+  SecretDataUpdated  `+a.SecretID+`  2  alice \(DOMAIN_ADMIN\)  data$`, lines)
	require.Regexp(t, `(?m)  UserSecretCreated  `+u.UserSecretID+`  1  bob \(USER\)  `, lines)
	require.NotContains(t, lines, canary)
	require.NotContains(t, errOut.String(), canary)

	// JSON, filtered: the page, then one object per matching event.
	out, _, stop = s.follow(admin, "-o", "json", "--type", "SecretDataUpdated", "--resource", a.SecretID, "--actor", "alice")
	eventually(t, "the page", func() bool { return strings.Contains(out.String(), `"results"`) })
	s.ok(admin, `{"k": "v3"}`, "secret", "put-data", a.SecretID, "--data", "-")       // matches
	s.ok(admin, "", "secret", "update", a.SecretID, "--name", "a2")                   // another type
	s.ok(bob, `{"t": "y"}`, "user-secret", "put-data", u.UserSecretID, "--data", "-") // another resource
	s.ok(system, "", "secret", "get", a.SecretID, "--data", "--field", "k")           // another type and actor
	s.ok(admin, `{"k": "v4"}`, "secret", "put-data", a.SecretID, "--data", "-")       // matches
	eventually(t, "two events", func() bool { return strings.Count(out.String(), `"eventId"`) == 2 })
	require.NoError(t, stop())
	dec := json.NewDecoder(strings.NewReader(out.String()))
	dec.DisallowUnknownFields()
	var page client.AuditEventPage
	require.NoError(t, dec.Decode(&page))
	require.Equal(t, []string{"SecretDataUpdated.v1"}, types(page))
	var got []client.ChangeEvent
	for dec.More() {
		var e client.ChangeEvent
		require.NoError(t, dec.Decode(&e))
		got = append(got, e)
	}
	require.Len(t, got, 2, "only the matching events")
	for i, e := range got {
		require.Equal(t, "SecretDataUpdated.v1", e.Type)
		require.Equal(t, a.SecretID, e.ResourceID)
		require.Equal(t, "Secret", e.ResourceType)
		require.Equal(t, 3+i, *e.DataVersion)
		require.Equal(t, []string{"data"}, e.ChangedFields)
		require.Equal(t, "alice", *e.Actor.UserID)
		require.Regexp(t, `^\d+:\d+$`, e.Position)
	}

	// Trusted secrets: --resource-type picks their subscription alone.
	out, _, stop = s.follow(admin, "-o", "json", "--resource-type", "TrustedSecret")
	eventually(t, "the page", func() bool { return strings.Contains(out.String(), `"results"`) })
	s.ok(admin, "", "secret", "update", a.SecretID, "--name", "a3") // another kind
	var ts trustedSecretJSON
	s.okJSON(&ts, admin, `{"k": "`+canary+`"}`, "trusted-secret", "create", "--name", "t", "--data", "-")
	eventually(t, "the trusted secret's event", func() bool { return strings.Contains(out.String(), "TrustedSecretCreated.v1") })
	require.NoError(t, stop())
	require.NotContains(t, out.String(), "SecretUpdated")
	require.Contains(t, out.String(), ts.TrustedSecretID)
	require.NotContains(t, out.String(), canary)

	// Usage errors, before connecting.
	s.fails(2, admin, "", "audit", "--follow", "--resource-type", "Key")
	s.fails(2, admin, "", "audit", "--follow", "--to", "1h")
	// A token that may not follow: the page fails first (3).
	s.fails(3, bob, "", "audit", "--follow")
	require.NotContains(t, s.logs.String(), canary)
}
