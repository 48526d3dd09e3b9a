package projections

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/events"
)

// ProjectedChannel is notified (on commit) with "name:commit:position" each
// time a projection applies an event; Waiter follows it.
const ProjectedChannel = "secretlog_projected"

// Runner feeds projections from the log through a Watermill router: one
// watermill-sql subscriber (consumer group) per projection, reading the
// event_log table in commit order. The handler queues each delivered event
// and a flusher applies what is queued in one transaction together with the
// projection's checkpoint, so rows and checkpoint always commit together and
// a busy projection writes in batches. The checkpoint is the truth: on start
// the delivery offset is rewound to it, so nothing queued but unapplied when a
// process dies is lost, and redeliveries at or before it are skipped.
type Runner struct {
	pool        *pgxpool.Pool
	projections []Projection
	logger      *slog.Logger
	// BatchSize is how many events one consuming transaction applies.
	BatchSize int
	// AfterRows, when set, runs after a projection wrote a batch's rows (rec
	// is the batch's last event) and before they commit: tests use it to kill
	// the projector at that point.
	AfterRows func(ctx context.Context, tx pgx.Tx, projection string, rec events.Record) error
	// MaxBatch bounds the events one flush applies (default 1000).
	MaxBatch int
}

// NewRunner prepares a runner of projections over pool.
func NewRunner(pool *pgxpool.Pool, logger *slog.Logger, projections ...Projection) *Runner {
	return &Runner{pool: pool, projections: projections, logger: logger, BatchSize: 256}
}

// Run consumes until ctx ends. It signals ready (if non-nil) once subscribed.
func (r *Runner) Run(ctx context.Context, ready chan<- struct{}) error {
	wlog := watermill.NewSlogLoggerWithLevelMapping(r.logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		return err
	}
	router.AddMiddleware(middleware.Recoverer)
	// One LISTEN connection wakes every projection's subscriber.
	appended, stop, err := events.Listen(ctx, r.pool, events.AppendedChannel, 1)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer stop()
	wakes := make([]chan string, len(r.projections))
	for i := range wakes {
		wakes[i] = make(chan string, 1)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case v := <-appended:
				for _, w := range wakes {
					select {
					case w <- v:
					default:
					}
				}
			}
		}
	}()
	if err := r.rewind(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	for i, p := range r.projections {
		wake := wakes[i]
		q := newQueue(r.maxBatch())
		go r.flusher(ctx, p, q)
		ackDeadline := 30 * time.Second
		sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(r.pool), wsql.SubscriberConfig{
			ConsumerGroup:  p.Name(),
			SchemaAdapter:  events.LogSchemaAdapter{BatchSize: r.BatchSize},
			OffsetsAdapter: events.OffsetsAdapter(),
			AckDeadline:    &ackDeadline,
			ResendInterval: 50 * time.Millisecond,
			BackoffManager: &notifyBackoff{wake: wake, ctx: ctx},
		}, wlog)
		if err != nil {
			return err
		}
		router.AddConsumerHandler(p.Name(), events.LogTopic, sub, r.handler(q))
	}
	if ready != nil {
		go func() {
			select {
			case <-router.Running():
				close(ready)
			case <-ctx.Done():
			}
		}()
	}
	err = router.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (r *Runner) maxBatch() int {
	if r.MaxBatch > 0 {
		return r.MaxBatch
	}
	return 1000
}

