package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// This file proves every operation of the README's API section for Secret and UserSecret
// through the real stack (HTTP → GraphQL → commands → PostgreSQL), including
// each error code. No test sleeps to wait for a projection: every query made
// right after a mutation must already see it (read-your-writes).

// Helpers take the (sub)test's t explicitly: stack.do and friends fail the
// top-level test, which must not happen from a subtest's goroutine.

const apiSecretFields = `secretId name schemaId provider tags resourceGroup domainId workspaceId projectId
  serviceAccountId trustedSecretId version createdBy updatedBy createdAt updatedAt`

const apiUserSecretFields = `userSecretId name schemaId provider tags domainId userId version createdBy
  updatedBy createdAt updatedAt`

const (
	apiCreateSecretMutation     = `mutation($in: CreateSecretInput!) { createSecret(input: $in) { ` + apiSecretFields + ` } }`
	apiUpdateSecretMutation     = `mutation($in: UpdateSecretInput!) { updateSecret(input: $in) { ` + apiSecretFields + ` } }`
	apiUpdateSecretDataMutation = `mutation($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { ` + apiSecretFields + ` } }`
	apiDeleteSecretMutation     = `mutation($id: ID!) { deleteSecret(secretId: $id, force: true) }`
	apiSecretQuery              = `query($id: ID!) { secret(secretId: $id) { ` + apiSecretFields + ` } }`
	apiSecretsQuery             = `query($q: QueryInput, $secretId: ID, $name: String, $schemaId: String, $provider: String,
  $workspaceId: String, $projectId: String, $serviceAccountId: String, $trustedSecretId: String) {
  secrets(query: $q, secretId: $secretId, name: $name, schemaId: $schemaId, provider: $provider,
    workspaceId: $workspaceId, projectId: $projectId, serviceAccountId: $serviceAccountId,
    trustedSecretId: $trustedSecretId) { results { ` + apiSecretFields + ` } totalCount } }`
	apiSecretStatQuery = `query($q: Map!) { secretStat(query: $q) }`
	apiSecretDataQuery = `query($id: ID!) { secretData(secretId: $id) { encrypted encryptOptions data } }`

	apiCreateUserSecretMutation     = `mutation($in: CreateUserSecretInput!) { createUserSecret(input: $in) { ` + apiUserSecretFields + ` } }`
	apiUpdateUserSecretMutation     = `mutation($in: UpdateUserSecretInput!) { updateUserSecret(input: $in) { ` + apiUserSecretFields + ` } }`
	apiUpdateUserSecretDataMutation = `mutation($in: UpdateUserSecretDataInput!) { updateUserSecretData(input: $in) { ` + apiUserSecretFields + ` } }`
	apiDeleteUserSecretMutation     = `mutation($id: ID!) { deleteUserSecret(userSecretId: $id, force: true) }`
	apiUserSecretQuery              = `query($id: ID!) { userSecret(userSecretId: $id) { ` + apiUserSecretFields + ` } }`
	apiUserSecretsQuery             = `query($q: QueryInput, $userSecretId: ID, $name: String, $schemaId: String, $provider: String) {
  userSecrets(query: $q, userSecretId: $userSecretId, name: $name, schemaId: $schemaId, provider: $provider) {
    results { ` + apiUserSecretFields + ` } totalCount } }`
	apiUserSecretStatQuery = `query($q: Map!) { userSecretStat(query: $q) }`
	apiUserSecretDataQuery = `query($id: ID!) { userSecretData(userSecretId: $id) { encrypted encryptOptions data } }`
)

var (
	apiSecretIDPattern     = regexp.MustCompile(`^secret-[0-9a-f]{12}$`)
	apiUserSecretIDPattern = regexp.MustCompile(`^user-secret-[0-9a-f]{12}$`)
)

type apiSecret struct {
	SecretID         string         `json:"secretId"`
	Name             string         `json:"name"`
	SchemaID         *string        `json:"schemaId"`
	Provider         *string        `json:"provider"`
	Tags             map[string]any `json:"tags"`
	ResourceGroup    string         `json:"resourceGroup"`
	DomainID         string         `json:"domainId"`
	WorkspaceID      *string        `json:"workspaceId"`
	ProjectID        *string        `json:"projectId"`
	ServiceAccountID *string        `json:"serviceAccountId"`
	TrustedSecretID  *string        `json:"trustedSecretId"`
	Version          int            `json:"version"`
	CreatedBy        string         `json:"createdBy"`
	UpdatedBy        string         `json:"updatedBy"`
	CreatedAt        time.Time      `json:"createdAt"`
	UpdatedAt        time.Time      `json:"updatedAt"`
}

