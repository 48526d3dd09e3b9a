package server_test

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// The tenancy matrix for TrustedSecret: every caller of the matrix × every
// trusted secret operation × every trusted secret fixture, checked against
// auth's rules (CanReadTrustedSecret, CanWriteTrustedSecret,
// CanReadTrustedSecretValue), plus the link from every secret scope to every
// trusted secret (auth.TrustedSecretVisibleFrom) and hard-coded key cells.

const (
	tenancyMissingTrusted = "trusted-secret-000000000000"
	tenancyTrustedFields  = `trustedSecretId name tags resourceGroup domainId workspaceId version updatedAt`
	tenancyTrustedQuery   = `query($id: ID!) { trustedSecret(trustedSecretId: $id) { ` + tenancyTrustedFields + ` } }`
	tenancyTrustedData    = `query($id: ID!) { trustedSecretData(trustedSecretId: $id) { encrypted encryptOptions data } }`
	tenancyTrustedList    = `query($q: QueryInput, $name: String, $ws: String) {
  trustedSecrets(query: $q, name: $name, workspaceId: $ws) { results { ` + tenancyTrustedFields + ` } totalCount } }`
	tenancyUpdateTrusted     = `mutation($in: UpdateTrustedSecretInput!) { updateTrustedSecret(input: $in) { ` + tenancyTrustedFields + ` } }`
	tenancyUpdateTrustedData = `mutation($in: UpdateTrustedSecretDataInput!) { updateTrustedSecretData(input: $in) { ` + tenancyTrustedFields + ` } }`
	tenancyDeleteTrusted     = `mutation($id: ID!) { deleteTrustedSecret(trustedSecretId: $id, force: true) }`
	tenancyCreateTrusted     = `mutation($in: CreateTrustedSecretInput!) { createTrustedSecret(input: $in) { ` + tenancyTrustedFields + ` } }`
)

type tenancyTrustedSecret struct {
	label string
	scope auth.Scope
	id    string
	mu    sync.Mutex
	value string
}

type tenancyTrustedView struct {
	TrustedSecretID string         `json:"trustedSecretId"`
	Name            string         `json:"name"`
	Tags            map[string]any `json:"tags"`
	ResourceGroup   string         `json:"resourceGroup"`
	DomainID        string         `json:"domainId"`
	WorkspaceID     *string        `json:"workspaceId"`
	Version         int            `json:"version"`
	UpdatedAt       string         `json:"updatedAt"`
}

func (v tenancyTrustedView) scope() auth.Scope {
	return tenancySecretView{ResourceGroup: v.ResourceGroup, DomainID: v.DomainID, WorkspaceID: v.WorkspaceID}.scope()
}

type tenancyTrusted struct {
	f       *tenancyFixture
	secrets []*tenancyTrustedSecret
	byLabel map[string]*tenancyTrustedSecret
	byID    map[string]*tenancyTrustedSecret
}

func tenancyTrustedLabel(s auth.Scope) string { return "TRUSTED " + tenancySecretLabel(s) }

// newTenancyTrusted adds the trusted secret fixtures: DOMAIN and WORKSPACE
// ones, with the same workspace ids in both domains.
func newTenancyTrusted(t *testing.T, f *tenancyFixture) *tenancyTrusted {
	t.Helper()
	tt := &tenancyTrusted{f: f, byLabel: map[string]*tenancyTrustedSecret{}, byID: map[string]*tenancyTrustedSecret{}}
	for _, d := range []string{"d1", "d2"} {
		for _, sc := range []auth.Scope{
			{Group: auth.GroupDomain, DomainID: d},
			{Group: auth.GroupWorkspace, DomainID: d, WorkspaceID: "w1"},
			{Group: auth.GroupWorkspace, DomainID: d, WorkspaceID: "w2"},
		} {
			ts := &tenancyTrustedSecret{label: tenancyTrustedLabel(sc), scope: sc, value: f.newValue("trusted")}
			in := tenancyScopeInput(sc)
			in["name"] = "tenancy " + ts.label
			in["data"] = map[string]any{"value": ts.value}
			in["tags"] = map[string]any{"fixture": ts.label}
			r := f.do(t, f.admin[d], tenancyCreateTrusted, map[string]any{"in": in}, "")
			tenancyExpect(t, r, "")
			var out struct{ CreateTrustedSecret tenancyTrustedView }
			r.Decode(t, &out)
			ts.id = out.CreateTrustedSecret.TrustedSecretID
			tt.secrets = append(tt.secrets, ts)
			tt.byLabel[ts.label] = ts
			tt.byID[ts.id] = ts
		}
	}
	return tt
}

