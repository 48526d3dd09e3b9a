package commands

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/events"
)

// Projected is how a write waits for the read models when the log is not
// the event_log table of the read models' database (EventStoreDB, or the
// PostgreSQL log with asynchronous projections): the events are appended
// to the log first, a leased runner projects them afterwards, and the write
// answers once its last event is projected, so that the writer (and anyone
// it tells) reads what it wrote from any server.
type Projected interface {
	// Wait returns once the read models hold every event up to and
	// including cursor c (or ctx ends).
	Wait(ctx context.Context, c events.Cursor) error
}

// streamLockSpace is the first key of the session advisory locks that
// serialise writers of one stream across servers on a remote log.
const streamLockSpace = 0x5ec10c

// remote reports whether the log is remote (see Projected).
func (d Deps) remote() bool { return d.Remote != nil }

// lockStream holds the stream's writer lock (remote logs only) until unlock.
// Under it a writer loads the stream's head from the log, stores the data
// key of the version it adds (replacing one an append that never happened
// left behind: see events.KeyStore.ReplaceOrphans), and appends.
func (d Deps) lockStream(ctx context.Context, id string) (unlock func(), err error) {
	conn, err := d.DB.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, streamLockSpace, id); err != nil {
		conn.Release()
		return nil, err
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, streamLockSpace, id); err != nil {
			// Ending the session releases the lock whatever state it is in.
			_ = conn.Conn().Close(context.Background())
		}
		conn.Release()
	}, nil
}

// commit appends evs to stream id, whose state the command decided on is
// cur (an empty resource for a create), together with what commits
// alongside: checks run first, also queues statements (new data keys,
// request tokens). With the PostgreSQL log all of it and the read models
// commit in one transaction. On a remote log checks run first (their locks
// held until the events are projected), also's statements commit (nothing
// in them is used until an event names it), the events are appended, and
// the write waits for its projection.
func (d Deps) commit(ctx context.Context, id string, cur Resource, checks []precondition, also []func(*pgx.Batch), evs []events.Event) (Result, error) {
	queue := func(b *pgx.Batch) {
		for _, f := range also {
			f(b)
		}
	}
	if d.remote() {
		return d.commitRemote(ctx, id, cur, checks, queue, evs)
	}
	var res Result
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		if err := checkAll(ctx, tx, checks); err != nil {
			return err
		}
		var err error
		res, err = d.appendTx(ctx, tx, id, cur, queue, evs...)
		return err
	})
	return res, err
}

func (d Deps) commitRemote(ctx context.Context, id string, cur Resource, checks []precondition, queue func(*pgx.Batch), evs []events.Event) (Result, error) {
	// Checks take their locks in a transaction held until the events are
	// projected: a racing write checks against the read models only after
	// they show this one (a link and its trusted secret's deletion).
	if len(checks) > 0 {
		hold, err := d.DB.Begin(ctx)
		if err != nil {
			return Result{}, err
		}
		defer func() { _ = hold.Rollback(context.WithoutCancel(ctx)) }()
		if err := checkAll(ctx, hold, checks); err != nil {
			return Result{}, err
		}
	}
	b := &pgx.Batch{}
	queue(b)
	if b.Len() > 0 {
		err := d.inTx(ctx, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
		if err != nil {
			return Result{}, err
		}
	}
	recs, err := d.Store.Append(ctx, id, cur.Base().StreamVersion, evs...)
	if err != nil {
		return Result{}, err
	}
	changes, err := fold(cur, recs)
	if err != nil {
		return Result{}, err
	}
	if err := d.Remote.Wait(ctx, recs[len(recs)-1].Cursor); err != nil {
		return Result{}, err
	}
	return resultOf(id, recs, changes), nil
}
