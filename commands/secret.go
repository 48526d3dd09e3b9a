package commands

import (
	"fmt"
	"maps"
	"slices"
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
	// Allows says whether a may do act to the resource, by the tenancy rules.
	Allows(a auth.Identity, act Action) bool
	// Noun names the resource in messages ("secret"); IDField names its id
	// argument ("secretId").
	Noun() string
	IDField() string
}

// Action is what a caller does to a resource.
type Action int

// The actions the tenancy rules distinguish.
const (
	ActRead      Action = iota // see its metadata
	ActWrite                   // change it
	ActReadValue               // read its value
)

// NewResource returns the empty state of the resource whose stream (or
// access stream) is stream, or false when no resource lives there.
func NewResource(stream string) (Resource, bool) {
	r, _, ok := resourceKind(events.ResourceOfStream(stream))
	return r, ok
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

	events.Settings
	// Versions are the readable versions, oldest first (destroyed ones
	// leave); Stages maps each stage to its version.
	Versions []VersionInfo
	Stages   map[string]int64
	// Disabled values cannot be read; a PendingDelete resource is hidden
	// until DeleteAt unless restored.
	Disabled      bool
	PendingDelete bool
	DeleteAt      *time.Time
	// NextRotation is when a rotation comes due (AutoRotation);
	// LastRotatedAt is the last value change.
	NextRotation  *time.Time
	LastRotatedAt *time.Time
}

// VersionInfo is one readable version of a value.
type VersionInfo struct {
	Number         int64
	EventVersion   int64 // the stream version of the event that sealed it
	CreatedAt      time.Time
	CreatedBy      string
	RolledBackFrom int64 `json:",omitempty"`
}

// Stage names the system moves: the newest value and the one before it.
const (
	StageCurrent  = "SYSCURRENT"
	StagePrevious = "SYSPREVIOUS"
)

// Version returns the readable version n.
func (v *Versioned) Version(n int64) (VersionInfo, bool) {
	for _, x := range v.Versions {
		if x.Number == n {
			return x, true
		}
	}
	return VersionInfo{}, false
}

// Live reports whether the resource exists and is not scheduled for deletion.
func (v *Versioned) Live() bool { return v.Exists() && !v.PendingDelete }

// State is ENABLED, DISABLED or PENDING_DELETE.
func (v *Versioned) State() string {
	switch {
	case v.PendingDelete:
		return "PENDING_DELETE"
	case v.Disabled:
		return "DISABLED"
	}
	return "ENABLED"
}

// StagesOf lists the stages attached to version n, sorted.
func (v *Versioned) StagesOf(n int64) []string {
	var out []string
	for st, ver := range v.Stages {
		if ver == n {
			out = append(out, st)
		}
	}
	slices.Sort(out)
	return out
}

// Base implements Resource.
func (v *Versioned) Base() *Versioned { return v }

// Exists reports whether the resource was created and not deleted.
func (v *Versioned) Exists() bool { return v.StreamVersion > 0 && !v.Deleted }

// Head is the stream's last event, which the next one chains to.
func (v *Versioned) Head() events.Head { return events.Head{Version: v.StreamVersion, Hash: v.Hash} }

func (v *Versioned) create(rec events.Record, id, name, schemaID, provider string, tags map[string]any, data events.Sealed, settings events.Settings) {
	*v = Versioned{ID: id, Name: name, SchemaID: schemaID, Provider: provider, Tags: tags, DataVersion: 0,
		CreatedAt: rec.OccurredAt, CreatedBy: rec.Metadata.Actor.Subject, Settings: settings}
	v.newData(rec, schemaID, provider, data, 0)
}

func (v *Versioned) rename(name *string, tags map[string]any) {
	if name != nil {
		v.Name = *name
	}
	if tags != nil {
		v.Tags = tags
	}
}

// newData makes data the newest version: SYSCURRENT moves to it and
// SYSPREVIOUS to the version before.
func (v *Versioned) newData(rec events.Record, schemaID, provider string, data events.Sealed, rolledBackFrom int64) {
	v.SchemaID, v.Provider = schemaID, provider
	v.Data, v.DataEventVersion = data, rec.Version
	prev := v.DataVersion
	v.DataVersion++
	v.Versions = append(slices.Clone(v.Versions), VersionInfo{Number: v.DataVersion, EventVersion: rec.Version,
		CreatedAt: rec.OccurredAt, CreatedBy: rec.Metadata.Actor.Subject, RolledBackFrom: rolledBackFrom})
	v.Stages = maps.Clone(v.Stages)
	if v.Stages == nil {
		v.Stages = map[string]int64{}
	}
	if _, ok := v.Version(prev); ok {
		v.Stages[StagePrevious] = prev
	}
	v.Stages[StageCurrent] = v.DataVersion
	at := rec.OccurredAt
	v.LastRotatedAt = &at
	v.scheduleRotation(at)
}

// scheduleRotation sets the next rotation a period after from (none when
// rotation is off).
func (v *Versioned) scheduleRotation(from time.Time) {
	v.NextRotation = nil
	if v.AutoRotation && v.RotationPeriodHours > 0 {
		next := from.Add(time.Duration(v.RotationPeriodHours) * time.Hour)
		v.NextRotation = &next
	}
}

func (v *Versioned) delete() {
	v.Deleted = true
	v.Data, v.DataEventVersion = events.Sealed{}, 0
	v.Versions, v.Stages = nil, nil
	v.PendingDelete, v.DeleteAt, v.NextRotation = false, nil, nil
}

