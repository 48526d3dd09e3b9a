package projections_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
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
	pool   *pgxpool.Pool
	store  *events.PostgresStore
	deps   commands.Deps
	meta   commands.Meta
	system commands.Meta
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	url := pgtest.NewDatabase(t)
	return newFixtureOn(t, url)
}

// newFixtureOn is one "process" on the database at url: its own pool, key
// store, projector and access log.
func newFixtureOn(t *testing.T, url string) *fixture {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	require.NoError(t, events.Migrate(ctx, conn))
	_, err = projections.Migrate(ctx, conn)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	pcfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	pcfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	store := events.NewPostgresStore(pool)
	keys := events.NewKeyStore(pool, testKeyring(t))
	projector := projections.NewProjector(pool, keys)
	access := commands.NewAccessLog(pool, projector)
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { access.Run(actx, 2); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &fixture{
		pool:  pool,
		store: store,
		deps: commands.Deps{DB: pool, Store: store, Keys: keys, Schemas: schemas.Default(),
			Projector: projector, Access: access},
		meta:   commands.Meta{Actor: auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "admin", Subject: "admin"}},
		system: commands.Meta{Actor: auth.Identity{Role: auth.RoleSystem, DomainID: "d1", Subject: "system"}},
	}
}

var (
	keyringOnce sync.Once
	keyringSpec string
)

// testKeyring is one keyring for every fixture of the test binary, so that
// fixtures sharing a database share keys.
func testKeyring(t *testing.T) *events.Keyring {
	keyringOnce.Do(func() {
		var err error
		keyringSpec, err = events.NewKeySpec("k1")
		require.NoError(t, err)
	})
	ring, err := events.ParseKeyring(keyringSpec)
	require.NoError(t, err)
	return ring
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
			_, err := f.deps.HandleUpdateSecretData(ctx, commands.UpdateSecretData{Target: commands.Target{Meta: f.meta, ID: res.ID},
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

// usage is the usage projection's read count of each resource.
func (f *fixture) usage(t *testing.T) map[string]int64 {
	rows, err := f.pool.Query(context.Background(), `SELECT resource_id, reads FROM resource_usage`)
	require.NoError(t, err)
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		require.NoError(t, rows.Scan(&id, &n))
		out[id] = n
	}
	require.NoError(t, rows.Err())
	return out
}

func (f *fixture) read(t *testing.T, id string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		_, err := f.deps.HandleRevealSecretData(context.Background(), commands.RevealSecretData{Meta: f.system, SecretID: id})
		require.NoError(t, err)
	}
}

// TestCommandAndReadModelsCommitTogether: when a projection cannot write,
// the command fails and its event is not in the log either.
func TestCommandAndReadModelsCommitTogether(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.writeHistory(t, 1, 0)
	before := f.eventCount(t)
	// A read model that rejects the next row (a trigger stands in for a full disk).
	_, err := f.pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION refuse()`)
	require.NoError(t, err)
	_, err = f.deps.HandleCreateSecret(ctx, commands.CreateSecret{Meta: f.meta, Name: "doomed",
		ResourceGroup: auth.GroupDomain, Data: map[string]any{"token": "v"}})
	require.Error(t, err)
	require.Equal(t, before, f.eventCount(t), "no event without its read-model rows")
	var keys int
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM data_keys`).Scan(&keys))
	require.Equal(t, 1, keys, "no data key without its event")
	_, err = f.pool.Exec(ctx, `DROP TRIGGER refuse ON audit_events`)
	require.NoError(t, err)
}

