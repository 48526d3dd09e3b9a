package projections

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/query"
)

// TrustedSecretsProjection names the trusted_secrets read model's projection.
const TrustedSecretsProjection = "trusted_secrets"

// trustedSecretsDDL: the trusted_secrets read model, and the index that
// finds the secrets linked to a trusted secret (deleteTrustedSecret checks
// there is none). Indexes follow the secrets table's (see readModelDDL).
const trustedSecretsDDL = `
CREATE TABLE IF NOT EXISTS trusted_secrets{{suffix}} (
    trusted_secret_id  text PRIMARY KEY,
    name               text        NOT NULL,
    schema_id          text,
    provider           text,
    tags               jsonb       NOT NULL DEFAULT '{}',
    trusted_account_id text,
    resource_group     text        NOT NULL,
    domain_id          text        NOT NULL,
    workspace_id       text,
    state              text        NOT NULL DEFAULT 'ENABLED',
    description        text,
    kms_key_id         text,
    max_versions       integer,
    auto_rotation      boolean     NOT NULL DEFAULT false,
    rotation_period_hours integer,
    next_rotation_time timestamptz,
    last_rotated_at    timestamptz,
    version            bigint      NOT NULL,
    stream_version     bigint      NOT NULL,
    created_by         text        NOT NULL,
    updated_by         text        NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS trusted_secrets{{suffix}}_visibility ON trusted_secrets{{suffix}} (domain_id, resource_group, workspace_id);
CREATE INDEX IF NOT EXISTS trusted_secrets{{suffix}}_domain_id ON trusted_secrets{{suffix}} (domain_id, trusted_secret_id)
    INCLUDE (resource_group, workspace_id);
CREATE INDEX IF NOT EXISTS trusted_secrets{{suffix}}_domain_created ON trusted_secrets{{suffix}} (domain_id, created_at NULLS FIRST, trusted_secret_id)
    INCLUDE (resource_group, workspace_id);
CREATE INDEX IF NOT EXISTS trusted_secrets{{suffix}}_domain_name ON trusted_secrets{{suffix}} (domain_id, name NULLS FIRST, trusted_secret_id)
    INCLUDE (resource_group, workspace_id);
CREATE INDEX IF NOT EXISTS trusted_secrets{{suffix}}_domain_name_folded ON trusted_secrets{{suffix}} (domain_id, lower(name), trusted_secret_id)
    INCLUDE (resource_group, workspace_id);
CREATE INDEX IF NOT EXISTS trusted_secrets{{suffix}}_tags_folded ON trusted_secrets{{suffix}} USING gin (` + query.FoldedTags + ` jsonb_path_ops);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_trusted_secret ON secrets{{suffix}} (domain_id, trusted_secret_id, secret_id)
    WHERE trusted_secret_id IS NOT NULL;
`

