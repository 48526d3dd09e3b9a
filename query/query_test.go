package query_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/projections"
	"github.com/secretlog/secretlog/query"
)

// queryNow is the clock of the query tests: Wednesday 2024-04-03 10:30 UTC.
var queryNow = time.Date(2024, 4, 3, 10, 30, 0, 0, time.UTC)

// newQueryDB is a database with the read models and nothing else.
func newQueryDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	_, err = projections.Migrate(ctx, conn)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// secretRow is a row of the secrets read model, written directly: these
// tests are about reading.
type secretRow struct {
	ID        string
	Name      string
	SchemaID  *string
	Provider  *string
	Tags      map[string]any
	Group     string
	Domain    string
	Workspace *string
	Project   *string
	Account   *string
	Trusted   *string
	Version   int64
	CreatedBy string
	UpdatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func sp(s string) *string { return &s }

func insertSecrets(t testing.TB, pool *pgxpool.Pool, rows []secretRow) {
	t.Helper()
	src := make([][]any, len(rows))
	for i, r := range rows {
		tags := r.Tags
		if tags == nil {
			tags = map[string]any{}
		}
		js, err := json.Marshal(tags)
		require.NoError(t, err)
		by := r.CreatedBy
		if by == "" {
			by = "admin"
		}
		upd := r.UpdatedAt
		if upd.IsZero() {
			upd = r.CreatedAt
		}
		src[i] = []any{r.ID, r.Name, r.SchemaID, r.Provider, string(js), r.Group, r.Domain, r.Workspace, r.Project,
			r.Account, r.Trusted, r.Version, r.Version, by, by, r.CreatedAt, upd}
	}
	_, err := pool.CopyFrom(context.Background(), pgx.Identifier{"secrets"}, []string{"secret_id", "name", "schema_id", "provider", "tags",
		"resource_group", "domain_id", "workspace_id", "project_id", "service_account_id", "trusted_secret_id", "version",
		"stream_version", "created_by", "updated_by", "created_at", "updated_at"}, pgx.CopyFromRows(src))
	require.NoError(t, err)
}

type userSecretRow struct {
	ID        string
	Name      string
	SchemaID  *string
	Provider  *string
	Tags      map[string]any
	Domain    string
	User      string
	Version   int64
	CreatedAt time.Time
}

func insertUserSecrets(t testing.TB, pool *pgxpool.Pool, rows []userSecretRow) {
	t.Helper()
	src := make([][]any, len(rows))
	for i, r := range rows {
		tags := r.Tags
		if tags == nil {
			tags = map[string]any{}
		}
		js, err := json.Marshal(tags)
		require.NoError(t, err)
		src[i] = []any{r.ID, r.Name, r.SchemaID, r.Provider, string(js), r.Domain, r.User, r.Version, r.Version, r.User, r.User, r.CreatedAt, r.CreatedAt}
	}
	_, err := pool.CopyFrom(context.Background(), pgx.Identifier{"user_secrets"}, []string{"user_secret_id", "name", "schema_id", "provider",
		"tags", "domain_id", "user_id", "version", "stream_version", "created_by", "updated_by", "created_at", "updated_at"}, pgx.CopyFromRows(src))
	require.NoError(t, err)
}

var (
	adminD1 = auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "admin"}
	adminD2 = auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d2", UserID: "admin2"}
)

