package esdb

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	kdb "github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/secretlog/secretlog/events"
)

// These tests need no server: they cover the mapping between secretlog's
// envelope and EventStoreDB's model. The store against a real server is
// TestConformance.

func TestExpectedRevision(t *testing.T) {
	cases := []struct {
		expected int64
		want     kdb.ExpectedRevision
	}{
		{events.NoStream, kdb.NoStream{}},
		{events.AnyVersion, kdb.Any{}},
		{1, kdb.Revision(0)},
		{2, kdb.Revision(1)},
		{1 << 40, kdb.Revision(1<<40 - 1)},
	}
	for _, c := range cases {
		got, err := expectedRevision(c.expected)
		require.NoError(t, err, "expected %d", c.expected)
		require.Equal(t, c.want, got, "expected %d", c.expected)
	}
	for _, bad := range []int64{-2, -100, math.MinInt64} {
		_, err := expectedRevision(bad)
		require.Error(t, err, "expected %d", bad)
	}
}

func TestVersionRevision(t *testing.T) {
	for _, v := range []int64{1, 2, 7, 1 << 50} {
		require.Equal(t, v, versionOf(revisionOf(v)))
	}
	require.Equal(t, int64(1), versionOf(0), "revision 0 is a stream's first event, version 1")
	require.Equal(t, uint64(4), revisionOf(5))
}

func TestCursorMapping(t *testing.T) {
	c, err := cursorOf(kdb.Position{Commit: 1234, Prepare: 1200})
	require.NoError(t, err)
	require.Equal(t, events.Cursor{Commit: 1234, Position: 1200}, c)

	p, err := allPosition(c)
	require.NoError(t, err)
	require.Equal(t, kdb.Position{Commit: 1234, Prepare: 1200}, p, "a cursor maps back to its position")

	p, err = allPosition(events.Cursor{})
	require.NoError(t, err)
	require.Equal(t, kdb.Start{}, p, "the zero cursor is the start of $all")

	_, err = allPosition(events.Cursor{Commit: 5, Position: -1})
	require.Error(t, err)

	_, err = cursorOf(kdb.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64})
	require.ErrorIs(t, err, errNoPosition, "a stream read from a server that does not report positions")
	_, err = cursorOf(kdb.Position{Commit: 10, Prepare: math.MaxInt64 + 1})
	require.Error(t, err)
}

// $all is ordered by (commit, prepare); cursors must compare the same way.
func TestCursorOrderIsAllOrder(t *testing.T) {
	positions := []kdb.Position{
		{Commit: 100, Prepare: 100},
		{Commit: 250, Prepare: 180}, // an explicit transaction's events share its commit position
		{Commit: 250, Prepare: 220},
		{Commit: 251, Prepare: 251},
		{Commit: 1 << 40, Prepare: 1 << 40},
	}
	prev := events.Cursor{}
	for _, p := range positions {
		c, err := cursorOf(p)
		require.NoError(t, err)
		require.True(t, prev.Before(c), "%+v before %+v", prev, c)
		require.False(t, c.Before(prev))
		prev = c
	}
}

