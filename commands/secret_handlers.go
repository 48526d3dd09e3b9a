package commands

import (
	"context"
	"encoding/json"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
)

const secretIDPrefix = "secret-"

// CreateSecret stores a new secret.
type CreateSecret struct {
	Meta
	Name             string
	Data             map[string]any
	SchemaID         string
	Tags             map[string]any
	ResourceGroup    auth.ResourceGroup
	WorkspaceID      string
	ProjectID        string
	ServiceAccountID string
	TrustedSecretID  string
	Settings         events.Settings
	// ClientRequestToken makes the create idempotent (see TokenTTL).
	ClientRequestToken string
}

// UpdateSecret changes a secret's metadata and settings; nil fields stay
// as they are.
type UpdateSecret struct {
	Target
	Name      *string
	Tags      map[string]any
	ProjectID *string
	// TrustedSecretID, when given, links the secret to that trusted secret
	// ("" unlinks it).
	TrustedSecretID *string
	Settings        ChangeSettings
}

// UpdateSecretData replaces a secret's value (a new data version).
type UpdateSecretData struct {
	Target
	Data map[string]any
	// SchemaID, when given, replaces the schema; otherwise the current one validates the data.
	SchemaID *string
	// ClientRequestToken makes the update idempotent (see TokenTTL).
	ClientRequestToken string
}

// secretScope resolves where a new secret lives from the request and the caller.
func secretScope(cmd CreateSecret) (auth.Scope, error) {
	a := cmd.Actor
	s := auth.Scope{Group: cmd.ResourceGroup, DomainID: a.DomainID}
	switch cmd.ResourceGroup {
	case auth.GroupDomain:
		if cmd.WorkspaceID != "" || cmd.ProjectID != "" {
			return s, invalid("resourceGroup", "a DOMAIN secret takes no workspaceId or projectId")
		}
	case auth.GroupWorkspace, auth.GroupProject:
		s.WorkspaceID = cmd.WorkspaceID
		if s.WorkspaceID == "" {
			s.WorkspaceID = a.WorkspaceID
		}
		if s.WorkspaceID == "" {
			return s, invalid("workspaceId", "is required for a %s secret", cmd.ResourceGroup)
		}
		if cmd.ResourceGroup == auth.GroupProject {
			if cmd.ProjectID == "" {
				return s, invalid("projectId", "is required for a PROJECT secret")
			}
			s.ProjectID = cmd.ProjectID
		} else if cmd.ProjectID != "" {
			return s, invalid("projectId", "a WORKSPACE secret takes no projectId")
		}
	default:
		return s, invalid("resourceGroup", "must be DOMAIN, WORKSPACE or PROJECT")
	}
	return s, nil
}

func secretTenant(s auth.Scope) events.Tenant {
	return events.Tenant{DomainID: s.DomainID, WorkspaceID: s.WorkspaceID, ProjectID: s.ProjectID}
}

func checkIDs(fields map[string]string) error {
	for f, v := range fields {
		if err := checkID(f, v); err != nil {
			return err
		}
	}
	return nil
}

// HandleCreateSecret validates, seals the value with a fresh data key and opens the stream.
func (d Deps) HandleCreateSecret(ctx context.Context, cmd CreateSecret) (Result, error) {
	if err := requireActor(cmd.Meta); err != nil {
		return Result{}, err
	}
	name, err := checkName(cmd.Name)
	if err != nil {
		return Result{}, err
	}
	if err := checkIDs(map[string]string{"workspaceId": cmd.WorkspaceID, "projectId": cmd.ProjectID,
		"serviceAccountId": cmd.ServiceAccountID, "trustedSecretId": cmd.TrustedSecretID}); err != nil {
		return Result{}, err
	}
	tags, err := checkTags(cmd.Tags)
	if err != nil {
		return Result{}, err
	}
	if err := d.checkSettings(cmd.Settings); err != nil {
		return Result{}, err
	}
	// A linked secret's schema is checked with the trusted secret's data
	// merged in (checkLink): it may supply required fields.
	schemaAlone := cmd.SchemaID
	if cmd.TrustedSecretID != "" {
		schemaAlone = ""
	}
	plain, provider, err := checkData(d.Schemas, schemaAlone, cmd.Data)
	if err != nil {
		return Result{}, err
	}
	scope, err := secretScope(cmd)
	if err != nil {
		return Result{}, err
	}
	if !cmd.Actor.CanWriteSecret(scope) {
		return Result{}, denied("%s may not create a %s secret here", cmd.Actor.Role, scope.Group)
	}
	var checks []precondition
	if cmd.TrustedSecretID != "" {
		if provider, err = d.checkLink(ctx, scope, cmd.TrustedSecretID, cmd.SchemaID, cmd.Data); err != nil {
			return Result{}, err
		}
		checks = append(checks, d.holdLink(scope, cmd.TrustedSecretID))
	}
	claim, err := d.claimToken(cmd.Meta, cmd.ClientRequestToken, "createSecret", struct {
		Name, SchemaID, Group, Workspace, Project, ServiceAccount, TrustedSecret string
		Tags                                                                     map[string]any
		Settings                                                                 events.Settings
		Data                                                                     json.RawMessage
	}{name, cmd.SchemaID, string(scope.Group), scope.WorkspaceID, scope.ProjectID, cmd.ServiceAccountID, cmd.TrustedSecretID,
		tags, cmd.Settings, plain})
	if err != nil {
		return Result{}, err
	}
	return d.idempotent(ctx, claim, &Secret{}, func() (Result, error) {
		id := newID(secretIDPrefix)
		return d.create(ctx, cmd.Meta, secretTenant(scope), &Secret{}, id, cmd.Settings.KmsKeyID, plain, claim, events.SecretCreatedV1, func(sealed events.Sealed) any {
			return events.SecretCreated{
				SecretID: id, Name: name, SchemaID: cmd.SchemaID, Provider: provider, Tags: tags,
				ResourceGroup: string(scope.Group), DomainID: scope.DomainID, WorkspaceID: scope.WorkspaceID,
				ProjectID: scope.ProjectID, ServiceAccountID: cmd.ServiceAccountID, TrustedSecretID: cmd.TrustedSecretID,
				Data: sealed, Settings: cmd.Settings,
			}
		}, checks...)
	})
}

