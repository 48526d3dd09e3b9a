package projections

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/events"
)

// Waiter gives read-your-writes: a writer waits until the projection has
// applied its event before answering, so its next query sees the change.
type Waiter struct {
	pool    *pgxpool.Pool
	mu      sync.Mutex
	applied map[string]events.Cursor
	changed chan struct{}
}

// NewWaiter follows ProjectedChannel until ctx ends.
func NewWaiter(ctx context.Context, pool *pgxpool.Pool) (*Waiter, error) {
	w := &Waiter{pool: pool, applied: map[string]events.Cursor{}, changed: make(chan struct{})}
	// A dropped notification or a lost connection only delays a waiter until
	// Wait's periodic refresh of the checkpoints.
	notes, stop, err := events.Listen(ctx, pool, ProjectedChannel, 1024)
	if err != nil {
		return nil, err
	}
	go func() {
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case payload := <-notes:
				w.record(payload)
			}
		}
	}()
	return w, w.refresh(ctx)
}

func (w *Waiter) record(payload string) {
	parts := strings.Split(payload, ":")
	if len(parts) != 3 {
		return
	}
	commit, err1 := strconv.ParseUint(parts[1], 10, 64)
	pos, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	w.advance(parts[0], events.Cursor{Commit: commit, Position: pos})
}

func (w *Waiter) advance(name string, c events.Cursor) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.applied[name].Before(c) {
		w.applied[name] = c
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// refresh reads the checkpoints directly: the fallback for missed notifications.
func (w *Waiter) refresh(ctx context.Context) error {
	rows, err := w.pool.Query(ctx, `SELECT projection, last_position, last_commit::text::bigint FROM `+events.CheckpointsTable)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var pos, commit int64
		if err := rows.Scan(&name, &pos, &commit); err != nil {
			return err
		}
		w.advance(name, events.Cursor{Commit: uint64(commit), Position: pos})
	}
	return rows.Err()
}

// Wait blocks until projection has applied the event at cursor, or ctx ends.
func (w *Waiter) Wait(ctx context.Context, projection string, c events.Cursor) error {
	if c == (events.Cursor{}) {
		return nil
	}
	for {
		w.mu.Lock()
		done := !w.applied[projection].Before(c)
		ch := w.changed
		w.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-time.After(250 * time.Millisecond):
			if err := w.refresh(ctx); err != nil {
				return err
			}
		}
	}
}
