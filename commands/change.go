package commands

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/events"
)

// Decision is what a command decided against a resource's current state:
// events recorded where the resource lives afterwards (Tenant), or nothing
// (no events: the command changes nothing).
type Decision struct {
	Tenant events.Tenant
	Events []Emit
	// Also queues statements that commit with the event (a data key's destruction).
	Also func(*pgx.Batch)
	// After runs once the event committed (drop a destroyed key from the cache).
	After func()
	// Checks run first in the transaction (under locks they take); one
	// failing fails the group, whose requests are then committed one by one.
	Checks []precondition
	// Replay, when set, answers with the state at this stream version (a
	// remembered token's first result) and records nothing.
	Replay int64
}

// precondition is a check that must hold when a write commits: it runs in
// the write's transaction.
type precondition func(ctx context.Context, tx pgx.Tx) error

func checkAll(ctx context.Context, tx pgx.Tx, checks []precondition) error {
	for _, c := range checks {
		if err := c(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// Decide is a command's rule: given the resource's state (a copy of it),
// what to record, or a typed error.
type Decide func(cur Resource) (Decision, error)

// StreamQueue turns the commands on one stream into group commits: while a
// transaction for a stream is in flight, further commands on it queue; the
// next transaction decides each of them in turn against the state the ones
// before left, and appends all their events at once. A hot secret then
// costs one durable commit per batch, not per update. Across servers the
// expected-version check still decides (a lost race reloads and decides
// again).
type StreamQueue struct {
	mu     sync.Mutex
	queues map[string][]*changeRequest
}

// NewStreamQueue returns an empty queue.
func NewStreamQueue() *StreamQueue { return &StreamQueue{queues: map[string][]*changeRequest{}} }

// Emit is one event of a decision.
type Emit struct {
	Type    string
	Payload any
}

type changeRequest struct {
	ctx    context.Context
	meta   Meta
	decide Decide
	// claim is the request's token, if any (its decision remembers it).
	claim *requestToken
	done  chan changeResult
}

type changeResult struct {
	res Result
	err error
}

// maxGroup bounds how many commands one transaction decides.
const maxGroup = 256

// change runs decide for the resource id (whose empty state is empty)
// and commits what it decided, grouped with concurrent changes of the same
// stream. claim is the request's token (nil: none), which its decision
// carries.
func (d Deps) change(ctx context.Context, meta Meta, id string, empty Resource, claim *requestToken, decide Decide) (Result, error) {
	q := d.Streams
	if q == nil {
		q = NewStreamQueue()
	}
	req := &changeRequest{ctx: ctx, meta: meta, decide: decide, claim: claim, done: make(chan changeResult, 1)}
	q.mu.Lock()
	waiting, busy := q.queues[id]
	q.queues[id] = append(waiting, req)
	q.mu.Unlock()
	if !busy {
		// This request drains the stream's queue, on a context of its own:
		// the others depend on it even if its own caller goes away.
		go d.drain(context.WithoutCancel(ctx), q, id, empty)
	}
	select {
	case r := <-req.done:
		return r.res, r.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// drain commits the stream's queued requests, batch by batch, until none is left.
func (d Deps) drain(ctx context.Context, q *StreamQueue, id string, empty Resource) {
	for {
		q.mu.Lock()
		batch := q.queues[id]
		if len(batch) == 0 {
			delete(q.queues, id)
			q.mu.Unlock()
			return
		}
		if len(batch) > maxGroup {
			batch = batch[:maxGroup]
		}
		q.queues[id] = q.queues[id][len(batch):]
		q.mu.Unlock()
		d.commitGroup(ctx, id, empty, batch)
	}
}

// commitGroup loads the state once, decides every live request in order
// and appends all events in one transaction; a lost race is retried with a
// fresh state, then answered CONFLICT.
func (d Deps) commitGroup(ctx context.Context, id string, empty Resource, batch []*changeRequest) {
	live := batch[:0]
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.done <- changeResult{err: r.ctx.Err()}
		} else {
			live = append(live, r)
		}
	}
	for attempt := 0; attempt < conflictAttempts && len(live) > 0; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		results, err := d.decideAndCommit(tctx, id, empty, live)
		cancel()
		if errors.Is(err, events.ErrConflict) {
			continue
		}
		if err != nil && len(live) > 1 {
			// One request's check (or a bad value) failed the group: the
			// others must not pay for it. Commit each on its own.
			for _, r := range live {
				d.commitGroup(ctx, id, empty, []*changeRequest{r})
			}
			return
		}
		for i, r := range live {
			if err != nil {
				r.done <- changeResult{err: err}
			} else {
				r.done <- results[i]
			}
		}
		return
	}
	for _, r := range live {
		r.done <- changeResult{err: &Error{Code: Conflict, Message: "the resource was changed concurrently; retry"}}
	}
}

// decideAndCommit decides each request against the state its predecessors
// left and commits their events together. Requests whose rule refused get
// their error; the others their record and resulting state.
func (d Deps) decideAndCommit(ctx context.Context, id string, empty Resource, reqs []*changeRequest) ([]changeResult, error) {
	if d.remote() {
		unlock, err := d.lockStream(ctx, id)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	cur := empty.Clone()
	if err := d.load(ctx, id, cur); err != nil {
		return nil, err
	}
	results := make([]changeResult, len(reqs))
	state := cur
	var evs []events.Event
	var owners []int // request index of each event
	firsts := map[int]int{}
	counts := map[int]int{}
	var also []func(*pgx.Batch)
	var after []func()
	var checks []precondition
	replays := map[int]int64{}            // request -> stream version whose state answers it
	claimed := map[string]*requestToken{} // token key -> its claim in this group
	claimedBy := map[string]int{}         // token key -> the request that claimed it
	sameAs := map[int]int{}               // request -> the earlier one with its token and request
	for i, r := range reqs {
		// The same token and request as one earlier in this group gets its
		// answer, as it would once that one committed (deciding it again
		// would fail the check-and-set the first one moved on).
		if tok := r.claim; tok != nil {
			if first, ok := claimed[tok.key()]; ok && sameClaim(first, tok) {
				sameAs[i] = claimedBy[tok.key()]
				continue
			}
		}
		dec, err := r.decide(state.Clone())
		if err != nil {
			results[i].err = err
			continue
		}
		if dec.Replay > 0 {
			replays[i] = dec.Replay
			continue
		}
		tok := r.claim
		if tok != nil {
			if _, ok := claimed[tok.key()]; ok {
				// Another request under a token claimed in this group.
				results[i].err = tokenConflict()
				continue
			}
		}
		if len(dec.Events) == 0 {
			results[i].res = Result{ID: id, State: state}
			continue
		}
		firsts[i], counts[i] = len(evs), len(dec.Events)
		for _, em := range dec.Events {
			e, err := newEvent(r.meta, dec.Tenant, em.Type, em.Payload)
			if err != nil {
				return nil, err
			}
			// The next decision sees this event applied (hash and time are
			// settled by the insert; decisions do not depend on them).
			next := state.Clone()
			b := state.Base()
			if _, err := Fold(next, events.Record{Event: e, Stream: id, Version: b.StreamVersion + 1, Hash: b.Hash}); err != nil {
				return nil, err
			}
			state = next
			evs, owners = append(evs, e), append(owners, i)
		}
		if dec.Also != nil {
			also = append(also, dec.Also)
		}
		if tok != nil {
			claimed[tok.key()], claimedBy[tok.key()] = tok, i
			version := cur.Base().StreamVersion + int64(len(evs))
			also = append(also, func(b *pgx.Batch) { d.queueToken(b, tok, id, version) })
		}
		if dec.After != nil {
			after = append(after, dec.After)
		}
		checks = append(checks, dec.Checks...)
	}
	if len(evs) > 0 {
		res, err := d.commit(ctx, id, cur, checks, also, evs)
		if tokenTaken(err) {
			// Another server remembered a token of this group first: decide
			// again, when the token answers.
			return nil, events.ErrConflict
		}
		if err != nil {
			return nil, err
		}
		for _, f := range after {
			f()
		}
		for i, first := range firsts {
			last := first + counts[i]
			results[i].res = Result{ID: id, Records: res.Records[first:last], State: res.States[last-1], States: res.States[first:last]}
		}
		// A request that changed nothing answers with the state as committed.
		for i := range results {
			if results[i].err == nil && results[i].res.State != nil && results[i].res.Records == nil {
				results[i].res.State = lastBefore(res, owners, i, cur)
			}
		}
	}
	for i, j := range sameAs {
		results[i] = results[j]
	}
	for i, version := range replays {
		results[i].res, results[i].err = d.stateAt(ctx, id, version, empty)
	}
	return results, nil
}

// lastBefore is the committed state a no-op request i saw: after the last
// event of a request before it, or the loaded state.
func lastBefore(res Result, owners []int, i int, cur Resource) Resource {
	state := cur
	for k, o := range owners {
		if o < i {
			state = res.States[k]
		}
	}
	return state
}
