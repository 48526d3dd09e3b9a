package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/projections"
)

// Log is what a Broker replays gaps from: the log in commit order.
type Log interface {
	ReadAll(ctx context.Context, after events.Cursor, limit int) ([]events.Record, error)
}

// SnapshotFunc loads a resource's current state (commands.Projector.Snapshot).
type SnapshotFunc func(ctx context.Context, id string, into commands.Resource) (bool, error)

// Broker fans the feed out to this process's subscribers. A source (the log
// itself, RunLogTail, or JetStream, RunNATS) hands it envelopes in commit
// order; each subscriber has a bounded buffer and is cut off with
// ErrSlowSubscriber when it fills. Each event is shown to a subscriber only
// if the resource's current state (its snapshot) allows the subscriber's
// identity to read it, checked per event.
type Broker struct {
	log      Log
	snapshot SnapshotFunc
	logger   *slog.Logger
	// Buffer is how many events a subscriber may fall behind (256).
	Buffer int
	// MaxPerCaller bounds the subscriptions of one caller (token subject in
	// its domain) on this server (16); MaxTotal those of the server (10000).
	MaxPerCaller int
	MaxTotal     int

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	callers map[string]int
	total   int

	closed    chan struct{}
	closeOnce sync.Once

	// For the metrics (RegisterMetrics): events received from the source,
	// the global position of the last one, subscriptions cut off for
	// falling behind and subscriptions refused at a limit.
	received, position, cut, refused atomic.Int64
}

// NewBroker replays from log and checks visibility with snapshot.
func NewBroker(log Log, snapshot SnapshotFunc, logger *slog.Logger) *Broker {
	return &Broker{log: log, snapshot: snapshot, logger: logger, Buffer: 256, MaxPerCaller: 16, MaxTotal: 10000,
		subs: map[*subscriber]struct{}{}, callers: map[string]int{}, closed: make(chan struct{})}
}

// Close ends every subscription with a *ClosedError naming the position to
// resume from (on this server once it is back, or on another) and refuses
// new ones with ErrClosed. The sources (RunLogTail, RunNATS) close their
// broker when they stop: a subscriber is never left waiting for events
// that no longer come.
func (b *Broker) Close() {
	b.closeOnce.Do(func() { close(b.closed) })
}

// Filter narrows a subscription.
type Filter struct {
	// ResourceType is "Secret", "UserSecret" or "TrustedSecret" ("": all).
	ResourceType string
	// Types are event types, with or without their version suffix.
	Types      []string
	ResourceID string
}

func (f Filter) matches(env Envelope) bool {
	if f.ResourceType != "" && env.ResourceType != f.ResourceType {
		return false
	}
	if f.ResourceID != "" && env.ResourceID != f.ResourceID {
		return false
	}
	if len(f.Types) > 0 && !slices.ContainsFunc(f.Types, func(t string) bool {
		return t == env.Type || t == events.BaseName(env.Type)
	}) {
		return false
	}
	return true
}

// Errors that end a subscription.
var (
	// ErrSlowSubscriber: the subscriber fell further behind than the buffer.
	ErrSlowSubscriber = errors.New("feed: subscriber fell behind")
	// ErrTooManySubscriptions: the caller or the server is at its limit.
	ErrTooManySubscriptions = errors.New("feed: too many subscriptions")
	// ErrClosed: the server stopped serving the change feed (it is
	// shutting down).
	ErrClosed = errors.New("feed: the server stopped serving the change feed")
)

// SlowError is ErrSlowSubscriber with the last position delivered, from
// which the client resumes: every event up to it that the subscriber may
// see was handed to the subscription's channel.
type SlowError struct {
	Buffer int
	Last   string
}

func (e *SlowError) Error() string {
	msg := fmt.Sprintf("the subscriber fell more than %d events behind and was disconnected (SECRETLOG_SUBSCRIPTION_BUFFER)", e.Buffer)
	if e.Last != "" {
		msg += "; resubscribe with after: \"" + e.Last + "\" to lose nothing"
	}
	return msg
}

func (e *SlowError) Unwrap() error { return ErrSlowSubscriber }