func TestSystemEvents(t *testing.T) {
	f := subscriptionFilter()
	require.Equal(t, kdb.EventFilterType, f.Type, "the server-side filter is on event types")
	require.Empty(t, f.Prefixes)
	re := regexp.MustCompile(f.Regex)
	for _, typ := range []string{"SecretCreated.v1", "UserSecretUpdated.v2", "x"} {
		require.True(t, re.MatchString(typ), "%s passes the filter", typ)
	}
	for _, typ := range []string{"$>", "$metadata", "$statsCollected", "$streamDeleted"} {
		require.False(t, re.MatchString(typ), "%s is filtered out", typ)
	}

	cases := []struct {
		stream, typ string
		system      bool
	}{
		{"secret-1", "SecretCreated.v1", false},
		{"secret-1", "$metadata", true},
		{"$$secret-1", "$metadata", true},
		{"$ce-secret", "$>", true},
		{"$persistentsubscription-$all::g-checkpoint", "SubscriptionCheckpoint", true},
		{"$stats-127.0.0.1:2113", "$statsCollected", true},
	}
	for _, c := range cases {
		require.Equal(t, c.system, isSystem(&kdb.RecordedEvent{StreamID: c.stream, EventType: c.typ}), "%s %s", c.stream, c.typ)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	// HTML-sensitive and line-separator characters: json.Marshal escapes
	// them, and the envelope must keep the escaped bytes as they were hashed.
	md := events.Metadata{
		Actor:         events.Actor{Subject: "<tok&en>", UserID: "ünï\u2028", Role: "DOMAIN_ADMIN", DomainID: "d"},
		Tenant:        events.Tenant{DomainID: "d", WorkspaceID: "w"},
		CorrelationID: `c"1`,
	}
	meta, err := json.Marshal(md)
	require.NoError(t, err)
	at := time.Date(2023, 12, 31, 23, 59, 58, 987654000, time.FixedZone("x", 7200))
	hash := bytes.Repeat([]byte{0xab}, events.HashSize)

	b, err := encodeEnvelope(envelope{OccurredAt: at, Metadata: meta, Hash: hash})
	require.NoError(t, err)
	require.True(t, json.Valid(b), "%s", b)
	require.True(t, bytes.Contains(b, meta), "metadata is stored verbatim")
	require.Contains(t, string(b), `"secretlog":1`)
	require.Contains(t, string(b), `"occurred_at":"2023-12-31T21:59:58.987654Z"`)
	require.Contains(t, string(b), `"hash":"`+strings.Repeat("ab", events.HashSize)+`"`)

	env, err := decodeEnvelope(b)
	require.NoError(t, err)
	require.Equal(t, meta, env.Metadata, "the hashed bytes come back byte for byte")
	require.Equal(t, hash, env.Hash)
	require.True(t, at.Equal(env.OccurredAt))
	require.Equal(t, time.UTC, env.OccurredAt.Location())
}

func TestEnvelopeRejectsOtherMetadata(t *testing.T) {
	good := `{"secretlog":1,"occurred_at":"2024-01-01T00:00:00Z","metadata":{"actor":{"role":"SYSTEM","domain_id":"d"},"tenant":{"domain_id":"d"}},"hash":"` + strings.Repeat("00", events.HashSize) + `"}`
	_, err := decodeEnvelope([]byte(good))
	require.NoError(t, err)
	for name, b := range map[string]string{
		"empty":          ``,
		"not JSON":       `\x00\x01`,
		"foreign":        `{"$correlationId":"x"}`,
		"other format":   strings.Replace(good, `"secretlog":1`, `"secretlog":2`, 1),
		"no time":        strings.Replace(good, `"occurred_at":"2024-01-01T00:00:00Z",`, ``, 1),
		"no metadata":    strings.Replace(good, `"metadata":{"actor":{"role":"SYSTEM","domain_id":"d"},"tenant":{"domain_id":"d"}},`, ``, 1),
		"null metadata":  strings.Replace(good, `{"actor":{"role":"SYSTEM","domain_id":"d"},"tenant":{"domain_id":"d"}}`, `null`, 1),
		"short hash":     strings.Replace(good, strings.Repeat("00", events.HashSize), "00", 1),
		"non-hex hash":   strings.Replace(good, strings.Repeat("00", events.HashSize), strings.Repeat("zz", events.HashSize), 1),
		"bad time":       strings.Replace(good, `2024-01-01T00:00:00Z`, `yesterday`, 1),
		"metadata array": strings.Replace(good, `{"actor":{"role":"SYSTEM","domain_id":"d"},"tenant":{"domain_id":"d"}}`, `[]`, 1),
	} {
		env, err := decodeEnvelope([]byte(b))
		if name == "metadata array" {
			// Valid JSON and an envelope, but decode (below) refuses to read it as metadata.
			require.NoError(t, err)
			_, err = decode(&kdb.RecordedEvent{UserMetadata: []byte(b), Position: kdb.Position{Commit: 1, Prepare: 1}})
		}
		require.Error(t, err, "%s: %+v", name, env)
	}
}

func testEvent(label string) events.Event {
	return events.Event{
		ID:   uuid.NewString(),
		Type: "TestHappened.v1",
		Data: []byte(`{"label":"` + label + `"}`),
		Metadata: events.Metadata{
			Actor:         events.Actor{UserID: "u", Role: "DOMAIN_ADMIN", DomainID: "d"},
			Tenant:        events.Tenant{DomainID: "d"},
			CorrelationID: "corr-" + label,
		},
		OccurredAt: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC),
	}
}

