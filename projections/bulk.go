package projections

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/events"
)

// BatchApplier is a projection that can apply a batch of events at once,
// which is how a rebuild replays the log quickly. The result must equal
// applying the events one by one, in order.
type BatchApplier interface {
	ApplyBatch(ctx context.Context, tx pgx.Tx, recs []events.Record) error
}

// newRows folds the events of streams created within a batch in memory and
// writes those rows with one COPY; events of older streams go through Apply.
// Rows of different streams never interact, so only each stream's own order
// matters, and that is kept.
type newRows struct {
	order []string
	rows  map[string][]any
}

func (n *newRows) add(id string, row []any) {
	if n.rows == nil {
		n.rows = map[string][]any{}
	}
	n.order = append(n.order, id)
	n.rows[id] = row
}

func (n *newRows) copy(ctx context.Context, tx pgx.Tx, table string, columns []string) error {
	out := make([][]any, 0, len(n.rows))
	for _, id := range n.order {
		if row, ok := n.rows[id]; ok {
			out = append(out, row)
		}
	}
	if len(out) == 0 {
		return nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromRows(out))
	return err
}

var secretCopyColumns = []string{"secret_id", "name", "schema_id", "provider", "tags", "resource_group", "domain_id",
	"workspace_id", "project_id", "service_account_id", "trusted_secret_id", "version", "stream_version",
	"created_by", "updated_by", "created_at", "updated_at"}

// Column positions in secretCopyColumns.
const (
	scName, scSchema, scProvider, scTags = 1, 2, 3, 4
	scProject                            = 8
	scVersion, scStreamVersion           = 11, 12
	scUpdatedBy, scUpdatedAt             = 14, 16
)

// foldBatch runs recs in order: events of streams created within the batch
// are folded into in-memory rows (fold returns false once the row is gone),
// every other event goes through apply. The caller COPYs the rows.
func foldBatch(ctx context.Context, tx pgx.Tx, recs []events.Record, createdType string,
	apply func(context.Context, pgx.Tx, events.Record) error,
	fold func(row []any, rec events.Record, ev any) ([]any, bool, error)) (*newRows, error) {
	fresh := &newRows{}
	for _, rec := range recs {
		row, pending := fresh.rows[rec.Stream]
		if !pending && rec.Type != createdType {
			if err := apply(ctx, tx, rec); err != nil {
				return nil, err
			}
			continue
		}
		ev, err := events.Decode(rec.Type, rec.Data)
		if err != nil {
			return nil, err
		}
		next, keep, err := fold(row, rec, ev)
		switch {
		case err != nil:
			return nil, err
		case !keep:
			delete(fresh.rows, rec.Stream)
		case !pending:
			fresh.add(rec.Stream, next)
		}
	}
	return fresh, nil
}

// ApplyBatch implements BatchApplier.
func (p SecretProjection) ApplyBatch(ctx context.Context, tx pgx.Tx, recs []events.Record) error {
	fresh, err := foldBatch(ctx, tx, recs, events.SecretCreatedV1, p.Apply, func(row []any, rec events.Record, ev any) ([]any, bool, error) {
		switch e := ev.(type) {
		case *events.SecretCreated:
			tags, err := tagsJSON(e.Tags)
			who := rec.Metadata.Actor.Subject
			return []any{e.SecretID, e.Name, nullIfEmpty(e.SchemaID), nullIfEmpty(e.Provider), tags,
				e.ResourceGroup, e.DomainID, nullIfEmpty(e.WorkspaceID), nullIfEmpty(e.ProjectID),
				nullIfEmpty(e.ServiceAccountID), nullIfEmpty(e.TrustedSecretID), int64(1), rec.Version, who, who,
				rec.OccurredAt, rec.OccurredAt}, true, err
		case *events.SecretUpdated:
			if err := foldMetadata(row, e.Name, e.Tags); err != nil {
				return nil, false, err
			}
			if e.ProjectID != nil {
				row[scProject] = *e.ProjectID
			}
		case *events.SecretDataUpdated:
			row[scSchema], row[scProvider] = nullIfEmpty(e.SchemaID), nullIfEmpty(e.Provider)
			row[scVersion] = row[scVersion].(int64) + 1
		case *events.SecretDeleted:
			return nil, false, nil
		default:
			return row, true, nil
		}
		row[scStreamVersion], row[scUpdatedBy], row[scUpdatedAt] = rec.Version, rec.Metadata.Actor.Subject, rec.OccurredAt
		return row, true, nil
	})
	if err != nil {
		return err
	}
	return fresh.copy(ctx, tx, p.table(), secretCopyColumns)
}

func foldMetadata(row []any, name *string, tags map[string]any) error {
	if name != nil {
		row[scName] = *name
	}
	if tags != nil {
		t, err := tagsJSON(tags)
		if err != nil {
			return err
		}
		row[scTags] = t
	}
	return nil
}

var userSecretCopyColumns = []string{"user_secret_id", "name", "schema_id", "provider", "tags", "domain_id", "user_id",
	"version", "stream_version", "created_by", "updated_by", "created_at", "updated_at"}

const (
	ucVersion, ucStreamVersion = 7, 8
	ucUpdatedBy, ucUpdatedAt   = 10, 12
)

