package commands

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/events"
)

// accessLockSpace is the first key of the transaction advisory locks that
// serialise appenders of one access stream across servers, so concurrent
// reads never race for its next version.
const accessLockSpace = 0x5ec4ead

// AccessLog records value reads. Reads queue their access event; a few
// flushers append whatever is queued in one transaction (with its audit
// rows) and release the readers once it is durable: concurrent reads share
// one commit, and a value leaves only after its read is on the log.
type AccessLog struct {
	db        *pgxpool.Pool
	projector Projector
	queue     chan *accessRead
	// MaxBatch bounds the reads one commit records.
	MaxBatch int
	// Remote, when set, is a log that is not in db (see Deps.Remote): reads
	// are appended to it, one append per access stream, and the readers
	// released once Projected shows them in the audit trail.
	Remote    events.Store
	Projected Projected
}

type accessRead struct {
	ctx   context.Context
	cur   Resource
	event events.Event
	done  chan error
}

// NewAccessLog appends access events on db and projects them with projector.
func NewAccessLog(db *pgxpool.Pool, projector Projector) *AccessLog {
	return &AccessLog{db: db, projector: projector, queue: make(chan *accessRead, 4096), MaxBatch: 512}
}

// Run flushes queued reads with flushers goroutines until ctx ends.
func (a *AccessLog) Run(ctx context.Context, flushers int) {
	done := make(chan struct{})
	for range max(flushers, 1) {
		go func() {
			defer func() { done <- struct{}{} }()
			a.flushLoop(ctx)
		}()
	}
	for range max(flushers, 1) {
		<-done
	}
}

// Record appends e to the access stream of cur and returns once it is
// durable (or failed).
func (a *AccessLog) Record(ctx context.Context, cur Resource, e events.Event) error {
	r := &accessRead{ctx: ctx, cur: cur, event: e, done: make(chan error, 1)}
	select {
	case a.queue <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		// The read may still be recorded; the value is not returned.
		return ctx.Err()
	}
}

func (a *AccessLog) flushLoop(ctx context.Context) {
	for {
		var first *accessRead
		select {
		case <-ctx.Done():
			return
		case first = <-a.queue:
		}
		batch := []*accessRead{first}
	drain:
		for len(batch) < a.MaxBatch {
			select {
			case r := <-a.queue:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		a.flush(ctx, batch)
	}
}

// flush records batch in one transaction. If that fails, each read is
// recorded on its own, so one bad read cannot fail the others.
func (a *AccessLog) flush(ctx context.Context, batch []*accessRead) {
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.done <- r.ctx.Err() // the reader is gone: nothing to record
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	err := a.commit(ctx, live)
	if err == nil || len(live) == 1 {
		for _, r := range live {
			r.done <- err
		}
		return
	}
	for _, r := range live {
		r.done <- a.commit(ctx, []*accessRead{r})
	}
}

func (a *AccessLog) commit(ctx context.Context, batch []*accessRead) error {
	streams := make([]string, 0, len(batch))
	byStream := map[string][]*accessRead{}
	for _, r := range batch {
		s := events.AccessStream(r.cur.Base().ID)
		if _, ok := byStream[s]; !ok {
			streams = append(streams, s)
		}
		byStream[s] = append(byStream[s], r)
	}
	slices.Sort(streams)
	if a.Remote != nil {
		return a.commitRemote(ctx, streams, byStream)
	}
	return pgx.BeginTxFunc(ctx, a.db, a.projector.TxOptions(), func(tx pgx.Tx) error {
		// Locks in one order (by hash) so flushers never deadlock.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, h)
			FROM (SELECT DISTINCT hashtext(s) AS h FROM unnest($2::text[]) AS s ORDER BY 1) AS l`, accessLockSpace, streams); err != nil {
			return err
		}
		heads, err := events.Heads(ctx, tx, streams...)
		if err != nil {
			return err
		}
		appends := make([]events.Append, len(streams))
		for i, s := range streams {
			appends[i] = events.Append{Stream: s, Head: heads[s]}
			for _, r := range byStream[s] {
				appends[i].Events = append(appends[i].Events, r.event)
			}
		}
		recs, err := events.Insert(ctx, tx, appends...)
		if errors.Is(err, events.ErrConflict) {
			return errors.New("commands: access stream appended without its lock")
		}
		if err != nil {
			return err
		}
		changes := make([]Change, len(recs))
		i := 0
		for _, s := range streams {
			for _, r := range byStream[s] {
				ev, err := events.Decode(recs[i].Type, recs[i].Data)
				if err != nil {
					return err
				}
				changes[i] = Change{Record: recs[i], Event: ev, Prev: r.cur, Next: r.cur}
				i++
			}
		}
		b := &pgx.Batch{}
		if err := a.projector.Project(b, changes); err != nil {
			return err
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// commitRemote appends each stream's reads to the remote log (after
// whatever the stream holds: reads of one resource need no order among
// themselves).
func (a *AccessLog) commitRemote(ctx context.Context, streams []string, byStream map[string][]*accessRead) error {
	var last events.Cursor
	for _, s := range streams {
		evs := make([]events.Event, len(byStream[s]))
		for i, r := range byStream[s] {
			evs[i] = r.event
		}
		recs, err := a.Remote.Append(ctx, s, events.AnyVersion, evs...)
		if err != nil {
			return err
		}
		if c := recs[len(recs)-1].Cursor; last.Before(c) {
			last = c
		}
	}
	if a.Projected == nil {
		return nil
	}
	return a.Projected.Wait(ctx, last)
}
