package commands

import (
	"context"
	"time"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
)

// CreateTrustedSecret stores a new trusted secret.
type CreateTrustedSecret struct {
	Meta
	Name             string
	Data             map[string]any
	SchemaID         string
	Tags             map[string]any
	ResourceGroup    auth.ResourceGroup // DOMAIN or WORKSPACE
	WorkspaceID      string
	TrustedAccountID string
	Settings         events.Settings
}

// UpdateTrustedSecret changes a trusted secret's metadata and settings; nil fields stay.
type UpdateTrustedSecret struct {
	Target
	Name     *string
	Tags     map[string]any
	Settings ChangeSettings
}

// UpdateTrustedSecretData replaces a trusted secret's value (a new data version).
type UpdateTrustedSecretData struct {
	Target
	Data map[string]any
	// SchemaID, when given, replaces the schema; otherwise the current one validates the data.
	SchemaID *string
}

// RevealTrustedSecretData asks for a trusted secret's value.
type RevealTrustedSecretData struct {
	Meta
	TrustedSecretID string
	RevealOptions
}

// ReadTrustedSecretAsOf asks for a trusted secret's metadata at a point in time.
type ReadTrustedSecretAsOf struct {
	Meta
	TrustedSecretID string
	AsOf            time.Time
}

func (CreateTrustedSecret) target() string       { return "" }
func (c RevealTrustedSecretData) target() string { return c.TrustedSecretID }
func (q ReadTrustedSecretAsOf) target() string   { return q.TrustedSecretID }

// trustedSecretScope resolves where a new trusted secret lives.
func trustedSecretScope(cmd CreateTrustedSecret) (auth.Scope, error) {
	a := cmd.Actor
	s := auth.Scope{Group: cmd.ResourceGroup, DomainID: a.DomainID}
	switch cmd.ResourceGroup {
	case auth.GroupDomain:
		if cmd.WorkspaceID != "" {
			return s, invalid("resourceGroup", "a DOMAIN trusted secret takes no workspaceId")
		}
	case auth.GroupWorkspace:
		s.WorkspaceID = cmd.WorkspaceID
		if s.WorkspaceID == "" {
			s.WorkspaceID = a.WorkspaceID
		}
		if s.WorkspaceID == "" {
			return s, invalid("workspaceId", "is required for a WORKSPACE trusted secret")
		}
	default:
		return s, invalid("resourceGroup", "must be DOMAIN or WORKSPACE for a trusted secret (it lives in no project)")
	}
	return s, nil
}