func (tt *tenancyTrusted) get(t *testing.T, token, id string) tenancyTrustedView {
	t.Helper()
	r := tt.f.do(t, token, tenancyTrustedQuery, map[string]any{"id": id}, "")
	tenancyExpect(t, r, "")
	var out struct{ TrustedSecret tenancyTrustedView }
	r.Decode(t, &out)
	return out.TrustedSecret
}

func (tt *tenancyTrusted) requireValue(t *testing.T, domain, id, value string) {
	t.Helper()
	r := tt.f.do(t, tt.f.system[domain], tenancyTrustedData, map[string]any{"id": id}, value)
	tenancyExpect(t, r, "")
	var out struct{ TrustedSecretData tenancyDataView }
	r.Decode(t, &out)
	require.Equal(t, map[string]any{"value": value}, out.TrustedSecretData.Data)
}

// sameAsMissing sends query with vars (its id replaced by a missing one)
// and checks r reads the same.
func (tt *tenancyTrusted) sameAsMissing(t *testing.T, c *tenancyCaller, r gqlResponse, id, query string, vars map[string]any) {
	t.Helper()
	missing := maps.Clone(vars)
	if in, ok := vars["in"].(map[string]any); ok {
		in = maps.Clone(in)
		in["trustedSecretId"] = tenancyMissingTrusted
		missing["in"] = in
	} else {
		missing["id"] = tenancyMissingTrusted
	}
	tenancySameAsMissing(t, r, id, tt.f.do(t, c.token, query, missing, ""), tenancyMissingTrusted)
}

func (tt *tenancyTrusted) checkGet(t *testing.T, c *tenancyCaller, ts *tenancyTrustedSecret, want string) {
	vars := map[string]any{"id": ts.id}
	r := tt.f.do(t, c.token, tenancyTrustedQuery, vars, "")
	tenancyExpect(t, r, want)
	switch want {
	case tenancyNotFound:
		tt.sameAsMissing(t, c, r, ts.id, tenancyTrustedQuery, vars)
	case "":
		var out struct{ TrustedSecret tenancyTrustedView }
		r.Decode(t, &out)
		require.Equal(t, ts.id, out.TrustedSecret.TrustedSecretID)
		require.Equal(t, ts.scope, out.TrustedSecret.scope())
		require.Equal(t, map[string]any{"fixture": ts.label}, out.TrustedSecret.Tags)
	}
}

func (tt *tenancyTrusted) checkData(t *testing.T, c *tenancyCaller, ts *tenancyTrustedSecret, want string) {
	allowed := ""
	if want == "" {
		allowed = ts.value
	}
	vars := map[string]any{"id": ts.id}
	r := tt.f.do(t, c.token, tenancyTrustedData, vars, allowed)
	tenancyExpect(t, r, want)
	switch want {
	case tenancyNotFound:
		tt.sameAsMissing(t, c, r, ts.id, tenancyTrustedData, vars)
	case "":
		var out struct{ TrustedSecretData tenancyDataView }
		r.Decode(t, &out)
		require.Equal(t, map[string]any{"value": ts.value}, out.TrustedSecretData.Data)
	}
}

func (tt *tenancyTrusted) checkUpdate(t *testing.T, c *tenancyCaller, ts *tenancyTrustedSecret, want string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	admin := tt.f.admin[ts.scope.DomainID]
	before := tt.get(t, admin, ts.id)
	n := tt.f.seq.Add(1)
	name := fmt.Sprintf("tenancy %s #%d", ts.label, n)
	vars := map[string]any{"in": map[string]any{"trustedSecretId": ts.id, "name": name,
		"tags": map[string]any{"fixture": ts.label}}}
	r := tt.f.do(t, c.token, tenancyUpdateTrusted, vars, "")
	tenancyExpect(t, r, want)
	after := tt.get(t, admin, ts.id)
	if want != "" {
		require.Equal(t, before, after, "a rejected updateTrustedSecret changed it")
		if want == tenancyNotFound {
			tt.sameAsMissing(t, c, r, ts.id, tenancyUpdateTrusted, vars)
		}
		return
	}
	require.Equal(t, name, after.Name)
	require.Equal(t, before.Version, after.Version)
	require.Equal(t, ts.scope, after.scope())
}

