package events

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the log's schema (event_log, data_keys) up to date.
func Migrate(ctx context.Context, conn *pgx.Conn) error {
	sub, _ := fs.Sub(migrations, "migrations")
	return RunMigrations(ctx, conn, sub, "schema_version_events")
}

// RunMigrations applies the tern migrations in fsys, tracking them in versionTable.
// Each package that owns tables keeps its own migrations and version table.
func RunMigrations(ctx context.Context, conn *pgx.Conn, fsys fs.FS, versionTable string) error {
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(fsys); err != nil {
		return err
	}
	return m.Migrate(ctx)
}

// PostgresStore is the log in a PostgreSQL table. Appends insert in one
// statement, each event carrying a hash chained to its stream's previous
// event (EventHash); consumers follow commit order using the appending
// transaction's xid8 and pg_snapshot_xmin, so a transaction that commits late
// is never skipped.
type PostgresStore struct {
	pool *pgxpool.Pool
	// PollInterval bounds how long Subscribe waits when no notification arrives.
	PollInterval time.Duration
}

// NewPostgresStore uses pool, whose database must be migrated with Migrate.
func NewPostgresStore(pool *pgxpool.Pool) *PostgresStore {
	return &PostgresStore{pool: pool, PollInterval: 500 * time.Millisecond}
}

const recordColumns = `position, transaction_id::text::bigint, event_id, stream_id, version, type, data, metadata, occurred_at, hash`

func scanRecord(row pgx.Row) (Record, error) {
	var r Record
	var commit int64
	var id uuid.UUID
	var meta []byte
	if err := row.Scan(&r.Cursor.Position, &commit, &id, &r.Stream, &r.Version, &r.Type, &r.Data, &meta, &r.OccurredAt, &r.Hash); err != nil {
		return r, err
	}
	r.Cursor.Commit = uint64(commit)
	r.ID = id.String()
	r.OccurredAt = r.OccurredAt.UTC()
	if err := json.Unmarshal(meta, &r.Metadata); err != nil {
		return r, fmt.Errorf("events: metadata of %s@%d: %w", r.Stream, r.Version, err)
	}
	return r, nil
}

func collect(rows pgx.Rows, err error) ([]Record, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ReadVersion implements Store: one lookup on the (stream, version) key.
func (s *PostgresStore) ReadVersion(ctx context.Context, stream string, version int64) (Record, error) {
	recs, err := collect(s.pool.Query(ctx, `SELECT `+recordColumns+` FROM event_log WHERE stream_id = $1 AND version = $2`, stream, version))
	if err != nil {
		return Record{}, err
	}
	if len(recs) == 0 {
		return Record{}, ErrNotFound
	}
	return recs[0], nil
}

// ReadStream implements Store.
func (s *PostgresStore) ReadStream(ctx context.Context, stream string) ([]Record, error) {
	return collect(s.pool.Query(ctx, `SELECT `+recordColumns+` FROM event_log WHERE stream_id = $1 ORDER BY version`, stream))
}

// ReadStreamAfter implements TailReader.
func (s *PostgresStore) ReadStreamAfter(ctx context.Context, stream string, after int64) ([]Record, error) {
	return collect(s.pool.Query(ctx, `SELECT `+recordColumns+` FROM event_log WHERE stream_id = $1 AND version > $2 ORDER BY version`, stream, after))
}

// Ordering names the table's columns explicitly: the select list's
// "transaction_id::text::bigint" is also called transaction_id, and ordering
// by that expression instead would sort the whole log rather than walk the
// primary key.
const readAfterSQL = `SELECT ` + recordColumns + ` FROM event_log
WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint)`

const readOrderSQL = `
ORDER BY event_log.transaction_id, event_log.position
LIMIT $3`

// readAllSQL only returns transactions below the oldest still running one:
// everything before that point has either committed or aborted, so the cursor
// can move past it without skipping a late commit.
const readAllSQL = readAfterSQL + `
  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())` + readOrderSQL

// ReadAll implements Store.
func (s *PostgresStore) ReadAll(ctx context.Context, after Cursor, limit int) ([]Record, error) {
	return ReadAllIn(ctx, s.pool, after, limit, true)
}

// ReadAllIn reads up to limit events after cursor in commit order on q. With
// settled it is ReadAll (only transactions below the oldest running one).
// Without, it returns every event q's snapshot sees, including those of
// transactions that committed while an older one is still running: right
// only where nothing can commit before the cursor afterwards (the caller
// excludes appenders, or compares within one snapshot).
func ReadAllIn(ctx context.Context, q Querier, after Cursor, limit int, settled bool) ([]Record, error) {
	sql := readAllSQL
	if !settled {
		sql = readAfterSQL + readOrderSQL
	}
	return collect(q.Query(ctx, sql, fmt.Sprint(after.Commit), after.Position, limit))
}

// Subscribe implements Store. It waits for append notifications, with
// PollInterval as a bound for missed ones.
func (s *PostgresStore) Subscribe(ctx context.Context, after Cursor, fn func(Record) error) error {
	wake, stop, err := Listen(ctx, s.pool, AppendedChannel, 1)
	if err != nil {
		return err
	}
	defer stop()
	for {
		recs, err := s.ReadAll(ctx, after, 500)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
			after = r.Cursor
		}
		if len(recs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-time.After(s.PollInterval):
		}
	}
}

// AppendedChannel is notified (on commit) whenever events are appended.
const AppendedChannel = "secretlog_appended"

// Listen holds a connection LISTENing on channel and delivers each
// notification's payload on notes, which holds up to buffer payloads; when it
// is full, further ones are dropped rather than block (callers treat notes as
// wake-ups and re-read the state they follow). notes stops receiving if the
// connection is lost. stop releases the connection.
func Listen(ctx context.Context, pool *pgxpool.Pool, channel string, buffer int) (notes <-chan string, stop func(), err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Release()
		return nil, nil, err
	}
	ch := make(chan string, max(buffer, 1))
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			n, err := conn.Conn().WaitForNotification(lctx)
			if err != nil {
				return
			}
			select {
			case ch <- n.Payload:
			default:
			}
		}
	}()
	return ch, func() {
		cancel()
		<-done
		// The connection may be mid-wait; drop it rather than return it to the pool LISTENing.
		_ = conn.Conn().Close(context.Background())
		conn.Release()
	}, nil
}

// Head is the cursor of the last committed event in commit order (zero for an empty log).
func (s *PostgresStore) Head(ctx context.Context) (Cursor, error) {
	var c Cursor
	var commit int64
	err := s.pool.QueryRow(ctx, `SELECT transaction_id::text::bigint, position FROM event_log
		ORDER BY event_log.transaction_id DESC, event_log.position DESC LIMIT 1`).Scan(&commit, &c.Position)
	if errors.Is(err, pgx.ErrNoRows) {
		return Cursor{}, nil
	}
	c.Commit = uint64(commit)
	return c, err
}
