package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
)

// Resource is the state a resource's stream folds into: the aggregate the
// commands decide on, and the state every projection writes its rows from
// (inline and in a rebuild alike), so an event changes state in one place.
type Resource interface {
	// Apply folds one recorded event, already decoded, into the state.
	Apply(rec events.Record, ev any) error
	// Base is the part every resource with a value shares.
	Base() *Versioned
	// Kind names the resource ("Secret", "UserSecret", "TrustedSecret").
	Kind() string
	// Tenant is where the resource lives, for event envelopes.
	Tenant() events.Tenant
	// Clone copies the state (Apply replaces maps, never changes them in place).
	Clone() Resource
}

// NewResource returns the empty state of the resource whose stream (or
// access stream) is stream, or false when no resource lives there.
func NewResource(stream string) (Resource, bool) {
	id := events.ResourceOfStream(stream)
	switch {
	case strings.HasPrefix(id, trustedSecretIDPrefix):
		return &TrustedSecret{}, true
	case strings.HasPrefix(id, userSecretIDPrefix):
		return &UserSecret{}, true
	case strings.HasPrefix(id, secretIDPrefix):
		return &Secret{}, true
	}
	return nil, false
}

// Fold decodes rec and applies it to r.
func Fold(r Resource, rec events.Record) (any, error) {
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return nil, err
	}
	return ev, r.Apply(rec, ev)
}

// Versioned is the life every resource holding a value shares: metadata, a
// sealed current value with its data version, deletion, attribution.
type Versioned struct {
	ID       string
	Name     string
	SchemaID string
	Provider string
	Tags     map[string]any
	// DataVersion counts data versions: 1 after create, +1 per data update.
	DataVersion int64
	// StreamVersion and Hash are those of the last event applied: the head
	// the next event chains to.
	StreamVersion int64
	Hash          []byte
	// Data is the current value, sealed; DataEventVersion is the stream
	// version of the event that sealed it (part of its associated data).
	// Both are cleared on deletion.
	Data             events.Sealed
	DataEventVersion int64
	Deleted          bool
	CreatedAt        time.Time
	UpdatedAt        time.Time
	CreatedBy        string
	UpdatedBy        string
}

// Base implements Resource.
func (v *Versioned) Base() *Versioned { return v }

// Exists reports whether the resource was created and not deleted.
func (v *Versioned) Exists() bool { return v.StreamVersion > 0 && !v.Deleted }

// Head is the stream's last event, which the next one chains to.
func (v *Versioned) Head() events.Head { return events.Head{Version: v.StreamVersion, Hash: v.Hash} }

func (v *Versioned) create(rec events.Record, id, name, schemaID, provider string, tags map[string]any, data events.Sealed) {
	*v = Versioned{ID: id, Name: name, SchemaID: schemaID, Provider: provider, Tags: tags, DataVersion: 1,
		Data: data, DataEventVersion: rec.Version, CreatedAt: rec.OccurredAt, CreatedBy: rec.Metadata.Actor.Subject}
}

func (v *Versioned) rename(name *string, tags map[string]any) {
	if name != nil {
		v.Name = *name
	}
	if tags != nil {
		v.Tags = tags
	}
}

func (v *Versioned) newData(rec events.Record, schemaID, provider string, data events.Sealed) {
	v.SchemaID, v.Provider = schemaID, provider
	v.Data, v.DataEventVersion = data, rec.Version
	v.DataVersion++
}

func (v *Versioned) delete() {
	v.Deleted = true
	v.Data, v.DataEventVersion = events.Sealed{}, 0
}

// touch records the event as the stream's head and last change.
func (v *Versioned) touch(rec events.Record) {
	v.StreamVersion, v.Hash = rec.Version, rec.Hash
	v.UpdatedAt = rec.OccurredAt
	v.UpdatedBy = rec.Metadata.Actor.Subject
}

// Secret is the aggregate rebuilt from a secret's stream.
type Secret struct {
	Versioned
	Scope            auth.Scope
	ServiceAccountID string
	TrustedSecretID  string
}

// Kind implements Resource.
func (*Secret) Kind() string { return "Secret" }

// Tenant implements Resource.
func (s *Secret) Tenant() events.Tenant { return secretTenant(s.Scope) }

// Clone implements Resource.
func (s *Secret) Clone() Resource { c := *s; return &c }

// Apply implements Resource. It only changes state.
func (s *Secret) Apply(rec events.Record, ev any) error {
	switch e := ev.(type) {
	case *events.SecretCreated:
		*s = Secret{
			Scope: auth.Scope{Group: auth.ResourceGroup(e.ResourceGroup), DomainID: e.DomainID,
				WorkspaceID: e.WorkspaceID, ProjectID: e.ProjectID},
			ServiceAccountID: e.ServiceAccountID, TrustedSecretID: e.TrustedSecretID,
		}
		s.create(rec, e.SecretID, e.Name, e.SchemaID, e.Provider, e.Tags, e.Data)
	case *events.SecretUpdated:
		s.rename(e.Name, e.Tags)
		if e.ProjectID != nil {
			s.Scope.ProjectID = *e.ProjectID
		}
	case *events.SecretDataUpdated:
		s.newData(rec, e.SchemaID, e.Provider, e.Data)
	case *events.SecretDeleted:
		s.delete()
	case *events.SecretLinkChanged:
		s.TrustedSecretID = e.TrustedSecretID
	case *events.SecretDataRead:
		return nil // a read changes nothing
	default:
		return fmt.Errorf("commands: %s does not belong to a secret stream", rec.Type)
	}
	s.touch(rec)
	return nil
}

// UserSecret is the aggregate rebuilt from a user secret's stream.
type UserSecret struct {
	Versioned
	DomainID string
	UserID   string
}

// Kind implements Resource.
func (*UserSecret) Kind() string { return "UserSecret" }

// Tenant implements Resource.
func (s *UserSecret) Tenant() events.Tenant { return userTenant(s.DomainID, s.UserID) }

// Clone implements Resource.
func (s *UserSecret) Clone() Resource { c := *s; return &c }

// Apply implements Resource.
func (s *UserSecret) Apply(rec events.Record, ev any) error {
	switch e := ev.(type) {
	case *events.UserSecretCreated:
		*s = UserSecret{DomainID: e.DomainID, UserID: e.UserID}
		s.create(rec, e.UserSecretID, e.Name, e.SchemaID, e.Provider, e.Tags, e.Data)
	case *events.UserSecretUpdated:
		s.rename(e.Name, e.Tags)
	case *events.UserSecretDataUpdated:
		s.newData(rec, e.SchemaID, e.Provider, e.Data)
	case *events.UserSecretDeleted:
		s.delete()
	case *events.UserSecretDataRead:
		return nil
	default:
		return fmt.Errorf("commands: %s does not belong to a user secret stream", rec.Type)
	}
	s.touch(rec)
	return nil
}
