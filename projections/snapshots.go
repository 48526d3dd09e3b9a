package projections

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
)

// SnapshotProjection keeps each resource's latest state (the aggregate, its
// value still sealed) in the snapshots table, written with every change:
// commands load from it instead of replaying the stream, secretData reads the
// current sealed value with one indexed lookup, and history checks
// visibility of deleted resources against it.
type SnapshotProjection struct{ suffix string }

type snapshotRow struct {
	StreamID string          `json:"stream_id"`
	Kind     string          `json:"kind"`
	Version  int64           `json:"version"`
	State    json.RawMessage `json:"state"`
}

var snapshotsTable = newTable("snapshots", "stream_id", snapshotRow{})

// Name implements Projection.
func (SnapshotProjection) Name() string { return SnapshotsProjection }

// Tables implements Projection.
func (SnapshotProjection) Tables() []string { return []string{"snapshots"} }

// Shadow implements Projection.
func (SnapshotProjection) Shadow(suffix string) Projection { return SnapshotProjection{suffix: suffix} }

// Queue implements Projection.
func (p SnapshotProjection) Queue(b *pgx.Batch, changes []commands.Change) error {
	states := latest[commands.Resource](changes)
	rows := make([]snapshotRow, len(states))
	for i, s := range states {
		state, err := json.Marshal(s)
		if err != nil {
			return err
		}
		b := s.Base()
		rows[i] = snapshotRow{StreamID: b.ID, Kind: s.Kind(), Version: b.StreamVersion, State: state}
	}
	return snapshotsTable.upsert(b, p.suffix, rows)
}

// loadSnapshot reads the snapshot of id (from the snapshots table named with
// suffix) into into.
func loadSnapshot(ctx context.Context, q events.Querier, suffix, id string, into commands.Resource) (bool, error) {
	var state []byte
	err := q.QueryRow(ctx, `SELECT state FROM `+ident("snapshots"+suffix)+` WHERE stream_id = $1`, id).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(state, into)
}

// loadSnapshots reads the snapshots of ids (from the table named with
// suffix), keyed by id.
func loadSnapshots(ctx context.Context, q events.Querier, suffix string, ids []string) (map[string]commands.Resource, error) {
	out := make(map[string]commands.Resource, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT stream_id, state FROM `+ident("snapshots"+suffix)+` WHERE stream_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var state []byte
		if err := rows.Scan(&id, &state); err != nil {
			return nil, err
		}
		r, ok := commands.NewResource(id)
		if !ok {
			continue
		}
		if err := json.Unmarshal(state, r); err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, rows.Err()
}
