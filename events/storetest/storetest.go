// Package storetest is the conformance suite every events.Store must pass:
// the PostgreSQL log today, EventStoreDB on the scale-out path.
//
// Each case gets its own store from newStore, and also names its streams with
// a random prefix and ignores everyone else's events in ReadAll and Subscribe,
// so the suite stays correct against a log shared with other cases (an
// EventStoreDB server with its own system events).
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
)

// waitFor bounds every wait for an event to become visible. The Store
// contract lets ReadAll hold back committed events for a while (PostgreSQL
// does so while an older transaction anywhere in the cluster is running), so
// the suite polls rather than expecting the very next call to see them.
const waitFor = 15 * time.Second

// Run runs the suite, each case as a parallel subtest with its own store.
func Run(t *testing.T, newStore func(t *testing.T) events.Store) {
	cases := []struct {
		name string
		run  func(t *testing.T, s events.Store)
	}{
		{"AppendToNewStreamWithNoStream", testAppendNoStream},
		{"AppendFillsIDAndOccurredAt", testAppendDefaults},
		{"AppendWithExpectedVersion", testAppendExpectedVersion},
		{"AppendWithWrongExpectedVersionConflicts", testAppendConflict},
		{"AppendWithAnyVersion", testAppendAnyVersion},
		{"MultiEventAppendIsAtomicAndConsecutive", testAppendBatch},
		{"ReadStreamRoundTripsTheEnvelope", testReadStreamRoundTrip},
		{"ReadStreamOfUnknownStreamIsEmpty", testReadStreamUnknown},
		{"ReadStreamAfterAVersion", testReadStreamAfter},
		{"ReadAllInCommitOrder", testReadAllOrder},
		{"ReadAllPagesSeeEveryEventOnce", testReadAllPaging},
		{"SubscribeDeliversExistingThenNewEvents", testSubscribeExistingThenNew},
		{"SubscribeStartsAfterCursor", testSubscribeAfterCursor},
		{"SubscribeStopsWhenFnFails", testSubscribeFnError},
		{"ConcurrentAppendersOnOneStream", testConcurrentOneStream},
		{"ConcurrentAppendsToManyStreams", testConcurrentManyStreams},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newStore(t))
		})
	}
}

// ---- helpers ---------------------------------------------------------------

// namespace gives a case stream names no other case uses.
type namespace string

func newNamespace(t *testing.T) namespace {
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return namespace("st" + hex.EncodeToString(b) + "-")
}

func (ns namespace) stream(name string) string { return string(ns) + name }
func (ns namespace) owns(r events.Record) bool { return strings.HasPrefix(r.Stream, string(ns)) }

func (ns namespace) filter(recs []events.Record) []events.Record {
	var out []events.Record
	for _, r := range recs {
		if ns.owns(r) {
			out = append(out, r)
		}
	}
	return out
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// event builds a distinguishable event with every envelope field set.
func event(label string) events.Event {
	return events.Event{
		ID:   uuid.NewString(),
		Type: "TestHappened.v1",
		Data: []byte(`{"label":"` + label + `"}`),
		Metadata: events.Metadata{
			Actor:         events.Actor{Subject: "sub-" + label, UserID: "user-1", Role: "DOMAIN_ADMIN", DomainID: "domain-1"},
			Tenant:        events.Tenant{DomainID: "domain-1", WorkspaceID: "workspace-1", ProjectID: "project-1"},
			CorrelationID: "corr-" + label,
			CausationID:   "cause-" + label,
		},
		OccurredAt: time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC),
	}
}

