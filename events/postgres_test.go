package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/events/storetest"
	"github.com/secretlog/secretlog/localpg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newPool returns a pool on a fresh database migrated with events.Migrate.
func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	require.NoError(t, events.Migrate(ctx, conn))
	require.NoError(t, conn.Close(ctx))
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func newStore(t *testing.T) (*events.PostgresStore, *pgxpool.Pool) {
	t.Helper()
	pool := newPool(t)
	s := events.NewPostgresStore(pool)
	s.PollInterval = 20 * time.Millisecond
	return s, pool
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func testEvent(label string) events.Event {
	return events.Event{
		ID:   uuid.NewString(),
		Type: "TestHappened.v1",
		Data: []byte(`{"label":"` + label + `"}`),
		Metadata: events.Metadata{
			Actor:         events.Actor{UserID: "user-1", Role: "DOMAIN_ADMIN", DomainID: "domain-1"},
			Tenant:        events.Tenant{DomainID: "domain-1"},
			CorrelationID: "corr-" + label,
		},
	}
}

func recordIDs(recs []events.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func TestPostgresStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) events.Store {
		s, _ := newStore(t)
		return s
	})
}

func TestMigrateIsIdempotent(t *testing.T) {
	pool := newPool(t)
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, pool.Config().ConnString())
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.NoError(t, events.Migrate(ctx, conn), "a second Migrate is a no-op")
}

func TestPostgresEventLogIsAppendOnly(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)
	recs, err := s.Append(ctx, "secret-append-only", events.NoStream, testEvent("a"), testEvent("b"))
	require.NoError(t, err)

	cases := []struct {
		name string
		sql  string
	}{
		{"update payload", `UPDATE event_log SET data = '\x00'::bytea WHERE stream_id = 'secret-append-only'`},
		{"update version", `UPDATE event_log SET version = version + 10 WHERE version = 1`},
		{"update metadata", `UPDATE event_log SET metadata = '{}'`},
		{"delete one", `DELETE FROM event_log WHERE version = 2`},
		{"delete all", `DELETE FROM event_log`},
		{"truncate", `TRUNCATE event_log`},
		{"truncate cascade", `TRUNCATE event_log CASCADE`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := pool.Exec(ctx, c.sql)
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			require.Equal(t, "42501", pgErr.Code, "insufficient_privilege")
			require.Contains(t, pgErr.Message, "append-only")

			got, err := s.ReadStream(ctx, "secret-append-only")
			require.NoError(t, err)
			require.Equal(t, recs, got, "the rows are unchanged")
		})
	}
}

func TestPostgresAppendRejectsBadInput(t *testing.T) {
	s, _ := newStore(t)
	ctx := testContext(t)
	first, err := s.Append(ctx, "s", events.NoStream, testEvent("first"))
	require.NoError(t, err)

	dup := testEvent("dup")
	badID := testEvent("bad")
	badID.ID = "not-a-uuid"
	cases := []struct {
		name     string
		stream   string
		expected int64
		evs      []events.Event
	}{
		{"no events", "s", 1, nil},
		{"event id is not a UUID", "s", 1, []events.Event{testEvent("ok"), badID}},
		// The third event fails on the event_id key after two were inserted:
		// the whole batch goes.
		{"event id repeated in a batch", "s", 1, []events.Event{dup, testEvent("x"), dup}},
		{"event id already in the log", "t", events.NoStream, []events.Event{testEvent("y"), {ID: first[0].ID, Type: "T.v1", Data: []byte("{}")}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, err := s.Append(ctx, c.stream, c.expected, c.evs...)
			require.Error(t, err)
			require.NotErrorIs(t, err, events.ErrConflict, "not a version conflict: retrying cannot help")
			require.Empty(t, recs)
		})
	}
	all, err := s.ReadAll(ctx, events.Cursor{}, 100)
	require.NoError(t, err)
	require.Equal(t, recordIDs(first), recordIDs(all), "no failed batch left an event behind")
}

// TestPostgresAnyVersionConcurrent: AnyVersion promises no concurrency check,
// so concurrent AnyVersion appends to one stream must all succeed.
func TestPostgresAnyVersionConcurrent(t *testing.T) {
	s, _ := newStore(t)
	ctx := testContext(t)
	const writers = 16
	errs := make(chan error, writers)
	for range writers {
		go func() {
			_, err := s.Append(ctx, "any", events.AnyVersion, testEvent("any"))
			errs <- err
		}()
	}
	for range writers {
		require.NoError(t, <-errs)
	}
	got, err := s.ReadStream(ctx, "any")
	require.NoError(t, err)
	require.Len(t, got, writers)
}

