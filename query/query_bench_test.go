package query_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"os"
	"slices"
	"strings"
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

// benchRows is the size of the benchmark's read model.
const benchRows = 1_000_000

// seedBenchSecretsSQL fills the secrets read model in bulk, straight in SQL
// (an index benchmark needs rows, not events): 60% of the rows in domain
// d0, the rest over d1..d8; 50 workspaces of 20 projects; six providers
// (one missing); tags env, team (100 values) and cost; creation times over
// two years. Values come from hashes of the row number, so both databases
// get the same rows and no column is correlated with the id.
const seedBenchSecretsSQL = `
INSERT INTO secrets (secret_id, name, schema_id, provider, tags, resource_group, domain_id, workspace_id, project_id,
	version, stream_version, created_by, updated_by, created_at, updated_at)
SELECT 'secret-' || substr(md5('id' || g), 1, 12),
	'secret-' || substr(md5('name' || g), 1, 10),
	CASE WHEN p.provider IS NULL THEN NULL ELSE p.provider || '_key_' || (h4 % 3) END,
	p.provider,
	jsonb_build_object('env', (ARRAY['prod', 'dev', 'stage'])[1 + h2 % 3], 'team', 't' || (h3 / 6 % 100), 'cost', h4 / 3 % 1000),
	rg,
	CASE WHEN h1 % 10 < 6 THEN 'd0' ELSE 'd' || (1 + h2 % 8) END,
	CASE WHEN rg = 'DOMAIN' THEN NULL ELSE 'w' || (h6 % 50) END,
	CASE WHEN rg = 'PROJECT' THEN 'w' || (h6 % 50) || '-p' || (h5 / 10 % 20) END,
	1 + h6 / 50 % 5, 1 + h6 / 50 % 5, 'admin', 'admin', c, c + interval '1 hour'
FROM generate_series(1, $1::int) g,
	LATERAL (SELECT abs(hashint4(g)) AS h1, abs(hashint4(g + 7919)) AS h2, abs(hashint4(g + 104729)) AS h3,
		abs(hashint4(g + 1299709)) AS h4, abs(hashint4(g + 15485863)) AS h5, abs(hashint4(g + 49979687)) AS h6,
		abs(hashint4(g + 86028121)) AS h7) h,
	LATERAL (SELECT (ARRAY['aws', 'gcp', 'azure', 'oci', 'ibm', NULL])[1 + h3 % 6] AS provider,
		CASE WHEN h5 % 10 = 0 THEN 'DOMAIN' WHEN h5 % 10 < 4 THEN 'WORKSPACE' ELSE 'PROJECT' END AS rg,
		timestamptz '2024-04-03 10:30:00+00' - make_interval(secs => h7 % (730 * 86400)) AS c) p`

type benchDB struct {
	name string
	pool *pgxpool.Pool
	r    *projections.Reader
}

// newBenchDB makes a database with benchRows secrets. indexed keeps the
// read model's indexes (taken from the migrated schema, dropped for the
// load and built after it); otherwise only the primary key remains.
func newBenchDB(b *testing.B, indexed bool) benchDB {
	ctx := context.Background()
	url := pgtest.NewDatabase(b)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(b, err)
	defer conn.Close(ctx)
	_, err = projections.Migrate(ctx, conn)
	require.NoError(b, err)
	rows, err := conn.Query(ctx, `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'secrets' AND indexname <> 'secrets_pkey'`)
	require.NoError(b, err)
	var names, defs []string
	for rows.Next() {
		var n, d string
		require.NoError(b, rows.Scan(&n, &d))
		names, defs = append(names, n), append(defs, d)
	}
	require.NoError(b, rows.Err())
	require.NotEmpty(b, defs)
	for _, n := range names {
		_, err := conn.Exec(ctx, `DROP INDEX `+pgx.Identifier{n}.Sanitize())
		require.NoError(b, err)
	}
	start := time.Now()
	_, err = conn.Exec(ctx, seedBenchSecretsSQL, benchRows)
	require.NoError(b, err)
	loaded := time.Since(start)
	if indexed {
		start = time.Now()
		for _, d := range defs {
			_, err := conn.Exec(ctx, d)
			require.NoError(b, err)
		}
		b.Logf("indexed: loaded %d rows in %v, built %d indexes in %v", benchRows, loaded.Round(time.Millisecond), len(defs), time.Since(start).Round(time.Millisecond))
	} else {
		b.Logf("unindexed: loaded %d rows in %v (primary key only)", benchRows, loaded.Round(time.Millisecond))
	}
	_, err = conn.Exec(ctx, `VACUUM ANALYZE secrets`)
	require.NoError(b, err)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	name := "unindexed"
	if indexed {
		name = "indexed"
	}
	return benchDB{name: name, pool: pool, r: newReader(pool)}
}

