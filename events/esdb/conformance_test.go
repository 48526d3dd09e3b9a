package esdb_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/events/esdb"
	"github.com/secretlog/secretlog/events/storetest"
)

// URLVariable names the EventStoreDB server the conformance run uses.
const URLVariable = "SECRETLOG_EVENTSTORE_URL"

// TestConformance runs the events.Store conformance suite, the one the
// PostgreSQL log passes, against the EventStoreDB server at
// SECRETLOG_EVENTSTORE_URL, for example
//
//	SECRETLOG_EVENTSTORE_URL='esdb://localhost:2113?tls=false' go test ./events/esdb -run Conformance -v
//
// Without the variable it is skipped: no EventStoreDB server can be installed
// on the machines these tests run on (it is not in Debian, there is no
// Docker, and only the Go proxy, Debian and npm are reachable), and the
// suite is never run against anything but a real server.
func TestConformance(t *testing.T) {
	url := os.Getenv(URLVariable)
	if url == "" {
		t.Skip(URLVariable + " is not set, so the EventStoreDB conformance suite is skipped: it needs a real EventStoreDB " +
			"server (22.6 or later), and none can be installed on this machine or in CI. Run it with " +
			URLVariable + "='esdb://localhost:2113?tls=false' go test ./events/esdb -run Conformance -v")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := esdb.Open(ctx, url)
	require.NoError(t, err, "connecting to the EventStoreDB at %s", URLVariable)
	t.Cleanup(func() { _ = s.Close() })

	t.Run("Suite", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) events.Store { return s })
	})

	// What the suite does not look at: the hash chain kept in the metadata.
	t.Run("HashChain", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		stream := "esdbchain-" + uuid.NewString()
		ev := func(label string) events.Event {
			return events.Event{Type: "TestHappened.v1", Data: []byte(`{"label":"` + label + `"}`),
				Metadata: events.Metadata{Actor: events.Actor{Role: "SYSTEM", DomainID: "d"}, Tenant: events.Tenant{DomainID: "d"}}}
		}
		first, err := s.Append(ctx, stream, events.NoStream, ev("a"), ev("b"))
		require.NoError(t, err)
		more, err := s.Append(ctx, stream, events.AnyVersion, ev("c"))
		require.NoError(t, err)
		recs := append(first, more...)
		prev := []byte(nil)
		for _, r := range recs {
			require.Len(t, r.Hash, events.HashSize, "every event carries its hash")
			require.NotEqual(t, prev, r.Hash)
			prev = r.Hash
		}
		require.NoError(t, s.VerifyStream(ctx, stream), "the chain links version 1 to the head")

		got, err := s.ReadVersion(ctx, stream, 2)
		require.NoError(t, err)
		require.Equal(t, recs[1].Hash, got.Hash)
		require.Equal(t, recs[1].Cursor, got.Cursor)
		_, err = s.ReadVersion(ctx, stream, 4)
		require.ErrorIs(t, err, events.ErrNotFound)

		head, err := s.Head(ctx)
		require.NoError(t, err)
		require.False(t, head.Before(recs[2].Cursor), "Head is at or after the last append")
	})
}
