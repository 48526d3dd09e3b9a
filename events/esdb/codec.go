package esdb

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	kdb "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/secretlog/secretlog/events"
)

// This file is the mapping between secretlog's envelope and EventStoreDB's
// event model. It needs no server: every function here is unit-tested.

// ---- versions and revisions ------------------------------------------------

// expectedRevision maps a secretlog expected version to EventStoreDB's:
// secretlog versions are 1-based and EventStoreDB revisions 0-based, so
// version N is revision N-1; NoStream is NoStream and AnyVersion is Any.
// Append never sends Any (see Store.Append): it resolves AnyVersion to the
// stream's current head first, because the hash chain must link to the event
// that really precedes the new ones.
func expectedRevision(expected int64) (kdb.ExpectedRevision, error) {
	switch {
	case expected == events.AnyVersion:
		return kdb.Any{}, nil
	case expected == events.NoStream:
		return kdb.NoStream{}, nil
	case expected > 0:
		return kdb.Revision(uint64(expected - 1)), nil
	default:
		return nil, fmt.Errorf("events/esdb: invalid expected version %d", expected)
	}
}

// versionOf is the secretlog version of the event at an EventStoreDB revision.
func versionOf(revision uint64) int64 { return int64(revision) + 1 }

// revisionOf is the EventStoreDB revision of a secretlog version (>= 1).
func revisionOf(version int64) uint64 { return uint64(version - 1) }

// ---- cursors and $all positions --------------------------------------------

// noPosition is what EventStoreDB sends as the commit position of an event
// whose $all position it does not know (Position.FromInt64(-1, -1)): every
// event read from a stream on servers older than 22.6, and events written in
// explicit (TCP) transactions.
const noPosition = math.MaxUint64

// errNoPosition means the server did not say where an event is in $all.
var errNoPosition = errors.New("events/esdb: the server sent no $all position for an event read from its stream " +
	"(EventStoreDB 22.6 or later fills it in for stream reads; events written in explicit transactions never have one)")

// cursorOf maps an EventStoreDB $all position to a secretlog cursor: Commit is
// the commit position and Position the prepare position. $all is ordered by
// (commit, prepare), exactly the order Cursor.Before compares in.
func cursorOf(p kdb.Position) (events.Cursor, error) {
	if p.Commit == noPosition || p.Prepare == noPosition {
		return events.Cursor{}, errNoPosition
	}
	if p.Prepare > math.MaxInt64 {
		return events.Cursor{}, fmt.Errorf("events/esdb: prepare position %d does not fit a cursor", p.Prepare)
	}
	return events.Cursor{Commit: p.Commit, Position: int64(p.Prepare)}, nil
}

// allPosition is where a $all read or subscription after c starts: the start
// of $all for the zero cursor, else c's position. A read from a position
// includes the event there and a subscription does not; callers skip every
// event that is not strictly after c either way.
func allPosition(c events.Cursor) (kdb.AllPosition, error) {
	if c == (events.Cursor{}) {
		return kdb.Start{}, nil
	}
	if c.Position < 0 {
		return nil, fmt.Errorf("events/esdb: cursor %+v has a negative prepare position", c)
	}
	return kdb.Position{Commit: c.Commit, Prepare: uint64(c.Position)}, nil
}

// ---- system events ---------------------------------------------------------

// systemPrefix starts the names of EventStoreDB's own streams and event types.
const systemPrefix = "$"

// subscriptionFilter is the server-side filter of Subscribe: it drops events
// whose type starts with "$" (the client's ExcludeSystemEventsFilter). A
// filter has one kind only (event type or stream name), so events in system
// streams with ordinary types (persistent subscription checkpoints,
// "SubscriptionCheckpoint" in "$persistentsubscription-..." streams) are
// dropped on the client by isSystem as well.
func subscriptionFilter() *kdb.SubscriptionFilter { return kdb.ExcludeSystemEventsFilter() }

// isSystem reports whether an event of $all is EventStoreDB's own, never
// secretlog's: its type or its stream starts with "$".
func isSystem(e *kdb.RecordedEvent) bool {
	return strings.HasPrefix(e.EventType, systemPrefix) || strings.HasPrefix(e.StreamID, systemPrefix)
}