func eventsN(prefix string, n int) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		out[i] = event(fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func ids(recs []events.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func eventIDs(evs []events.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func versions(recs []events.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Version
	}
	return out
}

func seq(from, to int64) []int64 {
	var out []int64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

// requireEventRecorded checks that r carries e as appended to stream at version.
func requireEventRecorded(t *testing.T, e events.Event, stream string, version int64, r events.Record) {
	t.Helper()
	require.Equal(t, e.ID, r.ID, "ID")
	require.Equal(t, e.Type, r.Type, "Type")
	require.Equal(t, e.Data, r.Data, "Data")
	require.Equal(t, e.Metadata, r.Metadata, "Metadata")
	require.True(t, e.OccurredAt.Truncate(time.Microsecond).Equal(r.OccurredAt),
		"OccurredAt: want %s, got %s", e.OccurredAt.Truncate(time.Microsecond), r.OccurredAt)
	require.Equal(t, stream, r.Stream, "Stream")
	require.Equal(t, version, r.Version, "Version")
}

// requireSameRecord checks that two reads of one event agree on every field.
func requireSameRecord(t *testing.T, want, got events.Record) {
	t.Helper()
	require.Equal(t, want.ID, got.ID, "ID")
	require.Equal(t, want.Type, got.Type, "Type")
	require.Equal(t, want.Data, got.Data, "Data")
	require.Equal(t, want.Metadata, got.Metadata, "Metadata")
	require.True(t, want.OccurredAt.Equal(got.OccurredAt), "OccurredAt: want %s, got %s", want.OccurredAt, got.OccurredAt)
	require.Equal(t, want.Stream, got.Stream, "Stream")
	require.Equal(t, want.Version, got.Version, "Version")
	require.Equal(t, want.Cursor, got.Cursor, "Cursor")
}

func requireStrictlyIncreasing(t *testing.T, recs []events.Record) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		prev, cur := recs[i-1].Cursor, recs[i].Cursor
		require.True(t, prev.Before(cur), "cursor %d %+v must come before cursor %d %+v", i-1, prev, i, cur)
		require.False(t, cur.Before(prev), "cursor %d %+v must not come before cursor %d %+v", i, cur, i-1, prev)
	}
}

func requireUnique(t *testing.T, recs []events.Record) {
	t.Helper()
	seen := make(map[string]int, len(recs))
	for i, r := range recs {
		if j, dup := seen[r.ID]; dup {
			require.Failf(t, "duplicate event", "event %s at index %d and %d", r.ID, j, i)
		}
		seen[r.ID] = i
	}
}

// readAllPages reads the log from after to its current end, limit events at a
// time, and returns the namespace's events.
func readAllPages(ctx context.Context, t *testing.T, s events.Store, ns namespace, after events.Cursor, limit int) []events.Record {
	t.Helper()
	var out []events.Record
	for {
		page, err := s.ReadAll(ctx, after, limit)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), limit, "ReadAll returned more than limit")
		if len(page) == 0 {
			return out
		}
		requireStrictlyIncreasing(t, page)
		require.True(t, after.Before(page[0].Cursor), "ReadAll returned %+v, not after %+v", page[0].Cursor, after)
		out = append(out, ns.filter(page)...)
		after = page[len(page)-1].Cursor
	}
}

