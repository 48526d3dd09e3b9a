// Package feed is secretlog's change feed: every committed event, in commit
// order, as an envelope that names what changed and never carries a value
// (not even sealed). A forwarder (one process at a time, under a lease, its
// position checkpointed as a watermill-sql consumer group) publishes the
// feed as Watermill messages, to NATS JetStream when configured; a Broker in
// every API server fans it out to GraphQL subscribers, from JetStream or
// straight from the log, checking each event against the subscriber's
// tenancy rules and replaying the gap from the log for a client that resumes.
package feed

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
)

// Actor is who caused an event.
type Actor struct {
	Subject  string `json:"subject,omitempty"`
	UserID   string `json:"userId,omitempty"`
	Role     string `json:"role"`
	DomainID string `json:"domainId"`
}

// Tenant is where the resource lived after the event.
type Tenant struct {
	DomainID    string `json:"domainId"`
	WorkspaceID string `json:"workspaceId,omitempty"`
	ProjectID   string `json:"projectId,omitempty"`
	UserID      string `json:"userId,omitempty"`
}

// Envelope is one event of the feed: its envelope and the names of the
// fields it changed. It never holds a value: the payload is reduced to its
// top-level field names before anything leaves the log.
type Envelope struct {
	EventID      string `json:"eventId"`
	Type         string `json:"type"`
	ResourceType string `json:"resourceType"`
	ResourceID   string `json:"resourceId"`
	Stream       string `json:"stream"`
	// Version is the event's version in its stream.
	Version int64 `json:"version"`
	// DataVersion is the resource's data version after the event (for a
	// value read, the version read), when known.
	DataVersion   *int64    `json:"dataVersion,omitempty"`
	Actor         Actor     `json:"actor"`
	Tenant        Tenant    `json:"tenant"`
	OccurredAt    time.Time `json:"occurredAt"`
	CorrelationID string    `json:"correlationId,omitempty"`
	CausationID   string    `json:"causationId,omitempty"`
	// ChangedFields are the names of the fields the event set ("data" for a
	// new value, named only), sorted.
	ChangedFields []string `json:"changedFields"`
	// Position is the event's place in the log's commit order (see
	// FormatPosition); a subscriber resumes after it.
	Position string `json:"position"`

	Cursor events.Cursor `json:"-"`
}

// FormatPosition writes a cursor as the feed's position string,
// "<commit>:<position>" (for PostgreSQL: the appending transaction id and
// the global position). Clients treat it as opaque.
func FormatPosition(c events.Cursor) string {
	return strconv.FormatUint(c.Commit, 10) + ":" + strconv.FormatInt(c.Position, 10)
}

// ErrBadPosition: a position string that FormatPosition did not write.
var ErrBadPosition = errors.New("feed: malformed position (pass a position exactly as an event carried it)")

// ParsePosition reads a position string written by FormatPosition.
func ParsePosition(s string) (events.Cursor, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok || len(s) > 41 {
		return events.Cursor{}, ErrBadPosition
	}
	commit, err1 := strconv.ParseUint(a, 10, 64)
	pos, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || pos < 0 {
		return events.Cursor{}, ErrBadPosition
	}
	return events.Cursor{Commit: commit, Position: pos}, nil
}

// FromRecord builds the envelope of a recorded event. The payload is
// decoded only to list its field names.
func FromRecord(rec events.Record) (Envelope, error) {
	res, ok := commands.NewResource(rec.Stream)
	if !ok {
		return Envelope{}, fmt.Errorf("feed: no resource lives on stream %s", rec.Stream)
	}
	m := rec.Metadata
	env := Envelope{
		EventID: rec.ID, Type: rec.Type, ResourceType: res.Kind(), ResourceID: events.ResourceOfStream(rec.Stream),
		Stream: rec.Stream, Version: rec.Version,
		Actor:      Actor{Subject: m.Actor.Subject, UserID: m.Actor.UserID, Role: m.Actor.Role, DomainID: m.Actor.DomainID},
		Tenant:     Tenant{DomainID: m.Tenant.DomainID, WorkspaceID: m.Tenant.WorkspaceID, ProjectID: m.Tenant.ProjectID, UserID: m.Tenant.UserID},
		OccurredAt: rec.OccurredAt.UTC(), CorrelationID: m.CorrelationID, CausationID: m.CausationID,
		Position: FormatPosition(rec.Cursor), Cursor: rec.Cursor,
	}
	fields, dv, err := changedFields(rec.Type, rec.Data)
	if err != nil {
		return Envelope{}, err
	}
	env.ChangedFields, env.DataVersion = fields, dv
	return env, nil
}