// ---- the envelope in the event metadata ------------------------------------

// envelopeFormat is the "secretlog" field of the metadata envelope.
const envelopeFormat = 1

// envelope is what an event's EventStoreDB metadata holds besides the payload:
//
//	{"secretlog":1,"occurred_at":"2024-05-06T07:08:09.123456Z","metadata":{...},"hash":"<hex sha-256>"}
//
// metadata is events.Metadata as json.Marshal encodes it, kept byte for byte:
// these are the bytes the hash covers. hash is events.EventHash of the event,
// chained to the hash of the stream's previous event exactly as in the
// PostgreSQL log (the previous hash is not repeated: it is the previous
// event's "hash"). occurred_at is the event's time at microsecond precision,
// which the hash also covers; EventStoreDB's own "created" stamp is the
// server's write time and is not used.
type envelope struct {
	OccurredAt time.Time
	Metadata   []byte
	Hash       []byte
}

// encodeEnvelope writes the envelope, with metadata (already JSON) verbatim.
func encodeEnvelope(env envelope) ([]byte, error) {
	if !json.Valid(env.Metadata) {
		return nil, errors.New("events/esdb: envelope metadata is not JSON")
	}
	at, err := json.Marshal(env.OccurredAt.UTC())
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"secretlog":%d,"occurred_at":%s,"metadata":`, envelopeFormat, at)
	b.Write(env.Metadata)
	fmt.Fprintf(&b, `,"hash":"%s"}`, hex.EncodeToString(env.Hash))
	return b.Bytes(), nil
}

type wireEnvelope struct {
	Format     int             `json:"secretlog"`
	OccurredAt *time.Time      `json:"occurred_at"`
	Metadata   json.RawMessage `json:"metadata"`
	Hash       string          `json:"hash"`
}

// decodeEnvelope reads an envelope written by encodeEnvelope; json.RawMessage
// keeps the metadata's bytes as stored.
func decodeEnvelope(b []byte) (envelope, error) {
	var w wireEnvelope
	if err := json.Unmarshal(b, &w); err != nil {
		return envelope{}, fmt.Errorf("not a secretlog envelope: %w", err)
	}
	switch {
	case w.Format != envelopeFormat:
		return envelope{}, fmt.Errorf("not a secretlog envelope (format %d)", w.Format)
	case w.OccurredAt == nil:
		return envelope{}, errors.New("secretlog envelope without occurred_at")
	case len(w.Metadata) == 0 || string(w.Metadata) == "null":
		return envelope{}, errors.New("secretlog envelope without metadata")
	}
	hash, err := hex.DecodeString(w.Hash)
	if err != nil || len(hash) != events.HashSize {
		return envelope{}, fmt.Errorf("secretlog envelope with a malformed hash %q", w.Hash)
	}
	return envelope{OccurredAt: w.OccurredAt.UTC(), Metadata: []byte(w.Metadata), Hash: hash}, nil
}

// ---- events to write -------------------------------------------------------

// head is a stream's last event as an append sees it: its version (0: no
// stream) and hash (empty for version 0).
type head struct {
	Version int64
	Hash    []byte
}

// prepared is one event ready for AppendToStream, with what was computed for it.
type prepared struct {
	Data    kdb.EventData
	Event   events.Event // normalised: id, time and payload as stored
	Version int64
	Hash    []byte
}

// checkStream refuses stream names secretlog may not append to.
func checkStream(stream string) error {
	if stream == "" {
		return errors.New("events/esdb: empty stream name")
	}
	if strings.HasPrefix(stream, systemPrefix) {
		return fmt.Errorf("events/esdb: stream %q: names starting with %q are EventStoreDB's", stream, systemPrefix)
	}
	return nil
}

// prepare normalises evs the way the PostgreSQL log does (a generated id, the
// append time, an empty payload rather than none, UTC at microsecond
// precision, the id in canonical form) and chains their hashes to h.
func prepare(stream string, h head, now time.Time, evs []events.Event) ([]prepared, error) {
	if err := checkStream(stream); err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Microsecond)
	out := make([]prepared, 0, len(evs))
	prev := h.Hash
	for i, e := range evs {
		if e.Type == "" || strings.HasPrefix(e.Type, systemPrefix) {
			return nil, fmt.Errorf("events/esdb: event type %q: want a versioned name such as SecretCreated.v1", e.Type)
		}
		if e.ID == "" {
			e.ID = uuid.NewString()
		}
		id, err := uuid.Parse(e.ID)
		if err != nil {
			return nil, fmt.Errorf("events/esdb: event id: %w", err)
		}
		e.ID = id.String()
		if e.OccurredAt.IsZero() {
			e.OccurredAt = now
		}
		e.OccurredAt = e.OccurredAt.UTC().Truncate(time.Microsecond)
		if e.Data == nil {
			e.Data = []byte{}
		}
		meta, err := json.Marshal(e.Metadata)
		if err != nil {
			return nil, err
		}
		version := h.Version + int64(i) + 1
		prev = events.EventHash(prev, stream, version, e.ID, e.Type, e.OccurredAt, e.Data, meta)
		env, err := encodeEnvelope(envelope{OccurredAt: e.OccurredAt, Metadata: meta, Hash: prev})
		if err != nil {
			return nil, err
		}
		out = append(out, prepared{
			Data: kdb.EventData{
				EventID:     id,
				EventType:   e.Type,
				ContentType: contentType(e.Data),
				Data:        e.Data,
				Metadata:    env,
			},
			Event:   e,
			Version: version,
			Hash:    prev,
		})
	}
	return out, nil
}

// contentType is JSON for payloads that are JSON (EventStoreDB projections
// can then read them) and binary otherwise; the bytes are stored as given
// either way.
func contentType(data []byte) kdb.ContentType {
	if len(data) > 0 && json.Valid(data) {
		return kdb.ContentTypeJson
	}
	return kdb.ContentTypeBinary
}

// ---- events read -----------------------------------------------------------

// stored is an event read back: the record and the metadata bytes its hash covers.
type stored struct {
	events.Record
	meta []byte
}

// decode turns an event read from EventStoreDB into a record.
func decode(e *kdb.RecordedEvent) (stored, error) {
	env, err := decodeEnvelope(e.UserMetadata)
	if err != nil {
		return stored{}, fmt.Errorf("events/esdb: event %s of %s@%d: %w", e.EventID, e.StreamID, e.EventNumber, err)
	}
	var md events.Metadata
	if err := json.Unmarshal(env.Metadata, &md); err != nil {
		return stored{}, fmt.Errorf("events/esdb: metadata of %s@%d: %w", e.StreamID, versionOf(e.EventNumber), err)
	}
	cur, err := cursorOf(e.Position)
	if err != nil {
		return stored{}, err
	}
	data := e.Data
	if data == nil {
		data = []byte{}
	}
	return stored{
		Record: events.Record{
			Event: events.Event{
				ID:         e.EventID.String(),
				Type:       e.EventType,
				Data:       data,
				Metadata:   md,
				OccurredAt: env.OccurredAt,
			},
			Stream:  e.StreamID,
			Version: versionOf(e.EventNumber),
			Cursor:  cur,
			Hash:    env.Hash,
		},
		meta: env.Metadata,
	}, nil
}

// checkChain recomputes the hash chain of one stream's events, read in
// version order from version 1, and reports the first broken link.
func checkChain(evs []stored) error {
	var prev []byte
	for i, e := range evs {
		if want := int64(i) + 1; e.Version != want {
			return fmt.Errorf("events/esdb: %s: version %d where %d was expected", e.Stream, e.Version, want)
		}
		h := events.EventHash(prev, e.Stream, e.Version, e.ID, e.Type, e.OccurredAt, e.Data, e.meta)
		if !bytes.Equal(h, e.Hash) {
			return fmt.Errorf("events/esdb: %s@%d: hash mismatch", e.Stream, e.Version)
		}
		prev = h
	}
	return nil
}
