package events_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
)

// ---- the hash definition ----------------------------------------------------

// TestEventHashDefinition pins EventHash to its documented preimage and
// checks that every field, and where one field ends, changes it.
func TestEventHashDefinition(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	prev := bytes.Repeat([]byte{0xab}, 32)
	data, meta := []byte(`{"data":{"nonce":"AAEC","ct":"3q2+7w=="}}`), []byte(`{"actor":{"role":"SYSTEM","domain_id":"d"}}`)
	id := "6f1c2d0e-8a4b-4c3d-9e2f-1a2b3c4d5e6f"

	var pre bytes.Buffer
	lp := func(b []byte) {
		_ = binary.Write(&pre, binary.BigEndian, uint64(len(b)))
		pre.Write(b)
	}
	pre.WriteString("secretlog/event-hash/v1")
	lp(prev)
	lp([]byte("secret-1"))
	_ = binary.Write(&pre, binary.BigEndian, int64(7))
	lp([]byte(id))
	lp([]byte("SecretDataUpdated.v1"))
	_ = binary.Write(&pre, binary.BigEndian, at.UnixMicro())
	lp(data)
	lp(meta)
	want := sha256.Sum256(pre.Bytes())
	got := events.EventHash(prev, "secret-1", 7, id, "SecretDataUpdated.v1", at, data, meta)
	require.Equal(t, want[:], got)
	require.Len(t, got, events.HashSize)

	variants := map[string][]byte{
		"prev":        events.EventHash(nil, "secret-1", 7, id, "SecretDataUpdated.v1", at, data, meta),
		"stream":      events.EventHash(prev, "secret-2", 7, id, "SecretDataUpdated.v1", at, data, meta),
		"version":     events.EventHash(prev, "secret-1", 8, id, "SecretDataUpdated.v1", at, data, meta),
		"id":          events.EventHash(prev, "secret-1", 7, "7"+id[1:], "SecretDataUpdated.v1", at, data, meta),
		"type":        events.EventHash(prev, "secret-1", 7, id, "SecretDataUpdated.v2", at, data, meta),
		"occurredAt":  events.EventHash(prev, "secret-1", 7, id, "SecretDataUpdated.v1", at.Add(time.Microsecond), data, meta),
		"data":        events.EventHash(prev, "secret-1", 7, id, "SecretDataUpdated.v1", at, append([]byte{}, data[1:]...), meta),
		"metadata":    events.EventHash(prev, "secret-1", 7, id, "SecretDataUpdated.v1", at, data, append(append([]byte{}, meta...), ' ')),
		"field bound": events.EventHash(prev, "secret-1S", 7, id, "ecretDataUpdated.v1", at, data, meta),
		"data/meta":   events.EventHash(prev, "secret-1", 7, id, "SecretDataUpdated.v1", at, append(append([]byte{}, data...), meta[0]), meta[1:]),
	}
	seen := map[string]string{hex.EncodeToString(got): "original"}
	for name, h := range variants {
		k := hex.EncodeToString(h)
		require.NotContains(t, seen, k, "%s collides with %s", name, seen[k])
		seen[k] = name
	}

	fold := events.LogHash(events.EmptyLogHash(), got)
	wantFold := sha256.Sum256(append(make([]byte, 32), got...))
	require.Equal(t, wantFold[:], fold)
}

// ---- a realistic log --------------------------------------------------------

// testLog is a log built through the Store, with checkpoints in between.
type testLog struct {
	recs        []events.Record     // in commit order
	checkpoints []events.Checkpoint // in commit order
	byStream    map[string][]events.Record
}

func sealedLooking(r *rand.Rand) events.Sealed {
	nonce := make([]byte, 12)
	ct := make([]byte, 24+r.IntN(80))
	for i := range nonce {
		nonce[i] = byte(r.Uint32())
	}
	for i := range ct {
		ct[i] = byte(r.Uint32())
	}
	return events.Sealed{Nonce: nonce, Ciphertext: ct}
}