// applyLifecycle folds the events every valued resource shares; ok is false
// for any other event.
func (v *Versioned) applyLifecycle(rec events.Record, ev any) (ok bool) {
	switch e := ev.(type) {
	case *events.SettingsChanged:
		if e.Description != nil {
			v.Description = *e.Description
		}
		if e.MaxVersions != nil {
			v.MaxVersions = *e.MaxVersions
		}
		if e.AutoRotation != nil {
			v.AutoRotation = *e.AutoRotation
		}
		if e.RotationPeriodHours != nil {
			v.RotationPeriodHours = *e.RotationPeriodHours
		}
		if e.AutoRotation != nil || e.RotationPeriodHours != nil {
			v.scheduleRotation(rec.OccurredAt)
		}
	case *events.StageMoved:
		v.Stages = maps.Clone(v.Stages)
		if e.Version == 0 {
			delete(v.Stages, e.Stage)
		} else {
			v.Stages[e.Stage] = e.Version
		}
	case *events.VersionsDestroyed:
		v.Versions = slices.DeleteFunc(slices.Clone(v.Versions), func(x VersionInfo) bool { return slices.Contains(e.Versions, x.Number) })
		v.Stages = maps.Clone(v.Stages)
		maps.DeleteFunc(v.Stages, func(_ string, n int64) bool { return slices.Contains(e.Versions, n) })
	case *events.Disabled:
		v.Disabled = true
	case *events.Enabled:
		v.Disabled = false
	case *events.DeletionScheduled:
		at := e.DeleteAt
		v.PendingDelete, v.DeleteAt = true, &at
	case *events.Restored:
		v.PendingDelete, v.DeleteAt = false, nil
	case *events.RotationDue:
		next := e.Next
		v.NextRotation = &next
	default:
		return false
	}
	return true
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

// Allows implements Resource.
func (s *Secret) Allows(a auth.Identity, act Action) bool {
	switch act {
	case ActRead:
		return a.CanReadSecret(s.Scope)
	case ActWrite:
		return a.CanReadSecret(s.Scope) && a.CanWriteSecret(s.Scope)
	default:
		return a.CanReadSecretValue(s.Scope)
	}
}

// Noun implements Resource.
func (*Secret) Noun() string { return "secret" }

// IDField implements Resource.
func (*Secret) IDField() string { return "secretId" }

// Apply implements Resource. It only changes state.
func (s *Secret) Apply(rec events.Record, ev any) error {
	switch e := ev.(type) {
	case *events.SecretCreated:
		*s = Secret{
			Scope: auth.Scope{Group: auth.ResourceGroup(e.ResourceGroup), DomainID: e.DomainID,
				WorkspaceID: e.WorkspaceID, ProjectID: e.ProjectID},
			ServiceAccountID: e.ServiceAccountID, TrustedSecretID: e.TrustedSecretID,
		}
		s.create(rec, e.SecretID, e.Name, e.SchemaID, e.Provider, e.Tags, e.Data, e.Settings)
	case *events.SecretUpdated:
		s.rename(e.Name, e.Tags)
		if e.ProjectID != nil {
			s.Scope.ProjectID = *e.ProjectID
		}
	case *events.SecretDataUpdated:
		s.newData(rec, e.SchemaID, e.Provider, e.Data, e.RolledBackFrom)
	case *events.SecretDeleted:
		s.delete()
	case *events.SecretLinkChanged:
		s.TrustedSecretID = e.TrustedSecretID
	case *events.SecretDataRead:
		return nil // a read changes nothing
	default:
		if !s.applyLifecycle(rec, ev) {
			return fmt.Errorf("commands: %s does not belong to a secret stream", rec.Type)
		}
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

// Allows implements Resource.
func (s *UserSecret) Allows(a auth.Identity, act Action) bool {
	switch act {
	case ActRead:
		return a.CanReadUserSecret(s.DomainID, s.UserID)
	case ActWrite:
		return a.CanReadUserSecret(s.DomainID, s.UserID) && a.CanWriteUserSecret(s.DomainID, s.UserID)
	default:
		return a.CanReadUserSecretValue(s.DomainID, s.UserID)
	}
}

// Noun implements Resource.
func (*UserSecret) Noun() string { return "user secret" }

// IDField implements Resource.
func (*UserSecret) IDField() string { return "userSecretId" }

// Apply implements Resource.
func (s *UserSecret) Apply(rec events.Record, ev any) error {
	switch e := ev.(type) {
	case *events.UserSecretCreated:
		*s = UserSecret{DomainID: e.DomainID, UserID: e.UserID}
		s.create(rec, e.UserSecretID, e.Name, e.SchemaID, e.Provider, e.Tags, e.Data, e.Settings)
	case *events.UserSecretUpdated:
		s.rename(e.Name, e.Tags)
	case *events.UserSecretDataUpdated:
		s.newData(rec, e.SchemaID, e.Provider, e.Data, e.RolledBackFrom)
	case *events.UserSecretDeleted:
		s.delete()
	case *events.UserSecretDataRead:
		return nil
	default:
		if !s.applyLifecycle(rec, ev) {
			return fmt.Errorf("commands: %s does not belong to a user secret stream", rec.Type)
		}
	}
	s.touch(rec)
	return nil
}
