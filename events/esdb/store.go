// Package esdb is secretlog's log on EventStoreDB: an events.Store on the
// mandated client, github.com/EventStore/EventStore-Client-Go/v4.
//
// Mapping:
//
//   - A secretlog stream is an EventStoreDB stream of the same name; version N
//     is revision N-1. Append sends the expected revision (NoStream for
//     events.NoStream, revision N-1 for version N) and maps a wrong expected
//     version to events.ErrConflict.
//   - An event's id is the secretlog event id, its type the versioned name
//     (SecretCreated.v1), its data the payload bytes (content type JSON when
//     they are JSON, octet-stream otherwise) and its metadata the envelope:
//     the secretlog metadata, the time it occurred and the hash chain (see
//     envelope in codec.go).
//   - The hash chain is the PostgreSQL log's (events.EventHash over the same
//     fields), computed by the appender and kept in each event's metadata.
//     Append therefore always knows the stream's previous event: with
//     events.AnyVersion it reads the head and appends with that exact
//     revision, retrying on conflict, instead of sending Any (two racing Any
//     appends would both chain to the same predecessor).
//   - A cursor is the event's $all position: Commit the commit position and
//     Position the prepare position. ReadAll reads $all forwards after it;
//     Subscribe is a catch-up subscription to $all from it, with a
//     server-side filter dropping system events. Both skip EventStoreDB's own
//     events (types or streams starting with "$"); the caller's cursor is the
//     checkpoint.
//
// Requirements: EventStoreDB 22.6 or later (it reports $all positions for
// events read from a stream, which Append and ReadStream return), a database
// used by secretlog alone (an event in $all that is not a secretlog envelope
// is an error), and a user allowed to read $all.
package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	kdb "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/secretlog/secretlog/events"
)

// Store is an events.Store on EventStoreDB.
type Store struct {
	client *kdb.Client
	// ReadBatch bounds how many $all events one read fetches while ReadAll
	// fills a page past EventStoreDB's own events.
	ReadBatch uint64
	// AnyVersionRetries bounds how often an AnyVersion append is retried
	// after losing a race for the stream's next revision.
	AnyVersionRetries int
	// Resubscribes bounds how often Subscribe re-subscribes, from the last
	// event it delivered, after the server dropped the subscription without
	// delivering anything in between.
	Resubscribes int
}

var _ events.Store = (*Store)(nil)

// Open connects to the EventStoreDB at url, a connection string such as
// esdb://localhost:2113?tls=false or esdb+discover://admin:changeit@cluster:2113,
// and checks that $all can be read and that the server reports $all
// positions for stream reads (when the log has an event to try).
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := kdb.ParseConnectionString(url)
	if err != nil {
		// The connection string may hold a password: the error does not repeat it.
		return nil, errors.New("events/esdb: malformed EventStoreDB connection string (want esdb://host:2113?tls=false or esdb+discover://...)")
	}
	// The client logs every failed call (each cancelled subscription among
	// them) to the standard logger; errors reach callers anyway.
	cfg.Logger = kdb.NoopLogging()
	client, err := kdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("events/esdb: %w", err)
	}
	s := New(client)
	if err := s.check(ctx); err != nil {
		_ = client.Close()
		return nil, err
	}
	return s, nil
}

// check reads the last secretlog event of $all, and reads it again from its
// stream: a server that does not report $all positions for stream reads
// (older than 22.6) fails here rather than after an append.
func (s *Store) check(ctx context.Context) error {
	last, ok, err := s.Last(ctx)
	if err != nil {
		return fmt.Errorf("events/esdb: cannot read $all: %w", err)
	}
	if !ok {
		return nil
	}
	again, err := s.ReadVersion(ctx, last.Stream, last.Version)
	if err != nil {
		return err
	}
	if again.Cursor != last.Cursor {
		return fmt.Errorf("events/esdb: %s@%d is at %+v in $all but at %+v in its stream", last.Stream, last.Version, last.Cursor, again.Cursor)
	}
	return nil
}

// New uses client (which the Store's Close closes).
func New(client *kdb.Client) *Store {
	return &Store{client: client, ReadBatch: 512, AnyVersionRetries: 16, Resubscribes: 5}
}

// Close closes the client.
func (s *Store) Close() error { return s.client.Close() }

// Client is the underlying EventStoreDB client.
func (s *Store) Client() *kdb.Client { return s.client }

