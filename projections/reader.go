package projections

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/query"
)

// ErrNotFound: no such row visible to the caller.
var ErrNotFound = errors.New("projections: not found")

// Secret is a row of the secrets read model.
type Secret struct {
	SecretID         string
	Name             string
	SchemaID         *string
	Provider         *string
	Tags             map[string]any
	ResourceGroup    string
	DomainID         string
	WorkspaceID      *string
	ProjectID        *string
	ServiceAccountID *string
	TrustedSecretID  *string
	Lifecycle
	Version   int64
	CreatedBy string
	UpdatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
	// fields are the fields a list answers (only, minimal); nil: all.
	fields []string
}

// UserSecret is a row of the user_secrets read model.
type UserSecret struct {
	UserSecretID string
	Name         string
	SchemaID     *string
	Provider     *string
	Tags         map[string]any
	DomainID     string
	UserID       string
	Lifecycle
	Version   int64
	CreatedBy string
	UpdatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
	// fields are the fields a list answers (only, minimal); nil: all.
	fields []string
}

// field is one queryable field of a read model: GraphQL name, column (also
// the Cloudforet name) and kind.
func field(name, column string, kind query.Kind) query.Field {
	return query.Field{Name: name, Column: column, Kind: kind}
}

// SecretResource is the secrets read model as the query language sees it.
var SecretResource = query.Resource{
	Table: "secrets",
	Fields: []query.Field{
		field("secretId", "secret_id", query.KindText), field("name", "name", query.KindText), field("schemaId", "schema_id", query.KindText),
		field("provider", "provider", query.KindText), field("resourceGroup", "resource_group", query.KindText),
		field("domainId", "domain_id", query.KindText), field("workspaceId", "workspace_id", query.KindText),
		field("projectId", "project_id", query.KindText), field("serviceAccountId", "service_account_id", query.KindText),
		field("trustedSecretId", "trusted_secret_id", query.KindText), field("version", "version", query.KindInt),
		field("createdBy", "created_by", query.KindText), field("updatedBy", "updated_by", query.KindText),
		field("createdAt", "created_at", query.KindTime), field("updatedAt", "updated_at", query.KindTime), field("tags", "tags", query.KindJSON),
		field("state", "state", query.KindText), field("description", "description", query.KindText), field("kmsKeyId", "kms_key_id", query.KindText),
		field("nextRotationTime", "next_rotation_time", query.KindTime), field("lastRotatedAt", "last_rotated_at", query.KindTime),
	},
	Keyword: []string{"secret_id", "name", "schema_id", "provider"},
	// Ids are compared exactly, as python-core's exact_fields did for them,
	// so their indexes serve eq and in.
	Exact:      []string{"secret_id", "domain_id", "workspace_id", "project_id", "service_account_id", "trusted_secret_id"},
	Minimal:    []string{"secretId", "name", "schemaId", "provider"},
	Tiebreak:   "secret_id",
	Visibility: secretVisibility,
}

// UserSecretResource is the user_secrets read model as the query language sees it.
var UserSecretResource = query.Resource{
	Table: "user_secrets",
	Fields: []query.Field{
		field("userSecretId", "user_secret_id", query.KindText), field("name", "name", query.KindText), field("schemaId", "schema_id", query.KindText),
		field("provider", "provider", query.KindText), field("domainId", "domain_id", query.KindText), field("userId", "user_id", query.KindText),
		field("version", "version", query.KindInt), field("createdBy", "created_by", query.KindText), field("updatedBy", "updated_by", query.KindText),
		field("createdAt", "created_at", query.KindTime), field("updatedAt", "updated_at", query.KindTime), field("tags", "tags", query.KindJSON),
		field("state", "state", query.KindText), field("description", "description", query.KindText), field("kmsKeyId", "kms_key_id", query.KindText),
		field("nextRotationTime", "next_rotation_time", query.KindTime), field("lastRotatedAt", "last_rotated_at", query.KindTime),
	},
	Keyword:    []string{"user_secret_id", "name", "schema_id", "provider"},
	Exact:      []string{"user_secret_id", "domain_id", "user_id"},
	Minimal:    []string{"userSecretId", "name", "schemaId", "provider"},
	Tiebreak:   "user_secret_id",
	Visibility: userSecretVisibility,
}