// HandleCreateTrustedSecret validates, seals the value with a fresh data key and opens the stream.
func (d Deps) HandleCreateTrustedSecret(ctx context.Context, cmd CreateTrustedSecret) (Result, error) {
	if err := requireActor(cmd.Meta); err != nil {
		return Result{}, err
	}
	name, err := checkName(cmd.Name)
	if err != nil {
		return Result{}, err
	}
	if err := checkIDs(map[string]string{"workspaceId": cmd.WorkspaceID, "trustedAccountId": cmd.TrustedAccountID}); err != nil {
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
	scope, err := trustedSecretScope(cmd)
	if err != nil {
		return Result{}, err
	}
	if !cmd.Actor.CanWriteTrustedSecret(scope) {
		return Result{}, denied("%s may not create a %s trusted secret here", cmd.Actor.Role, scope.Group)
	}
	id := newID(trustedSecretIDPrefix)
	return d.create(ctx, cmd.Meta, secretTenant(scope), &TrustedSecret{}, id, cmd.Settings.KmsKeyID, plain, nil, events.TrustedSecretCreatedV1,
		func(sealed events.Sealed) any {
			return events.TrustedSecretCreated{
				TrustedSecretID: id, Name: name, SchemaID: cmd.SchemaID, Provider: provider, Tags: tags,
				TrustedAccountID: cmd.TrustedAccountID, ResourceGroup: string(scope.Group), DomainID: scope.DomainID,
				WorkspaceID: scope.WorkspaceID, Data: sealed, Settings: cmd.Settings,
			}
		})
}

// loadTrustedSecretFor loads a trusted secret the actor may see: another
// tenant's and a missing one are both NOT_FOUND.
func (d Deps) loadTrustedSecretFor(ctx context.Context, meta Meta, id string) (*TrustedSecret, error) {
	s := &TrustedSecret{}
	if err := d.loadVisible(ctx, meta, "trustedSecretId", "trusted secret", trustedSecretIDPrefix, id, s,
		func() bool { return !s.PendingDelete && meta.Actor.CanReadTrustedSecret(s.Scope) }); err != nil {
		return nil, err
	}
	return s, nil
}

// HandleUpdateTrustedSecret records changed metadata and settings (no event when nothing changes).
func (d Deps) HandleUpdateTrustedSecret(ctx context.Context, cmd UpdateTrustedSecret) (Result, error) {
	cmd.Target.Kind = "trusted secret"
	return d.changeTarget(ctx, cmd.Target, false, func(r Resource) (Decision, error) {
		return described(r, r.Tenant(), cmd.Name, cmd.Tags, cmd.Settings, func(name *string, tags map[string]any) Emit {
			return Emit{events.TrustedSecretUpdatedV1, events.TrustedSecretUpdated{Name: name, Tags: tags}}
		})
	})
}

// HandleUpdateTrustedSecretData seals the new value and starts a new data
// version. Linked secrets read it from then on; their schemas are checked
// against the merged value when they are read (see revealLinked).
func (d Deps) HandleUpdateTrustedSecretData(ctx context.Context, cmd UpdateTrustedSecretData) (Result, error) {
	return d.changeValue(ctx, cmd.Target, "trusted secret", "", "updateTrustedSecretData", cmd.SchemaID, cmd.Data)
}

// HandleRevealTrustedSecretData decrypts the current value for SYSTEM callers of the trusted secret's domain.
func (d Deps) HandleRevealTrustedSecretData(ctx context.Context, q RevealTrustedSecretData) (Revealed, error) {
	s, err := d.loadTrustedSecretFor(ctx, q.Meta, q.TrustedSecretID)
	if err != nil {
		return Revealed{}, err
	}
	if !q.Actor.CanReadTrustedSecretValue(s.Scope) {
		return Revealed{}, denied("only SYSTEM reads secret values")
	}
	return d.reveal(ctx, q.Meta, s, q.RevealOptions, events.TrustedSecretDataReadV1, func(n int64) any {
		return events.TrustedSecretDataRead{TrustedSecretID: s.ID, DataVersion: n}
	})
}

// HandleReadTrustedSecretAsOf implements ReadTrustedSecretAsOf.
func (d Deps) HandleReadTrustedSecretAsOf(ctx context.Context, q ReadTrustedSecretAsOf) (*TrustedSecret, error) {
	return d.TrustedSecretAsOf(ctx, q.Meta, q.TrustedSecretID, q.AsOf)
}

// TrustedSecretAsOf answers a trusted secret's metadata as it was at asOf,
// replayed from the log. One deleted since is visible (as of before its
// deletion) to DOMAIN_ADMIN of its domain only, as for secrets.
func (d Deps) TrustedSecretAsOf(ctx context.Context, meta Meta, id string, asOf time.Time) (*TrustedSecret, error) {
	if err := requireActor(meta); err != nil {
		return nil, err
	}
	if err := checkResourceID("trustedSecretId", "trusted secret", trustedSecretIDPrefix, id); err != nil {
		return nil, err
	}
	s := &TrustedSecret{}
	deletedLater, err := replayUntil(ctx, d.Store, id, asOf, s)
	if err != nil {
		return nil, err
	}
	if !s.Exists() || !meta.Actor.CanReadTrustedSecret(s.Scope) {
		return nil, notFound("trusted secret", id)
	}
	if deletedLater && !(meta.Actor.Role == auth.RoleDomainAdmin && meta.Actor.DomainID == s.Scope.DomainID) {
		return nil, notFound("trusted secret", id)
	}
	return s, nil
}
