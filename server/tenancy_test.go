package server_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// The tenancy matrix drives every caller × operation × target through the
// whole stack (HTTP → GraphQL → commands → PostgreSQL) and checks the answer
// against the auth package's rules; a set of key cells with hard-coded
// expectations guards against the rules themselves being wrong.

const (
	// tenancyValuePrefix starts every secret value the matrix stores: it
	// may appear only in the answer of an allowed secretData/userSecretData.
	tenancyValuePrefix       = "tenancy-value-"
	tenancyMissingSecret     = "secret-000000000000"
	tenancyMissingUserSecret = "user-secret-000000000000"
	tenancySecretFields      = `secretId name tags resourceGroup domainId workspaceId projectId version updatedAt`
	tenancyUserSecretFields  = `userSecretId name tags domainId userId version updatedAt`
	// tenancyWorkers bounds how many cells run at once (independent of -parallel).
	tenancyWorkers = 8

	tenancyNotFound = "NOT_FOUND"
	tenancyDenied   = "PERMISSION_DENIED"
	tenancyInvalid  = "INVALID_ARGUMENT"
)

const (
	tenancySecretQuery         = `query($id: ID!) { secret(secretId: $id) { ` + tenancySecretFields + ` } }`
	tenancySecretDataQuery     = `query($id: ID!) { secretData(secretId: $id) { encrypted encryptOptions data } }`
	tenancyUserSecretQuery     = `query($id: ID!) { userSecret(userSecretId: $id) { ` + tenancyUserSecretFields + ` } }`
	tenancyUserSecretDataQuery = `query($id: ID!) { userSecretData(userSecretId: $id) { encrypted encryptOptions data } }`
	tenancySecretsQuery        = `query($q: QueryInput, $name: String, $ws: String, $p: String) {
  secrets(query: $q, name: $name, workspaceId: $ws, projectId: $p) { results { ` + tenancySecretFields + ` } totalCount } }`
	tenancyUserSecretsQuery = `query($q: QueryInput, $name: String) {
  userSecrets(query: $q, name: $name) { results { ` + tenancyUserSecretFields + ` } totalCount } }`
	tenancyUpdateSecret = `mutation($in: UpdateSecretInput!) { updateSecret(input: $in) { ` +
		tenancySecretFields + ` } }`
	tenancyUpdateSecretData = `mutation($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { ` +
		tenancySecretFields + ` } }`
	tenancyDeleteSecret     = `mutation($id: ID!) { deleteSecret(secretId: $id, force: true) }`
	tenancyUpdateUserSecret = `mutation($in: UpdateUserSecretInput!) { updateUserSecret(input: $in) { ` +
		tenancyUserSecretFields + ` } }`
	tenancyUpdateUserSecretData = `mutation($in: UpdateUserSecretDataInput!) { updateUserSecretData(input: $in) { ` +
		tenancyUserSecretFields + ` } }`
	tenancyDeleteUserSecret = `mutation($id: ID!) { deleteUserSecret(userSecretId: $id, force: true) }`
	tenancyCreateSecret     = `mutation($in: CreateSecretInput!) { createSecret(input: $in) { ` +
		tenancySecretFields + ` } }`
	tenancyCreateUserSecret = `mutation($in: CreateUserSecretInput!) { createUserSecret(input: $in) { ` +
		tenancyUserSecretFields + ` } }`
)

type tenancyCaller struct {
	name  string
	id    auth.Identity
	token string
}

type tenancySecret struct {
	label string
	scope auth.Scope
	id    string
	// mu serialises the write cells on this secret so that each one can
	// compare the secret before and after its attempt.
	mu    sync.Mutex
	value string // current value; guarded by mu during the write phase
}

type tenancyUserSecret struct {
	label    string
	domainID string
	ownerID  string
	id       string
	mu       sync.Mutex
	value    string
}

type tenancySecretView struct {
	SecretID      string         `json:"secretId"`
	Name          string         `json:"name"`
	Tags          map[string]any `json:"tags"`
	ResourceGroup string         `json:"resourceGroup"`
	DomainID      string         `json:"domainId"`
	WorkspaceID   *string        `json:"workspaceId"`
	ProjectID     *string        `json:"projectId"`
	Version       int            `json:"version"`
	UpdatedAt     string         `json:"updatedAt"`
}

func (v tenancySecretView) scope() auth.Scope {
	deref := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	return auth.Scope{Group: auth.ResourceGroup(v.ResourceGroup), DomainID: v.DomainID,
		WorkspaceID: deref(v.WorkspaceID), ProjectID: deref(v.ProjectID)}
}

type tenancyUserSecretView struct {
	UserSecretID string         `json:"userSecretId"`
	Name         string         `json:"name"`
	Tags         map[string]any `json:"tags"`
	DomainID     string         `json:"domainId"`
	UserID       string         `json:"userId"`
	Version      int            `json:"version"`
	UpdatedAt    string         `json:"updatedAt"`
}

type tenancyDataView struct {
	Encrypted      bool           `json:"encrypted"`
	EncryptOptions map[string]any `json:"encryptOptions"`
	Data           map[string]any `json:"data"`
}

type tenancyFixture struct {
	s                 *stack
	callers           []*tenancyCaller
	callerByName      map[string]*tenancyCaller
	secrets           []*tenancySecret
	secretByLabel     map[string]*tenancySecret
	secretByID        map[string]*tenancySecret
	userSecrets       []*tenancyUserSecret
	userSecretByLabel map[string]*tenancyUserSecret
	userSecretByID    map[string]*tenancyUserSecret
	admin             map[string]string // domain → DOMAIN_ADMIN token
	system            map[string]string // domain → SYSTEM token
	userToken         map[string]string // "domain/user" → that user's token
	seq               atomic.Int64
	cells             atomic.Int64

	queueMu sync.Mutex
	queue   []tenancyQueued
}

type tenancyQueued struct {
	name string
	fn   func(t *testing.T)
}

func tenancyCallerName(id auth.Identity) string {
	switch id.Role {
	case auth.RoleWorkspaceOwner:
		return fmt.Sprintf("%s(%s/%s)", id.Role, id.DomainID, id.WorkspaceID)
	case auth.RoleWorkspaceMember:
		return fmt.Sprintf("%s(%s/%s,[%s])", id.Role, id.DomainID, id.WorkspaceID, strings.Join(id.Projects, ","))
	case auth.RoleUser:
		return fmt.Sprintf("%s(%s/%s)", id.Role, id.DomainID, id.UserID)
	}
	return fmt.Sprintf("%s(%s)", id.Role, id.DomainID)
}

func tenancySecretLabel(s auth.Scope) string {
	switch s.Group {
	case auth.GroupDomain:
		return "DOMAIN " + s.DomainID
	case auth.GroupWorkspace:
		return "WORKSPACE " + s.DomainID + "/" + s.WorkspaceID
	}
	return "PROJECT " + s.DomainID + "/" + s.WorkspaceID + "/" + s.ProjectID
}

// tenancyScopeInput is the part of a CreateSecretInput that places a secret in s.
func tenancyScopeInput(s auth.Scope) map[string]any {
	in := map[string]any{"resourceGroup": string(s.Group)}
	if s.WorkspaceID != "" {
		in["workspaceId"] = s.WorkspaceID
	}
	if s.ProjectID != "" {
		in["projectId"] = s.ProjectID
	}
	return in
}

// tenancyOutcome is the error code a caller gets: NOT_FOUND when it cannot
// see the target, PERMISSION_DENIED when it sees it but may not do the
// operation, "" (success) otherwise.
func tenancyOutcome(visible, allowed bool) string {
	switch {
	case !visible:
		return tenancyNotFound
	case !allowed:
		return tenancyDenied
	}
	return ""
}

