package events

import (
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// LogTopic is the Watermill topic name under which the log is consumed.
const LogTopic = "event_log"

// OffsetsTable holds watermill-sql's delivery offsets per consumer group:
// for an asynchronous projection, its checkpoint, moved in the transaction
// that writes its rows.
const OffsetsTable = "projection_offsets"

// LogSchemaAdapter makes watermill-sql consume the event_log table itself as
// its topic: appending an event is publishing it, in one statement, so the
// two can never disagree. Rows are read in commit order (transaction id,
// position), only below pg_snapshot_xmin, exactly like watermill-sql's own
// PostgreSQL queue.
type LogSchemaAdapter struct {
	// BatchSize is the number of events one consuming transaction handles.
	BatchSize int
}

var _ wsql.SchemaAdapter = LogSchemaAdapter{}

// InsertQuery is refused: events enter the log through Store.Append, which
// checks the expected version.
func (LogSchemaAdapter) InsertQuery(wsql.InsertQueryParams) (wsql.Query, error) {
	return wsql.Query{}, errors.New("events: append through events.Store, not a Watermill publisher")
}

// SchemaInitializingQueries is empty: the table belongs to the events migrations.
func (LogSchemaAdapter) SchemaInitializingQueries(wsql.SchemaInitializingQueriesParams) ([]wsql.Query, error) {
	return nil, nil
}

// SubscribeIsolationLevel matches watermill-sql's PostgreSQL adapter.
func (LogSchemaAdapter) SubscribeIsolationLevel() stdsql.IsolationLevel {
	return stdsql.LevelRepeatableRead
}

// SelectQuery returns the next batch after the consumer group's checkpoint.
func (a LogSchemaAdapter) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	next, err := params.OffsetsAdapter.NextOffsetQuery(wsql.NextOffsetQueryParams{Topic: params.Topic, ConsumerGroup: params.ConsumerGroup})
	if err != nil {
		return wsql.Query{}, err
	}
	batch := a.BatchSize
	if batch <= 0 {
		batch = 256
	}
	q := `SELECT * FROM (
	WITH last_processed AS (` + next.Query + `)
	SELECT position, transaction_id, event_id, stream_id, version, type, data, metadata, occurred_at
	FROM event_log
	WHERE ((transaction_id = (SELECT last_processed_transaction_id FROM last_processed)
	        AND position > (SELECT offset_acked FROM last_processed))
	    OR transaction_id > (SELECT last_processed_transaction_id FROM last_processed))
	  AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
) AS events
ORDER BY transaction_id, position
LIMIT ` + strconv.Itoa(batch)
	return wsql.Query{Query: q, Args: next.Args}, nil
}

// Message metadata keys carrying the record's envelope.
const (
	metaStream     = "stream"
	metaVersion    = "version"
	metaType       = "type"
	metaPosition   = "position"
	metaCommit     = "commit"
	metaOccurredAt = "occurred_at"
	metaEnvelope   = "envelope"
)

// UnmarshalMessage turns an event_log row into a Watermill message.
func (LogSchemaAdapter) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	var (
		r        wsql.Row
		commit   wsql.XID8
		id       uuid.UUID
		stream   string
		version  int64
		typ      string
		meta     []byte
		occurred time.Time
	)
	if err := params.Row.Scan(&r.Offset, &commit, &id, &stream, &version, &typ, &r.Payload, &meta, &occurred); err != nil {
		return wsql.Row{}, fmt.Errorf("events: scan log row: %w", err)
	}
	r.UUID = []byte(id.String())
	r.Msg = message.NewMessage(id.String(), r.Payload)
	r.Msg.Metadata = message.Metadata{
		metaStream:     stream,
		metaVersion:    strconv.FormatInt(version, 10),
		metaType:       typ,
		metaPosition:   strconv.FormatInt(r.Offset, 10),
		metaCommit:     strconv.FormatUint(uint64(commit), 10),
		metaOccurredAt: occurred.UTC().Format(time.RFC3339Nano),
		metaEnvelope:   string(meta),
	}
	r.ExtraData = map[string]any{"transaction_id": commit}
	return r, nil
}

// RecordFromMessage rebuilds the Record a LogSchemaAdapter message carries.
func RecordFromMessage(msg *message.Message) (Record, error) {
	var r Record
	var err error
	md := msg.Metadata
	r.ID = msg.UUID
	r.Data = msg.Payload
	r.Stream = md.Get(metaStream)
	r.Type = md.Get(metaType)
	if r.Version, err = strconv.ParseInt(md.Get(metaVersion), 10, 64); err != nil {
		return r, fmt.Errorf("events: message %s: version: %w", msg.UUID, err)
	}
	if r.Cursor.Position, err = strconv.ParseInt(md.Get(metaPosition), 10, 64); err != nil {
		return r, fmt.Errorf("events: message %s: position: %w", msg.UUID, err)
	}
	if r.Cursor.Commit, err = strconv.ParseUint(md.Get(metaCommit), 10, 64); err != nil {
		return r, fmt.Errorf("events: message %s: commit: %w", msg.UUID, err)
	}
	if r.OccurredAt, err = time.Parse(time.RFC3339Nano, md.Get(metaOccurredAt)); err != nil {
		return r, fmt.Errorf("events: message %s: occurred_at: %w", msg.UUID, err)
	}
	if err := json.Unmarshal([]byte(md.Get(metaEnvelope)), &r.Metadata); err != nil {
		return r, fmt.Errorf("events: message %s: envelope: %w", msg.UUID, err)
	}
	return r, nil
}

// OffsetsAdapter stores consumer groups' delivery offsets in OffsetsTable.
func OffsetsAdapter() wsql.DefaultPostgreSQLOffsetsAdapter {
	return wsql.DefaultPostgreSQLOffsetsAdapter{
		GenerateMessagesOffsetsTableName: func(string) string { return OffsetsTable },
	}
}
