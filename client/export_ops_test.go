package client

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// TestExportOperationsMatchSchema: the operations export and import use.
func TestExportOperationsMatchSchema(t *testing.T) {
	src, err := os.ReadFile("../schema.graphql")
	require.NoError(t, err)
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: string(src)})
	require.Nil(t, gerr)
	for _, op := range []string{opSecretDetails, opUserSecretDetails, opSecretDataVersion, opUserSecretDataVersion,
		opSecretVersions, opUserSecretVersions} {
		_, errs := gqlparser.LoadQuery(schema, op)
		require.Empty(t, errs, "operation %s", op)
	}
}

// TestWithHeaderAndRequestToken: extra headers go out, the client's own win,
// and a create carries its settings and clientRequestToken only when set.
func TestWithHeaderAndRequestToken(t *testing.T) {
	srv, last, body := fake(t, 200, `{"data":{"createSecret":{"secretId":"secret-000000000001","name":"n","resourceGroup":"DOMAIN"}}}`)
	c, err := New(srv.URL, "tok-123", WithHeader("X-Correlation-ID", "import-1"), WithHeader("Authorization", "Bearer other"))
	require.NoError(t, err)
	_, err = c.CreateSecret(context.Background(), CreateSecretInput{Name: "n", Data: map[string]any{"k": "v"}, ResourceGroup: ResourceGroupDomain,
		Settings: Settings{Description: "d", MaxVersions: 5}, ClientRequestToken: "tok-abc"})
	require.NoError(t, err)
	require.Equal(t, "import-1", last.Header.Get("X-Correlation-ID"))
	require.Equal(t, "Bearer tok-123", last.Header.Get("Authorization"))
	var req struct{ Variables map[string]map[string]any }
	require.NoError(t, json.Unmarshal(*body, &req))
	require.Equal(t, map[string]any{"name": "n", "data": map[string]any{"k": "v"}, "resourceGroup": "DOMAIN", "description": "d",
		"maxVersions": float64(5), "clientRequestToken": "tok-abc"}, req.Variables["in"])
}
