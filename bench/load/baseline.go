package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The baselines measure what this PostgreSQL, on this machine, does at the
// same concurrency without the service in front of it: single-row durable
// INSERTs (synchronous_commit on, each its own transaction) of a payload the
// size of one encrypted event, and primary-key SELECTs of such rows. They live
// in their own database on the same cluster.

const baselineDDL = `CREATE TABLE IF NOT EXISTS baseline_events (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload bytea NOT NULL
)`

// baselineRows is the least number of rows the SELECT baseline reads from.
const baselineRows = 100_000

func baselineInsert(pool *pgxpool.Pool, payloadBytes int) opFunc {
	return func(ctx context.Context, w *worker) error {
		if w.buf == nil {
			w.buf = make([]byte, payloadBytes)
			_, _ = rand.Read(w.buf)
		}
		binary.LittleEndian.PutUint64(w.buf, uint64(w.n)<<8|uint64(w.id))
		_, err := pool.Exec(ctx, `INSERT INTO baseline_events (payload) VALUES ($1)`, w.buf)
		return err
	}
}

// prepareSelectBaseline tops the table up to baselineRows rows and returns
// the highest id.
func prepareSelectBaseline(ctx context.Context, pool *pgxpool.Pool, payloadBytes int) (int64, error) {
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM baseline_events`).Scan(&n); err != nil {
		return 0, err
	}
	if n < baselineRows {
		if _, err := pool.Exec(ctx, `INSERT INTO baseline_events (payload)
			SELECT substring(convert_to(repeat(md5(g::text), $2), 'UTF8') FROM 1 FOR $3) FROM generate_series(1, $1) g`,
			baselineRows-n, payloadBytes/32+1, payloadBytes); err != nil {
			return 0, err
		}
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE baseline_events`); err != nil {
		return 0, err
	}
	var maxID int64
	err := pool.QueryRow(ctx, `SELECT max(id) FROM baseline_events`).Scan(&maxID)
	return maxID, err
}

func baselineSelect(pool *pgxpool.Pool, maxID int64) opFunc {
	return func(ctx context.Context, w *worker) error {
		var payload []byte
		return pool.QueryRow(ctx, `SELECT payload FROM baseline_events WHERE id = $1`, 1+w.rng.Int64N(maxID)).Scan(&payload)
	}
}