// fixedFields are the changed fields of events whose payload does not name them.
var fixedFields = map[string][]string{
	"SecretDataRead":        {},
	"UserSecretDataRead":    {},
	"TrustedSecretDataRead": {},
	"SecretDeleted":         {"deleted"},
	"UserSecretDeleted":     {"deleted"},
	"TrustedSecretDeleted":  {"deleted"},
	"Disabled":              {"enabled"},
	"Enabled":               {"enabled"},
	"DeletionScheduled":     {"deleteAt", "pendingDelete"},
	"Restored":              {"deleteAt", "pendingDelete"},
	"StageMoved":            {"stages"},
	"VersionsDestroyed":     {"versions"},
	"RotationDue":           {"nextRotationTime"},
}

// idField is the payload field that repeats the envelope's resource id in
// events of type base (a secret's trusted_secret_id is a link, a change).
func idField(base string) string {
	switch {
	case strings.HasPrefix(base, "TrustedSecret"):
		return "trusted_secret_id"
	case strings.HasPrefix(base, "UserSecret"):
		return "user_secret_id"
	}
	return "secret_id"
}

// changedFields lists the top-level fields a payload sets (null ones are
// unchanged), camel-cased as the API names them; values are never looked
// at beyond "is it null". It also returns the data version the payload
// itself tells (a create starts at 1; a read names the version read).
func changedFields(typ string, data []byte) ([]string, *int64, error) {
	base := events.BaseName(typ)
	var dv *int64
	switch base {
	case "SecretCreated", "UserSecretCreated", "TrustedSecretCreated":
		one := int64(1)
		dv = &one
	case "SecretDataRead", "UserSecretDataRead", "TrustedSecretDataRead":
		var r struct {
			DataVersion int64 `json:"data_version"`
		}
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, nil, fmt.Errorf("feed: decode %s: %w", typ, err)
		}
		dv = &r.DataVersion
	}
	if f, ok := fixedFields[base]; ok {
		return append([]string{}, f...), dv, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, fmt.Errorf("feed: decode %s: %w", typ, err)
	}
	own := idField(base)
	out := make([]string, 0, len(top))
	for k, v := range top {
		if k == own || string(v) == "null" {
			continue
		}
		out = append(out, camel(k))
	}
	sort.Strings(out)
	return out, dv, nil
}

// camel turns a payload's snake_case name into the API's camelCase one
// (schema_id → schemaId).
func camel(s string) string {
	var b strings.Builder
	up := false
	for _, r := range s {
		if r == '_' {
			up = true
			continue
		}
		if up && r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		up = false
		b.WriteRune(r)
	}
	return b.String()
}

// Message metadata keys (also NATS headers) of a feed message.
const (
	MetaType     = "Secretlog-Type"
	MetaPosition = "Secretlog-Position"
	MetaDomain   = "Secretlog-Domain"
	MetaResource = "Secretlog-Resource"
)

// Message is the Watermill message carrying env: its UUID is the event id
// (consumers drop duplicates by it; on JetStream it is also the Nats-Msg-Id),
// its payload the envelope as JSON.
func (env Envelope) Message() (*message.Message, error) {
	b, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	msg := message.NewMessage(env.EventID, b)
	msg.Metadata.Set(MetaType, env.Type)
	msg.Metadata.Set(MetaPosition, env.Position)
	msg.Metadata.Set(MetaDomain, env.Tenant.DomainID)
	msg.Metadata.Set(MetaResource, env.ResourceID)
	return msg, nil
}

// FromMessage reads the envelope a feed message carries.
func FromMessage(msg *message.Message) (Envelope, error) {
	return Decode(msg.Payload)
}

// Decode reads an envelope from its JSON.
func Decode(b []byte) (Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return Envelope{}, fmt.Errorf("feed: decode envelope: %w", err)
	}
	c, err := ParsePosition(env.Position)
	if err != nil {
		return Envelope{}, err
	}
	env.Cursor = c
	return env, nil
}

// SubjectPrefix is the first token of every feed subject on NATS.
const SubjectPrefix = "secretlog"

// Subject is the NATS subject of env:
// secretlog.<domain>.<secret|user-secret|trusted-secret>.<resourceId>, each
// token sanitised by SubjectToken.
func Subject(env Envelope) string {
	kind := "secret"
	switch env.ResourceType {
	case "UserSecret":
		kind = "user-secret"
	case "TrustedSecret":
		kind = "trusted-secret"
	}
	return SubjectPrefix + "." + SubjectToken(env.Tenant.DomainID) + "." + kind + "." + SubjectToken(env.ResourceID)
}

// SubjectToken makes s one NATS subject token: letters, digits, '-' and '_'
// stay; every other byte (the separator '.', the wildcards '*' and '>',
// white space, '%' itself, non-ASCII) becomes %XX; an empty s becomes "_".
// Ids secretlog generates and usual domain ids (domain-dev) are unchanged.
func SubjectToken(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
