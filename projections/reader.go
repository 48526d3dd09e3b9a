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
		{"state", "state", KindText}, {"description", "description", KindText}, {"kmsKeyId", "kms_key_id", KindText},
		{"nextRotationTime", "next_rotation_time", KindTime}, {"lastRotatedAt", "last_rotated_at", KindTime},
	},
	Keyword:    []string{"secret_id", "name", "schema_id", "provider"},
	Tiebreak:   "secret_id",
	Visibility: secretVisibility,
}

// UserSecretResource is the user_secrets read model as the query language sees it.
var UserSecretResource = Resource{
	Table: "user_secrets",
	Fields: []Field{
		{"userSecretId", "user_secret_id", KindText}, {"name", "name", KindText}, {"schemaId", "schema_id", KindText},
		{"provider", "provider", KindText}, {"domainId", "domain_id", KindText}, {"userId", "user_id", KindText},
		{"version", "version", KindInt}, {"createdBy", "created_by", KindText}, {"updatedBy", "updated_by", KindText},
		{"createdAt", "created_at", KindTime}, {"updatedAt", "updated_at", KindTime}, {"tags", "tags", KindJSON},
		{"state", "state", KindText}, {"description", "description", KindText}, {"kmsKeyId", "kms_key_id", KindText},
		{"nextRotationTime", "next_rotation_time", KindTime}, {"lastRotatedAt", "last_rotated_at", KindTime},
	},
	Keyword:    []string{"user_secret_id", "name", "schema_id", "provider"},
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

// Limits bound what one list or statistics query may cost. A zero field
// takes its default (DefaultLimits); the README's Limits table lists each
// with the variable that sets it.
type Limits struct {
	// DefaultPageSize is a list's page when page.limit is 0 or missing (100).
	DefaultPageSize int
	// MaxPageSize is the largest page.limit of a list (1000).
	MaxPageSize int
	// MaxConditions bounds the filter conditions of one query: filter,
	// filter_or, match and conditions of every stage, and keyword words (50).
	MaxConditions int
	// MaxListValues bounds the values of one list operator (in, not_in,
	// contain_in, regex_in, ...) (500).
	MaxListValues int
	// MaxRegexLength bounds a regular expression, in bytes (256).
	MaxRegexLength int
	// MaxStatStages bounds the stages of an aggregate pipeline (10).
	MaxStatStages int
	// MaxStatAccumulators bounds push and add_to_set fields over a whole
	// pipeline (4); they build arrays whose size is the number of rows.
	MaxStatAccumulators int
	// MaxStatUnwinds bounds unwind stages (2): each multiplies the rows.
	MaxStatUnwinds int
	// MaxStatRows bounds the result rows of a statistics query (1000); more
	// is RESOURCE_EXHAUSTED, so results are never silently cut.
	MaxStatRows int
	// StatementTimeout bounds each SQL statement of a list or statistics
	// query (5s).
	StatementTimeout time.Duration
}

// DefaultLimits are the limits a Reader applies unless told otherwise.
func DefaultLimits() Limits {
	return Limits{
		DefaultPageSize:     100,
		MaxPageSize:         1000,
		MaxConditions:       50,
		MaxListValues:       500,
		MaxRegexLength:      256,
		MaxStatStages:       10,
		MaxStatAccumulators: 4,
		MaxStatUnwinds:      2,
		MaxStatRows:         1000,
		StatementTimeout:    5 * time.Second,
	}
}

// WithDefaults fills every zero field from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	fill := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&l.DefaultPageSize, d.DefaultPageSize)
	fill(&l.MaxPageSize, d.MaxPageSize)
	fill(&l.MaxConditions, d.MaxConditions)
	fill(&l.MaxListValues, d.MaxListValues)
	fill(&l.MaxRegexLength, d.MaxRegexLength)
	fill(&l.MaxStatStages, d.MaxStatStages)
	fill(&l.MaxStatAccumulators, d.MaxStatAccumulators)
	fill(&l.MaxStatUnwinds, d.MaxStatUnwinds)
	fill(&l.MaxStatRows, d.MaxStatRows)
	if l.StatementTimeout <= 0 {
		l.StatementTimeout = d.StatementTimeout
	}
	l.DefaultPageSize = min(l.DefaultPageSize, l.MaxPageSize)
	return l
}

// maxPageStart bounds page.start: skipping millions of rows costs as much
// as reading them.
const maxPageStart = 1_000_000

// Reader answers get, list and stat from the read models.
type Reader struct {
	pool   *pgxpool.Pool
	now    func() time.Time
	limits Limits
}

// NewReader reads from pool with DefaultLimits.
func NewReader(pool *pgxpool.Pool) *Reader {
	return &Reader{pool: pool, now: time.Now, limits: DefaultLimits()}
}

// WithLimits returns a reader that applies lim (zero fields: defaults).
func (r *Reader) WithLimits(lim Limits) *Reader {
	c := *r
	c.limits = lim.WithDefaults()
	return &c
}

// Limits are the limits the reader applies.
func (r *Reader) Limits() Limits { return r.limits }

// WithClock returns a reader whose timediff_* operators count from now().
func (r *Reader) WithClock(now func() time.Time) *Reader {
	c := *r
	c.now = now
	return &c
}

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

// list runs a list query on res within the caller's scope and scans each row with scan.
func list[T any](ctx context.Context, r *Reader, res *Resource, columns string, id auth.Identity, q Query,
	scan func(pgx.Row) (T, error)) ([]T, int, error) {
	sq, err := buildListWithin(res, columns, id, q, r.now(), r.limits)
	if err != nil {
		return nil, 0, err
	}
	out := []T{}
	var total int
	err = readOnly(ctx, r.pool, r.limits.StatementTimeout, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, sq.count, sq.countArgs...).Scan(&total); err != nil {
			return err
		}
		if q.CountOnly {
			return nil
		}
		rows, err := tx.Query(ctx, sq.rows, sq.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			item, err := scan(rows)
			if err != nil {
				return err
			}
			out = append(out, item)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, queryFailure(ctx, err, sq.regexKeys, r.limits.StatementTimeout)
	}
	return out, total, nil
}

// Secrets lists the secrets visible to id matching q; total counts before paging.
func (r *Reader) Secrets(ctx context.Context, id auth.Identity, q Query) ([]Secret, int, error) {
	return list(ctx, r, &SecretResource, secretColumns, id, q, scanSecret)
}

// UserSecrets lists the user secrets visible to id matching q.
func (r *Reader) UserSecrets(ctx context.Context, id auth.Identity, q Query) ([]UserSecret, int, error) {
	return list(ctx, r, &UserSecretResource, userSecretColumns, id, q, scanUserSecret)
}
