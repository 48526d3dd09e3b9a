package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/archive"
	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/client"
)

// Archives written by tests use cheap argon2id parameters; each archive
// records its own, so import reads them as any other.
func init() { archiveParams = archive.Params{Time: 1, MemoryKiB: 8 << 10, Threads: 1} }

// api is a Go client of the stack with a token of id.
func (s *cliStack) api(id auth.Identity) *client.Client {
	s.t.Helper()
	tok, err := s.srv.Signer.Mint(id, time.Hour)
	require.NoError(s.t, err)
	c, err := client.New(s.http.URL, tok, client.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	require.NoError(s.t, err)
	return c
}

// counts is how many secrets and user secrets a SYSTEM token sees.
func counts(t *testing.T, c *client.Client) (secrets, userSecrets int) {
	t.Helper()
	ctx := context.Background()
	q := &client.QueryInput{CountOnly: true}
	s, err := c.Secrets(ctx, client.SecretsFilter{Query: q})
	require.NoError(t, err)
	u, err := c.UserSecrets(ctx, client.UserSecretsFilter{Query: q})
	require.NoError(t, err)
	return s.TotalCount, u.TotalCount
}

// versionsOf reads every readable version of a resource's value, oldest first.
func versionsOf(t *testing.T, c *client.Client, user bool, id string) []map[string]any {
	t.Helper()
	ctx := context.Background()
	list, read := c.SecretVersions, c.SecretDataVersion
	if user {
		list, read = c.UserSecretVersions, c.UserSecretDataVersion
	}
	page, err := list(ctx, id, client.PageArgs{First: 100})
	require.NoError(t, err)
	var out []map[string]any
	for i := len(page.Results) - 1; i >= 0; i-- {
		if !page.Results[i].Readable {
			continue
		}
		d, err := read(ctx, id, page.Results[i].Version)
		require.NoError(t, err)
		out = append(out, d.Data)
	}
	return out
}

// requireNoCanary: the file holds the canary in no plain, hex or base64
// form (base64 at each of the three alignments).
func requireNoCanary(t *testing.T, file []byte, canary string) {
	t.Helper()
	forms := []string{canary, hex.EncodeToString([]byte(canary)), strings.ToUpper(hex.EncodeToString([]byte(canary)))}
	for shift := 0; shift < 3; shift++ {
		b := append(make([]byte, shift), canary...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(b)
			forms = append(forms, s[4:len(s)-4])
		}
	}
	for _, f := range forms {
		require.NotContains(t, string(file), f)
	}
}

// TestExportImport: export every secret and user secret of one server, with
// every version, and import them into a fresh one: the same values and
// metadata, an import history, tampered archives and a wrong passphrase
// import nothing, and a second import changes nothing.
func TestExportImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, dst := newCLIStack(t), newCLIStack(t)
	aliceID := auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"}
	bobID := auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "bob"}
	systemID := auth.Identity{Role: auth.RoleSystem, DomainID: "d1"}
	alice, bob, srcSystem := src.api(aliceID), src.api(bobID), src.api(systemID)
	const canary = "canary-Qx7Rz2Lp9Vw4"

	// The source: secrets in each resource group, with settings and several
	// versions; user secrets of two users; a disabled secret.
	type made struct {
		user bool
		id   string
	}
	var all []made
	a, err := alice.CreateSecret(ctx, client.CreateSecretInput{Name: "db-prod", ResourceGroup: client.ResourceGroupDomain, SchemaID: "basic_auth",
		Tags: map[string]any{"env": "prod", "team": "core"}, Data: map[string]any{"username": "app", "password": canary + "-v1"},
		Settings: client.Settings{Description: "the production database", MaxVersions: 10}})
	require.NoError(t, err)
	for i := 2; i <= 3; i++ {
		_, err = alice.UpdateSecretData(ctx, client.UpdateSecretDataInput{SecretID: a.SecretID, Data: map[string]any{"username": "app", "password": fmt.Sprintf("%s-v%d", canary, i)}})
		require.NoError(t, err)
	}
	all = append(all, made{id: a.SecretID})
	p, err := alice.CreateSecret(ctx, client.CreateSecretInput{Name: "deploy", ResourceGroup: client.ResourceGroupProject, WorkspaceID: "ws-1", ProjectID: "p-1",
		Data: map[string]any{"key": canary + "-p", "n": 12345.5, "nested": map[string]any{"ok": true, "list": []any{"x", 1.0}}}})
	require.NoError(t, err)
	all = append(all, made{id: p.SecretID})
	for i := range 5 {
		s, err := alice.CreateSecret(ctx, client.CreateSecretInput{Name: fmt.Sprintf("svc-%d", i), ResourceGroup: client.ResourceGroupWorkspace, WorkspaceID: "ws-2",
			Data: map[string]any{"token": fmt.Sprintf("%s-svc-%d", canary, i)}})
		require.NoError(t, err)
		all = append(all, made{id: s.SecretID})
	}
	disabled, err := alice.CreateSecret(ctx, client.CreateSecretInput{Name: "old", ResourceGroup: client.ResourceGroupDomain, Data: map[string]any{"k": canary + "-old"}})
	require.NoError(t, err)
	require.NoError(t, alice.Do(ctx, `mutation($id: ID!) { disableSecret(secretId: $id) { secretId } }`, map[string]any{"id": disabled.SecretID}, nil))
	ua, err := alice.CreateUserSecret(ctx, client.CreateUserSecretInput{Name: "alice-gh", SchemaID: "api_token", Data: map[string]any{"token": canary + "-ua1"}})
	require.NoError(t, err)
	_, err = alice.UpdateUserSecretData(ctx, client.UpdateUserSecretDataInput{UserSecretID: ua.UserSecretID, Data: map[string]any{"token": canary + "-ua2"}})
	require.NoError(t, err)
	all = append(all, made{user: true, id: ua.UserSecretID})
	ub, err := bob.CreateUserSecret(ctx, client.CreateUserSecretInput{Name: "bob-npm", Data: map[string]any{"token": canary + "-ub"}})
	require.NoError(t, err)
	all = append(all, made{user: true, id: ub.UserSecretID})

	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(passFile, []byte("correct horse battery staple\n"), 0o600))
	srcSys, srcAdmin := src.tokenFile(systemID), src.tokenFile(aliceID)

	// Export needs a SYSTEM token of the named domain and a passphrase.
	full := filepath.Join(dir, "full.slarchive")
	r := src.fails(3, srcAdmin, "", "export", "--domain", "d1", "--out", full, "--passphrase-file", passFile)
	require.Contains(t, r.stderr, "SYSTEM")
	src.fails(2, srcSys, "", "export", "--domain", "d2", "--out", full, "--passphrase-file", passFile)
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	r = src.fails(2, srcSys, "", "export", "--domain", "d1", "--out", full, "--passphrase-file", empty)
	require.Contains(t, r.stderr, "empty passphrase is refused")
	src.fails(2, srcSys, "", "export", "--domain", "d1", "--out", full, "--passphrase", "x")
	_, err = os.Stat(full)
	require.True(t, os.IsNotExist(err), "no archive after a refused export")

	var exp exportReport
	src.okJSON(&exp, srcSys, "", "export", "--domain", "d1", "--all-versions", "--out", full, "--passphrase-file", passFile, "--progress")
	require.Equal(t, 7, exp.Secrets)
	require.Equal(t, 2, exp.UserSecrets)
	require.Equal(t, 3+1+5+2+1, exp.Versions)
	require.Equal(t, []skipped{{Kind: "secret", ID: disabled.SecretID, Name: "old", Reason: "disabled: its values cannot be read (enable it and export again)"}}, exp.Skipped)
	r = src.run(srcSys, "", "export", "--domain", "d1", "--all-versions", "--out", full, "--passphrase-file", passFile, "--progress")
	require.Equal(t, 2, r.status, "an existing archive is not replaced without --force: %s", r)
	fi, err := os.Stat(full)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	file, err := os.ReadFile(full)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(file), "secretlog-archive v1\n"))
	requireNoCanary(t, file, canary)
	leftovers, err := filepath.Glob(filepath.Join(dir, ".secretlog-export-*"))
	require.NoError(t, err)
	require.Empty(t, leftovers)

	// The export read every value: each read is in the source's audit trail.
	reads, err := srcSystem.AuditEvents(ctx, client.AuditFilter{ResourceID: a.SecretID, Types: []string{"SecretDataRead"}}, client.PageArgs{First: 100}, false)
	require.NoError(t, err)
	require.Len(t, reads.Results, 3, "one audited read per exported version")

	// The current values only, with a filter, to standard output.
	cur := src.ok(srcSys, "", "export", "--domain", "d1", "--filter", "tags.env=prod", "--kind", "secrets", "--out", "-", "--passphrase-file", passFile)
	requireNoCanary(t, []byte(cur), canary)
	pl, err := archive.Open(strings.NewReader(cur), []byte("correct horse battery staple"))
	require.NoError(t, err)
	one, err := archive.Decode(pl)
	require.NoError(t, err)
	require.Len(t, one.Secrets, 1)
	require.Empty(t, one.UserSecrets)
	require.Equal(t, []archive.Version{{Version: 3, Data: map[string]any{"username": "app", "password": canary + "-v3"}}}, one.Secrets[0].Versions)

	// The target: wrong passphrases and damaged archives import nothing.
	dstAdmin, dstBob := dst.tokenFile(aliceID), dst.tokenFile(bobID)
	dstSystem := dst.api(systemID)
	nothing := func() {
		t.Helper()
		s, u := counts(t, dstSystem)
		require.Zero(t, s+u, "nothing imported")
	}
	wrong := filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(wrong, []byte("correct horse battery stapler\n"), 0o600))
	r = dst.fails(2, dstAdmin, "", "import", "--in", full, "--passphrase-file", wrong)
	require.Contains(t, r.stderr, "INVALID_ARGUMENT: archive "+full+": wrong passphrase, or the archive was changed or damaged; nothing was imported")
	nothing()
	tampered := filepath.Join(dir, "tampered")
	positions := []int{0, 5, len("secretlog-archive v1\n") + 3, len("secretlog-archive v1\n") + 40, len(file) / 2, len(file) - 17, len(file) - 1}
	for i := 0; i < len(file); i += len(file)/8 + 1 {
		positions = append(positions, i)
	}
	for _, pos := range positions {
		bad := append([]byte(nil), file...)
		bad[pos] ^= 0x04
		require.NoError(t, os.WriteFile(tampered, bad, 0o600))
		r = dst.fails(2, dstAdmin, "", "import", "--in", tampered, "--passphrase-file", passFile)
		require.Contains(t, r.stderr, "nothing was imported", "byte %d", pos)
	}
	require.NoError(t, os.WriteFile(tampered, file[:len(file)-1], 0o600))
	dst.fails(2, dstAdmin, "", "import", "--in", tampered, "--passphrase-file", passFile)
	nothing()
	r = dst.fails(2, dstAdmin, "", "import", "--in", full, "--passphrase-file", passFile, "--keep-ids")
	require.Contains(t, r.stderr, "server assigns every id")
	nothing()

	// Import as alice: every secret, alice's user secret; bob's is skipped.
	var rep importReport
	dst.okJSON(&rep, dstAdmin, "", "import", "--in", full, "--passphrase-file", passFile, "--progress")
	require.Equal(t, 8, rep.Created, "%+v", rep)
	require.Equal(t, 1, rep.Skipped)
	require.Zero(t, rep.Failed+rep.Unchanged+rep.Updated)
	require.Regexp(t, `^import-[0-9a-f-]{36}$`, rep.CorrelationID)
	require.Len(t, rep.IDs, 8)
	// Bob imports his own.
	var repBob importReport
	dst.okJSON(&repBob, dstBob, "", "import", "--in", full, "--passphrase-file", passFile, "--kind", "user-secrets")
	require.Equal(t, 1, repBob.Created, "%+v", repBob)
	require.Equal(t, 1, repBob.Skipped, "alice's is not bob's")
	for k, v := range repBob.IDs {
		rep.IDs[k] = v
	}

	// Every value of every version is equal, and the metadata carried over.
	for _, m := range all {
		newID := rep.IDs[m.id]
		require.NotEmpty(t, newID, m.id)
		require.NotEqual(t, m.id, newID)
		require.Equal(t, versionsOf(t, srcSystem, m.user, m.id), versionsOf(t, dstSystem, m.user, newID), m.id)
	}
	got, err := dstSystem.SecretDetails(ctx, &client.QueryInput{Filter: []client.Filter{{K: "secretId", V: rep.IDs[a.SecretID]}}})
	require.NoError(t, err)
	require.Len(t, got.Results, 1)
	g := got.Results[0]
	require.Equal(t, "db-prod", g.Name)
	require.Equal(t, map[string]any{"env": "prod", "team": "core"}, g.Tags)
	require.Equal(t, "basic_auth", *g.SchemaID)
	require.Equal(t, "the production database", *g.Description)
	require.Equal(t, 10, *g.MaxVersions)
	require.Equal(t, 3, g.Version)
	require.Equal(t, "alice", g.CreatedBy)
	pg, err := dstSystem.Secret(ctx, rep.IDs[p.SecretID], nil)
	require.NoError(t, err)
	require.Equal(t, client.ResourceGroupProject, pg.ResourceGroup)
	require.Equal(t, "ws-1", *pg.WorkspaceID)
	require.Equal(t, "p-1", *pg.ProjectID)

	// The history says who imported, under this run's correlation id.
	h, err := dstSystem.SecretHistory(ctx, rep.IDs[a.SecretID], client.PageArgs{First: 100})
	require.NoError(t, err)
	require.Equal(t, "SecretCreated.v1", h.Results[0].Type)
	for _, e := range h.Results[:3] {
		require.Equal(t, rep.CorrelationID, *e.CorrelationID, e.Type)
		require.Equal(t, "alice", *e.Actor.UserID)
	}

	// Importing again changes nothing.
	sBefore, uBefore := counts(t, dstSystem)
	var again importReport
	dst.okJSON(&again, dstAdmin, "", "import", "--in", full, "--passphrase-file", passFile)
	require.Equal(t, 8, again.Unchanged, "%+v", again)
	require.Zero(t, again.Created+again.Updated+again.Failed)
	require.Equal(t, rep.IDs[a.SecretID], again.IDs[a.SecretID], "the same ids")
	sAfter, uAfter := counts(t, dstSystem)
	require.Equal(t, [2]int{sBefore, uBefore}, [2]int{sAfter, uAfter})
	a2, err := dstSystem.Secret(ctx, rep.IDs[a.SecretID], nil)
	require.NoError(t, err)
	require.Equal(t, 3, a2.Version, "no new versions")
	out := dst.ok(dstAdmin, "", "import", "--in", full, "--passphrase-file", passFile)
	require.Contains(t, out, "created 0, updated 0, unchanged 8, skipped 1, failed 0")
	require.NotContains(t, out, canary)

	// The same archive with other options reuses the tokens for different
	// requests: each is a CONFLICT, reported, and the run goes on.
	r = dst.run(dstAdmin, "", "import", "--in", full, "--passphrase-file", passFile, "--mark-source", "-o", "json")
	require.Equal(t, 5, r.status, "%s", r)
	var conflicted importReport
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &conflicted))
	require.Equal(t, 8, conflicted.Failed)
	require.Equal(t, client.CodeConflict, conflicted.Results[0].Code)
	require.Contains(t, r.stderr, "8 of 9 resources failed to import")
	sAfter, uAfter = counts(t, dstSystem)
	require.Equal(t, [2]int{sBefore, uBefore}, [2]int{sAfter, uAfter})
}