// readAllEventually reads the whole log until want of the namespace's events
// are visible, then returns them. More than want fails at once.
func readAllEventually(ctx context.Context, t *testing.T, s events.Store, ns namespace, after events.Cursor, limit, want int) []events.Record {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := readAllPages(ctx, t, s, ns, after, limit)
		require.LessOrEqual(t, len(got), want, "ReadAll returned more events than were appended")
		if len(got) == want {
			return got
		}
		if time.Now().After(deadline) {
			require.Failf(t, "ReadAll incomplete", "saw %d of %d events after %s", len(got), want, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func receive(t *testing.T, ch <-chan events.Record, n int) []events.Record {
	t.Helper()
	out := make([]events.Record, 0, n)
	timeout := time.After(waitFor)
	for len(out) < n {
		select {
		case r := <-ch:
			out = append(out, r)
		case <-timeout:
			require.Failf(t, "Subscribe too slow", "received %d of %d events in %s", len(out), n, waitFor)
		}
	}
	return out
}

func requireNothingMore(t *testing.T, ch <-chan events.Record, wait time.Duration) {
	t.Helper()
	select {
	case r := <-ch:
		require.Failf(t, "unexpected event", "%s %s@%d", r.ID, r.Stream, r.Version)
	case <-time.After(wait):
	}
}

// ---- cases -----------------------------------------------------------------

func testAppendNoStream(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	stream := ns.stream("new")
	e := event("first")
	recs, err := s.Append(ctx, stream, events.NoStream, e)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	requireEventRecorded(t, e, stream, 1, recs[0])
	require.True(t, events.Cursor{}.Before(recs[0].Cursor), "a recorded event has a cursor after the start of the log")

	got, err := s.ReadStream(ctx, stream)
	require.NoError(t, err)
	require.Len(t, got, 1)
	requireSameRecord(t, recs[0], got[0])
}

func testAppendDefaults(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	stream := ns.stream("defaults")
	e := event("defaults")
	e.ID, e.OccurredAt = "", time.Time{}
	before := time.Now().Add(-time.Second)
	recs, err := s.Append(ctx, stream, events.NoStream, e, e)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	for _, r := range recs {
		_, err := uuid.Parse(r.ID)
		require.NoError(t, err, "generated ID %q must be a UUID", r.ID)
		require.False(t, r.OccurredAt.Before(before), "OccurredAt %s defaults to the append time", r.OccurredAt)
		require.False(t, r.OccurredAt.After(time.Now().Add(time.Second)), "OccurredAt %s defaults to the append time", r.OccurredAt)
	}
	require.NotEqual(t, recs[0].ID, recs[1].ID, "each event gets its own ID")

	got, err := s.ReadStream(ctx, stream)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for i := range got {
		requireSameRecord(t, recs[i], got[i])
	}
}

func testAppendExpectedVersion(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	stream := ns.stream("expected")
	steps := []struct {
		expected int64
		n        int
		want     []int64
	}{
		{events.NoStream, 2, []int64{1, 2}},
		{2, 1, []int64{3}},
		{3, 2, []int64{4, 5}},
		{5, 1, []int64{6}},
	}
	var all []events.Event
	for _, st := range steps {
		evs := eventsN(fmt.Sprintf("v%d-", st.expected), st.n)
		recs, err := s.Append(ctx, stream, st.expected, evs...)
		require.NoError(t, err, "append at expected version %d", st.expected)
		require.Equal(t, st.want, versions(recs))
		all = append(all, evs...)
	}

	// Another stream's versions are its own.
	other, err := s.Append(ctx, ns.stream("other"), events.NoStream, event("other"))
	require.NoError(t, err)
	require.Equal(t, []int64{1}, versions(other))

	got, err := s.ReadStream(ctx, stream)
	require.NoError(t, err)
	require.Equal(t, seq(1, 6), versions(got))
	require.Equal(t, eventIDs(all), ids(got))
}

func testAppendConflict(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	existing := ns.stream("existing")
	setup, err := s.Append(ctx, existing, events.NoStream, eventsN("setup", 3)...)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 2, 3}, versions(setup))

	cases := []struct {
		name     string
		stream   string
		expected int64
		n        int
		before   []events.Record
	}{
		{"expected too low", existing, 2, 1, setup},
		{"expected far too low", existing, 1, 3, setup},
		{"expected too high", existing, 4, 1, setup},
		{"expected far too high", existing, 10, 2, setup},
		{"NoStream on existing stream", existing, events.NoStream, 2, setup},
		{"version on missing stream", ns.stream("missing"), 1, 1, nil},
		{"version on missing stream, batch", ns.stream("missing"), 3, 3, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, err := s.Append(ctx, c.stream, c.expected, eventsN("conflict", c.n)...)
			require.ErrorIs(t, err, events.ErrConflict)
			require.Empty(t, recs)

			got, err := s.ReadStream(ctx, c.stream)
			require.NoError(t, err)
			require.Equal(t, ids(c.before), ids(got), "nothing may be appended on conflict")
		})
	}

	// The stream still takes the right version afterwards.
	recs, err := s.Append(ctx, existing, 3, event("after"))
	require.NoError(t, err)
	require.Equal(t, []int64{4}, versions(recs))
	all := readAllEventually(ctx, t, s, ns, events.Cursor{}, 100, 4)
	require.Equal(t, append(ids(setup), recs[0].ID), ids(all), "the log holds no conflicting event")
}

