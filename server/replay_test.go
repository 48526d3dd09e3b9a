package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/projections"
)

// replayAnswers collects the raw GraphQL answers of every read the API offers.
func replayAnswers(t *testing.T, s *stack, tokens []string, secretIDs, userSecretIDs []string, trustedIDs ...string) []string {
	t.Helper()
	var out []string
	for _, tok := range tokens {
		for _, q := range []struct {
			query string
			vars  map[string]any
		}{
			{`{ secrets(query: {sort: [{key: "name"}]}) { totalCount results { secretId name schemaId provider tags resourceGroup domainId workspaceId projectId serviceAccountId trustedSecretId version createdBy updatedBy createdAt updatedAt } } }`, nil},
			{`{ userSecrets(query: {sort: [{key: "name"}]}) { totalCount results { userSecretId name schemaId provider tags domainId userId version createdBy updatedBy createdAt updatedAt } } }`, nil},
			{`{ secretStat(query: {aggregate: [{count: {name: "n"}}]}) userSecretStat(query: {aggregate: [{count: {name: "n"}}]}) }`, nil},
			{`{ trustedSecrets(query: {sort: [{key: "name"}]}) { totalCount results { trustedSecretId name schemaId provider tags trustedAccountId resourceGroup domainId workspaceId version createdBy updatedBy createdAt updatedAt } } }`, nil},
			{`{ trustedSecretStat(query: {aggregate: [{group: {keys: [{key: "resourceGroup", name: "g"}], fields: [{operator: "count", name: "n"}]}}, {sort: {key: "g"}}]}) }`, nil},
		} {
			r := s.do(tok, q.query, q.vars)
			require.Empty(t, r.Errors)
			out = append(out, string(r.Data))
		}
		for _, id := range secretIDs {
			r := s.do(tok, `query($id: ID!) { secret(secretId: $id) { secretId name tags version projectId updatedAt } }`, map[string]any{"id": id})
			b, _ := json.Marshal(r.Errors)
			out = append(out, string(r.Data)+string(b))
		}
		for _, id := range userSecretIDs {
			r := s.do(tok, `query($id: ID!) { userSecret(userSecretId: $id) { userSecretId name tags version updatedAt } }`, map[string]any{"id": id})
			b, _ := json.Marshal(r.Errors)
			out = append(out, string(r.Data)+string(b))
		}
		for _, id := range trustedIDs {
			r := s.do(tok, `query($id: ID!) { trustedSecret(trustedSecretId: $id) { trustedSecretId name tags version workspaceId updatedAt } }`, map[string]any{"id": id})
			b, _ := json.Marshal(r.Errors)
			out = append(out, string(r.Data)+string(b))
			r = s.do(tok, `query($id: ID!) { trustedSecretHistory(trustedSecretId: $id) { results { position type dataVersion changes { field old new } } } }`, map[string]any{"id": id})
			b, _ = json.Marshal(r.Errors)
			out = append(out, string(r.Data)+string(b))
		}
	}
	return out
}

