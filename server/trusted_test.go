package server_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// TrustedSecret through the whole stack: every operation and error code,
// the link from secrets (valid, missing, foreign-domain and foreign-workspace
// ids, the delete refusal, a racing link and delete) and merged reads.

const apiTrustedFields = `trustedSecretId name schemaId provider tags trustedAccountId resourceGroup domainId
  workspaceId version createdBy updatedBy createdAt updatedAt`

const (
	apiCreateTrustedMutation     = `mutation($in: CreateTrustedSecretInput!) { createTrustedSecret(input: $in) { ` + apiTrustedFields + ` } }`
	apiUpdateTrustedMutation     = `mutation($in: UpdateTrustedSecretInput!) { updateTrustedSecret(input: $in) { ` + apiTrustedFields + ` } }`
	apiUpdateTrustedDataMutation = `mutation($in: UpdateTrustedSecretDataInput!) { updateTrustedSecretData(input: $in) { ` + apiTrustedFields + ` } }`
	apiDeleteTrustedMutation     = `mutation($id: ID!) { deleteTrustedSecret(trustedSecretId: $id, force: true) }`
	apiTrustedQuery              = `query($id: ID!, $asOf: Time) { trustedSecret(trustedSecretId: $id, asOf: $asOf) { ` + apiTrustedFields + ` } }`
	apiTrustedListQuery          = `query($q: QueryInput, $trustedSecretId: ID, $name: String, $schemaId: String, $provider: String,
  $trustedAccountId: String, $workspaceId: String) {
  trustedSecrets(query: $q, trustedSecretId: $trustedSecretId, name: $name, schemaId: $schemaId, provider: $provider,
    trustedAccountId: $trustedAccountId, workspaceId: $workspaceId) { results { ` + apiTrustedFields + ` } totalCount } }`
	apiTrustedStatQuery    = `query($q: Map!) { trustedSecretStat(query: $q) }`
	apiTrustedDataQuery    = `query($id: ID!) { trustedSecretData(trustedSecretId: $id) { encrypted encryptOptions data } }`
	apiTrustedHistoryQuery = `query($id: ID!) { trustedSecretHistory(trustedSecretId: $id, first: 100) { ` + auditFields + ` } }`
	apiSecretHistoryQuery  = `query($id: ID!) { secretHistory(secretId: $id, first: 100) { ` + auditFields + ` } }`
	apiMissingTrusted      = "trusted-secret-000000000000"
)

// trustedLinkLockSpace is commands.linkLockSpace: the advisory locks that
// order links to, and the deletion of, a trusted secret.
const trustedLinkLockSpace = 0x7a57ed

var apiTrustedIDPattern = regexp.MustCompile(`^trusted-secret-[0-9a-f]{12}$`)

type apiTrusted struct {
	TrustedSecretID  string         `json:"trustedSecretId"`
	Name             string         `json:"name"`
	SchemaID         *string        `json:"schemaId"`
	Provider         *string        `json:"provider"`
	Tags             map[string]any `json:"tags"`
	TrustedAccountID *string        `json:"trustedAccountId"`
	ResourceGroup    string         `json:"resourceGroup"`
	DomainID         string         `json:"domainId"`
	WorkspaceID      *string        `json:"workspaceId"`
	Version          int            `json:"version"`
	CreatedBy        string         `json:"createdBy"`
	UpdatedBy        string         `json:"updatedBy"`
	CreatedAt        time.Time      `json:"createdAt"`
	UpdatedAt        time.Time      `json:"updatedAt"`
}

func apiCreateTrusted(t testing.TB, s *stack, token string, in map[string]any) apiTrusted {
	t.Helper()
	var out struct {
		CreateTrustedSecret apiTrusted `json:"createTrustedSecret"`
	}
	apiOK(t, s, token, apiCreateTrustedMutation, map[string]any{"in": in}, &out)
	require.Regexp(t, apiTrustedIDPattern, out.CreateTrustedSecret.TrustedSecretID)
	return out.CreateTrustedSecret
}

func apiGetTrusted(t testing.TB, s *stack, token, id string) apiTrusted {
	t.Helper()
	var out struct {
		TrustedSecret apiTrusted `json:"trustedSecret"`
	}
	apiOK(t, s, token, apiTrustedQuery, map[string]any{"id": id}, &out)
	return out.TrustedSecret
}

func apiListTrusted(t testing.TB, s *stack, token string, vars map[string]any) ([]string, int) {
	t.Helper()
	var out struct {
		TrustedSecrets struct {
			Results    []apiTrusted `json:"results"`
			TotalCount int          `json:"totalCount"`
		} `json:"trustedSecrets"`
	}
	apiOK(t, s, token, apiTrustedListQuery, vars, &out)
	names := []string{}
	for _, r := range out.TrustedSecrets.Results {
		names = append(names, r.Name)
	}
	return names, out.TrustedSecrets.TotalCount
}

func apiTrustedDataOf(t testing.TB, s *stack, token, id string) map[string]any {
	t.Helper()
	var out struct {
		TrustedSecretData apiSecretData `json:"trustedSecretData"`
	}
	apiOK(t, s, token, apiTrustedDataQuery, map[string]any{"id": id}, &out)
	return out.TrustedSecretData.Data
}