// trustedSecretRow is a row of the trusted_secrets read model, as its columns are named.
type trustedSecretRow struct {
	TrustedSecretID  string         `json:"trusted_secret_id"`
	Name             string         `json:"name"`
	SchemaID         *string        `json:"schema_id"`
	Provider         *string        `json:"provider"`
	Tags             map[string]any `json:"tags"`
	TrustedAccountID *string        `json:"trusted_account_id"`
	ResourceGroup    string         `json:"resource_group"`
	DomainID         string         `json:"domain_id"`
	WorkspaceID      *string        `json:"workspace_id"`
	Lifecycle
	Version       int64     `json:"version"`
	StreamVersion int64     `json:"stream_version"`
	CreatedBy     string    `json:"created_by"`
	UpdatedBy     string    `json:"updated_by"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

var trustedSecretsTable = newTable("trusted_secrets", "trusted_secret_id", trustedSecretRow{})

func trustedSecretRowOf(s *commands.TrustedSecret) trustedSecretRow {
	return trustedSecretRow{
		TrustedSecretID: s.ID, Name: s.Name, SchemaID: nullIfEmpty(s.SchemaID), Provider: nullIfEmpty(s.Provider),
		Tags: nonNilTags(s.Tags), TrustedAccountID: nullIfEmpty(s.TrustedAccountID), ResourceGroup: string(s.Scope.Group),
		DomainID: s.Scope.DomainID, WorkspaceID: nullIfEmpty(s.Scope.WorkspaceID), Lifecycle: LifecycleOf(&s.Versioned), Version: s.DataVersion,
		StreamVersion: s.StreamVersion, CreatedBy: s.CreatedBy, UpdatedBy: s.UpdatedBy,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

// TrustedSecretProjection maintains the trusted_secrets read model from
// the trusted secrets' state, inline like the secrets read model.
type TrustedSecretProjection struct{ suffix string }

// Name implements Projection.
func (TrustedSecretProjection) Name() string { return TrustedSecretsProjection }

// Tables implements Projection.
func (TrustedSecretProjection) Tables() []string { return []string{"trusted_secrets"} }

// Shadow implements Projection.
func (TrustedSecretProjection) Shadow(suffix string) Projection {
	return TrustedSecretProjection{suffix: suffix}
}

// Queue implements Projection.
func (p TrustedSecretProjection) Queue(b *pgx.Batch, changes []commands.Change) error {
	return stateRows(b, trustedSecretsTable, p.suffix, changes, trustedSecretRowOf)
}

// TrustedSecret is a row of the trusted_secrets read model.
type TrustedSecret struct {
	TrustedSecretID  string
	Name             string
	SchemaID         *string
	Provider         *string
	Tags             map[string]any
	TrustedAccountID *string
	ResourceGroup    string
	DomainID         string
	WorkspaceID      *string
	Lifecycle
	Version   int64
	CreatedBy string
	UpdatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// narrow clears what a list's only and minimal leave out (the schema's
// TrustedSecret fields that can be null).
func (s *TrustedSecret) narrow(fields []string) {
	drop(fields, "schemaId", &s.SchemaID)
	drop(fields, "provider", &s.Provider)
	drop(fields, "trustedAccountId", &s.TrustedAccountID)
	drop(fields, "workspaceId", &s.WorkspaceID)
	s.Lifecycle.narrow(fields)
}

// TrustedSecretResource is the trusted_secrets read model as the query
// language sees it. Keyword fields are Cloudforet's: id, name, schema,
// provider.
var TrustedSecretResource = query.Resource{
	Table: "trusted_secrets",
	Fields: []query.Field{
		field("trustedSecretId", "trusted_secret_id", query.KindText), field("name", "name", query.KindText),
		field("schemaId", "schema_id", query.KindText), field("provider", "provider", query.KindText),
		field("trustedAccountId", "trusted_account_id", query.KindText), field("resourceGroup", "resource_group", query.KindText),
		field("domainId", "domain_id", query.KindText), field("workspaceId", "workspace_id", query.KindText),
		field("version", "version", query.KindInt), field("createdBy", "created_by", query.KindText),
		field("updatedBy", "updated_by", query.KindText), field("createdAt", "created_at", query.KindTime),
		field("updatedAt", "updated_at", query.KindTime), field("tags", "tags", query.KindJSON),
		field("state", "state", query.KindText), field("description", "description", query.KindText),
		field("kmsKeyId", "kms_key_id", query.KindText), field("nextRotationTime", "next_rotation_time", query.KindTime),
		field("lastRotatedAt", "last_rotated_at", query.KindTime),
	},
	Keyword:    []string{"trusted_secret_id", "name", "schema_id", "provider"},
	Exact:      []string{"trusted_secret_id", "domain_id", "workspace_id", "trusted_account_id"},
	Minimal:    []string{"trustedSecretId", "name", "schemaId", "provider"},
	Tiebreak:   "trusted_secret_id",
	Visibility: trustedSecretVisibility,
}

const trustedSecretColumns = `trusted_secret_id, name, schema_id, provider, tags, trusted_account_id, resource_group,
	domain_id, workspace_id, version, created_by, updated_by, created_at, updated_at, ` + lifecycleColumns

func scanTrustedSecret(row pgx.Row) (TrustedSecret, error) {
	var s TrustedSecret
	var tags []byte
	err := row.Scan(append([]any{&s.TrustedSecretID, &s.Name, &s.SchemaID, &s.Provider, &tags, &s.TrustedAccountID,
		&s.ResourceGroup, &s.DomainID, &s.WorkspaceID, &s.Version, &s.CreatedBy, &s.UpdatedBy, &s.CreatedAt, &s.UpdatedAt},
		s.Lifecycle.targets()...)...)
	if err != nil {
		return s, err
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, json.Unmarshal(tags, &s.Tags)
}

// trustedSecretVisibility is auth.Identity.CanReadTrustedSecret as SQL.
func trustedSecretVisibility(b *query.Args, id auth.Identity) string {
	if id.Validate() != nil || id.DomainID == "" {
		return "false"
	}
	// Bound only on the paths that use it: an unused parameter fails the query.
	domain := func() string { return "domain_id = " + b.Bind(id.DomainID) }
	switch id.Role {
	case auth.RoleSystem, auth.RoleDomainAdmin:
		return domain() + " AND resource_group IN ('DOMAIN', 'WORKSPACE')"
	case auth.RoleWorkspaceOwner, auth.RoleWorkspaceMember:
		if id.WorkspaceID == "" {
			return "false"
		}
		return domain() + " AND (resource_group = 'DOMAIN' OR (resource_group = 'WORKSPACE' AND workspace_id = " +
			b.Bind(id.WorkspaceID) + "))"
	}
	return "false"
}

// TrustedSecret returns one trusted secret visible to id.
func (r *Reader) TrustedSecret(ctx context.Context, id auth.Identity, trustedSecretID string) (TrustedSecret, error) {
	b := &query.Args{}
	q := `SELECT ` + trustedSecretColumns + ` FROM trusted_secrets WHERE trusted_secret_id = ` + b.Bind(trustedSecretID) +
		` AND ` + trustedSecretVisibility(b, id)
	s, err := scanTrustedSecret(r.pool.QueryRow(ctx, q, b.Values()...))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotFound
	}
	return s, err
}

// TrustedSecrets lists the trusted secrets visible to id matching q; total counts before paging.
func (r *Reader) TrustedSecrets(ctx context.Context, id auth.Identity, in query.Input) ([]TrustedSecret, int, error) {
	return list(ctx, r, &TrustedSecretResource, trustedSecretColumns, id, in, scanTrustedSecret, (*TrustedSecret).narrow)
}

var _ commands.LinkReader = (*Projector)(nil)

// SnapshotIn implements commands.LinkReader.
func (p *Projector) SnapshotIn(ctx context.Context, tx pgx.Tx, id string, into commands.Resource) (bool, error) {
	return loadSnapshot(ctx, tx, "", id, into)
}

// LinkedSecret implements commands.LinkReader: the secrets read model holds
// only live secrets, written in the transaction of every secret write.
func (p *Projector) LinkedSecret(ctx context.Context, tx pgx.Tx, domainID, trustedSecretID string) (string, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT secret_id FROM secrets WHERE domain_id = $1 AND trusted_secret_id = $2
		ORDER BY secret_id LIMIT 1`, domainID, trustedSecretID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}