func testAppendAnyVersion(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	stream := ns.stream("any")
	recs, err := s.Append(ctx, stream, events.AnyVersion, event("a"))
	require.NoError(t, err, "AnyVersion creates a stream")
	require.Equal(t, []int64{1}, versions(recs))

	recs, err = s.Append(ctx, stream, events.AnyVersion, eventsN("b", 2)...)
	require.NoError(t, err)
	require.Equal(t, []int64{2, 3}, versions(recs))

	recs, err = s.Append(ctx, stream, 3, event("c"))
	require.NoError(t, err)
	require.Equal(t, []int64{4}, versions(recs))

	recs, err = s.Append(ctx, stream, events.AnyVersion, event("d"))
	require.NoError(t, err)
	require.Equal(t, []int64{5}, versions(recs))

	got, err := s.ReadStream(ctx, stream)
	require.NoError(t, err)
	require.Equal(t, seq(1, 5), versions(got))
}

func testAppendBatch(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	stream := ns.stream("batch")
	first, err := s.Append(ctx, stream, events.NoStream, event("single"))
	require.NoError(t, err)

	batch := eventsN("batch", 5)
	recs, err := s.Append(ctx, stream, 1, batch...)
	require.NoError(t, err)
	require.Len(t, recs, 5)
	require.Equal(t, seq(2, 6), versions(recs), "a batch takes consecutive versions")
	requireStrictlyIncreasing(t, append(first, recs...))
	for i, r := range recs {
		requireEventRecorded(t, batch[i], stream, int64(i+2), r)
	}

	// A conflicting batch appends none of its events.
	_, err = s.Append(ctx, stream, 1, eventsN("late", 4)...)
	require.ErrorIs(t, err, events.ErrConflict)

	got, err := s.ReadStream(ctx, stream)
	require.NoError(t, err)
	require.Equal(t, append(ids(first), ids(recs)...), ids(got))
	all := readAllEventually(ctx, t, s, ns, events.Cursor{}, 100, 6)
	require.Equal(t, ids(got), ids(all))
}

func testReadStreamRoundTrip(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	stream := ns.stream("roundtrip")
	berlin := time.FixedZone("UTC+2", 2*60*60)
	evs := []events.Event{
		{
			ID:   uuid.NewString(),
			Type: "SecretCreated.v1",
			// Not UTF-8, not JSON: the store keeps bytes as they are.
			Data: []byte{0x00, 0xff, 0xfe, 'x', 0x00, 0x80},
			Metadata: events.Metadata{
				Actor:         events.Actor{Subject: "token-7", UserID: "alice", Role: "WORKSPACE_OWNER", DomainID: "domain-a"},
				Tenant:        events.Tenant{DomainID: "domain-a", WorkspaceID: "ws-1", ProjectID: "project-9", UserID: "alice"},
				CorrelationID: "corr-42",
				CausationID:   "cause-41",
			},
			// Sub-microsecond digits are dropped; the instant survives a zone change.
			OccurredAt: time.Date(2023, 12, 31, 23, 59, 58, 987654321, berlin),
		},
		{
			ID:         uuid.NewString(),
			Type:       "SecretUpdated.v1",
			Data:       []byte(`{"name":"ünïcödé ✓"}`),
			Metadata:   events.Metadata{Actor: events.Actor{Role: "SYSTEM", DomainID: "domain-a"}, Tenant: events.Tenant{DomainID: "domain-a"}},
			OccurredAt: time.Date(2024, 1, 1, 0, 0, 0, 1000, time.UTC),
		},
		event("third"),
	}
	appended, err := s.Append(ctx, stream, events.NoStream, evs[:2]...)
	require.NoError(t, err)
	more, err := s.Append(ctx, stream, 2, evs[2])
	require.NoError(t, err)
	appended = append(appended, more...)
	_, err = s.Append(ctx, ns.stream("neighbour"), events.NoStream, event("neighbour"))
	require.NoError(t, err)

	got, err := s.ReadStream(ctx, stream)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for i, r := range got {
		requireEventRecorded(t, evs[i], stream, int64(i+1), r)
		requireSameRecord(t, appended[i], r)
	}
	require.Equal(t, int64(987654000), got[0].OccurredAt.UTC().Sub(time.Date(2023, 12, 31, 21, 59, 58, 0, time.UTC)).Nanoseconds(),
		"OccurredAt keeps microseconds")
	requireStrictlyIncreasing(t, got)

	all := readAllEventually(ctx, t, s, ns, events.Cursor{}, 100, 4)
	for i := range got {
		requireSameRecord(t, got[i], all[i])
	}
}