func TestPrepareChainsHashes(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.UTC)
	prevHash := bytes.Repeat([]byte{7}, events.HashSize)
	evs := []events.Event{testEvent("a"), testEvent("b"), {Type: "Empty.v1"}}
	evs[1].ID = strings.ToUpper(evs[1].ID)
	evs[1].Data = []byte{0x00, 0xff} // not JSON

	ps, err := prepare("secret-1", head{Version: 4, Hash: prevHash}, now, evs)
	require.NoError(t, err)
	require.Len(t, ps, 3)

	prev := prevHash
	for i, p := range ps {
		require.Equal(t, int64(5+i), p.Version, "versions follow the head")
		meta, err := json.Marshal(p.Event.Metadata)
		require.NoError(t, err)
		want := events.EventHash(prev, "secret-1", p.Version, p.Event.ID, p.Event.Type, p.Event.OccurredAt, p.Event.Data, meta)
		require.Equal(t, want, p.Hash, "event %d chains to the one before (the head for the first)", i)
		prev = p.Hash

		env, err := decodeEnvelope(p.Data.Metadata)
		require.NoError(t, err)
		require.Equal(t, meta, env.Metadata)
		require.Equal(t, p.Hash, env.Hash, "the metadata carries the hash")
		require.True(t, p.Event.OccurredAt.Equal(env.OccurredAt))

		require.Equal(t, p.Event.ID, p.Data.EventID.String(), "the EventStoreDB event id is the secretlog id")
		require.Equal(t, p.Event.Type, p.Data.EventType)
		require.Equal(t, p.Event.Data, p.Data.Data)
	}
	require.Equal(t, kdb.ContentTypeJson, ps[0].Data.ContentType)
	require.Equal(t, kdb.ContentTypeBinary, ps[1].Data.ContentType, "non-JSON payloads are octet-stream")
	require.Equal(t, kdb.ContentTypeBinary, ps[2].Data.ContentType, "an empty payload is octet-stream")

	require.Equal(t, strings.ToLower(evs[1].ID), ps[1].Event.ID, "ids are canonical lowercase, as hashed")
	require.True(t, ps[0].Event.OccurredAt.Equal(time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)), "microsecond precision")
	_, err = uuid.Parse(ps[2].Event.ID)
	require.NoError(t, err, "a missing id is generated")
	require.True(t, ps[2].Event.OccurredAt.Equal(now.Truncate(time.Microsecond)), "a missing time is the append time")
	require.Equal(t, []byte{}, ps[2].Event.Data)

	// A new stream's first event chains to nothing.
	first, err := prepare("secret-2", head{}, now, evs[:1])
	require.NoError(t, err)
	meta, _ := json.Marshal(first[0].Event.Metadata)
	require.Equal(t, events.EventHash(nil, "secret-2", 1, first[0].Event.ID, first[0].Event.Type, first[0].Event.OccurredAt, first[0].Event.Data, meta), first[0].Hash)
}

func TestPrepareRefuses(t *testing.T) {
	now := time.Now()
	for name, c := range map[string]struct {
		stream string
		ev     events.Event
	}{
		"system stream": {"$ce-secret", testEvent("x")},
		"empty stream":  {"", testEvent("x")},
		"system type":   {"secret-1", events.Event{Type: "$metadata"}},
		"no type":       {"secret-1", events.Event{}},
		"bad id":        {"secret-1", events.Event{ID: "not-a-uuid", Type: "A.v1"}},
	} {
		_, err := prepare(c.stream, head{}, now, []events.Event{c.ev})
		require.Error(t, err, name)
	}
}

// recorded is what the client hands back for a prepared event read from the server.
func recorded(stream string, p prepared, pos kdb.Position) *kdb.RecordedEvent {
	return &kdb.RecordedEvent{
		EventID:      p.Data.EventID,
		EventType:    p.Data.EventType,
		StreamID:     stream,
		EventNumber:  revisionOf(p.Version),
		Position:     pos,
		CreatedDate:  time.Now(),
		Data:         p.Data.Data,
		UserMetadata: p.Data.Metadata,
	}
}

