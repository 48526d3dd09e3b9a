package projections_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/projections"
	"github.com/secretlog/secretlog/query"
)

// indexDefs are the read models' indexes with their definitions.
func indexDefs(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT indexname || ': ' || indexdef FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename = ANY ($1) ORDER BY 1`, readModelTables())
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

func migrated(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(ctx) })
	require.NoError(t, events.Migrate(ctx, conn))
	_, err = projections.Migrate(ctx, conn)
	require.NoError(t, err)
	return conn
}

// TestMigrateCaseInsensitiveIndexes: a database whose read models have the
// exact tags indexes (the schema before eq and in ignored case) gets the
// indexes a new database has, keeping its rows without a replay.
func TestMigrateCaseInsensitiveIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	want := indexDefs(t, migrated(t))
	folded := 0
	for _, d := range want {
		if strings.Contains(d, "secretlog_fold_tags(tags)") {
			folded++
		}
	}
	require.Equal(t, 3, folded, "the tags of secrets, user secrets and trusted secrets are indexed folded:\n%s", strings.Join(want, "\n"))

	conn := migrated(t)
	_, err := conn.Exec(ctx, `
DROP INDEX secrets_domain_name_folded, secrets_domain_provider_folded, secrets_domain_schema_folded,
	secrets_tags_folded, user_secrets_tags_folded, trusted_secrets_domain_name_folded, trusted_secrets_tags_folded;
DROP FUNCTION secretlog_fold_tags(jsonb);
CREATE INDEX secrets_tags ON secrets USING gin (tags jsonb_path_ops);
CREATE INDEX user_secrets_tags ON user_secrets USING gin (tags jsonb_path_ops);
CREATE INDEX trusted_secrets_tags ON trusted_secrets USING gin (tags jsonb_path_ops);
INSERT INTO secrets (secret_id, name, tags, resource_group, domain_id, version, stream_version, created_by, updated_by, created_at, updated_at)
VALUES ('s1', 'Alpha', '{"env": "Prod"}', 'DOMAIN', 'd1', 1, 1, 'a', 'a', now(), now());
UPDATE schema_version_projections SET version = version - 1;`)
	require.NoError(t, err)
	replay, err := projections.Migrate(ctx, conn)
	require.NoError(t, err)
	require.False(t, replay, "the rows stay: nothing to replay")
	require.Equal(t, want, indexDefs(t, conn))
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM secrets WHERE `+query.FoldedTags+` @> '{"env": "prod"}'`).Scan(&n))
	require.Equal(t, 1, n)
}