// ---- append ----------------------------------------------------------------

// Append implements events.Store: it finds the event the new ones follow
// (none for NoStream, version expected for a version, the stream's last for
// AnyVersion), appends with that exact expected revision, and reads the
// events back for their $all positions. A conflicting AnyVersion append is
// retried.
func (s *Store) Append(ctx context.Context, stream string, expected int64, evs ...events.Event) ([]events.Record, error) {
	if len(evs) == 0 {
		return nil, errors.New("events/esdb: nothing to append")
	}
	if _, err := expectedRevision(expected); err != nil {
		return nil, err
	}
	if err := checkStream(stream); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		h, err := s.headFor(ctx, stream, expected)
		if err != nil {
			return nil, err
		}
		recs, err := s.appendAfter(ctx, stream, h, evs)
		if errors.Is(err, events.ErrConflict) && expected == events.AnyVersion && attempt < s.AnyVersionRetries {
			continue
		}
		return recs, err
	}
}

// headFor returns the head an append with expected builds on, or
// events.ErrConflict when the stream is too short for expected.
func (s *Store) headFor(ctx context.Context, stream string, expected int64) (head, error) {
	switch {
	case expected == events.NoStream:
		return head{}, nil
	case expected > 0:
		e, err := s.readOne(ctx, stream, kdb.Forwards, kdb.Revision(revisionOf(expected)))
		if errors.Is(err, events.ErrNotFound) || (err == nil && e.Version != expected) {
			return head{}, events.ErrConflict
		}
		if err != nil {
			return head{}, err
		}
		return head{Version: e.Version, Hash: e.Hash}, nil
	default: // AnyVersion
		e, err := s.readOne(ctx, stream, kdb.Backwards, kdb.End{})
		if errors.Is(err, events.ErrNotFound) {
			return head{}, nil
		}
		if err != nil {
			return head{}, err
		}
		return head{Version: e.Version, Hash: e.Hash}, nil
	}
}

func (s *Store) appendAfter(ctx context.Context, stream string, h head, evs []events.Event) ([]events.Record, error) {
	ps, err := prepare(stream, h, time.Now(), evs)
	if err != nil {
		return nil, err
	}
	want, _ := expectedRevision(h.Version) // NoStream or the head's revision, never Any
	data := make([]kdb.EventData, len(ps))
	for i, p := range ps {
		data[i] = p.Data
	}
	res, err := s.client.AppendToStream(ctx, stream, kdb.AppendToStreamOptions{ExpectedRevision: want}, data...)
	if err != nil {
		if isCode(err, kdb.ErrorCodeWrongExpectedVersion) {
			return nil, events.ErrConflict
		}
		return nil, fmt.Errorf("events/esdb: append to %s: %w", stream, err)
	}
	last := ps[len(ps)-1].Version
	if res.NextExpectedVersion != revisionOf(last) {
		return nil, fmt.Errorf("events/esdb: append to %s ended at revision %d, not %d", stream, res.NextExpectedVersion, revisionOf(last))
	}
	// The write result carries one position for the whole append; each
	// event's own $all position comes with the events read back.
	back, err := s.read(ctx, stream, kdb.Revision(revisionOf(ps[0].Version)), uint64(len(ps)))
	if err != nil {
		return nil, fmt.Errorf("events/esdb: reading back the append to %s: %w", stream, err)
	}
	if len(back) != len(ps) {
		return nil, fmt.Errorf("events/esdb: read back %d of the %d events appended to %s", len(back), len(ps), stream)
	}
	out := make([]events.Record, len(back))
	for i, r := range back {
		if r.ID != ps[i].Event.ID || r.Version != ps[i].Version {
			return nil, fmt.Errorf("events/esdb: %s@%d is event %s, not the one appended (%s)", stream, r.Version, r.ID, ps[i].Event.ID)
		}
		out[i] = r.Record
	}
	return out, nil
}

// ---- stream reads ----------------------------------------------------------

// ReadStream implements events.Store (no events for a missing stream).
func (s *Store) ReadStream(ctx context.Context, stream string) ([]events.Record, error) {
	evs, err := s.read(ctx, stream, kdb.Start{}, math.MaxUint64)
	if err != nil {
		return nil, err
	}
	out := make([]events.Record, len(evs))
	for i, e := range evs {
		out[i] = e.Record
	}
	return out, nil
}