const secretColumns = `secret_id, name, schema_id, provider, tags, resource_group, domain_id, workspace_id,
	project_id, service_account_id, trusted_secret_id, version, created_by, updated_by, created_at, updated_at, ` + lifecycleColumns

const userSecretColumns = `user_secret_id, name, schema_id, provider, tags, domain_id, user_id, version,
	created_by, updated_by, created_at, updated_at, ` + lifecycleColumns

// Lifecycle are the lifecycle fields of a valued resource's row.
type Lifecycle struct {
	State               string     `json:"state"`
	Description         *string    `json:"description"`
	KmsKeyID            *string    `json:"kms_key_id"`
	MaxVersions         *int       `json:"max_versions"`
	AutoRotation        bool       `json:"auto_rotation"`
	RotationPeriodHours *int       `json:"rotation_period_hours"`
	NextRotationTime    *time.Time `json:"next_rotation_time"`
	LastRotatedAt       *time.Time `json:"last_rotated_at"`
}

const lifecycleColumns = `state, description, kms_key_id, max_versions, auto_rotation, rotation_period_hours,
	next_rotation_time, last_rotated_at`

func (l *Lifecycle) targets() []any {
	return []any{&l.State, &l.Description, &l.KmsKeyID, &l.MaxVersions, &l.AutoRotation, &l.RotationPeriodHours,
		&l.NextRotationTime, &l.LastRotatedAt}
}

func scanSecret(row pgx.Row) (Secret, error) {
	var s Secret
	var tags []byte
	err := row.Scan(append([]any{&s.SecretID, &s.Name, &s.SchemaID, &s.Provider, &tags, &s.ResourceGroup, &s.DomainID,
		&s.WorkspaceID, &s.ProjectID, &s.ServiceAccountID, &s.TrustedSecretID, &s.Version, &s.CreatedBy,
		&s.UpdatedBy, &s.CreatedAt, &s.UpdatedAt}, s.Lifecycle.targets()...)...)
	if err != nil {
		return s, err
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, json.Unmarshal(tags, &s.Tags)
}

func scanUserSecret(row pgx.Row) (UserSecret, error) {
	var s UserSecret
	var tags []byte
	err := row.Scan(append([]any{&s.UserSecretID, &s.Name, &s.SchemaID, &s.Provider, &tags, &s.DomainID, &s.UserID,
		&s.Version, &s.CreatedBy, &s.UpdatedBy, &s.CreatedAt, &s.UpdatedAt}, s.Lifecycle.targets()...)...)
	if err != nil {
		return s, err
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, json.Unmarshal(tags, &s.Tags)
}

// secretVisibility is the tenancy rule of auth.Identity.CanReadSecret as SQL:
// it is always part of the query, never a filter applied afterwards.
func secretVisibility(b *query.Args, id auth.Identity) string {
	if id.Validate() != nil || id.DomainID == "" {
		return "false"
	}
	// Bound only on the paths that use it: an unused parameter fails the query.
	domain := func() string { return "domain_id = " + b.Bind(id.DomainID) }
	switch id.Role {
	case auth.RoleSystem, auth.RoleDomainAdmin:
		return domain()
	case auth.RoleWorkspaceOwner:
		if id.WorkspaceID == "" {
			return "false"
		}
		return domain() + " AND (resource_group = 'DOMAIN' OR (resource_group IN ('WORKSPACE', 'PROJECT') AND workspace_id = " + b.Bind(id.WorkspaceID) + "))"
	case auth.RoleWorkspaceMember:
		if id.WorkspaceID == "" {
			return "false"
		}
		ws := b.Bind(id.WorkspaceID)
		projects := id.Projects
		if projects == nil {
			projects = []string{}
		}
		return domain() + " AND (resource_group = 'DOMAIN' OR (resource_group = 'WORKSPACE' AND workspace_id = " + ws +
			") OR (resource_group = 'PROJECT' AND workspace_id = " + ws + " AND project_id = ANY(" + b.Bind(projects) + "::text[])))"
	}
	return "false"
}

// userSecretVisibility is auth.Identity.CanReadUserSecret as SQL.
func userSecretVisibility(b *query.Args, id auth.Identity) string {
	if id.Validate() != nil || id.DomainID == "" {
		return "false"
	}
	// Bound only on the paths that use it: an unused parameter fails the query.
	domain := func() string { return "domain_id = " + b.Bind(id.DomainID) }
	switch id.Role {
	case auth.RoleSystem, auth.RoleDomainAdmin:
		return domain()
	}
	if id.UserID == "" {
		return "false"
	}
	return domain() + " AND user_id = " + b.Bind(id.UserID)
}

// Reader answers get, list and stat from the read models.
type Reader struct {
	pool   *pgxpool.Pool
	now    func() time.Time
	limits query.Limits
}

// NewReader reads from pool with DefaultLimits.
func NewReader(pool *pgxpool.Pool) *Reader {
	return &Reader{pool: pool, now: time.Now, limits: query.DefaultLimits()}
}

// WithLimits returns a reader that applies lim (zero fields: defaults).
func (r *Reader) WithLimits(lim query.Limits) *Reader {
	c := *r
	c.limits = lim.WithDefaults()
	return &c
}

// Limits are the limits the reader applies.
func (r *Reader) Limits() query.Limits { return r.limits }

// WithClock returns a reader whose timediff_* operators count from now().
func (r *Reader) WithClock(now func() time.Time) *Reader {
	c := *r
	c.now = now
	return &c
}

// Secret returns one secret visible to id.
func (r *Reader) Secret(ctx context.Context, id auth.Identity, secretID string) (Secret, error) {
	b := &query.Args{}
	q := `SELECT ` + secretColumns + ` FROM secrets WHERE secret_id = ` + b.Bind(secretID) + ` AND ` + secretVisibility(b, id)
	s, err := scanSecret(r.pool.QueryRow(ctx, q, b.Values()...))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotFound
	}
	return s, err
}

// UserSecret returns one user secret visible to id.
func (r *Reader) UserSecret(ctx context.Context, id auth.Identity, userSecretID string) (UserSecret, error) {
	b := &query.Args{}
	q := `SELECT ` + userSecretColumns + ` FROM user_secrets WHERE user_secret_id = ` + b.Bind(userSecretID) + ` AND ` + userSecretVisibility(b, id)
	s, err := scanUserSecret(r.pool.QueryRow(ctx, q, b.Values()...))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotFound
	}
	return s, err
}