func (tt *tenancyTrusted) checkUpdateData(t *testing.T, c *tenancyCaller, ts *tenancyTrustedSecret, want string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	domain := ts.scope.DomainID
	before := tt.get(t, tt.f.admin[domain], ts.id)
	value := tt.f.newValue("trusted-update")
	vars := map[string]any{"in": map[string]any{"trustedSecretId": ts.id, "data": map[string]any{"value": value}}}
	r := tt.f.do(t, c.token, tenancyUpdateTrustedData, vars, "")
	tenancyExpect(t, r, want)
	after := tt.get(t, tt.f.admin[domain], ts.id)
	if want != "" {
		require.Equal(t, before, after, "a rejected updateTrustedSecretData changed it")
		tt.requireValue(t, domain, ts.id, ts.value)
		if want == tenancyNotFound {
			tt.sameAsMissing(t, c, r, ts.id, tenancyUpdateTrustedData, vars)
		}
		return
	}
	require.Equal(t, before.Version+1, after.Version)
	tt.requireValue(t, domain, ts.id, value)
	ts.value = value
}

func (tt *tenancyTrusted) checkDelete(t *testing.T, c *tenancyCaller, ts *tenancyTrustedSecret, want string) {
	domain := ts.scope.DomainID
	value := tt.f.newValue("trusted-fresh")
	in := tenancyScopeInput(ts.scope)
	in["name"] = fmt.Sprintf("tenancy fresh %s #%d", ts.label, tt.f.seq.Add(1))
	in["data"] = map[string]any{"value": value}
	cr := tt.f.do(t, tt.f.admin[domain], tenancyCreateTrusted, map[string]any{"in": in}, "")
	tenancyExpect(t, cr, "")
	var fresh struct{ CreateTrustedSecret tenancyTrustedView }
	cr.Decode(t, &fresh)
	id := fresh.CreateTrustedSecret.TrustedSecretID
	vars := map[string]any{"id": id}
	r := tt.f.do(t, c.token, tenancyDeleteTrusted, vars, "")
	tenancyExpect(t, r, want)
	if want != "" {
		require.Equal(t, fresh.CreateTrustedSecret, tt.get(t, tt.f.admin[domain], id), "a rejected delete changed it")
		tt.requireValue(t, domain, id, value)
		if want == tenancyNotFound {
			tt.sameAsMissing(t, c, r, id, tenancyDeleteTrusted, vars)
		}
		return
	}
	tenancyExpect(t, tt.f.do(t, tt.f.admin[domain], tenancyTrustedQuery, vars, ""), tenancyNotFound)
	tenancyExpect(t, tt.f.do(t, tt.f.system[domain], tenancyTrustedData, vars, ""), tenancyNotFound)
}

func (tt *tenancyTrusted) checkList(t *testing.T, c *tenancyCaller, vars map[string]any, want []*tenancyTrustedSecret) {
	r := tt.f.do(t, c.token, tenancyTrustedList, vars, "")
	tenancyExpect(t, r, "")
	var out struct {
		TrustedSecrets struct {
			Results    []tenancyTrustedView
			TotalCount int
		}
	}
	r.Decode(t, &out)
	got := []string{}
	for _, v := range out.TrustedSecrets.Results {
		ts := tt.byID[v.TrustedSecretID]
		require.NotNil(t, ts, "listed trusted secret %s is not a fixture", v.TrustedSecretID)
		require.Equal(t, ts.scope, v.scope())
		got = append(got, ts.label)
	}
	wantLabels := []string{}
	for _, ts := range want {
		wantLabels = append(wantLabels, ts.label)
	}
	slices.Sort(got)
	slices.Sort(wantLabels)
	require.Equal(t, wantLabels, got)
	require.Equal(t, len(want), out.TrustedSecrets.TotalCount)
}

type tenancyTrustedOp struct {
	name  string
	write bool
	want  func(id auth.Identity, s auth.Scope) string
	check func(tt *tenancyTrusted, t *testing.T, c *tenancyCaller, ts *tenancyTrustedSecret, want string)
}

func tenancyWriteTrusted(id auth.Identity, s auth.Scope) string {
	return tenancyOutcome(id.CanReadTrustedSecret(s), id.CanWriteTrustedSecret(s))
}

