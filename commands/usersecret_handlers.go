package commands

import (
	"context"
	"encoding/json"

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
	Settings events.Settings
	// ClientRequestToken makes the create idempotent (see TokenTTL).
	ClientRequestToken string
}

// UpdateUserSecret changes a user secret's metadata and settings; nil fields stay.
type UpdateUserSecret struct {
	Target
	Name     *string
	Tags     map[string]any
	Settings ChangeSettings
}

// UpdateUserSecretData replaces a user secret's value.
type UpdateUserSecretData struct {
	Target
	Data     map[string]any
	SchemaID *string
	// ClientRequestToken makes the update idempotent (see TokenTTL).
	ClientRequestToken string
}

// RevealUserSecretData asks for a user secret's value.
type RevealUserSecretData struct {
	Meta
	UserSecretID string
	RevealOptions
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
	if err := d.checkSettings(cmd.Settings); err != nil {
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
	// A user's tokens are the user's: another user of the domain may pick the same one.
	claim, err := d.claimToken(cmd.Meta, cmd.ClientRequestToken, "createUserSecret/"+a.UserID, struct {
		Name, SchemaID string
		Tags           map[string]any
		Settings       events.Settings
		Data           json.RawMessage
	}{name, cmd.SchemaID, tags, cmd.Settings, plain})
	if err != nil {
		return Result{}, err
	}
	return d.idempotent(ctx, claim, &UserSecret{}, func() (Result, error) {
		id := newID(userSecretIDPrefix)
		return d.create(ctx, cmd.Meta, userTenant(a.DomainID, a.UserID), &UserSecret{}, id, cmd.Settings.KmsKeyID, plain, claim,
			events.UserSecretCreatedV1, func(sealed events.Sealed) any {
				return events.UserSecretCreated{UserSecretID: id, Name: name, SchemaID: cmd.SchemaID, Provider: provider,
					Tags: tags, DomainID: a.DomainID, UserID: a.UserID, Data: sealed, Settings: cmd.Settings}
			})
	})
}

func (d Deps) loadUserSecretFor(ctx context.Context, meta Meta, id string) (*UserSecret, error) {
	s := &UserSecret{}
	if err := d.loadVisible(ctx, meta, "userSecretId", "user secret", userSecretIDPrefix, id, s, func() bool {
		return !s.PendingDelete && meta.Actor.CanReadUserSecret(s.DomainID, s.UserID)
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// HandleUpdateUserSecret records changed metadata and settings.
func (d Deps) HandleUpdateUserSecret(ctx context.Context, cmd UpdateUserSecret) (Result, error) {
	cmd.Target.Kind = "user secret"
	return d.changeTarget(ctx, cmd.Target, false, func(r Resource) (Decision, error) {
		return described(r, r.Tenant(), cmd.Name, cmd.Tags, cmd.Settings, func(name *string, tags map[string]any) Emit {
			return Emit{events.UserSecretUpdatedV1, events.UserSecretUpdated{Name: name, Tags: tags}}
		})
	})
}

// HandleUpdateUserSecretData seals the new value.
func (d Deps) HandleUpdateUserSecretData(ctx context.Context, cmd UpdateUserSecretData) (Result, error) {
	return d.changeValue(ctx, cmd.Target, "user secret", cmd.ClientRequestToken, "updateUserSecretData", cmd.SchemaID, cmd.Data)
}

// HandleRevealUserSecretData decrypts a value for SYSTEM callers of the owner's domain.
func (d Deps) HandleRevealUserSecretData(ctx context.Context, q RevealUserSecretData) (Revealed, error) {
	s, err := d.loadUserSecretFor(ctx, q.Meta, q.UserSecretID)
	if err != nil {
		return Revealed{}, err
	}
	if !q.Actor.CanReadUserSecretValue(s.DomainID, s.UserID) {
		return Revealed{}, denied("only SYSTEM reads secret values")
	}
	return d.reveal(ctx, q.Meta, s, q.RevealOptions, events.UserSecretDataReadV1, func(n int64) any {
		return events.UserSecretDataRead{UserSecretID: s.ID, DataVersion: n}
	})
}