func apiHistoryOf(t testing.TB, s *stack, token, query, id string) []auditEntry {
	t.Helper()
	var out map[string]auditPageOut
	apiOK(t, s, token, query, map[string]any{"id": id}, &out)
	for _, p := range out {
		return p.Results
	}
	return nil
}

func TestAPITrustedSecretLifecycle(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)

	// create: DOMAIN by the admin, WORKSPACE (explicit and implicit) by the owner.
	before := time.Now()
	root := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "  org-root ", "resourceGroup": "DOMAIN",
		"schemaId": "aws_access_key", "data": apiAWSData("root-s3cr3t"), "tags": map[string]any{"env": " prod "},
		"trustedAccountId": "ta-1"})
	require.Equal(t, apiTrusted{TrustedSecretID: root.TrustedSecretID, Name: "org-root", SchemaID: apiStr("aws_access_key"),
		Provider: apiStr("aws"), Tags: map[string]any{"env": "prod"}, TrustedAccountID: apiStr("ta-1"), ResourceGroup: "DOMAIN",
		DomainID: "domain-a", Version: 1, CreatedBy: "sub-alice", UpdatedBy: "sub-alice", CreatedAt: root.CreatedAt,
		UpdatedAt: root.UpdatedAt}, root)
	require.False(t, root.CreatedAt.Before(before.Add(-time.Second)))
	require.Equal(t, root.CreatedAt, root.UpdatedAt)
	ws := apiCreateTrusted(t, s, tk.owner, map[string]any{"name": "ws-root", "resourceGroup": "WORKSPACE",
		"workspaceId": "ws-1", "data": map[string]any{"token": "ws-value"}})
	require.Equal(t, "WORKSPACE", ws.ResourceGroup)
	require.Equal(t, apiStr("ws-1"), ws.WorkspaceID)
	require.Nil(t, ws.SchemaID)
	implicit := apiCreateTrusted(t, s, tk.owner, map[string]any{"name": "ws-implicit", "resourceGroup": "WORKSPACE",
		"schemaId": "azure_client_secret", "data": apiAzureData("az")})
	require.Equal(t, apiStr("ws-1"), implicit.WorkspaceID)
	other := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "ws2-root", "resourceGroup": "WORKSPACE",
		"workspaceId": "ws-2", "data": map[string]any{"k": "v"}})
	foreign := apiCreateTrusted(t, s, tk.adminB, map[string]any{"name": "b-root", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "b"}})

	// get: read-your-writes, and the mutation answer equals the read model.
	require.Equal(t, root, apiGetTrusted(t, s, tk.admin, root.TrustedSecretID))
	require.Equal(t, ws, apiGetTrusted(t, s, tk.member, ws.TrustedSecretID))

	// list and its request-level filters, keyword, sort, page.
	t.Run("list", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			token string
			vars  map[string]any
			want  []string
		}{
			{"admin sees the domain", tk.admin, map[string]any{"q": map[string]any{"sort": []any{map[string]any{"key": "name"}}}},
				[]string{"org-root", "ws-implicit", "ws-root", "ws2-root"}},
			{"owner: DOMAIN ones and its workspace's", tk.owner, map[string]any{"q": map[string]any{"sort": []any{map[string]any{"key": "name"}}}},
				[]string{"org-root", "ws-implicit", "ws-root"}},
			{"member likewise", tk.member, map[string]any{"q": map[string]any{"sort": []any{map[string]any{"key": "name", "desc": true}}}},
				[]string{"ws-root", "ws-implicit", "org-root"}},
			{"system", tk.system, map[string]any{"name": "ws2-root"}, []string{"ws2-root"}},
			{"other domain", tk.adminB, nil, []string{"b-root"}},
			{"user sees none", tk.bob, nil, []string{}},
			{"trustedSecretId", tk.admin, map[string]any{"trustedSecretId": ws.TrustedSecretID}, []string{"ws-root"}},
			{"schemaId", tk.admin, map[string]any{"schemaId": "azure_client_secret"}, []string{"ws-implicit"}},
			{"provider", tk.admin, map[string]any{"provider": "aws"}, []string{"org-root"}},
			{"trustedAccountId", tk.admin, map[string]any{"trustedAccountId": "ta-1"}, []string{"org-root"}},
			{"workspaceId", tk.admin, map[string]any{"workspaceId": "ws-2"}, []string{"ws2-root"}},
			{"keyword name", tk.admin, map[string]any{"q": map[string]any{"keyword": "IMPLICIT"}}, []string{"ws-implicit"}},
			{"keyword provider", tk.admin, map[string]any{"q": map[string]any{"keyword": "azure"}}, []string{"ws-implicit"}},
			{"keyword id", tk.admin, map[string]any{"q": map[string]any{"keyword": strings.TrimPrefix(other.TrustedSecretID, "trusted-secret-")}}, []string{"ws2-root"}},
			{"filter tags", tk.admin, map[string]any{"q": map[string]any{"filter": []any{map[string]any{"k": "tags.env", "v": "prod"}}}}, []string{"org-root"}},
			{"page", tk.admin, map[string]any{"q": map[string]any{"sort": []any{map[string]any{"key": "name"}}, "page": map[string]any{"start": 2, "limit": 2}}},
				[]string{"ws-implicit", "ws-root"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, total := apiListTrusted(t, s, tc.token, tc.vars)
				if tc.name == "page" {
					require.Equal(t, 4, total)
				} else {
					require.Equal(t, len(tc.want), total)
				}
				if tc.vars != nil && tc.vars["q"] != nil && tc.vars["q"].(map[string]any)["sort"] != nil {
					require.Equal(t, tc.want, got)
				} else {
					require.ElementsMatch(t, tc.want, got)
				}
			})
		}
		var out struct {
			TrustedSecretStat map[string]any `json:"trustedSecretStat"`
		}
		apiOK(t, s, tk.owner, apiTrustedStatQuery, map[string]any{"q": map[string]any{"aggregate": []any{
			map[string]any{"group": map[string]any{"keys": []any{map[string]any{"key": "resourceGroup", "name": "g"}},
				"fields": []any{map[string]any{"operator": "count", "name": "n"}}}},
			map[string]any{"sort": map[string]any{"key": "g"}}}}}, &out)
		require.Equal(t, []any{map[string]any{"g": "DOMAIN", "n": float64(1)}, map[string]any{"g": "WORKSPACE", "n": float64(2)}},
			out.TrustedSecretStat["results"])
	})

	// update: name and tags; no event when nothing changes.
	renamed := func() apiTrusted {
		var out struct {
			UpdateTrustedSecret apiTrusted `json:"updateTrustedSecret"`
		}
		apiOK(t, s, tk.owner, apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": ws.TrustedSecretID,
			"name": "ws-renamed", "tags": map[string]any{"team": "core"}}}, &out)
		return out.UpdateTrustedSecret
	}()
	require.Equal(t, "ws-renamed", renamed.Name)
	require.Equal(t, map[string]any{"team": "core"}, renamed.Tags)
	require.Equal(t, 1, renamed.Version)
	require.True(t, renamed.UpdatedAt.After(ws.UpdatedAt))
	require.Equal(t, renamed, apiGetTrusted(t, s, tk.member, ws.TrustedSecretID))
	var same struct {
		UpdateTrustedSecret apiTrusted `json:"updateTrustedSecret"`
	}
	apiOK(t, s, tk.owner, apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": ws.TrustedSecretID,
		"name": "ws-renamed"}}, &same)
	require.Equal(t, renamed, same.UpdateTrustedSecret)

	// updateData: a new data version, validated against the current schema.
	var upd struct {
		UpdateTrustedSecretData apiTrusted `json:"updateTrustedSecretData"`
	}
	apiOK(t, s, tk.admin, apiUpdateTrustedDataMutation, map[string]any{"in": map[string]any{"trustedSecretId": root.TrustedSecretID,
		"data": apiAWSData("root-v2")}}, &upd)
	require.Equal(t, 2, upd.UpdateTrustedSecretData.Version)
	require.Equal(t, apiStr("aws"), upd.UpdateTrustedSecretData.Provider)
	apiRequireError(t, apiDo(t, s, tk.admin, apiUpdateTrustedDataMutation, map[string]any{"in": map[string]any{
		"trustedSecretId": root.TrustedSecretID, "data": map[string]any{"aws_access_key_id": "only"}}}),
		"INVALID_ARGUMENT", "data", "aws_secret_access_key")
	asOfV1 := time.Now()
	time.Sleep(5 * time.Millisecond) // asOf is by wall clock; not a wait for a projection
	apiOK(t, s, tk.admin, apiUpdateTrustedDataMutation, map[string]any{"in": map[string]any{"trustedSecretId": root.TrustedSecretID,
		"schemaId": "basic_auth", "data": map[string]any{"username": "u", "password": "p"}}}, &upd)
	require.Equal(t, 3, upd.UpdateTrustedSecretData.Version)
	require.Equal(t, apiStr("basic_auth"), upd.UpdateTrustedSecretData.SchemaID)

	// data: SYSTEM only.
	require.Equal(t, map[string]any{"username": "u", "password": "p"}, apiTrustedDataOf(t, s, tk.system, root.TrustedSecretID))
	require.Equal(t, map[string]any{"token": "ws-value"}, apiTrustedDataOf(t, s, tk.system, ws.TrustedSecretID))

	// asOf: replayed from the log.
	var asOf struct{ TrustedSecret apiTrusted }
	apiOK(t, s, tk.admin, apiTrustedQuery, map[string]any{"id": root.TrustedSecretID, "asOf": asOfV1.UTC().Format(time.RFC3339Nano)}, &asOf)
	require.Equal(t, 2, asOf.TrustedSecret.Version)
	require.Equal(t, apiStr("aws_access_key"), asOf.TrustedSecret.SchemaID)
	apiRequireError(t, apiDo(t, s, tk.admin, apiTrustedQuery, map[string]any{"id": root.TrustedSecretID,
		"asOf": before.Add(-time.Hour).UTC().Format(time.RFC3339Nano)}), "NOT_FOUND")

	// history: changes and value reads, oldest first; never values.
	h := apiHistoryOf(t, s, tk.admin, apiTrustedHistoryQuery, root.TrustedSecretID)
	require.Equal(t, []string{"TrustedSecretCreated.v1", "TrustedSecretDataUpdated.v1", "TrustedSecretDataUpdated.v1",
		"TrustedSecretDataRead.v1"}, types(auditPageOut{Results: h}))
	for _, e := range h {
		require.Equal(t, "TrustedSecret", e.ResourceType)
		require.Equal(t, root.TrustedSecretID, e.ResourceID)
	}
	require.Equal(t, 3, h[3].DataVersion)
	require.Equal(t, root.TrustedSecretID+":access", h[3].Stream)
	apiRequireError(t, apiDo(t, s, tk.adminB, apiTrustedHistoryQuery, map[string]any{"id": root.TrustedSecretID}), "NOT_FOUND")
	audit, r := s.auditEvents(tk.admin, map[string]any{"resourceType": "TrustedSecret", "types": []any{"TrustedSecretUpdated"}}, 50, nil, false)
	require.Empty(t, r.Errors)
	require.Len(t, audit.Results, 1)
	require.Equal(t, ws.TrustedSecretID, audit.Results[0].ResourceID)

	// delete: gone everywhere, data key destroyed, history kept for the admin.
	apiOK(t, s, tk.owner, apiDeleteTrustedMutation, map[string]any{"id": implicit.TrustedSecretID}, nil)
	id := implicit.TrustedSecretID
	apiRequireError(t, apiDo(t, s, tk.admin, apiTrustedQuery, map[string]any{"id": id}), "NOT_FOUND")
	apiRequireError(t, apiDo(t, s, tk.system, apiTrustedDataQuery, map[string]any{"id": id}), "NOT_FOUND")
	apiRequireError(t, apiDo(t, s, tk.owner, apiDeleteTrustedMutation, map[string]any{"id": id}), "NOT_FOUND")
	_, total := apiListTrusted(t, s, tk.admin, nil)
	require.Equal(t, 3, total)
	wrapped, destroyed := apiWrappedKey(t, s, id)
	require.Nil(t, wrapped)
	require.True(t, destroyed)
	require.Equal(t, "TrustedSecretDeleted.v1", apiHistoryOf(t, s, tk.admin, apiTrustedHistoryQuery, id)[1].Type)
	apiRequireError(t, apiDo(t, s, tk.owner, apiTrustedHistoryQuery, map[string]any{"id": id}), "NOT_FOUND")
	require.Equal(t, foreign, apiGetTrusted(t, s, tk.adminB, foreign.TrustedSecretID))
}

