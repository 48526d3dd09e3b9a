package projections

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
)

// leaseSpace is the first key of the session advisory locks that make one
// process at a time the runner of an asynchronous projection.
const leaseSpace = 0x5ea5e

// Runner applies asynchronous projections from the log through Watermill:
// one watermill-sql subscriber (consumer group) per projection reads the
// event_log table in commit order. Each projection runs in exactly one
// process at a time, the holder of its lease (a PostgreSQL advisory lock on
// a connection of its own); the others try again every LeaseRetry and take
// over when the holder's session ends. A message's rows are written in the
// subscriber's own transaction, which also moves the consumer group's offset:
// rows and offset commit together and nothing is acknowledged unapplied.
type Runner struct {
	pool *pgxpool.Pool
	// Log, when set, is a remote log the projections consume instead of the
	// event_log table (see consumeLog).
	Log         events.Store
	projections []Projection
	logger      *slog.Logger
	// LeaseRetry is how often a process without the lease tries to take it.
	LeaseRetry time.Duration
	// BatchSize is how many events one consuming transaction handles.
	BatchSize int

	mu     sync.Mutex
	status map[string]RunnerStatus
	failed *prometheus.GaugeVec
}

// RunnerStatus is what this process knows of one asynchronous projection.
type RunnerStatus struct {
	Leader bool
	// Failing is set while an event cannot be applied: its position and the
	// error (never a value; events carry no plaintext).
	Failing         string
	FailingPosition int64
}

// NewRunner prepares a runner of the given asynchronous projections.
func NewRunner(pool *pgxpool.Pool, logger *slog.Logger, projections ...Projection) *Runner {
	return &Runner{pool: pool, projections: projections, logger: logger, LeaseRetry: time.Second, BatchSize: 256,
		status: map[string]RunnerStatus{}}
}

// Register exports secretlog_projection_failing{projection} with reg.
func (r *Runner) Register(reg prometheus.Registerer) {
	r.failed = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "secretlog_projection_failing",
		Help: "1 while an asynchronous projection cannot apply an event (this process holds its lease)."}, []string{"projection"})
	reg.MustRegister(r.failed)
}

// Status reports each projection's state in this process, by name.
func (r *Runner) Status() map[string]RunnerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]RunnerStatus, len(r.status))
	for k, v := range r.status {
		out[k] = v
	}
	return out
}

// Failing lists "name at position N" for every failing projection, sorted.
func (r *Runner) Failing() []string {
	var out []string
	for name, st := range r.Status() {
		if st.Failing != "" {
			out = append(out, fmt.Sprintf("%s at position %d", name, st.FailingPosition))
		}
	}
	sort.Strings(out)
	return out
}

func (r *Runner) setStatus(name string, f func(*RunnerStatus)) {
	r.mu.Lock()
	st := r.status[name]
	f(&st)
	r.status[name] = st
	r.mu.Unlock()
	if r.failed != nil {
		v := 0.0
		if st.Failing != "" {
			v = 1
		}
		r.failed.WithLabelValues(name).Set(v)
	}
}

// Run competes for every projection's lease and runs those it holds, until
// ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range r.projections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.lead(ctx, p)
		}()
	}
	wg.Wait()
	return nil
}

// lead takes p's lease whenever it is free and runs p while holding it.
// When an event cannot be applied, consuming stops (what came before it is
// committed) and starts again from it after a growing pause.
func (r *Runner) lead(ctx context.Context, p Projection) {
	for ctx.Err() == nil {
		held, release, err := r.lease(ctx, p.Name())
		if err == nil && held != nil {
			r.setStatus(p.Name(), func(s *RunnerStatus) { s.Leader = true })
			r.logger.Info("projection lease taken", "projection", p.Name())
			for backoff := r.LeaseRetry; held.Err() == nil; backoff = min(2*backoff, 30*time.Second) {
				consume := r.consume
				if r.Log != nil {
					consume = r.consumeLog
				}
				failed, err := consume(held, p)
				if err != nil && held.Err() == nil {
					r.logger.Warn("projection consumer stopped", "projection", p.Name(), "error", err.Error())
				}
				if !failed {
					backoff = r.LeaseRetry
				}
				select {
				case <-held.Done():
				case <-time.After(backoff):
				}
			}
			release()
			r.setStatus(p.Name(), func(s *RunnerStatus) { *s = RunnerStatus{} })
			continue
		}
		if err != nil && ctx.Err() == nil {
			r.logger.Warn("projection lease", "projection", p.Name(), "error", err.Error())
		}
		select {
		case <-ctx.Done():
		case <-time.After(r.LeaseRetry):
		}
	}
}