// ApplyBatch implements BatchApplier.
func (p UserSecretProjection) ApplyBatch(ctx context.Context, tx pgx.Tx, recs []events.Record) error {
	fresh, err := foldBatch(ctx, tx, recs, events.UserSecretCreatedV1, p.Apply, func(row []any, rec events.Record, ev any) ([]any, bool, error) {
		switch e := ev.(type) {
		case *events.UserSecretCreated:
			tags, err := tagsJSON(e.Tags)
			who := rec.Metadata.Actor.Subject
			return []any{e.UserSecretID, e.Name, nullIfEmpty(e.SchemaID), nullIfEmpty(e.Provider), tags,
				e.DomainID, e.UserID, int64(1), rec.Version, who, who, rec.OccurredAt, rec.OccurredAt}, true, err
		case *events.UserSecretUpdated:
			// Same positions as secrets for name and tags.
			if err := foldMetadata(row, e.Name, e.Tags); err != nil {
				return nil, false, err
			}
		case *events.UserSecretDataUpdated:
			row[scSchema], row[scProvider] = nullIfEmpty(e.SchemaID), nullIfEmpty(e.Provider)
			row[ucVersion] = row[ucVersion].(int64) + 1
		case *events.UserSecretDeleted:
			return nil, false, nil
		default:
			return row, true, nil
		}
		row[ucStreamVersion], row[ucUpdatedBy], row[ucUpdatedAt] = rec.Version, rec.Metadata.Actor.Subject, rec.OccurredAt
		return row, true, nil
	})
	if err != nil {
		return err
	}
	return fresh.copy(ctx, tx, p.table(), userSecretCopyColumns)
}

var auditCopyColumns = []string{"position", "stream_id", "resource_type", "resource_id", "version", "data_version",
	"type", "actor_subject", "actor_user_id", "actor_role", "actor_domain", "domain_id", "workspace_id", "project_id",
	"owner_user_id", "occurred_at", "correlation_id", "changes"}

// ApplyBatch implements BatchApplier: states of the batch's resources are
// read once, folded in memory, and written back with the trail rows in bulk.
func (p AuditProjection) ApplyBatch(ctx context.Context, tx pgx.Tx, recs []events.Record) error {
	ids := map[string]bool{}
	var idList []string
	for _, rec := range recs {
		id := events.ResourceOfStream(rec.Stream)
		if !ids[id] {
			ids[id] = true
			idList = append(idList, id)
		}
	}
	states := map[string]*auditStream{}
	rows, err := tx.Query(ctx, `SELECT resource_id, resource_type, state FROM audit_streams`+p.suffix+` WHERE resource_id = ANY($1)`, idList)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, typ string
		var raw []byte
		if err := rows.Scan(&id, &typ, &raw); err != nil {
			rows.Close()
			return err
		}
		st := &auditStream{resourceType: typ, known: true}
		if err := json.Unmarshal(raw, &st.state); err != nil {
			rows.Close()
			return err
		}
		states[id] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	trail := make([][]any, 0, len(recs))
	for _, rec := range recs {
		id := events.ResourceOfStream(rec.Stream)
		st := states[id]
		if st == nil {
			st = &auditStream{}
			states[id] = st
		}
		entry, next, ok, err := auditEntry(rec, st.state)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		st.state, st.resourceType, st.dirty = next, entry.resourceType, true
		trail = append(trail, entry.row(rec))
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_events" + p.suffix}, auditCopyColumns, pgx.CopyFromRows(trail)); err != nil {
		return err
	}
	var newStates [][]any
	var upIDs, upTypes []string
	var upStates [][]byte
	for _, id := range idList {
		st := states[id]
		if !st.dirty {
			continue
		}
		b, err := json.Marshal(st.state)
		if err != nil {
			return err
		}
		if st.known {
			upIDs, upTypes, upStates = append(upIDs, id), append(upTypes, st.resourceType), append(upStates, b)
		} else {
			newStates = append(newStates, []any{id, st.resourceType, b})
		}
	}
	if len(newStates) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_streams" + p.suffix}, []string{"resource_id", "resource_type", "state"},
			pgx.CopyFromRows(newStates)); err != nil {
			return err
		}
	}
	if len(upIDs) > 0 {
		_, err := tx.Exec(ctx, `UPDATE audit_streams`+p.suffix+` a SET state = u.state, resource_type = u.typ
			FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS u(id, typ, state) WHERE a.resource_id = u.id`,
			upIDs, upTypes, upStates)
		return err
	}
	return nil
}

type auditStream struct {
	state        AuditState
	resourceType string
	known, dirty bool
}

// auditRow is one trail entry before it is written.
type auditRow struct {
	resourceType, resourceID string
	dataVersion              int64
	next                     AuditState
	changes                  []byte
}

func (a auditRow) row(rec events.Record) []any {
	m := rec.Metadata.Actor
	return []any{rec.Cursor.Position, rec.Stream, a.resourceType, a.resourceID, rec.Version, a.dataVersion, rec.Type,
		nullIfEmpty(m.Subject), nullIfEmpty(m.UserID), m.Role, m.DomainID, a.next.DomainID, nullIfEmpty(a.next.WorkspaceID),
		nullIfEmpty(a.next.ProjectID), nullIfEmpty(a.next.UserID), rec.OccurredAt.UTC().Truncate(time.Microsecond),
		nullIfEmpty(rec.Metadata.CorrelationID), a.changes}
}