func TestAPITrustedSecretErrors(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)
	ownerW2 := s.token(auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "domain-a", WorkspaceID: "ws-2"})
	root := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "root", "resourceGroup": "DOMAIN",
		"schemaId": "aws_access_key", "data": apiAWSData("keep")})
	ws := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "ws", "resourceGroup": "WORKSPACE", "workspaceId": "ws-1",
		"data": map[string]any{"k": "keep"}})
	foreign := apiCreateTrusted(t, s, tk.adminB, map[string]any{"name": "b", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "b"}})
	count := map[string]any{"aggregate": []any{map[string]any{"count": map[string]any{"name": "n"}}}}
	createIn := func(in map[string]any) map[string]any {
		base := map[string]any{"name": "ok", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}}
		for k, v := range in {
			if v == nil {
				delete(base, k)
			} else {
				base[k] = v
			}
		}
		return map[string]any{"in": base}
	}
	ops := func(id string) []apiOperation {
		return []apiOperation{
			{"trustedSecret", apiTrustedQuery, map[string]any{"id": id}},
			{"trustedSecrets", apiTrustedListQuery, nil},
			{"trustedSecretStat", apiTrustedStatQuery, map[string]any{"q": count}},
			{"trustedSecretData", apiTrustedDataQuery, map[string]any{"id": id}},
			{"trustedSecretHistory", apiTrustedHistoryQuery, map[string]any{"id": id}},
			{"createTrustedSecret", apiCreateTrustedMutation, createIn(nil)},
			{"updateTrustedSecret", apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": id, "name": "n2"}}},
			{"updateTrustedSecretData", apiUpdateTrustedDataMutation, map[string]any{"in": map[string]any{"trustedSecretId": id, "data": map[string]any{"k": "v"}}}},
			{"deleteTrustedSecret", apiDeleteTrustedMutation, map[string]any{"id": id}},
		}
	}

	t.Run("UNAUTHENTICATED", func(t *testing.T) {
		for _, op := range ops(root.TrustedSecretID) {
			apiRequireError(t, apiDo(t, s, "", op.query, op.vars), "UNAUTHENTICATED")
			apiRequireError(t, apiDo(t, s, "not-a-jwt", op.query, op.vars), "UNAUTHENTICATED")
		}
	})

	t.Run("NOT_FOUND", func(t *testing.T) {
		for _, target := range []struct{ name, token, id string }{
			{"missing", tk.admin, apiMissingTrusted},
			{"malformed", tk.admin, "trusted-secret-XYZ"},
			{"a secret's id", tk.admin, "secret-000000000000"},
			{"other domain", tk.admin, foreign.TrustedSecretID},
			{"other workspace", ownerW2, ws.TrustedSecretID},
		} {
			for _, op := range ops(target.id) {
				if op.name == "trustedSecrets" || op.name == "trustedSecretStat" || op.name == "createTrustedSecret" {
					continue
				}
				t.Run(target.name+"/"+op.name, func(t *testing.T) {
					apiRequireError(t, apiDo(t, s, target.token, op.query, op.vars), "NOT_FOUND")
				})
			}
		}
	})

	t.Run("PERMISSION_DENIED", func(t *testing.T) {
		for _, tc := range []struct {
			name, token, query string
			vars               map[string]any
		}{
			{"admin reads a value", tk.admin, apiTrustedDataQuery, map[string]any{"id": root.TrustedSecretID}},
			{"owner reads a value", tk.owner, apiTrustedDataQuery, map[string]any{"id": ws.TrustedSecretID}},
			{"member updates", tk.member, apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": ws.TrustedSecretID, "name": "x"}}},
			{"member creates", tk.member, apiCreateTrustedMutation, createIn(map[string]any{"resourceGroup": "WORKSPACE"})},
			{"owner creates DOMAIN", tk.owner, apiCreateTrustedMutation, createIn(nil)},
			{"owner creates in another workspace", tk.owner, apiCreateTrustedMutation, createIn(map[string]any{"resourceGroup": "WORKSPACE", "workspaceId": "ws-2"})},
			{"owner updates a DOMAIN one", tk.owner, apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": root.TrustedSecretID, "name": "x"}}},
			{"owner deletes a DOMAIN one", tk.owner, apiDeleteTrustedMutation, map[string]any{"id": root.TrustedSecretID}},
			{"system writes", tk.system, apiUpdateTrustedDataMutation, map[string]any{"in": map[string]any{"trustedSecretId": root.TrustedSecretID, "data": apiAWSData("x")}}},
			{"system creates", tk.system, apiCreateTrustedMutation, createIn(nil)},
			{"user creates", tk.bob, apiCreateTrustedMutation, createIn(nil)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				apiRequireError(t, apiDo(t, s, tc.token, tc.query, tc.vars), "PERMISSION_DENIED")
			})
		}
	})

	t.Run("INVALID_ARGUMENT", func(t *testing.T) {
		for _, tc := range []struct {
			name, query string
			vars        map[string]any
			want        []string
		}{
			{"PROJECT group", apiCreateTrustedMutation, createIn(map[string]any{"resourceGroup": "PROJECT", "workspaceId": "ws-1"}), []string{"resourceGroup", "DOMAIN or WORKSPACE"}},
			{"DOMAIN with workspaceId", apiCreateTrustedMutation, createIn(map[string]any{"workspaceId": "ws-1"}), []string{"resourceGroup"}},
			{"WORKSPACE without workspace", apiCreateTrustedMutation, createIn(map[string]any{"resourceGroup": "WORKSPACE"}), []string{"workspaceId"}},
			{"empty name", apiCreateTrustedMutation, createIn(map[string]any{"name": "  "}), []string{"name"}},
			{"empty data", apiCreateTrustedMutation, createIn(map[string]any{"data": map[string]any{}}), []string{"data"}},
			{"unknown schema", apiCreateTrustedMutation, createIn(map[string]any{"schemaId": "nope"}), []string{"schemaId", "unknown schema"}},
			{"data against the schema", apiCreateTrustedMutation, createIn(map[string]any{"schemaId": "aws_access_key",
				"data": map[string]any{"aws_access_key_id": "AKIA", "note": "s3cr3t-value"}}), []string{"data", "aws_secret_access_key"}},
			{"bad trustedAccountId", apiCreateTrustedMutation, createIn(map[string]any{"trustedAccountId": "a b"}), []string{"trustedAccountId"}},
			{"tag key empty", apiCreateTrustedMutation, createIn(map[string]any{"tags": map[string]any{"": "x"}}), []string{"tags"}},
			{"update: empty name", apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": root.TrustedSecretID, "name": ""}}, []string{"name"}},
			{"updateData: schema", apiUpdateTrustedDataMutation, map[string]any{"in": map[string]any{"trustedSecretId": root.TrustedSecretID,
				"data": map[string]any{"x": "s3cr3t-value"}}}, []string{"data", "aws_access_key_id"}},
			{"list: unknown key", apiTrustedListQuery, map[string]any{"q": map[string]any{"filter": []any{map[string]any{"k": "projectId", "v": "p"}}}}, []string{"projectId"}},
			{"stat: unknown key", apiTrustedStatQuery, map[string]any{"q": map[string]any{"filter": []any{map[string]any{"k": "nope", "v": "p"}}, "aggregate": count["aggregate"]}}, []string{"nope"}},
			{"history: bad cursor", `query($id: ID!) { trustedSecretHistory(trustedSecretId: $id, after: "x") { nextCursor } }`, map[string]any{"id": root.TrustedSecretID}, []string{"after"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := apiDo(t, s, tk.admin, tc.query, tc.vars)
				apiRequireError(t, r, "INVALID_ARGUMENT", tc.want...)
				require.NotContains(t, r.Errors[0].Message, "s3cr3t-value")
			})
		}
	})

	// Nothing above changed anything.
	require.Equal(t, root, apiGetTrusted(t, s, tk.admin, root.TrustedSecretID))
	require.Equal(t, ws, apiGetTrusted(t, s, tk.admin, ws.TrustedSecretID))
	_, total := apiListTrusted(t, s, tk.admin, nil)
	require.Equal(t, 2, total)
	require.Equal(t, apiJSON(t, apiAWSData("keep")), apiTrustedDataOf(t, s, tk.system, root.TrustedSecretID))
}

func TestTrustedSecretLink(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)
	root := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "root", "resourceGroup": "DOMAIN",
		"schemaId": "aws_access_key", "data": map[string]any{"aws_access_key_id": "AKIAROOT", "aws_secret_access_key": "root-key",
			"region_name": "us-east-1"}})
	ws1 := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "ws1", "resourceGroup": "WORKSPACE", "workspaceId": "ws-1",
		"data": map[string]any{"shared": "ws1", "user": "from-trusted"}})
	ws2 := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "ws2", "resourceGroup": "WORKSPACE", "workspaceId": "ws-2",
		"data": map[string]any{"shared": "ws2"}})
	foreign := apiCreateTrusted(t, s, tk.adminB, map[string]any{"name": "b", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "b"}})
	gone := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "gone", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "g"}})
	apiOK(t, s, tk.admin, apiDeleteTrustedMutation, map[string]any{"id": gone.TrustedSecretID}, nil)

	secretIn := func(group, trusted string, extra map[string]any) map[string]any {
		in := map[string]any{"name": "linked", "resourceGroup": group, "data": map[string]any{"user": "from-secret"}}
		switch group {
		case "WORKSPACE":
			in["workspaceId"] = "ws-1"
		case "PROJECT":
			in["workspaceId"], in["projectId"] = "ws-1", "proj-1"
		}
		if trusted != "" {
			in["trustedSecretId"] = trusted
		}
		for k, v := range extra {
			in[k] = v
		}
		return in
	}

	// Valid links: DOMAIN trusted secrets from every group; WORKSPACE ones from their workspace.
	viaDomain := apiCreateSecret(t, s, tk.admin, secretIn("DOMAIN", root.TrustedSecretID, nil))
	require.Equal(t, apiStr(root.TrustedSecretID), viaDomain.TrustedSecretID)
	viaWS := apiCreateSecret(t, s, tk.member, secretIn("PROJECT", ws1.TrustedSecretID, nil))
	require.Equal(t, apiStr(ws1.TrustedSecretID), viaWS.TrustedSecretID)
	apiCreateSecret(t, s, tk.owner, secretIn("WORKSPACE", root.TrustedSecretID, nil))
	got, _ := apiListSecrets(t, s, tk.admin, map[string]any{"trustedSecretId": ws1.TrustedSecretID})
	require.Equal(t, []string{viaWS.SecretID}, apiSecretIDs(got))

	// Invalid ones read alike: missing, deleted, another domain's, another workspace's.
	var msg string
	for _, tc := range []struct {
		name, token, group, id string
	}{
		{"missing", tk.admin, "DOMAIN", apiMissingTrusted},
		{"deleted", tk.admin, "DOMAIN", gone.TrustedSecretID},
		{"foreign domain", tk.admin, "DOMAIN", foreign.TrustedSecretID},
		{"foreign workspace", tk.admin, "WORKSPACE", ws2.TrustedSecretID},
		{"foreign workspace, from a project", tk.member, "PROJECT", ws2.TrustedSecretID},
		{"WORKSPACE one from a DOMAIN secret", tk.admin, "DOMAIN", ws1.TrustedSecretID},
		{"malformed", tk.admin, "DOMAIN", "trusted-secret-nothex"},
		{"a secret's id", tk.admin, "DOMAIN", viaDomain.SecretID},
	} {
		r := apiDo(t, s, tc.token, apiCreateSecretMutation, map[string]any{"in": secretIn(tc.group, tc.id, nil)})
		apiRequireError(t, r, "INVALID_ARGUMENT", "trustedSecretId")
		m := strings.ReplaceAll(r.Errors[0].Message, tc.id, "<id>")
		if msg == "" {
			msg = m
		}
		require.Equal(t, msg, m, "%s: the answer must not tell this case from a missing id", tc.name)
	}
	// The other domain cannot link to domain-a's trusted secret either.
	r := apiDo(t, s, tk.adminB, apiCreateSecretMutation, map[string]any{"in": secretIn("DOMAIN", root.TrustedSecretID, nil)})
	apiRequireError(t, r, "INVALID_ARGUMENT", "trustedSecretId")
	_, total := apiListSecrets(t, s, tk.admin, map[string]any{"name": "linked"})
	require.Equal(t, 3, total, "rejected links stored nothing")

	// updateSecret links, relinks and unlinks; the same rules apply.
	plain := apiCreateSecret(t, s, tk.admin, secretIn("WORKSPACE", "", map[string]any{"name": "plain"}))
	apiRequireError(t, apiDo(t, s, tk.admin, apiUpdateSecretMutation, map[string]any{"in": map[string]any{
		"secretId": plain.SecretID, "trustedSecretId": ws2.TrustedSecretID}}), "INVALID_ARGUMENT", "trustedSecretId")
	apiRequireError(t, apiDo(t, s, tk.admin, apiUpdateSecretMutation, map[string]any{"in": map[string]any{
		"secretId": plain.SecretID, "trustedSecretId": foreign.TrustedSecretID}}), "INVALID_ARGUMENT", "trustedSecretId")
	linked := apiUpdateSecret(t, s, tk.owner, map[string]any{"secretId": plain.SecretID, "name": "plain-linked",
		"trustedSecretId": ws1.TrustedSecretID})
	require.Equal(t, apiStr(ws1.TrustedSecretID), linked.TrustedSecretID)
	require.Equal(t, "plain-linked", linked.Name)
	require.Equal(t, linked, apiGetSecret(t, s, tk.admin, plain.SecretID))
	h := apiHistoryOf(t, s, tk.admin, apiSecretHistoryQuery, plain.SecretID)
	require.Equal(t, []string{"SecretCreated.v1", "SecretUpdated.v1", "SecretLinkChanged.v1"}, types(auditPageOut{Results: h}))
	require.Equal(t, "trustedSecretId", h[2].Changes[0].Field)
	require.Equal(t, ws1.TrustedSecretID, h[2].Changes[0].New)

	// The delete refusal names a linked secret; unlinking (or deleting it) lifts it.
	r = apiDo(t, s, tk.owner, apiDeleteTrustedMutation, map[string]any{"id": ws1.TrustedSecretID})
	apiRequireError(t, r, "FAILED_PRECONDITION", ws1.TrustedSecretID)
	require.True(t, strings.Contains(r.Errors[0].Message, viaWS.SecretID) || strings.Contains(r.Errors[0].Message, plain.SecretID),
		"names a linked secret: %s", r.Errors[0].Message)
	require.Equal(t, ws1, apiGetTrusted(t, s, tk.admin, ws1.TrustedSecretID), "a refused delete changes nothing")
	wrapped, destroyed := apiWrappedKey(t, s, ws1.TrustedSecretID)
	require.NotEmpty(t, wrapped)
	require.False(t, destroyed)
	unlinked := apiUpdateSecret(t, s, tk.owner, map[string]any{"secretId": plain.SecretID, "trustedSecretId": ""})
	require.Nil(t, unlinked.TrustedSecretID)
	r = apiDo(t, s, tk.owner, apiDeleteTrustedMutation, map[string]any{"id": ws1.TrustedSecretID})
	apiRequireError(t, r, "FAILED_PRECONDITION", viaWS.SecretID)
	apiOK(t, s, tk.member, apiDeleteSecretMutation, map[string]any{"id": viaWS.SecretID}, nil)
	apiOK(t, s, tk.owner, apiDeleteTrustedMutation, map[string]any{"id": ws1.TrustedSecretID}, nil)

	// Merged reads: the trusted secret's data under the secret's own (its keys
	// win); both reads on the log, one request's correlation id.
	role := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "assume", "resourceGroup": "WORKSPACE", "workspaceId": "ws-1",
		"schemaId": "aws_assume_role", "trustedSecretId": root.TrustedSecretID,
		"data": map[string]any{"role_arn": "arn:aws:iam::1:role/r", "region_name": "eu-west-1"}})
	require.Equal(t, apiStr("aws"), role.Provider)
	require.Equal(t, map[string]any{"aws_access_key_id": "AKIAROOT", "aws_secret_access_key": "root-key",
		"role_arn": "arn:aws:iam::1:role/r", "region_name": "eu-west-1"}, apiSecretDataOf(t, s, tk.system, role.SecretID).Data)
	sh := apiHistoryOf(t, s, tk.admin, apiSecretHistoryQuery, role.SecretID)
	th := apiHistoryOf(t, s, tk.admin, apiTrustedHistoryQuery, root.TrustedSecretID)
	require.Equal(t, "SecretDataRead.v1", sh[len(sh)-1].Type)
	require.Equal(t, "TrustedSecretDataRead.v1", th[len(th)-1].Type)
	require.Equal(t, 1, th[len(th)-1].DataVersion)
	require.NotNil(t, sh[len(sh)-1].CorrelationID)
	require.Equal(t, sh[len(sh)-1].CorrelationID, th[len(th)-1].CorrelationID)
	require.Equal(t, "SYSTEM", th[len(th)-1].Actor.Role)
	// A secret of its own keys only.
	require.Equal(t, map[string]any{"user": "from-secret"}, apiSecretDataOf(t, s, tk.system, plain.SecretID).Data)

	// The schema is checked on the merged value: at write time...
	r = apiDo(t, s, tk.admin, apiCreateSecretMutation, map[string]any{"in": map[string]any{"name": "no-arn", "resourceGroup": "DOMAIN",
		"schemaId": "aws_assume_role", "trustedSecretId": root.TrustedSecretID, "data": map[string]any{"external_id": "s3cr3t-value"}}})
	apiRequireError(t, r, "INVALID_ARGUMENT", "data", "merged", "role_arn")
	require.NotContains(t, r.Errors[0].Message, "s3cr3t-value")
	r = apiDo(t, s, tk.admin, apiUpdateSecretDataMutation, map[string]any{"in": map[string]any{"secretId": role.SecretID,
		"data": map[string]any{"external_id": "x"}}})
	apiRequireError(t, r, "INVALID_ARGUMENT", "data", "role_arn")
	v2 := apiUpdateSecretData(t, s, tk.admin, map[string]any{"secretId": role.SecretID,
		"data": map[string]any{"role_arn": "arn:aws:iam::1:role/r2", "aws_access_key_id": "AKIAOWN"}})
	require.Equal(t, 2, v2.Version)
	require.Equal(t, apiStr("aws_assume_role"), v2.SchemaID)
	require.Equal(t, map[string]any{"aws_access_key_id": "AKIAOWN", "aws_secret_access_key": "root-key",
		"role_arn": "arn:aws:iam::1:role/r2", "region_name": "us-east-1"}, apiSecretDataOf(t, s, tk.system, role.SecretID).Data)
	r = apiDo(t, s, tk.admin, apiUpdateSecretMutation, map[string]any{"in": map[string]any{"secretId": role.SecretID, "trustedSecretId": ""}})
	apiRequireError(t, r, "INVALID_ARGUMENT", "data", "aws_secret_access_key")
	// ... and at read time, since the trusted secret's value may change.
	apiOK(t, s, tk.admin, apiUpdateTrustedDataMutation, map[string]any{"in": map[string]any{"trustedSecretId": root.TrustedSecretID,
		"schemaId": "", "data": map[string]any{"aws_access_key_id": "AKIAROOT"}}}, nil)
	r = apiDo(t, s, tk.system, apiSecretDataQuery, map[string]any{"id": role.SecretID})
	apiRequireError(t, r, "FAILED_PRECONDITION", "aws_secret_access_key")
	require.NotContains(t, string(r.Data), "AKIA")
	// Only SYSTEM reads merged values, as any value.
	apiRequireError(t, apiDo(t, s, tk.admin, apiSecretDataQuery, map[string]any{"id": viaDomain.SecretID}), "PERMISSION_DENIED")
}