// insertRawSQL is what Append inserts, written out so a test can hold the
// appending transaction open.
const insertRawSQL = `INSERT INTO event_log (event_id, stream_id, version, type, data, metadata, occurred_at, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// rawMetadata is the envelope insertRaw stores, as exact JSON text.
const rawMetadata = `{"actor":{"role":"SYSTEM","domain_id":"d"},"tenant":{"domain_id":"d"}}`

func insertRaw(ctx context.Context, t *testing.T, tx pgx.Tx, stream string, version int64, e events.Event) {
	t.Helper()
	var prev []byte
	if version > 1 {
		require.NoError(t, tx.QueryRow(ctx, `SELECT hash FROM event_log WHERE stream_id = $1 AND version = $2`, stream, version-1).Scan(&prev))
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	hash := events.EventHash(prev, stream, version, e.ID, e.Type, at, e.Data, []byte(rawMetadata))
	_, err := tx.Exec(ctx, insertRawSQL, e.ID, stream, version, e.Type, e.Data, rawMetadata, at, hash)
	require.NoError(t, err)
}

// outOfOrderScenarios are ways a transaction A that appended before B (or
// took its transaction id before B) commits after B. Sequence numbers are
// handed out before commit, so a consumer following "position > last seen"
// would read B, move past A's position and skip A for good.
var outOfOrderScenarios = []struct {
	name string
	// open starts A and leaves its event uncommitted; appendB then appends
	// B through the store, which commits at once.
	open func(ctx context.Context, t *testing.T, tx pgx.Tx, appendB func(), a events.Event)
	// aFirst: A's event has the lower position as well as the lower xid.
	aFirst bool
}{
	{
		name: "A inserts first, B commits first",
		open: func(ctx context.Context, t *testing.T, tx pgx.Tx, appendB func(), a events.Event) {
			insertRaw(ctx, t, tx, "stream-a", 1, a)
			appendB()
		},
		aFirst: true,
	},
	{
		name: "A takes its xid first, B inserts and commits first",
		open: func(ctx context.Context, t *testing.T, tx pgx.Tx, appendB func(), a events.Event) {
			// Any write gives A its transaction id; pg_current_xact_id does it directly.
			_, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`)
			require.NoError(t, err)
			appendB()
			insertRaw(ctx, t, tx, "stream-a", 1, a)
		},
		aFirst: false,
	},
}

// The out-of-order tests hold a transaction open, which holds back
// pg_snapshot_xmin for every database of the cluster: they do not run in
// parallel with other tests.

