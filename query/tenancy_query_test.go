package query_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/projections"
	"github.com/secretlog/secretlog/query"
)

func str0(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// tenancyRows are secrets in two domains, two workspaces each, projects in
// them, with some providers and tags.
func tenancyRows() []secretRow {
	rng := rand.New(rand.NewPCG(7, 7))
	var rows []secretRow
	i := 0
	add := func(domain, group, ws, project string) {
		for range 3 {
			r := secretRow{ID: fmt.Sprintf("s%03d", i), Name: fmt.Sprintf("%s-%s-%d", domain, group, i), Domain: domain, Group: group,
				Provider: sp(propProviders[rng.IntN(3)]), Version: int64(1 + rng.IntN(3)), Tags: map[string]any{"env": propEnvs[rng.IntN(4)]},
				CreatedAt: queryNow.Add(-time.Duration(i) * time.Hour)}
			if ws != "" {
				r.Workspace = sp(ws)
			}
			if project != "" {
				r.Project = sp(project)
			}
			rows = append(rows, r)
			i++
		}
	}
	for _, d := range []string{"d1", "d2"} {
		add(d, "DOMAIN", "", "")
		for _, ws := range []string{"w1", "w2"} {
			add(d, "WORKSPACE", ws, "")
			for _, p := range []string{"p1", "p2"} {
				add(d, "PROJECT", ws, ws+p)
			}
		}
	}
	return rows
}

var tenancyCallers = []struct {
	name string
	id   auth.Identity
}{
	{"system d1", auth.Identity{Role: auth.RoleSystem, DomainID: "d1"}},
	{"domain admin d1", auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "a1"}},
	{"domain admin d2", auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d2", UserID: "a2"}},
	{"workspace owner d1/w1", auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: "w1", UserID: "o1"}},
	{"workspace owner d2/w2", auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "d2", WorkspaceID: "w2", UserID: "o2"}},
	{"member d1/w1 of w1p1", auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", Projects: []string{"w1p1"}, UserID: "m1"}},
	{"member d1/w2 of a w1 project and w2p2", auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w2",
		Projects: []string{"w1p1", "w2p2"}, UserID: "m2"}},
	{"member without projects", auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: "d1", WorkspaceID: "w1", UserID: "m3"}},
	{"user d1", auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "bob"}},
	{"invalid: no domain", auth.Identity{Role: auth.RoleDomainAdmin, UserID: "x"}},
	{"invalid: unknown role", auth.Identity{Role: "ROOT", DomainID: "d1"}},
	{"invalid: owner without workspace", auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "d1"}},
}

