package events

import (
	"time"
)

// Actor is who caused an event.
type Actor struct {
	Subject  string `json:"sub,omitempty"`
	UserID   string `json:"user_id,omitempty"`
	Role     string `json:"role"`
	DomainID string `json:"domain_id"`
}

// Tenant is where the affected resource lives.
type Tenant struct {
	DomainID    string `json:"domain_id"`
	WorkspaceID string `json:"workspace_id,omitempty"`
	ProjectID   string `json:"project_id,omitempty"`
	UserID      string `json:"user_id,omitempty"`
}

// Metadata is the part of the envelope that travels with every event.
type Metadata struct {
	Actor         Actor  `json:"actor"`
	Tenant        Tenant `json:"tenant"`
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
}

// Event is what a writer appends: a typed payload and its metadata.
type Event struct {
	ID       string // UUID; generated on append when empty
	Type     string // versioned name, e.g. "SecretCreated.v1"
	Data     []byte // encoded payload (secret values inside are already sealed)
	Metadata Metadata
	// OccurredAt defaults to the append time.
	OccurredAt time.Time
}

// Cursor is a place in the log's commit order. For PostgreSQL, Commit is the
// appending transaction id and Position the global position; for EventStoreDB
// the commit and prepare positions. Cursors compare in (Commit, Position)
// order; the zero Cursor is the start of the log.
type Cursor struct {
	Commit   uint64
	Position int64
}

// Before reports whether c comes strictly before o in commit order.
func (c Cursor) Before(o Cursor) bool {
	if c.Commit != o.Commit {
		return c.Commit < o.Commit
	}
	return c.Position < o.Position
}

// Record is an event as stored: the envelope around an Event.
type Record struct {
	Event
	Stream  string
	Version int64 // 1-based position in its stream
	Cursor  Cursor
	// Hash is the event's tamper-evidence hash (EventHash), chained to the
	// stream's previous event; a new event of the stream chains to it.
	Hash []byte
}