// operatorRows is the data set of the per-operator tests, all in domain d1.
func operatorRows() []secretRow {
	day := func(m time.Month, d int) time.Time { return time.Date(2024, m, d, 12, 0, 0, 0, time.UTC) }
	return []secretRow{
		{ID: "s1", Name: "Alpha-Prod", Provider: sp("aws"), SchemaID: sp("aws_access_key"), Group: "PROJECT", Domain: "d1",
			Workspace: sp("w1"), Project: sp("p1"), Tags: map[string]any{"env": "prod", "tier": 1, "team": "core"}, Version: 1,
			CreatedAt: day(1, 10)},
		{ID: "s2", Name: "beta", Provider: sp("gcp"), SchemaID: sp("gcp_sa"), Group: "WORKSPACE", Domain: "d1", Workspace: sp("w1"),
			Tags: map[string]any{"env": "dev", "tier": 2, "acl": []any{map[string]any{"role": "r1", "level": 1},
				map[string]any{"role": "r2", "level": 2, "sub": map[string]any{"x": true}}}}, Version: 2, CreatedAt: day(2, 15)},
		{ID: "s3", Name: "gamma", Group: "DOMAIN", Domain: "d1", Version: 3, CreatedAt: day(3, 20)},
		{ID: "s4", Name: "delta-prod", Provider: sp("aws"), SchemaID: sp("aws_access_key"), Group: "PROJECT", Domain: "d1",
			Workspace: sp("w2"), Project: sp("p2"), Tags: map[string]any{"env": "Prod", "tier": "3", "flag": true}, Version: 1,
			CreatedAt: day(4, 1).Add(-2 * time.Hour)},
		{ID: "s5", Name: "epsilon", Provider: sp("azure"), Group: "WORKSPACE", Domain: "d1", Workspace: sp("w2"),
			Tags: map[string]any{"env": nil, "list": []any{"a", "b"}}, Version: 5, CreatedAt: queryNow.Add(-30 * time.Minute)},
	}
}

func newReader(pool *pgxpool.Pool) *projections.Reader {
	return projections.NewReader(pool).WithClock(func() time.Time { return queryNow })
}

func secretIDs(list []projections.Secret) []string {
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.SecretID
	}
	return ids
}

func requireQueryError(t *testing.T, err error, want ...string) {
	t.Helper()
	var qe *query.Error
	require.Error(t, err)
	require.True(t, errors.As(err, &qe), "want a QueryError (INVALID_ARGUMENT), got %T: %v", err, err)
	for _, w := range want {
		require.Contains(t, qe.Error(), w)
	}
}

func cond(k, o string, v any) query.Filter {
	return query.Filter{Key: k, Op: o, Value: v}
}