func testReadStreamUnknown(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	_, err := s.Append(ctx, ns.stream("known"), events.NoStream, event("known"))
	require.NoError(t, err)
	got, err := s.ReadStream(ctx, ns.stream("unknown"))
	require.NoError(t, err)
	require.Empty(t, got)
}

func testReadStreamAfter(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	stream := ns.stream("tail")
	recs, err := s.Append(ctx, stream, events.NoStream, eventsN("tail-", 5)...)
	require.NoError(t, err)
	for after := int64(0); after <= 6; after++ {
		got, err := events.ReadStreamAfter(ctx, s, stream, after)
		require.NoError(t, err)
		want := recs[min(after, 5):]
		require.Equal(t, versions(want), versions(got), "after %d", after)
		for i := range got {
			requireSameRecord(t, want[i], got[i])
		}
	}
	got, err := events.ReadStreamAfter(ctx, s, ns.stream("unknown"), 0)
	require.NoError(t, err)
	require.Empty(t, got)
}

// appendSequence appends to a few streams in a known order and returns the
// records in that (commit) order.
func appendSequence(ctx context.Context, t *testing.T, s events.Store, ns namespace) []events.Record {
	t.Helper()
	plan := []struct {
		stream string
		n      int
	}{{"a", 1}, {"b", 2}, {"a", 3}, {"c", 1}, {"b", 1}, {"a", 1}, {"c", 4}, {"d", 2}}
	var out []events.Record
	for i, p := range plan {
		recs, err := s.Append(ctx, ns.stream(p.stream), events.AnyVersion, eventsN(fmt.Sprintf("seq%d-", i), p.n)...)
		require.NoError(t, err)
		out = append(out, recs...)
	}
	return out
}

func testReadAllOrder(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	appended := appendSequence(ctx, t, s, ns)

	all := readAllEventually(ctx, t, s, ns, events.Cursor{}, 1000, len(appended))
	require.Equal(t, ids(appended), ids(all), "ReadAll follows commit order")
	requireStrictlyIncreasing(t, all)
	for i := range all {
		requireSameRecord(t, appended[i], all[i])
	}

	// Reading after any event's cursor returns exactly the events after it.
	for _, k := range []int{0, 1, 2, 5, len(all) - 2, len(all) - 1} {
		rest := readAllPages(ctx, t, s, ns, all[k].Cursor, 1000)
		require.Equal(t, ids(all[k+1:]), ids(rest), "after event %d", k)
	}
}

func testReadAllPaging(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	appended := appendSequence(ctx, t, s, ns)
	readAllEventually(ctx, t, s, ns, events.Cursor{}, 1000, len(appended))

	for _, limit := range []int{1, 2, 3, 4, 7, len(appended) - 1, len(appended), 1000} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			got := readAllPages(ctx, t, s, ns, events.Cursor{}, limit)
			requireUnique(t, got)
			require.Equal(t, ids(appended), ids(got))
		})
	}
}