func (f *fixture) eventCount(t *testing.T) int64 {
	var n int64
	require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM event_log`).Scan(&n))
	return n
}

// TestAsyncRunnerOneLeaderAndTakeover: two processes run the asynchronous
// projections; one holds the lease and applies every read exactly once; when
// its session dies, the other takes over within five seconds and finishes.
func TestAsyncRunnerOneLeaderAndTakeover(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	a, b := newFixtureOn(t, url), newFixtureOn(t, url)
	ctx := context.Background()
	res, err := a.deps.HandleCreateSecret(ctx, commands.CreateSecret{Meta: a.meta, Name: "hot",
		ResourceGroup: auth.GroupDomain, Data: map[string]any{"token": "v"}})
	require.NoError(t, err)

	ra := projections.NewRunner(a.pool, quietLogger(), projections.Async()...)
	rb := projections.NewRunner(b.pool, quietLogger(), projections.Async()...)
	ra.LeaseRetry, rb.LeaseRetry = 200*time.Millisecond, 200*time.Millisecond
	actx, stopA := context.WithCancel(ctx)
	bctx, stopB := context.WithCancel(ctx)
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- ra.Run(actx) }()
	go func() { doneB <- rb.Run(bctx) }()
	defer func() { stopB(); <-doneB }()

	a.read(t, res.ID, 20)
	b.read(t, res.ID, 20)
	require.Eventually(t, func() bool { return a.usage(t)[res.ID] == 40 }, 10*time.Second, 20*time.Millisecond)
	leaders := 0
	for _, r := range []*projections.Runner{ra, rb} {
		if r.Status()[projections.UsageProjectionName].Leader {
			leaders++
		}
	}
	require.Equal(t, 1, leaders, "exactly one process holds the lease")

	// The leader's process dies: its database sessions end.
	leader, follower := ra, rb
	if rb.Status()[projections.UsageProjectionName].Leader {
		leader, follower = rb, ra
	}
	// Only this test's database: the cluster is shared with tests running in
	// parallel, whose sessions hold advisory locks too (migrations, writes).
	_, err = a.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	require.NoError(t, err)
	died := time.Now()
	a.read(t, res.ID, 10)
	require.Eventually(t, func() bool { return a.usage(t)[res.ID] == 50 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		return follower.Status()[projections.UsageProjectionName].Leader || leader.Status()[projections.UsageProjectionName].Leader
	}, 5*time.Second, 20*time.Millisecond)
	require.Less(t, time.Since(died), 6*time.Second, "taken over within about five seconds")
	stopA()
	require.NoError(t, <-doneA)
	b.read(t, res.ID, 5)
	require.Eventually(t, func() bool { return b.usage(t)[res.ID] == 55 }, 10*time.Second, 20*time.Millisecond,
		"the survivor finishes the work, every read counted once")
}

// TestAsyncProjectionFailureIsReportedAndBlocksNothing: an event the usage
// projection cannot apply is reported (status, log line with its position)
// while writes, reads and the inline read models go on; the projection
// resumes where it stopped once the cause is gone.
func TestAsyncProjectionFailureIsReportedAndBlocksNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	res, err := f.deps.HandleCreateSecret(ctx, commands.CreateSecret{Meta: f.meta, Name: "s",
		ResourceGroup: auth.GroupDomain, Data: map[string]any{"token": "v"}})
	require.NoError(t, err)
	// The usage table refuses rows for now (a trigger stands in for a bug).
	_, err = f.pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON resource_usage FOR EACH ROW EXECUTE FUNCTION refuse()`)
	require.NoError(t, err)
	logs := &syncBuffer{}
	r := projections.NewRunner(f.pool, slog.New(slog.NewJSONHandler(logs, nil)), projections.Async()...)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() { stop(); <-done }()

	f.read(t, res.ID, 3)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	var failing []string
	require.Eventually(t, func() bool { failing = r.Failing(); return len(failing) == 1 }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, failing[0], "usage at position")
	require.Contains(t, logs.String(), `"msg":"projection failed"`)
	require.Contains(t, logs.String(), `"position":`)

	// Writes and reads go on, the inline read models keep up.
	start := time.Now()
	up, err := f.deps.HandleUpdateSecretData(ctx, commands.UpdateSecretData{Target: commands.Target{Meta: f.meta, ID: res.ID}, Data: map[string]any{"token": "w"}})
	require.NoError(t, err)
	f.read(t, res.ID, 1)
	require.Less(t, time.Since(start), time.Second)
	var version int64
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT version FROM secrets WHERE secret_id = $1`, up.ID).Scan(&version))
	require.Equal(t, int64(2), version)

	_, err = f.pool.Exec(ctx, `DROP TRIGGER refuse ON resource_usage`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.usage(t)[res.ID] == 4 }, 15*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return len(r.Failing()) == 0 }, 5*time.Second, 20*time.Millisecond)
}

// syncBuffer collects log output for inspection.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestResetAndReplayReproducesReadModels drops the read models and replays the log.
func TestResetAndReplayReproducesReadModels(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.writeHistory(t, 8, 2)
	ctx := context.Background()
	_, err := f.deps.HandleDelete(ctx, commands.Delete{Target: commands.Target{Meta: f.meta, ID: firstID(t, f)}, Force: true})
	require.NoError(t, err)
	before := dumpAll(t, f.pool)

	conn, err := f.pool.Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, projections.Reset(ctx, conn.Conn()))
	empty, err := projections.Empty(ctx, conn)
	require.NoError(t, err)
	require.True(t, empty)
	conn.Release()
	require.Empty(t, dumpSecrets(t, f.pool))

	_, err = projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{})
	require.NoError(t, err)
	require.Equal(t, before, dumpAll(t, f.pool))
	require.Len(t, before["secrets"], 7)
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

// TestShreddingIsAtomic kills the database session of a delete after its
// event was inserted and while its data key is being destroyed: neither the
// deletion nor the destruction commits, the secret stays readable, and a
// retry deletes both together.
func TestShreddingIsAtomic(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	res, err := f.deps.HandleCreateSecret(ctx, commands.CreateSecret{Meta: f.meta, Name: "doomed",
		ResourceGroup: auth.GroupDomain, Data: map[string]any{"token": "v"}})
	require.NoError(t, err)
	// The session dies inside the UPDATE of data_keys, after the event's INSERT.
	_, err = f.pool.Exec(ctx, `CREATE FUNCTION die() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$;
		CREATE TRIGGER die BEFORE UPDATE ON data_keys FOR EACH ROW EXECUTE FUNCTION die()`)
	require.NoError(t, err)
	before := f.eventCount(t)
	_, err = f.deps.HandleDelete(ctx, commands.Delete{Target: commands.Target{Meta: f.meta, ID: res.ID}, Force: true})
	require.Error(t, err)
	require.Equal(t, before, f.eventCount(t), "the deletion did not commit")
	var destroyed int
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM data_keys WHERE stream_id LIKE $1 || '/%' AND destroyed_at IS NOT NULL`,
		res.ID).Scan(&destroyed))
	require.Zero(t, destroyed, "nor did the key's destruction")
	_, err = f.deps.HandleRevealSecretData(ctx, commands.RevealSecretData{Meta: f.system, SecretID: res.ID})
	require.NoError(t, err, "the secret is whole and readable")

	_, err = f.pool.Exec(ctx, `DROP TRIGGER die ON data_keys`)
	require.NoError(t, err)
	before = f.eventCount(t)
	_, err = f.deps.HandleDelete(ctx, commands.Delete{Target: commands.Target{Meta: f.meta, ID: res.ID}, Force: true})
	require.NoError(t, err)
	require.Equal(t, before+1, f.eventCount(t))
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM data_keys WHERE stream_id LIKE $1 || '/%' AND destroyed_at IS NOT NULL`,
		res.ID).Scan(&destroyed))
	require.Equal(t, 1, destroyed, "deleted and shredded together")
}
