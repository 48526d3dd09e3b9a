package events

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// HashSize is the length of event and log hashes (SHA-256).
const HashSize = sha256.Size

// eventHashTag separates event hashes from every other use of SHA-256.
const eventHashTag = "secretlog/event-hash/v1"

// EventHash is the tamper-evidence hash stored with each event, chained to
// the hash of the previous event of its stream:
//
//	SHA-256( "secretlog/event-hash/v1"
//	         || lp(prev) || lp(stream) || be64(version) || lp(id) || lp(typ)
//	         || be64(occurredAt.UnixMicro()) || lp(data) || lp(metadata) )
//
// where lp(x) is x prefixed with its length as a big-endian uint64 and be64
// a big-endian two's-complement int64. prev is the stored hash of version-1
// of the stream and empty for version 1; id is the event id in canonical
// lowercase UUID form (as uuid.UUID.String gives it); data is the stored
// payload, whose secret values are already ciphertext, so destroying a data
// key never breaks the chain; metadata is the envelope exactly as stored
// (the json column keeps its text byte for byte). The log's commit position
// is not covered: it is assigned by the database at insert. Log checkpoints
// (LogHash) cover the commit order instead.
func EventHash(prev []byte, stream string, version int64, id string, typ string, occurredAt time.Time, data, metadata []byte) []byte {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	fixed := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	h.Write([]byte(eventHashTag))
	field(prev)
	field([]byte(stream))
	fixed(version)
	field([]byte(id))
	field([]byte(typ))
	fixed(occurredAt.UnixMicro())
	field(data)
	field(metadata)
	return h.Sum(nil)
}

// EmptyLogHash is the log hash of an empty log: HashSize zero bytes.
func EmptyLogHash() []byte { return make([]byte, HashSize) }

// LogHash folds one event into the running hash of the whole log, in commit
// order: SHA-256(prev || eventHash), starting from EmptyLogHash. Checkpoints
// store its value at a cursor, so a removed, added or reordered event before
// a checkpoint changes the value there even when every stream's chain still
// looks intact.
func LogHash(prev, eventHash []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(eventHash)
	return h.Sum(nil)
}