var tenancyTrustedOps = []tenancyTrustedOp{
	{name: "trustedSecret", want: func(id auth.Identity, s auth.Scope) string {
		return tenancyOutcome(id.CanReadTrustedSecret(s), true)
	}, check: (*tenancyTrusted).checkGet},
	{name: "trustedSecretData", want: func(id auth.Identity, s auth.Scope) string {
		return tenancyOutcome(id.CanReadTrustedSecret(s), id.CanReadTrustedSecretValue(s))
	}, check: (*tenancyTrusted).checkData},
	{name: "updateTrustedSecret", write: true, want: tenancyWriteTrusted, check: (*tenancyTrusted).checkUpdate},
	{name: "updateTrustedSecretData", write: true, want: tenancyWriteTrusted, check: (*tenancyTrusted).checkUpdateData},
	{name: "deleteTrustedSecret", write: true, want: tenancyWriteTrusted, check: (*tenancyTrusted).checkDelete},
}

// Key cells, hard-coded from the rules rather than derived from auth.
var tenancyTrustedKeyCells = []tenancyKeyCell{
	{"SYSTEM(d1)", "trustedSecretData", "TRUSTED DOMAIN d1", ""},
	{"SYSTEM(d1)", "trustedSecretData", "TRUSTED WORKSPACE d1/w2", ""},
	{"SYSTEM(d1)", "trustedSecretData", "TRUSTED DOMAIN d2", tenancyNotFound},
	{"DOMAIN_ADMIN(d1)", "trustedSecretData", "TRUSTED DOMAIN d1", tenancyDenied},
	{"WORKSPACE_OWNER(d1/w1)", "trustedSecretData", "TRUSTED WORKSPACE d1/w1", tenancyDenied},
	{"WORKSPACE_MEMBER(d1/w1,[])", "trustedSecret", "TRUSTED DOMAIN d1", ""},
	{"WORKSPACE_MEMBER(d1/w1,[])", "trustedSecret", "TRUSTED WORKSPACE d1/w1", ""},
	{"WORKSPACE_MEMBER(d1/w1,[])", "trustedSecret", "TRUSTED WORKSPACE d1/w2", tenancyNotFound},
	{"WORKSPACE_OWNER(d1/w2)", "trustedSecret", "TRUSTED WORKSPACE d1/w1", tenancyNotFound},
	{"USER(d1/u1)", "trustedSecret", "TRUSTED DOMAIN d1", tenancyNotFound},
	{"DOMAIN_ADMIN(d2)", "trustedSecret", "TRUSTED DOMAIN d1", tenancyNotFound},
	{"DOMAIN_ADMIN(d1)", "updateTrustedSecret", "TRUSTED WORKSPACE d1/w2", ""},
	{"DOMAIN_ADMIN(d1)", "deleteTrustedSecret", "TRUSTED DOMAIN d1", ""},
	{"WORKSPACE_OWNER(d1/w1)", "updateTrustedSecretData", "TRUSTED WORKSPACE d1/w1", ""},
	{"WORKSPACE_OWNER(d1/w1)", "updateTrustedSecret", "TRUSTED DOMAIN d1", tenancyDenied},
	{"WORKSPACE_OWNER(d1/w1)", "deleteTrustedSecret", "TRUSTED WORKSPACE d1/w2", tenancyNotFound},
	{"WORKSPACE_MEMBER(d1/w1,[p1])", "updateTrustedSecret", "TRUSTED WORKSPACE d1/w1", tenancyDenied},
	{"SYSTEM(d1)", "deleteTrustedSecret", "TRUSTED DOMAIN d1", tenancyDenied},
	{"DOMAIN_ADMIN(d2)", "deleteTrustedSecret", "TRUSTED DOMAIN d1", tenancyNotFound},
}

