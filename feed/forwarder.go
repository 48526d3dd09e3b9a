package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/projections"
)

// ForwarderName is the forwarder's lease and its watermill-sql consumer
// group: its row in projection_offsets is the feed's checkpoint.
const ForwarderName = "feed"

// Topic is the Watermill topic of a publisher that is not topic-routed
// (anything but NATS, where the topic is the subject, see Subject).
const Topic = "secretlog.feed"

// Forwarder publishes every committed event of the log, in commit order, to
// a Watermill publisher. It is an asynchronous projection of
// projections.Runner: one process at a time holds its lease; the
// watermill-sql subscriber delivers each event in a transaction that also
// moves the consumer group's offset, and the forwarder publishes the
// envelope before that commits. A publish that fails stops the run at that
// event (retried after a pause); a process that dies after publishing and
// before committing publishes those events again on the next run: the feed
// is at least once, and each message's UUID (the event id, also the
// JetStream Nats-Msg-Id) lets consumers drop the repeats.
type Forwarder struct {
	Publisher message.Publisher
	// TopicOf is the topic each envelope is published to (nil: Topic).
	TopicOf func(Envelope) string

	published atomic.Int64
	position  atomic.Int64 // global position of the last event published
}

var (
	_ projections.Projection = (*Forwarder)(nil)
	_ projections.TxApplier  = (*Forwarder)(nil)
)

// Name implements projections.Projection.
func (*Forwarder) Name() string { return ForwarderName }

// Tables implements projections.Projection: the forwarder owns none.
func (*Forwarder) Tables() []string { return nil }

// Shadow implements projections.Projection (a rebuild never runs it).
func (f *Forwarder) Shadow(string) projections.Projection { return f }

// Queue implements projections.Projection; the runner calls ApplyTx instead.
func (*Forwarder) Queue(*pgx.Batch, []commands.Change) error {
	return errors.New("feed: the forwarder publishes in ApplyTx")
}

// Published counts the messages this forwarder published (repeats included).
func (f *Forwarder) Published() int64 { return f.published.Load() }

// ApplyTx implements projections.TxApplier: it publishes c's envelope.
func (f *Forwarder) ApplyTx(ctx context.Context, tx pgx.Tx, c commands.Change) error {
	env, err := FromRecord(c.Record)
	if err != nil {
		return err
	}
	envs := []Envelope{env}
	if err := Enrich(ctx, tx, envs); err != nil {
		return err
	}
	msg, err := envs[0].Message()
	if err != nil {
		return err
	}
	topic := Topic
	if f.TopicOf != nil {
		topic = f.TopicOf(envs[0])
	}
	if err := f.Publisher.Publish(topic, msg); err != nil {
		return fmt.Errorf("feed: publish %s: %w", env.Position, err)
	}
	f.published.Add(1)
	f.position.Store(env.Cursor.Position)
	return nil
}

// NewForwarderRunner is the leased runner of f on pool.
func NewForwarderRunner(pool *pgxpool.Pool, logger *slog.Logger, f *Forwarder) *projections.Runner {
	r := projections.NewRunner(pool, logger, f)
	// One event per consuming transaction would commit the offset after each
	// publish; a batch commits once for many, republished only on a crash.
	r.BatchSize = 64
	return r
}

// Enrich fills the data version of envelopes that do not know it from the
// audit trail (written in the same transaction as the event on the
// PostgreSQL log). Envelopes without an audit row keep no data version.
func Enrich(ctx context.Context, q events.Querier, envs []Envelope) error {
	var positions []int64
	idx := map[int64][]int{}
	for i, e := range envs {
		if e.DataVersion == nil {
			positions = append(positions, e.Cursor.Position)
			idx[e.Cursor.Position] = append(idx[e.Cursor.Position], i)
		}
	}
	if len(positions) == 0 {
		return nil
	}
	rows, err := q.Query(ctx, `SELECT position, data_version FROM audit_events WHERE position = ANY($1)`, positions)
	if err != nil {
		return fmt.Errorf("feed: data versions: %w", err)
	}
	var pos, dv int64
	_, err = pgx.ForEachRow(rows, []any{&pos, &dv}, func() error {
		for _, i := range idx[pos] {
			v := dv
			envs[i].DataVersion = &v
		}
		return nil
	})
	return err
}