// ClosedError is ErrClosed with the last position delivered (as in
// SlowError), from which the client resumes.
type ClosedError struct {
	Last string
}

func (e *ClosedError) Error() string {
	msg := "the server stopped serving the change feed (it is shutting down)"
	if e.Last != "" {
		msg += "; resubscribe with after: \"" + e.Last + "\" to lose nothing"
	}
	return msg
}

func (e *ClosedError) Unwrap() error { return ErrClosed }

var errOverflow = errors.New("feed: overflow")

type subscriber struct {
	domain string
	kind   string
	ch     chan Envelope
	over   chan struct{}
	once   sync.Once
}

func (s *subscriber) overflow() { s.once.Do(func() { close(s.over) }) }

// Publish hands env to every subscriber of its domain; a subscriber whose
// buffer is full is marked slow (its run ends with ErrSlowSubscriber).
// Sources call it in commit order.
func (b *Broker) Publish(env Envelope) {
	b.received.Add(1)
	b.position.Store(env.Cursor.Position)
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.domain != env.Tenant.DomainID || (s.kind != "" && s.kind != env.ResourceType) {
			continue
		}
		select {
		case s.ch <- env:
		default:
			s.overflow()
			delete(b.subs, s)
		}
	}
}

func (b *Broker) register(domain, kind string) *subscriber {
	s := &subscriber{domain: domain, kind: kind, ch: make(chan Envelope, max(b.Buffer, 1)), over: make(chan struct{})}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (b *Broker) unregister(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// Open is how many subscriptions are open now (replaying or live).
func (b *Broker) Open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// Subscribers is how many subscriptions receive live events now.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func (b *Broker) take(id auth.Identity) (func(), error) {
	key := id.DomainID + "\x00" + id.Subject
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.callers[key] >= max(b.MaxPerCaller, 1) {
		b.refused.Add(1)
		return nil, fmt.Errorf("%w: this caller has %d open subscriptions on this server (SECRETLOG_MAX_CALLER_SUBSCRIPTIONS)", ErrTooManySubscriptions, b.callers[key])
	}
	if b.total >= max(b.MaxTotal, 1) {
		b.refused.Add(1)
		return nil, fmt.Errorf("%w: this server serves %d subscriptions (SECRETLOG_MAX_SUBSCRIPTIONS)", ErrTooManySubscriptions, b.total)
	}
	b.callers[key]++
	b.total++
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.callers[key]--; b.callers[key] <= 0 {
			delete(b.callers, key)
		}
		b.total--
	}, nil
}

// replayAttempts bounds how often a subscription replays the log again
// because live events overflowed its buffer while it was replaying.
const replayAttempts = 4

// replayPage is how many events one read of a replay takes.
const replayPage = 256

// Subscribe streams the events id may see that f matches, in commit order,
// until ctx ends or the subscription fails. With after, it first replays
// every event after that position from the log, then continues live
// without a gap or a repeat. The channel closes at the end; err then tells
// why (nil when ctx ended).
func (b *Broker) Subscribe(ctx context.Context, id auth.Identity, f Filter, after *events.Cursor) (<-chan Envelope, func() error, error) {
	if id.Validate() != nil {
		return nil, nil, errors.New("feed: invalid identity")
	}
	select {
	case <-b.closed:
		return nil, nil, ErrClosed
	default:
	}
	release, err := b.take(id)
	if err != nil {
		return nil, nil, err
	}
	out := make(chan Envelope)
	var runErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		defer release()
		runErr = b.run(ctx, id, f, after, out)
		if ctx.Err() != nil {
			runErr = nil
		}
	}()
	return out, func() error { <-done; return runErr }, nil
}