func TestQueryOperators(t *testing.T) {
	t.Parallel()
	pool := newQueryDB(t)
	insertSecrets(t, pool, operatorRows())
	r := newReader(pool)
	cases := []struct {
		name string
		cond query.Filter
		want []string
	}{
		// eq, not
		{"eq text", cond("provider", "eq", "aws"), []string{"s1", "s4"}},
		{"eq default operator", cond("name", "", "beta"), []string{"s2"}},
		{"eq ignores case (python-core iexact)", cond("name", "eq", "BETA"), []string{"s2"}},
		{"eq on an exact field keeps case", cond("secretId", "eq", "S2"), nil},
		{"eq on an exact field", cond("secret_id", "eq", "s2"), []string{"s2"}},
		{"eq null is missing", cond("provider", "eq", nil), []string{"s3"}},
		{"eq cloudforet name", cond("schema_id", "eq", "gcp_sa"), []string{"s2"}},
		{"eq graphql name", cond("schemaId", "eq", "gcp_sa"), []string{"s2"}},
		{"eq number", cond("version", "eq", 1), []string{"s1", "s4"}},
		{"eq number from JSON", cond("version", "eq", json.Number("2")), []string{"s2"}},
		{"eq time", cond("createdAt", "eq", "2024-02-15T12:00:00Z"), []string{"s2"}},
		{"eq time other zone", cond("created_at", "eq", "2024-02-15T13:00:00+01:00"), []string{"s2"}},
		{"eq tag string ignores case", cond("tags.env", "eq", "prod"), []string{"s1", "s4"}},
		{"eq tag string, other case", cond("tags.env", "eq", "DEV"), []string{"s2"}},
		{"eq tag number", cond("tags.tier", "eq", 1), []string{"s1"}},
		{"eq tag number is not its string", cond("tags.tier", "eq", "1"), nil},
		{"eq tag bool", cond("tags.flag", "eq", true), []string{"s4"}},
		{"eq tag null: missing or null", cond("tags.env", "eq", nil), []string{"s3", "s5"}},
		{"eq tag list value", cond("tags.list", "eq", map[string]any{"a": 1}), nil},
		{"eq tags object", cond("tags", "eq", map[string]any{}), []string{"s3"}},
		{"not text includes missing", cond("provider", "not", "aws"), []string{"s2", "s3", "s5"}},
		{"not null", cond("provider", "not", nil), []string{"s1", "s2", "s4", "s5"}},
		{"not tag keeps case (python-core ne)", cond("tags.env", "not", "prod"), []string{"s2", "s3", "s4", "s5"}},
		{"not text keeps case", cond("name", "not", "BETA"), []string{"s1", "s2", "s3", "s4", "s5"}},
		{"not number", cond("version", "not", 1), []string{"s2", "s3", "s5"}},
		// lt lte gt gte
		{"lt text", cond("name", "lt", "beta"), []string{"s1"}},
		{"lte text", cond("name", "lte", "beta"), []string{"s1", "s2"}},
		{"gt number", cond("version", "gt", 2), []string{"s3", "s5"}},
		{"gte number", cond("version", "gte", 2), []string{"s2", "s3", "s5"}},
		{"gt fraction", cond("version", "gt", 2.5), []string{"s3", "s5"}},
		{"lt time", cond("createdAt", "lt", "2024-02-15"), []string{"s1"}},
		{"lte time", cond("createdAt", "lte", "2024-02-15T12:00:00Z"), []string{"s1", "s2"}},
		{"gt tag number only numbers", cond("tags.tier", "gt", 1), []string{"s2"}},
		{"gte tag string only strings", cond("tags.tier", "gte", "1"), []string{"s4"}},
		{"lt missing never matches", cond("provider", "lt", "zzz"), []string{"s1", "s2", "s4", "s5"}},
		// exists
		{"exists true", cond("schemaId", "exists", true), []string{"s1", "s2", "s4"}},
		{"exists false", cond("schemaId", "exists", false), []string{"s3", "s5"}},
		{"exists tag (null value exists)", cond("tags.env", "exists", true), []string{"s1", "s2", "s4", "s5"}},
		{"exists tag false", cond("tags.env", "exists", false), []string{"s3"}},
		// contain, not_contain
		{"contain is case-insensitive", cond("name", "contain", "PROD"), []string{"s1", "s4"}},
		{"contain substring", cond("name", "contain", "ta"), []string{"s2", "s4"}},
		{"contain tag string", cond("tags.env", "contain", "RO"), []string{"s1", "s4"}},
		{"contain tag number never", cond("tags.tier", "contain", "1"), nil},
		{"not_contain includes missing", cond("provider", "not_contain", "a"), []string{"s2", "s3"}},
		{"not_contain name", cond("name", "not_contain", "prod"), []string{"s2", "s3", "s5"}},
		// in, not_in
		{"in", cond("provider", "in", []any{"aws", "azure"}), []string{"s1", "s4", "s5"}},
		{"in with null", cond("provider", "in", []any{"gcp", nil}), []string{"s2", "s3"}},
		{"in ignores case", cond("provider", "in", []any{"AWS", "Azure"}), []string{"s1", "s4", "s5"}},
		{"in tag strings ignore case, numbers exact", cond("tags.env", "in", []any{"PROD", 2}), []string{"s1", "s4"}},
		{"in on an exact field keeps case", cond("secretId", "in", []any{"S1", "s2"}), []string{"s2"}},
		{"in empty", cond("provider", "in", []any{}), nil},
		{"in numbers", cond("version", "in", []any{2, 3}), []string{"s2", "s3"}},
		{"in tags mixed types", cond("tags.tier", "in", []any{1, "3"}), []string{"s1", "s4"}},
		{"in times", cond("createdAt", "in", []any{"2024-01-10T12:00:00Z", "2024-03-20T12:00:00Z"}), []string{"s1", "s3"}},
		{"not_in includes missing", cond("provider", "not_in", []any{"aws", "gcp"}), []string{"s3", "s5"}},
		{"not_in with null", cond("provider", "not_in", []any{"aws", nil}), []string{"s2", "s5"}},
		{"not_in keeps case (python-core nin)", cond("provider", "not_in", []any{"AWS"}), []string{"s1", "s2", "s3", "s4", "s5"}},
		{"not_in empty", cond("provider", "not_in", []any{}), []string{"s1", "s2", "s3", "s4", "s5"}},
		// contain_in, not_contain_in
		{"contain_in any substring", cond("name", "contain_in", []any{"ALP", "silo"}), []string{"s1", "s5"}},
		{"contain_in empty", cond("name", "contain_in", []any{}), nil},
		{"not_contain_in none of them", cond("name", "not_contain_in", []any{"prod", "amm"}), []string{"s2", "s5"}},
		{"not_contain_in missing matches", cond("schemaId", "not_contain_in", []any{"aws"}), []string{"s2", "s3", "s5"}},
		// regex, regex_in
		{"regex case-insensitive", cond("name", "regex", "^[ab]"), []string{"s1", "s2"}},
		{"regex anchored end", cond("name", "regex", "prod$"), []string{"s1", "s4"}},
		{"regex tag", cond("tags.env", "regex", "^p"), []string{"s1", "s4"}},
		{"regex_in", cond("name", "regex_in", []any{"^g", "^e"}), []string{"s3", "s5"}},
		{"regex_in empty", cond("name", "regex_in", []any{}), nil},
		// match: MongoDB's $elemMatch on an array of objects
		{"match one field", cond("tags.acl", "match", map[string]any{"role": "r1"}), []string{"s2"}},
		{"match every field of one element", cond("tags.acl", "match", map[string]any{"role": "r1", "level": 2}), nil},
		{"match numbers as JSON", cond("tags.acl", "match", map[string]any{"role": "r2", "level": 2.0}), []string{"s2"}},
		{"match dotted path", cond("tags.acl", "match", map[string]any{"sub.x": true}), []string{"s2"}},
		{"match null is missing", cond("tags.acl", "match", map[string]any{"sub": nil}), []string{"s2"}},
		{"match keeps case", cond("tags.acl", "match", map[string]any{"role": "R1"}), nil},
		{"match scalars never", cond("tags.list", "match", map[string]any{"a": "a"}), nil},
		{"match non-array never", cond("tags.env", "match", map[string]any{"a": "a"}), nil},
		// datetime_*
		{"datetime_gt", cond("createdAt", "datetime_gt", "2024-03-20T12:00:00Z"), []string{"s4", "s5"}},
		{"datetime_gte", cond("createdAt", "datetime_gte", "2024-03-20T12:00:00Z"), []string{"s3", "s4", "s5"}},
		{"datetime_lt date only", cond("createdAt", "datetime_lt", "2024-02-16"), []string{"s1", "s2"}},
		{"datetime_lte with offset", cond("createdAt", "datetime_lte", "2024-01-10T13:00:00+01:00"), []string{"s1"}},
		{"datetime on updated_at", cond("updated_at", "datetime_gt", "2024-04-01"), []string{"s4", "s5"}},
		// timediff_* (now = 2024-04-03T10:30Z, a Wednesday)
		{"timediff_gt now-1h", cond("createdAt", "timediff_gt", "now-1h"), []string{"s5"}},
		{"timediff_gte now-3d", cond("createdAt", "timediff_gte", "now-3d"), []string{"s4", "s5"}},
		{"timediff_lt now-14d", cond("createdAt", "timediff_lt", "now-14d"), []string{"s1", "s2"}},
		{"timediff now/d", cond("createdAt", "timediff_gte", "now/d"), []string{"s5"}},
		{"timediff now/w (Monday)", cond("createdAt", "timediff_gte", "now/w"), []string{"s4", "s5"}},
		{"timediff now/w + 11h", cond("createdAt", "timediff_gte", "now/w + 11h"), []string{"s5"}},
		{"timediff now/d - 3d", cond("createdAt", "timediff_gte", "now/d - 3d"), []string{"s4", "s5"}},
		{"timediff now/w + 2h spaced", cond("createdAt", "timediff_lt", "now/w + 2h"), []string{"s1", "s2", "s3"}},
		{"timediff_lte now-2w", cond("createdAt", "timediff_lte", "now-2w"), []string{"s1", "s2"}},
		{"timediff now/h - 30m", cond("createdAt", "timediff_gte", "now/h-30m"), []string{"s5"}},
		{"timediff now + 1s", cond("createdAt", "timediff_lt", "NOW+1s"), []string{"s1", "s2", "s3", "s4", "s5"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := r.Secrets(context.Background(), adminD1, query.Input{Filter: []query.Filter{tc.cond}})
			require.NoError(t, err)
			ids := secretIDs(got)
			if tc.want == nil {
				tc.want = []string{}
			}
			require.Equal(t, tc.want, ids)
			require.Equal(t, len(tc.want), total)
		})
	}
}