// readCells queues the reads: every caller × read operation × fixture, and
// each caller's list and stat.
func (tt *tenancyTrusted) readCells(t *testing.T) {
	tt.opCells(t, false)
	for _, c := range tt.f.callers {
		visible := []*tenancyTrustedSecret{}
		for _, ts := range tt.secrets {
			if c.id.CanReadTrustedSecret(ts.scope) {
				visible = append(visible, ts)
			}
		}
		inW1 := []*tenancyTrustedSecret{}
		for _, ts := range visible {
			if ts.scope.WorkspaceID == "w1" {
				inW1 = append(inW1, ts)
			}
		}
		tt.f.cell(c.name+"/trustedSecrets", func(t *testing.T) { tt.checkList(t, c, map[string]any{}, visible) })
		tt.f.cell(c.name+"/trustedSecrets(filterOr domainId d1|d2)", func(t *testing.T) {
			tt.checkList(t, c, map[string]any{"q": map[string]any{"filterOr": tenancyDomainsOr}}, visible)
		})
		tt.f.cell(c.name+"/trustedSecrets(workspaceId w1)", func(t *testing.T) {
			tt.checkList(t, c, map[string]any{"ws": "w1"}, inW1)
		})
		tt.f.cell(c.name+"/trustedSecretStat", func(t *testing.T) {
			tt.f.checkStat(t, c, "trustedSecretStat", tenancyStatQuery(map[string]any{}), len(visible))
		})
		tt.f.cell(c.name+"/trustedSecretStat(filter_or domainId d1|d2)", func(t *testing.T) {
			tt.f.checkStat(t, c, "trustedSecretStat", tenancyStatQuery(map[string]any{"filter_or": tenancyDomainsOr}), len(visible))
		})
	}
}

// writeCells queues the writes: every caller × write operation × fixture.
func (tt *tenancyTrusted) writeCells(t *testing.T) { tt.opCells(t, true) }

func (tt *tenancyTrusted) opCells(t *testing.T, write bool) {
	for _, c := range tt.f.callers {
		for _, op := range tenancyTrustedOps {
			if op.write != write {
				continue
			}
			for _, ts := range tt.secrets {
				tt.f.cell(c.name+"/"+op.name+"/"+ts.label, func(t *testing.T) { op.check(tt, t, c, ts, op.want(c.id, ts.scope)) })
			}
		}
	}
	for _, kc := range tenancyTrustedKeyCells {
		c := tt.f.callerByName[kc.caller]
		require.NotNil(t, c, kc.caller)
		i := slices.IndexFunc(tenancyTrustedOps, func(o tenancyTrustedOp) bool { return o.name == kc.op })
		require.GreaterOrEqual(t, i, 0, kc.op)
		op := tenancyTrustedOps[i]
		ts := tt.byLabel[kc.target]
		require.NotNil(t, ts, kc.target)
		if op.write == write {
			tt.f.cell("key/"+c.name+"/"+kc.op+"/"+kc.target, func(t *testing.T) {
				assert.Equal(t, kc.want, op.want(c.id, ts.scope), "auth's rules disagree with the issue on this cell")
				op.check(tt, t, c, ts, kc.want)
			})
		}
	}
}

