package commands

import (
	"context"

	"github.com/secretlog/secretlog/events"
)

const userSecretIDPrefix = "user-secret-"

// CreateUserSecret stores a new secret owned by the calling user.
type CreateUserSecret struct {
	Meta
	Name     string
	Data     map[string]any
	SchemaID string
	Tags     map[string]any
}

// UpdateUserSecret changes a user secret's metadata; nil fields stay.
type UpdateUserSecret struct {
	Meta
	UserSecretID string
	Name         *string
	Tags         map[string]any
}

// UpdateUserSecretData replaces a user secret's value.
type UpdateUserSecretData struct {
	Meta
	UserSecretID string
	Data         map[string]any
	SchemaID     *string
}

// DeleteUserSecret deletes a user secret and destroys its data key.
type DeleteUserSecret struct {
	Meta
	UserSecretID string
}

// RevealUserSecretData asks for a user secret's current value.
type RevealUserSecretData struct {
	Meta
	UserSecretID string
}

func userTenant(domainID, userID string) events.Tenant {
	return events.Tenant{DomainID: domainID, UserID: userID}
}

// HandleCreateUserSecret opens a user secret stream owned by the caller.
func (d Deps) HandleCreateUserSecret(ctx context.Context, cmd CreateUserSecret) (Result, error) {
	if err := requireActor(cmd.Meta); err != nil {
		return Result{}, err
	}
	name, err := checkName(cmd.Name)
	if err != nil {
		return Result{}, err
	}
	tags, err := checkTags(cmd.Tags)
	if err != nil {
		return Result{}, err
	}
	plain, provider, err := checkData(d.Schemas, cmd.SchemaID, cmd.Data)
	if err != nil {
		return Result{}, err
	}
	a := cmd.Actor
	if !a.CanWriteUserSecret(a.DomainID, a.UserID) {
		return Result{}, denied("%s without a user id may not own user secrets", a.Role)
	}
	id := newID(userSecretIDPrefix)
	return d.create(ctx, cmd.Meta, userTenant(a.DomainID, a.UserID), &UserSecret{}, id, plain, events.UserSecretCreatedV1,
		func(sealed events.Sealed) any {
			return events.UserSecretCreated{UserSecretID: id, Name: name, SchemaID: cmd.SchemaID, Provider: provider,
				Tags: tags, DomainID: a.DomainID, UserID: a.UserID, Data: sealed}
		})
}

func (d Deps) loadUserSecretFor(ctx context.Context, meta Meta, id string) (*UserSecret, error) {
	s := &UserSecret{}
	if err := d.loadVisible(ctx, meta, "userSecretId", "user secret", userSecretIDPrefix, id, s, func() bool {
		return meta.Actor.CanReadUserSecret(s.DomainID, s.UserID)
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// changeUserSecret runs decide on a user secret its owner changes.
func (d Deps) changeUserSecret(ctx context.Context, meta Meta, id string, decide func(s *UserSecret) (Decision, error)) (Result, error) {
	if err := requireActor(meta); err != nil {
		return Result{}, err
	}
	if err := checkResourceID("userSecretId", "user secret", userSecretIDPrefix, id); err != nil {
		return Result{}, err
	}
	return d.change(ctx, meta, id, &UserSecret{}, func(cur Resource) (Decision, error) {
		s := cur.(*UserSecret)
		if !s.Exists() || !meta.Actor.CanReadUserSecret(s.DomainID, s.UserID) {
			return Decision{}, notFound("user secret", id)
		}
		if !meta.Actor.CanWriteUserSecret(s.DomainID, s.UserID) {
			return Decision{}, denied("only its owner changes user secret %q", id)
		}
		return decide(s)
	})
}

// HandleUpdateUserSecret records changed metadata.
func (d Deps) HandleUpdateUserSecret(ctx context.Context, cmd UpdateUserSecret) (Result, error) {
	return d.changeUserSecret(ctx, cmd.Meta, cmd.UserSecretID, func(s *UserSecret) (Decision, error) {
		name, tags, err := metadataChange(cmd.Name, cmd.Tags, &s.Versioned)
		if err != nil || (name == nil && tags == nil) {
			return Decision{}, err
		}
		return Decision{Tenant: s.Tenant(), Type: events.UserSecretUpdatedV1, Payload: events.UserSecretUpdated{Name: name, Tags: tags}}, nil
	})
}

// HandleUpdateUserSecretData seals the new value.
func (d Deps) HandleUpdateUserSecretData(ctx context.Context, cmd UpdateUserSecretData) (Result, error) {
	return d.changeUserSecret(ctx, cmd.Meta, cmd.UserSecretID, func(s *UserSecret) (Decision, error) {
		schemaID := s.SchemaID
		if cmd.SchemaID != nil {
			schemaID = *cmd.SchemaID
		}
		return d.newValue(ctx, s, schemaID, cmd.Data, events.UserSecretDataUpdatedV1,
			func(schemaID, provider string, sealed events.Sealed) any {
				return events.UserSecretDataUpdated{SchemaID: schemaID, Provider: provider, Data: sealed}
			})
	})
}

// HandleDeleteUserSecret records the deletion and shreds the data key, atomically.
func (d Deps) HandleDeleteUserSecret(ctx context.Context, cmd DeleteUserSecret) (Result, error) {
	return d.changeUserSecret(ctx, cmd.Meta, cmd.UserSecretID, func(s *UserSecret) (Decision, error) {
		return d.removal(s, events.UserSecretDeletedV1, events.UserSecretDeleted{}), nil
	})
}

// HandleRevealUserSecretData decrypts the current value for SYSTEM callers of the owner's domain.
func (d Deps) HandleRevealUserSecretData(ctx context.Context, q RevealUserSecretData) (Revealed, error) {
	s, err := d.loadUserSecretFor(ctx, q.Meta, q.UserSecretID)
	if err != nil {
		return Revealed{}, err
	}
	if !q.Actor.CanReadUserSecretValue(s.DomainID, s.UserID) {
		return Revealed{}, denied("only SYSTEM reads secret values")
	}
	return d.reveal(ctx, q.Meta, s, events.UserSecretDataReadV1, events.UserSecretDataRead{UserSecretID: s.ID, DataVersion: s.DataVersion})
}
