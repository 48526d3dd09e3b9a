package projections

import (
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
)

// usageDDL: per resource, how often its value was read and when last.
const usageDDL = `
CREATE TABLE IF NOT EXISTS resource_usage{{suffix}} (
    resource_id   text PRIMARY KEY,
    reads         bigint      NOT NULL,
    last_used_at  timestamptz NOT NULL,
    last_used_by  text,
    -- The position of the last read counted: a read applied again (after
    -- a crash between rows and offset) is not counted twice.
    last_position bigint      NOT NULL
);`

// UsageProjection counts value reads per resource (lastUsedAt). It is
// asynchronous: a leased runner applies it after the reads commit, so reads
// never wait for it and a failure here never blocks them.
type UsageProjection struct{ suffix string }

type usageRow struct {
	ResourceID string    `json:"resource_id"`
	Reads      int64     `json:"reads"`
	LastUsedAt time.Time `json:"last_used_at"`
	LastUsedBy *string   `json:"last_used_by"`
	LastPos    int64     `json:"last_position"`
}

// Name implements Projection.
func (UsageProjection) Name() string { return UsageProjectionName }

// Tables implements Projection.
func (UsageProjection) Tables() []string { return []string{"resource_usage"} }

// Shadow implements Projection.
func (UsageProjection) Shadow(suffix string) Projection { return UsageProjection{suffix: suffix} }

// Queue implements Projection. It reads only the records (reads change no
// state), as an asynchronous projection must.
func (p UsageProjection) Queue(b *pgx.Batch, changes []commands.Change) error {
	idx := map[string]int{}
	var rows []usageRow
	for _, c := range changes {
		if !isRead(c) {
			continue
		}
		id := events.ResourceOfStream(c.Record.Stream)
		i, ok := idx[id]
		if !ok {
			i = len(rows)
			idx[id] = i
			rows = append(rows, usageRow{ResourceID: id})
		}
		rows[i].Reads++
		rows[i].LastUsedAt = c.Record.OccurredAt.UTC()
		rows[i].LastUsedBy = nullIfEmpty(c.Record.Metadata.Actor.Subject)
		rows[i].LastPos = c.Record.Cursor.Position
	}
	if len(rows) == 0 {
		return nil
	}
	doc, err := jsonRows(rows)
	if err != nil {
		return err
	}
	t := ident("resource_usage" + p.suffix)
	b.Queue(`INSERT INTO `+t+` AS u SELECT * FROM jsonb_populate_recordset(NULL::`+t+`, $1)
		ON CONFLICT (resource_id) DO UPDATE SET reads = u.reads + excluded.reads,
			last_used_at = excluded.last_used_at, last_used_by = excluded.last_used_by, last_position = excluded.last_position
		WHERE u.last_position < excluded.last_position`, doc)
	return nil
}

// Usage is a resource's read statistics.
type Usage struct {
	Reads      int64
	LastUsedAt *time.Time
}