func newTenancyFixture(t *testing.T) *tenancyFixture {
	t.Helper()
	s := newStack(t)
	t.Cleanup(func() {
		if t.Failed() {
			// Internal causes are only in the server's log: show them.
			for _, line := range strings.Split(s.Logs.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) {
					t.Log(line)
				}
			}
		}
	})
	f := &tenancyFixture{s: s, callerByName: map[string]*tenancyCaller{},
		secretByLabel: map[string]*tenancySecret{}, secretByID: map[string]*tenancySecret{},
		userSecretByLabel: map[string]*tenancyUserSecret{}, userSecretByID: map[string]*tenancyUserSecret{},
		admin: map[string]string{}, system: map[string]string{}, userToken: map[string]string{}}
	ids := []auth.Identity{
		{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "admin1"},
		{Role: auth.RoleDomainAdmin, DomainID: "d2", UserID: "admin2"},
		{Role: auth.RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: "w1", UserID: "owner1"},
		{Role: auth.RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: "w2"},
		{Role: auth.RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", Projects: []string{"p1"}, UserID: "member1"},
		{Role: auth.RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", UserID: "member2"},
		// Claims p1, which lives in w1: it must see nothing of it from w2.
		{Role: auth.RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w2", Projects: []string{"p1"}},
		{Role: auth.RoleUser, DomainID: "d1", UserID: "u1"},
		{Role: auth.RoleUser, DomainID: "d1", UserID: "u2"},
		{Role: auth.RoleUser, DomainID: "d2", UserID: "u3"},
		// The same user id as d1's u1, in the other domain.
		{Role: auth.RoleUser, DomainID: "d2", UserID: "u1"},
		{Role: auth.RoleSystem, DomainID: "d1"},
		{Role: auth.RoleSystem, DomainID: "d2"},
	}
	for _, id := range ids {
		c := &tenancyCaller{name: tenancyCallerName(id), id: id, token: s.token(id)}
		require.NotContains(t, f.callerByName, c.name)
		f.callers = append(f.callers, c)
		f.callerByName[c.name] = c
		switch id.Role {
		case auth.RoleDomainAdmin:
			f.admin[id.DomainID] = c.token
		case auth.RoleSystem:
			f.system[id.DomainID] = c.token
		}
		if id.UserID != "" {
			f.userToken[id.DomainID+"/"+id.UserID] = c.token
		}
	}

	// The same workspace and project ids in both domains: only the domain
	// tells the d1 and d2 secrets apart.
	for _, d := range []string{"d1", "d2"} {
		for _, sc := range []auth.Scope{
			{Group: auth.GroupDomain, DomainID: d},
			{Group: auth.GroupWorkspace, DomainID: d, WorkspaceID: "w1"},
			{Group: auth.GroupWorkspace, DomainID: d, WorkspaceID: "w2"},
			{Group: auth.GroupProject, DomainID: d, WorkspaceID: "w1", ProjectID: "p1"},
			{Group: auth.GroupProject, DomainID: d, WorkspaceID: "w1", ProjectID: "p2"},
			{Group: auth.GroupProject, DomainID: d, WorkspaceID: "w2", ProjectID: "p3"},
		} {
			sec := &tenancySecret{label: tenancySecretLabel(sc), scope: sc, value: f.newValue("fixture")}
			in := tenancyScopeInput(sc)
			in["name"] = "tenancy " + sec.label
			in["data"] = map[string]any{"value": sec.value}
			in["tags"] = map[string]any{"fixture": sec.label}
			sec.id = s.createSecret(f.admin[d], in)
			f.secrets = append(f.secrets, sec)
			f.secretByLabel[sec.label] = sec
			f.secretByID[sec.id] = sec
		}
	}
	for _, owner := range []string{"d1/u1", "d1/u2", "d2/u3", "d1/admin1"} {
		domain, user, _ := strings.Cut(owner, "/")
		us := &tenancyUserSecret{label: "USER_SECRET " + owner, domainID: domain, ownerID: user, value: f.newValue("fixture")}
		us.id = s.createUserSecret(f.userToken[owner], map[string]any{"name": "tenancy " + us.label,
			"data": map[string]any{"value": us.value}, "tags": map[string]any{"fixture": us.label}})
		f.userSecrets = append(f.userSecrets, us)
		f.userSecretByLabel[us.label] = us
		f.userSecretByID[us.id] = us
	}
	return f
}

func (f *tenancyFixture) newValue(kind string) string {
	return fmt.Sprintf("%s%s-%d", tenancyValuePrefix, kind, f.seq.Add(1))
}

// cell queues one subtest of the matrix; run executes the queue.
func (f *tenancyFixture) cell(name string, fn func(t *testing.T)) {
	f.queueMu.Lock()
	defer f.queueMu.Unlock()
	f.queue = append(f.queue, tenancyQueued{name: name, fn: fn})
}

// run runs the queued cells as subtests of t, tenancyWorkers at a time
// (t.Run may be called from several goroutines at once).
func (f *tenancyFixture) run(t *testing.T) {
	f.queueMu.Lock()
	queue := f.queue
	f.queue = nil
	f.queueMu.Unlock()
	work := make(chan tenancyQueued)
	var wg sync.WaitGroup
	for range tenancyWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := range work {
				f.cells.Add(1)
				t.Run(q.name, q.fn)
			}
		}()
	}
	for _, q := range queue {
		work <- q
	}
	close(work)
	wg.Wait()
}

// do sends one request and checks that no stored secret value appears in
// the answer, except allowedValue (the value an allowed read returns).
func (f *tenancyFixture) do(t *testing.T, token, query string, vars map[string]any, allowedValue string) gqlResponse {
	t.Helper()
	r := doGraphQL(t, f.s.HTTP.URL, token, query, vars)
	errs, err := json.Marshal(r.Errors)
	require.NoError(t, err)
	body := string(r.Data) + string(errs)
	if allowedValue != "" {
		body = strings.ReplaceAll(body, allowedValue, "")
	}
	require.NotContains(t, body, tenancyValuePrefix, "a secret value leaked into the answer")
	return r
}

// tenancyExpect checks the answer's outcome: want "" is success, otherwise
// the error code; a failed answer carries no data at all.
func tenancyExpect(t *testing.T, r gqlResponse, want string) {
	t.Helper()
	if want == "" {
		require.Empty(t, r.Errors, "want success")
		require.False(t, tenancyNoData(r.Data), "success without data")
		return
	}
	require.NotEmpty(t, r.Errors, "want %s, got success: %s", want, r.Data)
	require.Equal(t, want, r.Code(), "errors: %+v", r.Errors)
	require.True(t, tenancyNoData(r.Data), "a failed answer carries data: %s", r.Data)
}