// TestDropReadModelsAndReplay: dropping the read-model tables and replaying
// the log (by restarting the server, and by the rebuild tool) gives the
// same answers byte for byte.
func TestDropReadModelsAndReplay(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "admin"})
	owner := s.token(auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: "w1", UserID: "owner"})
	member := s.token(auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", Projects: []string{"p1"}, UserID: "member"})
	user := s.token(auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "u1"})
	system := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "d1"})
	var secretIDs, userSecretIDs, trustedIDs []string
	for i := 0; i < 4; i++ {
		in := map[string]any{"name": fmt.Sprintf("t-%d", i), "data": map[string]any{"token": fmt.Sprint(i)},
			"tags": map[string]any{"n": i}, "resourceGroup": "DOMAIN", "trustedAccountId": "ta-1"}
		if i%2 == 1 {
			in["resourceGroup"], in["workspaceId"] = "WORKSPACE", "w1"
		}
		var out struct {
			CreateTrustedSecret struct{ TrustedSecretID string }
		}
		s.mustOK(admin, `mutation($in: CreateTrustedSecretInput!) { createTrustedSecret(input: $in) { trustedSecretId } }`, map[string]any{"in": in}, &out)
		trustedIDs = append(trustedIDs, out.CreateTrustedSecret.TrustedSecretID)
	}
	s.mustOK(admin, `mutation($id: ID!) { updateTrustedSecret(input: {trustedSecretId: $id, name: "t-renamed", tags: {a: "b"}}) { version } }`, map[string]any{"id": trustedIDs[0]}, nil)
	s.mustOK(admin, `mutation($id: ID!) { updateTrustedSecretData(input: {trustedSecretId: $id, data: {token: "y"}}) { version } }`, map[string]any{"id": trustedIDs[1]}, nil)
	s.mustOK(admin, `mutation($id: ID!) { deleteTrustedSecret(trustedSecretId: $id) }`, map[string]any{"id": trustedIDs[2]}, nil)
	for i := 0; i < 12; i++ {
		in := map[string]any{"name": fmt.Sprintf("s-%02d", i), "data": map[string]any{"token": fmt.Sprint(i)},
			"tags": map[string]any{"n": i, "team": "core"}}
		switch i % 3 {
		case 0:
			in["resourceGroup"] = "DOMAIN"
		case 1:
			in["resourceGroup"], in["workspaceId"] = "WORKSPACE", "w1"
		default:
			in["resourceGroup"], in["workspaceId"], in["projectId"] = "PROJECT", "w1", fmt.Sprintf("p%d", i%2+1)
		}
		if i%4 == 1 {
			in["trustedSecretId"] = trustedIDs[(i/4)%2] // every one is visible from w1
		}
		secretIDs = append(secretIDs, s.createSecret(admin, in))
	}
	// Links after creation, a merged read (two access events) and an unlink.
	s.mustOK(admin, `mutation($id: ID!, $t: String) { updateSecret(input: {secretId: $id, trustedSecretId: $t}) { version } }`,
		map[string]any{"id": secretIDs[0], "t": trustedIDs[0]}, nil)
	s.mustOK(system, `query($id: ID!) { secretData(secretId: $id) { data } }`, map[string]any{"id": secretIDs[1]}, nil)
	s.mustOK(admin, `mutation($id: ID!) { updateSecret(input: {secretId: $id, trustedSecretId: ""}) { version } }`,
		map[string]any{"id": secretIDs[5]}, nil)
	for i, id := range secretIDs {
		switch i % 4 {
		case 0:
			s.mustOK(admin, `mutation($id: ID!) { updateSecretData(input: {secretId: $id, data: {token: "x"}}) { version } }`, map[string]any{"id": id}, nil)
		case 1:
			s.mustOK(admin, `mutation($id: ID!) { updateSecret(input: {secretId: $id, name: "renamed", tags: {a: "b"}}) { version } }`, map[string]any{"id": id}, nil)
		case 2:
			s.mustOK(admin, `mutation($id: ID!) { deleteSecret(secretId: $id) }`, map[string]any{"id": id}, nil)
		}
	}
	for i := 0; i < 4; i++ {
		id := s.createUserSecret(user, map[string]any{"name": fmt.Sprintf("u-%d", i), "data": map[string]any{"pw": "x"}})
		userSecretIDs = append(userSecretIDs, id)
		if i == 3 {
			s.mustOK(user, `mutation($id: ID!) { deleteUserSecret(userSecretId: $id) }`, map[string]any{"id": id}, nil)
		}
	}
	tokens := []string{admin, owner, member, user}
	before := replayAnswers(t, s, tokens, secretIDs, userSecretIDs, trustedIDs...)

	ctx := context.Background()
	dropReadModels := func() {
		conn, err := pgx.Connect(ctx, s.DatabaseURL)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `DROP TABLE secrets, user_secrets, trusted_secrets`)
		require.NoError(t, err)
	}

	// 1. Drop the tables, restart: the server recreates them and replays the log before serving.
	s.stop()
	dropReadModels()
	s.start()
	require.Equal(t, before, replayAnswers(t, s, tokens, secretIDs, userSecretIDs, trustedIDs...))

	// 2. The rebuild tool, offline.
	s.stop()
	pool, err := pgxpool.New(ctx, s.DatabaseURL)
	require.NoError(t, err)
	report, err := projections.RebuildOnline(ctx, pool, projections.RebuildOptions{})
	pool.Close()
	require.NoError(t, err)
	require.Len(t, report.Projections, len(projections.All()))
	for _, p := range report.Projections {
		require.Positive(t, p.Events, p.Name)
	}
	s.start()
	require.Equal(t, before, replayAnswers(t, s, tokens, secretIDs, userSecretIDs, trustedIDs...))

	// 3. The rebuild tool, online: the server keeps answering, then answers the same.
	report, err = projections.RebuildOnline(ctx, s.Server.Pool, projections.RebuildOptions{})
	require.NoError(t, err)
	require.Len(t, report.Projections, len(projections.All()))
	require.Equal(t, before, replayAnswers(t, s, tokens, secretIDs, userSecretIDs, trustedIDs...))
	report, err = projections.RebuildOnline(ctx, s.Server.Pool, projections.RebuildOptions{Check: true})
	require.NoError(t, err)
	require.Empty(t, report.Differences)
}
