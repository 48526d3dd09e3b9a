package projections_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/projections"
	"github.com/secretlog/secretlog/query"
)

// readModelTables are every table of every projection.
func readModelTables() []string {
	var out []string
	for _, p := range projections.All() {
		out = append(out, p.Tables()...)
	}
	return out
}

// dumpTable renders every row of table as text, in a stable order.
func dumpTable(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT x::text FROM `+pgx.Identifier{table}.Sanitize()+` x`)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	sort.Strings(out)
	return out
}

func dumpAll(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	out := map[string][]string{}
	for _, table := range readModelTables() {
		out[table] = dumpTable(t, pool, table)
	}
	return out
}

// usageCaughtUp reports whether the asynchronous usage projection has
// applied the whole log.
func (f *fixture) usageCaughtUp(t *testing.T) bool {
	head, err := f.store.Head(context.Background())
	require.NoError(t, err)
	var commit, position int64
	err = f.pool.QueryRow(context.Background(), `SELECT last_processed_transaction_id::text::bigint, offset_acked
		FROM projection_offsets WHERE consumer_group = $1`, projections.UsageProjectionName).Scan(&commit, &position)
	if errors.Is(err, pgx.ErrNoRows) {
		return head == events.Cursor{}
	}
	require.NoError(t, err)
	return events.Cursor{Commit: uint64(commit), Position: position} == head
}

// startRunner runs the asynchronous projections until the test ends (or stop is called).
func (f *fixture) startRunner(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- projections.NewRunner(f.pool, quietLogger(), projections.Async()...).Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

func (f *fixture) waitCaughtUp(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return f.usageCaughtUp(t) }, 60*time.Second, 20*time.Millisecond, "usage did not catch up")
}

func (f *fixture) userMeta(user string) commands.Meta {
	return commands.Meta{Actor: auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: user, Subject: user}}
}

// liveSecretIDs returns the ids of the secrets in the read model, by name.
func liveSecretIDs(t *testing.T, pool *pgxpool.Pool) []string {
	rows, err := pool.Query(context.Background(), `SELECT secret_id FROM secrets ORDER BY name, secret_id`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
}

func noShadowTablesLeft(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE '%\_rebuild'`).Scan(&n))
	require.Zero(t, n, "shadow tables left behind")
}