type apiUserSecret struct {
	UserSecretID string         `json:"userSecretId"`
	Name         string         `json:"name"`
	SchemaID     *string        `json:"schemaId"`
	Provider     *string        `json:"provider"`
	Tags         map[string]any `json:"tags"`
	DomainID     string         `json:"domainId"`
	UserID       string         `json:"userId"`
	Version      int            `json:"version"`
	CreatedBy    string         `json:"createdBy"`
	UpdatedBy    string         `json:"updatedBy"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
}

type apiSecretData struct {
	Encrypted      bool           `json:"encrypted"`
	EncryptOptions map[string]any `json:"encryptOptions"`
	Data           map[string]any `json:"data"`
}

func apiStr(s string) *string { return &s }

// apiJSON is v as it comes back from a JSON round trip (numbers as float64).
func apiJSON(t testing.TB, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func apiDo(t testing.TB, s *stack, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	return doGraphQL(t, s.HTTP.URL, token, query, vars)
}

func apiOK(t testing.TB, s *stack, token, query string, vars map[string]any, out any) {
	t.Helper()
	r := apiDo(t, s, token, query, vars)
	require.Empty(t, r.Errors, "query %s", query)
	if out != nil {
		r.Decode(t, out)
	}
}

// apiRequireError asserts the first error's extensions.code and that its
// message contains each of want.
func apiRequireError(t testing.TB, r gqlResponse, code string, want ...string) {
	t.Helper()
	require.NotEmpty(t, r.Errors, "expected a %s error, got data %s", code, string(r.Data))
	require.Equal(t, code, r.Code(), "errors: %+v", r.Errors)
	for _, w := range want {
		require.Contains(t, r.Errors[0].Message, w)
	}
}

func apiCreateSecret(t testing.TB, s *stack, token string, in map[string]any) apiSecret {
	t.Helper()
	var out struct {
		CreateSecret apiSecret `json:"createSecret"`
	}
	apiOK(t, s, token, apiCreateSecretMutation, map[string]any{"in": in}, &out)
	return out.CreateSecret
}

func apiGetSecret(t testing.TB, s *stack, token, id string) apiSecret {
	t.Helper()
	var out struct {
		Secret apiSecret `json:"secret"`
	}
	apiOK(t, s, token, apiSecretQuery, map[string]any{"id": id}, &out)
	return out.Secret
}

func apiUpdateSecret(t testing.TB, s *stack, token string, in map[string]any) apiSecret {
	t.Helper()
	var out struct {
		UpdateSecret apiSecret `json:"updateSecret"`
	}
	apiOK(t, s, token, apiUpdateSecretMutation, map[string]any{"in": in}, &out)
	return out.UpdateSecret
}

func apiUpdateSecretData(t testing.TB, s *stack, token string, in map[string]any) apiSecret {
	t.Helper()
	var out struct {
		UpdateSecretData apiSecret `json:"updateSecretData"`
	}
	apiOK(t, s, token, apiUpdateSecretDataMutation, map[string]any{"in": in}, &out)
	return out.UpdateSecretData
}

func apiSecretDataOf(t testing.TB, s *stack, token, id string) apiSecretData {
	t.Helper()
	var out struct {
		SecretData apiSecretData `json:"secretData"`
	}
	apiOK(t, s, token, apiSecretDataQuery, map[string]any{"id": id}, &out)
	return out.SecretData
}

// apiListSecrets runs secrets with vars and returns the results and totalCount.
func apiListSecrets(t testing.TB, s *stack, token string, vars map[string]any) ([]apiSecret, int) {
	t.Helper()
	var out struct {
		Secrets struct {
			Results    []apiSecret `json:"results"`
			TotalCount int         `json:"totalCount"`
		} `json:"secrets"`
	}
	apiOK(t, s, token, apiSecretsQuery, vars, &out)
	return out.Secrets.Results, out.Secrets.TotalCount
}

func apiSecretIDs(list []apiSecret) []string {
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.SecretID
	}
	return ids
}

func apiStat(t testing.TB, s *stack, token, query string, stat map[string]any) map[string]any {
	t.Helper()
	var out map[string]map[string]any
	apiOK(t, s, token, query, map[string]any{"q": stat}, &out)
	for _, v := range out {
		return v
	}
	t.Fatalf("no stat result")
	return nil
}

func apiCreateUserSecret(t testing.TB, s *stack, token string, in map[string]any) apiUserSecret {
	t.Helper()
	var out struct {
		CreateUserSecret apiUserSecret `json:"createUserSecret"`
	}
	apiOK(t, s, token, apiCreateUserSecretMutation, map[string]any{"in": in}, &out)
	return out.CreateUserSecret
}

func apiGetUserSecret(t testing.TB, s *stack, token, id string) apiUserSecret {
	t.Helper()
	var out struct {
		UserSecret apiUserSecret `json:"userSecret"`
	}
	apiOK(t, s, token, apiUserSecretQuery, map[string]any{"id": id}, &out)
	return out.UserSecret
}

func apiUpdateUserSecret(t testing.TB, s *stack, token string, in map[string]any) apiUserSecret {
	t.Helper()
	var out struct {
		UpdateUserSecret apiUserSecret `json:"updateUserSecret"`
	}
	apiOK(t, s, token, apiUpdateUserSecretMutation, map[string]any{"in": in}, &out)
	return out.UpdateUserSecret
}

func apiUpdateUserSecretData(t testing.TB, s *stack, token string, in map[string]any) apiUserSecret {
	t.Helper()
	var out struct {
		UpdateUserSecretData apiUserSecret `json:"updateUserSecretData"`
	}
	apiOK(t, s, token, apiUpdateUserSecretDataMutation, map[string]any{"in": in}, &out)
	return out.UpdateUserSecretData
}

func apiUserSecretDataOf(t testing.TB, s *stack, token, id string) apiSecretData {
	t.Helper()
	var out struct {
		UserSecretData apiSecretData `json:"userSecretData"`
	}
	apiOK(t, s, token, apiUserSecretDataQuery, map[string]any{"id": id}, &out)
	return out.UserSecretData
}

func apiListUserSecrets(t testing.TB, s *stack, token string, vars map[string]any) ([]apiUserSecret, int) {
	t.Helper()
	var out struct {
		UserSecrets struct {
			Results    []apiUserSecret `json:"results"`
			TotalCount int             `json:"totalCount"`
		} `json:"userSecrets"`
	}
	apiOK(t, s, token, apiUserSecretsQuery, vars, &out)
	return out.UserSecrets.Results, out.UserSecrets.TotalCount
}

func apiUserSecretIDs(list []apiUserSecret) []string {
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.UserSecretID
	}
	return ids
}

// apiWrappedKey reads the data key row of the first version of stream's
// value straight from the database.
func apiWrappedKey(t testing.TB, s *stack, stream string) (wrapped []byte, destroyed bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var destroyedAt *time.Time
	require.NoError(t, conn.QueryRow(ctx, `SELECT wrapped_key, destroyed_at FROM data_keys WHERE stream_id = $1 || '/v1'`, stream).
		Scan(&wrapped, &destroyedAt))
	return wrapped, destroyedAt != nil
}

// apiTokens are the callers most tests use: domain-a and its mirror domain-b.
type apiTokens struct {
	admin, adminB, owner, member, system, systemB, bob, bobB, carol string
}

func apiNewTokens(s *stack) apiTokens {
	return apiTokens{
		admin:   s.token(auth.Identity{Subject: "sub-alice", UserID: "alice", Role: auth.RoleDomainAdmin, DomainID: "domain-a"}),
		adminB:  s.token(auth.Identity{UserID: "mallory", Role: auth.RoleDomainAdmin, DomainID: "domain-b"}),
		owner:   s.token(auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "domain-a", WorkspaceID: "ws-1"}),
		member:  s.token(auth.Identity{UserID: "dave", Role: auth.RoleWorkspaceMember, DomainID: "domain-a", WorkspaceID: "ws-1", Projects: []string{"proj-1"}}),
		system:  s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "domain-a"}),
		systemB: s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "domain-b"}),
		bob:     s.token(auth.Identity{UserID: "bob", Role: auth.RoleUser, DomainID: "domain-a"}),
		bobB:    s.token(auth.Identity{UserID: "bob", Role: auth.RoleUser, DomainID: "domain-b"}),
		carol:   s.token(auth.Identity{UserID: "carol", Role: auth.RoleUser, DomainID: "domain-a"}),
	}
}

func apiAWSData(secret string) map[string]any {
	return map[string]any{"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": secret, "region_name": "eu-west-1"}
}

func apiGoogleData() map[string]any {
	return map[string]any{"type": "service_account", "project_id": "p-123", "private_key_id": "kid-1",
		"private_key":  "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
		"client_email": "svc@p-123.iam.gserviceaccount.com", "client_id": "1234567890"}
}

func apiAzureData(secret string) map[string]any {
	return map[string]any{"tenant_id": "t-1", "subscription_id": "sub-1", "client_id": "c-1", "client_secret": secret}
}

func TestAPICreateSecret(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)

	// A trusted secret the DOMAIN secret below links to (its data merges under the secret's).
	trusted := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "root", "resourceGroup": "DOMAIN",
		"data": map[string]any{"region_name": "us-east-1"}}).TrustedSecretID
	cases := []struct {
		name    string
		token   string
		subject string
		in      map[string]any
		want    apiSecret // SecretID, Version, CreatedBy/UpdatedBy and times are checked separately
	}{
		{
			name: "DOMAIN aws", token: tk.admin, subject: "sub-alice",
			in: map[string]any{"name": "  aws-prod  ", "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
				"data": apiAWSData("s3cr3t-domain"), "tags": map[string]any{"env": "  prod  ", "cost": 3, "on": true},
				"serviceAccountId": "sa-1", "trustedSecretId": trusted},
			want: apiSecret{Name: "aws-prod", SchemaID: apiStr("aws_access_key"), Provider: apiStr("aws"),
				Tags: map[string]any{"env": "prod", "cost": float64(3), "on": true}, ResourceGroup: "DOMAIN",
				DomainID: "domain-a", ServiceAccountID: apiStr("sa-1"), TrustedSecretID: apiStr(trusted)},
		},
		{
			name: "WORKSPACE google", token: tk.admin, subject: "sub-alice",
			in: map[string]any{"name": "gcp", "resourceGroup": "WORKSPACE", "schemaId": "google_oauth2_credentials",
				"data": apiGoogleData(), "workspaceId": "ws-1", "tags": map[string]any{"team": "data\t"}},
			want: apiSecret{Name: "gcp", SchemaID: apiStr("google_oauth2_credentials"), Provider: apiStr("google_cloud"),
				Tags: map[string]any{"team": "data"}, ResourceGroup: "WORKSPACE", DomainID: "domain-a", WorkspaceID: apiStr("ws-1")},
		},
		{
			name: "PROJECT azure", token: tk.admin, subject: "sub-alice",
			in: map[string]any{"name": "az", "resourceGroup": "PROJECT", "schemaId": "azure_client_secret",
				"data": apiAzureData("s3cr3t-azure"), "workspaceId": "ws-1", "projectId": "proj-1", "serviceAccountId": "sa-2"},
			want: apiSecret{Name: "az", SchemaID: apiStr("azure_client_secret"), Provider: apiStr("azure"),
				Tags: map[string]any{}, ResourceGroup: "PROJECT", DomainID: "domain-a", WorkspaceID: apiStr("ws-1"),
				ProjectID: apiStr("proj-1"), ServiceAccountID: apiStr("sa-2")},
		},
		{
			name: "WORKSPACE without schema, workspace from the owner's token", token: tk.owner, subject: "WORKSPACE_OWNER@domain-a",
			in:   map[string]any{"name": "plain", "resourceGroup": "WORKSPACE", "data": map[string]any{"token": "t0k3n"}},
			want: apiSecret{Name: "plain", Tags: map[string]any{}, ResourceGroup: "WORKSPACE", DomainID: "domain-a", WorkspaceID: apiStr("ws-1")},
		},
		{
			name: "PROJECT by a member of the project", token: tk.member, subject: "dave",
			in: map[string]any{"name": "member-made", "resourceGroup": "PROJECT", "projectId": "proj-1",
				"data": map[string]any{"k": "v"}},
			want: apiSecret{Name: "member-made", Tags: map[string]any{}, ResourceGroup: "PROJECT", DomainID: "domain-a",
				WorkspaceID: apiStr("ws-1"), ProjectID: apiStr("proj-1")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			got := apiCreateSecret(t, s, tc.token, tc.in)
			require.Regexp(t, apiSecretIDPattern, got.SecretID)
			require.Equal(t, 1, got.Version)
			require.Equal(t, tc.subject, got.CreatedBy)
			require.Equal(t, tc.subject, got.UpdatedBy)
			require.Equal(t, got.CreatedAt, got.UpdatedAt)
			require.WithinDuration(t, before, got.CreatedAt, time.Minute)
			require.Equal(t, time.UTC, got.CreatedAt.Location())

			want := tc.want
			want.SecretID, want.Version, want.CreatedBy, want.UpdatedBy = got.SecretID, 1, tc.subject, tc.subject
			want.CreatedAt, want.UpdatedAt = got.CreatedAt, got.UpdatedAt
			require.Equal(t, want, got)

			// Read-your-writes: get, list and the value itself, right away.
			require.Equal(t, got, apiGetSecret(t, s, tc.token, got.SecretID))
			list, total := apiListSecrets(t, s, tc.token, map[string]any{"secretId": got.SecretID})
			require.Equal(t, 1, total)
			require.Equal(t, []apiSecret{got}, list)
			data := apiSecretDataOf(t, s, tk.system, got.SecretID)
			require.Equal(t, apiJSON(t, tc.in["data"]), data.Data)
		})
	}
	// The ids are distinct.
	list, total := apiListSecrets(t, s, tk.admin, nil)
	require.Equal(t, len(cases), total)
	seen := map[string]bool{}
	for _, id := range apiSecretIDs(list) {
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}
}

func TestAPICreateSecretLimits(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)

	// Largest accepted name and data; one more is INVALID_ARGUMENT (TestAPIInvalidArgument).
	name := strings.Repeat("n", 255)
	got := apiCreateSecret(t, s, tk.admin, map[string]any{"name": " " + name + " ", "resourceGroup": "DOMAIN",
		"data": map[string]any{"k": strings.Repeat("x", 64<<10-len(`{"k":""}`))}})
	require.Equal(t, name, got.Name)
	data := apiSecretDataOf(t, s, tk.system, got.SecretID)
	require.Len(t, data.Data["k"], 64<<10-len(`{"k":""}`))

	// A 40-character schemaId is within bounds (it is just unknown).
	r := apiDo(t, s, tk.admin, apiCreateSecretMutation, map[string]any{"in": map[string]any{"name": "x",
		"resourceGroup": "DOMAIN", "schemaId": strings.Repeat("s", 40), "data": map[string]any{"k": "v"}}})
	apiRequireError(t, r, "INVALID_ARGUMENT", "schemaId", "unknown schema")
}

func TestAPIGetAndListSecrets(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)

	trusted := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "ws-root", "resourceGroup": "WORKSPACE",
		"workspaceId": "ws-1", "data": map[string]any{"client_id": "from-trusted"}}).TrustedSecretID
	alpha := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "alpha", "resourceGroup": "DOMAIN",
		"schemaId": "aws_access_key", "data": apiAWSData("a"), "serviceAccountId": "sa-1"})
	bravo := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "bravo", "resourceGroup": "WORKSPACE",
		"workspaceId": "ws-1", "schemaId": "google_oauth2_credentials", "data": apiGoogleData(),
		"trustedSecretId": trusted})
	charlie := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "charlie", "resourceGroup": "PROJECT",
		"workspaceId": "ws-1", "projectId": "proj-1", "schemaId": "azure_client_secret", "data": apiAzureData("c")})
	delta := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "delta", "resourceGroup": "PROJECT",
		"workspaceId": "ws-2", "projectId": "proj-2", "data": map[string]any{"k": "d"}, "serviceAccountId": "sa-2"})
	echo := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "echo", "resourceGroup": "DOMAIN",
		"schemaId": "aws_access_key", "data": apiAWSData("e")})
	all := []apiSecret{alpha, bravo, charlie, delta, echo}
	// Another domain's secret never shows up.
	apiCreateSecret(t, s, tk.adminB, map[string]any{"name": "alpha", "resourceGroup": "DOMAIN",
		"schemaId": "aws_access_key", "data": apiAWSData("b")})

	t.Run("get", func(t *testing.T) {
		for _, want := range all {
			require.Equal(t, want, apiGetSecret(t, s, tk.admin, want.SecretID))
		}
	})

	t.Run("request-level filters", func(t *testing.T) {
		cases := []struct {
			name string
			vars map[string]any
			want []apiSecret
		}{
			{"none", nil, all},
			{"secretId", map[string]any{"secretId": charlie.SecretID}, []apiSecret{charlie}},
			{"name", map[string]any{"name": "bravo"}, []apiSecret{bravo}},
			{"schemaId", map[string]any{"schemaId": "aws_access_key"}, []apiSecret{alpha, echo}},
			{"provider", map[string]any{"provider": "azure"}, []apiSecret{charlie}},
			{"provider google_cloud", map[string]any{"provider": "google_cloud"}, []apiSecret{bravo}},
			{"workspaceId", map[string]any{"workspaceId": "ws-1"}, []apiSecret{bravo, charlie}},
			{"projectId", map[string]any{"projectId": "proj-2"}, []apiSecret{delta}},
			{"serviceAccountId", map[string]any{"serviceAccountId": "sa-1"}, []apiSecret{alpha}},
			{"trustedSecretId", map[string]any{"trustedSecretId": trusted}, []apiSecret{bravo}},
			{"two filters ANDed", map[string]any{"provider": "aws", "name": "echo"}, []apiSecret{echo}},
			{"no match", map[string]any{"name": "zulu"}, []apiSecret{}},
			{"query.filter eq", map[string]any{"q": map[string]any{"filter": []any{map[string]any{"k": "name", "v": "delta", "o": "eq"}}}}, []apiSecret{delta}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, total := apiListSecrets(t, s, tk.admin, tc.vars)
				require.Equal(t, len(tc.want), total)
				require.ElementsMatch(t, tc.want, got)
			})
		}
	})

	t.Run("sort", func(t *testing.T) {
		cases := []struct {
			name string
			sort []any
			want []apiSecret
		}{
			{"name asc", []any{map[string]any{"key": "name"}}, []apiSecret{alpha, bravo, charlie, delta, echo}},
			{"name desc", []any{map[string]any{"key": "name", "desc": true}}, []apiSecret{echo, delta, charlie, bravo, alpha}},
			{"createdAt asc", []any{map[string]any{"key": "createdAt", "desc": false}}, []apiSecret{alpha, bravo, charlie, delta, echo}},
			{"createdAt desc", []any{map[string]any{"key": "createdAt", "desc": true}}, []apiSecret{echo, delta, charlie, bravo, alpha}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, total := apiListSecrets(t, s, tk.admin, map[string]any{"q": map[string]any{"sort": tc.sort}})
				require.Equal(t, 5, total)
				require.Equal(t, apiSecretIDs(tc.want), apiSecretIDs(got))
			})
		}
	})

	t.Run("page", func(t *testing.T) {
		byName := []any{map[string]any{"key": "name"}}
		cases := []struct {
			name        string
			start, limt int
			want        []apiSecret
		}{
			{"first page", 1, 2, []apiSecret{alpha, bravo}},
			{"second page", 3, 2, []apiSecret{charlie, delta}},
			{"start 2", 2, 2, []apiSecret{bravo, charlie}},
			{"last partial page", 5, 2, []apiSecret{echo}},
			{"past the end", 6, 2, []apiSecret{}},
			{"limit 0 is no limit", 2, 0, []apiSecret{bravo, charlie, delta, echo}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, total := apiListSecrets(t, s, tk.admin, map[string]any{"q": map[string]any{"sort": byName,
					"page": map[string]any{"start": tc.start, "limit": tc.limt}}})
				require.Equal(t, 5, total, "totalCount counts before paging")
				require.Equal(t, apiSecretIDs(tc.want), apiSecretIDs(got))
			})
		}
		got, total := apiListSecrets(t, s, tk.admin, map[string]any{"provider": "aws",
			"q": map[string]any{"sort": byName, "page": map[string]any{"start": 2, "limit": 1}}})
		require.Equal(t, 2, total)
		require.Equal(t, []string{echo.SecretID}, apiSecretIDs(got))
	})

	t.Run("countOnly", func(t *testing.T) {
		got, total := apiListSecrets(t, s, tk.admin, map[string]any{"q": map[string]any{"countOnly": true}})
		require.Empty(t, got)
		require.Equal(t, 5, total)
		got, total = apiListSecrets(t, s, tk.admin, map[string]any{"provider": "aws", "q": map[string]any{"countOnly": true}})
		require.Empty(t, got)
		require.Equal(t, 2, total)
	})

	t.Run("secretStat", func(t *testing.T) {
		count := []any{map[string]any{"count": map[string]any{"name": "total"}}}
		res := apiStat(t, s, tk.admin, apiSecretStatQuery, map[string]any{"aggregate": count})
		require.Equal(t, []any{map[string]any{"total": float64(5)}}, res["results"])
		res = apiStat(t, s, tk.admin, apiSecretStatQuery, map[string]any{"aggregate": count,
			"filter": []any{map[string]any{"k": "provider", "v": "aws", "o": "eq"}}})
		require.Equal(t, []any{map[string]any{"total": float64(2)}}, res["results"])
		res = apiStat(t, s, tk.admin, apiSecretStatQuery, map[string]any{"aggregate": count,
			"filter": []any{map[string]any{"k": "workspaceId", "v": "ws-1", "o": "eq"}}})
		require.Equal(t, []any{map[string]any{"total": float64(2)}}, res["results"])
		// The other domain counts only its own.
		res = apiStat(t, s, tk.adminB, apiSecretStatQuery, map[string]any{"aggregate": count})
		require.Equal(t, []any{map[string]any{"total": float64(1)}}, res["results"])
	})
}

func TestAPISecretData(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)

	cases := []struct {
		name string
		in   map[string]any
	}{
		{"aws", map[string]any{"name": "aws", "resourceGroup": "DOMAIN", "schemaId": "aws_access_key", "data": apiAWSData("s3cr3t")}},
		{"free-form with nested values", map[string]any{"name": "free", "resourceGroup": "WORKSPACE", "workspaceId": "ws-9",
			"data": map[string]any{"token": "abc", "n": 1.5, "flag": false, "nested": map[string]any{"list": []any{1, "x", true, nil}},
				"unicode": "päss—wörd ✓"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sec := apiCreateSecret(t, s, tk.admin, tc.in)
			got := apiSecretDataOf(t, s, tk.system, sec.SecretID)
			require.False(t, got.Encrypted)
			require.NotNil(t, got.EncryptOptions)
			require.Equal(t, apiJSON(t, tc.in["data"]), got.Data)
		})
	}
}

func TestAPIUpdateSecret(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)

	created := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "orig", "resourceGroup": "PROJECT",
		"workspaceId": "ws-1", "projectId": "proj-1", "schemaId": "aws_access_key", "data": apiAWSData("v1"),
		"tags": map[string]any{"env": "dev"}})

	// Renamed by another caller (the workspace owner): updatedBy follows, createdBy stays.
	renamed := apiUpdateSecret(t, s, tk.owner, map[string]any{"secretId": created.SecretID, "name": "  renamed  "})
	require.Equal(t, "renamed", renamed.Name)
	require.Equal(t, created.Tags, renamed.Tags)
	require.Equal(t, 1, renamed.Version, "metadata updates do not change the data version")
	require.Equal(t, "sub-alice", renamed.CreatedBy)
	require.Equal(t, "WORKSPACE_OWNER@domain-a", renamed.UpdatedBy)
	require.Equal(t, created.CreatedAt, renamed.CreatedAt)
	require.True(t, renamed.UpdatedAt.After(created.UpdatedAt), "updatedAt moves: %s -> %s", created.UpdatedAt, renamed.UpdatedAt)
	require.Equal(t, renamed, apiGetSecret(t, s, tk.admin, created.SecretID))
	got, _ := apiListSecrets(t, s, tk.admin, map[string]any{"name": "renamed"})
	require.Equal(t, []apiSecret{renamed}, got)
	got, _ = apiListSecrets(t, s, tk.admin, map[string]any{"name": "orig"})
	require.Empty(t, got)

	// Tags are replaced, string values trimmed.
	tagged := apiUpdateSecret(t, s, tk.admin, map[string]any{"secretId": created.SecretID,
		"tags": map[string]any{"team": "  core ", "tier": 2}})
	require.Equal(t, map[string]any{"team": "core", "tier": float64(2)}, tagged.Tags)
	require.Equal(t, "renamed", tagged.Name)
	require.Equal(t, 1, tagged.Version)
	require.Equal(t, "sub-alice", tagged.UpdatedBy)
	require.True(t, tagged.UpdatedAt.After(renamed.UpdatedAt))
	require.Equal(t, tagged, apiGetSecret(t, s, tk.admin, created.SecretID))
	got, _ = apiListSecrets(t, s, tk.admin, map[string]any{"q": map[string]any{"filter": []any{
		map[string]any{"k": "tags.team", "v": "core"}}}})
	require.Equal(t, []apiSecret{tagged}, got)

	// A PROJECT secret moves to another project of its workspace.
	moved := apiUpdateSecret(t, s, tk.admin, map[string]any{"secretId": created.SecretID, "projectId": "proj-2"})
	require.Equal(t, apiStr("proj-2"), moved.ProjectID)
	require.Equal(t, apiStr("ws-1"), moved.WorkspaceID)
	require.Equal(t, "PROJECT", moved.ResourceGroup)
	require.Equal(t, 1, moved.Version)
	require.True(t, moved.UpdatedAt.After(tagged.UpdatedAt))
	require.Equal(t, moved, apiGetSecret(t, s, tk.admin, created.SecretID))
	got, _ = apiListSecrets(t, s, tk.admin, map[string]any{"projectId": "proj-2"})
	require.Equal(t, []apiSecret{moved}, got)
	got, _ = apiListSecrets(t, s, tk.admin, map[string]any{"projectId": "proj-1"})
	require.Empty(t, got)
	// The member of proj-1 no longer sees it.
	apiRequireError(t, apiDo(t, s, tk.member, apiSecretQuery, map[string]any{"id": created.SecretID}), "NOT_FOUND")

	// All three at once.
	all := apiUpdateSecret(t, s, tk.admin, map[string]any{"secretId": created.SecretID, "name": "final",
		"tags": map[string]any{}, "projectId": "proj-1"})
	require.Equal(t, "final", all.Name)
	require.Equal(t, map[string]any{}, all.Tags)
	require.Equal(t, apiStr("proj-1"), all.ProjectID)
	require.Equal(t, 1, all.Version)

	// No-op updates answer the secret unchanged (updatedAt included).
	for _, in := range []map[string]any{
		{"secretId": created.SecretID},
		{"secretId": created.SecretID, "name": "final"},
		{"secretId": created.SecretID, "name": " final ", "tags": map[string]any{}, "projectId": "proj-1"},
	} {
		require.Equal(t, all, apiUpdateSecret(t, s, tk.admin, in))
	}
	require.Equal(t, all, apiGetSecret(t, s, tk.admin, created.SecretID))

	// The value is untouched by metadata updates.
	require.Equal(t, apiJSON(t, apiAWSData("v1")), apiSecretDataOf(t, s, tk.system, created.SecretID).Data)
}

func TestAPIUpdateSecretData(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)

	v1 := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "rotating", "resourceGroup": "DOMAIN",
		"schemaId": "aws_access_key", "data": apiAWSData("one"), "tags": map[string]any{"a": "b"}})
	require.Equal(t, 1, v1.Version)

	// Same schema (validated against the current one).
	v2 := apiUpdateSecretData(t, s, tk.admin, map[string]any{"secretId": v1.SecretID, "data": apiAWSData("two")})
	require.Equal(t, 2, v2.Version)
	require.Equal(t, v1.Name, v2.Name)
	require.Equal(t, v1.Tags, v2.Tags)
	require.Equal(t, apiStr("aws_access_key"), v2.SchemaID)
	require.Equal(t, apiStr("aws"), v2.Provider)
	require.Equal(t, v1.CreatedAt, v2.CreatedAt)
	require.True(t, v2.UpdatedAt.After(v1.UpdatedAt))
	require.Equal(t, v2, apiGetSecret(t, s, tk.admin, v1.SecretID))
	require.Equal(t, apiJSON(t, apiAWSData("two")), apiSecretDataOf(t, s, tk.system, v1.SecretID).Data)

	// The current schema still validates when none is given.
	r := apiDo(t, s, tk.admin, apiUpdateSecretDataMutation, map[string]any{"in": map[string]any{
		"secretId": v1.SecretID, "data": apiAzureData("nope")}})
	apiRequireError(t, r, "INVALID_ARGUMENT", "data", "aws_access_key_id")

	// A schema change re-validates and sets the provider.
	v3 := apiUpdateSecretData(t, s, tk.admin, map[string]any{"secretId": v1.SecretID, "schemaId": "azure_client_secret",
		"data": apiAzureData("three")})
	require.Equal(t, 3, v3.Version)
	require.Equal(t, apiStr("azure_client_secret"), v3.SchemaID)
	require.Equal(t, apiStr("azure"), v3.Provider)
	require.Equal(t, v3, apiGetSecret(t, s, tk.admin, v1.SecretID))
	require.Equal(t, apiJSON(t, apiAzureData("three")), apiSecretDataOf(t, s, tk.system, v1.SecretID).Data)
	got, _ := apiListSecrets(t, s, tk.admin, map[string]any{"provider": "azure"})
	require.Equal(t, []apiSecret{v3}, got)
	got, _ = apiListSecrets(t, s, tk.admin, map[string]any{"provider": "aws"})
	require.Empty(t, got)

	// A rejected schema change leaves everything as it was.
	r = apiDo(t, s, tk.admin, apiUpdateSecretDataMutation, map[string]any{"in": map[string]any{
		"secretId": v1.SecretID, "schemaId": "google_oauth2_credentials", "data": apiAzureData("four")}})
	apiRequireError(t, r, "INVALID_ARGUMENT", "data", "google_oauth2_credentials")
	require.Equal(t, v3, apiGetSecret(t, s, tk.admin, v1.SecretID))
	require.Equal(t, apiJSON(t, apiAzureData("three")), apiSecretDataOf(t, s, tk.system, v1.SecretID).Data)

	// A schema-less secret takes any object, and can gain a schema.
	free := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "free", "resourceGroup": "DOMAIN", "data": map[string]any{"x": "1"}})
	free2 := apiUpdateSecretData(t, s, tk.admin, map[string]any{"secretId": free.SecretID, "data": map[string]any{"y": "2"}})
	require.Equal(t, 2, free2.Version)
	require.Nil(t, free2.SchemaID)
	require.Nil(t, free2.Provider)
	require.Equal(t, map[string]any{"y": "2"}, apiSecretDataOf(t, s, tk.system, free.SecretID).Data)
	free3 := apiUpdateSecretData(t, s, tk.admin, map[string]any{"secretId": free.SecretID, "schemaId": "google_oauth2_credentials",
		"data": apiGoogleData()})
	require.Equal(t, 3, free3.Version)
	require.Equal(t, apiStr("google_cloud"), free3.Provider)
}

func TestAPIDeleteSecret(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)

	doomed := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "doomed", "resourceGroup": "DOMAIN",
		"schemaId": "aws_access_key", "data": apiAWSData("bye")})
	kept := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "kept", "resourceGroup": "DOMAIN",
		"schemaId": "aws_access_key", "data": apiAWSData("stay")})
	wrapped, destroyed := apiWrappedKey(t, s, doomed.SecretID)
	require.NotEmpty(t, wrapped)
	require.False(t, destroyed)

	var out struct {
		DeleteSecret bool `json:"deleteSecret"`
	}
	apiOK(t, s, tk.admin, apiDeleteSecretMutation, map[string]any{"id": doomed.SecretID}, &out)
	require.True(t, out.DeleteSecret)

	id := doomed.SecretID
	apiRequireError(t, apiDo(t, s, tk.admin, apiSecretQuery, map[string]any{"id": id}), "NOT_FOUND")
	got, total := apiListSecrets(t, s, tk.admin, nil)
	require.Equal(t, 1, total)
	require.Equal(t, []apiSecret{kept}, got)
	got, total = apiListSecrets(t, s, tk.admin, map[string]any{"secretId": id})
	require.Zero(t, total)
	require.Empty(t, got)
	res := apiStat(t, s, tk.admin, apiSecretStatQuery, map[string]any{"aggregate": []any{map[string]any{"count": map[string]any{"name": "n"}}}})
	require.Equal(t, []any{map[string]any{"n": float64(1)}}, res["results"])
	apiRequireError(t, apiDo(t, s, tk.system, apiSecretDataQuery, map[string]any{"id": id}), "NOT_FOUND", id)
	apiRequireError(t, apiDo(t, s, tk.admin, apiUpdateSecretMutation, map[string]any{"in": map[string]any{"secretId": id, "name": "x"}}), "NOT_FOUND", id)
	apiRequireError(t, apiDo(t, s, tk.admin, apiUpdateSecretDataMutation, map[string]any{"in": map[string]any{"secretId": id, "data": apiAWSData("x")}}), "NOT_FOUND", id)
	apiRequireError(t, apiDo(t, s, tk.admin, apiDeleteSecretMutation, map[string]any{"id": id}), "NOT_FOUND", id)

	// Crypto-shredding: the wrapped data key is gone; the other secret's is not.
	wrapped, destroyed = apiWrappedKey(t, s, id)
	require.Nil(t, wrapped)
	require.True(t, destroyed)
	wrapped, destroyed = apiWrappedKey(t, s, kept.SecretID)
	require.NotEmpty(t, wrapped)
	require.False(t, destroyed)
	require.Equal(t, apiJSON(t, apiAWSData("stay")), apiSecretDataOf(t, s, tk.system, kept.SecretID).Data)
}

func TestAPIUserSecretLifecycle(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)

	// create: every field; the owner is the caller.
	before := time.Now()
	in := map[string]any{"name": "  github  ", "schemaId": "aws_access_key", "data": apiAWSData("u1"),
		"tags": map[string]any{"kind": " personal ", "n": 1}}
	created := apiCreateUserSecret(t, s, tk.bob, in)
	require.Regexp(t, apiUserSecretIDPattern, created.UserSecretID)
	require.WithinDuration(t, before, created.CreatedAt, time.Minute)
	require.Equal(t, apiUserSecret{UserSecretID: created.UserSecretID, Name: "github", SchemaID: apiStr("aws_access_key"),
		Provider: apiStr("aws"), Tags: map[string]any{"kind": "personal", "n": float64(1)}, DomainID: "domain-a", UserID: "bob",
		Version: 1, CreatedBy: "bob", UpdatedBy: "bob", CreatedAt: created.CreatedAt, UpdatedAt: created.CreatedAt}, created)

	// Schema-less, and other providers.
	plain := apiCreateUserSecret(t, s, tk.bob, map[string]any{"name": "plain", "data": map[string]any{"pin": "1234"}})
	require.Nil(t, plain.SchemaID)
	require.Nil(t, plain.Provider)
	require.Equal(t, map[string]any{}, plain.Tags)
	gcp := apiCreateUserSecret(t, s, tk.bob, map[string]any{"name": "gcp", "schemaId": "google_oauth2_credentials", "data": apiGoogleData()})
	require.Equal(t, apiStr("google_cloud"), gcp.Provider)
	az := apiCreateUserSecret(t, s, tk.bob, map[string]any{"name": "az", "schemaId": "azure_client_secret", "data": apiAzureData("z")})
	require.Equal(t, apiStr("azure"), az.Provider)
	carols := apiCreateUserSecret(t, s, tk.carol, map[string]any{"name": "github", "schemaId": "aws_access_key", "data": apiAWSData("c")})
	require.Equal(t, "carol", carols.UserID)
	bobB := apiCreateUserSecret(t, s, tk.bobB, map[string]any{"name": "github", "data": map[string]any{"k": "v"}})
	require.Equal(t, "domain-b", bobB.DomainID)
	bobs := []apiUserSecret{created, plain, gcp, az}

	// get (read-your-writes), by the owner and by the domain's admin.
	for _, want := range bobs {
		require.Equal(t, want, apiGetUserSecret(t, s, tk.bob, want.UserSecretID))
		require.Equal(t, want, apiGetUserSecret(t, s, tk.admin, want.UserSecretID))
	}

	t.Run("list filters", func(t *testing.T) {
		cases := []struct {
			name  string
			token string
			vars  map[string]any
			want  []apiUserSecret
		}{
			{"owner sees only own", tk.bob, nil, bobs},
			{"other user", tk.carol, nil, []apiUserSecret{carols}},
			{"admin sees the domain", tk.admin, nil, append([]apiUserSecret{carols}, bobs...)},
			{"userSecretId", tk.bob, map[string]any{"userSecretId": gcp.UserSecretID}, []apiUserSecret{gcp}},
			{"userSecretId of another user", tk.bob, map[string]any{"userSecretId": carols.UserSecretID}, []apiUserSecret{}},
			{"name", tk.bob, map[string]any{"name": "github"}, []apiUserSecret{created}},
			{"schemaId", tk.bob, map[string]any{"schemaId": "azure_client_secret"}, []apiUserSecret{az}},
			{"provider", tk.bob, map[string]any{"provider": "aws"}, []apiUserSecret{created}},
			{"provider by admin", tk.admin, map[string]any{"provider": "aws"}, []apiUserSecret{created, carols}},
			{"no match", tk.bob, map[string]any{"name": "zulu"}, []apiUserSecret{}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, total := apiListUserSecrets(t, s, tc.token, tc.vars)
				require.Equal(t, len(tc.want), total)
				require.ElementsMatch(t, tc.want, got)
			})
		}
	})

	t.Run("list sort and page", func(t *testing.T) {
		byName := []any{map[string]any{"key": "name"}}
		got, total := apiListUserSecrets(t, s, tk.bob, map[string]any{"q": map[string]any{"sort": byName}})
		require.Equal(t, 4, total)
		require.Equal(t, apiUserSecretIDs([]apiUserSecret{az, gcp, created, plain}), apiUserSecretIDs(got))
		got, _ = apiListUserSecrets(t, s, tk.bob, map[string]any{"q": map[string]any{"sort": []any{map[string]any{"key": "name", "desc": true}}}})
		require.Equal(t, apiUserSecretIDs([]apiUserSecret{plain, created, gcp, az}), apiUserSecretIDs(got))
		got, _ = apiListUserSecrets(t, s, tk.bob, map[string]any{"q": map[string]any{"sort": []any{map[string]any{"key": "createdAt"}}}})
		require.Equal(t, apiUserSecretIDs(bobs), apiUserSecretIDs(got))
		got, _ = apiListUserSecrets(t, s, tk.bob, map[string]any{"q": map[string]any{"sort": []any{map[string]any{"key": "createdAt", "desc": true}}}})
		require.Equal(t, apiUserSecretIDs([]apiUserSecret{az, gcp, plain, created}), apiUserSecretIDs(got))
		got, total = apiListUserSecrets(t, s, tk.bob, map[string]any{"q": map[string]any{"sort": byName, "page": map[string]any{"start": 2, "limit": 2}}})
		require.Equal(t, 4, total, "totalCount counts before paging")
		require.Equal(t, apiUserSecretIDs([]apiUserSecret{gcp, created}), apiUserSecretIDs(got))
		got, total = apiListUserSecrets(t, s, tk.bob, map[string]any{"q": map[string]any{"countOnly": true}})
		require.Equal(t, 4, total)
		require.Empty(t, got)
	})

	t.Run("userSecretStat", func(t *testing.T) {
		count := []any{map[string]any{"count": map[string]any{"name": "total"}}}
		res := apiStat(t, s, tk.bob, apiUserSecretStatQuery, map[string]any{"aggregate": count})
		require.Equal(t, []any{map[string]any{"total": float64(4)}}, res["results"])
		res = apiStat(t, s, tk.bob, apiUserSecretStatQuery, map[string]any{"aggregate": count,
			"filter": []any{map[string]any{"k": "provider", "v": "aws", "o": "eq"}}})
		require.Equal(t, []any{map[string]any{"total": float64(1)}}, res["results"])
		res = apiStat(t, s, tk.admin, apiUserSecretStatQuery, map[string]any{"aggregate": count})
		require.Equal(t, []any{map[string]any{"total": float64(5)}}, res["results"])
	})

	t.Run("userSecretData", func(t *testing.T) {
		got := apiUserSecretDataOf(t, s, tk.system, created.UserSecretID)
		require.False(t, got.Encrypted)
		require.NotNil(t, got.EncryptOptions)
		require.Equal(t, apiJSON(t, apiAWSData("u1")), got.Data)
		require.Equal(t, map[string]any{"pin": "1234"}, apiUserSecretDataOf(t, s, tk.system, plain.UserSecretID).Data)
	})

	t.Run("updateUserSecret", func(t *testing.T) {
		renamed := apiUpdateUserSecret(t, s, tk.bob, map[string]any{"userSecretId": plain.UserSecretID, "name": " pin-code "})
		require.Equal(t, "pin-code", renamed.Name)
		require.Equal(t, 1, renamed.Version)
		require.Equal(t, plain.CreatedAt, renamed.CreatedAt)
		require.True(t, renamed.UpdatedAt.After(plain.UpdatedAt))
		require.Equal(t, renamed, apiGetUserSecret(t, s, tk.bob, plain.UserSecretID))
		got, _ := apiListUserSecrets(t, s, tk.bob, map[string]any{"name": "pin-code"})
		require.Equal(t, []apiUserSecret{renamed}, got)

		tagged := apiUpdateUserSecret(t, s, tk.bob, map[string]any{"userSecretId": plain.UserSecretID, "tags": map[string]any{"x": " y "}})
		require.Equal(t, map[string]any{"x": "y"}, tagged.Tags)
		require.Equal(t, "pin-code", tagged.Name)
		require.Equal(t, 1, tagged.Version)
		require.True(t, tagged.UpdatedAt.After(renamed.UpdatedAt))
		require.Equal(t, tagged, apiGetUserSecret(t, s, tk.bob, plain.UserSecretID))

		for _, in := range []map[string]any{
			{"userSecretId": plain.UserSecretID},
			{"userSecretId": plain.UserSecretID, "name": "pin-code", "tags": map[string]any{"x": "y"}},
		} {
			require.Equal(t, tagged, apiUpdateUserSecret(t, s, tk.bob, in), "a no-op update answers it unchanged")
		}

		cleared := apiUpdateUserSecret(t, s, tk.bob, map[string]any{"userSecretId": plain.UserSecretID, "tags": map[string]any{}})
		require.Equal(t, map[string]any{}, cleared.Tags, "empty tags clear them")
		require.Equal(t, cleared, apiGetUserSecret(t, s, tk.bob, plain.UserSecretID))
		require.Equal(t, map[string]any{"pin": "1234"}, apiUserSecretDataOf(t, s, tk.system, plain.UserSecretID).Data)
	})

	t.Run("updateUserSecretData", func(t *testing.T) {
		v2 := apiUpdateUserSecretData(t, s, tk.bob, map[string]any{"userSecretId": created.UserSecretID, "data": apiAWSData("u2")})
		require.Equal(t, 2, v2.Version)
		require.Equal(t, apiStr("aws"), v2.Provider)
		require.True(t, v2.UpdatedAt.After(created.UpdatedAt))
		require.Equal(t, v2, apiGetUserSecret(t, s, tk.bob, created.UserSecretID))
		require.Equal(t, apiJSON(t, apiAWSData("u2")), apiUserSecretDataOf(t, s, tk.system, created.UserSecretID).Data)

		r := apiDo(t, s, tk.bob, apiUpdateUserSecretDataMutation, map[string]any{"in": map[string]any{
			"userSecretId": created.UserSecretID, "data": map[string]any{"aws_access_key_id": "AKIA"}}})
		apiRequireError(t, r, "INVALID_ARGUMENT", "aws_secret_access_key")

		v3 := apiUpdateUserSecretData(t, s, tk.bob, map[string]any{"userSecretId": created.UserSecretID,
			"schemaId": "azure_client_secret", "data": apiAzureData("u3")})
		require.Equal(t, 3, v3.Version)
		require.Equal(t, apiStr("azure_client_secret"), v3.SchemaID)
		require.Equal(t, apiStr("azure"), v3.Provider)
		require.Equal(t, v3, apiGetUserSecret(t, s, tk.bob, created.UserSecretID))
		require.Equal(t, apiJSON(t, apiAzureData("u3")), apiUserSecretDataOf(t, s, tk.system, created.UserSecretID).Data)
		got, _ := apiListUserSecrets(t, s, tk.bob, map[string]any{"provider": "azure"})
		require.ElementsMatch(t, apiUserSecretIDs([]apiUserSecret{az, v3}), apiUserSecretIDs(got))
	})

	t.Run("deleteUserSecret", func(t *testing.T) {
		id := gcp.UserSecretID
		wrapped, destroyed := apiWrappedKey(t, s, id)
		require.NotEmpty(t, wrapped)
		require.False(t, destroyed)

		var out struct {
			DeleteUserSecret bool `json:"deleteUserSecret"`
		}
		apiOK(t, s, tk.bob, apiDeleteUserSecretMutation, map[string]any{"id": id}, &out)
		require.True(t, out.DeleteUserSecret)

		apiRequireError(t, apiDo(t, s, tk.bob, apiUserSecretQuery, map[string]any{"id": id}), "NOT_FOUND")
		got, total := apiListUserSecrets(t, s, tk.bob, nil)
		require.Equal(t, 3, total)
		require.NotContains(t, apiUserSecretIDs(got), id)
		res := apiStat(t, s, tk.bob, apiUserSecretStatQuery, map[string]any{"aggregate": []any{map[string]any{"count": map[string]any{"name": "total"}}}})
		require.Equal(t, []any{map[string]any{"total": float64(3)}}, res["results"])
		apiRequireError(t, apiDo(t, s, tk.system, apiUserSecretDataQuery, map[string]any{"id": id}), "NOT_FOUND", id)
		apiRequireError(t, apiDo(t, s, tk.bob, apiUpdateUserSecretMutation, map[string]any{"in": map[string]any{"userSecretId": id, "name": "x"}}), "NOT_FOUND", id)
		apiRequireError(t, apiDo(t, s, tk.bob, apiUpdateUserSecretDataMutation, map[string]any{"in": map[string]any{"userSecretId": id, "data": map[string]any{"k": "v"}}}), "NOT_FOUND", id)
		apiRequireError(t, apiDo(t, s, tk.bob, apiDeleteUserSecretMutation, map[string]any{"id": id}), "NOT_FOUND", id)

		wrapped, destroyed = apiWrappedKey(t, s, id)
		require.Nil(t, wrapped)
		require.True(t, destroyed)
		wrapped, _ = apiWrappedKey(t, s, az.UserSecretID)
		require.NotEmpty(t, wrapped)
	})
}

// apiOperation is one GraphQL operation with well-formed variables.
type apiOperation struct {
	name  string
	query string
	vars  map[string]any
}

// apiAllOperations lists every operation of the README's API section, aimed at secretID and userSecretID.
func apiAllOperations(secretID, userSecretID string) []apiOperation {
	count := map[string]any{"aggregate": []any{map[string]any{"count": map[string]any{"name": "total"}}}}
	return []apiOperation{
		{"secret", apiSecretQuery, map[string]any{"id": secretID}},
		{"secrets", apiSecretsQuery, nil},
		{"secretStat", apiSecretStatQuery, map[string]any{"q": count}},
		{"secretData", apiSecretDataQuery, map[string]any{"id": secretID}},
		{"createSecret", apiCreateSecretMutation, map[string]any{"in": map[string]any{"name": "n", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}}}},
		{"updateSecret", apiUpdateSecretMutation, map[string]any{"in": map[string]any{"secretId": secretID, "name": "n2"}}},
		{"updateSecretData", apiUpdateSecretDataMutation, map[string]any{"in": map[string]any{"secretId": secretID, "data": map[string]any{"k": "v"}}}},
		{"deleteSecret", apiDeleteSecretMutation, map[string]any{"id": secretID}},
		{"userSecret", apiUserSecretQuery, map[string]any{"id": userSecretID}},
		{"userSecrets", apiUserSecretsQuery, nil},
		{"userSecretStat", apiUserSecretStatQuery, map[string]any{"q": count}},
		{"userSecretData", apiUserSecretDataQuery, map[string]any{"id": userSecretID}},
		{"createUserSecret", apiCreateUserSecretMutation, map[string]any{"in": map[string]any{"name": "n", "data": map[string]any{"k": "v"}}}},
		{"updateUserSecret", apiUpdateUserSecretMutation, map[string]any{"in": map[string]any{"userSecretId": userSecretID, "name": "n2"}}},
		{"updateUserSecretData", apiUpdateUserSecretDataMutation, map[string]any{"in": map[string]any{"userSecretId": userSecretID, "data": map[string]any{"k": "v"}}}},
		{"deleteUserSecret", apiDeleteUserSecretMutation, map[string]any{"id": userSecretID}},
	}
}

func TestAPIUnauthenticated(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)
	sec := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "x", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}})
	us := apiCreateUserSecret(t, s, tk.bob, map[string]any{"name": "x", "data": map[string]any{"k": "v"}})

	signer, err := auth.NewSigner(s.tokenKey)
	require.NoError(t, err)
	expired, err := signer.Mint(auth.Identity{UserID: "alice", Role: auth.RoleDomainAdmin, DomainID: "domain-a"}, time.Nanosecond)
	require.NoError(t, err)
	time.Sleep(5 * time.Millisecond) // let the token expire (this is not a wait for a projection)
	otherKey := make([]byte, 32)
	_, err = rand.Read(otherKey)
	require.NoError(t, err)
	foreignSigner, err := auth.NewSigner(otherKey)
	require.NoError(t, err)
	foreign, err := foreignSigner.Mint(auth.Identity{UserID: "alice", Role: auth.RoleDomainAdmin, DomainID: "domain-a"}, time.Hour)
	require.NoError(t, err)

	tokens := []struct {
		name  string
		token string
		msg   string
	}{
		{"no token", "", "authentication required"},
		{"garbage token", "not-a-jwt", "invalid or expired token"},
		{"expired token", expired, "invalid or expired token"},
		{"token signed by another key", foreign, "invalid or expired token"},
	}
	for _, tok := range tokens {
		for _, op := range apiAllOperations(sec.SecretID, us.UserSecretID) {
			t.Run(tok.name+"/"+op.name, func(t *testing.T) {
				r := apiDo(t, s, tok.token, op.query, op.vars)
				apiRequireError(t, r, "UNAUTHENTICATED", tok.msg)
				require.Len(t, r.Errors, 1)
			})
		}
	}
	// Nothing changed.
	require.Equal(t, sec, apiGetSecret(t, s, tk.admin, sec.SecretID))
	require.Equal(t, us, apiGetUserSecret(t, s, tk.bob, us.UserSecretID))
	_, total := apiListSecrets(t, s, tk.admin, nil)
	require.Equal(t, 1, total)
}

func TestAPIInvalidArgument(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)
	awsSecret := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "aws", "resourceGroup": "DOMAIN",
		"schemaId": "aws_access_key", "data": apiAWSData("keep")})
	domainSecret := awsSecret.SecretID
	us := apiCreateUserSecret(t, s, tk.bob, map[string]any{"name": "mine", "schemaId": "aws_access_key", "data": apiAWSData("mine")})
	userSecret := us.UserSecretID

	create := func(in map[string]any) map[string]any {
		base := map[string]any{"name": "ok", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}}
		for k, v := range in {
			if v == nil {
				delete(base, k)
				continue
			}
			base[k] = v
		}
		return map[string]any{"in": base}
	}
	bigData := map[string]any{"k": strings.Repeat("x", 64<<10)}
	missingSecretKey := map[string]any{"aws_access_key_id": "AKIA", "note": "s3cr3t-value"}
	stat := func(extra map[string]any) map[string]any {
		q := map[string]any{"aggregate": []any{map[string]any{"count": map[string]any{"name": "total"}}}}
		for k, v := range extra {
			q[k] = v
		}
		return map[string]any{"q": q}
	}

	cases := []struct {
		name  string
		token string
		query string
		vars  map[string]any
		want  []string // substrings of the message
	}{
		// createSecret
		{"empty name", tk.admin, apiCreateSecretMutation, create(map[string]any{"name": ""}), []string{"name"}},
		{"blank name", tk.admin, apiCreateSecretMutation, create(map[string]any{"name": "   "}), []string{"name"}},
		{"name of 256 chars", tk.admin, apiCreateSecretMutation, create(map[string]any{"name": strings.Repeat("n", 256)}), []string{"name", "255"}},
		{"empty data", tk.admin, apiCreateSecretMutation, create(map[string]any{"data": map[string]any{}}), []string{"data"}},
		{"data over 64 KiB", tk.admin, apiCreateSecretMutation, create(map[string]any{"data": bigData}), []string{"data"}},
		{"unknown schemaId", tk.admin, apiCreateSecretMutation, create(map[string]any{"schemaId": "no_such_schema"}), []string{"schemaId", "no_such_schema"}},
		{"schemaId of 41 chars", tk.admin, apiCreateSecretMutation, create(map[string]any{"schemaId": strings.Repeat("s", 41)}), []string{"schemaId", "40"}},
		{"data missing a required field", tk.admin, apiCreateSecretMutation,
			create(map[string]any{"schemaId": "aws_access_key", "data": missingSecretKey}), []string{"data", "aws_secret_access_key"}},
		{"data field of the wrong type", tk.admin, apiCreateSecretMutation,
			create(map[string]any{"schemaId": "aws_access_key", "data": map[string]any{"aws_access_key_id": "A", "aws_secret_access_key": 42}}),
			[]string{"aws_secret_access_key"}},
		{"DOMAIN with projectId", tk.admin, apiCreateSecretMutation, create(map[string]any{"projectId": "proj-1"}), []string{"projectId"}},
		{"DOMAIN with workspaceId", tk.admin, apiCreateSecretMutation, create(map[string]any{"workspaceId": "ws-1"}), []string{"workspaceId"}},
		{"PROJECT without projectId", tk.admin, apiCreateSecretMutation,
			create(map[string]any{"resourceGroup": "PROJECT", "workspaceId": "ws-1"}), []string{"projectId"}},
		{"WORKSPACE without workspaceId", tk.admin, apiCreateSecretMutation,
			create(map[string]any{"resourceGroup": "WORKSPACE"}), []string{"workspaceId"}},
		{"WORKSPACE with projectId", tk.admin, apiCreateSecretMutation,
			create(map[string]any{"resourceGroup": "WORKSPACE", "workspaceId": "ws-1", "projectId": "proj-1"}), []string{"projectId"}},
		{"serviceAccountId of 41 chars", tk.admin, apiCreateSecretMutation,
			create(map[string]any{"serviceAccountId": strings.Repeat("a", 41)}), []string{"serviceAccountId"}},
		{"unknown resourceGroup", tk.admin, apiCreateSecretMutation, create(map[string]any{"resourceGroup": "GLOBAL"}), []string{"ResourceGroup"}},
		{"missing required input field", tk.admin, apiCreateSecretMutation, create(map[string]any{"data": nil}), nil},
		{"tags not an object", tk.admin, apiCreateSecretMutation, create(map[string]any{"tags": "env=prod"}), nil},
		{"data not an object", tk.admin, apiCreateSecretMutation, create(map[string]any{"data": "s3cr3t-value"}), nil},
		{"data not an object (literal)", tk.admin, `mutation { createSecret(input: {name: "x", resourceGroup: DOMAIN, data: "s3cr3t-value"}) { secretId } }`,
			nil, nil},

		// updateSecret / updateSecretData
		{"update: empty name", tk.admin, apiUpdateSecretMutation, map[string]any{"in": map[string]any{"secretId": domainSecret, "name": " "}}, []string{"name"}},
		{"update: projectId on a DOMAIN secret", tk.admin, apiUpdateSecretMutation,
			map[string]any{"in": map[string]any{"secretId": domainSecret, "projectId": "proj-1"}}, []string{"projectId"}},
		{"updateData: empty data", tk.admin, apiUpdateSecretDataMutation, map[string]any{"in": map[string]any{"secretId": domainSecret, "data": map[string]any{}}}, []string{"data"}},
		{"updateData: data over 64 KiB", tk.admin, apiUpdateSecretDataMutation, map[string]any{"in": map[string]any{"secretId": domainSecret, "data": bigData}}, []string{"data"}},
		{"updateData: unknown schemaId", tk.admin, apiUpdateSecretDataMutation,
			map[string]any{"in": map[string]any{"secretId": domainSecret, "schemaId": "nope", "data": map[string]any{"k": "v"}}}, []string{"schemaId"}},
		{"updateData: current schema still applies", tk.admin, apiUpdateSecretDataMutation,
			map[string]any{"in": map[string]any{"secretId": domainSecret, "data": missingSecretKey}}, []string{"aws_secret_access_key"}},

		// list and stat query language
		{"secrets: sort by unknown key", tk.admin, apiSecretsQuery,
			map[string]any{"q": map[string]any{"sort": []any{map[string]any{"key": "color"}}}}, []string{"color"}},
		{"secrets: filter with unknown operator", tk.admin, apiSecretsQuery,
			map[string]any{"q": map[string]any{"filter": []any{map[string]any{"k": "name", "v": "x", "o": "like"}}}}, []string{"like"}},
		{"secrets: filter with unknown key", tk.admin, apiSecretsQuery,
			map[string]any{"q": map[string]any{"filter": []any{map[string]any{"k": "color", "v": "x"}}}}, []string{"color"}},
		{"secrets: negative page start", tk.admin, apiSecretsQuery,
			map[string]any{"q": map[string]any{"page": map[string]any{"start": -1}}}, []string{"page"}},
		{"secretStat: filter with unknown operator", tk.admin, apiSecretStatQuery,
			stat(map[string]any{"filter": []any{map[string]any{"k": "name", "v": "x", "o": "like"}}}), []string{"like"}},
		{"secretStat: unknown key", tk.admin, apiSecretStatQuery,
			stat(map[string]any{"filter": []any{map[string]any{"k": "color", "v": "x"}}}), []string{"color"}},
		{"userSecrets: sort by unknown key", tk.bob, apiUserSecretsQuery,
			map[string]any{"q": map[string]any{"sort": []any{map[string]any{"key": "resourceGroup"}}}}, []string{"resourceGroup"}},
		{"userSecrets: filter with unknown operator", tk.bob, apiUserSecretsQuery,
			map[string]any{"q": map[string]any{"filter": []any{map[string]any{"k": "name", "v": "x", "o": "like"}}}}, []string{"like"}},
		{"userSecretStat: unknown key", tk.bob, apiUserSecretStatQuery,
			stat(map[string]any{"filter": []any{map[string]any{"k": "workspaceId", "v": "x"}}}), []string{"workspaceId"}},
		{"secretStat: query not an object", tk.admin, apiSecretStatQuery, map[string]any{"q": "count"}, nil},
		{"secretStat: unsupported stage", tk.admin, apiSecretStatQuery,
			map[string]any{"q": map[string]any{"aggregate": []any{map[string]any{"explode": map[string]any{}}}}}, []string{"explode"}},

		// user secrets
		{"createUserSecret: empty name", tk.bob, apiCreateUserSecretMutation, map[string]any{"in": map[string]any{"name": "", "data": map[string]any{"k": "v"}}}, []string{"name"}},
		{"createUserSecret: name of 256 chars", tk.bob, apiCreateUserSecretMutation,
			map[string]any{"in": map[string]any{"name": strings.Repeat("n", 256), "data": map[string]any{"k": "v"}}}, []string{"name"}},
		{"createUserSecret: empty data", tk.bob, apiCreateUserSecretMutation, map[string]any{"in": map[string]any{"name": "n", "data": map[string]any{}}}, []string{"data"}},
		{"createUserSecret: data over 64 KiB", tk.bob, apiCreateUserSecretMutation, map[string]any{"in": map[string]any{"name": "n", "data": bigData}}, []string{"data"}},
		{"createUserSecret: unknown schemaId", tk.bob, apiCreateUserSecretMutation,
			map[string]any{"in": map[string]any{"name": "n", "schemaId": "nope", "data": map[string]any{"k": "v"}}}, []string{"schemaId"}},
		{"createUserSecret: schemaId of 41 chars", tk.bob, apiCreateUserSecretMutation,
			map[string]any{"in": map[string]any{"name": "n", "schemaId": strings.Repeat("s", 41), "data": map[string]any{"k": "v"}}}, []string{"schemaId"}},
		{"createUserSecret: data missing a required field", tk.bob, apiCreateUserSecretMutation,
			map[string]any{"in": map[string]any{"name": "n", "schemaId": "aws_access_key", "data": missingSecretKey}}, []string{"aws_secret_access_key"}},
		{"updateUserSecret: name of 256 chars", tk.bob, apiUpdateUserSecretMutation,
			map[string]any{"in": map[string]any{"userSecretId": userSecret, "name": strings.Repeat("n", 256)}}, []string{"name"}},
		{"updateUserSecretData: empty data", tk.bob, apiUpdateUserSecretDataMutation,
			map[string]any{"in": map[string]any{"userSecretId": userSecret, "data": map[string]any{}}}, []string{"data"}},
		{"updateUserSecretData: current schema still applies", tk.bob, apiUpdateUserSecretDataMutation,
			map[string]any{"in": map[string]any{"userSecretId": userSecret, "data": missingSecretKey}}, []string{"aws_secret_access_key"}},

		// GraphQL itself
		{"syntax error", tk.admin, `query { secrets( { totalCount } }`, nil, nil},
		{"unknown field", tk.admin, `query { secrets { totalCount colour } }`, nil, []string{"colour"}},
		{"wrong argument type (literal)", tk.admin, `query { secrets(query: {page: {limit: "ten"}}) { totalCount } }`, nil, nil},
		{"wrong argument type (variable)", tk.admin, apiSecretsQuery, map[string]any{"q": map[string]any{"page": map[string]any{"limit": "ten"}}}, nil},
		{"wrong variable type for an input", tk.admin, apiCreateSecretMutation, map[string]any{"in": "not an object"}, nil},
		{"missing required argument", tk.admin, `query { secret { name } }`, nil, []string{"secretId"}},
	}
	// GraphQL-level coercion errors name the offending variable or argument in their path.
	wantPath := map[string][]any{
		"unknown resourceGroup":            {"variable", "in", "resourceGroup"},
		"missing required input field":     {"variable", "in", "data"},
		"tags not an object":               {"createSecret", "input", "tags"},
		"data not an object":               {"createSecret", "input", "data"},
		"data not an object (literal)":     {"createSecret", "input", "data"},
		"secretStat: query not an object":  {"secretStat", "query"},
		"wrong argument type (variable)":   {"variable", "q", "page", "limit"},
		"wrong variable type for an input": {"variable", "in"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := apiDo(t, s, tc.token, tc.query, tc.vars)
			apiRequireError(t, r, "INVALID_ARGUMENT", tc.want...)
			if path, ok := wantPath[tc.name]; ok {
				require.Equal(t, path, r.Errors[0].Path, "the path names the offending field")
			}
			for _, e := range r.Errors {
				require.NotContains(t, e.Message, "s3cr3t-value", "an error never echoes a secret value")
				require.NotContains(t, e.Message, "xxxxxxxx", "an error never echoes a secret value")
			}
		})
	}

	// Nothing was written by the rejected requests.
	list, total := apiListSecrets(t, s, tk.admin, nil)
	require.Equal(t, 1, total)
	require.Equal(t, []apiSecret{awsSecret}, list)
	require.Equal(t, apiJSON(t, apiAWSData("keep")), apiSecretDataOf(t, s, tk.system, domainSecret).Data)
	ulist, _ := apiListUserSecrets(t, s, tk.bob, nil)
	require.Equal(t, []apiUserSecret{us}, ulist)
}

func TestAPINotFound(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)
	sec := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "a", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}})
	us := apiCreateUserSecret(t, s, tk.bob, map[string]any{"name": "a", "data": map[string]any{"k": "v"}})
	const unknownSecret, unknownUserSecret = "secret-0123456789ab", "user-secret-0123456789ab"

	type target struct {
		name         string
		secretToken  string // caller for secret operations
		userToken    string // caller for user secret operations
		dataToken    string // SYSTEM caller for the value reads
		secretID     string
		userSecretID string
	}
	targets := []target{
		{"unknown id", tk.admin, tk.bob, tk.system, unknownSecret, unknownUserSecret},
		{"other domain's id", tk.adminB, tk.bobB, tk.systemB, sec.SecretID, us.UserSecretID},
	}
	for _, tg := range targets {
		for _, op := range apiAllOperations(tg.secretID, tg.userSecretID) {
			var token string
			switch op.name {
			case "secrets", "secretStat", "userSecrets", "userSecretStat", "createSecret", "createUserSecret":
				continue // not addressed by id
			case "secretData", "userSecretData":
				token = tg.dataToken
			case "userSecret", "updateUserSecret", "updateUserSecretData", "deleteUserSecret":
				token = tg.userToken
			default:
				token = tg.secretToken
			}
			t.Run(tg.name+"/"+op.name, func(t *testing.T) {
				r := apiDo(t, s, token, op.query, op.vars)
				apiRequireError(t, r, "NOT_FOUND")
				require.NotContains(t, r.Errors[0].Message, "permission")
			})
		}
	}
	// The other domain's callers did not change anything, and see nothing in lists.
	require.Equal(t, sec, apiGetSecret(t, s, tk.admin, sec.SecretID))
	require.Equal(t, us, apiGetUserSecret(t, s, tk.bob, us.UserSecretID))
	list, total := apiListSecrets(t, s, tk.adminB, map[string]any{"secretId": sec.SecretID})
	require.Zero(t, total)
	require.Empty(t, list)
	ulist, utotal := apiListUserSecrets(t, s, tk.bobB, map[string]any{"userSecretId": us.UserSecretID})
	require.Zero(t, utotal)
	require.Empty(t, ulist)
}

func TestAPIPermissionDenied(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)
	sec := apiCreateSecret(t, s, tk.admin, map[string]any{"name": "a", "resourceGroup": "WORKSPACE", "workspaceId": "ws-1",
		"data": map[string]any{"k": "v"}})
	us := apiCreateUserSecret(t, s, tk.bob, map[string]any{"name": "a", "data": map[string]any{"k": "v"}})

	newSecret := func(group string, extra map[string]any) map[string]any {
		in := map[string]any{"name": "n", "resourceGroup": group, "data": map[string]any{"k": "v"}}
		for k, v := range extra {
			in[k] = v
		}
		return map[string]any{"in": in}
	}
	cases := []struct {
		name  string
		token string
		query string
		vars  map[string]any
	}{
		{"secretData by DOMAIN_ADMIN", tk.admin, apiSecretDataQuery, map[string]any{"id": sec.SecretID}},
		{"secretData by WORKSPACE_OWNER", tk.owner, apiSecretDataQuery, map[string]any{"id": sec.SecretID}},
		{"userSecretData by its owner", tk.bob, apiUserSecretDataQuery, map[string]any{"id": us.UserSecretID}},
		{"userSecretData by DOMAIN_ADMIN", tk.admin, apiUserSecretDataQuery, map[string]any{"id": us.UserSecretID}},
		{"WORKSPACE_MEMBER creates a WORKSPACE secret", tk.member, apiCreateSecretMutation, newSecret("WORKSPACE", nil)},
		{"WORKSPACE_MEMBER creates a DOMAIN secret", tk.member, apiCreateSecretMutation, newSecret("DOMAIN", nil)},
		{"WORKSPACE_MEMBER creates in another project", tk.member, apiCreateSecretMutation, newSecret("PROJECT", map[string]any{"projectId": "proj-9"})},
		{"WORKSPACE_OWNER creates a DOMAIN secret", tk.owner, apiCreateSecretMutation, newSecret("DOMAIN", nil)},
		{"WORKSPACE_MEMBER updates a WORKSPACE secret", tk.member, apiUpdateSecretMutation, map[string]any{"in": map[string]any{"secretId": sec.SecretID, "name": "x"}}},
		{"WORKSPACE_MEMBER deletes a WORKSPACE secret", tk.member, apiDeleteSecretMutation, map[string]any{"id": sec.SecretID}},
		{"SYSTEM updates secret data", tk.system, apiUpdateSecretDataMutation, map[string]any{"in": map[string]any{"secretId": sec.SecretID, "data": map[string]any{"k": "w"}}}},
		{"DOMAIN_ADMIN updates a user's user secret", tk.admin, apiUpdateUserSecretMutation, map[string]any{"in": map[string]any{"userSecretId": us.UserSecretID, "name": "x"}}},
		{"DOMAIN_ADMIN deletes a user's user secret", tk.admin, apiDeleteUserSecretMutation, map[string]any{"id": us.UserSecretID}},
		{"SYSTEM creates a user secret", tk.system, apiCreateUserSecretMutation, map[string]any{"in": map[string]any{"name": "n", "data": map[string]any{"k": "v"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			apiRequireError(t, apiDo(t, s, tc.token, tc.query, tc.vars), "PERMISSION_DENIED")
		})
	}
	// Nothing changed.
	require.Equal(t, sec, apiGetSecret(t, s, tk.admin, sec.SecretID))
	require.Equal(t, us, apiGetUserSecret(t, s, tk.bob, us.UserSecretID))
	_, total := apiListSecrets(t, s, tk.admin, nil)
	require.Equal(t, 1, total)
	_, total = apiListUserSecrets(t, s, tk.admin, nil)
	require.Equal(t, 1, total)
}
