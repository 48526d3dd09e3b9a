package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg/pgtest"
)

// TestRewrapCommandVersions: `secretlog rewrap` with a versioned keyring
// moves each data key to the newest version of the key it follows.
func TestRewrapCommandVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	require.NoError(t, events.Migrate(ctx, conn))
	require.NoError(t, conn.Close(ctx))
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()

	spec := func(id string) string {
		s, err := events.NewKeySpec(id)
		require.NoError(t, err)
		return s
	}
	main1, app1, app2 := spec("main"), spec("app"), spec("app@2")
	before, err := events.ParseKeyring(main1 + "," + app1)
	require.NoError(t, err)
	ks := events.NewKeyStore(pool, before)
	want := map[string][]byte{}
	for stream, name := range map[string]string{"secret-a/v1": "app", "secret-b/v1": ""} {
		dk, store, err := ks.New(stream, name)
		require.NoError(t, err)
		b := &pgx.Batch{}
		store(b)
		require.NoError(t, pool.SendBatch(ctx, b).Close())
		want[stream] = dk
	}

	tokenKey := spec("x")[2:]
	r := runCLI(t, "", "rewrap", "--database-url", url, "--master-key", main1+","+app2+","+app1, "--token-key", tokenKey)
	require.Equal(t, 0, r.status, "%s", r)

	var kek string
	require.NoError(t, pool.QueryRow(ctx, `SELECT kek_id FROM data_keys WHERE stream_id = 'secret-a/v1'`).Scan(&kek))
	require.Equal(t, "app@2", kek)
	require.NoError(t, pool.QueryRow(ctx, `SELECT kek_id FROM data_keys WHERE stream_id = 'secret-b/v1'`).Scan(&kek))
	require.Equal(t, "main", kek)
	after, err := events.ParseKeyring(main1 + "," + app2)
	require.NoError(t, err)
	for stream, dk := range want {
		got, err := events.NewKeyStore(pool, after).Get(ctx, stream)
		require.NoError(t, err)
		require.Equal(t, dk, got)
	}
}
