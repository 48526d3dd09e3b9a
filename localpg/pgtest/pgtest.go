// Package pgtest gives each test its own database on one private PostgreSQL
// cluster started per test binary.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/secretlog/secretlog/localpg"
)

var (
	cluster *localpg.Cluster
	counter atomic.Int64
	mu      sync.Mutex
)

// Main starts the cluster, runs the tests and stops the cluster. Use it from TestMain.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "secretlog-pg-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cluster, err = localpg.Start(context.Background(), localpg.Options{Dir: dir, Install: true, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	_ = cluster.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Cluster is the running test cluster.
func Cluster() *localpg.Cluster { return cluster }

// NewDatabase creates a fresh empty database and returns its URL.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	if cluster == nil {
		tb.Fatal("pgtest: call pgtest.Main from TestMain")
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), counter.Add(1))
	mu.Lock()
	defer mu.Unlock()
	if err := cluster.CreateDatabase(context.Background(), name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	return cluster.URL(name)
}
