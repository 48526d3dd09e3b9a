package projections_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/commands/schemas"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/projections"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type fixture struct {
	pool  *pgxpool.Pool
	store *events.PostgresStore
	deps  commands.Deps
	meta  commands.Meta
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	require.NoError(t, events.Migrate(ctx, conn))
	require.NoError(t, projections.Migrate(ctx, conn))
	require.NoError(t, conn.Close(ctx))
	pcfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	pcfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	spec, err := events.NewKeySpec("k1")
	require.NoError(t, err)
	ring, err := events.ParseKeyring(spec)
	require.NoError(t, err)
	store := events.NewPostgresStore(pool)
	return &fixture{
		pool:  pool,
		store: store,
		deps:  commands.Deps{Store: store, Keys: events.NewKeyStore(pool, ring), Schemas: schemas.Default()},
		meta:  commands.Meta{Actor: auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "admin", Subject: "admin"}},
	}
}

// writeHistory creates n secrets and gives each `updates` data updates; it
// returns the number of events appended.
func (f *fixture) writeHistory(t *testing.T, n, updates int) int {
	t.Helper()
	ctx := context.Background()
	count := 0
	for i := 0; i < n; i++ {
		res, err := f.deps.HandleCreateSecret(ctx, commands.CreateSecret{Meta: f.meta, Name: fmt.Sprintf("s%03d", i),
			ResourceGroup: auth.GroupDomain, Data: map[string]any{"token": "v0"}})
		require.NoError(t, err)
		count++
		for u := 1; u <= updates; u++ {
			_, err := f.deps.HandleUpdateSecretData(ctx, commands.UpdateSecretData{Meta: f.meta, SecretID: res.ID,
				Data: map[string]any{"token": fmt.Sprintf("v%d", u)}})
			require.NoError(t, err)
			count++
		}
	}
	return count
}

func quietLogger() *slog.Logger {
	if os.Getenv("PROJ_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// runUntil runs r until cond holds or the deadline passes.
func runUntil(t *testing.T, r *projections.Runner, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, nil) }()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("projection did not catch up within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
}

func (f *fixture) applied(t *testing.T, projection string) int64 {
	var n int64
	err := f.pool.QueryRow(context.Background(), `SELECT coalesce((SELECT events_applied FROM projection_checkpoints WHERE projection = $1), 0)`, projection).Scan(&n)
	require.NoError(t, err)
	return n
}

func (f *fixture) versions(t *testing.T) map[string]int64 {
	rows, err := f.pool.Query(context.Background(), `SELECT name, version FROM secrets`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct {
		n string
		v int64
	}, error) {
		var x struct {
			n string
			v int64
		}
		return x, r.Scan(&x.n, &x.v)
	})
	require.NoError(t, err)
	m := map[string]int64{}
	for _, x := range out {
		m[x.n] = x.v
	}
	return m
}

// TestProjectorKilledBeforeCommitAppliesOnce kills the projector after it
// wrote an event's rows and before the transaction committed, in two ways: the
// database connection dies (as when the process is killed), and the process
// stops (the runner's context ends) with the rows written. A new projector
// then finishes the job; every event is applied exactly once.
func TestProjectorKilledBeforeCommitAppliesOnce(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"connection killed", "runner stopped"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			total := f.writeHistory(t, 10, 4) // 50 events: each secret ends at version 5

			var kills atomic.Int32
			victim := projections.NewRunner(f.pool, quietLogger(), projections.SecretProjection{})
			victim.BatchSize = 7
			victim.MaxBatch = 7
			ctx, cancel := context.WithCancel(context.Background())
			victim.AfterRows = func(ctx context.Context, tx pgx.Tx, _ string, rec events.Record) error {
				if kills.Load() >= 2 {
					return nil
				}
				kills.Add(1)
				if mode == "connection killed" {
					_, err := tx.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
					if err == nil {
						err = errors.New("backend survived")
					}
					return err
				}
				cancel()
				return errors.New("process killed")
			}
			done := make(chan error, 1)
			go func() { done <- victim.Run(ctx, nil) }()
			if mode == "connection killed" {
				require.Eventually(t, func() bool { return f.applied(t, projections.SecretsProjection) == int64(total) },
					30*time.Second, 20*time.Millisecond)
				cancel()
			}
			require.NoError(t, <-done)
			require.NotZero(t, kills.Load())

			// A fresh projector (the restarted process) completes the work.
			runUntil(t, projections.NewRunner(f.pool, quietLogger(), projections.SecretProjection{}), func() bool {
				return f.applied(t, projections.SecretsProjection) == int64(total)
			})
			require.Equal(t, int64(total), f.applied(t, projections.SecretsProjection), "each event applied exactly once")
			vs := f.versions(t)
			require.Len(t, vs, 10)
			for name, v := range vs {
				require.Equal(t, int64(5), v, "secret %s", name)
			}
		})
	}
}

// TestResetAndReplayReproducesReadModel drops the read models and replays the log.
func TestResetAndReplayReproducesReadModel(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	total := f.writeHistory(t, 8, 2)
	ctx := context.Background()
	_, err := f.deps.HandleDeleteSecret(ctx, commands.DeleteSecret{Meta: f.meta, SecretID: firstID(t, f)})
	require.NoError(t, err)
	total++
	r := projections.NewRunner(f.pool, quietLogger(), projections.SecretProjection{}, projections.UserSecretProjection{})
	runUntil(t, r, func() bool { return f.applied(t, projections.SecretsProjection) == int64(total) })
	before := dumpSecrets(t, f.pool)

	conn, err := f.pool.Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, projections.Reset(ctx, conn.Conn()))
	conn.Release()
	require.Empty(t, dumpSecrets(t, f.pool))

	r = projections.NewRunner(f.pool, quietLogger(), projections.SecretProjection{}, projections.UserSecretProjection{})
	runUntil(t, r, func() bool { return f.applied(t, projections.SecretsProjection) == int64(total) })
	require.Equal(t, before, dumpSecrets(t, f.pool))
	require.Len(t, before, 7)
}

func firstID(t *testing.T, f *fixture) string {
	var id string
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT stream_id FROM event_log ORDER BY position LIMIT 1`).Scan(&id))
	return id
}

// dumpSecrets renders every row of the secrets read model as text, in key order.
func dumpSecrets(t *testing.T, pool *pgxpool.Pool) []string {
	rows, err := pool.Query(context.Background(), `SELECT s::text FROM secrets s ORDER BY secret_id`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}
