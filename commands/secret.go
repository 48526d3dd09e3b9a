package commands

import (
	"fmt"
	"time"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
)

// Secret is the aggregate rebuilt from a secret's stream.
type Secret struct {
	ID               string
	Name             string
	SchemaID         string
	Provider         string
	Tags             map[string]any
	Scope            auth.Scope
	ServiceAccountID string
	TrustedSecretID  string
	// DataVersion counts data versions: 1 after create, +1 per data update.
	DataVersion int64
	// StreamVersion is the version of the last event applied.
	StreamVersion int64
	// Data is the current value, sealed; DataEventVersion is the stream
	// version of the event that sealed it (part of its associated data).
	Data             events.Sealed
	DataEventVersion int64
	Deleted          bool
	CreatedAt        time.Time
	UpdatedAt        time.Time
	CreatedBy        string
	UpdatedBy        string
}

// Exists reports whether the secret was created and not deleted.
func (s *Secret) Exists() bool { return s.StreamVersion > 0 && !s.Deleted }

// Apply folds one recorded event into the aggregate. It only changes state.
func (s *Secret) Apply(rec events.Record) error {
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return err
	}
	switch e := ev.(type) {
	case *events.SecretCreated:
		*s = Secret{
			ID: e.SecretID, Name: e.Name, SchemaID: e.SchemaID, Provider: e.Provider, Tags: e.Tags,
			Scope: auth.Scope{Group: auth.ResourceGroup(e.ResourceGroup), DomainID: e.DomainID,
				WorkspaceID: e.WorkspaceID, ProjectID: e.ProjectID},
			ServiceAccountID: e.ServiceAccountID, TrustedSecretID: e.TrustedSecretID,
			DataVersion: 1, Data: e.Data, DataEventVersion: rec.Version, CreatedAt: rec.OccurredAt,
			CreatedBy: rec.Metadata.Actor.Subject,
		}
	case *events.SecretUpdated:
		if e.Name != nil {
			s.Name = *e.Name
		}
		if e.Tags != nil {
			s.Tags = e.Tags
		}
		if e.ProjectID != nil {
			s.Scope.ProjectID = *e.ProjectID
		}
	case *events.SecretDataUpdated:
		s.SchemaID, s.Provider = e.SchemaID, e.Provider
		s.Data, s.DataEventVersion = e.Data, rec.Version
		s.DataVersion++
	case *events.SecretDeleted:
		s.Deleted = true
	default:
		return fmt.Errorf("commands: %s does not belong to a secret stream", rec.Type)
	}
	s.StreamVersion = rec.Version
	s.UpdatedAt = rec.OccurredAt
	s.UpdatedBy = rec.Metadata.Actor.Subject
	return nil
}

// UserSecret is the aggregate rebuilt from a user secret's stream.
type UserSecret struct {
	ID               string
	Name             string
	SchemaID         string
	Provider         string
	Tags             map[string]any
	DomainID         string
	UserID           string
	DataVersion      int64
	StreamVersion    int64
	Data             events.Sealed
	DataEventVersion int64
	Deleted          bool
	CreatedAt        time.Time
	UpdatedAt        time.Time
	CreatedBy        string
	UpdatedBy        string
}

// Exists reports whether the user secret was created and not deleted.
func (s *UserSecret) Exists() bool { return s.StreamVersion > 0 && !s.Deleted }

// Apply folds one recorded event into the aggregate.
func (s *UserSecret) Apply(rec events.Record) error {
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return err
	}
	switch e := ev.(type) {
	case *events.UserSecretCreated:
		*s = UserSecret{
			ID: e.UserSecretID, Name: e.Name, SchemaID: e.SchemaID, Provider: e.Provider, Tags: e.Tags,
			DomainID: e.DomainID, UserID: e.UserID, DataVersion: 1, Data: e.Data,
			DataEventVersion: rec.Version, CreatedAt: rec.OccurredAt, CreatedBy: rec.Metadata.Actor.Subject,
		}
	case *events.UserSecretUpdated:
		if e.Name != nil {
			s.Name = *e.Name
		}
		if e.Tags != nil {
			s.Tags = e.Tags
		}
	case *events.UserSecretDataUpdated:
		s.SchemaID, s.Provider = e.SchemaID, e.Provider
		s.Data, s.DataEventVersion = e.Data, rec.Version
		s.DataVersion++
	case *events.UserSecretDeleted:
		s.Deleted = true
	default:
		return fmt.Errorf("commands: %s does not belong to a user secret stream", rec.Type)
	}
	s.StreamVersion = rec.Version
	s.UpdatedAt = rec.OccurredAt
	s.UpdatedBy = rec.Metadata.Actor.Subject
	return nil
}
