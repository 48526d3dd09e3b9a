package events_test

import (
	"context"
	"testing"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
)

func newLogSubscriber(t *testing.T, pool *pgxpool.Pool, group string) *wsql.Subscriber {
	t.Helper()
	sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(pool), wsql.SubscriberConfig{
		ConsumerGroup:    group,
		SchemaAdapter:    events.LogSchemaAdapter{BatchSize: 3},
		OffsetsAdapter:   events.OffsetsAdapter(),
		InitializeSchema: true,
		PollInterval:     20 * time.Millisecond,
	}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func receiveMessage(t *testing.T, msgs <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-msgs:
		require.True(t, ok, "subscription closed")
		return msg
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no message from the log")
		return nil
	}
}

// requireCheckpoint waits for the consumer group's checkpoint to reach c.
func requireCheckpoint(ctx context.Context, t *testing.T, pool *pgxpool.Pool, group string, c events.Cursor) {
	t.Helper()
	var commit, position int64
	require.Eventually(t, func() bool {
		err := pool.QueryRow(ctx, `SELECT last_processed_transaction_id::text::bigint, offset_acked FROM `+events.OffsetsTable+
			` WHERE consumer_group = $1`, group).Scan(&commit, &position)
		return err == nil && uint64(commit) == c.Commit && position == c.Position
	}, 10*time.Second, 10*time.Millisecond, "checkpoint of %s should reach %+v, is (%d, %d)", group, c, commit, position)
}

// Watermill subscribers hold their consuming transaction (and its xid) while
// a message is out: this test does not run in parallel with others.
func TestWatermillConsumesLogInCommitOrder(t *testing.T) {
	store, pool := newStore(t)
	ctx := testContext(t)

	// Some history, across streams and batches, with one late commit:
	// A is inserted first but commits after B.
	_, err := store.Append(ctx, "secret-1", events.NoStream, testEvent("1a"), testEvent("1b"))
	require.NoError(t, err)
	_, err = store.Append(ctx, "secret-2", events.NoStream, testEvent("2a"))
	require.NoError(t, err)
	txA, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer txA.Rollback(context.Background()) //nolint:errcheck
	insertRaw(ctx, t, txA, "secret-late", 1, testEvent("late"))
	_, err = store.Append(ctx, "secret-1", 2, testEvent("1c"))
	require.NoError(t, err)

	sub := newLogSubscriber(t, pool, "test")
	msgs, err := sub.Subscribe(ctx, events.LogTopic)
	require.NoError(t, err)

	// Everything before the open transaction arrives; nothing after it yet.
	var got []events.Record
	for range 3 {
		msg := receiveMessage(t, msgs)
		r, err := events.RecordFromMessage(msg)
		require.NoError(t, err)
		got = append(got, r)
		msg.Ack()
	}
	select {
	case msg := <-msgs:
		require.FailNowf(t, "delivered past an open transaction", "%s %s", msg.UUID, msg.Metadata.Get("stream"))
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, txA.Commit(ctx))
	_, err = store.Append(ctx, "secret-2", 1, testEvent("2b"), testEvent("2c"))
	require.NoError(t, err)

	for range 4 {
		msg := receiveMessage(t, msgs)
		r, err := events.RecordFromMessage(msg)
		require.NoError(t, err)
		got = append(got, r)
		msg.Ack()
	}

	// Watermill saw exactly what ReadAll sees, in the same order, and the
	// message carries the whole record.
	all, err := store.ReadAll(ctx, events.Cursor{}, 100)
	require.NoError(t, err)
	require.Len(t, all, 7)
	require.Equal(t, recordIDs(all), recordIDs(got))
	require.Equal(t, "secret-late", got[3].Stream, "the late commit comes after the events below its transaction id")
	byID := map[string][]events.Record{}
	for _, stream := range []string{"secret-1", "secret-2", "secret-late"} {
		recs, err := store.ReadStream(ctx, stream)
		require.NoError(t, err)
		for _, r := range recs {
			byID[r.ID] = append(byID[r.ID], r)
		}
	}
	for i, r := range got {
		want := byID[r.ID]
		require.Len(t, want, 1)
		w := want[0]
		require.Equal(t, w.ID, r.ID)
		require.Equal(t, w.Stream, r.Stream)
		require.Equal(t, w.Version, r.Version)
		require.Equal(t, w.Type, r.Type)
		require.Equal(t, w.Data, r.Data)
		require.Equal(t, w.Metadata, r.Metadata)
		require.Equal(t, w.Cursor, r.Cursor)
		require.True(t, w.OccurredAt.Equal(r.OccurredAt), "OccurredAt %s != %s", w.OccurredAt, r.OccurredAt)
		if i > 0 {
			require.True(t, got[i-1].Cursor.Before(r.Cursor))
		}
	}

	// Acking advanced the checkpoint to the last event.
	last := got[len(got)-1].Cursor
	requireCheckpoint(ctx, t, pool, "test", last)
	require.NoError(t, sub.Close())

	// A new subscriber of the same group starts after the checkpoint.
	next, err := store.Append(ctx, "secret-3", events.NoStream, testEvent("3a"))
	require.NoError(t, err)
	sub2 := newLogSubscriber(t, pool, "test")
	msgs2, err := sub2.Subscribe(ctx, events.LogTopic)
	require.NoError(t, err)
	msg := receiveMessage(t, msgs2)
	r, err := events.RecordFromMessage(msg)
	require.NoError(t, err)
	require.Equal(t, next[0].ID, r.ID, "acked events are not delivered again")
	require.Equal(t, next[0].Cursor, r.Cursor)
	msg.Ack()
	requireCheckpoint(ctx, t, pool, "test", next[0].Cursor)
	require.NoError(t, sub2.Close())

	// Another group has its own checkpoint and reads the whole log.
	sub3 := newLogSubscriber(t, pool, "other")
	msgs3, err := sub3.Subscribe(ctx, events.LogTopic)
	require.NoError(t, err)
	var other []events.Record
	for range 8 {
		msg := receiveMessage(t, msgs3)
		r, err := events.RecordFromMessage(msg)
		require.NoError(t, err)
		other = append(other, r)
		msg.Ack()
	}
	require.Equal(t, append(recordIDs(all), next[0].ID), recordIDs(other))
	requireCheckpoint(ctx, t, pool, "other", next[0].Cursor)
}