func hex12(r *rand.Rand) string { return fmt.Sprintf("%012x", r.Uint64()&(1<<48-1)) }

// buildLog appends n events (a few over several secrets and their access
// streams, some in multi-event batches) and writes a checkpoint every
// checkpointEvery events; the last events come after the last checkpoint.
func buildLog(ctx context.Context, t *testing.T, s *events.PostgresStore, pool *pgxpool.Pool, r *rand.Rand, n, checkpointEvery int) *testLog {
	t.Helper()
	l := &testLog{byStream: map[string][]events.Record{}}
	var secrets []string
	for range 10 {
		secrets = append(secrets, "secret-"+hex12(r))
	}
	domain, workspace := "domain-"+hex12(r), "workspace-"+hex12(r)
	meta := func() events.Metadata {
		return events.Metadata{
			Actor:         events.Actor{Subject: "alice@example.com", UserID: "user-" + hex12(r), Role: "DOMAIN_ADMIN", DomainID: domain},
			Tenant:        events.Tenant{DomainID: domain, WorkspaceID: workspace, ProjectID: "project-" + hex12(r)},
			CorrelationID: uuid.NewString(),
			CausationID:   uuid.NewString(),
		}
	}
	encode := func(v any) []byte {
		b, err := events.Encode(v)
		require.NoError(t, err)
		return b
	}
	nextCheckpoint := checkpointEvery
	for len(l.recs) < n {
		id := secrets[r.IntN(len(secrets))]
		stream, expected := id, int64(len(l.byStream[id]))
		var evs []events.Event
		switch {
		case expected == 0:
			evs = append(evs, events.Event{Type: events.SecretCreatedV1, Data: encode(events.SecretCreated{
				SecretID: id, Name: "db-password-" + hex12(r), Tags: map[string]any{"env": "prod", "team": "payments"},
				ResourceGroup: "WORKSPACE", DomainID: domain, WorkspaceID: workspace, Data: sealedLooking(r),
			})})
		case r.IntN(4) == 0:
			stream, expected = id+":access", events.AnyVersion
			evs = append(evs, events.Event{Type: "SecretDataRead.v1", Data: []byte(fmt.Sprintf(`{"secret_id":%q,"data_version":%d}`, id, r.IntN(5)+1))})
		default:
			for range 1 + r.IntN(2) { // sometimes two events in one append
				if r.IntN(2) == 0 {
					name := "renamed-" + hex12(r)
					evs = append(evs, events.Event{Type: events.SecretUpdatedV1, Data: encode(events.SecretUpdated{Name: &name, Tags: map[string]any{"rotated": true}})})
				} else {
					evs = append(evs, events.Event{Type: events.SecretDataUpdatedV1, Data: encode(events.SecretDataUpdated{Data: sealedLooking(r)})})
				}
			}
		}
		for i := range evs {
			evs[i].Metadata = meta()
		}
		recs, err := s.Append(ctx, stream, expected, evs...)
		require.NoError(t, err)
		l.recs = append(l.recs, recs...)
		l.byStream[stream] = append(l.byStream[stream], recs...)
		if len(l.recs) >= nextCheckpoint && len(l.recs) < n {
			nextCheckpoint += checkpointEvery
			settle(ctx, t, pool, recs[len(recs)-1].Cursor)
			cp, written, err := s.WriteCheckpoint(ctx)
			require.NoError(t, err)
			require.True(t, written)
			require.Equal(t, int64(len(l.recs)), cp.Events)
			require.Equal(t, recs[len(recs)-1].Cursor, cp.Cursor)
			l.checkpoints = append(l.checkpoints, cp)
		}
	}
	settle(ctx, t, pool, l.recs[len(l.recs)-1].Cursor)
	return l
}

