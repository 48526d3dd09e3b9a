package events

import (
	"context"
	"errors"
)

// Expected versions with a special meaning for Append.
const (
	// NoStream: the stream must not exist yet.
	NoStream int64 = 0
	// AnyVersion: append after whatever the stream holds (no concurrency check).
	AnyVersion int64 = -1
)

// ErrNotFound means there is no such event.
var ErrNotFound = errors.New("events: no such event")

// ErrConflict means the stream's version was not the expected one: someone
// else appended first. Reload, decide again, retry.
var ErrConflict = errors.New("events: stream version conflict")

// Store is the log. Implementations keep every stream's events in version
// order and the whole log in commit order, and never change what was appended.
type Store interface {
	// Append adds events to stream if its current version equals expected
	// (or unconditionally with AnyVersion) and returns them as recorded.
	// It returns ErrConflict otherwise. All events are appended atomically.
	Append(ctx context.Context, stream string, expected int64, evs ...Event) ([]Record, error)
	// ReadStream returns the stream's events in version order (none if it does not exist).
	ReadStream(ctx context.Context, stream string) ([]Record, error)
	// ReadVersion returns the stream's event at version (ErrNotFound if none).
	ReadVersion(ctx context.Context, stream string, version int64) (Record, error)
	// ReadAll returns up to limit committed events after cursor, in commit order.
	// Events still being committed are never skipped: they are returned by a later call.
	ReadAll(ctx context.Context, after Cursor, limit int) ([]Record, error)
	// Subscribe calls fn for each event after cursor in commit order, waiting for
	// new ones, until ctx ends or fn returns an error.
	Subscribe(ctx context.Context, after Cursor, fn func(Record) error) error
}

// TailReader is a Store that reads a stream from a version on: a command
// that loaded a resource's snapshot reads only the events after it.
type TailReader interface {
	// ReadStreamAfter returns the stream's events with versions above after, in order.
	ReadStreamAfter(ctx context.Context, stream string, after int64) ([]Record, error)
}

// ReadStreamAfter reads stream's events above version after from s, with
// one ranged read when s is a TailReader.
func ReadStreamAfter(ctx context.Context, s Store, stream string, after int64) ([]Record, error) {
	if t, ok := s.(TailReader); ok {
		return t.ReadStreamAfter(ctx, stream, after)
	}
	recs, err := s.ReadStream(ctx, stream)
	if err != nil {
		return nil, err
	}
	for i, r := range recs {
		if r.Version > after {
			return recs[i:], nil
		}
	}
	return nil, nil
}
