package projections

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/commands"
)

// VersionsProjection keeps every version of every value, readable or
// destroyed, with its stages (secretVersions).
type VersionsProjection struct{ suffix string }

type versionRow struct {
	ResourceID     string          `json:"resource_id"`
	Version        int64           `json:"version"`
	EventVersion   int64           `json:"event_version"`
	Stages         json.RawMessage `json:"stages"`
	CreatedAt      time.Time       `json:"created_at"`
	CreatedBy      string          `json:"created_by"`
	RolledBackFrom *int64          `json:"rolled_back_from"`
	Destroyed      bool            `json:"destroyed"`
}

type versionKey struct {
	id string
	n  int64
}

var versionsTable = table{name: "resource_versions", key: "resource_id, version",
	columns: []string{"event_version", "stages", "created_at", "created_by", "rolled_back_from", "destroyed"}}

// Name implements Projection.
func (VersionsProjection) Name() string { return VersionsProjectionName }

// Tables implements Projection.
func (VersionsProjection) Tables() []string { return []string{"resource_versions"} }

// Shadow implements Projection.
func (VersionsProjection) Shadow(suffix string) Projection { return VersionsProjection{suffix: suffix} }

// Queue implements Projection: for each change, the versions whose stages
// appeared, moved or left are (re)written; versions that left the state
// (destroyed, or all of them on deletion) are marked destroyed.
func (p VersionsProjection) Queue(b *pgx.Batch, changes []commands.Change) error {
	rows := map[versionKey]*versionRow{}
	var order []versionKey
	gone := map[string][]int64{} // destroyed versions not written in this batch
	for _, c := range changes {
		if isRead(c) {
			continue
		}
		next := c.Next.Base()
		var prev *commands.Versioned
		if c.Prev != nil {
			prev = c.Prev.Base()
		} else {
			prev = &commands.Versioned{}
		}
		for _, v := range next.Versions {
			stages := next.StagesOf(v.Number)
			old, had := prev.Version(v.Number)
			if had && old == v && slices.Equal(prev.StagesOf(v.Number), stages) {
				continue
			}
			k := versionKey{next.ID, v.Number}
			if rows[k] == nil {
				order = append(order, k)
			}
			st, _ := json.Marshal(nonNilStrings(stages))
			rows[k] = &versionRow{ResourceID: next.ID, Version: v.Number, EventVersion: v.EventVersion, Stages: st,
				CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy, RolledBackFrom: nullIfZero64(v.RolledBackFrom)}
		}
		for _, v := range prev.Versions {
			if _, still := next.Version(v.Number); still {
				continue
			}
			if r := rows[versionKey{next.ID, v.Number}]; r != nil {
				r.Destroyed, r.Stages = true, json.RawMessage(`[]`)
			} else {
				gone[next.ID] = append(gone[next.ID], v.Number)
			}
		}
	}
	out := make([]versionRow, 0, len(order))
	for _, k := range order {
		out = append(out, *rows[k])
	}
	for id, ns := range gone {
		b.Queue(`UPDATE `+ident("resource_versions"+p.suffix)+` SET destroyed = true, stages = '[]'
			WHERE resource_id = $1 AND version = ANY($2)`, id, ns)
	}
	return versionsTable.upsert(b, p.suffix, out)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nullIfZero64(n int64) *int64 {
	if n == 0 {
		return nil
	}
	return &n
}

// PendingProjection lists the resources scheduled for deletion.
type PendingProjection struct{ suffix string }

type pendingRow struct {
	ResourceID   string    `json:"resource_id"`
	ResourceType string    `json:"resource_type"`
	Name         string    `json:"name"`
	DomainID     string    `json:"domain_id"`
	DeleteAt     time.Time `json:"delete_at"`
	ScheduledAt  time.Time `json:"scheduled_at"`
	ScheduledBy  string    `json:"scheduled_by"`
}

var pendingTable = newTable("pending_deletions", "resource_id", pendingRow{})

// Name implements Projection.
func (PendingProjection) Name() string { return PendingProjectionName }

// Tables implements Projection.
func (PendingProjection) Tables() []string { return []string{"pending_deletions"} }

// Shadow implements Projection.
func (PendingProjection) Shadow(suffix string) Projection { return PendingProjection{suffix: suffix} }

// Queue implements Projection.
func (p PendingProjection) Queue(b *pgx.Batch, changes []commands.Change) error {
	var rows []pendingRow
	var gone []string
	for _, r := range latest[commands.Resource](changes) {
		v := r.Base()
		if !v.PendingDelete || v.DeleteAt == nil {
			gone = append(gone, v.ID)
			continue
		}
		rows = append(rows, pendingRow{ResourceID: v.ID, ResourceType: r.Kind(), Name: v.Name, DomainID: r.Tenant().DomainID,
			DeleteAt: *v.DeleteAt, ScheduledAt: v.UpdatedAt, ScheduledBy: v.UpdatedBy})
	}
	pendingTable.remove(b, p.suffix, gone)
	return pendingTable.upsert(b, p.suffix, rows)
}
