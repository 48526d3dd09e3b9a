package projections

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/query"
)

// AuditEvent is one entry of the audit trail.
type AuditEvent struct {
	Position      int64
	Stream        string
	ResourceType  string
	ResourceID    string
	Version       int64
	DataVersion   int64
	Type          string
	ActorSubject  *string
	ActorUserID   *string
	ActorRole     string
	ActorDomain   string
	OccurredAt    time.Time
	CorrelationID *string
	Changes       []FieldChange
}

// AuditPage is a page of audit events; NextCursor is empty on the last page.
type AuditPage struct {
	Results    []AuditEvent
	NextCursor string
}

// AuditFilter narrows auditEvents.
type AuditFilter struct {
	ActorUserID  string
	Role         string
	ResourceType string
	ResourceID   string
	Types        []string
	From, To     *time.Time
}

// ErrPermissionDenied: the caller may see the resource but not this.
var ErrPermissionDenied = errors.New("projections: permission denied")

const auditColumns = `position, stream_id, resource_type, resource_id, version, data_version, type, actor_subject,
	actor_user_id, actor_role, actor_domain, occurred_at, correlation_id, changes`

func scanAudit(row pgx.Row) (AuditEvent, error) {
	var e AuditEvent
	var changes []byte
	err := row.Scan(&e.Position, &e.Stream, &e.ResourceType, &e.ResourceID, &e.Version, &e.DataVersion, &e.Type,
		&e.ActorSubject, &e.ActorUserID, &e.ActorRole, &e.ActorDomain, &e.OccurredAt, &e.CorrelationID, &changes)
	if err != nil {
		return e, err
	}
	e.OccurredAt = e.OccurredAt.UTC()
	return e, json.Unmarshal(changes, &e.Changes)
}

// maxAuditTypes bounds filter.types of auditEvents.
const maxAuditTypes = 100

func pageSize(first *int) (int, error) {
	n := 50
	if first != nil {
		n = *first
	}
	if n < 1 || n > 1000 {
		return 0, qerr("first must be between 1 and 1000")
	}
	return n, nil
}

func parseCursor(after *string) (int64, error) {
	if after == nil || *after == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(*after, 10, 64)
	if err != nil || n < 0 {
		return 0, qerr("after must be a cursor returned as nextCursor")
	}
	return n, nil
}

// auditPage selects the audit events matching where, one keyset page at a time.
func (r *Reader) auditPage(ctx context.Context, b *query.Args, where string, first *int, after *string, newestFirst bool) (AuditPage, error) {
	n, err := pageSize(first)
	if err != nil {
		return AuditPage{}, err
	}
	cursor, err := parseCursor(after)
	if err != nil {
		return AuditPage{}, err
	}
	order, op := " ORDER BY position ASC", " > "
	if newestFirst {
		order, op = " ORDER BY position DESC", " < "
	}
	if cursor > 0 {
		where += " AND position" + op + b.Bind(cursor)
	}
	rows, err := r.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE `+where+order+` LIMIT `+strconv.Itoa(n+1), b.Values()...)
	if err != nil {
		return AuditPage{}, err
	}
	defer rows.Close()
	page := AuditPage{Results: []AuditEvent{}}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return AuditPage{}, err
		}
		page.Results = append(page.Results, e)
	}
	if err := rows.Err(); err != nil {
		return AuditPage{}, err
	}
	if len(page.Results) > n {
		page.Results = page.Results[:n]
		page.NextCursor = strconv.FormatInt(page.Results[n-1].Position, 10)
	}
	return page, nil
}

// History lists a resource's events (changes and value reads), oldest first.
// The caller must be able to read the resource; a deleted one's history is
// for DOMAIN_ADMIN and SYSTEM of its domain. It survives deletion.
func (r *Reader) History(ctx context.Context, id auth.Identity, resourceType, resourceID string, first *int, after *string) (AuditPage, error) {
	res, ok := commands.NewResource(resourceID)
	if !ok || res.Kind() != resourceType {
		return AuditPage{}, ErrNotFound
	}
	found, err := loadSnapshot(ctx, r.pool, "", resourceID, res)
	if err != nil {
		return AuditPage{}, err
	}
	if !found {
		return AuditPage{}, ErrNotFound
	}
	st := auditState(res)
	var visible bool
	scope := auth.Scope{Group: auth.ResourceGroup(st.ResourceGroup), DomainID: st.DomainID,
		WorkspaceID: st.WorkspaceID, ProjectID: st.ProjectID}
	switch resourceType {
	case "UserSecret":
		visible = id.CanReadUserSecret(st.DomainID, st.UserID)
	case "TrustedSecret":
		visible = id.CanReadTrustedSecret(scope)
	default:
		visible = id.CanReadSecret(scope)
	}
	if st.Deleted {
		visible = visible && (id.Role == auth.RoleDomainAdmin || id.Role == auth.RoleSystem)
	}
	if !visible {
		return AuditPage{}, ErrNotFound
	}
	b := &query.Args{}
	return r.auditPage(ctx, b, "resource_id = "+b.Bind(resourceID), first, after, false)
}

// AuditEvents lists the domain's audit trail for DOMAIN_ADMIN and SYSTEM.
func (r *Reader) AuditEvents(ctx context.Context, id auth.Identity, f AuditFilter, first *int, after *string, newestFirst bool) (AuditPage, error) {
	if id.Validate() != nil || (id.Role != auth.RoleDomainAdmin && id.Role != auth.RoleSystem) {
		return AuditPage{}, ErrPermissionDenied
	}
	b := &query.Args{}
	where := "domain_id = " + b.Bind(id.DomainID)
	if f.ActorUserID != "" {
		where += " AND actor_user_id = " + b.Bind(f.ActorUserID)
	}
	if f.Role != "" {
		where += " AND actor_role = " + b.Bind(f.Role)
	}
	if f.ResourceType != "" {
		where += " AND resource_type = " + b.Bind(f.ResourceType)
	}
	if f.ResourceID != "" {
		where += " AND resource_id = " + b.Bind(f.ResourceID)
	}
	if len(f.Types) > maxAuditTypes {
		return AuditPage{}, overLimit("filter.types has more than %d entries", maxAuditTypes)
	}
	if len(f.Types) > 0 {
		types := make([]string, 0, 2*len(f.Types))
		for _, t := range f.Types {
			// "SecretCreated" and "SecretCreated.v1" both match.
			types = append(types, t, t+".v1")
		}
		where += " AND type = ANY(" + b.Bind(types) + "::text[])"
	}
	if f.From != nil {
		where += " AND occurred_at >= " + b.Bind(*f.From)
	}
	if f.To != nil {
		where += " AND occurred_at < " + b.Bind(*f.To)
	}
	return r.auditPage(ctx, b, where, first, after, newestFirst)
}
