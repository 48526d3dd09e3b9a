package projections

import (
	"context"
	"errors"
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
// event_log table in commit order. Rows and checkpoint share one transaction.
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
	var stops []func()
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	for _, p := range r.projections {
		wake, stop, err := events.Listen(ctx, r.pool, "secretlog_appended")
		if err != nil {
			return err
		}
		stops = append(stops, stop)
		ackDeadline := 30 * time.Second
		sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(r.pool), wsql.SubscriberConfig{
			ConsumerGroup:  p.Name(),
			SchemaAdapter:  events.LogSchemaAdapter{BatchSize: r.BatchSize},
			OffsetsAdapter: events.CheckpointsAdapter(),
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
	if errors.Is(err, context.Canceled) {
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
		wtx, ok := wsql.TxFromContext(ctx)
		if !ok {
			return errors.New("projections: message carries no transaction")
		}
		ptx, ok := wtx.(*wsql.PgxTx)
		if !ok {
			return fmt.Errorf("projections: unexpected transaction type %T", wtx)
		}
		// A savepoint per event: a failed event rolls back alone and is redelivered,
		// without poisoning the batch's transaction.
		sp, err := ptx.Tx.Begin(ctx)
		if err != nil {
			return err
		}
		if err := r.apply(ctx, sp, p, rec); err != nil {
			_ = sp.Rollback(ctx)
			r.logger.ErrorContext(ctx, "projection failed", "projection", p.Name(), "stream", rec.Stream,
				"version", rec.Version, "position", rec.Cursor.Position, "error", err.Error())
			return err
		}
		return sp.Commit(ctx)
	}
}

func (r *Runner) apply(ctx context.Context, tx pgx.Tx, p Projection, rec events.Record) error {
	if err := p.Apply(ctx, tx, rec); err != nil {
		return err
	}
	if r.AfterRows != nil {
		if err := r.AfterRows(ctx, tx, p.Name(), rec); err != nil {
			return err
		}
	}
	// The checkpoint moves with the rows, so rows never commit without it.
	if _, err := tx.Exec(ctx, `UPDATE `+events.CheckpointsTable+`
		SET offset_acked = $2, last_processed_transaction_id = $3::text::xid8, events_applied = events_applied + 1
		WHERE consumer_group = $1`, p.Name(), rec.Cursor.Position, strconv.FormatUint(rec.Cursor.Commit, 10)); err != nil {
		return err
	}
	payload := fmt.Sprintf("%s:%d:%d", p.Name(), rec.Cursor.Commit, rec.Cursor.Position)
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ProjectedChannel, payload)
	return err
}

// notifyBackoff makes the watermill-sql subscriber sleep until the log
// announces an append (or a short bound passes) instead of polling blindly.
type notifyBackoff struct {
	wake <-chan string
	ctx  context.Context
}

func (b *notifyBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil {
		logger.Error("projection consumer error", err, nil)
		return time.Second
	}
	if !noMsg {
		return 0
	}
	// An event can be committed yet still invisible (an older transaction is
	// open); the bound makes sure it is picked up soon after that one ends.
	select {
	case <-b.wake:
	case <-b.ctx.Done():
	case <-time.After(20 * time.Millisecond):
	}
	return 0
}