// TestQueryTenancy: the same list and stat queries by callers of different
// scopes return exactly the rows auth.Identity.CanReadSecret lets each see.
func TestQueryTenancy(t *testing.T) {
	t.Parallel()
	pool := newQueryDB(t)
	rows := tenancyRows()
	insertSecrets(t, pool, rows)
	r := newReader(pool)
	ctx := context.Background()
	queries := []query.Input{
		{},
		{Filter: []query.Filter{cond("provider", "in", []any{"aws", "gcp"})}},
		{FilterOr: []query.Filter{cond("domainId", "eq", "d1"), cond("domain_id", "eq", "d2")}},
		{FilterOr: []query.Filter{cond("resourceGroup", "eq", "PROJECT"), cond("workspaceId", "not", "w1")}},
		{Filter: []query.Filter{cond("workspace_id", "eq", "w2")}},
		{Filter: []query.Filter{cond("projectId", "exists", true)}, Sort: []query.SortKey{{Key: "name", Desc: true}}, Page: query.Page{Start: 2, Limit: 3}},
		{Keyword: "d2", Sort: []query.SortKey{{Key: "tags.env"}, {Key: "createdAt"}}},
		{Filter: []query.Filter{cond("tags.env", "not", "prod"), cond("version", "gte", 2)}},
	}
	scopes := map[string]bool{} // the distinct visible sets, to show the callers differ
	for _, c := range tenancyCallers {
		visible := func(row secretRow) bool {
			return c.id.CanReadSecret(auth.Scope{Group: auth.ResourceGroup(row.Group), DomainID: row.Domain,
				WorkspaceID: str0(row.Workspace), ProjectID: str0(row.Project)})
		}
		var mine []secretRow
		for _, row := range rows {
			if visible(row) {
				mine = append(mine, row)
			}
		}
		scopes[fmt.Sprint(len(mine), mine)] = true
		t.Run(c.name, func(t *testing.T) {
			for i, q := range queries {
				got, total, err := r.Secrets(ctx, c.id, q)
				require.NoError(t, err)
				wantIDs, wantTotal := evalListVisible(rows, visible, q, queryNow)
				require.Equal(t, wantTotal, total, "query %d", i)
				require.Equal(t, wantIDs, secretIDs(got), "query %d", i)

				// stat with the same filters: count, groups, distinct
				filter := func() map[string]any {
					m := map[string]any{}
					var f, fo []any
					for _, c := range q.Filter {
						f = append(f, map[string]any{"k": c.Key, "v": c.Value, "o": c.Op})
					}
					for _, c := range q.FilterOr {
						fo = append(fo, map[string]any{"k": c.Key, "v": c.Value, "o": c.Op})
					}
					m["filter"], m["filter_or"], m["keyword"] = f, fo, q.Keyword
					return m
				}
				st := filter()
				st["aggregate"] = []any{map[string]any{"count": map[string]any{"name": "n"}}}
				res, err := r.Stat(ctx, c.id, projections.SecretResource, st)
				require.NoError(t, err)
				require.Equal(t, []any{map[string]any{"n": int64(wantTotal)}}, res["results"], "query %d count", i)

				_, all := evalListVisible(rows, visible, query.Input{Filter: q.Filter, FilterOr: q.FilterOr, Keyword: q.Keyword}, queryNow)
				require.Equal(t, wantTotal, all)
				st = filter()
				st["aggregate"] = []any{map[string]any{"group": map[string]any{
					"keys":   []any{map[string]any{"key": "domainId"}, map[string]any{"key": "workspace_id", "name": "ws"}},
					"fields": []any{map[string]any{"operator": "count", "name": "n"}, map[string]any{"operator": "push", "key": "secretId", "name": "ids"}}}}}
				res, err = r.Stat(ctx, c.id, projections.SecretResource, st)
				require.NoError(t, err)
				var statIDs []string
				for _, g := range res["results"].([]any) {
					for _, id := range g.(map[string]any)["ids"].([]any) {
						statIDs = append(statIDs, id.(string))
					}
				}
				listed, _ := evalListVisible(rows, visible, query.Input{Filter: q.Filter, FilterOr: q.FilterOr, Keyword: q.Keyword}, queryNow)
				slices.Sort(statIDs)
				require.Equal(t, listed, append([]string{}, statIDs...), "query %d groups", i)

				st = filter()
				st["distinct"] = "domain_id"
				res, err = r.Stat(ctx, c.id, projections.SecretResource, st)
				require.NoError(t, err)
				var domains []any
				for _, row := range mine {
					if !slices.Contains(domains, any(row.Domain)) && slices.Contains(listed, row.ID) {
						domains = append(domains, row.Domain)
					}
				}
				slices.SortFunc(domains, func(a, b any) int { return cmpStrings(a.(string), b.(string)) })
				if domains == nil {
					domains = []any{}
				}
				require.Equal(t, domains, res["results"], "query %d distinct", i)
			}
		})
	}
	require.GreaterOrEqual(t, len(scopes), 8, "callers see different rows")
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestUserSecretQueryTenancy: user secrets are visible to their owner, and
// to SYSTEM and DOMAIN_ADMIN of their domain, in list and in stat.
func TestUserSecretQueryTenancy(t *testing.T) {
	t.Parallel()
	pool := newQueryDB(t)
	var rows []userSecretRow
	for i, owner := range []struct{ domain, user string }{{"d1", "bob"}, {"d1", "bob"}, {"d1", "carol"}, {"d2", "bob"}, {"d2", "dave"}, {"d1", "m1"}} {
		rows = append(rows, userSecretRow{ID: fmt.Sprintf("u%d", i), Name: fmt.Sprintf("n%d", i), Domain: owner.domain, User: owner.user,
			Provider: sp(propProviders[i%3]), Version: 1, CreatedAt: queryNow.Add(-time.Duration(i) * time.Minute)})
	}
	insertUserSecrets(t, pool, rows)
	r := newReader(pool)
	ctx := context.Background()
	for _, c := range append(tenancyCallers, struct {
		name string
		id   auth.Identity
	}{"user carol", auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "carol"}}) {
		t.Run(c.name, func(t *testing.T) {
			var want []string
			for _, row := range rows {
				if c.id.CanReadUserSecret(row.Domain, row.User) {
					want = append(want, row.ID)
				}
			}
			if want == nil {
				want = []string{}
			}
			for _, q := range []query.Input{{}, {FilterOr: []query.Filter{cond("userId", "eq", "bob"), cond("user_id", "eq", "carol"),
				cond("domainId", "in", []any{"d1", "d2"})}}} {
				got, total, err := r.UserSecrets(ctx, c.id, q)
				require.NoError(t, err)
				ids := []string{}
				for _, s := range got {
					ids = append(ids, s.UserSecretID)
				}
				require.Equal(t, want, ids)
				require.Equal(t, len(want), total)
			}
			res, err := r.Stat(ctx, c.id, projections.UserSecretResource, map[string]any{
				"filter_or": []any{map[string]any{"k": "userId", "v": "bob"}, map[string]any{"k": "userId", "v": "bob", "o": "not"}},
				"aggregate": []any{map[string]any{"group": map[string]any{"fields": []any{
					map[string]any{"operator": "add_to_set", "key": "userSecretId", "name": "ids"}}}}}})
			require.NoError(t, err)
			if len(want) == 0 {
				require.Equal(t, []any{}, res["results"])
				return
			}
			var ids []string
			for _, id := range res["results"].([]any)[0].(map[string]any)["ids"].([]any) {
				ids = append(ids, id.(string))
			}
			require.Equal(t, want, ids)
		})
	}
}