func TestQueryCombinators(t *testing.T) {
	t.Parallel()
	pool := newQueryDB(t)
	insertSecrets(t, pool, operatorRows())
	r := newReader(pool)
	ctx := context.Background()
	run := func(q query.Input) ([]string, int) {
		t.Helper()
		got, total, err := r.Secrets(ctx, adminD1, q)
		require.NoError(t, err)
		return secretIDs(got), total
	}

	t.Run("filter ANDs, filterOr ORs then ANDs", func(t *testing.T) {
		ids, _ := run(query.Input{
			Filter:   []query.Filter{cond("version", "lte", 2)},
			FilterOr: []query.Filter{cond("provider", "eq", "gcp"), cond("name", "contain", "delta")},
		})
		require.Equal(t, []string{"s2", "s4"}, ids)
	})
	t.Run("filterOr alone", func(t *testing.T) {
		ids, _ := run(query.Input{FilterOr: []query.Filter{cond("name", "eq", "gamma"), cond("tags.env", "eq", "dev")}})
		require.Equal(t, []string{"s2", "s3"}, ids)
	})
	t.Run("keyword: any word in any of id, name, schemaId, provider", func(t *testing.T) {
		ids, _ := run(query.Input{Keyword: "PROD aws"})
		require.Equal(t, []string{"s1", "s4"}, ids)
		ids, _ = run(query.Input{Keyword: "alpha STAGING"}) // issue 10: any word, not every word
		require.Equal(t, []string{"s1"}, ids)
		ids, _ = run(query.Input{Keyword: " gamma  BETA "})
		require.Equal(t, []string{"s2", "s3"}, ids)
		ids, _ = run(query.Input{Keyword: "gcp_"})
		require.Equal(t, []string{"s2"}, ids)
		ids, _ = run(query.Input{Keyword: "s3"})
		require.Equal(t, []string{"s3"}, ids)
		ids, _ = run(query.Input{Keyword: "  "})
		require.Len(t, ids, 5)
	})
	t.Run("keyword joins filterOr, as python-core appends it there", func(t *testing.T) {
		ids, _ := run(query.Input{Keyword: "gamma", FilterOr: []query.Filter{cond("provider", "eq", "gcp")}})
		require.Equal(t, []string{"s2", "s3"}, ids)
		ids, _ = run(query.Input{Keyword: "gamma", Filter: []query.Filter{cond("version", "lte", 2)}})
		require.Empty(t, ids)
	})
	t.Run("sort by several keys, nulls lowest", func(t *testing.T) {
		ids, _ := run(query.Input{Sort: []query.SortKey{{Key: "provider"}, {Key: "version", Desc: true}}})
		require.Equal(t, []string{"s3", "s4", "s1", "s5", "s2"}, ids)
		ids, _ = run(query.Input{Sort: []query.SortKey{{Key: "provider", Desc: true}, {Key: "version"}}})
		require.Equal(t, []string{"s2", "s5", "s1", "s4", "s3"}, ids)
	})
	t.Run("sort ties break on the id, in the last key's direction", func(t *testing.T) {
		ids, _ := run(query.Input{Sort: []query.SortKey{{Key: "version"}}})
		require.Equal(t, []string{"s1", "s4", "s2", "s3", "s5"}, ids)
		ids, _ = run(query.Input{Sort: []query.SortKey{{Key: "version", Desc: true}}})
		require.Equal(t, []string{"s5", "s3", "s2", "s4", "s1"}, ids)
	})
	t.Run("sort by tag: missing, then null, strings, numbers, booleans", func(t *testing.T) {
		ids, _ := run(query.Input{Sort: []query.SortKey{{Key: "tags.tier"}}})
		require.Equal(t, []string{"s3", "s5", "s4", "s1", "s2"}, ids)
	})
	t.Run("sort by time, cloudforet name", func(t *testing.T) {
		ids, _ := run(query.Input{Sort: []query.SortKey{{Key: "created_at", Desc: true}}})
		require.Equal(t, []string{"s5", "s4", "s3", "s2", "s1"}, ids)
	})
	t.Run("page counts before paging", func(t *testing.T) {
		q := query.Input{Sort: []query.SortKey{{Key: "name"}}, Page: query.Page{Start: 2, Limit: 2}}
		ids, total := run(q)
		require.Equal(t, []string{"s2", "s4"}, ids)
		require.Equal(t, 5, total)
		q.Page = query.Page{Start: 5, Limit: 10}
		ids, total = run(q)
		require.Equal(t, []string{"s3"}, ids)
		require.Equal(t, 5, total)
		q.Page = query.Page{Start: 9, Limit: 1}
		ids, total = run(q)
		require.Empty(t, ids)
		require.Equal(t, 5, total)
		q.Page = query.Page{Start: 4}
		ids, _ = run(q)
		require.Equal(t, []string{"s5", "s3"}, ids)
	})
	t.Run("countOnly", func(t *testing.T) {
		ids, total := run(query.Input{CountOnly: true, Filter: []query.Filter{cond("provider", "eq", "aws")}})
		require.Empty(t, ids)
		require.Equal(t, 2, total)
	})
	t.Run("only and minimal narrow the answer", func(t *testing.T) {
		got, _, err := r.Secrets(ctx, adminD1, query.Input{Only: []string{"name", "schema_id", "tags.env"}})
		require.NoError(t, err)
		require.Len(t, got, 5)
		s1 := got[0]
		require.Equal(t, "s1", s1.SecretID, "the id always answers")
		require.Equal(t, "Alpha-Prod", *s1.NameOrNull())
		require.Equal(t, "aws_access_key", *s1.SchemaID)
		require.Equal(t, "prod", s1.Tags["env"], "tags.env answers the tags")
		require.Nil(t, s1.Provider)
		require.Nil(t, s1.WorkspaceID)
		require.Nil(t, s1.VersionOrNull())
		require.Nil(t, s1.CreatedAtOrNull())

		got, _, err = r.Secrets(ctx, adminD1, query.Input{Minimal: true})
		require.NoError(t, err)
		require.Equal(t, "aws", *got[0].Provider)
		require.Equal(t, "Alpha-Prod", *got[0].NameOrNull())
		require.Nil(t, got[0].Tags)
		require.Nil(t, got[0].DomainIDOrNull())

		got, _, err = r.Secrets(ctx, adminD1, query.Input{Minimal: true, Only: []string{"version"}}) // a union
		require.NoError(t, err)
		require.Equal(t, int64(1), *got[0].VersionOrNull())
		require.Equal(t, "aws", *got[0].Provider)
		require.Nil(t, got[0].UpdatedByOrNull())

		got, _, err = r.Secrets(ctx, adminD1, query.Input{})
		require.NoError(t, err)
		require.Equal(t, "d1", *got[0].DomainIDOrNull(), "without only or minimal, every field")

		_, _, err = r.Secrets(ctx, adminD1, query.Input{Only: []string{"name", "colour"}})
		requireQueryError(t, err, "only", `"colour"`)
	})
	t.Run("user secrets share the translator", func(t *testing.T) {
		insertUserSecrets(t, pool, []userSecretRow{
			{ID: "u1", Name: "mine", Provider: sp("aws"), Domain: "d1", User: "bob", Version: 1, CreatedAt: queryNow, Tags: map[string]any{"k": "v"}},
			{ID: "u2", Name: "other", Domain: "d1", User: "bob", Version: 2, CreatedAt: queryNow.Add(-time.Hour)},
			{ID: "u3", Name: "carol's", Domain: "d1", User: "carol", Version: 1, CreatedAt: queryNow},
		})
		bob := auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "bob"}
		got, total, err := r.UserSecrets(ctx, bob, query.Input{
			FilterOr: []query.Filter{cond("tags.k", "eq", "v"), cond("user_id", "eq", "carol"), cond("version", "gte", 2)},
			Sort:     []query.SortKey{{Key: "createdAt", Desc: true}}})
		require.NoError(t, err)
		require.Equal(t, 2, total)
		require.Equal(t, "u1", got[0].UserSecretID)
		require.Equal(t, "u2", got[1].UserSecretID)
		_, _, err = r.UserSecrets(ctx, bob, query.Input{Filter: []query.Filter{cond("workspaceId", "eq", "w1")}})
		requireQueryError(t, err, `"workspaceId"`)
	})
}