// settle waits until every transaction up to c's is below pg_snapshot_xmin,
// the horizon checkpoints and Verify read up to.
func settle(ctx context.Context, t *testing.T, pool *pgxpool.Pool, c events.Cursor) {
	t.Helper()
	require.Eventually(t, func() bool {
		var xmin int64
		err := pool.QueryRow(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`).Scan(&xmin)
		return err == nil && uint64(xmin) > c.Commit
	}, 10*time.Second, 5*time.Millisecond)
}

// requireIntact checks that Verify finds the whole log intact.
func requireIntact(ctx context.Context, t *testing.T, s *events.PostgresStore, l *testLog) {
	t.Helper()
	rep, err := s.Verify(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, events.VerifyReport{OK: true, EventsChecked: int64(len(l.recs)), CheckpointsChecked: int64(len(l.checkpoints))}, rep)
}

func requireBroken(ctx context.Context, t *testing.T, s *events.PostgresStore, position int64, reason string, msgAndArgs ...any) {
	t.Helper()
	rep, err := s.Verify(ctx, nil)
	require.NoError(t, err)
	require.False(t, rep.OK, msgAndArgs...)
	require.Equal(t, position, rep.FirstBrokenPosition, msgAndArgs...)
	require.Equal(t, reason, rep.Reason, msgAndArgs...)
}

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, seed>>7))
}

// allowTampering lets the test rewrite history, as a superuser could.
func allowTampering(ctx context.Context, t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	_, err := pool.Exec(ctx, `ALTER TABLE event_log DISABLE TRIGGER event_log_no_update;
		ALTER TABLE log_checkpoints DISABLE TRIGGER log_checkpoints_no_update`)
	require.NoError(t, err)
}

// ---- tests --------------------------------------------------------------------

func TestVerifyIntactLog(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)

	rep, err := s.Verify(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, events.VerifyReport{OK: true}, rep, "an empty log is intact")

	l := buildLog(ctx, t, s, pool, newRand(t), 200, 40)
	require.NotEmpty(t, l.checkpoints)
	var calls [][2]int64
	rep, err = s.Verify(ctx, func(done, total int64) { calls = append(calls, [2]int64{done, total}) })
	require.NoError(t, err)
	require.Equal(t, events.VerifyReport{OK: true, EventsChecked: int64(len(l.recs)), CheckpointsChecked: int64(len(l.checkpoints))}, rep)
	require.Equal(t, [2]int64{0, int64(len(l.recs))}, calls[0])
	require.Equal(t, [2]int64{int64(len(l.recs)), int64(len(l.recs))}, calls[len(calls)-1])

	// The stored hashes are EventHash chained per stream, over the stored bytes.
	for stream, recs := range l.byStream {
		var prev []byte
		for _, r := range recs {
			var hash, meta []byte
			require.NoError(t, pool.QueryRow(ctx, `SELECT hash, metadata FROM event_log WHERE position = $1`, r.Cursor.Position).Scan(&hash, &meta))
			require.Equal(t, events.EventHash(prev, stream, r.Version, r.ID, r.Type, r.OccurredAt, r.Data, meta), hash)
			prev = hash
		}
	}
}

// TestVerifyDetectsEveryTamperedByte changes one stored byte (or value) of a
// random event, many times over every column Verify covers: Verify must report
// that very event, and the log must verify again once the value is restored.
func TestVerifyDetectsEveryTamperedByte(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)
	r := newRand(t)
	l := buildLog(ctx, t, s, pool, r, 200, 40)
	requireIntact(ctx, t, s, l)
	allowTampering(ctx, t, pool)

	type tamper struct {
		column string
		// change returns the tampered value of the column from its stored one.
		change func(old any) any
		// reason expected for rec.
		reason func(rec events.Record) string
	}
	hashMismatch := func(events.Record) string { return "hash mismatch" }
	tampers := []tamper{
		{"data", func(old any) any {
			b := bytes.Clone(old.([]byte))
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
			return b
		}, hashMismatch},
		{"metadata", func(old any) any { return tamperJSONValue(t, r, old.(string)) }, hashMismatch},
		{"type", func(old any) any { return changeChar(r, old.(string), "XYZ") }, hashMismatch},
		{"version", func(old any) any { return old.(int64) + 1000 }, func(events.Record) string { return "version gap" }},
		{"stream_id", func(old any) any { return changeChar(r, old.(string), "XYZ") }, func(rec events.Record) string {
			if rec.Version == 1 {
				return "hash mismatch" // a new stream starting at 1: its hash covers the old name
			}
			return "version gap" // a new stream that does not start at 1
		}},
		{"event_id", func(old any) any {
			id := old.(string)
			for {
				i := r.IntN(len(id))
				if id[i] != '-' {
					return changeCharAt(r, id, i, "0123456789abcdef")
				}
			}
		}, hashMismatch},
		{"occurred_at", func(old any) any { return old.(time.Time).Add(time.Microsecond) }, hashMismatch},
		{"hash", func(old any) any {
			b := bytes.Clone(old.([]byte))
			b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
			return b
		}, hashMismatch},
	}
	// The text form of uuid and json columns: the values are exactly what is stored.
	read := map[string]string{"event_id": "event_id::text", "metadata": "metadata::text"}
	cast := map[string]string{"event_id": "::uuid", "metadata": "::json"}

	const iterations = 160
	for i := range iterations {
		tp := tampers[i%len(tampers)]
		rec := l.recs[r.IntN(len(l.recs))]
		col := tp.column
		expr := col
		if e, ok := read[col]; ok {
			expr = e
		}
		var old any
		require.NoError(t, pool.QueryRow(ctx, `SELECT `+expr+` FROM event_log WHERE position = $1`, rec.Cursor.Position).Scan(&old))
		if b, ok := old.([]byte); ok {
			old = bytes.Clone(b)
		}
		if tm, ok := old.(time.Time); ok {
			old = tm.UTC()
		}
		updated := tp.change(old)
		msg := fmt.Sprintf("iteration %d: %s of %s@%d (position %d): %v -> %v", i, col, rec.Stream, rec.Version, rec.Cursor.Position, old, updated)
		set := func(v any) {
			tag, err := pool.Exec(ctx, `UPDATE event_log SET `+col+` = $1`+cast[col]+` WHERE position = $2`, v, rec.Cursor.Position)
			require.NoError(t, err, msg)
			require.EqualValues(t, 1, tag.RowsAffected(), msg)
		}
		set(updated)
		requireBroken(ctx, t, s, rec.Cursor.Position, tp.reason(rec), msg)
		set(old)
		requireIntact(ctx, t, s, l)
	}
}

// changeChar replaces one character of s with one of alphabet that differs from it.
func changeChar(r *rand.Rand, s, alphabet string) string {
	return changeCharAt(r, s, r.IntN(len(s)), alphabet)
}

func changeCharAt(r *rand.Rand, s string, i int, alphabet string) string {
	for {
		c := alphabet[r.IntN(len(alphabet))]
		if c != s[i] {
			return s[:i] + string(c) + s[i+1:]
		}
	}
}

// tamperJSONValue changes one letter or digit inside one string value of a
// JSON document, which stays valid JSON.
func tamperJSONValue(t *testing.T, r *rand.Rand, doc string) string {
	var candidates []int
	inString, isValue, lastToken := false, false, byte(0)
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		switch {
		case inString && c == '\\':
			if doc[i+1] == 'u' {
				i += 5
			} else {
				i++
			}
		case inString && c == '"':
			inString = false
			lastToken = '"'
		case inString:
			if isValue && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				candidates = append(candidates, i)
			}
		case c == '"':
			inString, isValue = true, lastToken == ':' || lastToken == '['
		case c == ' ' || c == '\n' || c == '\t':
		default:
			lastToken = c
		}
	}
	require.NotEmpty(t, candidates, "no string value in %s", doc)
	i := candidates[r.IntN(len(candidates))]
	alphabet := "abcdefghijklmnopqrstuvwxyz"
	if doc[i] >= '0' && doc[i] <= '9' {
		alphabet = "0123456789"
	}
	return changeCharAt(r, doc, i, alphabet)
}

func TestVerifyDetectsDeletedEvent(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)
	l := buildLog(ctx, t, s, pool, newRand(t), 200, 40)
	allowTampering(ctx, t, pool)

	// An event in the middle of a stream: its successor no longer follows,
	// unless a checkpoint comes first and misses it.
	var stream []events.Record
	for _, recs := range l.byStream {
		if len(recs) >= 3 && (stream == nil || len(recs) > len(stream)) {
			stream = recs
		}
	}
	require.NotNil(t, stream, "a stream with three events")
	deleted, next := stream[1], stream[2]
	wantPos, wantReason := next.Cursor.Position, "version gap"
	for _, cp := range l.checkpoints {
		if !cp.Cursor.Before(deleted.Cursor) {
			if cp.Cursor.Before(next.Cursor) {
				wantPos, wantReason = cp.Cursor.Position, "events missing before checkpoint"
			}
			break
		}
	}
	_, err := pool.Exec(ctx, `DELETE FROM event_log WHERE position = $1`, deleted.Cursor.Position)
	require.NoError(t, err)
	requireBroken(ctx, t, s, wantPos, wantReason, "deleted %s@%d", deleted.Stream, deleted.Version)
}

// TestVerifyCheckpointDetectsDeletedTail: removing the last events before a
// checkpoint leaves every stream's chain intact (they were the newest of
// their streams); only the checkpoint sees it.
func TestVerifyCheckpointDetectsDeletedTail(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)
	l := buildLog(ctx, t, s, pool, newRand(t), 120, 30)
	// Nothing after the last checkpoint: its last events are the log's last.
	cp, written, err := s.WriteCheckpoint(ctx)
	require.NoError(t, err)
	require.True(t, written)
	require.Equal(t, l.recs[len(l.recs)-1].Cursor, cp.Cursor)
	l.checkpoints = append(l.checkpoints, cp)
	requireIntact(ctx, t, s, l)

	allowTampering(ctx, t, pool)
	tail := l.recs[len(l.recs)-3:]
	for _, r := range tail {
		_, err := pool.Exec(ctx, `DELETE FROM event_log WHERE position = $1`, r.Cursor.Position)
		require.NoError(t, err)
	}
	requireBroken(ctx, t, s, cp.Cursor.Position, "events missing before checkpoint")
}

func TestVerifyCheckpointDetectsEventInsertedIntoThePast(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)
	l := buildLog(ctx, t, s, pool, newRand(t), 120, 30)

	// A well-formed new stream, placed early in commit order by forging its
	// transaction id: no chain can notice it, the first checkpoint after it does.
	first := l.recs[0]
	e := testEvent("forged")
	at := time.Now().UTC().Truncate(time.Microsecond)
	hash := events.EventHash(nil, "secret-forged", 1, e.ID, e.Type, at, e.Data, []byte(rawMetadata))
	var pos int64
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO event_log (transaction_id, event_id, stream_id, version, type, data, metadata, occurred_at, hash)
		VALUES ($1::text::xid8, $2, 'secret-forged', 1, $3, $4, $5, $6, $7) RETURNING position`,
		fmt.Sprint(first.Cursor.Commit), e.ID, e.Type, e.Data, rawMetadata, at, hash).Scan(&pos))
	forged := events.Cursor{Commit: first.Cursor.Commit, Position: pos}
	var want *events.Checkpoint
	for i, cp := range l.checkpoints {
		if forged.Before(cp.Cursor) {
			want = &l.checkpoints[i]
			break
		}
	}
	require.NotNil(t, want)
	requireBroken(ctx, t, s, want.Cursor.Position, "events added before checkpoint")
}

func TestVerifyDetectsTamperedCheckpoint(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)
	l := buildLog(ctx, t, s, pool, newRand(t), 120, 30)
	allowTampering(ctx, t, pool)
	cp := l.checkpoints[1]
	_, err := pool.Exec(ctx, `UPDATE log_checkpoints SET hash = set_byte(hash, 3, get_byte(hash, 3) # 1) WHERE position = $1`, cp.Cursor.Position)
	require.NoError(t, err)
	requireBroken(ctx, t, s, cp.Cursor.Position, "checkpoint hash mismatch")
}

