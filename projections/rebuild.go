package projections

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/events"
)

// rebuildBatch is how many events one rebuild transaction applies.
const rebuildBatch = 2000

// Progress receives rebuild progress: events applied so far and the total.
type Progress func(done, total int64)

// Rebuild drops the read models and replays the whole log into them, in
// commit order, batch by batch, moving every projection's checkpoint (and its
// watermill-sql offset) with each batch. Projectors must not be running.
func Rebuild(ctx context.Context, pool *pgxpool.Pool, progress Progress, projections ...Projection) (int64, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	err = Reset(ctx, conn.Conn())
	conn.Release()
	if err != nil {
		return 0, err
	}
	var total int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM event_log`).Scan(&total); err != nil {
		return 0, err
	}
	store := events.NewPostgresStore(pool)
	var done int64
	var after events.Cursor
	if progress != nil {
		progress(0, total)
	}
	for {
		recs, err := store.ReadAll(ctx, after, rebuildBatch)
		if err != nil {
			return done, err
		}
		if len(recs) == 0 {
			return done, nil
		}
		if err := applyBatch(ctx, pool, recs, projections); err != nil {
			return done, err
		}
		after = recs[len(recs)-1].Cursor
		done += int64(len(recs))
		if done > total {
			total = done
		}
		if progress != nil {
			progress(done, total)
		}
	}
}

func applyBatch(ctx context.Context, pool *pgxpool.Pool, recs []events.Record, projections []Projection) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		for _, rec := range recs {
			for _, p := range projections {
				if err := p.Apply(ctx, tx, rec); err != nil {
					return fmt.Errorf("%s: %s@%d: %w", p.Name(), rec.Stream, rec.Version, err)
				}
			}
		}
		last := recs[len(recs)-1].Cursor
		commit := strconv.FormatUint(last.Commit, 10)
		for _, p := range projections {
			if _, err := tx.Exec(ctx, `INSERT INTO `+events.CheckpointsTable+` (projection, last_commit, last_position, events_applied)
				VALUES ($1, $2::text::xid8, $3, $4) ON CONFLICT (projection) DO UPDATE
				SET last_commit = excluded.last_commit, last_position = excluded.last_position,
				    events_applied = `+events.CheckpointsTable+`.events_applied + excluded.events_applied`,
				p.Name(), commit, last.Position, len(recs)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+events.OffsetsTable+` (consumer_group, offset_acked, last_processed_transaction_id)
				VALUES ($1, $2, $3::text::xid8) ON CONFLICT (consumer_group) DO UPDATE
				SET offset_acked = excluded.offset_acked, last_processed_transaction_id = excluded.last_processed_transaction_id`,
				p.Name(), last.Position, commit); err != nil {
				return err
			}
		}
		return nil
	})
}

// All returns every projection the service runs.
func All() []Projection {
	return []Projection{SecretProjection{}, UserSecretProjection{}}
}
