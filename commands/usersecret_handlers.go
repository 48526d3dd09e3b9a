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

func (d Deps) writableUserSecret(ctx context.Context, meta Meta, id string) (*UserSecret, error) {
	s, err := d.loadUserSecretFor(ctx, meta, id)
	if err != nil {
		return nil, err
	}
	if !meta.Actor.CanWriteUserSecret(s.DomainID, s.UserID) {
		return nil, denied("only its owner changes user secret %q", id)
	}
	return s, nil
}

// HandleUpdateUserSecret records changed metadata.
func (d Deps) HandleUpdateUserSecret(ctx context.Context, cmd UpdateUserSecret) (Result, error) {
	s, err := d.writableUserSecret(ctx, cmd.Meta, cmd.UserSecretID)
	if err != nil {
		return Result{}, err
	}
	name, tags, err := metadataChange(cmd.Name, cmd.Tags, &s.Versioned)
	if err != nil {
		return Result{}, err
	}
	if name == nil && tags == nil {
		return Result{ID: s.ID, State: s}, nil
	}
	return d.write(ctx, cmd.Meta, s.Tenant(), s, s.ID, events.UserSecretUpdatedV1, events.UserSecretUpdated{Name: name, Tags: tags})
}

// HandleUpdateUserSecretData seals the new value.
func (d Deps) HandleUpdateUserSecretData(ctx context.Context, cmd UpdateUserSecretData) (Result, error) {
	s, err := d.writableUserSecret(ctx, cmd.Meta, cmd.UserSecretID)
	if err != nil {
		return Result{}, err
	}
	schemaID := s.SchemaID
	if cmd.SchemaID != nil {
		schemaID = *cmd.SchemaID
	}
	return d.replaceData(ctx, cmd.Meta, s, schemaID, cmd.Data,
		events.UserSecretDataUpdatedV1, func(schemaID, provider string, sealed events.Sealed) any {
			return events.UserSecretDataUpdated{SchemaID: schemaID, Provider: provider, Data: sealed}
		})
}

// HandleDeleteUserSecret records the deletion and shreds the data key, atomically.
func (d Deps) HandleDeleteUserSecret(ctx context.Context, cmd DeleteUserSecret) (Result, error) {
	s, err := d.writableUserSecret(ctx, cmd.Meta, cmd.UserSecretID)
	if err != nil {
		return Result{}, err
	}
	return d.remove(ctx, cmd.Meta, s, events.UserSecretDeletedV1, events.UserSecretDeleted{})
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