// loadSecretFor loads a secret the actor may see: another tenant's secret,
// a missing one and one scheduled for deletion are all NOT_FOUND.
func (d Deps) loadSecretFor(ctx context.Context, meta Meta, id string) (*Secret, error) {
	s := &Secret{}
	if err := d.loadVisible(ctx, meta, "secretId", "secret", secretIDPrefix, id, s, func() bool {
		return !s.PendingDelete && meta.Actor.CanReadSecret(s.Scope)
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// HandleUpdateSecret records changed metadata and settings (no event when
// nothing changes).
func (d Deps) HandleUpdateSecret(ctx context.Context, cmd UpdateSecret) (Result, error) {
	cmd.Target.Kind = "secret"
	return d.changeTarget(ctx, cmd.Target, false, func(r Resource) (Decision, error) {
		s := r.(*Secret)
		var projectID *string
		newScope := s.Scope
		if cmd.ProjectID != nil && *cmd.ProjectID != s.Scope.ProjectID {
			if s.Scope.Group != auth.GroupProject {
				return Decision{}, invalid("projectId", "only a PROJECT secret can move to another project")
			}
			if *cmd.ProjectID == "" {
				return Decision{}, invalid("projectId", "must not be empty for a PROJECT secret")
			}
			if err := checkID("projectId", *cmd.ProjectID); err != nil {
				return Decision{}, err
			}
			newScope.ProjectID = *cmd.ProjectID
			if !cmd.Actor.CanWriteSecret(newScope) {
				return Decision{}, denied("%s may not move secret %q to project %q", cmd.Actor.Role, s.ID, newScope.ProjectID)
			}
			projectID = cmd.ProjectID
		}
		dec, err := described(s, secretTenant(newScope), cmd.Name, cmd.Tags, cmd.Settings, func(name *string, tags map[string]any) Emit {
			return Emit{events.SecretUpdatedV1, events.SecretUpdated{Name: name, Tags: tags, ProjectID: projectID}}
		})
		if err != nil {
			return Decision{}, err
		}
		if projectID != nil && (len(dec.Events) == 0 || dec.Events[0].Type != events.SecretUpdatedV1) {
			// A move alone.
			dec.Events = append([]Emit{{events.SecretUpdatedV1, events.SecretUpdated{ProjectID: projectID}}}, dec.Events...)
		}
		if cmd.TrustedSecretID != nil && *cmd.TrustedSecretID != s.TrustedSecretID {
			checks, err := d.relink(ctx, s, newScope, *cmd.TrustedSecretID)
			if err != nil {
				return Decision{}, err
			}
			dec.Checks = checks
			dec.Events = append(dec.Events, Emit{events.SecretLinkChangedV1, events.SecretLinkChanged{TrustedSecretID: *cmd.TrustedSecretID}})
		}
		return dec, nil
	})
}

// HandleUpdateSecretData seals the new value and starts a new data version.
func (d Deps) HandleUpdateSecretData(ctx context.Context, cmd UpdateSecretData) (Result, error) {
	return d.changeValue(ctx, cmd.Target, "secret", cmd.ClientRequestToken, "updateSecretData", cmd.SchemaID, cmd.Data)
}

// RevealSecretData asks for a secret's value (SYSCURRENT unless a version
// or stage is named).
type RevealSecretData struct {
	Meta
	SecretID string
	RevealOptions
}

// Revealed is a decrypted value with the data version it belongs to.
type Revealed struct {
	ID          string
	DataVersion int64
	Data        map[string]any
}

// HandleRevealSecretData decrypts a value for SYSTEM callers of the secret's domain.
func (d Deps) HandleRevealSecretData(ctx context.Context, q RevealSecretData) (Revealed, error) {
	s, err := d.loadSecretFor(ctx, q.Meta, q.SecretID)
	if err != nil {
		return Revealed{}, err
	}
	if !q.Actor.CanReadSecretValue(s.Scope) {
		return Revealed{}, denied("only SYSTEM reads secret values")
	}
	if s.TrustedSecretID != "" {
		return d.revealLinked(ctx, q.Meta, s, q.RevealOptions)
	}
	return d.reveal(ctx, q.Meta, s, q.RevealOptions, events.SecretDataReadV1, func(n int64) any {
		return events.SecretDataRead{SecretID: s.ID, DataVersion: n}
	})
}