func tenancyNoData(raw json.RawMessage) bool {
	if len(raw) == 0 || string(raw) == "null" {
		return true
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	for _, v := range m {
		if string(v) != "null" {
			return false
		}
	}
	return true
}

// tenancySameAsMissing checks that a NOT_FOUND answer about an existing
// resource of another tenant reads exactly like the answer about a resource
// that never existed: no hint that it exists.
func tenancySameAsMissing(t *testing.T, got gqlResponse, id string, missing gqlResponse, missingID string) {
	t.Helper()
	require.Equal(t, tenancyNotFound, missing.Code(), "errors: %+v", missing.Errors)
	norm := func(r gqlResponse, id string) string { return strings.ReplaceAll(r.Errors[0].Message, id, "<id>") }
	require.Equal(t, norm(missing, missingID), norm(got, id), "NOT_FOUND differs from a missing resource's")
	require.Len(t, got.Errors, len(missing.Errors))
}

// --- secrets ---------------------------------------------------------------

func (f *tenancyFixture) getSecret(t *testing.T, token, id string) tenancySecretView {
	t.Helper()
	r := f.do(t, token, tenancySecretQuery, map[string]any{"id": id}, "")
	tenancyExpect(t, r, "")
	var out struct{ Secret tenancySecretView }
	r.Decode(t, &out)
	return out.Secret
}

// requireSecretValue checks, as SYSTEM of the domain, the current value.
func (f *tenancyFixture) requireSecretValue(t *testing.T, domain, id, value string) {
	t.Helper()
	r := f.do(t, f.system[domain], tenancySecretDataQuery, map[string]any{"id": id}, value)
	tenancyExpect(t, r, "")
	var out struct{ SecretData tenancyDataView }
	r.Decode(t, &out)
	require.Equal(t, map[string]any{"value": value}, out.SecretData.Data)
}

func (f *tenancyFixture) checkSecret(t *testing.T, c *tenancyCaller, sec *tenancySecret, want string) {
	r := f.do(t, c.token, tenancySecretQuery, map[string]any{"id": sec.id}, "")
	tenancyExpect(t, r, want)
	switch want {
	case tenancyNotFound:
		tenancySameAsMissing(t, r, sec.id,
			f.do(t, c.token, tenancySecretQuery, map[string]any{"id": tenancyMissingSecret}, ""), tenancyMissingSecret)
	case "":
		var out struct{ Secret tenancySecretView }
		r.Decode(t, &out)
		require.Equal(t, sec.id, out.Secret.SecretID)
		require.Equal(t, sec.scope, out.Secret.scope())
		require.Equal(t, "tenancy "+sec.label, out.Secret.Name)
		require.Equal(t, map[string]any{"fixture": sec.label}, out.Secret.Tags)
	}
}

func (f *tenancyFixture) checkSecretData(t *testing.T, c *tenancyCaller, sec *tenancySecret, want string) {
	allowed := ""
	if want == "" {
		allowed = sec.value
	}
	r := f.do(t, c.token, tenancySecretDataQuery, map[string]any{"id": sec.id}, allowed)
	tenancyExpect(t, r, want)
	switch want {
	case tenancyNotFound:
		tenancySameAsMissing(t, r, sec.id,
			f.do(t, c.token, tenancySecretDataQuery, map[string]any{"id": tenancyMissingSecret}, ""), tenancyMissingSecret)
	case "":
		var out struct{ SecretData tenancyDataView }
		r.Decode(t, &out)
		require.Equal(t, map[string]any{"value": sec.value}, out.SecretData.Data)
	}
}

func (f *tenancyFixture) checkUpdateSecret(t *testing.T, c *tenancyCaller, sec *tenancySecret, want string) {
	sec.mu.Lock()
	defer sec.mu.Unlock()
	admin := f.admin[sec.scope.DomainID]
	before := f.getSecret(t, admin, sec.id)
	n := f.seq.Add(1)
	name := fmt.Sprintf("tenancy %s #%d", sec.label, n)
	tags := map[string]any{"fixture": sec.label, "update": fmt.Sprintf("u%d", n)}
	in := map[string]any{"secretId": sec.id, "name": name, "tags": tags}
	r := f.do(t, c.token, tenancyUpdateSecret, map[string]any{"in": in}, "")
	tenancyExpect(t, r, want)
	after := f.getSecret(t, admin, sec.id)
	if want != "" {
		require.Equal(t, before, after, "a rejected updateSecret changed the secret")
		if want == tenancyNotFound {
			in["secretId"] = tenancyMissingSecret
			tenancySameAsMissing(t, r, sec.id,
				f.do(t, c.token, tenancyUpdateSecret, map[string]any{"in": in}, ""), tenancyMissingSecret)
		}
		return
	}
	var out struct{ UpdateSecret tenancySecretView }
	r.Decode(t, &out)
	for _, v := range []tenancySecretView{out.UpdateSecret, after} {
		require.Equal(t, sec.id, v.SecretID)
		require.Equal(t, name, v.Name)
		require.Equal(t, tags, v.Tags)
		require.Equal(t, before.Version, v.Version, "updateSecret must not bump the data version")
		require.Equal(t, sec.scope, v.scope())
	}
}

func (f *tenancyFixture) checkUpdateSecretData(t *testing.T, c *tenancyCaller, sec *tenancySecret, want string) {
	sec.mu.Lock()
	defer sec.mu.Unlock()
	domain := sec.scope.DomainID
	before := f.getSecret(t, f.admin[domain], sec.id)
	value := f.newValue("update")
	in := map[string]any{"secretId": sec.id, "data": map[string]any{"value": value}}
	r := f.do(t, c.token, tenancyUpdateSecretData, map[string]any{"in": in}, "")
	tenancyExpect(t, r, want)
	after := f.getSecret(t, f.admin[domain], sec.id)
	if want != "" {
		require.Equal(t, before, after, "a rejected updateSecretData changed the secret")
		f.requireSecretValue(t, domain, sec.id, sec.value)
		if want == tenancyNotFound {
			in["secretId"] = tenancyMissingSecret
			tenancySameAsMissing(t, r, sec.id,
				f.do(t, c.token, tenancyUpdateSecretData, map[string]any{"in": in}, ""), tenancyMissingSecret)
		}
		return
	}
	var out struct{ UpdateSecretData tenancySecretView }
	r.Decode(t, &out)
	require.Equal(t, before.Version+1, out.UpdateSecretData.Version)
	require.Equal(t, before.Version+1, after.Version)
	require.Equal(t, before.Name, after.Name)
	require.Equal(t, before.Tags, after.Tags)
	require.Equal(t, sec.scope, after.scope())
	f.requireSecretValue(t, domain, sec.id, value)
	sec.value = value
}

// freshSecret creates, as the domain's admin, a new secret in sec's scope.
func (f *tenancyFixture) freshSecret(t *testing.T, sec *tenancySecret) (tenancySecretView, string) {
	t.Helper()
	value := f.newValue("fresh")
	in := tenancyScopeInput(sec.scope)
	in["name"] = fmt.Sprintf("tenancy fresh %s #%d", sec.label, f.seq.Add(1))
	in["data"] = map[string]any{"value": value}
	r := f.do(t, f.admin[sec.scope.DomainID], tenancyCreateSecret, map[string]any{"in": in}, "")
	tenancyExpect(t, r, "")
	var out struct{ CreateSecret tenancySecretView }
	r.Decode(t, &out)
	require.Equal(t, sec.scope, out.CreateSecret.scope())
	return out.CreateSecret, value
}

func (f *tenancyFixture) checkDeleteSecret(t *testing.T, c *tenancyCaller, sec *tenancySecret, want string) {
	domain := sec.scope.DomainID
	fresh, value := f.freshSecret(t, sec)
	r := f.do(t, c.token, tenancyDeleteSecret, map[string]any{"id": fresh.SecretID}, "")
	tenancyExpect(t, r, want)
	gone := f.do(t, f.admin[domain], tenancySecretQuery, map[string]any{"id": fresh.SecretID}, "")
	if want != "" {
		tenancyExpect(t, gone, "")
		var out struct{ Secret tenancySecretView }
		gone.Decode(t, &out)
		require.Equal(t, fresh, out.Secret, "a rejected deleteSecret changed the secret")
		// The data key survived: a rejected delete shreds nothing.
		f.requireSecretValue(t, domain, fresh.SecretID, value)
		if want == tenancyNotFound {
			tenancySameAsMissing(t, r, fresh.SecretID,
				f.do(t, c.token, tenancyDeleteSecret, map[string]any{"id": tenancyMissingSecret}, ""), tenancyMissingSecret)
		}
		return
	}
	var out struct{ DeleteSecret bool }
	r.Decode(t, &out)
	require.True(t, out.DeleteSecret)
	tenancyExpect(t, gone, tenancyNotFound)
	tenancyExpect(t, f.do(t, f.system[domain], tenancySecretDataQuery, map[string]any{"id": fresh.SecretID}, ""), tenancyNotFound)
	tenancyExpect(t, f.do(t, c.token, tenancyDeleteSecret, map[string]any{"id": fresh.SecretID}, ""), tenancyNotFound)
}

// checkSecretList lists with vars and checks the result is exactly want,
// each result as stored, and totalCount its size.
func (f *tenancyFixture) checkSecretList(t *testing.T, c *tenancyCaller, vars map[string]any, want []*tenancySecret) {
	r := f.do(t, c.token, tenancySecretsQuery, vars, "")
	tenancyExpect(t, r, "")
	var out struct {
		Secrets struct {
			Results    []tenancySecretView
			TotalCount int
		}
	}
	r.Decode(t, &out)
	got := []string{}
	for _, v := range out.Secrets.Results {
		sec := f.secretByID[v.SecretID]
		require.NotNil(t, sec, "listed secret %s is not one of the fixtures", v.SecretID)
		require.Equal(t, sec.scope, v.scope(), "listed secret %s", sec.label)
		require.Equal(t, "tenancy "+sec.label, v.Name)
		got = append(got, sec.label)
	}
	wantLabels := []string{}
	for _, sec := range want {
		wantLabels = append(wantLabels, sec.label)
	}
	slices.Sort(got)
	slices.Sort(wantLabels)
	require.Equal(t, wantLabels, got, "listed secrets")
	require.Equal(t, len(want), out.Secrets.TotalCount, "totalCount")
}

func (f *tenancyFixture) checkStat(t *testing.T, c *tenancyCaller, field string, stat map[string]any, want int) {
	r := f.do(t, c.token, fmt.Sprintf(`query($q: Map!) { %s(query: $q) }`, field), map[string]any{"q": stat}, "")
	tenancyExpect(t, r, "")
	var out map[string]struct {
		Results []map[string]any `json:"results"`
	}
	r.Decode(t, &out)
	res := out[field].Results
	require.Len(t, res, 1, "%s results", field)
	require.Equal(t, float64(want), res[0]["n"], "%s count", field)
}

// --- user secrets ----------------------------------------------------------

func (f *tenancyFixture) getUserSecret(t *testing.T, token, id string) tenancyUserSecretView {
	t.Helper()
	r := f.do(t, token, tenancyUserSecretQuery, map[string]any{"id": id}, "")
	tenancyExpect(t, r, "")
	var out struct{ UserSecret tenancyUserSecretView }
	r.Decode(t, &out)
	return out.UserSecret
}

func (f *tenancyFixture) requireUserSecretValue(t *testing.T, domain, id, value string) {
	t.Helper()
	r := f.do(t, f.system[domain], tenancyUserSecretDataQuery, map[string]any{"id": id}, value)
	tenancyExpect(t, r, "")
	var out struct{ UserSecretData tenancyDataView }
	r.Decode(t, &out)
	require.Equal(t, map[string]any{"value": value}, out.UserSecretData.Data)
}

func (f *tenancyFixture) checkUserSecret(t *testing.T, c *tenancyCaller, us *tenancyUserSecret, want string) {
	r := f.do(t, c.token, tenancyUserSecretQuery, map[string]any{"id": us.id}, "")
	tenancyExpect(t, r, want)
	switch want {
	case tenancyNotFound:
		tenancySameAsMissing(t, r, us.id,
			f.do(t, c.token, tenancyUserSecretQuery, map[string]any{"id": tenancyMissingUserSecret}, ""), tenancyMissingUserSecret)
	case "":
		var out struct{ UserSecret tenancyUserSecretView }
		r.Decode(t, &out)
		require.Equal(t, us.id, out.UserSecret.UserSecretID)
		require.Equal(t, us.domainID, out.UserSecret.DomainID)
		require.Equal(t, us.ownerID, out.UserSecret.UserID)
		require.Equal(t, "tenancy "+us.label, out.UserSecret.Name)
	}
}

func (f *tenancyFixture) checkUserSecretData(t *testing.T, c *tenancyCaller, us *tenancyUserSecret, want string) {
	allowed := ""
	if want == "" {
		allowed = us.value
	}
	r := f.do(t, c.token, tenancyUserSecretDataQuery, map[string]any{"id": us.id}, allowed)
	tenancyExpect(t, r, want)
	switch want {
	case tenancyNotFound:
		tenancySameAsMissing(t, r, us.id,
			f.do(t, c.token, tenancyUserSecretDataQuery, map[string]any{"id": tenancyMissingUserSecret}, ""), tenancyMissingUserSecret)
	case "":
		var out struct{ UserSecretData tenancyDataView }
		r.Decode(t, &out)
		require.Equal(t, map[string]any{"value": us.value}, out.UserSecretData.Data)
	}
}

func (f *tenancyFixture) checkUpdateUserSecret(t *testing.T, c *tenancyCaller, us *tenancyUserSecret, want string) {
	us.mu.Lock()
	defer us.mu.Unlock()
	admin := f.admin[us.domainID]
	before := f.getUserSecret(t, admin, us.id)
	n := f.seq.Add(1)
	name := fmt.Sprintf("tenancy %s #%d", us.label, n)
	tags := map[string]any{"fixture": us.label, "update": fmt.Sprintf("u%d", n)}
	in := map[string]any{"userSecretId": us.id, "name": name, "tags": tags}
	r := f.do(t, c.token, tenancyUpdateUserSecret, map[string]any{"in": in}, "")
	tenancyExpect(t, r, want)
	after := f.getUserSecret(t, admin, us.id)
	if want != "" {
		require.Equal(t, before, after, "a rejected updateUserSecret changed the user secret")
		if want == tenancyNotFound {
			in["userSecretId"] = tenancyMissingUserSecret
			tenancySameAsMissing(t, r, us.id,
				f.do(t, c.token, tenancyUpdateUserSecret, map[string]any{"in": in}, ""), tenancyMissingUserSecret)
		}
		return
	}
	var out struct{ UpdateUserSecret tenancyUserSecretView }
	r.Decode(t, &out)
	for _, v := range []tenancyUserSecretView{out.UpdateUserSecret, after} {
		require.Equal(t, us.id, v.UserSecretID)
		require.Equal(t, name, v.Name)
		require.Equal(t, tags, v.Tags)
		require.Equal(t, before.Version, v.Version)
		require.Equal(t, us.ownerID, v.UserID)
		require.Equal(t, us.domainID, v.DomainID)
	}
}

func (f *tenancyFixture) checkUpdateUserSecretData(t *testing.T, c *tenancyCaller, us *tenancyUserSecret, want string) {
	us.mu.Lock()
	defer us.mu.Unlock()
	admin := f.admin[us.domainID]
	before := f.getUserSecret(t, admin, us.id)
	value := f.newValue("update")
	in := map[string]any{"userSecretId": us.id, "data": map[string]any{"value": value}}
	r := f.do(t, c.token, tenancyUpdateUserSecretData, map[string]any{"in": in}, "")
	tenancyExpect(t, r, want)
	after := f.getUserSecret(t, admin, us.id)
	if want != "" {
		require.Equal(t, before, after, "a rejected updateUserSecretData changed the user secret")
		f.requireUserSecretValue(t, us.domainID, us.id, us.value)
		if want == tenancyNotFound {
			in["userSecretId"] = tenancyMissingUserSecret
			tenancySameAsMissing(t, r, us.id,
				f.do(t, c.token, tenancyUpdateUserSecretData, map[string]any{"in": in}, ""), tenancyMissingUserSecret)
		}
		return
	}
	var out struct{ UpdateUserSecretData tenancyUserSecretView }
	r.Decode(t, &out)
	require.Equal(t, before.Version+1, out.UpdateUserSecretData.Version)
	require.Equal(t, before.Version+1, after.Version)
	require.Equal(t, before.Name, after.Name)
	require.Equal(t, before.Tags, after.Tags)
	f.requireUserSecretValue(t, us.domainID, us.id, value)
	us.value = value
}

// freshUserSecret creates, as its owner, a new user secret of us's owner.
func (f *tenancyFixture) freshUserSecret(t *testing.T, us *tenancyUserSecret) (tenancyUserSecretView, string) {
	t.Helper()
	value := f.newValue("fresh")
	in := map[string]any{"name": fmt.Sprintf("tenancy fresh %s #%d", us.label, f.seq.Add(1)),
		"data": map[string]any{"value": value}}
	r := f.do(t, f.userToken[us.domainID+"/"+us.ownerID], tenancyCreateUserSecret, map[string]any{"in": in}, "")
	tenancyExpect(t, r, "")
	var out struct{ CreateUserSecret tenancyUserSecretView }
	r.Decode(t, &out)
	require.Equal(t, us.ownerID, out.CreateUserSecret.UserID)
	require.Equal(t, us.domainID, out.CreateUserSecret.DomainID)
	return out.CreateUserSecret, value
}

func (f *tenancyFixture) checkDeleteUserSecret(t *testing.T, c *tenancyCaller, us *tenancyUserSecret, want string) {
	fresh, value := f.freshUserSecret(t, us)
	r := f.do(t, c.token, tenancyDeleteUserSecret, map[string]any{"id": fresh.UserSecretID}, "")
	tenancyExpect(t, r, want)
	gone := f.do(t, f.admin[us.domainID], tenancyUserSecretQuery, map[string]any{"id": fresh.UserSecretID}, "")
	if want != "" {
		tenancyExpect(t, gone, "")
		var out struct{ UserSecret tenancyUserSecretView }
		gone.Decode(t, &out)
		require.Equal(t, fresh, out.UserSecret, "a rejected deleteUserSecret changed the user secret")
		f.requireUserSecretValue(t, us.domainID, fresh.UserSecretID, value)
		if want == tenancyNotFound {
			tenancySameAsMissing(t, r, fresh.UserSecretID,
				f.do(t, c.token, tenancyDeleteUserSecret, map[string]any{"id": tenancyMissingUserSecret}, ""), tenancyMissingUserSecret)
		}
		return
	}
	var out struct{ DeleteUserSecret bool }
	r.Decode(t, &out)
	require.True(t, out.DeleteUserSecret)
	tenancyExpect(t, gone, tenancyNotFound)
	tenancyExpect(t, f.do(t, f.system[us.domainID], tenancyUserSecretDataQuery, map[string]any{"id": fresh.UserSecretID}, ""), tenancyNotFound)
	tenancyExpect(t, f.do(t, c.token, tenancyDeleteUserSecret, map[string]any{"id": fresh.UserSecretID}, ""), tenancyNotFound)
}

func (f *tenancyFixture) checkUserSecretList(t *testing.T, c *tenancyCaller, vars map[string]any, want []*tenancyUserSecret) {
	r := f.do(t, c.token, tenancyUserSecretsQuery, vars, "")
	tenancyExpect(t, r, "")
	var out struct {
		UserSecrets struct {
			Results    []tenancyUserSecretView
			TotalCount int
		}
	}
	r.Decode(t, &out)
	got := []string{}
	for _, v := range out.UserSecrets.Results {
		us := f.userSecretByID[v.UserSecretID]
		require.NotNil(t, us, "listed user secret %s is not one of the fixtures", v.UserSecretID)
		require.Equal(t, us.domainID, v.DomainID)
		require.Equal(t, us.ownerID, v.UserID)
		got = append(got, us.label)
	}
	wantLabels := []string{}
	for _, us := range want {
		wantLabels = append(wantLabels, us.label)
	}
	slices.Sort(got)
	slices.Sort(wantLabels)
	require.Equal(t, wantLabels, got, "listed user secrets")
	require.Equal(t, len(want), out.UserSecrets.TotalCount, "totalCount")
}

// --- operations ------------------------------------------------------------

type tenancySecretOp struct {
	name  string
	write bool
	want  func(id auth.Identity, s auth.Scope) string
	check func(f *tenancyFixture, t *testing.T, c *tenancyCaller, sec *tenancySecret, want string)
}

type tenancyUserSecretOp struct {
	name  string
	write bool
	want  func(id auth.Identity, domainID, ownerID string) string
	check func(f *tenancyFixture, t *testing.T, c *tenancyCaller, us *tenancyUserSecret, want string)
}

func tenancyWriteSecret(id auth.Identity, s auth.Scope) string {
	return tenancyOutcome(id.CanReadSecret(s), id.CanWriteSecret(s))
}

func tenancyWriteUserSecret(id auth.Identity, d, o string) string {
	return tenancyOutcome(id.CanReadUserSecret(d, o), id.CanWriteUserSecret(d, o))
}

var tenancySecretOps = []tenancySecretOp{
	{name: "secret", want: func(id auth.Identity, s auth.Scope) string {
		return tenancyOutcome(id.CanReadSecret(s), true)
	}, check: (*tenancyFixture).checkSecret},
	{name: "secretData", want: func(id auth.Identity, s auth.Scope) string {
		return tenancyOutcome(id.CanReadSecret(s), id.CanReadSecretValue(s))
	}, check: (*tenancyFixture).checkSecretData},
	{name: "updateSecret", write: true, want: tenancyWriteSecret, check: (*tenancyFixture).checkUpdateSecret},
	{name: "updateSecretData", write: true, want: tenancyWriteSecret, check: (*tenancyFixture).checkUpdateSecretData},
	{name: "deleteSecret", write: true, want: tenancyWriteSecret, check: (*tenancyFixture).checkDeleteSecret},
}

var tenancyUserSecretOps = []tenancyUserSecretOp{
	{name: "userSecret", want: func(id auth.Identity, d, o string) string {
		return tenancyOutcome(id.CanReadUserSecret(d, o), true)
	}, check: (*tenancyFixture).checkUserSecret},
	{name: "userSecretData", want: func(id auth.Identity, d, o string) string {
		return tenancyOutcome(id.CanReadUserSecret(d, o), id.CanReadUserSecretValue(d, o))
	}, check: (*tenancyFixture).checkUserSecretData},
	{name: "updateUserSecret", write: true, want: tenancyWriteUserSecret, check: (*tenancyFixture).checkUpdateUserSecret},
	{name: "updateUserSecretData", write: true, want: tenancyWriteUserSecret, check: (*tenancyFixture).checkUpdateUserSecretData},
	{name: "deleteUserSecret", write: true, want: tenancyWriteUserSecret, check: (*tenancyFixture).checkDeleteUserSecret},
}

// tenancyListVariant is a list (or stat) request and the subset of the
// visible fixtures it should return.
type tenancyListVariant struct {
	name string
	vars map[string]any
	keep func(auth.Scope) bool
}

var tenancyDomainsOr = []any{map[string]any{"k": "domainId", "v": "d1"}, map[string]any{"k": "domainId", "v": "d2"}}

var tenancySecretListVariants = []tenancyListVariant{
	{name: "secrets", vars: map[string]any{}, keep: func(auth.Scope) bool { return true }},
	// filterOr is ANDed with the tenancy rule: it cannot widen it.
	{name: "secrets(filterOr domainId d1|d2)", vars: map[string]any{"q": map[string]any{"filterOr": tenancyDomainsOr}},
		keep: func(auth.Scope) bool { return true }},
	{name: "secrets(filter domainId=d2)", vars: map[string]any{"q": map[string]any{"filter": []any{map[string]any{"k": "domainId", "v": "d2"}}}},
		keep: func(s auth.Scope) bool { return s.DomainID == "d2" }},
	{name: "secrets(workspaceId w1)", vars: map[string]any{"ws": "w1"},
		keep: func(s auth.Scope) bool { return s.WorkspaceID == "w1" }},
	{name: "secrets(projectId p1)", vars: map[string]any{"p": "p1"},
		keep: func(s auth.Scope) bool { return s.ProjectID == "p1" }},
}

var tenancySecretStatVariants = []tenancyListVariant{
	{name: "secretStat", vars: map[string]any{}, keep: func(auth.Scope) bool { return true }},
	{name: "secretStat(filter_or domainId d1|d2)", vars: map[string]any{"filter_or": tenancyDomainsOr},
		keep: func(auth.Scope) bool { return true }},
	{name: "secretStat(filter workspaceId=w1)", vars: map[string]any{"filter": []any{map[string]any{"k": "workspaceId", "v": "w1"}}},
		keep: func(s auth.Scope) bool { return s.WorkspaceID == "w1" }},
}

func tenancyStatQuery(extra map[string]any) map[string]any {
	q := maps.Clone(extra)
	q["aggregate"] = []any{map[string]any{"count": map[string]any{"name": "n"}}}
	return q
}

// tenancyCreateRequest is one createSecret request shape; scope says where
// it would put the secret for a caller, ok=false for a malformed request.
type tenancyCreateRequest struct {
	name  string
	in    map[string]any
	scope func(id auth.Identity) (auth.Scope, bool)
}

func tenancyCreateRequests() []tenancyCreateRequest {
	wellFormed := func(group auth.ResourceGroup, ws, p string) tenancyCreateRequest {
		name := string(group)
		if ws != "" {
			name += " " + ws
		}
		if p != "" {
			name += "/" + p
		}
		return tenancyCreateRequest{name: name,
			in: tenancyScopeInput(auth.Scope{Group: group, WorkspaceID: ws, ProjectID: p}),
			scope: func(id auth.Identity) (auth.Scope, bool) {
				return auth.Scope{Group: group, DomainID: id.DomainID, WorkspaceID: ws, ProjectID: p}, true
			}}
	}
	malformed := func(name string, in map[string]any) tenancyCreateRequest {
		return tenancyCreateRequest{name: name, in: in, scope: func(auth.Identity) (auth.Scope, bool) { return auth.Scope{}, false }}
	}
	return []tenancyCreateRequest{
		wellFormed(auth.GroupDomain, "", ""),
		wellFormed(auth.GroupWorkspace, "w1", ""),
		wellFormed(auth.GroupWorkspace, "w2", ""),
		wellFormed(auth.GroupProject, "w1", "p1"),
		wellFormed(auth.GroupProject, "w1", "p2"),
		wellFormed(auth.GroupProject, "w2", "p3"),
		{name: "WORKSPACE (own, implicit)", in: map[string]any{"resourceGroup": "WORKSPACE"},
			scope: func(id auth.Identity) (auth.Scope, bool) {
				return auth.Scope{Group: auth.GroupWorkspace, DomainID: id.DomainID, WorkspaceID: id.WorkspaceID}, id.WorkspaceID != ""
			}},
		malformed("malformed DOMAIN with workspaceId", map[string]any{"resourceGroup": "DOMAIN", "workspaceId": "w1"}),
		malformed("malformed WORKSPACE w1 with projectId", map[string]any{"resourceGroup": "WORKSPACE", "workspaceId": "w1", "projectId": "p1"}),
		malformed("malformed PROJECT w1 without projectId", map[string]any{"resourceGroup": "PROJECT", "workspaceId": "w1"}),
	}
}

func tenancyCreateWant(req tenancyCreateRequest, id auth.Identity) (auth.Scope, string) {
	scope, ok := req.scope(id)
	switch {
	case !ok:
		return scope, tenancyInvalid
	case !id.CanWriteSecret(scope):
		return scope, tenancyDenied
	}
	return scope, ""
}

func (f *tenancyFixture) checkCreateSecret(t *testing.T, c *tenancyCaller, req tenancyCreateRequest, want string) {
	scope, _ := req.scope(c.id)
	name := fmt.Sprintf("tenancy create %s %s #%d", c.name, req.name, f.seq.Add(1))
	value := f.newValue("create")
	in := maps.Clone(req.in)
	in["name"] = name
	in["data"] = map[string]any{"value": value}
	r := f.do(t, c.token, tenancyCreateSecret, map[string]any{"in": in}, "")
	tenancyExpect(t, r, want)
	admin := f.admin[c.id.DomainID]
	if want != "" {
		// Nothing was created, anywhere the domain's admin can see.
		var out struct{ Secrets struct{ TotalCount int } }
		lr := f.do(t, admin, tenancySecretsQuery, map[string]any{"name": name}, "")
		tenancyExpect(t, lr, "")
		lr.Decode(t, &out)
		require.Zero(t, out.Secrets.TotalCount, "a rejected createSecret stored a secret")
		return
	}
	var out struct{ CreateSecret tenancySecretView }
	r.Decode(t, &out)
	require.Equal(t, scope, out.CreateSecret.scope(), "the new secret lives in the caller's domain, in the requested scope")
	require.Equal(t, name, out.CreateSecret.Name)
	require.Equal(t, 1, out.CreateSecret.Version)
	require.Equal(t, out.CreateSecret, f.getSecret(t, admin, out.CreateSecret.SecretID))
	f.requireSecretValue(t, c.id.DomainID, out.CreateSecret.SecretID, value)
	for d, other := range f.admin {
		if d != c.id.DomainID {
			tenancyExpect(t, f.do(t, other, tenancySecretQuery, map[string]any{"id": out.CreateSecret.SecretID}, ""), tenancyNotFound)
		}
	}
}

func (f *tenancyFixture) checkCreateUserSecret(t *testing.T, c *tenancyCaller, want string) {
	name := fmt.Sprintf("tenancy create %s #%d", c.name, f.seq.Add(1))
	value := f.newValue("create")
	in := map[string]any{"name": name, "data": map[string]any{"value": value}}
	r := f.do(t, c.token, tenancyCreateUserSecret, map[string]any{"in": in}, "")
	tenancyExpect(t, r, want)
	admin := f.admin[c.id.DomainID]
	if want != "" {
		var out struct{ UserSecrets struct{ TotalCount int } }
		lr := f.do(t, admin, tenancyUserSecretsQuery, map[string]any{"name": name}, "")
		tenancyExpect(t, lr, "")
		lr.Decode(t, &out)
		require.Zero(t, out.UserSecrets.TotalCount, "a rejected createUserSecret stored a user secret")
		return
	}
	var out struct{ CreateUserSecret tenancyUserSecretView }
	r.Decode(t, &out)
	require.Equal(t, c.id.DomainID, out.CreateUserSecret.DomainID)
	require.Equal(t, c.id.UserID, out.CreateUserSecret.UserID)
	require.Equal(t, name, out.CreateUserSecret.Name)
	require.Equal(t, 1, out.CreateUserSecret.Version)
	require.Equal(t, out.CreateUserSecret, f.getUserSecret(t, admin, out.CreateUserSecret.UserSecretID))
	f.requireUserSecretValue(t, c.id.DomainID, out.CreateUserSecret.UserSecretID, value)
	for d, other := range f.admin {
		if d != c.id.DomainID {
			tenancyExpect(t, f.do(t, other, tenancyUserSecretQuery, map[string]any{"id": out.CreateUserSecret.UserSecretID}, ""), tenancyNotFound)
		}
	}
}

// --- key cells: hard-coded from the README's role table, not derived from auth ---------

type tenancyKeyCell struct {
	caller, op, target, want string
}

var tenancyKeyCells = []tenancyKeyCell{
	// SYSTEM reads values of its own domain only.
	{"SYSTEM(d1)", "secretData", "DOMAIN d1", ""},
	{"SYSTEM(d1)", "secretData", "WORKSPACE d1/w1", ""},
	{"SYSTEM(d1)", "secretData", "WORKSPACE d1/w2", ""},
	{"SYSTEM(d1)", "secretData", "PROJECT d1/w1/p1", ""},
	{"SYSTEM(d1)", "secretData", "PROJECT d1/w1/p2", ""},
	{"SYSTEM(d1)", "secretData", "PROJECT d1/w2/p3", ""},
	{"SYSTEM(d1)", "secretData", "DOMAIN d2", tenancyNotFound},
	{"SYSTEM(d1)", "secretData", "WORKSPACE d2/w1", tenancyNotFound},
	{"SYSTEM(d1)", "secretData", "PROJECT d2/w1/p1", tenancyNotFound},
	{"SYSTEM(d1)", "userSecretData", "USER_SECRET d1/u1", ""},
	{"SYSTEM(d1)", "userSecretData", "USER_SECRET d2/u3", tenancyNotFound},
	{"SYSTEM(d2)", "secretData", "DOMAIN d1", tenancyNotFound},
	{"SYSTEM(d2)", "secretData", "DOMAIN d2", ""},
	// Nobody but SYSTEM reads values, not even admins or owners of the secret.
	{"DOMAIN_ADMIN(d1)", "secretData", "DOMAIN d1", tenancyDenied},
	{"WORKSPACE_OWNER(d1/w1)", "secretData", "WORKSPACE d1/w1", tenancyDenied},
	{"WORKSPACE_MEMBER(d1/w1,[p1])", "secretData", "PROJECT d1/w1/p1", tenancyDenied},
	{"WORKSPACE_MEMBER(d1/w1,[p1])", "secretData", "PROJECT d1/w1/p2", tenancyNotFound},
	{"USER(d1/u1)", "userSecretData", "USER_SECRET d1/u1", tenancyDenied},
	{"DOMAIN_ADMIN(d1)", "userSecretData", "USER_SECRET d1/u1", tenancyDenied},
	// Other tenants' secrets do not exist for the caller.
	{"DOMAIN_ADMIN(d2)", "secret", "DOMAIN d1", tenancyNotFound},
	{"DOMAIN_ADMIN(d2)", "secret", "WORKSPACE d1/w1", tenancyNotFound},
	{"DOMAIN_ADMIN(d2)", "secret", "PROJECT d1/w1/p1", tenancyNotFound},
	{"DOMAIN_ADMIN(d2)", "userSecret", "USER_SECRET d1/u1", tenancyNotFound},
	{"WORKSPACE_OWNER(d1/w2)", "secret", "WORKSPACE d1/w1", tenancyNotFound},
	{"WORKSPACE_OWNER(d1/w2)", "secret", "PROJECT d1/w1/p1", tenancyNotFound},
	{"WORKSPACE_OWNER(d1/w2)", "secret", "PROJECT d1/w1/p2", tenancyNotFound},
	{"WORKSPACE_OWNER(d1/w2)", "secret", "DOMAIN d1", ""},
	{"WORKSPACE_MEMBER(d1/w2,[p1])", "secret", "PROJECT d1/w1/p1", tenancyNotFound},
	{"WORKSPACE_MEMBER(d1/w1,[])", "secret", "PROJECT d1/w1/p1", tenancyNotFound},
	{"WORKSPACE_MEMBER(d1/w1,[])", "secret", "WORKSPACE d1/w1", ""},
	{"USER(d1/u1)", "secret", "DOMAIN d1", tenancyNotFound},
	{"USER(d1/u1)", "secret", "WORKSPACE d1/w1", tenancyNotFound},
	{"USER(d1/u2)", "userSecret", "USER_SECRET d1/u1", tenancyNotFound},
	{"USER(d2/u1)", "userSecret", "USER_SECRET d1/u1", tenancyNotFound},
	{"WORKSPACE_OWNER(d1/w1)", "userSecret", "USER_SECRET d1/u1", tenancyNotFound},
	{"DOMAIN_ADMIN(d1)", "userSecret", "USER_SECRET d1/u1", ""},
	// Writes need an exact scope; only owners change user secrets.
	{"WORKSPACE_OWNER(d1/w1)", "updateSecret", "DOMAIN d1", tenancyDenied},
	{"WORKSPACE_OWNER(d1/w1)", "updateSecret", "WORKSPACE d1/w1", ""},
	{"WORKSPACE_MEMBER(d1/w1,[p1])", "updateSecret", "WORKSPACE d1/w1", tenancyDenied},
	{"WORKSPACE_MEMBER(d1/w1,[p1])", "updateSecret", "PROJECT d1/w1/p1", ""},
	{"WORKSPACE_MEMBER(d1/w1,[])", "updateSecret", "PROJECT d1/w1/p1", tenancyNotFound},
	{"WORKSPACE_MEMBER(d1/w1,[])", "deleteSecret", "WORKSPACE d1/w1", tenancyDenied},
	{"WORKSPACE_MEMBER(d1/w2,[p1])", "updateSecretData", "PROJECT d1/w1/p1", tenancyNotFound},
	{"DOMAIN_ADMIN(d2)", "deleteSecret", "DOMAIN d1", tenancyNotFound},
	{"DOMAIN_ADMIN(d1)", "deleteSecret", "PROJECT d1/w2/p3", ""},
	{"SYSTEM(d1)", "updateSecretData", "DOMAIN d1", tenancyDenied},
	{"SYSTEM(d1)", "deleteSecret", "DOMAIN d1", tenancyDenied},
	{"USER(d1/u1)", "updateSecret", "DOMAIN d1", tenancyNotFound},
	{"USER(d1/u1)", "updateUserSecret", "USER_SECRET d1/u1", ""},
	{"USER(d1/u1)", "deleteUserSecret", "USER_SECRET d1/u1", ""},
	{"USER(d2/u1)", "updateUserSecret", "USER_SECRET d1/u1", tenancyNotFound},
	{"USER(d1/u2)", "deleteUserSecret", "USER_SECRET d1/u1", tenancyNotFound},
	{"DOMAIN_ADMIN(d1)", "updateUserSecret", "USER_SECRET d1/u1", tenancyDenied},
	{"SYSTEM(d1)", "updateUserSecretData", "USER_SECRET d1/u1", tenancyDenied},
}

type tenancyKeyList struct {
	caller  string
	secrets []string // labels listed by secrets (and counted by secretStat)
	users   []string // labels listed by userSecrets
}

var tenancyKeyLists = []tenancyKeyList{
	{"DOMAIN_ADMIN(d1)", []string{"DOMAIN d1", "WORKSPACE d1/w1", "WORKSPACE d1/w2", "PROJECT d1/w1/p1", "PROJECT d1/w1/p2", "PROJECT d1/w2/p3"},
		[]string{"USER_SECRET d1/u1", "USER_SECRET d1/u2", "USER_SECRET d1/admin1"}},
	{"DOMAIN_ADMIN(d2)", []string{"DOMAIN d2", "WORKSPACE d2/w1", "WORKSPACE d2/w2", "PROJECT d2/w1/p1", "PROJECT d2/w1/p2", "PROJECT d2/w2/p3"},
		[]string{"USER_SECRET d2/u3"}},
	{"WORKSPACE_OWNER(d1/w1)", []string{"DOMAIN d1", "WORKSPACE d1/w1", "PROJECT d1/w1/p1", "PROJECT d1/w1/p2"}, nil},
	{"WORKSPACE_OWNER(d1/w2)", []string{"DOMAIN d1", "WORKSPACE d1/w2", "PROJECT d1/w2/p3"}, nil},
	{"WORKSPACE_MEMBER(d1/w1,[p1])", []string{"DOMAIN d1", "WORKSPACE d1/w1", "PROJECT d1/w1/p1"}, nil},
	{"WORKSPACE_MEMBER(d1/w1,[])", []string{"DOMAIN d1", "WORKSPACE d1/w1"}, nil},
	{"WORKSPACE_MEMBER(d1/w2,[p1])", []string{"DOMAIN d1", "WORKSPACE d1/w2"}, nil},
	{"USER(d1/u1)", nil, []string{"USER_SECRET d1/u1"}},
	{"USER(d1/u2)", nil, []string{"USER_SECRET d1/u2"}},
	{"USER(d2/u3)", nil, []string{"USER_SECRET d2/u3"}},
	{"USER(d2/u1)", nil, nil},
	{"SYSTEM(d1)", []string{"DOMAIN d1", "WORKSPACE d1/w1", "WORKSPACE d1/w2", "PROJECT d1/w1/p1", "PROJECT d1/w1/p2", "PROJECT d1/w2/p3"},
		[]string{"USER_SECRET d1/u1", "USER_SECRET d1/u2", "USER_SECRET d1/admin1"}},
	{"SYSTEM(d2)", []string{"DOMAIN d2", "WORKSPACE d2/w1", "WORKSPACE d2/w2", "PROJECT d2/w1/p1", "PROJECT d2/w1/p2", "PROJECT d2/w2/p3"},
		[]string{"USER_SECRET d2/u3"}},
}

type tenancyKeyCreate struct {
	caller, request, want string
}

var tenancyKeyCreates = []tenancyKeyCreate{
	{"USER(d1/u1)", "DOMAIN", tenancyDenied},
	{"USER(d1/u1)", "WORKSPACE w1", tenancyDenied},
	{"USER(d1/u1)", "PROJECT w1/p1", tenancyDenied},
	{"SYSTEM(d1)", "DOMAIN", tenancyDenied},
	{"SYSTEM(d1)", "PROJECT w1/p1", tenancyDenied},
	{"DOMAIN_ADMIN(d1)", "DOMAIN", ""},
	{"DOMAIN_ADMIN(d1)", "PROJECT w2/p3", ""},
	{"WORKSPACE_OWNER(d1/w1)", "DOMAIN", tenancyDenied},
	{"WORKSPACE_OWNER(d1/w1)", "WORKSPACE w1", ""},
	{"WORKSPACE_OWNER(d1/w1)", "WORKSPACE w2", tenancyDenied},
	{"WORKSPACE_OWNER(d1/w1)", "PROJECT w2/p3", tenancyDenied},
	{"WORKSPACE_MEMBER(d1/w1,[p1])", "PROJECT w1/p1", ""},
	{"WORKSPACE_MEMBER(d1/w1,[p1])", "PROJECT w1/p2", tenancyDenied},
	{"WORKSPACE_MEMBER(d1/w1,[p1])", "WORKSPACE w1", tenancyDenied},
	{"WORKSPACE_MEMBER(d1/w1,[])", "PROJECT w1/p1", tenancyDenied},
	{"WORKSPACE_MEMBER(d1/w2,[p1])", "PROJECT w1/p1", tenancyDenied},
	{"DOMAIN_ADMIN(d1)", "malformed DOMAIN with workspaceId", tenancyInvalid},
}

// --- the test --------------------------------------------------------------

func TestTenancyMatrix(t *testing.T) {
	t.Parallel()
	f := newTenancyFixture(t)
	trusted := newTenancyTrusted(t, f)
	requests := tenancyCreateRequests()

	// Reads first, while the store holds exactly the fixtures.
	t.Run("read", func(t *testing.T) {
		for _, c := range f.callers {
			for _, op := range tenancySecretOps {
				if op.write {
					continue
				}
				for _, sec := range f.secrets {
					f.cell(c.name+"/"+op.name+"/"+sec.label, func(t *testing.T) {
						op.check(f, t, c, sec, op.want(c.id, sec.scope))
					})
				}
			}
			for _, op := range tenancyUserSecretOps {
				if op.write {
					continue
				}
				for _, us := range f.userSecrets {
					f.cell(c.name+"/"+op.name+"/"+us.label, func(t *testing.T) {
						op.check(f, t, c, us, op.want(c.id, us.domainID, us.ownerID))
					})
				}
			}
			visible := []*tenancySecret{}
			for _, sec := range f.secrets {
				if c.id.CanReadSecret(sec.scope) {
					visible = append(visible, sec)
				}
			}
			for _, v := range tenancySecretListVariants {
				want := []*tenancySecret{}
				for _, sec := range visible {
					if v.keep(sec.scope) {
						want = append(want, sec)
					}
				}
				f.cell(c.name+"/"+v.name, func(t *testing.T) { f.checkSecretList(t, c, v.vars, want) })
			}
			for _, v := range tenancySecretStatVariants {
				n := 0
				for _, sec := range visible {
					if v.keep(sec.scope) {
						n++
					}
				}
				f.cell(c.name+"/"+v.name, func(t *testing.T) { f.checkStat(t, c, "secretStat", tenancyStatQuery(v.vars), n) })
			}
			visibleUS := []*tenancyUserSecret{}
			for _, us := range f.userSecrets {
				if c.id.CanReadUserSecret(us.domainID, us.ownerID) {
					visibleUS = append(visibleUS, us)
				}
			}
			f.cell(c.name+"/userSecrets", func(t *testing.T) { f.checkUserSecretList(t, c, map[string]any{}, visibleUS) })
			f.cell(c.name+"/userSecrets(filterOr domainId d1|d2)", func(t *testing.T) {
				f.checkUserSecretList(t, c, map[string]any{"q": map[string]any{"filterOr": tenancyDomainsOr}}, visibleUS)
			})
			f.cell(c.name+"/userSecretStat", func(t *testing.T) {
				f.checkStat(t, c, "userSecretStat", tenancyStatQuery(map[string]any{}), len(visibleUS))
			})
			f.cell(c.name+"/userSecretStat(filter_or domainId d1|d2)", func(t *testing.T) {
				f.checkStat(t, c, "userSecretStat", tenancyStatQuery(map[string]any{"filter_or": tenancyDomainsOr}), len(visibleUS))
			})
		}
		for _, kl := range tenancyKeyLists {
			c := f.callerByName[kl.caller]
			require.NotNil(t, c, kl.caller)
			secrets := []*tenancySecret{}
			for _, l := range kl.secrets {
				require.Contains(t, f.secretByLabel, l)
				secrets = append(secrets, f.secretByLabel[l])
			}
			users := []*tenancyUserSecret{}
			for _, l := range kl.users {
				require.Contains(t, f.userSecretByLabel, l)
				users = append(users, f.userSecretByLabel[l])
			}
			f.cell("key/"+c.name+"/secrets", func(t *testing.T) {
				f.checkSecretList(t, c, map[string]any{}, secrets)
				f.checkStat(t, c, "secretStat", tenancyStatQuery(map[string]any{}), len(secrets))
			})
			f.cell("key/"+c.name+"/userSecrets", func(t *testing.T) {
				f.checkUserSecretList(t, c, map[string]any{}, users)
				f.checkStat(t, c, "userSecretStat", tenancyStatQuery(map[string]any{}), len(users))
			})
		}
		f.keyCells(t, false)
		trusted.readCells(t)
		f.run(t)
	})

	t.Run("create", func(t *testing.T) {
		for _, c := range f.callers {
			for _, req := range requests {
				_, want := tenancyCreateWant(req, c.id)
				f.cell(c.name+"/createSecret/"+req.name, func(t *testing.T) { f.checkCreateSecret(t, c, req, want) })
			}
			want := tenancyOutcome(true, c.id.CanWriteUserSecret(c.id.DomainID, c.id.UserID))
			f.cell(c.name+"/createUserSecret", func(t *testing.T) { f.checkCreateUserSecret(t, c, want) })
		}
		for _, kc := range tenancyKeyCreates {
			c := f.callerByName[kc.caller]
			require.NotNil(t, c, kc.caller)
			i := slices.IndexFunc(requests, func(r tenancyCreateRequest) bool { return r.name == kc.request })
			require.GreaterOrEqual(t, i, 0, kc.request)
			req := requests[i]
			f.cell("key/"+c.name+"/createSecret/"+req.name, func(t *testing.T) {
				_, derived := tenancyCreateWant(req, c.id)
				assert.Equal(t, kc.want, derived, "auth's rules disagree with the README's role table on this cell")
				f.checkCreateSecret(t, c, req, kc.want)
			})
		}
		trusted.createCells(t)
		f.run(t)
	})

	t.Run("write", func(t *testing.T) {
		for _, c := range f.callers {
			for _, op := range tenancySecretOps {
				if !op.write {
					continue
				}
				for _, sec := range f.secrets {
					f.cell(c.name+"/"+op.name+"/"+sec.label, func(t *testing.T) {
						op.check(f, t, c, sec, op.want(c.id, sec.scope))
					})
				}
			}
			for _, op := range tenancyUserSecretOps {
				if !op.write {
					continue
				}
				for _, us := range f.userSecrets {
					f.cell(c.name+"/"+op.name+"/"+us.label, func(t *testing.T) {
						op.check(f, t, c, us, op.want(c.id, us.domainID, us.ownerID))
					})
				}
			}
		}
		f.keyCells(t, true)
		trusted.writeCells(t)
		f.run(t)
	})

	t.Logf("tenancy matrix: %d callers, %d secrets, %d user secrets, %d trusted secrets, %d cells",
		len(f.callers), len(f.secrets), len(f.userSecrets), len(trusted.secrets), f.cells.Load())
}

// keyCells queues the hard-coded cells of tenancyKeyCells whose operation
// writes (write) or reads (!write).
func (f *tenancyFixture) keyCells(t *testing.T, write bool) {
	for _, kc := range tenancyKeyCells {
		c := f.callerByName[kc.caller]
		require.NotNil(t, c, kc.caller)
		name := "key/" + c.name + "/" + kc.op + "/" + kc.target
		if i := slices.IndexFunc(tenancySecretOps, func(o tenancySecretOp) bool { return o.name == kc.op }); i >= 0 {
			op := tenancySecretOps[i]
			sec := f.secretByLabel[kc.target]
			require.NotNil(t, sec, kc.target)
			if op.write == write {
				f.cell(name, func(t *testing.T) {
					assert.Equal(t, kc.want, op.want(c.id, sec.scope), "auth's rules disagree with the README's role table on this cell")
					op.check(f, t, c, sec, kc.want)
				})
			}
			continue
		}
		i := slices.IndexFunc(tenancyUserSecretOps, func(o tenancyUserSecretOp) bool { return o.name == kc.op })
		require.GreaterOrEqual(t, i, 0, kc.op)
		op := tenancyUserSecretOps[i]
		us := f.userSecretByLabel[kc.target]
		require.NotNil(t, us, kc.target)
		if op.write == write {
			f.cell(name, func(t *testing.T) {
				assert.Equal(t, kc.want, op.want(c.id, us.domainID, us.ownerID), "auth's rules disagree with the README's role table on this cell")
				op.check(f, t, c, us, kc.want)
			})
		}
	}
}