func TestLogCheckpointsAreAppendOnly(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)
	recs, err := s.Append(ctx, "s", events.NoStream, testEvent("a"))
	require.NoError(t, err)
	settle(ctx, t, pool, recs[0].Cursor)
	_, written, err := s.WriteCheckpoint(ctx)
	require.NoError(t, err)
	require.True(t, written)
	for _, sql := range []string{`UPDATE log_checkpoints SET events = 2`, `DELETE FROM log_checkpoints`, `TRUNCATE log_checkpoints`} {
		_, err := pool.Exec(ctx, sql)
		require.ErrorContains(t, err, "log_checkpoints is append-only", sql)
	}
}

func TestWriteCheckpoint(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)

	_, written, err := s.WriteCheckpoint(ctx)
	require.NoError(t, err)
	require.False(t, written, "no events, no checkpoint")

	a, err := s.Append(ctx, "a", events.NoStream, testEvent("1"), testEvent("2"))
	require.NoError(t, err)
	b, err := s.Append(ctx, "b", events.NoStream, testEvent("3"))
	require.NoError(t, err)
	settle(ctx, t, pool, b[0].Cursor)
	cp, written, err := s.WriteCheckpoint(ctx)
	require.NoError(t, err)
	require.True(t, written)
	require.Equal(t, b[0].Cursor, cp.Cursor)
	require.EqualValues(t, 3, cp.Events)
	want := events.EmptyLogHash()
	for _, r := range append(a, b...) {
		var h []byte
		require.NoError(t, pool.QueryRow(ctx, `SELECT hash FROM event_log WHERE position = $1`, r.Cursor.Position).Scan(&h))
		want = events.LogHash(want, h)
	}
	require.Equal(t, want, cp.Hash)
	require.False(t, cp.CreatedAt.IsZero())

	again, written, err := s.WriteCheckpoint(ctx)
	require.NoError(t, err)
	require.False(t, written, "nothing new")
	require.Equal(t, cp.Cursor, again.Cursor)

	c, err := s.Append(ctx, "a", 2, testEvent("4"))
	require.NoError(t, err)
	settle(ctx, t, pool, c[0].Cursor)
	next, written, err := s.WriteCheckpoint(ctx)
	require.NoError(t, err)
	require.True(t, written)
	require.EqualValues(t, 4, next.Events)
	var h []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT hash FROM event_log WHERE position = $1`, c[0].Cursor.Position).Scan(&h))
	require.Equal(t, events.LogHash(cp.Hash, h), next.Hash, "a checkpoint extends the previous one")

	latest, ok, err := s.LatestCheckpoint(ctx)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, next.Cursor, latest.Cursor)
	require.Equal(t, next.Hash, latest.Hash)
}

func TestRunCheckpointer(t *testing.T) {
	s, pool := newStore(t)
	ctx := testContext(t)
	recs, err := s.Append(ctx, "a", events.NoStream, testEvent("1"))
	require.NoError(t, err)
	settle(ctx, t, pool, recs[0].Cursor)

	runCtx, cancel := context.WithCancel(ctx)
	reports := make(chan events.Checkpoint, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.RunCheckpointer(runCtx, 10*time.Millisecond, func(cp events.Checkpoint, err error) {
			if err == nil {
				reports <- cp
			}
		})
	}()
	select {
	case cp := <-reports:
		require.Equal(t, recs[0].Cursor, cp.Cursor)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no checkpoint")
	}
	cancel()
	<-done
	rep, err := s.Verify(ctx, nil)
	require.NoError(t, err)
	require.True(t, rep.OK)
	require.EqualValues(t, 1, rep.CheckpointsChecked)
}