// lease tries to take name's advisory lock (see TryLease).
func (r *Runner) lease(ctx context.Context, name string) (context.Context, func(), error) {
	return TryLease(ctx, r.pool, r.logger, name, r.LeaseRetry)
}

// TryLease tries to take the lease name: a session advisory lock on a
// connection of its own, so one process at a time does the work it guards.
// When taken, the returned context lives while it is held: it ends when ctx
// does or the session is lost (checked every check), and release gives the
// lease back. When another process holds it, held is nil.
func TryLease(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, name string, check time.Duration) (held context.Context, release func(), err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, leaseSpace, name).Scan(&ok); err != nil || !ok {
		conn.Release()
		return nil, nil, err
	}
	held, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-held.Done():
				return
			case <-time.After(check):
			}
			pctx, pcancel := context.WithTimeout(held, 2*time.Second)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil && held.Err() == nil {
				logger.Warn("lease lost", "lease", name, "error", err.Error())
				cancel()
				return
			}
		}
	}()
	return held, func() {
		cancel()
		<-stopped
		// Closing the session releases the lock, whatever state it is in.
		_ = conn.Conn().Close(context.Background())
		conn.Release()
	}, nil
}

// consume runs p's watermill-sql subscriber until ctx ends or an event
// fails (failed is then true).
func (r *Runner) consume(ctx context.Context, p Projection) (failed bool, err error) {
	// Watermill's own errors are warnings here: a stop rolls back (or fails to
	// commit) the consuming transaction it holds, which is safe (the next run
	// starts from the offset); events that cannot be applied are logged as
	// "projection failed".
	wlog := watermill.NewSlogLoggerWithLevelMapping(r.logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug, slog.LevelError: slog.LevelWarn})
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wlog)
	if err != nil {
		return false, err
	}
	appended, stop, err := events.Listen(ctx, r.pool, events.AppendedChannel, 1)
	if err != nil {
		return false, err
	}
	defer stop()
	// The subscriber shares its consuming transaction with the handler and
	// does not wait for a handler in flight when it stops: the gate lets
	// the run end only between two handlers, and no handler starts after.
	// Stopping closes the gate, then the router, which closes the subscriber
	// gracefully: it acknowledges (or rolls back) what it holds with a live
	// context, then the run ends.
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	g := &gate{}
	cancel := func() {
		g.close()
		_ = router.Close()
		cancelRun()
	}
	stopWatch := context.AfterFunc(ctx, cancel)
	defer stopWatch()
	var failure atomic.Bool
	sub, err := wsql.NewSubscriber(lazyCommit{wsql.BeginnerFromPgx(r.pool)}, wsql.SubscriberConfig{
		ConsumerGroup:  p.Name(),
		SchemaAdapter:  events.LogSchemaAdapter{BatchSize: r.BatchSize},
		OffsetsAdapter: events.OffsetsAdapter(),
		BackoffManager: &notifyBackoff{wake: appended, ctx: runCtx},
	}, wlog)
	if err != nil {
		return false, err
	}
	router.AddConsumerHandler(p.Name(), events.LogTopic, sub, r.handler(p, g, func() {
		// Stop here rather than redeliver in the same transaction: the
		// subscriber commits what came before and the next run starts at it.
		failure.Store(true)
		g.closed = true // the handler holds the gate's lock
		go func() { _ = router.Close(); cancelRun() }()
	}))
	err = router.Run(runCtx)
	if ctx.Err() != nil || failure.Load() {
		return failure.Load(), nil
	}
	return false, err
}