func (b *Broker) run(ctx context.Context, id auth.Identity, f Filter, after *events.Cursor, out chan<- Envelope) error {
	var last *events.Cursor
	if after != nil {
		c := *after
		last = &c
	}
	// over is the live buffer's overflow signal while delivering live
	// events (nil while replaying): a subscriber blocked on a slow client
	// is cut off as soon as its buffer overflows.
	var over <-chan struct{}
	deliver := func(env Envelope) error {
		if last != nil && !last.Before(env.Cursor) {
			return nil // replayed already, or a repeat (at-least-once)
		}
		prev := last
		c := env.Cursor
		last = &c
		ok, err := b.visible(ctx, id, f, env)
		if err != nil || !ok {
			return err
		}
		select {
		case out <- env:
			return nil
		case <-over:
			last = prev // not delivered: the client resumes before it
			return errOverflow
		case <-b.closed:
			last = prev
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	position := func() string {
		if last == nil {
			return ""
		}
		return FormatPosition(*last)
	}
	slow := func() error {
		b.cut.Add(1)
		return &SlowError{Buffer: b.Buffer, Last: position()}
	}
	closed := func() error { return &ClosedError{Last: position()} }
	for attempt := 0; ; attempt++ {
		s := b.register(id.DomainID, f.ResourceType)
		over = nil
		if last != nil {
			err := b.replay(ctx, *last, deliver)
			if errors.Is(err, ErrClosed) {
				b.unregister(s)
				return closed()
			}
			if err != nil {
				b.unregister(s)
				return err
			}
			select {
			case <-s.over:
				// Live events piled up while the gap was replayed: replay
				// again from where it got to.
				if attempt+1 < replayAttempts {
					continue
				}
				return slow()
			default:
			}
		}
		over = s.over
		for {
			select {
			case env := <-s.ch:
				if err := deliver(env); errors.Is(err, errOverflow) {
					return slow()
				} else if errors.Is(err, ErrClosed) {
					b.unregister(s)
					return closed()
				} else if err != nil {
					b.unregister(s)
					return err
				}
			case <-s.over:
				return slow()
			case <-b.closed:
				b.unregister(s)
				return closed()
			case <-ctx.Done():
				b.unregister(s)
				return nil
			}
		}
	}
}

// replay delivers every settled event after from, page by page.
func (b *Broker) replay(ctx context.Context, from events.Cursor, deliver func(Envelope) error) error {
	for {
		select {
		case <-b.closed:
			return ErrClosed
		default:
		}
		recs, err := b.log.ReadAll(ctx, from, replayPage)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		envs, err := envelopes(recs)
		if err != nil {
			return err
		}
		if q, ok := b.log.(querierLog); ok {
			if err := Enrich(ctx, q.Querier(), envs); err != nil {
				return err
			}
		}
		for _, env := range envs {
			if err := deliver(env); err != nil {
				return err
			}
		}
		from = recs[len(recs)-1].Cursor
	}
}

// visible reports whether id may see env now: f matches, and the
// resource's current state allows id to read it (the tenancy rules of
// queries; a secret moved to another project is checked where it is now).
func (b *Broker) visible(ctx context.Context, id auth.Identity, f Filter, env Envelope) (bool, error) {
	if env.Tenant.DomainID != id.DomainID || !f.matches(env) {
		return false, nil
	}
	res, ok := commands.NewResource(env.ResourceID)
	if !ok {
		return false, nil
	}
	found, err := b.snapshot(ctx, env.ResourceID, res)
	if err != nil || !found {
		return false, err
	}
	return res.Allows(id, commands.ActRead), nil
}

func envelopes(recs []events.Record) ([]Envelope, error) {
	out := make([]Envelope, 0, len(recs))
	for _, r := range recs {
		env, err := FromRecord(r)
		if err != nil {
			return nil, err
		}
		out = append(out, env)
	}
	return out, nil
}

// querierLog is a Log on PostgreSQL, whose audit rows fill data versions.
type querierLog interface {
	Querier() events.Querier
}

// PostgresLog is the PostgreSQL log as a broker's Log (with data versions
// from the audit trail).
type PostgresLog struct {
	Pool *pgxpool.Pool
	// Projected, when the log is projected asynchronously, holds events
	// back until the read models show them: tenancy is checked against
	// them, and a subscriber then reads what it was told of.
	Projected bool
	// Store, when set, is the log when it is not the event_log table
	// (EventStoreDB; always Projected). The audit trail stays in Pool.
	Store events.Store
}

// ReadAll implements Log.
func (l PostgresLog) ReadAll(ctx context.Context, after events.Cursor, limit int) ([]events.Record, error) {
	var recs []events.Record
	var err error
	if l.Store != nil {
		recs, err = l.Store.ReadAll(ctx, after, limit)
	} else {
		recs, err = events.ReadAllIn(ctx, l.Pool, after, limit, true)
	}
	if err != nil || !l.Projected || len(recs) == 0 {
		return recs, err
	}
	upto, err := projections.Position(ctx, l.Pool, projections.ReadModelsConsumer)
	if err != nil {
		return nil, err
	}
	for i, r := range recs {
		if upto.Before(r.Cursor) {
			return recs[:i], nil
		}
	}
	return recs, nil
}

// Querier implements querierLog.
func (l PostgresLog) Querier() events.Querier { return l.Pool }

// Head is the log's position now, as a subscription's after: below every
// transaction still running (they commit later and must not be skipped), so
// every event that commits from now on comes after it, and so may some of
// transactions that committed a moment before.
func Head(ctx context.Context, q events.Querier) (events.Cursor, error) {
	var xmin int64
	if err := q.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin); err != nil {
		return events.Cursor{}, err
	}
	return events.Cursor{Commit: uint64(xmin - 1), Position: 1<<63 - 1}, nil
}

// head is where a tail of l starts: everything after it is still to come.
func (l PostgresLog) head(ctx context.Context) (events.Cursor, error) {
	if l.Store != nil {
		return projections.Position(ctx, l.Pool, projections.ReadModelsConsumer)
	}
	return Head(ctx, l.Pool)
}

// Head is Head on b's log (a PostgresLog).
func (b *Broker) Head(ctx context.Context) (events.Cursor, error) {
	if l, ok := b.log.(PostgresLog); ok {
		return l.head(ctx)
	}
	q, ok := b.log.(querierLog)
	if !ok {
		return events.Cursor{}, errors.New("feed: this log cannot tell its position")
	}
	return Head(ctx, q.Querier())
}

// RunLogTail feeds b from the log itself until ctx ends, then closes b:
// every event of the transactions that commit from now on, in commit order
// (no lease: each server tails the log for its own subscribers).
func RunLogTail(ctx context.Context, log PostgresLog, b *Broker, logger *slog.Logger) {
	pool := log.Pool
	defer b.Close()
	var from events.Cursor
	for {
		if ctx.Err() != nil {
			return
		}
		var err error
		if from, err = log.head(ctx); err == nil {
			break
		}
		logger.Warn("feed: log tail start", "error", err.Error())
		sleep(ctx, time.Second)
	}
	channel := events.AppendedChannel
	if log.Store != nil {
		channel = projections.ProjectedChannel
	}
	for ctx.Err() == nil {
		wake, stop, err := events.Listen(ctx, pool, channel, 1)
		if err != nil {
			if ctx.Err() == nil {
				logger.Warn("feed: log tail", "error", err.Error())
			}
			sleep(ctx, time.Second)
			continue
		}
		err = tail(ctx, log, b, &from, wake)
		stop()
		if err != nil && ctx.Err() == nil {
			logger.Warn("feed: log tail", "error", err.Error())
			sleep(ctx, time.Second)
		}
	}
}

func tail(ctx context.Context, log PostgresLog, b *Broker, from *events.Cursor, wake <-chan string) error {
	var lastBusy time.Time
	for {
		recs, err := log.ReadAll(ctx, *from, replayPage)
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			envs, err := envelopes(recs)
			if err != nil {
				return err
			}
			if err := Enrich(ctx, log.Pool, envs); err != nil {
				return err
			}
			for _, env := range envs {
				b.Publish(env)
			}
			*from = recs[len(recs)-1].Cursor
			lastBusy = time.Now()
			continue
		}
		// Right after activity poll briefly: a committed event stays
		// invisible while an older transaction is open, and no second
		// notification comes when that one ends.
		bound := time.Second
		if time.Since(lastBusy) < time.Second {
			bound = 20 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-wake:
			if !ok {
				return errors.New("feed: notification connection lost")
			}
			lastBusy = time.Now()
		case <-time.After(bound):
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
