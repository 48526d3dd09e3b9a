package query_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/projections"
	"github.com/secretlog/secretlog/query"
)

// foldRows are tag documents where lower() of the whole document and of
// each value could disagree: keys that differ only in case, escapes,
// letters outside ASCII, values of every JSON type, and documents lower()
// leaves as they are.
func foldRows() []secretRow {
	docs := []map[string]any{
		{"env": "prod"},
		{"env": "Prod"},
		{"env": "PROD", "Env": "dev"},
		{"Env": "PROD", "env": "dev"},
		{"ENV": "prod", "env": "Dev"},
		{"ENV": "PROD", "env": "PROD", "Env": "Prod"},
		{"env": `pr"od`},
		{"env": `PR"OD \`},
		{"env": "Pro\nd"},
		{"env": "\tPROD\u0001"},
		{"env": "Ünïcode Σ"},
		{"env": "ünïcode σ"},
		{"env": "İstanbul"},
		{"env": 7},
		{"env": "7"},
		{"env": true},
		{"env": nil},
		{"env": []any{"prod"}},
		{"env": map[string]any{"prod": "prod"}},
		{},
		{"team": "Prod", "env": "x"},
		{`e"nv`: "PROD"},
		{"env": "dev", "team": "core", "tier": 1},
	}
	rows := make([]secretRow, len(docs))
	for i, tags := range docs {
		rows[i] = secretRow{ID: fmt.Sprintf("f%02d", i), Name: fmt.Sprintf("f%02d", i), Group: "DOMAIN", Domain: "d1",
			Version: 1, Tags: tags, CreatedAt: queryNow}
	}
	return rows
}

// TestFoldedTagsPrefilter: eq and in on a tag answer exactly what the
// case-insensitive comparison alone answers (PostgreSQL's lower(), not a
// model of it): the containment test on the folded tags that comes first,
// for the GIN index, never loses a row. Sequential scans are off, so the
// index answers it.
func TestFoldedTagsPrefilter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newQueryDB(t)
	_, err := pool.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET enable_seqscan = off', current_database()); END $$`)
	require.NoError(t, err)
	pool.Reset() // new connections take the setting
	insertSecrets(t, pool, foldRows())
	r := newReader(pool)
	reference := func(key string, v any) []string {
		var sql string
		if _, ok := v.(string); ok {
			sql = `SELECT secret_id FROM secrets WHERE jsonb_typeof(tags -> $1::text) = 'string' AND lower(tags ->> $1::text) = lower($2::text)`
		} else {
			sql = `SELECT secret_id FROM secrets WHERE tags -> $1::text = to_jsonb($2::` + map[bool]string{true: "int", false: "boolean"}[isInt(v)] + `)`
		}
		rows, err := pool.Query(ctx, sql+` ORDER BY secret_id`, key, v)
		require.NoError(t, err)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return ids
	}
	list := func(c query.Filter) []string {
		got, total, err := r.Secrets(ctx, adminD1, query.Input{Filter: []query.Filter{c}, Page: query.Page{Limit: 100}})
		require.NoError(t, err)
		require.Len(t, got, total)
		return secretIDs(got)
	}
	var plan []string
	rows, err := pool.Query(ctx, `EXPLAIN (COSTS OFF) SELECT 1 FROM secrets WHERE `+query.FoldedTags+` @> '{"env": "prod"}'`)
	require.NoError(t, err)
	plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, strings.Join(plan, "\n"), "secrets_tags_folded", "the folded tags are indexed")

	values := []any{"prod", "PROD", "Prod", "dev", "DEV", "x", `pr"od`, `PR"od`, `pr"od \`, "pro\nd", "\tprod\u0001",
		"ünïcode σ", "ÜNÏCODE Σ", "Ünïcode Σ", "İstanbul", "istanbul", "7", 7, true, false, "core"}
	matched := 0
	for _, key := range []string{"env", "Env", "ENV", "team", `e"nv`, "tier", "absent"} {
		union := []string{}
		for _, v := range values {
			want := reference(key, v)
			require.Equal(t, want, list(cond("tags."+key, "eq", v)), "tags.%s eq %q", key, v)
			matched += len(want)
			for _, id := range want {
				if !slices.Contains(union, id) {
					union = append(union, id)
				}
			}
		}
		slices.Sort(union)
		require.Equal(t, union, list(cond("tags."+key, "in", values)), "tags.%s in every value", key)
	}
	require.Greater(t, matched, 20)
}

func isInt(v any) bool { _, ok := v.(int); return ok }

// TestFoldedIndexesServeQueries: the conditions eq and in compile to on
// name, provider, schemaId and tags are the expressions the read model's
// indexes are built on, so PostgreSQL answers them from those indexes. No
// timing: only which index the plan names, on a table where a sequential
// scan would cost far more.
func TestFoldedIndexesServeQueries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = projections.Migrate(ctx, conn)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, seedBenchSecretsSQL, 20000)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `VACUUM ANALYZE secrets`)
	require.NoError(t, err)
	admin := auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d0", UserID: "admin"}
	for _, tc := range []struct {
		filter []query.Filter
		index  string
	}{
		{[]query.Filter{cond("name", "eq", "SECRET-0123456789")}, "secrets_domain_name_folded"},
		{[]query.Filter{cond("name", "in", []any{"Secret-0123456789", "secret-abc"})}, "secrets_domain_name_folded"},
		{[]query.Filter{cond("provider", "eq", "AWS"), cond("schemaId", "eq", "Aws_Key_1")}, "secrets_domain_provider_folded"},
		{[]query.Filter{cond("schema_id", "in", []any{"GCP_key_2", "oci_key_0"})}, "secrets_domain_schema_folded"},
		{[]query.Filter{cond("tags.team", "eq", "T42")}, "secrets_tags_folded"},
		{[]query.Filter{cond("tags.team", "in", []any{"T42", "t43", 7})}, "secrets_tags_folded"},
		{[]query.Filter{cond("tags.cost", "eq", 7)}, "secrets_tags_folded"},
	} {
		q, err := query.ParseList(&projections.SecretResource, query.Input{Filter: tc.filter}, query.DefaultLimits(), queryNow)
		require.NoError(t, err)
		sq, err := q.SQL(admin, "secret_id")
		require.NoError(t, err)
		rows, err := conn.Query(ctx, `EXPLAIN (COSTS OFF) `+sq.Count, sq.CountArgs...)
		require.NoError(t, err)
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Contains(t, strings.Join(plan, "\n"), tc.index, "%+v:\n%s\n%s", tc.filter, sq.Count, strings.Join(plan, "\n"))
	}
}

// Unused parameters fail a statement: a condition that binds a hint must
// use it. Here with values that get none (null, arrays) next to those that
// do.
func TestFoldedHintParameters(t *testing.T) {
	t.Parallel()
	pool := newQueryDB(t)
	insertSecrets(t, pool, foldRows())
	r := newReader(pool)
	for _, c := range []query.Filter{
		cond("tags.env", "in", []any{"PROD", nil, 7}),
		cond("tags.env", "in", []any{"PROD", []any{"prod"}}),
		cond("tags.env", "in", []any{nil}),
		cond("tags.env", "in", []any{}),
		cond("tags.env", "not", "PROD"),
		cond("tags.env", "not_in", []any{"PROD", 7}),
		cond("tags.env", "eq", map[string]any{"prod": "prod"}),
	} {
		_, _, err := r.Secrets(context.Background(), adminD1, query.Input{Filter: []query.Filter{c}})
		require.NoError(t, err, "%+v", c)
	}
}
