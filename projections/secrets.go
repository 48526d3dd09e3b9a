package projections

import (
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/commands"
)

// secretRow is a row of the secrets read model, as its columns are named.
type secretRow struct {
	SecretID         string         `json:"secret_id"`
	Name             string         `json:"name"`
	SchemaID         *string        `json:"schema_id"`
	Provider         *string        `json:"provider"`
	Tags             map[string]any `json:"tags"`
	ResourceGroup    string         `json:"resource_group"`
	DomainID         string         `json:"domain_id"`
	WorkspaceID      *string        `json:"workspace_id"`
	ProjectID        *string        `json:"project_id"`
	ServiceAccountID *string        `json:"service_account_id"`
	TrustedSecretID  *string        `json:"trusted_secret_id"`
	Lifecycle
	Version       int64     `json:"version"`
	StreamVersion int64     `json:"stream_version"`
	CreatedBy     string    `json:"created_by"`
	UpdatedBy     string    `json:"updated_by"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

var secretsTable = newTable("secrets", "secret_id", secretRow{})

func secretRowOf(s *commands.Secret) secretRow {
	return secretRow{
		SecretID: s.ID, Name: s.Name, SchemaID: nullIfEmpty(s.SchemaID), Provider: nullIfEmpty(s.Provider),
		Tags: nonNilTags(s.Tags), ResourceGroup: string(s.Scope.Group), DomainID: s.Scope.DomainID,
		WorkspaceID: nullIfEmpty(s.Scope.WorkspaceID), ProjectID: nullIfEmpty(s.Scope.ProjectID),
		ServiceAccountID: nullIfEmpty(s.ServiceAccountID), TrustedSecretID: nullIfEmpty(s.TrustedSecretID),
		Lifecycle: LifecycleOf(&s.Versioned), Version: s.DataVersion, StreamVersion: s.StreamVersion, CreatedBy: s.CreatedBy, UpdatedBy: s.UpdatedBy,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

// userSecretRow is a row of the user_secrets read model.
type userSecretRow struct {
	UserSecretID string         `json:"user_secret_id"`
	Name         string         `json:"name"`
	SchemaID     *string        `json:"schema_id"`
	Provider     *string        `json:"provider"`
	Tags         map[string]any `json:"tags"`
	DomainID     string         `json:"domain_id"`
	UserID       string         `json:"user_id"`
	Lifecycle
	Version       int64     `json:"version"`
	StreamVersion int64     `json:"stream_version"`
	CreatedBy     string    `json:"created_by"`
	UpdatedBy     string    `json:"updated_by"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

var userSecretsTable = newTable("user_secrets", "user_secret_id", userSecretRow{})

func userSecretRowOf(s *commands.UserSecret) userSecretRow {
	return userSecretRow{
		UserSecretID: s.ID, Name: s.Name, SchemaID: nullIfEmpty(s.SchemaID), Provider: nullIfEmpty(s.Provider),
		Tags: nonNilTags(s.Tags), DomainID: s.DomainID, UserID: s.UserID, Lifecycle: LifecycleOf(&s.Versioned), Version: s.DataVersion,
		StreamVersion: s.StreamVersion, CreatedBy: s.CreatedBy, UpdatedBy: s.UpdatedBy,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

// LifecycleOf is the lifecycle fields of a state, as rows and views show them.
func LifecycleOf(v *commands.Versioned) Lifecycle {
	return Lifecycle{State: v.State(), Description: nullIfEmpty(v.Description), KmsKeyID: nullIfEmpty(v.KmsKeyID),
		MaxVersions: nullIfZero(v.MaxVersions), AutoRotation: v.AutoRotation, RotationPeriodHours: nullIfZero(v.RotationPeriodHours),
		NextRotationTime: v.NextRotation, LastRotatedAt: v.LastRotatedAt}
}

func nullIfZero(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

// stateRows writes one row per live resource of type T the changes moved
// (deleted ones, and those scheduled for deletion, lose their row): the
// read models that get, list and stat answer from.
func stateRows[T commands.Resource, R any](b *pgx.Batch, t table, suffix string,
	changes []commands.Change, row func(T) R) error {
	var live []R
	var gone []string
	for _, s := range latest[T](changes) {
		if b := s.Base(); b.Deleted || b.PendingDelete {
			gone = append(gone, b.ID)
		} else {
			live = append(live, row(s))
		}
	}
	t.remove(b, suffix, gone)
	return t.upsert(b, suffix, live)
}

// SecretProjection maintains the secrets read model.
type SecretProjection struct{ suffix string }

// Name implements Projection.
func (SecretProjection) Name() string { return SecretsProjection }

// Tables implements Projection.
func (SecretProjection) Tables() []string { return []string{"secrets"} }

// Shadow implements Projection.
func (SecretProjection) Shadow(suffix string) Projection { return SecretProjection{suffix: suffix} }

// Queue implements Projection.
func (p SecretProjection) Queue(b *pgx.Batch, changes []commands.Change) error {
	return stateRows(b, secretsTable, p.suffix, changes, secretRowOf)
}

// UserSecretProjection maintains the user_secrets read model.
type UserSecretProjection struct{ suffix string }

// Name implements Projection.
func (UserSecretProjection) Name() string { return UserSecretsProjection }

// Tables implements Projection.
func (UserSecretProjection) Tables() []string { return []string{"user_secrets"} }

// Shadow implements Projection.
func (UserSecretProjection) Shadow(suffix string) Projection {
	return UserSecretProjection{suffix: suffix}
}

// Queue implements Projection.
func (p UserSecretProjection) Queue(b *pgx.Batch, changes []commands.Change) error {
	return stateRows(b, userSecretsTable, p.suffix, changes, userSecretRowOf)
}