// rewind moves each projection's delivery offset back to its checkpoint
// (or removes it when there is no checkpoint: deliver from the start).
func (r *Runner) rewind(ctx context.Context) error {
	for _, p := range r.projections {
		err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM `+events.OffsetsTable+` WHERE consumer_group = $1`, p.Name()); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+events.OffsetsTable+` (consumer_group, offset_acked, last_processed_transaction_id)
				SELECT projection, last_position, last_commit FROM `+events.CheckpointsTable+` WHERE projection = $1`, p.Name())
			return err
		})
		if err != nil {
			return fmt.Errorf("rewind %s: %w", p.Name(), err)
		}
	}
	return nil
}

// handler queues each delivered event for the flusher and acknowledges it.
func (r *Runner) handler(q *queue) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		rec, err := events.RecordFromMessage(msg)
		if err != nil {
			return err
		}
		return q.push(msg.Context(), rec)
	}
}

// queue hands delivered events to the flusher; push blocks while it is full.
type queue struct {
	mu    sync.Mutex
	recs  []events.Record
	max   int
	ready chan struct{} // signalled when events arrive
	room  chan struct{} // signalled when a flush took events
}

func newQueue(max int) *queue {
	return &queue{max: max, ready: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func (q *queue) push(ctx context.Context, rec events.Record) error {
	for {
		q.mu.Lock()
		if len(q.recs) < q.max {
			q.recs = append(q.recs, rec)
			q.mu.Unlock()
			select {
			case q.ready <- struct{}{}:
			default:
			}
			return nil
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-q.room:
		}
	}
}

// take waits for events and returns all that are queued.
func (q *queue) take(ctx context.Context) ([]events.Record, error) {
	for {
		q.mu.Lock()
		recs := q.recs
		q.recs = nil
		q.mu.Unlock()
		if len(recs) > 0 {
			select {
			case q.room <- struct{}{}:
			default:
			}
			return recs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-q.ready:
		}
	}
}

// flusher applies queued events batch by batch; a failed batch is retried
// (with backoff) until it commits, so an acknowledged event is never dropped
// while the process lives.
func (r *Runner) flusher(ctx context.Context, p Projection, q *queue) {
	for {
		recs, err := q.take(ctx)
		if err != nil {
			return
		}
		for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
			err := r.project(ctx, p, recs)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return // shutting down: the batch is redelivered from the checkpoint on the next start
			}
			last := recs[len(recs)-1]
			r.logger.ErrorContext(ctx, "projection failed", "projection", p.Name(), "events", len(recs),
				"last_stream", last.Stream, "last_position", last.Cursor.Position, "error", err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}
}

// project applies recs in one transaction together with the projection's
// checkpoint. Events at or before the checkpoint were applied already (a
// redelivery after a crash) and are skipped, so each event lands exactly once.
func (r *Runner) project(ctx context.Context, p Projection, recs []events.Record) error {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Read models are rebuildable and the checkpoint commits with the rows, so
	// losing the newest projected events in a crash only means projecting them again.
	if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		return err
	}
	var commit, position int64
	err = tx.QueryRow(ctx, `INSERT INTO `+events.CheckpointsTable+` (projection) VALUES ($1)
		ON CONFLICT (projection) DO UPDATE SET projection = excluded.projection
		RETURNING last_commit::text::bigint, last_position`, p.Name()).Scan(&commit, &position)
	if err != nil {
		return err
	}
	applied := events.Cursor{Commit: uint64(commit), Position: position}
	todo := recs[:0:0]
	for _, rec := range recs {
		if applied.Before(rec.Cursor) {
			todo = append(todo, rec)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if bulk, ok := p.(BatchApplier); ok {
		err = bulk.ApplyBatch(ctx, tx, todo)
	} else {
		for _, rec := range todo {
			if err = p.Apply(ctx, tx, rec); err != nil {
				break
			}
		}
	}
	if err != nil {
		return err
	}
	last := todo[len(todo)-1]
	if r.AfterRows != nil {
		if err := r.AfterRows(ctx, tx, p.Name(), last); err != nil {
			return err
		}
	}
	payload := fmt.Sprintf("%s:%d:%d", p.Name(), last.Cursor.Commit, last.Cursor.Position)
	if _, err := tx.Exec(ctx, `WITH moved AS (UPDATE `+events.CheckpointsTable+`
		SET last_commit = $2::text::xid8, last_position = $3, events_applied = events_applied + $4
		WHERE projection = $1) SELECT pg_notify($5, $6)`,
		p.Name(), strconv.FormatUint(last.Cursor.Commit, 10), last.Cursor.Position, len(todo), ProjectedChannel, payload); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// notifyBackoff makes the watermill-sql subscriber sleep until the log
// announces an append instead of polling blindly. Right after activity it
// polls briefly: an event can be committed yet still invisible while an older
// transaction is open, and no second notification comes when that one ends.
type notifyBackoff struct {
	wake     <-chan string
	ctx      context.Context
	lastBusy time.Time
}

func (b *notifyBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil {
		if b.ctx.Err() == nil {
			logger.Error("projection consumer error", err, nil)
		}
		return time.Second
	}
	if !noMsg {
		b.lastBusy = time.Now()
		return 0
	}
	bound := time.Second
	if time.Since(b.lastBusy) < time.Second {
		bound = 10 * time.Millisecond
	}
	select {
	case <-b.wake:
		b.lastBusy = time.Now()
	case <-b.ctx.Done():
	case <-time.After(bound):
	}
	return 0
}
