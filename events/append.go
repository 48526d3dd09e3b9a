package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what appends run on: a pool, a connection or a transaction.
// Callers that commit other rows together with their events (inline
// projections, data keys) pass their transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Head is a stream's last event: its version and hash (zero for a stream
// that does not exist yet). New events chain their hash to it.
type Head struct {
	Version int64
	Hash    []byte
}

// Append is one stream's part of an insert: the head it builds on and the
// events that follow it.
type Append struct {
	Stream string
	Head   Head
	Events []Event
}

// insertSQL inserts every event, with its stream, version and chained hash
// computed by Insert, in one statement. A concurrent append of the same
// version fails on the (stream_id, version) unique key.
const insertSQL = `
INSERT INTO event_log (event_id, stream_id, version, type, data, metadata, occurred_at, hash)
SELECT e.event_id, e.stream_id, e.version, e.type, e.data, e.metadata, e.occurred_at, e.hash
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::json[], $7::timestamptz[], $8::bytea[])
         WITH ORDINALITY AS e(event_id, stream_id, version, type, data, metadata, occurred_at, hash, ord)
ORDER BY e.ord
RETURNING position, transaction_id::text::bigint`

// headsSQL reads the last version and hash of each stream, one index probe each.
const headsSQL = `SELECT s.id, h.version, h.hash FROM unnest($1::text[]) AS s(id)
CROSS JOIN LATERAL (SELECT version, hash FROM event_log WHERE stream_id = s.id ORDER BY version DESC LIMIT 1) h`

// Heads returns the heads of streams; a stream without events is absent.
func Heads(ctx context.Context, q Querier, streams ...string) (map[string]Head, error) {
	rows, err := q.Query(ctx, headsSQL, streams)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]Head, len(streams))
	for rows.Next() {
		var id string
		var h Head
		if err := rows.Scan(&id, &h.Version, &h.Hash); err != nil {
			return nil, err
		}
		out[id] = h
	}
	return out, rows.Err()
}

// Insert appends each stream's events after its head, in one statement on q,
// and returns them as recorded (versions, hashes, cursors). Each event's hash
// is chained to the one before it in its stream (EventHash). When a head is
// stale (someone appended first) it returns ErrConflict; q's transaction is
// then aborted.
func Insert(ctx context.Context, q Querier, appends ...Append) ([]Record, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	var n int
	for _, a := range appends {
		n += len(a.Events)
	}
	if n == 0 {
		return nil, errors.New("events: nothing to append")
	}
	recs := make([]Record, 0, n)
	ids, streams, versions, types := make([]uuid.UUID, 0, n), make([]string, 0, n), make([]int64, 0, n), make([]string, 0, n)
	datas, metas, times, hashes := make([][]byte, 0, n), make([][]byte, 0, n), make([]time.Time, 0, n), make([][]byte, 0, n)
	for _, a := range appends {
		prev := a.Head.Hash
		for i, e := range a.Events {
			id, meta, err := normalize(&e, now)
			if err != nil {
				return nil, err
			}
			version := a.Head.Version + int64(i) + 1
			prev = EventHash(prev, a.Stream, version, e.ID, e.Type, e.OccurredAt, e.Data, meta)
			recs = append(recs, Record{Event: e, Stream: a.Stream, Version: version, Hash: prev})
			ids, streams, versions, types = append(ids, id), append(streams, a.Stream), append(versions, version), append(types, e.Type)
			datas, metas, times, hashes = append(datas, e.Data), append(metas, meta), append(times, e.OccurredAt), append(hashes, prev)
		}
	}
	rows, err := q.Query(ctx, insertSQL, ids, streams, versions, types, datas, metas, times, hashes)
	if err != nil {
		return nil, err
	}
	i := 0
	for rows.Next() {
		var commit int64
		if err := rows.Scan(&recs[i].Cursor.Position, &commit); err != nil {
			rows.Close()
			return nil, err
		}
		recs[i].Cursor.Commit = uint64(commit)
		i++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "event_log_stream_id_version_key" {
			return nil, ErrConflict
		}
		return nil, err
	}
	if i != n {
		return nil, fmt.Errorf("events: append inserted %d of %d events", i, n)
	}
	return recs, nil
}

// normalize fills an event's defaults (id, time, empty payload) as stored and
// returns its id and the exact metadata bytes its hash covers.
func normalize(e *Event, now time.Time) (uuid.UUID, []byte, error) {
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = now
	}
	if e.Data == nil {
		e.Data = []byte{}
	}
	e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return id, nil, fmt.Errorf("events: event id: %w", err)
	}
	// The hash covers the id as stored: canonical lowercase.
	e.ID = id.String()
	// Marshalled once: these bytes are hashed and stored as they are (json keeps them).
	meta, err := json.Marshal(e.Metadata)
	return id, meta, err
}

// Append implements Store: it reads the stream's head, checks the expected
// version and inserts the events in one statement (two round trips, no
// explicit transaction).
func (s *PostgresStore) Append(ctx context.Context, stream string, expected int64, evs ...Event) ([]Record, error) {
	if len(evs) == 0 {
		return nil, errors.New("events: nothing to append")
	}
	for attempt := 0; ; attempt++ {
		heads, err := Heads(ctx, s.pool, stream)
		if err != nil {
			return nil, err
		}
		head := heads[stream]
		if expected >= 0 && head.Version != expected {
			return nil, ErrConflict
		}
		recs, err := Insert(ctx, s.pool, Append{Stream: stream, Head: head, Events: evs})
		// AnyVersion promises no concurrency check: a lost race for the next
		// version number is retried, not reported.
		if errors.Is(err, ErrConflict) && expected < 0 && attempt < 16 {
			continue
		}
		return recs, err
	}
}