// ReadStreamAfter implements events.TailReader.
func (s *Store) ReadStreamAfter(ctx context.Context, stream string, after int64) ([]events.Record, error) {
	if after < 0 {
		after = 0
	}
	evs, err := s.read(ctx, stream, kdb.Revision(revisionOf(after+1)), math.MaxUint64)
	if err != nil {
		return nil, err
	}
	out := make([]events.Record, 0, len(evs))
	for _, e := range evs {
		if e.Version > after {
			out = append(out, e.Record)
		}
	}
	return out, nil
}

// ReadVersion implements events.Store.
func (s *Store) ReadVersion(ctx context.Context, stream string, version int64) (events.Record, error) {
	if version < 1 {
		return events.Record{}, events.ErrNotFound
	}
	e, err := s.readOne(ctx, stream, kdb.Forwards, kdb.Revision(revisionOf(version)))
	if err != nil {
		return events.Record{}, err
	}
	if e.Version != version { // truncated or deleted up to there
		return events.Record{}, events.ErrNotFound
	}
	return e.Record, nil
}

// VerifyStream recomputes the hash chain of one stream from its first event
// and reports the first event whose version or hash does not follow the one
// before it. (The PostgreSQL log's Verify also checks log checkpoints over
// the whole log; that exists only there.)
func (s *Store) VerifyStream(ctx context.Context, stream string) error {
	evs, err := s.read(ctx, stream, kdb.Start{}, math.MaxUint64)
	if err != nil {
		return err
	}
	return checkChain(evs)
}

// readOne reads the first event from `from` in direction dir (events.ErrNotFound if none).
func (s *Store) readOne(ctx context.Context, stream string, dir kdb.Direction, from kdb.StreamPosition) (stored, error) {
	rs, err := s.client.ReadStream(ctx, stream, kdb.ReadStreamOptions{Direction: dir, From: from}, 1)
	if err != nil {
		return stored{}, readError(stream, err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) || isCode(err, kdb.ErrorCodeResourceNotFound) {
		return stored{}, events.ErrNotFound
	}
	if err != nil {
		return stored{}, readError(stream, err)
	}
	return decode(ev.Event)
}

// read reads up to count events of stream forwards from `from` (none if it does not exist).
func (s *Store) read(ctx context.Context, stream string, from kdb.StreamPosition, count uint64) ([]stored, error) {
	rs, err := s.client.ReadStream(ctx, stream, kdb.ReadStreamOptions{Direction: kdb.Forwards, From: from}, count)
	if err != nil {
		return nil, readError(stream, err)
	}
	defer rs.Close()
	var out []stored
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if isCode(err, kdb.ErrorCodeResourceNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, readError(stream, err)
		}
		e, err := decode(ev.Event)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

func readError(stream string, err error) error {
	return fmt.Errorf("events/esdb: read %s: %w", stream, err)
}

// ---- the whole log ---------------------------------------------------------

// ReadAll implements events.Store: $all forwards after the cursor, without
// EventStoreDB's own events. A committed event is in $all at once, at a
// position after every event committed before it, so no event is ever
// skipped or held back.
func (s *Store) ReadAll(ctx context.Context, after events.Cursor, limit int) ([]events.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	// The first read asks for limit+1 events (a read from a position
	// includes the event there); reads that turn up EventStoreDB's own
	// events instead of a full page ask for twice as many, up to ReadBatch.
	batch := uint64(limit) + 1
	maxBatch := max(s.ReadBatch, batch)
	var out []events.Record
	seen := after // the last event of $all looked at, system events included
	for {
		from, err := allPosition(seen)
		if err != nil {
			return nil, err
		}
		rs, err := s.client.ReadAll(ctx, kdb.ReadAllOptions{Direction: kdb.Forwards, From: from}, batch)
		if err != nil {
			return nil, fmt.Errorf("events/esdb: read $all: %w", err)
		}
		n, full, err := s.readAllPage(rs, &seen, limit, &out)
		rs.Close()
		if err != nil || full || n < batch {
			return out, err
		}
		batch = min(2*batch, maxBatch)
	}
}

// readAllPage appends to out the secretlog events of one $all read that come
// after *seen, moving *seen past every event read. It returns how many events
// the read returned and whether out reached limit.
func (s *Store) readAllPage(rs *kdb.ReadStream, seen *events.Cursor, limit int, out *[]events.Record) (uint64, bool, error) {
	var n uint64
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return n, false, nil
		}
		if err != nil {
			return n, false, fmt.Errorf("events/esdb: read $all: %w", err)
		}
		n++
		keep, rec, err := s.next(ev, seen)
		if err != nil {
			return n, false, err
		}
		if keep {
			*out = append(*out, rec)
			if len(*out) == limit {
				return n, true, nil
			}
		}
	}
}

