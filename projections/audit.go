package projections

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/events"
)

// AuditProjection name and consumer group.
const AuditProjectionName = "audit"

// auditDDL: one row per event, with the resource's scope at that time (for
// tenancy) and the metadata fields it changed (never values), plus each
// stream's last metadata snapshot, from which the changes are computed.
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
CREATE TABLE IF NOT EXISTS audit_streams{{suffix}} (
    resource_id   text PRIMARY KEY,
    resource_type text  NOT NULL,
    state         jsonb NOT NULL
);
`

func auditTables(suffix string) string { return strings.ReplaceAll(auditDDL, "{{suffix}}", suffix) }

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
	DataVersion      int64          `json:"dataVersion"`
	Deleted          bool           `json:"deleted,omitempty"`
}

// FieldChange is one changed metadata field. Secret values never appear:
// a value change is the field "data" with no old or new.
type FieldChange struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// AuditProjection maintains the audit trail.
type AuditProjection struct{ suffix string }

// Name implements Projection.
func (AuditProjection) Name() string { return AuditProjectionName }

// Tables implements Projection.
func (AuditProjection) Tables() []string { return []string{"audit_events", "audit_streams"} }

// Shadow implements Projection.
func (AuditProjection) Shadow(suffix string) Projection { return AuditProjection{suffix: suffix} }

// Apply implements Projection.
func (p AuditProjection) Apply(ctx context.Context, tx pgx.Tx, rec events.Record) error {
	resourceID := events.ResourceOfStream(rec.Stream)
	var prev AuditState
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT state FROM audit_streams`+p.suffix+` WHERE resource_id = $1`, resourceID).Scan(&raw)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(raw, &prev); err != nil {
			return err
		}
	}
	entry, next, ok, err := auditEntry(rec, prev)
	if err != nil || !ok {
		return err
	}
	stateJSON, err := json.Marshal(next)
	if err != nil {
		return err
	}
	placeholders := make([]string, len(auditCopyColumns))
	for i := range placeholders {
		placeholders[i] = "$" + strconv.Itoa(i+1)
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_events`+p.suffix+` (`+strings.Join(auditCopyColumns, ", ")+`)
		VALUES (`+strings.Join(placeholders, ", ")+`) ON CONFLICT (position) DO NOTHING`, entry.row(rec)...)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_streams`+p.suffix+` (resource_id, resource_type, state) VALUES ($1, $2, $3)
		ON CONFLICT (resource_id) DO UPDATE SET state = excluded.state`, resourceID, entry.resourceType, stateJSON)
	return err
}

// auditEntry folds rec into the resource's previous state and describes its
// trail entry; ok is false for events the trail does not record.
func auditEntry(rec events.Record, prev AuditState) (auditRow, AuditState, bool, error) {
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return auditRow{}, prev, false, err
	}
	resourceType := "Secret"
	if strings.HasPrefix(rec.Type, "UserSecret") {
		resourceType = "UserSecret"
	}
	next := prev
	dataChanged := false
	dataVersion := int64(-1)
	switch e := ev.(type) {
	case *events.SecretCreated:
		next = AuditState{Name: e.Name, SchemaID: e.SchemaID, Provider: e.Provider, Tags: e.Tags, ResourceGroup: e.ResourceGroup,
			DomainID: e.DomainID, WorkspaceID: e.WorkspaceID, ProjectID: e.ProjectID, ServiceAccountID: e.ServiceAccountID,
			TrustedSecretID: e.TrustedSecretID, DataVersion: 1}
		dataChanged = true
	case *events.UserSecretCreated:
		next = AuditState{Name: e.Name, SchemaID: e.SchemaID, Provider: e.Provider, Tags: e.Tags, DomainID: e.DomainID,
			UserID: e.UserID, DataVersion: 1}
		dataChanged = true
	case *events.SecretUpdated:
		if e.Name != nil {
			next.Name = *e.Name
		}
		if e.Tags != nil {
			next.Tags = e.Tags
		}
		if e.ProjectID != nil {
			next.ProjectID = *e.ProjectID
		}
	case *events.UserSecretUpdated:
		if e.Name != nil {
			next.Name = *e.Name
		}
		if e.Tags != nil {
			next.Tags = e.Tags
		}
	case *events.SecretDataUpdated:
		next.SchemaID, next.Provider, next.DataVersion = e.SchemaID, e.Provider, prev.DataVersion+1
		dataChanged = true
	case *events.UserSecretDataUpdated:
		next.SchemaID, next.Provider, next.DataVersion = e.SchemaID, e.Provider, prev.DataVersion+1
		dataChanged = true
	case *events.SecretDeleted, *events.UserSecretDeleted:
		next.Deleted = true
	case *events.SecretDataRead:
		// A read changes nothing; it records who read which version.
		dataVersion = e.DataVersion
	case *events.UserSecretDataRead:
		dataVersion = e.DataVersion
	default:
		return auditRow{}, prev, false, nil
	}
	if dataVersion < 0 {
		dataVersion = next.DataVersion
	}
	changes := diffStates(prev, next)
	if dataChanged {
		changes = append(changes, FieldChange{Field: "data"})
	}
	changesJSON, err := json.Marshal(changes)
	if err != nil {
		return auditRow{}, prev, false, err
	}
	return auditRow{resourceType: resourceType, resourceID: events.ResourceOfStream(rec.Stream), dataVersion: dataVersion,
		next: next, changes: changesJSON}, next, true, nil
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
