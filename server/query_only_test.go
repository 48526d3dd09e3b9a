package server_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// TestListOnlyAndMinimal: only and minimal narrow a list's answer: a
// selected field they leave out answers null, the id always answers, and
// without them every selected field answers (schema.graphql, QueryInput).
func TestListOnlyAndMinimal(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "do", UserID: "ada"})
	created := apiCreateSecret(t, s, admin, map[string]any{"name": "db-prod", "resourceGroup": "WORKSPACE", "workspaceId": "w1",
		"schemaId": "aws_access_key", "tags": map[string]any{"env": "prod"},
		"data": map[string]any{"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s3cr3t"}})
	const list = `query($q: QueryInput) { secrets(query: $q) { totalCount results {
		secretId name schemaId provider tags resourceGroup domainId workspaceId version createdBy createdAt } } }`
	rows := func(q map[string]any) []map[string]any {
		var out struct {
			Secrets struct{ Results []map[string]any }
		}
		apiOK(t, s, admin, list, map[string]any{"q": q}, &out)
		require.Len(t, out.Secrets.Results, 1)
		return out.Secrets.Results
	}
	all := rows(nil)[0]
	require.Equal(t, created.SecretID, all["secretId"])
	for _, f := range []string{"name", "schemaId", "provider", "tags", "resourceGroup", "domainId", "workspaceId", "version", "createdBy", "createdAt"} {
		require.NotNil(t, all[f], f)
	}

	only := rows(map[string]any{"only": []any{"name", "tags.env", "workspace_id"}})[0]
	require.Equal(t, map[string]any{"secretId": created.SecretID, "name": "db-prod", "schemaId": nil, "provider": nil,
		"tags": map[string]any{"env": "prod"}, "resourceGroup": nil, "domainId": nil, "workspaceId": "w1", "version": nil,
		"createdBy": nil, "createdAt": nil}, only)

	minimal := rows(map[string]any{"minimal": true, "only": []any{"version"}})[0]
	require.Equal(t, map[string]any{"secretId": created.SecretID, "name": "db-prod", "schemaId": "aws_access_key", "provider": "aws",
		"tags": nil, "resourceGroup": nil, "domainId": nil, "workspaceId": nil, "version": float64(1),
		"createdBy": nil, "createdAt": nil}, minimal)

	// A single read answers every field, whatever lists were asked before.
	var one struct{ Secret map[string]any }
	apiOK(t, s, admin, `query($id: ID!) { secret(secretId: $id) { name resourceGroup version } }`, map[string]any{"id": created.SecretID}, &one)
	require.Equal(t, map[string]any{"name": "db-prod", "resourceGroup": "WORKSPACE", "version": float64(1)}, one.Secret)
}