// TestImportMarkSource: with --mark-source, resources are tagged with their
// source id and a later run skips them even once the tokens are forgotten.
func TestImportMarkSource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src, dst := newCLIStack(t), newCLIStack(t)
	aliceID := auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"}
	systemID := auth.Identity{Role: auth.RoleSystem, DomainID: "d1"}
	s, err := src.api(aliceID).CreateSecret(ctx, client.CreateSecretInput{Name: "x", ResourceGroup: client.ResourceGroupDomain, Tags: map[string]any{"a": "b"},
		Data: map[string]any{"v": "1"}})
	require.NoError(t, err)
	// A secret linked to a trusted secret goes out with its merged value and
	// comes back unlinked, answering the same secretData.
	var trusted struct {
		CreateTrustedSecret struct{ TrustedSecretID string }
	}
	require.NoError(t, src.api(aliceID).Do(ctx, `mutation { createTrustedSecret(input: {name: "root", resourceGroup: DOMAIN, data: {root: "r-1"}}) { trustedSecretId } }`,
		nil, &trusted))
	linked, err := src.api(aliceID).CreateSecret(ctx, client.CreateSecretInput{Name: "linked", ResourceGroup: client.ResourceGroupDomain,
		TrustedSecretID: trusted.CreateTrustedSecret.TrustedSecretID, Data: map[string]any{"own": "o-1"}})
	require.NoError(t, err)
	passFile := filepath.Join(t.TempDir(), "pass")
	require.NoError(t, os.WriteFile(passFile, []byte("another long passphrase"), 0o600))
	file := filepath.Join(t.TempDir(), "a.slarchive")
	src.ok(src.tokenFile(systemID), "", "export", "--domain", "d1", "--out", file, "--passphrase-file", passFile)

	admin := dst.tokenFile(aliceID)
	var rep importReport
	dst.okJSON(&rep, admin, "", "import", "--in", file, "--passphrase-file", passFile, "--mark-source")
	require.Equal(t, 2, rep.Created)
	d, err := dst.api(systemID).SecretData(ctx, rep.IDs[linked.SecretID])
	require.NoError(t, err)
	require.Equal(t, map[string]any{"root": "r-1", "own": "o-1"}, d.Data)
	l, err := dst.api(systemID).Secret(ctx, rep.IDs[linked.SecretID], nil)
	require.NoError(t, err)
	require.Nil(t, l.TrustedSecretID)
	got, err := dst.api(systemID).Secret(ctx, rep.IDs[s.SecretID], nil)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": "b", sourceTag: s.SecretID}, got.Tags)
	// A re-export has a new archive id, hence new tokens: the tag still finds it.
	file2 := filepath.Join(t.TempDir(), "b.slarchive")
	src.ok(src.tokenFile(systemID), "", "export", "--domain", "d1", "--out", file2, "--passphrase-file", passFile)
	dst.okJSON(&rep, admin, "", "import", "--in", file2, "--passphrase-file", passFile, "--mark-source")
	require.Equal(t, 2, rep.Unchanged, "%+v", rep)
	n, _ := counts(t, dst.api(systemID))
	require.Equal(t, 2, n)
}

func TestRequestTokenAndClaims(t *testing.T) {
	tok := requestToken("0b6f3c1e-1d2a-4c1b-9a7e-3f1d2c3b4a59", "secret-0123456789ab", 3)
	require.Regexp(t, `^[A-Za-z0-9_-]{1,64}$`, tok)
	require.Equal(t, tok, requestToken("0b6f3c1e-1d2a-4c1b-9a7e-3f1d2c3b4a59", "secret-0123456789ab", 3))
	require.NotEqual(t, tok, requestToken("0b6f3c1e-1d2a-4c1b-9a7e-3f1d2c3b4a59", "secret-0123456789ab", 4))
	require.NotEqual(t, tok, requestToken("0b6f3c1e-1d2a-4c1b-9a7e-3f1d2c3b4a5a", "secret-0123456789ab", 3))
	_, ok := peekClaims("not-a-jwt")
	require.False(t, ok)
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"role":"USER","domain_id":"d1","user_id":"bob"}`))
	c, ok := peekClaims("x." + payload + ".y")
	require.True(t, ok)
	require.Equal(t, tokenClaims{UserID: "bob", Role: "USER", DomainID: "d1"}, c)
}