// createCells queues createTrustedSecret for every caller × request shape,
// and a link from every secret scope to every trusted secret fixture.
func (tt *tenancyTrusted) createCells(t *testing.T) {
	type request struct {
		name  string
		in    map[string]any
		scope func(id auth.Identity) (auth.Scope, bool)
	}
	fixed := func(group auth.ResourceGroup, ws string) request {
		return request{name: string(group) + " " + ws, in: tenancyScopeInput(auth.Scope{Group: group, WorkspaceID: ws}),
			scope: func(id auth.Identity) (auth.Scope, bool) {
				return auth.Scope{Group: group, DomainID: id.DomainID, WorkspaceID: ws}, true
			}}
	}
	requests := []request{
		fixed(auth.GroupDomain, ""), fixed(auth.GroupWorkspace, "w1"), fixed(auth.GroupWorkspace, "w2"),
		{name: "WORKSPACE (own, implicit)", in: map[string]any{"resourceGroup": "WORKSPACE"},
			scope: func(id auth.Identity) (auth.Scope, bool) {
				return auth.Scope{Group: auth.GroupWorkspace, DomainID: id.DomainID, WorkspaceID: id.WorkspaceID}, id.WorkspaceID != ""
			}},
		{name: "malformed PROJECT", in: map[string]any{"resourceGroup": "PROJECT", "workspaceId": "w1", "projectId": "p1"},
			scope: func(auth.Identity) (auth.Scope, bool) { return auth.Scope{}, false }},
		{name: "malformed DOMAIN with workspaceId", in: map[string]any{"resourceGroup": "DOMAIN", "workspaceId": "w1"},
			scope: func(auth.Identity) (auth.Scope, bool) { return auth.Scope{}, false }},
	}
	for _, c := range tt.f.callers {
		for _, req := range requests {
			scope, ok := req.scope(c.id)
			want := ""
			switch {
			case !ok:
				want = tenancyInvalid
			case !c.id.CanWriteTrustedSecret(scope):
				want = tenancyDenied
			}
			tt.f.cell(c.name+"/createTrustedSecret/"+req.name, func(t *testing.T) {
				name := fmt.Sprintf("tenancy create %s %s #%d", c.name, req.name, tt.f.seq.Add(1))
				value := tt.f.newValue("trusted-create")
				in := maps.Clone(req.in)
				in["name"], in["data"] = name, map[string]any{"value": value}
				r := tt.f.do(t, c.token, tenancyCreateTrusted, map[string]any{"in": in}, "")
				tenancyExpect(t, r, want)
				admin := tt.f.admin[c.id.DomainID]
				if want != "" {
					lr := tt.f.do(t, admin, tenancyTrustedList, map[string]any{"name": name}, "")
					tenancyExpect(t, lr, "")
					var out struct{ TrustedSecrets struct{ TotalCount int } }
					lr.Decode(t, &out)
					require.Zero(t, out.TrustedSecrets.TotalCount, "a rejected create stored a trusted secret")
					return
				}
				var out struct{ CreateTrustedSecret tenancyTrustedView }
				r.Decode(t, &out)
				require.Equal(t, scope, out.CreateTrustedSecret.scope())
				require.Equal(t, out.CreateTrustedSecret, tt.get(t, admin, out.CreateTrustedSecret.TrustedSecretID))
				tt.requireValue(t, c.id.DomainID, out.CreateTrustedSecret.TrustedSecretID, value)
			})
		}
	}
	// The link: the secret's domain admin creates a secret in each fixture
	// scope linked to each trusted secret (the other domain's too).
	for _, sec := range tt.f.secrets {
		for _, ts := range tt.secrets {
			want := tenancyInvalid
			if auth.TrustedSecretVisibleFrom(ts.scope, sec.scope) {
				want = ""
			}
			tt.f.cell("link/"+sec.label+"/"+ts.label, func(t *testing.T) {
				in := tenancyScopeInput(sec.scope)
				in["name"] = fmt.Sprintf("tenancy link %s %s #%d", sec.label, ts.label, tt.f.seq.Add(1))
				in["data"] = map[string]any{"own": "x"}
				in["trustedSecretId"] = ts.id
				r := tt.f.do(t, tt.f.admin[sec.scope.DomainID], tenancyCreateSecret, map[string]any{"in": in}, "")
				tenancyExpect(t, r, want)
				if want != "" {
					// Exactly as for an id that does not exist.
					in["trustedSecretId"] = tenancyMissingTrusted
					missing := tt.f.do(t, tt.f.admin[sec.scope.DomainID], tenancyCreateSecret, map[string]any{"in": in}, "")
					require.Equal(t, tenancyInvalid, missing.Code())
					require.Equal(t, missing.Errors[0].Message, r.Errors[0].Message)
				}
			})
		}
	}
	// Key link cells.
	for _, kc := range []struct{ secret, trusted, want string }{
		{"PROJECT d1/w1/p1", "TRUSTED WORKSPACE d1/w1", ""},
		{"PROJECT d1/w1/p1", "TRUSTED DOMAIN d1", ""},
		{"PROJECT d1/w1/p1", "TRUSTED WORKSPACE d1/w2", tenancyInvalid},
		{"DOMAIN d1", "TRUSTED WORKSPACE d1/w1", tenancyInvalid},
		{"WORKSPACE d1/w1", "TRUSTED WORKSPACE d2/w1", tenancyInvalid},
		{"DOMAIN d2", "TRUSTED DOMAIN d1", tenancyInvalid},
	} {
		sec, ts := tt.f.secretByLabel[kc.secret], tt.byLabel[kc.trusted]
		require.NotNil(t, sec, kc.secret)
		require.NotNil(t, ts, kc.trusted)
		got := tenancyInvalid
		if auth.TrustedSecretVisibleFrom(ts.scope, sec.scope) {
			got = ""
		}
		assert.Equal(t, kc.want, got, "auth's link rule disagrees with the issue: %s -> %s", kc.secret, kc.trusted)
	}
}
