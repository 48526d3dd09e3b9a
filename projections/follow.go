package projections

// The runner on a remote log (events.Store that is not the event_log table
// of the read models' database: EventStoreDB, or the PostgreSQL log with
// asynchronous projections). Each projection is a consumer of the store's
// catch-up subscription under its lease, its position (checkpoint) kept in
// log_positions and moved in the transaction that writes its rows: rows and
// position commit together, so every event is applied exactly once.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
)

// PositionsTable keeps each remote-log consumer's position.
const PositionsTable = "log_positions"

const positionsDDL = `
CREATE TABLE IF NOT EXISTS ` + PositionsTable + ` (
    consumer        text PRIMARY KEY,
    commit_position bigint NOT NULL,
    position        bigint NOT NULL
);`

// ProjectedChannel is notified (on commit) with "consumer commit position"
// whenever a remote-log consumer moves on.
const ProjectedChannel = "secretlog_projected"

// ReadModelsConsumer is the consumer that writes every read model a query
// answers from (the Inline projections and KeyShredding) on a remote log:
// writes wait for it.
const ReadModelsConsumer = "read_models"

// ReadModels is the projections a command's own transaction writes with
// the PostgreSQL log, as one consumer of a remote log: they fold events into
// the resources' snapshots (read in the consuming transaction), so they are
// applied together, in one transaction per batch.
type ReadModels struct {
	parts []Projection
}

// NewReadModels is the Inline projections and the shredding of keys.
func NewReadModels(keys *events.KeyStore) ReadModels {
	return ReadModels{parts: append(Inline(), KeyShredding{Keys: keys})}
}

// Name implements Projection.
func (ReadModels) Name() string { return ReadModelsConsumer }

// Tables implements Projection.
func (r ReadModels) Tables() []string {
	var out []string
	for _, p := range r.parts {
		out = append(out, p.Tables()...)
	}
	return out
}

// Shadow implements Projection.
func (r ReadModels) Shadow(suffix string) Projection {
	out := ReadModels{}
	for _, p := range r.parts {
		out.parts = append(out.parts, p.Shadow(suffix))
	}
	return out
}

// Queue implements Projection.
func (r ReadModels) Queue(b *pgx.Batch, changes []commands.Change) error {
	return queueAll(b, r.parts, changes)
}

// stateful reports whether p wants the resources' states (folded from the
// snapshots) rather than records alone.
func stateful(p Projection) bool {
	_, ok := p.(ReadModels)
	return ok
}

// consumeLog runs p as a consumer of r.Log from its position until ctx ends
// or an event fails (failed is then true: what came before it committed).
func (r *Runner) consumeLog(ctx context.Context, p Projection) (failed bool, err error) {
	after, err := Position(ctx, r.pool, p.Name())
	if err != nil {
		return false, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recs := make(chan events.Record, r.BatchSize)
	ended := make(chan error, 1)
	go func() {
		ended <- r.Log.Subscribe(sctx, after, func(rec events.Record) error {
			select {
			case recs <- rec:
				return nil
			case <-sctx.Done():
				return sctx.Err()
			}
		})
	}()
	for {
		var batch []events.Record
		select {
		case <-ctx.Done():
			return false, nil
		case err := <-ended:
			if ctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("subscription ended: %w", err)
		case rec := <-recs:
			batch = append(batch, rec)
		}
	gather:
		for len(batch) < r.BatchSize {
			select {
			case rec := <-recs:
				batch = append(batch, rec)
			default:
				break gather
			}
		}
		if err := r.applyLog(ctx, p, after, batch); err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			if errors.Is(err, errMoved) {
				return false, err
			}
			// Find the event that fails: apply the batch one by one.
			for _, rec := range batch {
				if err := r.applyLog(ctx, p, after, []events.Record{rec}); err != nil {
					if ctx.Err() == nil {
						r.fail(p.Name(), rec, err)
					}
					return true, nil
				}
				after = rec.Cursor
			}
			continue
		}
		after = batch[len(batch)-1].Cursor
		r.setStatus(p.Name(), func(s *RunnerStatus) {
			if s.Failing != "" {
				r.logger.Info("projection recovered", "projection", p.Name(), "position", after.Position)
			}
			s.Failing, s.FailingPosition = "", 0
		})
	}
}

// errMoved: the consumer's position is not where this runner left it (it
// lost its lease to another process, which moved on).
var errMoved = errors.New("projections: the consumer's position moved under this runner")

