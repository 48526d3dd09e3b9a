package projections

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
)

// auditDDL: one row per event, with the resource's scope at that time (for
// tenancy) and the metadata fields it changed (never values).
const auditDDL = `
CREATE TABLE IF NOT EXISTS audit_events{{suffix}} (
    position       bigint PRIMARY KEY,
    stream_id      text        NOT NULL,
    resource_type  text        NOT NULL,
    resource_id    text        NOT NULL,
    version        bigint      NOT NULL,
    data_version   bigint      NOT NULL,
    type           text        NOT NULL,
    actor_subject  text,
    actor_user_id  text,
    actor_role     text        NOT NULL,
    actor_domain   text        NOT NULL,
    domain_id      text        NOT NULL,
    workspace_id   text,
    project_id     text,
    owner_user_id  text,
    occurred_at    timestamptz NOT NULL,
    correlation_id text,
    changes        jsonb       NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events{{suffix}}_resource ON audit_events{{suffix}} (resource_id, position);
CREATE INDEX IF NOT EXISTS audit_events{{suffix}}_domain ON audit_events{{suffix}} (domain_id, position);
CREATE INDEX IF NOT EXISTS audit_events{{suffix}}_domain_time ON audit_events{{suffix}} (domain_id, occurred_at);
`

// AuditState is a resource's metadata as the audit trail knows it.
type AuditState struct {
	Name             string         `json:"name"`
	SchemaID         string         `json:"schemaId,omitempty"`
	Provider         string         `json:"provider,omitempty"`
	Tags             map[string]any `json:"tags"`
	ResourceGroup    string         `json:"resourceGroup,omitempty"`
	DomainID         string         `json:"domainId"`
	WorkspaceID      string         `json:"workspaceId,omitempty"`
	ProjectID        string         `json:"projectId,omitempty"`
	UserID           string         `json:"userId,omitempty"`
	ServiceAccountID string         `json:"serviceAccountId,omitempty"`
	TrustedSecretID  string         `json:"trustedSecretId,omitempty"`
	TrustedAccountID string         `json:"trustedAccountId,omitempty"`
	// The lifecycle's metadata, so that Disabled, DeletionScheduled,
	// SettingsChanged … name what they changed. State is empty once deleted.
	State               string `json:"state,omitempty"`
	Description         string `json:"description,omitempty"`
	KmsKeyID            string `json:"kmsKeyId,omitempty"`
	MaxVersions         int    `json:"maxVersions,omitempty"`
	AutoRotation        bool   `json:"autoRotation,omitempty"`
	RotationPeriodHours int    `json:"rotationPeriodHours,omitempty"`
	DataVersion         int64  `json:"dataVersion"`
	Deleted             bool   `json:"deleted,omitempty"`
}

// FieldChange is one changed metadata field. Secret values never appear:
// a value change is the field "data" with no old or new.
type FieldChange struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// auditState is the metadata of a resource as the trail compares it.
func auditState(r commands.Resource) AuditState {
	var st AuditState
	switch s := r.(type) {
	case *commands.Secret:
		st = AuditState{Name: s.Name, SchemaID: s.SchemaID, Provider: s.Provider, Tags: s.Tags,
			ResourceGroup: string(s.Scope.Group), DomainID: s.Scope.DomainID, WorkspaceID: s.Scope.WorkspaceID,
			ProjectID: s.Scope.ProjectID, ServiceAccountID: s.ServiceAccountID, TrustedSecretID: s.TrustedSecretID}
	case *commands.UserSecret:
		st = AuditState{Name: s.Name, SchemaID: s.SchemaID, Provider: s.Provider, Tags: s.Tags, DomainID: s.DomainID,
			UserID: s.UserID}
	case *commands.TrustedSecret:
		st = AuditState{Name: s.Name, SchemaID: s.SchemaID, Provider: s.Provider, Tags: s.Tags,
			ResourceGroup: string(s.Scope.Group), DomainID: s.Scope.DomainID, WorkspaceID: s.Scope.WorkspaceID,
			TrustedAccountID: s.TrustedAccountID}
	default:
		return AuditState{}
	}
	v := r.Base()
	st.DataVersion, st.Deleted = v.DataVersion, v.Deleted
	if v.Exists() {
		st.State = v.State()
	}
	st.Description, st.KmsKeyID, st.MaxVersions = v.Description, v.KmsKeyID, v.MaxVersions
	st.AutoRotation, st.RotationPeriodHours = v.AutoRotation, v.RotationPeriodHours
	return st
}

