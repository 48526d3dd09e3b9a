package projections

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/auth"
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
	Version          int64
	CreatedBy        string
	UpdatedBy        string
	CreatedAt        time.Time
	UpdatedAt        time.Time
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
	Version      int64
	CreatedBy    string
	UpdatedBy    string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// SecretResource is the secrets read model as the query language sees it.
var SecretResource = Resource{
	Table: "secrets",
	Fields: []Field{
		{"secretId", "secret_id", KindText}, {"name", "name", KindText}, {"schemaId", "schema_id", KindText},
		{"provider", "provider", KindText}, {"resourceGroup", "resource_group", KindText},
		{"domainId", "domain_id", KindText}, {"workspaceId", "workspace_id", KindText},
		{"projectId", "project_id", KindText}, {"serviceAccountId", "service_account_id", KindText},
		{"trustedSecretId", "trusted_secret_id", KindText}, {"version", "version", KindInt},
		{"createdBy", "created_by", KindText}, {"updatedBy", "updated_by", KindText},
		{"createdAt", "created_at", KindTime}, {"updatedAt", "updated_at", KindTime}, {"tags", "tags", KindJSON},
	},
	Keyword:  []string{"secret_id", "name", "schema_id", "provider"},
	Tiebreak: "secret_id",
}

// UserSecretResource is the user_secrets read model as the query language sees it.
var UserSecretResource = Resource{
	Table: "user_secrets",
	Fields: []Field{
		{"userSecretId", "user_secret_id", KindText}, {"name", "name", KindText}, {"schemaId", "schema_id", KindText},
		{"provider", "provider", KindText}, {"domainId", "domain_id", KindText}, {"userId", "user_id", KindText},
		{"version", "version", KindInt}, {"createdBy", "created_by", KindText}, {"updatedBy", "updated_by", KindText},
		{"createdAt", "created_at", KindTime}, {"updatedAt", "updated_at", KindTime}, {"tags", "tags", KindJSON},
	},
	Keyword:  []string{"user_secret_id", "name", "schema_id", "provider"},
	Tiebreak: "user_secret_id",
}

const secretColumns = `secret_id, name, schema_id, provider, tags, resource_group, domain_id, workspace_id,
	project_id, service_account_id, trusted_secret_id, version, created_by, updated_by, created_at, updated_at`

const userSecretColumns = `user_secret_id, name, schema_id, provider, tags, domain_id, user_id, version,
	created_by, updated_by, created_at, updated_at`

