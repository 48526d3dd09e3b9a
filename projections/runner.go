package projections

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
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
// event_log table in commit order. Each event's rows and the projection's
// checkpoint commit in one transaction; the checkpoint also makes
// redeliveries (watermill-sql is at-least-once across crashes) no-ops.
type Runner struct {
	pool        *pgxpool.Pool
	projections []Projection
	logger      *slog.Logger
	// BatchSize is how many events one consuming transaction applies.
	BatchSize int
	// AfterRows, when set, runs after a projection wrote an event's rows and
	// before they commit: tests use it to kill the projector at that point.
	AfterRows func(ctx context.Context, tx pgx.Tx, projection string, rec events.Record) error
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
	appended, stop, err := events.Listen(ctx, r.pool, "secretlog_appended")
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
	for i, p := range r.projections {
		wake := wakes[i]
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
		router.AddConsumerHandler(p.Name(), events.LogTopic, sub, r.handler(p))
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

func (r *Runner) handler(p Projection) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		ctx := msg.Context()
		rec, err := events.RecordFromMessage(msg)
		if err != nil {
			return err
		}
		if err := r.project(ctx, p, rec); err != nil {
			if ctx.Err() != nil {
				return err // shutting down: the event is redelivered on the next start
			}
			r.logger.ErrorContext(ctx, "projection failed", "projection", p.Name(), "stream", rec.Stream,
				"version", rec.Version, "position", rec.Cursor.Position, "error", err.Error())
			return err
		}
		return nil
	}
}

// project applies rec in its own transaction together with the projection's
// checkpoint: an event at or before the checkpoint was applied already (a
// redelivery after a crash) and is skipped, so each event lands exactly once.
func (r *Runner) project(ctx context.Context, p Projection, rec events.Record) error {
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
	if !(events.Cursor{Commit: uint64(commit), Position: position}).Before(rec.Cursor) {
		return nil
	}
	if err := p.Apply(ctx, tx, rec); err != nil {
		return err
	}
	if r.AfterRows != nil {
		if err := r.AfterRows(ctx, tx, p.Name(), rec); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE `+events.CheckpointsTable+`
		SET last_commit = $2::text::xid8, last_position = $3, events_applied = events_applied + 1
		WHERE projection = $1`, p.Name(), strconv.FormatUint(rec.Cursor.Commit, 10), rec.Cursor.Position); err != nil {
		return err
	}
	payload := fmt.Sprintf("%s:%d:%d", p.Name(), rec.Cursor.Commit, rec.Cursor.Position)
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ProjectedChannel, payload); err != nil {
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