type benchQuery struct {
	name string
	id   auth.Identity
	list *query.Input
	stat map[string]any
}

func benchQueries() []benchQuery {
	admin := auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d0", UserID: "admin"}
	owner := auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "d0", WorkspaceID: "w3", UserID: "owner"}
	member := auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: "d0", WorkspaceID: "w3", Projects: []string{"w3-p1", "w3-p2"}, UserID: "member"}
	page := query.Page{Limit: 20}
	l := func(q query.Input) *query.Input { q.Page = page; return &q }
	return []benchQuery{
		{name: "list/first page", id: admin, list: l(query.Input{})},
		{name: "list/sort name", id: admin, list: l(query.Input{Sort: []query.SortKey{{Key: "name"}}})},
		{name: "list/sort createdAt desc", id: admin, list: l(query.Input{Sort: []query.SortKey{{Key: "createdAt", Desc: true}}})},
		{name: "list/name eq", id: admin, list: l(query.Input{Filter: []query.Filter{cond("name", "eq", "secret-"+fmt.Sprintf("%x", md5.Sum([]byte("name1")))[:10])}})},
		{name: "list/provider+schemaId", id: admin, list: l(query.Input{Filter: []query.Filter{
			cond("provider", "eq", "aws"), cond("schemaId", "eq", "aws_key_1")}, Sort: []query.SortKey{{Key: "name"}}})},
		{name: "list/schemaId in", id: admin, list: l(query.Input{Filter: []query.Filter{cond("schema_id", "in", []any{"gcp_key_2", "oci_key_0"})}})},
		{name: "list/workspace+project", id: admin, list: l(query.Input{Filter: []query.Filter{
			cond("workspaceId", "eq", "w7"), cond("projectId", "eq", "w7-p3")}})},
		{name: "list/tag eq", id: admin, list: l(query.Input{Filter: []query.Filter{cond("tags.team", "eq", "t42")}})},
		{name: "list/tags eq + sort createdAt", id: admin, list: l(query.Input{Filter: []query.Filter{
			cond("tags.team", "eq", "t42"), cond("tags.cost", "eq", 7)}, Sort: []query.SortKey{{Key: "createdAt", Desc: true}}})},
		{name: "list/workspace + tags.env (1/3 of rows), sort createdAt desc", id: admin, list: l(query.Input{Filter: []query.Filter{
			cond("workspaceId", "eq", "w7"), cond("tags.env", "eq", "PROD")}, Sort: []query.SortKey{{Key: "createdAt", Desc: true}}})},
		{name: "list/created last 7 days", id: admin, list: l(query.Input{Filter: []query.Filter{cond("createdAt", "timediff_gt", "now-7d")},
			Sort: []query.SortKey{{Key: "createdAt", Desc: true}}})},
		{name: "list/name contain (no index)", id: admin, list: l(query.Input{Filter: []query.Filter{cond("name", "contain", "abc1")}})},
		{name: "list/keyword (no index)", id: admin, list: l(query.Input{Keyword: "aws_key_2 f00"})},
		{name: "list/owner scope sort name", id: owner, list: l(query.Input{Sort: []query.SortKey{{Key: "name"}}})},
		{name: "list/member scope provider", id: member, list: l(query.Input{Filter: []query.Filter{cond("provider", "eq", "gcp")}})},
		{name: "stat/count provider=aws", id: admin, stat: map[string]any{"filter": []any{map[string]any{"k": "provider", "v": "aws"}},
			"aggregate": []any{map[string]any{"count": map[string]any{"name": "n"}}}}},
		{name: "stat/group workspace, schema filter", id: admin, stat: map[string]any{"filter": []any{map[string]any{"k": "schemaId", "v": "azure_key_0"}},
			"aggregate": []any{map[string]any{"group": map[string]any{"keys": []any{map[string]any{"key": "workspaceId"}},
				"fields": []any{map[string]any{"operator": "count", "name": "n"}}}}, map[string]any{"sort": []any{map[string]any{"key": "n", "desc": true}}},
				map[string]any{"limit": 5}}}},
		{name: "stat/month histogram, last 90 days", id: admin, stat: map[string]any{
			"filter": []any{map[string]any{"k": "createdAt", "v": "now/d-90d", "o": "timediff_gte"}},
			"aggregate": []any{map[string]any{"group": map[string]any{"keys": []any{map[string]any{"key": "createdAt", "name": "month", "date_format": "%Y-%m"}},
				"fields": []any{map[string]any{"operator": "count", "name": "n"}}}}}}},
		{name: "stat/group provider, whole domain", id: admin, stat: map[string]any{"aggregate": []any{map[string]any{"group": map[string]any{
			"keys": []any{map[string]any{"key": "provider"}}, "fields": []any{map[string]any{"operator": "count", "name": "n"}}}}}}},
	}
}