// TestTrustedSecretLinkRace races links against the deletion of their
// trusted secret: whatever commits, no live secret ever links to a deleted
// trusted secret, and every loser gets its documented error.
func TestTrustedSecretLinkRace(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)
	for round := 0; round < 6; round++ {
		ts := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": fmt.Sprintf("race-%d", round), "resourceGroup": "DOMAIN",
			"data": map[string]any{"k": "v"}})
		var wg sync.WaitGroup
		codes := make([]string, 5)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == 2 {
					codes[i] = apiDo(t, s, tk.admin, apiDeleteTrustedMutation, map[string]any{"id": ts.TrustedSecretID}).Code()
					return
				}
				codes[i] = apiDo(t, s, tk.admin, apiCreateSecretMutation, map[string]any{"in": map[string]any{
					"name": fmt.Sprintf("race-%d-%d", round, i), "resourceGroup": "DOMAIN", "data": map[string]any{"own": "x"},
					"trustedSecretId": ts.TrustedSecretID}}).Code()
			}()
		}
		wg.Wait()
		t.Logf("round %d: %q", round, codes)
		_, linked := apiListSecrets(t, s, tk.admin, map[string]any{"trustedSecretId": ts.TrustedSecretID})
		deleted := codes[2] == ""
		if deleted {
			require.Zero(t, linked, "round %d: the trusted secret was deleted with live links: %v", round, codes)
		} else {
			require.Equal(t, "FAILED_PRECONDITION", codes[2], "round %d: %v", round, codes)
			require.Positive(t, linked)
		}
		for i, c := range codes {
			if i != 2 && c != "" {
				require.Equal(t, "INVALID_ARGUMENT", c, "round %d: %v", round, codes)
				require.True(t, deleted)
			}
		}
	}

	// Both at the lock: a link and a deletion that each passed their checks
	// before their transactions wait for the lock the test holds; whichever
	// gets it first wins, and the other's check under the lock refuses.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for round := 0; round < 4; round++ {
		ts := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": fmt.Sprintf("held-%d", round), "resourceGroup": "DOMAIN",
			"data": map[string]any{"k": "v"}})
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, trustedLinkLockSpace, ts.TrustedSecretID)
		require.NoError(t, err)
		var link, del string
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			link = apiDo(t, s, tk.admin, apiCreateSecretMutation, map[string]any{"in": map[string]any{
				"name": fmt.Sprintf("held-%d", round), "resourceGroup": "DOMAIN", "data": map[string]any{"own": "x"},
				"trustedSecretId": ts.TrustedSecretID}}).Code()
		}()
		go func() {
			defer wg.Done()
			del = apiDo(t, s, tk.admin, apiDeleteTrustedMutation, map[string]any{"id": ts.TrustedSecretID}).Code()
		}()
		require.Eventually(t, func() bool {
			var waiting int
			require.NoError(t, s.Server.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks
				WHERE locktype = 'advisory' AND NOT granted AND classid = $1`, trustedLinkLockSpace).Scan(&waiting))
			return waiting == 2
		}, 10*time.Second, 5*time.Millisecond, "the link and the deletion wait at the lock")
		require.NoError(t, tx.Rollback(ctx))
		wg.Wait()
		t.Logf("held round %d: link %q, delete %q", round, link, del)
		_, linked := apiListSecrets(t, s, tk.admin, map[string]any{"trustedSecretId": ts.TrustedSecretID})
		if del == "" {
			require.Equal(t, "INVALID_ARGUMENT", link)
			require.Zero(t, linked)
		} else {
			require.Equal(t, "FAILED_PRECONDITION", del)
			require.Equal(t, "", link)
			require.Equal(t, 1, linked)
		}
	}

	// The read models agree with the database's own view of the invariant.
	var dangling int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM secrets s WHERE s.trusted_secret_id IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM trusted_secrets t WHERE t.trusted_secret_id = s.trusted_secret_id)`).Scan(&dangling))
	require.Zero(t, dangling)
}
