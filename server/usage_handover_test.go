package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/projections"
)

// TestUsageLeaseHandoverWhileApplying: the server running the usage
// projection stops (Server.Close, as on a deploy) while it is applying a
// read. Its consumer must stop cleanly: the handler and the watermill-sql
// subscriber must not use the consuming transaction's connection at the
// same time (a data race under -race), and the read must be counted exactly
// once once the other server has taken the lease over.
//
// The handler is held inside its write by a lock the test takes on the
// resource_usage table, so the stop reliably lands while it runs.
//
// Not parallel: a data race fails every test running at the time, so this
// one runs alone.
func TestUsageLeaseHandoverWhileApplying(t *testing.T) {
	c := newMSCluster(t, 2, false)
	leader, _ := c.waitLeader(projections.UsageProjectionName, 10*time.Second)
	other := 1 - leader
	admin := c.admin("d-handover")
	system := c.token(auth.Identity{Role: auth.RoleSystem, DomainID: "d-handover"})
	id := c.nodes[other].createSecret(admin, map[string]any{"name": "handover", "resourceGroup": "DOMAIN",
		"data": map[string]any{"token": "t"}})
	reveal := func(node int) {
		t.Helper()
		r := doGraphQL(t, c.urls[node], system, `query($id: ID!) { secretData(secretId: $id) { data } }`, map[string]any{"id": id})
		require.Empty(t, r.Errors)
	}
	reads := func() int64 {
		t.Helper()
		type row struct{ Reads int64 }
		rows := msQuery[row](t, c.DatabaseURL, `SELECT reads FROM resource_usage WHERE resource_id = $1`, id)
		if len(rows) == 0 {
			return 0
		}
		return rows[0].Reads
	}
	waitReads := func(want int64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for reads() != want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		require.Equal(t, want, reads(), "reads of %s counted by the usage projection", id)
	}
	reveal(other)
	waitReads(1, 10*time.Second)

	// Hold the usage table, read again: the leader's handler blocks in its write.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lock, err := pgx.Connect(ctx, c.DatabaseURL)
	require.NoError(t, err)
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	// A table lock takes no transaction id, so it does not hold the
	// consumer's commit-order horizon back (a row lock would).
	_, err = tx.Exec(ctx, `LOCK TABLE resource_usage IN SHARE MODE`)
	require.NoError(t, err)
	reveal(other)
	app := fmt.Sprintf("secretlog-node-%d", leader)
	for start := time.Now(); ; {
		type activity struct {
			App, State, Wait, Query string
		}
		acts := msQuery[activity](t, c.DatabaseURL, `SELECT coalesce(application_name, ''), coalesce(state, ''),
			coalesce(wait_event_type, ''), coalesce(query, '') FROM pg_stat_activity WHERE datname = current_database()`)
		waiting := false
		for _, a := range acts {
			waiting = waiting || (a.App == app && a.Wait == "Lock")
		}
		if waiting {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the leader's usage handler never waited on the table lock: %+v", acts)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Stop the leader while its handler waits; let the handler go on a
	// moment later.
	s := c.nodes[leader]
	c.killed[leader].Store(true)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s.stop()
	}()
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, tx.Rollback(ctx))
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("the leader did not stop within 30s")
	}

	// The other server takes over and counts the second read exactly once.
	next, took := c.waitLeader(projections.UsageProjectionName, 10*time.Second)
	require.Equal(t, other, next)
	t.Logf("node %d took the usage lease over %s after the stop", next, took.Round(time.Millisecond))
	waitReads(2, 10*time.Second)
	reveal(other)
	waitReads(3, 10*time.Second)
	time.Sleep(time.Second)
	require.Equal(t, int64(3), reads(), "a read counted twice after the handover")

	// A stop is no failure: the stopped server logged no error (watermill-sql
	// logs "could not commit tx for querying message: conn busy" when it
	// commits the consuming transaction under a handler still using it).
	var errorLines []string
	for _, line := range strings.Split(s.Logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			errorLines = append(errorLines, line)
		}
	}
	require.Empty(t, errorLines, "errors logged by the stopped leader")
}
