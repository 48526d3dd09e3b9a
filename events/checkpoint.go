package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Checkpoint is a log checkpoint: the hash of the whole log up to and
// including the event at Cursor, in commit order (LogHash folded over every
// event's stored hash, from EmptyLogHash), and how many events that is.
//
// Event hashes chain each stream; checkpoints cover what they cannot: an
// event removed from the end of a stream, an event added, or events moved in
// commit order. They live in the same database as the log, so someone who
// can rewrite both can forge a consistent history: publish checkpoint hashes
// somewhere else (logs, another system) to anchor them.
type Checkpoint struct {
	Cursor    Cursor
	Events    int64
	Hash      []byte
	CreatedAt time.Time
}

// checkpointPage is how many events one query of a checkpoint or Verify walk reads.
const checkpointPage = 5000

// LatestCheckpoint returns the last checkpoint in commit order; ok is false
// when none was written yet.
func (s *PostgresStore) LatestCheckpoint(ctx context.Context) (cp Checkpoint, ok bool, err error) {
	var commit int64
	err = s.pool.QueryRow(ctx, `SELECT commit::text::bigint, position, events, hash, created_at FROM log_checkpoints
		ORDER BY log_checkpoints.commit DESC, log_checkpoints.position DESC LIMIT 1`).Scan(&commit, &cp.Cursor.Position, &cp.Events, &cp.Hash, &cp.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, err
	}
	cp.Cursor.Commit = uint64(commit)
	return cp, true, nil
}

// snapshotXmin is the oldest transaction still running: every transaction
// below it has committed or aborted, so the events below it never change.
func (s *PostgresStore) snapshotXmin(ctx context.Context) (uint64, error) {
	var xmin int64
	err := s.pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin)
	return uint64(xmin), err
}

// WriteCheckpoint extends the last checkpoint over the events committed
// since, and records a new checkpoint at the last of them. It only reads
// transactions below pg_snapshot_xmin, so the set it covers is final. It
// trusts the stored event hashes (Verify recomputes them). written is false,
// with the latest checkpoint, when there is no new event; concurrent writers
// are harmless (every checkpoint folds the same events in the same order).
func (s *PostgresStore) WriteCheckpoint(ctx context.Context) (cp Checkpoint, written bool, err error) {
	last, _, err := s.LatestCheckpoint(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	bound, err := s.snapshotXmin(ctx)
	if err != nil {
		return Checkpoint{}, false, err
	}
	next := last
	if next.Hash == nil {
		next.Hash = EmptyLogHash()
	}
	for {
		rows, err := s.pool.Query(ctx, `SELECT transaction_id::text::bigint, position, hash FROM event_log
			WHERE (transaction_id, position) > ($1::text::xid8, $2::bigint) AND transaction_id < $3::text::xid8
			ORDER BY event_log.transaction_id, event_log.position LIMIT $4`,
			fmt.Sprint(next.Cursor.Commit), next.Cursor.Position, fmt.Sprint(bound), checkpointPage)
		if err != nil {
			return Checkpoint{}, false, err
		}
		n := 0
		var commit int64
		var hash []byte
		_, err = pgx.ForEachRow(rows, []any{&commit, &next.Cursor.Position, &hash}, func() error {
			next.Cursor.Commit = uint64(commit)
			next.Hash = LogHash(next.Hash, hash)
			next.Events++
			n++
			return nil
		})
		if err != nil {
			return Checkpoint{}, false, err
		}
		if n < checkpointPage {
			break
		}
	}
	if next.Events == last.Events {
		return last, false, nil
	}
	err = s.pool.QueryRow(ctx, `INSERT INTO log_checkpoints (commit, position, events, hash) VALUES ($1::text::xid8, $2, $3, $4)
		ON CONFLICT DO NOTHING RETURNING created_at`, fmt.Sprint(next.Cursor.Commit), next.Cursor.Position, next.Events, next.Hash).Scan(&next.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		// Another writer recorded this very checkpoint first.
		cp, err := s.checkpointAt(ctx, next.Cursor)
		return cp, false, err
	}
	if err != nil {
		return Checkpoint{}, false, err
	}
	return next, true, nil
}

func (s *PostgresStore) checkpointAt(ctx context.Context, c Cursor) (Checkpoint, error) {
	cp := Checkpoint{Cursor: c}
	err := s.pool.QueryRow(ctx, `SELECT events, hash, created_at FROM log_checkpoints WHERE commit = $1::text::xid8 AND position = $2`,
		fmt.Sprint(c.Commit), c.Position).Scan(&cp.Events, &cp.Hash, &cp.CreatedAt)
	return cp, err
}

// RunCheckpointer calls WriteCheckpoint at once and then every interval
// until ctx ends, and report (when not nil) after each call that wrote a
// checkpoint or failed. Failures are not fatal: the next tick tries again. It
// logs nothing itself; a server would log each checkpoint's hash, which
// anchors it outside the database.
func (s *PostgresStore) RunCheckpointer(ctx context.Context, interval time.Duration, report func(Checkpoint, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cp, written, err := s.WriteCheckpoint(ctx)
		if ctx.Err() != nil {
			return
		}
		if report != nil && (written || err != nil) {
			report(cp, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