func TestWatermillNackRedelivers(t *testing.T) {
	store, pool := newStore(t)
	ctx := testContext(t)
	recs, err := store.Append(ctx, "secret-1", events.NoStream, testEvent("a"), testEvent("b"))
	require.NoError(t, err)

	sub := newLogSubscriber(t, pool, "test")
	msgs, err := sub.Subscribe(ctx, events.LogTopic)
	require.NoError(t, err)

	first := receiveMessage(t, msgs)
	require.Equal(t, recs[0].ID, first.UUID)
	first.Nack()
	again := receiveMessage(t, msgs)
	require.Equal(t, recs[0].ID, again.UUID, "a nacked event comes again before the next")
	again.Ack()
	second := receiveMessage(t, msgs)
	require.Equal(t, recs[1].ID, second.UUID)
	second.Ack()
	requireCheckpoint(ctx, t, pool, "test", recs[1].Cursor)
}

func TestLogSchemaAdapterRefusesPublishing(t *testing.T) {
	t.Parallel()
	_, err := events.LogSchemaAdapter{}.InsertQuery(wsql.InsertQueryParams{Topic: events.LogTopic, Msgs: message.Messages{message.NewMessage("x", nil)}})
	require.ErrorContains(t, err, "events.Store")
}

func TestRecordFromMessageRejectsIncompleteMessages(t *testing.T) {
	t.Parallel()
	full := func() *message.Message {
		m := message.NewMessage("0b6ad8a4-4c6c-4a4f-9f3e-35cbd0ae2a8f", []byte(`{}`))
		m.Metadata = message.Metadata{
			"stream": "s", "version": "1", "type": "T.v1", "position": "5", "commit": "9",
			"occurred_at": "2024-01-02T03:04:05.123456Z", "envelope": `{"actor":{"role":"SYSTEM","domain_id":"d"},"tenant":{"domain_id":"d"}}`,
		}
		return m
	}
	r, err := events.RecordFromMessage(full())
	require.NoError(t, err)
	require.Equal(t, events.Cursor{Commit: 9, Position: 5}, r.Cursor)
	require.Equal(t, "SYSTEM", r.Metadata.Actor.Role)

	for _, key := range []string{"version", "position", "commit", "occurred_at", "envelope"} {
		t.Run("bad "+key, func(t *testing.T) {
			m := full()
			m.Metadata.Set(key, "garbage")
			_, err := events.RecordFromMessage(m)
			require.ErrorContains(t, err, key)
		})
	}
}