// next decides about one event of $all: it is delivered if it comes after
// *seen and is not a system event. *seen moves to it either way.
func (s *Store) next(ev *kdb.ResolvedEvent, seen *events.Cursor) (bool, events.Record, error) {
	e := ev.OriginalEvent()
	cur, err := cursorOf(e.Position)
	if err != nil {
		return false, events.Record{}, err
	}
	if !seen.Before(cur) {
		return false, events.Record{}, nil // the event at the start position, or an older one
	}
	*seen = cur
	if isSystem(e) {
		return false, events.Record{}, nil
	}
	rec, err := decode(e)
	if err != nil {
		return false, events.Record{}, err
	}
	return true, rec.Record, nil
}

// Head is the cursor of the last secretlog event in $all (zero when there is none).
func (s *Store) Head(ctx context.Context) (events.Cursor, error) {
	last, _, err := s.Last(ctx)
	return last.Cursor, err
}

// Last returns the last secretlog event in $all, reading backwards past
// EventStoreDB's own events; ok is false when there is none.
func (s *Store) Last(ctx context.Context) (rec events.Record, ok bool, err error) {
	rs, err := s.client.ReadAll(ctx, kdb.ReadAllOptions{Direction: kdb.Backwards, From: kdb.End{}}, math.MaxUint64)
	if err != nil {
		return events.Record{}, false, err
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return events.Record{}, false, nil
		}
		if err != nil {
			return events.Record{}, false, err
		}
		if e := ev.OriginalEvent(); !isSystem(e) {
			st, err := decode(e)
			return st.Record, err == nil, err
		}
	}
}

// Subscribe implements events.Store as a catch-up subscription to $all from
// the cursor, filtered on the server to non-system event types. It delivers
// each event at most once per call, in commit order; the checkpoint is the
// caller's (the cursor of the last event fn accepted). When the server drops
// the subscription, Subscribe subscribes again from the last event delivered,
// up to Resubscribes times in a row without progress.
func (s *Store) Subscribe(ctx context.Context, after events.Cursor, fn func(events.Record) error) error {
	seen := after
	drops := 0
	for {
		delivered, err := s.subscribeOnce(ctx, &seen, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fe stopError
		if errors.As(err, &fe) {
			return fe.err
		}
		if delivered {
			drops = 0
		}
		if drops++; drops > s.Resubscribes {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(drops) * 200 * time.Millisecond):
		}
	}
}

// stopError ends Subscribe with err: fn's error, or one no new subscription can cure.
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }

// subscribeOnce runs one subscription until it is dropped, ctx ends or fn
// fails, and reports whether it delivered anything.
func (s *Store) subscribeOnce(ctx context.Context, seen *events.Cursor, fn func(events.Record) error) (bool, error) {
	from, err := allPosition(*seen)
	if err != nil {
		return false, stopError{err} // not worth retrying
	}
	sub, err := s.client.SubscribeToAll(ctx, kdb.SubscribeToAllOptions{From: from, Filter: subscriptionFilter()})
	if err != nil {
		return false, fmt.Errorf("events/esdb: subscribe to $all: %w", err)
	}
	defer sub.Close()
	delivered := false
	for {
		msg := sub.Recv()
		switch {
		case msg.SubscriptionDropped != nil:
			return delivered, fmt.Errorf("events/esdb: $all subscription dropped: %w", msg.SubscriptionDropped.Error)
		case msg.EventAppeared != nil:
			keep, rec, err := s.next(msg.EventAppeared, seen)
			if err != nil {
				return delivered, stopError{err}
			}
			if !keep {
				continue
			}
			if err := fn(rec); err != nil {
				return delivered, stopError{err}
			}
			delivered = true
		}
		// Checkpoints (positions reached by the filter), caught-up and
		// fell-behind notices need nothing: the next event's cursor is
		// the checkpoint that matters.
	}
}

// isCode reports whether err is an EventStoreDB client error with code.
func isCode(err error, code kdb.ErrorCode) bool {
	var e *kdb.Error
	return errors.As(err, &e) && e.Code() == code
}