func indexNames(t *testing.T, pool *pgxpool.Pool) []string {
	rows, err := pool.Query(context.Background(), `SELECT tablename || '.' || indexname FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename = ANY ($1) ORDER BY 1`, readModelTables())
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// writer appends a mix of commands (and value reads) through the handlers
// until stop closes, and after each one checks read-your-writes: the read
// model shows it as soon as the command returns (rebuild swaps included).
func (f *fixture) writer(ctx context.Context, w int, stop <-chan struct{}, writes *atomic.Int64) error {
	admin, user := f.meta, f.userMeta(fmt.Sprintf("u%d", w))
	system := commands.Meta{Actor: auth.Identity{Role: auth.RoleSystem, DomainID: "d1", Subject: "system"}}
	seen := func(projection string, res commands.Result, table, key string, deleted bool) error {
		writes.Add(1)
		var version int64
		err := f.pool.QueryRow(ctx, `SELECT stream_version FROM `+table+` WHERE `+key+` = $1`, res.ID).Scan(&version)
		if deleted {
			if !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("writer %d: %s still in %s after its deletion was projected (%v)", w, res.ID, table, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("writer %d: %s not in %s after it was projected: %w", w, res.ID, table, err)
		}
		if want := res.Records[len(res.Records)-1].Version; version < want {
			return fmt.Errorf("writer %d: %s at version %d in %s, want %d", w, res.ID, version, table, want)
		}
		return nil
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		name := fmt.Sprintf("w%d-%03d", w, i)
		res, err := f.deps.HandleCreateSecret(ctx, commands.CreateSecret{Meta: admin, Name: name,
			ResourceGroup: auth.GroupDomain, Data: map[string]any{"token": "v0"}, Tags: map[string]any{"w": w}})
		if err != nil {
			return err
		}
		if err := seen(projections.SecretsProjection, res, "secrets", "secret_id", false); err != nil {
			return err
		}
		if _, err := f.deps.HandleRevealSecretData(ctx, commands.RevealSecretData{Meta: system, SecretID: res.ID}); err != nil {
			return err
		}
		renamed := name + "-renamed"
		if res, err = f.deps.HandleUpdateSecret(ctx, commands.UpdateSecret{Target: commands.Target{Meta: admin, ID: res.ID}, Name: &renamed,
			Tags: map[string]any{"w": w, "i": i}}); err != nil {
			return err
		}
		if res, err = f.deps.HandleUpdateSecretData(ctx, commands.UpdateSecretData{Target: commands.Target{Meta: admin, ID: res.ID},
			Data: map[string]any{"token": "v1"}}); err != nil {
			return err
		}
		if err := seen(projections.SecretsProjection, res, "secrets", "secret_id", false); err != nil {
			return err
		}
		if i%3 == 2 {
			if res, err = f.deps.HandleDelete(ctx, commands.Delete{Target: commands.Target{Meta: admin, ID: res.ID}, Force: true}); err != nil {
				return err
			}
			if err := seen(projections.SecretsProjection, res, "secrets", "secret_id", true); err != nil {
				return err
			}
		}
		ures, err := f.deps.HandleCreateUserSecret(ctx, commands.CreateUserSecret{Meta: user, Name: name, Data: map[string]any{"pw": "x"}})
		if err != nil {
			return err
		}
		if ures, err = f.deps.HandleUpdateUserSecretData(ctx, commands.UpdateUserSecretData{Target: commands.Target{Meta: user, ID: ures.ID},
			Data: map[string]any{"pw": "y"}}); err != nil {
			return err
		}
		if i%2 == 1 {
			if ures, err = f.deps.HandleDelete(ctx, commands.Delete{Target: commands.Target{Meta: user, ID: ures.ID}, Force: true}); err != nil {
				return err
			}
			if err := seen(projections.UserSecretsProjection, ures, "user_secrets", "user_secret_id", true); err != nil {
				return err
			}
		} else if err := seen(projections.UserSecretsProjection, ures, "user_secrets", "user_secret_id", false); err != nil {
			return err
		}
	}
}

// TestRebuildOnlineUnderConcurrentWrites rebuilds every projection several
// times while live projectors run, writers append (and wait for their writes
// to be projected) and readers query. Afterwards the read models equal a
// fresh replay of the log, and each event was counted exactly once.
func TestRebuildOnlineUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.writeHistory(t, 20, 2)
	stopRunner := f.startRunner(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := indexNames(t, f.pool)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	var writes, reads atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.writer(ctx, w, stop, &writes); err != nil {
				errs <- err
			}
		}()
	}
	// Readers never see a missing table or an error while tables are swapped.
	reader := projections.NewReader(f.pool)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := reader.Secrets(ctx, f.meta.Actor, query.Input{}); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
			if _, _, err := reader.UserSecrets(ctx, auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "u1"}, query.Input{}); err != nil {
				errs <- fmt.Errorf("reader: %w", err)
				return
			}
			reads.Add(1)
		}
	}()

	rebuilds := 0
	for ; rebuilds < 4; rebuilds++ {
		var calls int
		report, err := projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{
			BatchSize: 50, Progress: func(done, total int64) {
				calls++
				require.LessOrEqual(t, done, total)
			}})
		require.NoError(t, err, "rebuild %d", rebuilds)
		// (Events may even be 0: a transaction open anywhere in the cluster
		// holds back what the log shows, to the live projectors too.)
		require.Len(t, report.Projections, len(projections.All()))
		require.Positive(t, calls)
		if len(errs) > 0 {
			break
		}
	}
	// Let the writers get going past the last swap, then stop them.
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 4, rebuilds)
	require.Positive(t, writes.Load())
	require.Positive(t, reads.Load())
	t.Logf("%d rebuilds, %d writes seen, %d reads", rebuilds, writes.Load(), reads.Load())

	f.waitCaughtUp(t)
	var valueReads, counted, audited, total int64
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM event_log`).Scan(&total))
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM event_log WHERE stream_id LIKE '%:access'`).Scan(&valueReads))
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT coalesce(sum(reads), 0) FROM resource_usage`).Scan(&counted))
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&audited))
	require.Positive(t, valueReads)
	require.Equal(t, valueReads, counted, "every read counted exactly once (by a shadow or the live runner)")
	require.Equal(t, total, audited, "every event in the audit trail exactly once")
	require.Equal(t, before, indexNames(t, f.pool), "index names survive the swaps")
	noShadowTablesLeft(t, f.pool)

	// A fresh replay into shadow tables agrees row for row...
	report, err := projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{Check: true})
	require.NoError(t, err)
	require.Empty(t, report.Differences)

	// ...and so does a reset and replay from scratch (the asynchronous
	// projection by its runner).
	stopRunner()
	rebuilt := dumpAll(t, f.pool)
	require.NotEmpty(t, rebuilt["secrets"])
	require.NotEmpty(t, rebuilt["user_secrets"])
	require.NotEmpty(t, rebuilt["resource_usage"])
	conn, err := f.pool.Acquire(ctx)
	require.NoError(t, err)
	require.NoError(t, projections.Reset(ctx, conn.Conn()))
	conn.Release()
	_, err = projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{Projections: projections.Inline()})
	require.NoError(t, err)
	f.startRunner(t)
	f.waitCaughtUp(t)
	require.Equal(t, rebuilt, dumpAll(t, f.pool))
}

// TestRebuildCheckFindsCorruptedRows: --check reports exactly the rows a
// test tampered with, changes nothing, and reports nothing on a clean state,
// even while writers keep appending and the live projectors keep running.
func TestRebuildCheckFindsCorruptedRows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.writeHistory(t, 6, 1)
	var userSecret string
	for i := 0; i < 3; i++ {
		res, err := f.deps.HandleCreateUserSecret(ctx, commands.CreateUserSecret{Meta: f.userMeta("u1"), Name: fmt.Sprintf("u%d", i),
			Data: map[string]any{"pw": "x"}})
		require.NoError(t, err)
		userSecret = res.ID
	}

	report, err := projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{Check: true})
	require.NoError(t, err)
	require.Empty(t, report.Differences, "a clean state has no differences")
	require.Len(t, report.Projections, len(projections.All()))
	noShadowTablesLeft(t, f.pool)

	ids := liveSecretIDs(t, f.pool) // s000..s005
	tampered, deleted := ids[1], ids[4]
	for _, q := range []string{
		`UPDATE secrets SET name = 'tampered' WHERE secret_id = '` + tampered + `'`,
		`DELETE FROM secrets WHERE secret_id = '` + deleted + `'`,
		`INSERT INTO secrets (secret_id, name, resource_group, domain_id, version, stream_version, created_by, updated_by, created_at, updated_at)
		 VALUES ('secret-bogus', 'bogus', 'DOMAIN', 'd1', 1, 1, 'x', 'x', now(), now())`,
		`UPDATE user_secrets SET tags = '{"x": 1}', version = 7 WHERE user_secret_id = '` + userSecret + `'`,
	} {
		_, err := f.pool.Exec(ctx, q)
		require.NoError(t, err)
	}

	// Writers keep appending (other secrets) while the check runs.
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				writerDone <- nil
				return
			default:
			}
			if _, err := f.deps.HandleCreateSecret(ctx, commands.CreateSecret{Meta: f.meta, Name: fmt.Sprintf("later-%03d", i),
				ResourceGroup: auth.GroupDomain, Data: map[string]any{"token": "v"}}); err != nil {
				writerDone <- err
				return
			}
		}
	}()
	report, err = projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{Check: true, BatchSize: 7})
	close(stop)
	require.NoError(t, <-writerDone)
	require.NoError(t, err)

	type got struct {
		table, key string
		kind       projections.DiffKind
		columns    string
	}
	var diffs []got
	for _, d := range report.Differences {
		var cols []string
		for _, c := range d.Columns {
			cols = append(cols, fmt.Sprintf("%s:%s->%s", c.Column, c.Live, c.Rebuilt))
		}
		diffs = append(diffs, got{d.Table, d.Key, d.Kind, fmt.Sprint(cols)})
		require.NotEmpty(t, d.String())
	}
	require.ElementsMatch(t, []got{
		{"secrets", "secret_id=" + tampered, projections.DiffChanged, `[name:"tampered"->"s001"]`},
		{"secrets", "secret_id=" + deleted, projections.DiffMissing, `[]`},
		{"secrets", "secret_id=secret-bogus", projections.DiffExtra, `[]`},
		{"user_secrets", "user_secret_id=" + userSecret, projections.DiffChanged, `[tags:{"x": 1}->{} version:7->1]`},
	}, diffs)
	noShadowTablesLeft(t, f.pool)
	var name string
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT name FROM secrets WHERE secret_id = $1`, tampered).Scan(&name))
	require.Equal(t, "tampered", name, "a check changes nothing")

	// A rebuild repairs the read models; the check is clean again.
	_, err = projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{})
	require.NoError(t, err)
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT name FROM secrets WHERE secret_id = $1`, tampered).Scan(&name))
	require.Equal(t, "s001", name)
	report, err = projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{Check: true})
	require.NoError(t, err)
	require.Empty(t, report.Differences)
}

// TestRebuildSelectsOneProjection: --projection rebuilds (or checks) only
// the projection named; the others are left as they are.
func TestRebuildSelectsOneProjection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()

	// An empty log rebuilds to empty tables.
	report, err := projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{})
	require.NoError(t, err)
	for _, p := range report.Projections {
		require.Zero(t, p.Events)
	}

	f.writeHistory(t, 4, 1)
	res, err := f.deps.HandleCreateUserSecret(ctx, commands.CreateUserSecret{Meta: f.userMeta("u1"), Name: "mine", Data: map[string]any{"pw": "x"}})
	require.NoError(t, err)
	id := liveSecretIDs(t, f.pool)[0]
	_, err = f.pool.Exec(ctx, `UPDATE secrets SET name = 'tampered' WHERE secret_id = $1`, id)
	require.NoError(t, err)
	_, err = f.pool.Exec(ctx, `UPDATE user_secrets SET name = 'tampered' WHERE user_secret_id = $1`, res.ID)
	require.NoError(t, err)

	_, err = projections.Lookup("nope")
	require.ErrorContains(t, err, "secrets")
	us, err := projections.Lookup(projections.UserSecretsProjection)
	require.NoError(t, err)
	report, err = projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{Check: true, Projections: []projections.Projection{us}})
	require.NoError(t, err)
	require.Len(t, report.Differences, 1)
	require.Equal(t, "user_secrets", report.Differences[0].Table)

	p, err := projections.Lookup(projections.SecretsProjection)
	require.NoError(t, err)
	head, err := f.store.Head(ctx)
	require.NoError(t, err)
	usBefore := dumpTable(t, f.pool, "user_secrets")
	report, err = projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{Projections: []projections.Projection{p}})
	require.NoError(t, err)
	require.Len(t, report.Projections, 1)
	require.Equal(t, projections.SecretsProjection, report.Projections[0].Name)
	require.Equal(t, int64(9), report.Projections[0].Events, "the whole log: 8 secret events and 1 user secret event")
	require.Equal(t, head, report.Projections[0].Cursor)

	var name string
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT name FROM secrets WHERE secret_id = $1`, id).Scan(&name))
	require.Equal(t, "s000", name, "the selected projection is rebuilt")
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT name FROM user_secrets WHERE user_secret_id = $1`, res.ID).Scan(&name))
	require.Equal(t, "tampered", name, "the others are left alone")
	require.Equal(t, usBefore, dumpTable(t, f.pool, "user_secrets"))
	noShadowTablesLeft(t, f.pool)
}

// TestRebuildOneAtATime: a second rebuild of a projection being rebuilt is
// refused rather than sharing its shadow tables.
func TestRebuildOneAtATime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.writeHistory(t, 2, 0)
	started, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		var once sync.Once
		_, err := projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{Progress: func(done, total int64) {
			once.Do(func() {
				close(started)
				<-release
			})
		}})
		first <- err
	}()
	<-started
	_, err := projections.RebuildOnline(ctx, f.pool, projections.RebuildOptions{Check: true})
	require.ErrorIs(t, err, projections.ErrRebuildRunning)
	close(release)
	require.NoError(t, <-first)
	noShadowTablesLeft(t, f.pool)
}
