package events

import (
	"context"
	"io/fs"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/localpg/pgtest"
)

// TestMigrationBackfillsKeyNames: data keys stored before data_keys had
// kms_key_id take the name their resource's creating event chose.
func TestMigrationBackfillsKeyNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	sub, _ := fs.Sub(migrations, "migrations")
	m, err := migrate.NewMigrator(ctx, conn, "schema_version_events")
	require.NoError(t, err)
	require.NoError(t, m.LoadMigrations(sub))
	require.NoError(t, m.MigrateTo(ctx, 1))

	for _, e := range []struct{ stream, typ, data string }{
		{"secret-named", "SecretCreated.v1", `{"secret_id":"secret-named","kms_key_id":"app"}`},
		{"secret-plain", "SecretCreated.v1", `{"secret_id":"secret-plain"}`},
		{"user-secret-named", "UserSecretCreated.v1", `{"user_secret_id":"user-secret-named","kms_key_id":"tenant"}`},
	} {
		_, err := conn.Exec(ctx, `INSERT INTO event_log (event_id, stream_id, version, type, data, metadata, occurred_at, hash)
			VALUES ($1, $2, 1, $3, convert_to($4, 'UTF8'), '{}', now(), '\x00')`, uuid.NewString(), e.stream, e.typ, e.data)
		require.NoError(t, err)
	}
	for _, k := range []string{"secret-named/v1", "secret-named/v2", "secret-plain/v1", "user-secret-named/v1", "secret-namedX/v1"} {
		_, err := conn.Exec(ctx, `INSERT INTO data_keys (stream_id, kek_id, wrapped_key) VALUES ($1, 'old', '\x01')`, k)
		require.NoError(t, err)
	}
	require.NoError(t, Migrate(ctx, conn))

	got := map[string]string{}
	rows, err := conn.Query(ctx, `SELECT stream_id, coalesce(kms_key_id, '-') FROM data_keys`)
	require.NoError(t, err)
	for rows.Next() {
		var s, n string
		require.NoError(t, rows.Scan(&s, &n))
		got[s] = n
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string]string{"secret-named/v1": "app", "secret-named/v2": "app", "secret-plain/v1": "-",
		"user-secret-named/v1": "tenant", "secret-namedX/v1": "-"}, got)
}