func scanSecret(row pgx.Row) (Secret, error) {
	var s Secret
	var tags []byte
	err := row.Scan(&s.SecretID, &s.Name, &s.SchemaID, &s.Provider, &tags, &s.ResourceGroup, &s.DomainID,
		&s.WorkspaceID, &s.ProjectID, &s.ServiceAccountID, &s.TrustedSecretID, &s.Version, &s.CreatedBy,
		&s.UpdatedBy, &s.CreatedAt, &s.UpdatedAt)
	if err != nil {
		return s, err
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, json.Unmarshal(tags, &s.Tags)
}

func scanUserSecret(row pgx.Row) (UserSecret, error) {
	var s UserSecret
	var tags []byte
	err := row.Scan(&s.UserSecretID, &s.Name, &s.SchemaID, &s.Provider, &tags, &s.DomainID, &s.UserID,
		&s.Version, &s.CreatedBy, &s.UpdatedBy, &s.CreatedAt, &s.UpdatedAt)
	if err != nil {
		return s, err
	}
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s, json.Unmarshal(tags, &s.Tags)
}

// secretVisibility is the tenancy rule of auth.Identity.CanReadSecret as SQL:
// it is always part of the query, never a filter applied afterwards.
func secretVisibility(b *sqlBuilder, id auth.Identity) string {
	if id.Validate() != nil || id.DomainID == "" {
		return "false"
	}
	// Bound only on the paths that use it: an unused parameter fails the query.
	domain := func() string { return "domain_id = " + b.bind(id.DomainID) }
	switch id.Role {
	case auth.RoleSystem, auth.RoleDomainAdmin:
		return domain()
	case auth.RoleWorkspaceOwner:
		if id.WorkspaceID == "" {
			return "false"
		}
		return domain() + " AND (resource_group = 'DOMAIN' OR (resource_group IN ('WORKSPACE', 'PROJECT') AND workspace_id = " + b.bind(id.WorkspaceID) + "))"
	case auth.RoleWorkspaceMember:
		if id.WorkspaceID == "" {
			return "false"
		}
		ws := b.bind(id.WorkspaceID)
		projects := id.Projects
		if projects == nil {
			projects = []string{}
		}
		return domain() + " AND (resource_group = 'DOMAIN' OR (resource_group = 'WORKSPACE' AND workspace_id = " + ws +
			") OR (resource_group = 'PROJECT' AND workspace_id = " + ws + " AND project_id = ANY(" + b.bind(projects) + "::text[])))"
	}
	return "false"
}

// userSecretVisibility is auth.Identity.CanReadUserSecret as SQL.
func userSecretVisibility(b *sqlBuilder, id auth.Identity) string {
	if id.Validate() != nil || id.DomainID == "" {
		return "false"
	}
	// Bound only on the paths that use it: an unused parameter fails the query.
	domain := func() string { return "domain_id = " + b.bind(id.DomainID) }
	switch id.Role {
	case auth.RoleSystem, auth.RoleDomainAdmin:
		return domain()
	}
	if id.UserID == "" {
		return "false"
	}
	return domain() + " AND user_id = " + b.bind(id.UserID)
}

// Reader answers get, list and stat from the read models.
type Reader struct {
	pool *pgxpool.Pool
}

// NewReader reads from pool.
func NewReader(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }

// Secret returns one secret visible to id.
func (r *Reader) Secret(ctx context.Context, id auth.Identity, secretID string) (Secret, error) {
	b := &sqlBuilder{}
	q := `SELECT ` + secretColumns + ` FROM secrets WHERE secret_id = ` + b.bind(secretID) + ` AND ` + secretVisibility(b, id)
	s, err := scanSecret(r.pool.QueryRow(ctx, q, b.args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotFound
	}
	return s, err
}

// UserSecret returns one user secret visible to id.
func (r *Reader) UserSecret(ctx context.Context, id auth.Identity, userSecretID string) (UserSecret, error) {
	b := &sqlBuilder{}
	q := `SELECT ` + userSecretColumns + ` FROM user_secrets WHERE user_secret_id = ` + b.bind(userSecretID) + ` AND ` + userSecretVisibility(b, id)
	s, err := scanUserSecret(r.pool.QueryRow(ctx, q, b.args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotFound
	}
	return s, err
}

// list runs a list query on res within scope and scans each row with scan.
func list[T any](ctx context.Context, pool *pgxpool.Pool, res Resource, columns string, visibility func(*sqlBuilder, auth.Identity) string,
	id auth.Identity, q Query, scan func(pgx.Row) (T, error)) ([]T, int, error) {
	b := &sqlBuilder{}
	where, err := res.where(b, visibility(b, id), q)
	if err != nil {
		return nil, 0, err
	}
	var total int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+res.Table+` WHERE `+where, b.args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if q.CountOnly {
		return []T{}, total, nil
	}
	order, err := res.orderBy(b, q.Sort)
	if err != nil {
		return nil, 0, err
	}
	page, err := limitOffset(q.Page)
	if err != nil {
		return nil, 0, err
	}
	rows, err := pool.Query(ctx, `SELECT `+columns+` FROM `+res.Table+` WHERE `+where+order+page, b.args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		item, err := scan(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, item)
	}
	return out, total, rows.Err()
}

// Secrets lists the secrets visible to id matching q; total counts before paging.
func (r *Reader) Secrets(ctx context.Context, id auth.Identity, q Query) ([]Secret, int, error) {
	return list(ctx, r.pool, SecretResource, secretColumns, secretVisibility, id, q, scanSecret)
}

// UserSecrets lists the user secrets visible to id matching q.
func (r *Reader) UserSecrets(ctx context.Context, id auth.Identity, q Query) ([]UserSecret, int, error) {
	return list(ctx, r.pool, UserSecretResource, userSecretColumns, userSecretVisibility, id, q, scanUserSecret)
}

// Stat answers a StatisticsQuery. This version supports filter, filter_or,
// keyword and a "count" aggregate stage; other stages are INVALID_ARGUMENT.
func (r *Reader) Stat(ctx context.Context, id auth.Identity, res Resource, stat map[string]any) (map[string]any, error) {
	q, stages, err := parseStat(stat)
	if err != nil {
		return nil, err
	}
	visibility := secretVisibility
	if res.Table == UserSecretResource.Table {
		visibility = userSecretVisibility
	}
	b := &sqlBuilder{}
	where, err := res.where(b, visibility(b, id), q)
	if err != nil {
		return nil, err
	}
	var n int64
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM `+res.Table+` WHERE `+where, b.args...).Scan(&n); err != nil {
		return nil, err
	}
	name := "count"
	for _, s := range stages {
		if c, ok := s["count"].(map[string]any); ok {
			if v, ok := c["name"].(string); ok && v != "" {
				name = v
			}
		}
	}
	return map[string]any{"results": []any{map[string]any{name: n}}}, nil
}

func parseStat(stat map[string]any) (Query, []map[string]any, error) {
	var q Query
	var err error
	for k, v := range stat {
		switch k {
		case "filter":
			if q.Filter, err = parseConditions(k, v); err != nil {
				return q, nil, err
			}
		case "filter_or":
			if q.FilterOr, err = parseConditions(k, v); err != nil {
				return q, nil, err
			}
		case "keyword":
			s, ok := v.(string)
			if !ok {
				return q, nil, qerr("keyword must be a string")
			}
			q.Keyword = s
		case "aggregate":
		default:
			return q, nil, qerr("unsupported statistics key %q", k)
		}
	}
	raw, ok := stat["aggregate"]
	if !ok {
		return q, nil, qerr("aggregate is required")
	}
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return q, nil, qerr("aggregate must be a non-empty list of stages")
	}
	var stages []map[string]any
	for i, s := range list {
		m, ok := s.(map[string]any)
		if !ok || len(m) != 1 {
			return q, nil, qerr("aggregate[%d] must be an object with exactly one stage", i)
		}
		for name := range m {
			if name != "count" {
				return q, nil, qerr("aggregate[%d]: unsupported stage %q", i, name)
			}
		}
		stages = append(stages, m)
	}
	return q, stages, nil
}

func parseConditions(field string, v any) ([]Condition, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, qerr("%s must be a list of {k, v, o}", field)
	}
	out := make([]Condition, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, qerr("%s[%d] must be an object {k, v, o}", field, i)
		}
		key, _ := m["k"].(string)
		if key == "" {
			key, _ = m["key"].(string)
		}
		op, _ := m["o"].(string)
		if op == "" {
			op, _ = m["operator"].(string)
		}
		val, has := m["v"]
		if !has {
			val = m["value"]
		}
		if strings.TrimSpace(key) == "" {
			return nil, qerr("%s[%d]: k is required", field, i)
		}
		out = append(out, Condition{Key: key, Value: val, Op: op})
	}
	return out, nil
}