// TestQueryMalformed: every malformed list query is a QueryError (the API's
// INVALID_ARGUMENT) naming what is wrong, never an internal error.
func TestQueryMalformed(t *testing.T) {
	t.Parallel()
	pool := newQueryDB(t)
	insertSecrets(t, pool, operatorRows())
	r := newReader(pool)
	cases := []struct {
		name string
		q    query.Input
		want []string
	}{
		{"unknown key", query.Input{Filter: []query.Filter{cond("colour", "eq", "x")}}, []string{`"colour"`}},
		{"empty tag name", query.Input{Filter: []query.Filter{cond("tags.", "eq", "x")}}, []string{`"tags."`}},
		{"unknown operator", query.Input{Filter: []query.Filter{cond("name", "like", "x")}}, []string{`"like"`, `"name"`}},
		{"unknown operator in filterOr", query.Input{FilterOr: []query.Filter{cond("name", "elem_match", "x")}}, []string{`"elem_match"`}},
		{"match on a text key", query.Input{Filter: []query.Filter{cond("name", "match", map[string]any{"a": 1})}}, []string{`"match"`, `"name"`}},
		{"match needs an object", query.Input{Filter: []query.Filter{cond("tags.acl", "match", "x")}}, []string{`"match"`, "object"}},
		{"match empty object", query.Input{Filter: []query.Filter{cond("tags.acl", "match", map[string]any{})}}, []string{`"match"`, "object"}},
		{"match with a query operator", query.Input{Filter: []query.Filter{cond("tags.acl", "match", map[string]any{"level": map[string]any{"$gt": 1}})}}, []string{`"level"`, "equality"}},
		{"list operator without a list", query.Input{Filter: []query.Filter{cond("name", "in", "x")}}, []string{`"in"`, "list"}},
		{"single operator with a list", query.Input{Filter: []query.Filter{cond("name", "eq", []any{"x"})}}, []string{`"eq"`, "not a list"}},
		{"contain with a list", query.Input{Filter: []query.Filter{cond("name", "contain", []any{"x"})}}, []string{`"contain"`}},
		{"text key with a number", query.Input{Filter: []query.Filter{cond("name", "eq", 5)}}, []string{`"name"`, "string"}},
		{"number key with text", query.Input{Filter: []query.Filter{cond("version", "gt", "two")}}, []string{`"version"`, "number"}},
		{"number key with bool", query.Input{Filter: []query.Filter{cond("version", "eq", true)}}, []string{`"version"`}},
		{"time key with garbage", query.Input{Filter: []query.Filter{cond("createdAt", "gt", "yesterday")}}, []string{`"createdAt"`, "ISO 8601"}},
		{"time key with a number", query.Input{Filter: []query.Filter{cond("createdAt", "eq", 5)}}, []string{`"createdAt"`}},
		{"in item of wrong type", query.Input{Filter: []query.Filter{cond("provider", "in", []any{"aws", 1})}}, []string{`"provider"`}},
		{"in nested list", query.Input{Filter: []query.Filter{cond("provider", "in", []any{[]any{"aws"}})}}, []string{`"provider"`}},
		{"exists needs a bool", query.Input{Filter: []query.Filter{cond("name", "exists", "yes")}}, []string{`"exists"`, "true or false"}},
		{"contain on a number", query.Input{Filter: []query.Filter{cond("version", "contain", "1")}}, []string{`"contain"`, `"version"`}},
		{"contain needs a string", query.Input{Filter: []query.Filter{cond("name", "contain", 1)}}, []string{`"contain"`}},
		{"regex needs a string", query.Input{Filter: []query.Filter{cond("name", "regex", true)}}, []string{`"regex"`}},
		{"regex on a time", query.Input{Filter: []query.Filter{cond("createdAt", "regex", "2024")}}, []string{`"regex"`}},
		{"invalid regex", query.Input{Filter: []query.Filter{cond("name", "regex", "(unclosed")}}, []string{"regular expression", `"name"`}},
		{"invalid regex in regex_in", query.Input{Filter: []query.Filter{cond("provider", "regex_in", []any{"ok", "a{2,1}"})}}, []string{"regular expression", `"provider"`}},
		{"datetime on a text key", query.Input{Filter: []query.Filter{cond("name", "datetime_gt", "2024-01-01")}}, []string{`"datetime_gt"`, `"name"`}},
		{"datetime not ISO", query.Input{Filter: []query.Filter{cond("createdAt", "datetime_gt", "01/02/2024")}}, []string{"ISO 8601"}},
		{"timediff not an expression", query.Input{Filter: []query.Filter{cond("createdAt", "timediff_gt", "yesterday")}}, []string{`"timediff_gt"`, "now"}},
		{"timediff bad unit", query.Input{Filter: []query.Filter{cond("createdAt", "timediff_gt", "now-1y")}}, []string{"units"}},
		{"timediff bad rounding", query.Input{Filter: []query.Filter{cond("createdAt", "timediff_gt", "now/y")}}, []string{"now/y"}},
		{"timediff not a string", query.Input{Filter: []query.Filter{cond("createdAt", "timediff_gt", 5)}}, []string{`"timediff_gt"`}},
		{"timediff on a text key", query.Input{Filter: []query.Filter{cond("name", "timediff_gt", "now")}}, []string{`"name"`}},
		{"compare with null", query.Input{Filter: []query.Filter{cond("name", "lt", nil)}}, []string{`"lt"`}},
		{"compare tag with an object", query.Input{Filter: []query.Filter{cond("tags.env", "gt", map[string]any{})}}, []string{`"tags.env"`}},
		{"sort by unknown key", query.Input{Sort: []query.SortKey{{Key: "colour"}}}, []string{`"colour"`}},
		{"sort with empty key", query.Input{Sort: []query.SortKey{{Key: ""}}}, []string{"sort"}},
		{"negative page", query.Input{Page: query.Page{Start: -1}}, []string{"page"}},
		{"user secret key on secrets", query.Input{Filter: []query.Filter{cond("userId", "eq", "x")}}, []string{`"userId"`}},
		// SQL injection: keys and sort keys are looked up, never spliced.
		{"injection in key", query.Input{Filter: []query.Filter{cond("name; DROP TABLE secrets; --", "eq", "x")}}, []string{"unknown key"}},
		{"injection in key quote", query.Input{Filter: []query.Filter{cond(`name" = name OR "1"="1`, "eq", "x")}}, []string{"unknown key"}},
		{"injection in sort key", query.Input{Sort: []query.SortKey{{Key: "name DESC, (SELECT pg_sleep(10))"}}}, []string{"unknown key"}},
		{"injection in sort key 2", query.Input{Sort: []query.SortKey{{Key: "1; DELETE FROM secrets"}}}, []string{"unknown key"}},
		{"injection in operator", query.Input{Filter: []query.Filter{cond("name", "eq' OR 1=1 --", "x")}}, []string{"unknown operator"}},
		{"too many values", query.Input{Filter: []query.Filter{cond("name", "in", manyStrings(maxTestParams))}}, []string{"too large"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := r.Secrets(context.Background(), adminD1, tc.q)
			requireQueryError(t, err, tc.want...)
		})
	}
	// Values, tag names and keywords are bound: hostile text is only data.
	hostile := []string{`x' OR '1'='1`, `'; DROP TABLE secrets; --`, `\'; SELECT pg_sleep(5); --`, `$1`, `%`, `\\x`, `") OR true --`}
	for _, h := range hostile {
		for _, q := range []query.Input{
			{Filter: []query.Filter{cond("name", "eq", h)}},
			{Filter: []query.Filter{cond("name", "contain", h)}},
			{Filter: []query.Filter{cond("name", "not", h)}},
			{Filter: []query.Filter{cond("tags."+h, "eq", h)}},
			{Filter: []query.Filter{cond("tags."+h, "exists", true)}},
			{Filter: []query.Filter{cond("name", "in", []any{h, h + "2"})}},
			{Sort: []query.SortKey{{Key: "tags." + h}}},
			{Keyword: h},
		} {
			got, total, err := r.Secrets(context.Background(), adminD1, q)
			require.NoError(t, err, "%+v", q)
			if q.Filter != nil && q.Filter[0].Op == "not" || len(q.Sort) > 0 {
				require.Equal(t, 5, total)
				continue
			}
			require.Zero(t, total, "%+v", q)
			require.Empty(t, got)
		}
	}
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM secrets`).Scan(&n))
	require.Equal(t, 5, n, "the table is intact")
}

const maxTestParams = 10001

func manyStrings(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprint(i)
	}
	return out
}

func TestMain(m *testing.M) { pgtest.Main(m) }
