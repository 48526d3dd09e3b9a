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
	key, err := d.Keys.Create(ctx, id)
	if err != nil {
		return Result{}, err
	}
	sealed, err := events.Seal(key, id, 1, plain)
	if err != nil {
		return Result{}, err
	}
	ev, err := newEvent(cmd.Meta, userTenant(a.DomainID, a.UserID), events.UserSecretCreatedV1, events.UserSecretCreated{
		UserSecretID: id, Name: name, SchemaID: cmd.SchemaID, Provider: provider, Tags: tags,
		DomainID: a.DomainID, UserID: a.UserID, Data: sealed,
	})
	if err != nil {
		return Result{}, err
	}
	recs, err := d.Store.Append(ctx, id, events.NoStream, ev)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: id, Records: recs}, nil
}

func (d Deps) loadUserSecretFor(ctx context.Context, meta Meta, id string) (*UserSecret, error) {
	if err := requireActor(meta); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, invalid("userSecretId", "is required")
	}
	if err := checkID("userSecretId", id); err != nil {
		return nil, err
	}
	s := &UserSecret{}
	if err := load(ctx, d.Store, id, s); err != nil {
		return nil, err
	}
	if !s.Exists() || !meta.Actor.CanReadUserSecret(s.DomainID, s.UserID) {
		return nil, notFound("user secret", id)
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
	var ev events.UserSecretUpdated
	changed := false
	if cmd.Name != nil {
		name, err := checkName(*cmd.Name)
		if err != nil {
			return Result{}, err
		}
		if name != s.Name {
			ev.Name, changed = &name, true
		}
	}
	if cmd.Tags != nil {
		tags, err := checkTags(cmd.Tags)
		if err != nil {
			return Result{}, err
		}
		if !sameJSON(tags, s.Tags) {
			ev.Tags, changed = tags, true
		}
	}
	if !changed {
		return Result{ID: s.ID}, nil
	}
	e, err := newEvent(cmd.Meta, userTenant(s.DomainID, s.UserID), events.UserSecretUpdatedV1, ev)
	if err != nil {
		return Result{}, err
	}
	recs, err := d.Store.Append(ctx, s.ID, s.StreamVersion, e)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: s.ID, Records: recs}, nil
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
	plain, provider, err := checkData(d.Schemas, schemaID, cmd.Data)
	if err != nil {
		return Result{}, err
	}
	key, err := d.Keys.Get(ctx, s.ID)
	if err != nil {
		return Result{}, err
	}
	sealed, err := events.Seal(key, s.ID, s.StreamVersion+1, plain)
	if err != nil {
		return Result{}, err
	}
	e, err := newEvent(cmd.Meta, userTenant(s.DomainID, s.UserID), events.UserSecretDataUpdatedV1,
		events.UserSecretDataUpdated{SchemaID: schemaID, Provider: provider, Data: sealed})
	if err != nil {
		return Result{}, err
	}
	recs, err := d.Store.Append(ctx, s.ID, s.StreamVersion, e)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: s.ID, Records: recs}, nil
}

// HandleDeleteUserSecret records the deletion, then shreds the data key.
func (d Deps) HandleDeleteUserSecret(ctx context.Context, cmd DeleteUserSecret) (Result, error) {
	s, err := d.writableUserSecret(ctx, cmd.Meta, cmd.UserSecretID)
	if err != nil {
		return Result{}, err
	}
	e, err := newEvent(cmd.Meta, userTenant(s.DomainID, s.UserID), events.UserSecretDeletedV1, events.UserSecretDeleted{})
	if err != nil {
		return Result{}, err
	}
	recs, err := d.Store.Append(ctx, s.ID, s.StreamVersion, e)
	if err != nil {
		return Result{}, err
	}
	if err := d.Keys.Destroy(ctx, s.ID); err != nil {
		return Result{}, err
	}
	return Result{ID: s.ID, Records: recs}, nil
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
	data, err := d.open(ctx, s.ID, s.DataEventVersion, s.Data)
	if err != nil {
		return Revealed{}, err
	}
	if err := d.recordRead(ctx, q.Meta, userTenant(s.DomainID, s.UserID), s.ID, events.UserSecretDataReadV1,
		events.UserSecretDataRead{UserSecretID: s.ID, DataVersion: s.DataVersion}); err != nil {
		return Revealed{}, err
	}
	return Revealed{ID: s.ID, DataVersion: s.DataVersion, Data: data}, nil
}