func TestPostgresReadAllOutOfOrderCommit(t *testing.T) {
	for _, sc := range outOfOrderScenarios {
		t.Run(sc.name, func(t *testing.T) {
			s, pool := newStore(t)
			ctx := testContext(t)

			before, err := s.Append(ctx, "stream-0", events.NoStream, testEvent("before"))
			require.NoError(t, err)
			seen, err := s.ReadAll(ctx, events.Cursor{}, 100)
			require.NoError(t, err)
			require.Equal(t, recordIDs(before), recordIDs(seen))
			cursor := seen[len(seen)-1].Cursor // a consumer's place in the log

			txA, err := pool.Begin(ctx)
			require.NoError(t, err)
			defer txA.Rollback(context.Background()) //nolint:errcheck
			a, b := testEvent("A"), testEvent("B")
			var recB []events.Record
			sc.open(ctx, t, txA, func() {
				recB, err = s.Append(ctx, "stream-b", events.NoStream, b)
				require.NoError(t, err)
			}, a)

			var posA int64
			require.NoError(t, txA.QueryRow(ctx, `SELECT position FROM event_log WHERE event_id = $1`, a.ID).Scan(&posA))
			require.Equal(t, sc.aFirst, posA < recB[0].Cursor.Position, "the scenario orders positions as intended")

			// B is committed and visible to plain SQL, but ReadAll holds it
			// back while A, with a lower transaction id, may still commit.
			var visible int
			require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM event_log WHERE event_id = $1`, b.ID).Scan(&visible))
			require.Equal(t, 1, visible)
			for _, after := range []events.Cursor{{}, cursor} {
				got, err := s.ReadAll(ctx, after, 100)
				require.NoError(t, err)
				for _, r := range got {
					require.Equal(t, before[0].ID, r.ID, "ReadAll after %+v returned %s while A is open", after, r.Stream)
				}
			}

			require.NoError(t, txA.Commit(ctx))

			got, err := s.ReadAll(ctx, cursor, 100)
			require.NoError(t, err)
			require.Equal(t, []string{a.ID, b.ID}, recordIDs(got), "A committed last but comes first: its transaction id is lower")
			require.True(t, got[0].Cursor.Before(got[1].Cursor))
			require.Equal(t, recB[0].Cursor, got[1].Cursor)
			require.Equal(t, posA, got[0].Cursor.Position)

			all, err := s.ReadAll(ctx, events.Cursor{}, 100)
			require.NoError(t, err)
			require.Equal(t, []string{before[0].ID, a.ID, b.ID}, recordIDs(all))
		})
	}
}

func TestPostgresReadAllRolledBackTransaction(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)

	txA, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer txA.Rollback(context.Background()) //nolint:errcheck
	insertRaw(ctx, t, txA, "stream-a", 1, testEvent("A"))
	recB, err := s.Append(ctx, "stream-b", events.NoStream, testEvent("B"))
	require.NoError(t, err)

	got, err := s.ReadAll(ctx, events.Cursor{}, 100)
	require.NoError(t, err)
	require.Empty(t, got, "B waits behind the open transaction")

	require.NoError(t, txA.Rollback(ctx))
	got, err = s.ReadAll(ctx, events.Cursor{}, 100)
	require.NoError(t, err)
	require.Equal(t, recordIDs(recB), recordIDs(got), "an aborted transaction leaves no gap that blocks the log")
}

func TestPostgresSubscribeOutOfOrderCommit(t *testing.T) {
	for _, sc := range outOfOrderScenarios {
		t.Run(sc.name, func(t *testing.T) {
			s, pool := newStore(t)
			ctx := testContext(t)

			before, err := s.Append(ctx, "stream-0", events.NoStream, testEvent("before"))
			require.NoError(t, err)

			subCtx, cancel := context.WithCancel(ctx)
			received := make(chan events.Record, 100)
			done := make(chan error, 1)
			go func() {
				done <- s.Subscribe(subCtx, events.Cursor{}, func(r events.Record) error {
					received <- r
					return nil
				})
			}()
			defer func() {
				cancel()
				require.ErrorIs(t, <-done, context.Canceled)
			}()
			next := func() events.Record {
				t.Helper()
				select {
				case r := <-received:
					return r
				case <-time.After(10 * time.Second):
					require.FailNow(t, "Subscribe delivered nothing")
					return events.Record{}
				}
			}
			require.Equal(t, before[0].ID, next().ID)

			txA, err := pool.Begin(ctx)
			require.NoError(t, err)
			defer txA.Rollback(context.Background()) //nolint:errcheck
			a, b := testEvent("A"), testEvent("B")
			sc.open(ctx, t, txA, func() {
				_, err := s.Append(ctx, "stream-b", events.NoStream, b)
				require.NoError(t, err)
			}, a)

			// B's commit notifies the subscriber, which must not deliver B yet:
			// its cursor would move past A.
			select {
			case r := <-received:
				require.FailNowf(t, "delivered while A is open", "%s (%s)", r.Stream, r.ID)
			case <-time.After(300 * time.Millisecond):
			}

			require.NoError(t, txA.Commit(ctx))
			require.Equal(t, a.ID, next().ID, "A is not skipped")
			require.Equal(t, b.ID, next().ID)
			select {
			case r := <-received:
				require.FailNowf(t, "delivered twice", "%s (%s)", r.Stream, r.ID)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

func TestPostgresHead(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)

	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, events.Cursor{}, head, "an empty log's head is the start")

	_, err = s.Append(ctx, "a", events.NoStream, testEvent("1"), testEvent("2"))
	require.NoError(t, err)
	recs, err := s.Append(ctx, "b", events.NoStream, testEvent("3"))
	require.NoError(t, err)
	head, err = s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, recs[0].Cursor, head)

	// With a late commit pending, the head is the last committed event;
	// the late one lands before it in commit order.
	txA, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer txA.Rollback(context.Background()) //nolint:errcheck
	insertRaw(ctx, t, txA, "late", 1, testEvent("late"))
	recB, err := s.Append(ctx, "b", 1, testEvent("4"))
	require.NoError(t, err)
	head, err = s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, recB[0].Cursor, head)
	require.NoError(t, txA.Commit(ctx))
	head, err = s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, recB[0].Cursor, head)
	all, err := s.ReadAll(ctx, events.Cursor{}, 100)
	require.NoError(t, err)
	require.Equal(t, all[len(all)-1].Cursor, head, "everything up to the head is readable once committed")
}
