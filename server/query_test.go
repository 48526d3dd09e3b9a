package server_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// The list and stat query language (the README's query language section) end to end: GraphQL
// variables and literals → resolvers → SQL, for callers of several scopes.
// query/*_test.go cover each operator and stage in depth.

func TestQueryLanguageThroughGraphQL(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "dq", UserID: "ada"})
	awsData := map[string]any{"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s3cr3t"}
	plain := map[string]any{"token": "t"}
	a := apiCreateSecret(t, s, admin, map[string]any{"name": "db-prod", "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
		"data": awsData, "tags": map[string]any{"env": "prod", "tier": 1}})
	b := apiCreateSecret(t, s, admin, map[string]any{"name": "db-dev", "resourceGroup": "WORKSPACE", "workspaceId": "w1",
		"data": plain, "tags": map[string]any{"env": "dev", "tier": 2}})
	c := apiCreateSecret(t, s, admin, map[string]any{"name": "api-prod", "resourceGroup": "PROJECT", "workspaceId": "w1", "projectId": "p1",
		"schemaId": "aws_access_key", "data": awsData, "tags": map[string]any{"env": "prod", "tier": 3}})
	d := apiCreateSecret(t, s, admin, map[string]any{"name": "api-dev", "resourceGroup": "PROJECT", "workspaceId": "w2", "projectId": "p2",
		"data": plain, "tags": map[string]any{"env": "dev"}})
	apiOK(t, s, admin, apiUpdateSecretDataMutation, map[string]any{"in": map[string]any{"secretId": c.SecretID, "data": awsData}}, nil)

	member := func(ws string, projects ...string) string {
		return s.token(auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: "dq", WorkspaceID: ws, Projects: projects, UserID: "m-" + ws})
	}
	owner2 := s.token(auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "dq", WorkspaceID: "w2", UserID: "o2"})
	otherDomain := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "elsewhere", UserID: "eve"})

	t.Run("list: every part of QueryInput", func(t *testing.T) {
		q := map[string]any{
			"filter": []any{
				map[string]any{"k": "tags.env", "v": "prod", "o": "eq"},
				map[string]any{"k": "createdAt", "v": "now-1h", "o": "timediff_gt"},
				map[string]any{"k": "version", "v": 1, "o": "gte"},
			},
			"filterOr": []any{
				map[string]any{"k": "schema_id", "v": "AWS", "o": "contain"},
				map[string]any{"k": "name", "v": []any{"zzz"}, "o": "in"},
			},
			"sort":    []any{map[string]any{"key": "provider"}, map[string]any{"key": "name", "desc": true}},
			"page":    map[string]any{"start": 1, "limit": 1},
			"keyword": "PROD aws",
			"only":    []any{"name", "tags.env", "schema_id"},
			"minimal": true,
		}
		got, total := apiListSecrets(t, s, admin, map[string]any{"q": q})
		require.Equal(t, 2, total)
		require.Equal(t, []string{a.SecretID}, apiSecretIDs(got))
		q["page"] = map[string]any{"start": 2, "limit": 1}
		got, _ = apiListSecrets(t, s, admin, map[string]any{"q": q})
		require.Equal(t, []string{c.SecretID}, apiSecretIDs(got))

		// The same query, by callers of other scopes, sees only their rows.
		delete(q, "page")
		for _, tc := range []struct {
			name  string
			token string
			want  []string
		}{
			{"member of w1/p1", member("w1", "p1"), []string{a.SecretID, c.SecretID}},
			{"member of w1 without projects", member("w1"), []string{a.SecretID}},
			{"member of w2/p2", member("w2", "p2"), []string{a.SecretID}},
			{"owner of w2", owner2, []string{a.SecretID}},
			{"admin of another domain", otherDomain, []string{}},
		} {
			got, total := apiListSecrets(t, s, tc.token, map[string]any{"q": q})
			require.Equal(t, tc.want, apiSecretIDs(got), tc.name)
			require.Equal(t, len(tc.want), total, tc.name)
		}

		// Literal values reach the translator as GraphQL literals, not JSON.
		var out struct {
			Secrets struct{ TotalCount int } `json:"secrets"`
		}
		apiOK(t, s, admin, `{ secrets(query: {filter: [{k: "version", v: 2, o: "eq"}, {k: "tags.tier", v: [3, 4.5], o: "in"}],
			sort: [{key: "createdAt", desc: true}]}, provider: "aws") { totalCount } }`, nil, &out)
		require.Equal(t, 1, out.Secrets.TotalCount)
		apiOK(t, s, admin, `{ secrets(query: {filter: [{k: "tags.env", v: "dev"}], countOnly: true}, workspaceId: "w1") { totalCount } }`, nil, &out)
		require.Equal(t, 1, out.Secrets.TotalCount)
	})

	t.Run("stat: filter, group with date_format, sort, project, page", func(t *testing.T) {
		day := time.Now().UTC().Format("2006-01-02")
		stat := map[string]any{
			"filter": []any{map[string]any{"k": "tags.env", "v": []any{"prod", "dev"}, "o": "in"}},
			"aggregate": []any{
				map[string]any{"group": map[string]any{
					"keys": []any{map[string]any{"key": "tags.env", "name": "env"}, map[string]any{"key": "createdAt", "name": "day", "date_format": "%Y-%m-%d"}},
					"fields": []any{
						map[string]any{"operator": "count", "name": "n"},
						map[string]any{"operator": "sum", "key": "version", "name": "versions"},
						map[string]any{"operator": "add_to_set", "key": "resource_group", "name": "groups"},
						map[string]any{"operator": "push", "key": "name", "name": "names"},
						map[string]any{"operator": "count", "name": "projects", "conditions": []any{map[string]any{"k": "resourceGroup", "v": "PROJECT"}}},
					}}},
				map[string]any{"sort": []any{map[string]any{"key": "versions", "desc": true}}},
				map[string]any{"project": map[string]any{"fields": []any{
					map[string]any{"key": "names", "name": "size", "operator": "size"}, map[string]any{"key": "versions"},
					map[string]any{"key": "groups"}, map[string]any{"key": "projects"}}}},
			},
			"page": map[string]any{"start": 1, "limit": 1},
		}
		res := apiStat(t, s, admin, apiSecretStatQuery, stat)
		require.Equal(t, float64(2), res["total_count"])
		require.Equal(t, []any{map[string]any{"env": "prod", "day": day, "size": float64(2), "versions": float64(3),
			"groups": []any{"DOMAIN", "PROJECT"}, "projects": float64(1)}}, res["results"])

		// Each caller's stat sees only its rows.
		count := map[string]any{"aggregate": []any{map[string]any{"group": map[string]any{
			"keys": []any{map[string]any{"key": "resourceGroup"}}, "fields": []any{map[string]any{"operator": "count", "name": "n"}}}}}}
		require.Equal(t, []any{map[string]any{"resourceGroup": "DOMAIN", "n": float64(1)}, map[string]any{"resourceGroup": "PROJECT", "n": float64(1)}},
			apiStat(t, s, member("w2", "p2"), apiSecretStatQuery, count)["results"])
		require.Equal(t, []any{map[string]any{"resourceGroup": "DOMAIN", "n": float64(1)}, map[string]any{"resourceGroup": "PROJECT", "n": float64(1)},
			map[string]any{"resourceGroup": "WORKSPACE", "n": float64(1)}}, apiStat(t, s, member("w1", "p1"), apiSecretStatQuery, count)["results"])
		require.Equal(t, []any{}, apiStat(t, s, otherDomain, apiSecretStatQuery, count)["results"])

		res = apiStat(t, s, admin, apiSecretStatQuery, map[string]any{"distinct": "workspaceId", "keyword": "db-"})
		require.Equal(t, []any{"w1"}, res["results"])
		_ = b
		_ = d
	})

	t.Run("malformed queries are INVALID_ARGUMENT naming the fault", func(t *testing.T) {
		filter := func(f ...any) map[string]any { return map[string]any{"q": map[string]any{"filter": f}} }
		stat := func(q map[string]any) map[string]any { return map[string]any{"q": q} }
		for _, tc := range []struct {
			name  string
			query string
			vars  map[string]any
			want  []string
		}{
			{"wrong value type", apiSecretsQuery, filter(map[string]any{"k": "name", "v": 5, "o": "eq"}), []string{`"name"`, "string"}},
			{"list operator without a list", apiSecretsQuery, filter(map[string]any{"k": "name", "v": "x", "o": "not_in"}), []string{`"not_in"`, "list"}},
			{"bad timediff", apiSecretsQuery, filter(map[string]any{"k": "createdAt", "v": "now-1y", "o": "timediff_lt"}), []string{"timediff_lt"}},
			{"bad regex", apiSecretsQuery, filter(map[string]any{"k": "name", "v": "(", "o": "regex"}), []string{"regular expression", `"name"`}},
			{"SQL in a sort key", apiSecretsQuery, map[string]any{"q": map[string]any{"sort": []any{map[string]any{"key": "name; DROP TABLE secrets"}}}},
				[]string{"unknown key"}},
			{"SQL in a key", apiUserSecretsQuery, filter(map[string]any{"k": "user_id' OR '1'='1", "v": "x"}), []string{"unknown key"}},
			{"unknown only key", apiSecretsQuery, map[string]any{"q": map[string]any{"only": []any{"colour"}}}, []string{`"colour"`}},
			{"stat unknown group operator", apiSecretStatQuery, stat(map[string]any{"aggregate": []any{map[string]any{"group": map[string]any{
				"fields": []any{map[string]any{"operator": "median", "key": "version"}}}}}}), []string{"aggregate[0].group", `"median"`}},
			{"stat bad date_format", apiUserSecretStatQuery, stat(map[string]any{"aggregate": []any{map[string]any{"group": map[string]any{
				"keys": []any{map[string]any{"key": "createdAt", "date_format": "%Q"}}}}}}), []string{"%Q"}},
			{"stat unwind of a text", apiSecretStatQuery, stat(map[string]any{"aggregate": []any{map[string]any{"unwind": map[string]any{"path": "name"}}}}),
				[]string{"aggregate[0].unwind", `"name"`}},
			{"stat SQL in a group key", apiSecretStatQuery, stat(map[string]any{"aggregate": []any{map[string]any{"group": map[string]any{
				"keys": []any{map[string]any{"key": "provider) FROM secrets; --"}}}}}}), []string{"unknown key"}},
		} {
			r := apiDo(t, s, admin, tc.query, tc.vars)
			apiRequireError(t, r, "INVALID_ARGUMENT", tc.want...)
		}
		// Hostile values are data.
		got, total := apiListSecrets(t, s, admin, filter(map[string]any{"k": "name", "v": "x' OR '1'='1", "o": "eq"}))
		require.Zero(t, total)
		require.Empty(t, got)
		_, total = apiListSecrets(t, s, admin, nil)
		require.Equal(t, 4, total)
	})
}
