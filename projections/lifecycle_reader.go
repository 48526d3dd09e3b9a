package projections

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/query"
)

// VersionRow is one version of a value, as secretVersions shows it.
type VersionRow struct {
	Version        int64
	Stages         []string
	CreatedAt      time.Time
	CreatedBy      string
	Readable       bool
	RolledBackFrom *int64
}

// VersionPage is a page of versions, newest first.
type VersionPage struct {
	Results    []VersionRow
	NextCursor string
}

// visibleState loads the state of a live resource of kind that id may see;
// anything else (missing, foreign, deleted, scheduled for deletion, another
// kind) is ErrNotFound.
func (r *Reader) visibleState(ctx context.Context, id auth.Identity, kind, resourceID string) (commands.Resource, error) {
	res, ok := commands.NewResource(resourceID)
	if !ok || res.Kind() != kind {
		return nil, ErrNotFound
	}
	found, err := loadSnapshot(ctx, r.pool, "", resourceID, res)
	if err != nil {
		return nil, err
	}
	if !found || !res.Base().Live() || !res.Allows(id, commands.ActRead) {
		return nil, ErrNotFound
	}
	return res, nil
}

// Versions lists a resource's versions, newest first, after the cursor.
func (r *Reader) Versions(ctx context.Context, id auth.Identity, kind, resourceID string, first *int, after *string) (VersionPage, error) {
	if _, err := r.visibleState(ctx, id, kind, resourceID); err != nil {
		return VersionPage{}, err
	}
	n := 50
	if first != nil {
		if *first < 1 || *first > 1000 {
			return VersionPage{}, &query.Error{Msg: "first must be 1 to 1000"}
		}
		n = *first
	}
	before := int64(1) << 62
	if after != nil && *after != "" {
		v, err := strconv.ParseInt(*after, 10, 64)
		if err != nil || v < 1 {
			return VersionPage{}, &query.Error{Msg: "after is not a cursor this query returned"}
		}
		before = v
	}
	rows, err := r.pool.Query(ctx, `SELECT version, stages, created_at, created_by, NOT destroyed, rolled_back_from
		FROM resource_versions WHERE resource_id = $1 AND version < $2 ORDER BY version DESC LIMIT $3`, resourceID, before, n+1)
	if err != nil {
		return VersionPage{}, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (VersionRow, error) {
		var v VersionRow
		err := row.Scan(&v.Version, &v.Stages, &v.CreatedAt, &v.CreatedBy, &v.Readable, &v.RolledBackFrom)
		v.CreatedAt = v.CreatedAt.UTC()
		return v, err
	})
	if err != nil {
		return VersionPage{}, err
	}
	page := VersionPage{Results: out}
	if len(out) > n {
		page.Results = out[:n]
		page.NextCursor = strconv.FormatInt(out[n-1].Version, 10)
	}
	return page, nil
}

// PendingDeletion is a resource scheduled for deletion.
type PendingDeletion struct {
	ResourceID, ResourceType, Name string
	DeleteAt, ScheduledAt          time.Time
	ScheduledBy                    string
}

// maxPendingListed bounds the recycle bin one query lists.
const maxPendingListed = 1000

// PendingDeletions lists what id may see of its domain's recycle bin,
// soonest deletion first.
func (r *Reader) PendingDeletions(ctx context.Context, id auth.Identity, resourceType string) ([]PendingDeletion, error) {
	if id.Validate() != nil {
		return nil, ErrPermissionDenied
	}
	rows, err := r.pool.Query(ctx, `SELECT resource_id, resource_type, name, delete_at, scheduled_at, scheduled_by
		FROM pending_deletions WHERE domain_id = $1 AND ($2 = '' OR resource_type = $2) ORDER BY delete_at, resource_id LIMIT $3`,
		id.DomainID, resourceType, maxPendingListed)
	if err != nil {
		return nil, err
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PendingDeletion, error) {
		var p PendingDeletion
		err := row.Scan(&p.ResourceID, &p.ResourceType, &p.Name, &p.DeleteAt, &p.ScheduledAt, &p.ScheduledBy)
		p.DeleteAt, p.ScheduledAt = p.DeleteAt.UTC(), p.ScheduledAt.UTC()
		return p, err
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(all))
	for i, p := range all {
		ids[i] = p.ResourceID
	}
	states, err := loadSnapshots(ctx, r.pool, "", ids)
	if err != nil {
		return nil, err
	}
	out := []PendingDeletion{}
	for _, p := range all {
		if s, ok := states[p.ResourceID]; ok && s.Allows(id, commands.ActRead) {
			out = append(out, p)
		}
	}
	return out, nil
}

// LastUsed is when a resource's value was last read (nil: never, or not
// yet applied by the asynchronous usage projection).
func (r *Reader) LastUsed(ctx context.Context, resourceID string) (*time.Time, error) {
	var t time.Time
	err := r.pool.QueryRow(ctx, `SELECT last_used_at FROM resource_usage WHERE resource_id = $1`, resourceID).Scan(&t)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t = t.UTC()
	return &t, nil
}

// SecretView is a secret's state as its read-model row shows it.
func SecretView(s *commands.Secret) Secret {
	return Secret{
		SecretID: s.ID, Name: s.Name, SchemaID: nullIfEmpty(s.SchemaID), Provider: nullIfEmpty(s.Provider), Tags: nonNilTags(s.Tags),
		ResourceGroup: string(s.Scope.Group), DomainID: s.Scope.DomainID, WorkspaceID: nullIfEmpty(s.Scope.WorkspaceID),
		ProjectID: nullIfEmpty(s.Scope.ProjectID), ServiceAccountID: nullIfEmpty(s.ServiceAccountID),
		TrustedSecretID: nullIfEmpty(s.TrustedSecretID), Lifecycle: LifecycleOf(&s.Versioned), Version: s.DataVersion,
		CreatedBy: s.CreatedBy, UpdatedBy: s.UpdatedBy, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

// UserSecretView is a user secret's state as its read-model row shows it.
func UserSecretView(s *commands.UserSecret) UserSecret {
	return UserSecret{
		UserSecretID: s.ID, Name: s.Name, SchemaID: nullIfEmpty(s.SchemaID), Provider: nullIfEmpty(s.Provider), Tags: nonNilTags(s.Tags),
		DomainID: s.DomainID, UserID: s.UserID, Lifecycle: LifecycleOf(&s.Versioned), Version: s.DataVersion,
		CreatedBy: s.CreatedBy, UpdatedBy: s.UpdatedBy, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}