// BenchmarkQuery1M runs list and stat queries on 1,000,000 secrets, on the
// indexed read model and on an unindexed copy of the same rows, and logs
// p50 latencies and the ratio. It only runs with -bench, e.g.
//
//	go test ./query/ -run '^$' -bench Query1M -benchtime 20x
//
// Set BENCH_EXPLAIN=1 to log each query's plan on the indexed database.
func BenchmarkQuery1M(b *testing.B) {
	dbs := []benchDB{newBenchDB(b, true), newBenchDB(b, false)}
	ctx := context.Background()
	p50 := map[string]time.Duration{}
	queries := benchQueries()
	for _, q := range queries {
		for _, db := range dbs {
			run := func() error {
				if q.list != nil {
					_, _, err := db.r.Secrets(ctx, q.id, *q.list)
					return err
				}
				_, err := db.r.Stat(ctx, q.id, projections.SecretResource, q.stat)
				return err
			}
			require.NoError(b, run()) // warm up
			b.Run(q.name+"/"+db.name, func(b *testing.B) {
				var times []time.Duration
				for b.Loop() {
					start := time.Now()
					if err := run(); err != nil {
						b.Fatal(err)
					}
					times = append(times, time.Since(start))
				}
				slices.Sort(times)
				p := times[len(times)/2]
				p50[q.name+"/"+db.name] = p
				b.ReportMetric(float64(p.Microseconds())/1000, "p50-ms")
			})
		}
		if os.Getenv("BENCH_EXPLAIN") != "" && q.list != nil {
			explainList(b, dbs[0].pool, q)
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-40s %12s %12s %8s\n", "query (1,000,000 secrets)", "indexed p50", "no-index p50", "speedup")
	for _, q := range queries {
		in, out := p50[q.name+"/indexed"], p50[q.name+"/unindexed"]
		if in > 0 {
			fmt.Fprintf(&sb, "%-40s %12v %12v %7.1fx\n", q.name, in.Round(10*time.Microsecond), out.Round(10*time.Microsecond), float64(out)/float64(in))
		}
	}
	b.Log(sb.String())
}

// explainList logs the plan of a list query's page on pool.
func explainList(b *testing.B, pool *pgxpool.Pool, q benchQuery) {
	parsed, err := query.ParseList(&projections.SecretResource, *q.list, query.DefaultLimits(), queryNow)
	require.NoError(b, err)
	compiled, err := parsed.SQL(q.id, "*")
	require.NoError(b, err)
	sql, args := compiled.Rows, compiled.Args
	rows, err := pool.Query(context.Background(), "EXPLAIN (ANALYZE, COSTS OFF) "+sql, args...)
	require.NoError(b, err)
	var plan []string
	for rows.Next() {
		var line string
		require.NoError(b, rows.Scan(&line))
		plan = append(plan, line)
	}
	require.NoError(b, rows.Err())
	b.Logf("%s:\n%s\n%s", q.name, sql, strings.Join(plan, "\n"))
}