// readOnly runs fn in a read-only REPEATABLE READ transaction, so a total
// and its page come from one snapshot. Every statement in it is bounded by
// timeout (SET LOCAL statement_timeout); the request's context cancels it
// too, as when the client goes away.
func readOnly(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, fn func(pgx.Tx) error) error {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if timeout > 0 {
		ms := max(timeout.Milliseconds(), 1)
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = "+strconv.FormatInt(ms, 10)); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// list runs a list query on res within the caller's scope: it is parsed
// once, compiled with the caller's tenancy in the WHERE, and each row is
// scanned with scan, then narrowed to the fields the query answers.
func list[T any](ctx context.Context, r *Reader, res *query.Resource, columns string, id auth.Identity, in query.Input,
	scan func(pgx.Row) (T, error), narrow func(*T, []string)) ([]T, int, error) {
	q, err := query.ParseList(res, in, r.limits, r.now())
	if err != nil {
		return nil, 0, err
	}
	sq, err := q.SQL(id, columns)
	if err != nil {
		return nil, 0, err
	}
	out := []T{}
	var total int
	err = readOnly(ctx, r.pool, r.limits.StatementTimeout, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, sq.Count, sq.CountArgs...).Scan(&total); err != nil {
			return err
		}
		if q.CountOnly {
			return nil
		}
		rows, err := tx.Query(ctx, sq.Rows, sq.Args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			item, err := scan(rows)
			if err != nil {
				return err
			}
			if q.Fields != nil {
				narrow(&item, q.Fields)
			}
			out = append(out, item)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, query.Failure(ctx, err, sq.RegexKeys, r.limits.StatementTimeout)
	}
	return out, total, nil
}

// Secrets lists the secrets visible to id matching in; total counts before paging.
func (r *Reader) Secrets(ctx context.Context, id auth.Identity, in query.Input) ([]Secret, int, error) {
	return list(ctx, r, &SecretResource, secretColumns, id, in, scanSecret, (*Secret).narrow)
}

// UserSecrets lists the user secrets visible to id matching in.
func (r *Reader) UserSecrets(ctx context.Context, id auth.Identity, in query.Input) ([]UserSecret, int, error) {
	return list(ctx, r, &UserSecretResource, userSecretColumns, id, in, scanUserSecret, (*UserSecret).narrow)
}