func TestDecodeRoundTripAndChain(t *testing.T) {
	evs := []events.Event{testEvent("a"), testEvent("b"), testEvent("c")}
	evs[2].Data = []byte{}
	ps, err := prepare("secret-9", head{}, time.Now(), evs)
	require.NoError(t, err)

	var read []stored
	for i, p := range ps {
		r := recorded("secret-9", p, kdb.Position{Commit: uint64(1000 + i), Prepare: uint64(1000 + i)})
		if i == 2 {
			r.Data = nil // protobuf hands an empty payload back as nil
		}
		s, err := decode(r)
		require.NoError(t, err)
		require.Equal(t, p.Event.ID, s.ID)
		require.Equal(t, p.Event.Type, s.Type)
		require.Equal(t, p.Event.Data, s.Data)
		require.NotNil(t, s.Data)
		require.Equal(t, p.Event.Metadata, s.Metadata)
		require.True(t, p.Event.OccurredAt.Equal(s.OccurredAt))
		require.Equal(t, "secret-9", s.Stream)
		require.Equal(t, p.Version, s.Version)
		require.Equal(t, events.Cursor{Commit: uint64(1000 + i), Position: int64(1000 + i)}, s.Cursor)
		require.Equal(t, p.Hash, s.Hash)
		read = append(read, s)
	}
	require.NoError(t, checkChain(read))

	// Tampering with a payload, a version or the order breaks the chain.
	tampered := append([]stored(nil), read...)
	tampered[1].Data = []byte(`{"label":"B"}`)
	require.ErrorContains(t, checkChain(tampered), "hash mismatch")
	require.ErrorContains(t, checkChain(read[1:]), "version")
	swapped := []stored{read[0], read[2], read[1]}
	require.Error(t, checkChain(swapped))

	// A stream read from a server that does not report $all positions is refused.
	_, err = decode(recorded("secret-9", ps[0], kdb.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}))
	require.ErrorIs(t, err, errNoPosition)
	// So is an event that secretlog did not write.
	foreign := recorded("orders-1", ps[0], kdb.Position{Commit: 5, Prepare: 5})
	foreign.UserMetadata = []byte(`{"$correlationId":"x"}`)
	_, err = decode(foreign)
	require.ErrorContains(t, err, "not a secretlog envelope")
}

// next is ReadAll's and Subscribe's step: skip what is not after the cursor
// and EventStoreDB's own events, move the cursor past both.
func TestNextSkipsOldAndSystemEvents(t *testing.T) {
	ps, err := prepare("secret-1", head{}, time.Now(), []events.Event{testEvent("a"), testEvent("b")})
	require.NoError(t, err)
	s := &Store{}
	seen := events.Cursor{Commit: 200, Position: 200}

	// The event at the start position (a $all read includes it) and older ones.
	for _, pos := range []kdb.Position{{Commit: 200, Prepare: 200}, {Commit: 150, Prepare: 150}} {
		keep, _, err := s.next(&kdb.ResolvedEvent{Event: recorded("secret-1", ps[0], pos)}, &seen)
		require.NoError(t, err)
		require.False(t, keep)
		require.Equal(t, events.Cursor{Commit: 200, Position: 200}, seen)
	}
	// A system event is skipped, and the cursor moves past it.
	sys := &kdb.RecordedEvent{StreamID: "$stats-x", EventType: "$statsCollected", Position: kdb.Position{Commit: 300, Prepare: 300}}
	keep, _, err := s.next(&kdb.ResolvedEvent{Event: sys}, &seen)
	require.NoError(t, err)
	require.False(t, keep)
	require.Equal(t, events.Cursor{Commit: 300, Position: 300}, seen)
	// A secretlog event after the cursor is delivered.
	keep, rec, err := s.next(&kdb.ResolvedEvent{Event: recorded("secret-1", ps[1], kdb.Position{Commit: 400, Prepare: 390})}, &seen)
	require.NoError(t, err)
	require.True(t, keep)
	require.Equal(t, ps[1].Event.ID, rec.ID)
	require.Equal(t, events.Cursor{Commit: 400, Position: 390}, seen)
}
