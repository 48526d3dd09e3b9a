package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// These tests cover the harness's arithmetic and parsing only; they never
// start a cluster or a server (run the harness with go run ./bench/load).

func TestPercentileIsNearestRank(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, percentile(d, 0.50))
	require.Equal(t, 99*time.Millisecond, percentile(d, 0.99))
	require.Equal(t, 100*time.Millisecond, percentile(d, 1))
	require.Equal(t, time.Millisecond, percentile(d[:1], 0.99))
	require.Zero(t, percentile(nil, 0.5))
}

func TestRebuildOutputIsParsed(t *testing.T) {
	t.Parallel()
	out := "rebuilt secrets from 1000257 events in 1m2.5s (16004 events/s)\n" +
		"rebuilt user_secrets from 1000257 events in 58.1s (17216 events/s)\n"
	m := rebuildLine.FindAllStringSubmatch(out, -1)
	require.Len(t, m, 2)
	require.Equal(t, []string{"secrets", "1000257", "1m2.5s", "16004"}, m[0][1:])
	old := rebuildLine.FindAllStringSubmatch("rebuilt read models from 42 events in 10ms (4200 events/s)\n", -1)
	require.Len(t, old, 1)
	require.Equal(t, "read models", old[0][1])
}

func TestSeedIDsAreValidAndDistinct(t *testing.T) {
	t.Parallel()
	s := &seeder{runTag: 0xbeef}
	require.Equal(t, "secret-beef00000000", s.secretID(0))
	require.Equal(t, "secret-beef000f4240", s.secretID(1_000_000))
	require.Len(t, s.secretID(1_000_000), len("secret-")+12)
	require.Equal(t, benchDomain, seedDomain(0))
	require.NotEqual(t, benchDomain, seedDomain(1))
}

func TestTargetsUseTheBaselineRatio(t *testing.T) {
	t.Parallel()
	r := Report{Config: Config{Concurrency: 32}, Results: []Result{
		{Name: "baseline_insert", Concurrency: 32, OpsPerSec: 1000},
		{Name: "create", Concurrency: 32, Baseline: "insert", OpsPerSec: 600, P99ms: 20, Ops: 6000},
	}}
	r.evaluate()
	require.InDelta(t, 0.6, r.Results[1].Ratio, 1e-9)
	require.NotNil(t, r.Targets[0].Met)
	require.True(t, *r.Targets[0].Met)
	require.True(t, *r.Targets[1].Met)
}
