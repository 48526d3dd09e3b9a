package commands

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/events"
)

// Change is one recorded event with the state of its resource before and
// after it: what a projection writes rows from. For a value read (an event
// on the resource's access stream) Prev and Next are the same state.
type Change struct {
	Record events.Record
	Event  any      // the decoded payload
	Prev   Resource // nil when the event created the resource
	Next   Resource
}

// Projector keeps the read models in step with the log. Project queues the
// statements writing the rows for changes on a batch that the command sends
// in the transaction appending their events, so a write and its read models
// commit together; Snapshot loads a resource's latest state (written by
// Project) without reading its stream.
type Projector interface {
	// TxOptions begin every transaction that appends and projects.
	TxOptions() pgx.TxOptions
	Project(b *pgx.Batch, changes []Change) error
	Snapshot(ctx context.Context, id string, into Resource) (found bool, err error)
}

// inTx runs fn in one transaction on the database.
func (d Deps) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, d.DB, d.Projector.TxOptions(), fn)
}

// appendTx appends evs to the stream of cur (whose state is the one the
// command decided on) inside tx, and projects them in the same transaction,
// together with the statements also queues (data keys): the insert is one
// round trip, every read model and also's statements one more. cur is an
// empty resource for a create. A stale cur is events.ErrConflict.
func (d Deps) appendTx(ctx context.Context, tx pgx.Tx, stream string, cur Resource, also func(*pgx.Batch), evs ...events.Event) (Result, error) {
	recs, err := events.Insert(ctx, tx, events.Append{Stream: stream, Head: cur.Base().Head(), Events: evs})
	if err != nil {
		return Result{}, err
	}
	changes, err := fold(cur, recs)
	if err != nil {
		return Result{}, err
	}
	b := &pgx.Batch{}
	if err := d.Projector.Project(b, changes); err != nil {
		return Result{}, err
	}
	if also != nil {
		also(b)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return Result{}, err
	}
	return resultOf(stream, recs, changes), nil
}

// resultOf is a write's answer: its records and the states after each.
func resultOf(stream string, recs []events.Record, changes []Change) Result {
	states := make([]Resource, len(changes))
	for i, c := range changes {
		states[i] = c.Next
	}
	return Result{ID: stream, Records: recs, State: states[len(states)-1], States: states}
}

// fold applies recs to a copy of cur, one Change per record. Events are
// decoded from the bytes as stored, so the state equals a replay's.
func fold(cur Resource, recs []events.Record) ([]Change, error) {
	out := make([]Change, 0, len(recs))
	var prev Resource
	if cur.Base().StreamVersion > 0 {
		prev = cur
	}
	for _, rec := range recs {
		next := cur.Clone()
		ev, err := Fold(next, rec)
		if err != nil {
			return nil, err
		}
		out = append(out, Change{Record: rec, Event: ev, Prev: prev, Next: next})
		prev, cur = next, next
	}
	return out, nil
}

// load reads the latest state of resource id into r: its snapshot, or its
// stream when there is none (read models being rebuilt). On a remote log the
// snapshot may lag behind the log: the events after it are read and folded.
func (d Deps) load(ctx context.Context, id string, r Resource) error {
	found, err := d.Projector.Snapshot(ctx, id, r)
	if err != nil || (found && !d.remote()) {
		return err
	}
	recs, err := events.ReadStreamAfter(ctx, d.Store, id, r.Base().StreamVersion)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if _, err := Fold(r, rec); err != nil {
			return err
		}
	}
	return nil
}