// subscribe runs Subscribe in the background, passing the namespace's events
// to the returned channel; stop cancels it and returns what Subscribe returned.
func subscribe(t *testing.T, s events.Store, ns namespace, after events.Cursor) (<-chan events.Record, func() error) {
	ctx, cancel := context.WithCancel(testContext(t))
	ch := make(chan events.Record, 1000)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, after, func(r events.Record) error {
			if ns.owns(r) {
				ch <- r
			}
			return nil
		})
	}()
	stopped := false
	var result error
	stop := func() error {
		if stopped {
			return result
		}
		stopped = true
		cancel()
		select {
		case result = <-done:
		case <-time.After(waitFor):
			result = errors.New("Subscribe did not return after its context was cancelled")
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	return ch, stop
}

func testSubscribeExistingThenNew(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	existing, err := s.Append(ctx, ns.stream("x"), events.NoStream, eventsN("old", 3)...)
	require.NoError(t, err)

	ch, stop := subscribe(t, s, ns, events.Cursor{})
	got := receive(t, ch, 3)
	require.Equal(t, ids(existing), ids(got), "existing events first, in order")

	var fresh []events.Record
	recs, err := s.Append(ctx, ns.stream("y"), events.NoStream, eventsN("new", 2)...)
	require.NoError(t, err)
	fresh = append(fresh, recs...)
	recs, err = s.Append(ctx, ns.stream("x"), 3, event("new-x"))
	require.NoError(t, err)
	fresh = append(fresh, recs...)

	got = append(got, receive(t, ch, 3)...)
	require.Equal(t, append(ids(existing), ids(fresh)...), ids(got), "then new events, in commit order")
	requireStrictlyIncreasing(t, got)
	for i, r := range append(existing, fresh...) {
		requireSameRecord(t, r, got[i])
	}
	requireNothingMore(t, ch, 100*time.Millisecond)

	require.ErrorIs(t, stop(), context.Canceled, "Subscribe returns when its context ends")

	// Nothing is delivered after Subscribe returned.
	_, err = s.Append(ctx, ns.stream("x"), 4, event("after-stop"))
	require.NoError(t, err)
	requireNothingMore(t, ch, 100*time.Millisecond)
}

func testSubscribeAfterCursor(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	recs, err := s.Append(ctx, ns.stream("s"), events.NoStream, eventsN("e", 5)...)
	require.NoError(t, err)
	readAllEventually(ctx, t, s, ns, events.Cursor{}, 100, 5)

	ch, stop := subscribe(t, s, ns, recs[1].Cursor)
	got := receive(t, ch, 3)
	require.Equal(t, ids(recs[2:]), ids(got))
	requireNothingMore(t, ch, 100*time.Millisecond)
	require.ErrorIs(t, stop(), context.Canceled)
}

func testSubscribeFnError(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	recs, err := s.Append(ctx, ns.stream("s"), events.NoStream, eventsN("e", 4)...)
	require.NoError(t, err)

	errStop := errors.New("projector failed")
	var seen []events.Record
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, events.Cursor{}, func(r events.Record) error {
			if !ns.owns(r) {
				return nil
			}
			seen = append(seen, r)
			if len(seen) == 2 {
				return fmt.Errorf("wrapped: %w", errStop)
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, errStop, "Subscribe returns fn's error")
	case <-time.After(waitFor):
		require.FailNow(t, "Subscribe did not stop when fn failed")
	}
	require.Equal(t, ids(recs[:2]), ids(seen), "fn is not called again after it failed")
}

func testConcurrentOneStream(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	stream := ns.stream("contended")
	const writers, each = 20, 10

	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for k, attempts := 0, 0; k < each; attempts++ {
				if attempts > 100*writers*each {
					errs <- fmt.Errorf("writer %d: gave up after %d attempts", w, attempts)
					return
				}
				// Read, decide, append with the version read; retry on conflict.
				recs, err := s.ReadStream(ctx, stream)
				if err != nil {
					errs <- err
					return
				}
				expected := events.NoStream
				if len(recs) > 0 {
					expected = recs[len(recs)-1].Version
				}
				_, err = s.Append(ctx, stream, expected, event(fmt.Sprintf("w%d-%d", w, k)))
				if errors.Is(err, events.ErrConflict) {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
				k++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	got, err := s.ReadStream(ctx, stream)
	require.NoError(t, err)
	require.Len(t, got, writers*each)
	require.Equal(t, seq(1, writers*each), versions(got))
	requireUnique(t, got)
	labels := map[string]bool{}
	for _, r := range got {
		require.False(t, labels[string(r.Data)], "event %s appended twice", r.Data)
		labels[string(r.Data)] = true
	}
	for w := range writers {
		for k := range each {
			require.True(t, labels[string(event(fmt.Sprintf("w%d-%d", w, k)).Data)], "event w%d-%d is missing", w, k)
		}
	}

	all := readAllEventually(ctx, t, s, ns, events.Cursor{}, 1000, writers*each)
	require.Equal(t, ids(got), ids(all), "one stream's commit order is its version order")
	requireStrictlyIncreasing(t, all)
}

func testConcurrentManyStreams(t *testing.T, s events.Store) {
	ctx, ns := testContext(t), newNamespace(t)
	const writers, streamsEach, appendsEach = 12, 4, 3

	// A reader tails the log while it is written, the way a projector does;
	// so does a subscriber. Neither may skip or repeat an event. The tail
	// stops once it has as many events as were appended (target, known when
	// the writers are done) or when told to.
	type tail struct {
		recs []events.Record
		err  error
	}
	var target atomic.Int64
	target.Store(-1)
	stopTail := make(chan struct{})
	tailDone := make(chan tail, 1)
	go func() {
		var tl tail
		defer func() { tailDone <- tl }()
		after := events.Cursor{}
		for {
			if n := target.Load(); n >= 0 && int64(len(tl.recs)) >= n {
				return
			}
			select {
			case <-stopTail:
				return
			default:
			}
			page, err := s.ReadAll(ctx, after, 5)
			if err != nil {
				tl.err = err
				return
			}
			for _, r := range page {
				after = r.Cursor
				if ns.owns(r) {
					tl.recs = append(tl.recs, r)
				}
			}
			if len(page) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	subCh, stopSub := subscribe(t, s, ns, events.Cursor{})

	errs := make(chan error, writers)
	appended := make(chan events.Record, writers*streamsEach*appendsEach*2)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for a := range appendsEach {
				for st := range streamsEach {
					n := 1 + (w+a+st)%2
					recs, err := s.Append(ctx, ns.stream(fmt.Sprintf("w%d-s%d", w, st)), events.AnyVersion, eventsN(fmt.Sprintf("w%d-s%d-a%d-", w, st, a), n)...)
					if err != nil {
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
					for _, r := range recs {
						appended <- r
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	close(appended)
	for err := range errs {
		require.NoError(t, err)
	}
	want := map[string]events.Record{}
	for r := range appended {
		want[r.ID] = r
	}

	requireAllOnce := func(t *testing.T, got []events.Record) {
		t.Helper()
		require.Len(t, got, len(want))
		requireUnique(t, got)
		requireStrictlyIncreasing(t, got)
		last := map[string]int64{}
		for _, r := range got {
			w, ok := want[r.ID]
			require.True(t, ok, "unknown event %s", r.ID)
			requireSameRecord(t, w, r)
			require.Equal(t, last[r.Stream]+1, r.Version, "stream %s out of version order in the log", r.Stream)
			last[r.Stream] = r.Version
		}
	}

	t.Run("ReadAll", func(t *testing.T) {
		requireAllOnce(t, readAllEventually(ctx, t, s, ns, events.Cursor{}, 7, len(want)))
	})
	t.Run("tailing reader", func(t *testing.T) {
		target.Store(int64(len(want)))
		var tl tail
		select {
		case tl = <-tailDone:
		case <-time.After(waitFor):
			close(stopTail)
			tl = <-tailDone
		}
		require.NoError(t, tl.err)
		requireAllOnce(t, tl.recs)
	})
	t.Run("subscriber", func(t *testing.T) {
		got := receive(t, subCh, len(want))
		requireNothingMore(t, subCh, 100*time.Millisecond)
		require.ErrorIs(t, stopSub(), context.Canceled)
		requireAllOnce(t, got)
	})
}