// auditRow is one trail entry, as the audit_events columns are named.
type auditRow struct {
	Position      int64           `json:"position"`
	StreamID      string          `json:"stream_id"`
	ResourceType  string          `json:"resource_type"`
	ResourceID    string          `json:"resource_id"`
	Version       int64           `json:"version"`
	DataVersion   int64           `json:"data_version"`
	Type          string          `json:"type"`
	ActorSubject  *string         `json:"actor_subject"`
	ActorUserID   *string         `json:"actor_user_id"`
	ActorRole     string          `json:"actor_role"`
	ActorDomain   string          `json:"actor_domain"`
	DomainID      string          `json:"domain_id"`
	WorkspaceID   *string         `json:"workspace_id"`
	ProjectID     *string         `json:"project_id"`
	OwnerUserID   *string         `json:"owner_user_id"`
	OccurredAt    time.Time       `json:"occurred_at"`
	CorrelationID *string         `json:"correlation_id"`
	Changes       json.RawMessage `json:"changes"`
}

// auditEntry describes a change's trail entry. Its tenancy columns come from
// the event's envelope (where the resource lived when it happened), so an
// entry depends on its record and its resource's own stream only.
func auditEntry(c commands.Change) (auditRow, error) {
	rec, m := c.Record, c.Record.Metadata
	row := auditRow{Position: rec.Cursor.Position, StreamID: rec.Stream, ResourceType: c.Next.Kind(),
		ResourceID: events.ResourceOfStream(rec.Stream), Version: rec.Version, Type: rec.Type,
		ActorSubject: nullIfEmpty(m.Actor.Subject), ActorUserID: nullIfEmpty(m.Actor.UserID), ActorRole: m.Actor.Role,
		ActorDomain: m.Actor.DomainID, DomainID: m.Tenant.DomainID, WorkspaceID: nullIfEmpty(m.Tenant.WorkspaceID),
		ProjectID: nullIfEmpty(m.Tenant.ProjectID), OwnerUserID: nullIfEmpty(m.Tenant.UserID),
		OccurredAt: rec.OccurredAt.UTC().Truncate(time.Microsecond), CorrelationID: nullIfEmpty(m.CorrelationID)}
	changes := []FieldChange{}
	switch e := c.Event.(type) {
	case *events.SecretDataRead:
		// A read changes nothing; it records who read which version.
		row.DataVersion = e.DataVersion
	case *events.UserSecretDataRead:
		row.DataVersion = e.DataVersion
	case *events.TrustedSecretDataRead:
		row.DataVersion = e.DataVersion
	default:
		var prev AuditState
		if c.Prev != nil {
			prev = auditState(c.Prev)
		}
		next := auditState(c.Next)
		changes = diffStates(prev, next)
		if next.DataVersion != prev.DataVersion {
			changes = append(changes, FieldChange{Field: "data"})
		}
		row.DataVersion = next.DataVersion
	}
	var err error
	row.Changes, err = json.Marshal(changes)
	return row, err
}

var auditTable = newTable("audit_events", "position", auditRow{})

// AuditProjection maintains the audit trail.
type AuditProjection struct{ suffix string }

// Name implements Projection.
func (AuditProjection) Name() string { return AuditProjectionName }

// Tables implements Projection.
func (AuditProjection) Tables() []string { return []string{"audit_events"} }

// Shadow implements Projection.
func (AuditProjection) Shadow(suffix string) Projection { return AuditProjection{suffix: suffix} }

// Queue implements Projection.
func (p AuditProjection) Queue(b *pgx.Batch, changes []commands.Change) error {
	rows := make([]auditRow, 0, len(changes))
	for _, c := range changes {
		row, err := auditEntry(c)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	return auditTable.upsert(b, p.suffix, rows)
}

// diffStates lists the metadata fields that differ, in a fixed order.
func diffStates(prev, next AuditState) []FieldChange {
	out := []FieldChange{}
	pv, nv := reflect.ValueOf(prev), reflect.ValueOf(next)
	t := pv.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		a, b := pv.Field(i).Interface(), nv.Field(i).Interface()
		if reflect.DeepEqual(a, b) || (isZero(a) && isZero(b)) {
			continue
		}
		out = append(out, FieldChange{Field: name, Old: nilIfZero(a), New: nilIfZero(b)})
	}
	return out
}

func isZero(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Map {
		return rv.Len() == 0
	}
	return rv.IsZero()
}

func nilIfZero(v any) any {
	if isZero(v) {
		if reflect.ValueOf(v).Kind() == reflect.Map {
			return map[string]any{}
		}
		return nil
	}
	return v
}
