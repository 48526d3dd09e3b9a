package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg"
)

// TestVerifyCommand runs `secretlog verify` on an intact log, then on one
// with a changed event: it names the event's position and fails.
func TestVerifyCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := localpg.Start(ctx, localpg.Options{Dir: t.TempDir(), Install: true})
	require.NoError(t, err)
	defer func() { _ = cluster.Stop() }()
	url := cluster.URL("postgres")
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	require.NoError(t, events.Migrate(ctx, conn))
	require.NoError(t, conn.Close(ctx))
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer pool.Close()
	store := events.NewPostgresStore(pool)
	var recs []events.Record
	for _, stream := range []string{"secret-000000000001", "secret-000000000002"} {
		r, err := store.Append(ctx, stream, events.NoStream,
			events.Event{Type: events.SecretCreatedV1, Data: []byte(`{"data":{"nonce":"AAAA","ct":"BBBB"}}`)},
			events.Event{Type: events.SecretDeletedV1, Data: []byte(`{}`)})
		require.NoError(t, err)
		recs = append(recs, r...)
	}

	// Verify reads below pg_snapshot_xmin: wait until the appends are there.
	require.Eventually(t, func() bool {
		var xmin int64
		err := pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin)
		return err == nil && uint64(xmin) > recs[len(recs)-1].Cursor.Commit
	}, 10*time.Second, 10*time.Millisecond)

	run := func() (string, error) {
		var out bytes.Buffer
		root := rootCommand()
		root.SetArgs([]string{"verify", "--database-url", url})
		root.SetOut(&out)
		root.SetErr(&bytes.Buffer{})
		err := root.ExecuteContext(ctx)
		return out.String(), err
	}
	out, err := run()
	require.NoError(t, err)
	require.Equal(t, "log verified: 4 events, all links intact (0 checkpoints)\n", out)

	_, err = pool.Exec(ctx, `ALTER TABLE event_log DISABLE TRIGGER event_log_no_update`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE event_log SET type = 'SecretUpdated.v1' WHERE position = $1`, recs[3].Cursor.Position)
	require.NoError(t, err)
	out, err = run()
	require.Error(t, err)
	require.Equal(t, fmt.Sprintf("log BROKEN at position %d: hash mismatch\n", recs[3].Cursor.Position), out)
}