// applyLog applies recs (which follow after) to p in one transaction that
// also moves p's position past them, under the write lock (shared), with
// synchronous_commit off: rows and position are kept or lost together.
func (r *Runner) applyLog(ctx context.Context, p Projection, after events.Cursor, recs []events.Record) error {
	return pgx.BeginTxFunc(ctx, r.pool, writeTx, func(tx pgx.Tx) error {
		var commit, pos int64
		err := tx.QueryRow(ctx, `SELECT commit_position, position FROM `+PositionsTable+` WHERE consumer = $1 FOR UPDATE`, p.Name()).Scan(&commit, &pos)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if (events.Cursor{Commit: uint64(commit), Position: pos}) != after {
			return errMoved
		}
		var changes []commands.Change
		if stateful(p) {
			changes, err = foldChanges(ctx, tx, "", recs)
		} else {
			changes, err = asyncChanges(recs)
		}
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`SET LOCAL synchronous_commit = off`)
		if a, ok := p.(TxApplier); ok {
			if err := send(ctx, tx, b); err != nil {
				return err
			}
			b = &pgx.Batch{}
			for _, c := range changes {
				if err := a.ApplyTx(ctx, tx, c); err != nil {
					return err
				}
			}
		} else if err := p.Queue(b, changes); err != nil {
			return err
		}
		last := recs[len(recs)-1].Cursor
		b.Queue(`INSERT INTO `+PositionsTable+` (consumer, commit_position, position) VALUES ($1, $2, $3)
			ON CONFLICT (consumer) DO UPDATE SET commit_position = excluded.commit_position, position = excluded.position`,
			p.Name(), int64(last.Commit), last.Position)
		b.Queue(`SELECT pg_notify($1, $2)`, ProjectedChannel, fmt.Sprintf("%s %d %d", p.Name(), last.Commit, last.Position))
		return send(ctx, tx, b)
	})
}

// RestartConsumers sets the remote-log consumers of the read models back to
// the start of the log (their tables were emptied).
func RestartConsumers(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `DELETE FROM `+PositionsTable+` WHERE consumer = ANY($1)`, readModelConsumers())
	return err
}

// readModelConsumers names the remote-log consumers that write read models.
func readModelConsumers() []string {
	out := []string{ReadModelsConsumer}
	for _, p := range All() {
		out = append(out, p.Name())
	}
	return out
}

// Position is consumer's position (zero: from the start of the log).
func Position(ctx context.Context, q events.Querier, consumer string) (events.Cursor, error) {
	var commit, pos int64
	err := q.QueryRow(ctx, `SELECT commit_position, position FROM `+PositionsTable+` WHERE consumer = $1`, consumer).Scan(&commit, &pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.Cursor{}, nil
	}
	return events.Cursor{Commit: uint64(commit), Position: pos}, err
}

// Waiter lets writes on a remote log wait until a consumer (the read
// models) has applied their events: it follows the consumer's position
// through ProjectedChannel, and reads it from the table while anyone waits
// (a notification can be missed while the listening connection is re-made).
type Waiter struct {
	pool     *pgxpool.Pool
	consumer string
	// Timeout bounds a wait: the write is on the log whatever happens, so
	// a write whose projection is late answers anyway after it (and Late is
	// called, to log and count it).
	Timeout time.Duration
	Late    func(c events.Cursor)

	mu      sync.Mutex
	at      events.Cursor
	changed chan struct{}
}

var _ commands.Projected = (*Waiter)(nil)

// NewWaiter waits for consumer's position on pool.
func NewWaiter(pool *pgxpool.Pool, consumer string) *Waiter {
	return &Waiter{pool: pool, consumer: consumer, Timeout: 10 * time.Second, changed: make(chan struct{})}
}

// Run follows the consumer's position until ctx ends.
func (w *Waiter) Run(ctx context.Context) {
	for ctx.Err() == nil {
		notes, stop, err := events.Listen(ctx, w.pool, ProjectedChannel, 256)
		if err == nil {
			w.refresh(ctx)
			for open := true; open; {
				select {
				case <-ctx.Done():
					open = false
				case note, ok := <-notes:
					if !ok {
						open = false
						break
					}
					if c, ok := w.parse(note); ok {
						w.advance(c)
					}
				}
			}
			stop()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// parse reads a notification of this waiter's consumer.
func (w *Waiter) parse(note string) (events.Cursor, bool) {
	f := strings.Fields(note)
	if len(f) != 3 || f[0] != w.consumer {
		return events.Cursor{}, false
	}
	commit, err1 := strconv.ParseUint(f[1], 10, 64)
	pos, err2 := strconv.ParseInt(f[2], 10, 64)
	return events.Cursor{Commit: commit, Position: pos}, err1 == nil && err2 == nil
}

func (w *Waiter) advance(c events.Cursor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.at.Before(c) {
		w.at = c
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

func (w *Waiter) refresh(ctx context.Context) {
	if c, err := Position(ctx, w.pool, w.consumer); err == nil {
		w.advance(c)
	}
}

// Wait implements commands.Projected.
func (w *Waiter) Wait(ctx context.Context, c events.Cursor) error {
	return w.wait(ctx, c, w.Timeout)
}

// CatchUp waits (as long as ctx lets it) until the consumer has applied
// the log up to its head now.
func (w *Waiter) CatchUp(ctx context.Context, log interface {
	Head(context.Context) (events.Cursor, error)
}) error {
	head, err := log.Head(ctx)
	if err != nil {
		return err
	}
	if err := w.wait(ctx, head, 0); err != nil {
		return fmt.Errorf("catching up with the log: %w", err)
	}
	return nil
}

// wait waits for c to be applied, at most timeout (0: as long as ctx lets it).
func (w *Waiter) wait(ctx context.Context, c events.Cursor, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	if timeout <= 0 {
		deadline.Stop()
	}
	defer deadline.Stop()
	poll := 200 * time.Millisecond
	for {
		w.mu.Lock()
		done, changed := !w.at.Before(c), w.changed
		w.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-time.After(poll):
			w.refresh(ctx)
		case <-deadline.C:
			if w.Late != nil {
				w.Late(c)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