// TxApplier is an asynchronous projection that applies each change itself
// inside the consuming transaction (under a savepoint) instead of queueing
// statements: the change feed's forwarder publishes there, so its consumer
// group's offset moves only past events it published. An error stops
// consuming at that event, which is delivered again after a pause.
type TxApplier interface {
	ApplyTx(ctx context.Context, tx pgx.Tx, c commands.Change) error
}

// gate admits handlers one at a time until it is closed.
type gate struct {
	mu     sync.Mutex
	closed bool
}

func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

var errStopping = errors.New("projections: runner stopping")

// handler applies one delivered event inside the subscriber's transaction,
// under a savepoint so that a failure leaves the transaction usable; on a
// failure it calls failed (holding the gate).
func (r *Runner) handler(p Projection, g *gate, failed func()) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.closed {
			return errStopping
		}
		rec, err := events.RecordFromMessage(msg)
		if err != nil {
			return err
		}
		tx, err := consumingTx(msg)
		if err != nil {
			return err
		}
		ctx := msg.Context()
		err = pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
			c, err := asyncChange(rec)
			if err != nil {
				return err
			}
			if a, ok := p.(TxApplier); ok {
				return a.ApplyTx(ctx, sp, c)
			}
			b := &pgx.Batch{}
			if err := p.Queue(b, []commands.Change{c}); err != nil {
				return err
			}
			return send(ctx, sp, b)
		})
		if err != nil {
			if ctx.Err() == nil {
				r.fail(p.Name(), rec, err)
			}
			failed()
			return err
		}
		r.setStatus(p.Name(), func(s *RunnerStatus) {
			if s.Failing != "" {
				r.logger.Info("projection recovered", "projection", p.Name(), "position", rec.Cursor.Position)
			}
			s.Failing, s.FailingPosition = "", 0
		})
		return nil
	}
}

// consumingTx is the pgx transaction watermill-sql consumes msg in.
func consumingTx(msg *message.Message) (pgx.Tx, error) {
	switch tx := tx(msg).(type) {
	case wsql.PgxTx:
		return tx.Tx, nil
	case *wsql.PgxTx:
		return tx.Tx, nil
	default:
		return nil, fmt.Errorf("projections: consuming transaction is a %T", tx)
	}
}

func tx(msg *message.Message) wsql.Tx {
	t, _ := wsql.TxFromContext(msg.Context())
	return t
}

// fail reports a failing event once per position: a log line with the
// position and stream, never the payload.
func (r *Runner) fail(name string, rec events.Record, err error) {
	first := false
	r.setStatus(name, func(s *RunnerStatus) {
		first = s.FailingPosition != rec.Cursor.Position
		s.Failing, s.FailingPosition = err.Error(), rec.Cursor.Position
	})
	if first {
		r.logger.Error("projection failed", "projection", name, "position", rec.Cursor.Position,
			"stream", rec.Stream, "type", rec.Type, "error", err.Error())
	}
}

// asyncChange is the change an asynchronous projection sees: the record
// and its decoded event. It has no resource state (Next is the resource's
// empty state, telling its kind): asynchronous projections write from the
// record alone.
func asyncChange(rec events.Record) (commands.Change, error) {
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return commands.Change{}, err
	}
	next, ok := commands.NewResource(rec.Stream)
	if !ok {
		return commands.Change{}, fmt.Errorf("projections: no resource lives on stream %s", rec.Stream)
	}
	return commands.Change{Record: rec, Event: ev, Next: next}, nil
}

// lazyCommit begins consuming transactions with synchronous_commit off:
// their rows and offset are lost together or kept together, and a lost
// batch is only applied again.
type lazyCommit struct{ wsql.Beginner }

func (b lazyCommit) BeginTx(ctx context.Context, opts *stdsql.TxOptions) (wsql.Tx, error) {
	tx, err := b.Beginner.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return tx, nil
}

// gatherDelay is how long an idle subscriber, woken by an append, waits for
// more before it reads: one consuming transaction then takes them all.
const gatherDelay = 25 * time.Millisecond

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
		return gatherDelay
	case <-b.ctx.Done():
	case <-time.After(bound):
	}
	return 0
}
