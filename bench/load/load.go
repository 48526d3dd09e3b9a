package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// maxOpsPerWorker bounds every scenario loop in count as well as in time.
const maxOpsPerWorker = 2_000_000

// worker is one concurrent client of a scenario.
type worker struct {
	id  int
	rng *rand.Rand
	n   int
	buf []byte // scratch owned by the worker
}

// opFunc runs one operation.
type opFunc func(ctx context.Context, w *worker) error

// Result is one scenario run: throughput and latency of its successful
// operations, its errors, and the server's peak memory while it ran.
type Result struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Concurrency int      `json:"concurrency"`
	Seconds     float64  `json:"seconds"`
	Ops         int64    `json:"ops"`
	OpsPerSec   float64  `json:"ops_per_sec"`
	P50ms       float64  `json:"p50_ms"`
	P95ms       float64  `json:"p95_ms"`
	P99ms       float64  `json:"p99_ms"`
	Maxms       float64  `json:"max_ms"`
	Errors      int64    `json:"errors"`
	ErrorCodes  ErrCount `json:"error_codes,omitempty"`
	ErrorSample string   `json:"error_sample,omitempty"`
	Unsupported bool     `json:"unsupported,omitempty"`
	// Baseline names the PostgreSQL baseline this scenario is compared to.
	Baseline          string   `json:"baseline,omitempty"`
	BaselineOpsPerSec float64  `json:"baseline_ops_per_sec,omitempty"`
	Ratio             float64  `json:"ratio_to_baseline,omitempty"`
	ServerPeakRSSMB   float64  `json:"server_peak_rss_mb,omitempty"`
	CPU               CPUShare `json:"cpu"`
	// Database work per successful operation, from pg_stat_database and pg_stat_wal.
	TxPerOp      float64 `json:"db_transactions_per_op"`
	WALSyncPerOp float64 `json:"wal_fsyncs_per_op"`
	WALKBPerOp   float64 `json:"wal_kb_per_op"`
	Lag          *Lag    `json:"projection_lag,omitempty"`
	// SettleSeconds is how long the run waited for the server and the
	// database to go idle before this scenario.
	SettleSeconds float64 `json:"settle_seconds"`
}

// ErrCount counts errors by code.
type ErrCount map[string]int64

// scenario is one named load.
type scenario struct {
	name        string
	description string
	baseline    string // "insert", "select" or ""
	concurrency int
	op          opFunc
	// lag, when set, observes projection lag during the measured window.
	lag *lagObserver
}

// runner drives scenarios with a fixed warm-up and measured duration.
type runner struct {
	duration, warmup time.Duration
	server           func() *serverProc // the server to watch (nil: none)
	postmaster       int                // the cluster's postmaster pid
	dbStats          func(context.Context) (dbStats, error)
	// settle waits for the server and the database to go idle (background
	// work left by the previous scenario) and returns the seconds waited.
	settle     func(context.Context) float64
	profileDir string
}

func (r *runner) run(ctx context.Context, sc scenario) Result {
	res := Result{Name: sc.name, Description: sc.description, Concurrency: sc.concurrency, Baseline: sc.baseline}
	if r.settle != nil {
		res.SettleSeconds = round2(r.settle(ctx))
	}
	srv := r.server()
	pid := 0
	if srv != nil {
		pid = srv.pid
	}
	fmt.Fprintf(os.Stderr, "  %-16s c=%-3d %s + %s warm-up ... ", sc.name, sc.concurrency, r.duration, r.warmup)

	start := time.Now()
	from := start.Add(r.warmup)
	end := from.Add(r.duration)
	lat := make([][]time.Duration, sc.concurrency)
	errs := make([]ErrCount, sc.concurrency)
	var sample atomic.Value
	var wg sync.WaitGroup
	for i := range sc.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{id: i, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))}
			errs[i] = ErrCount{}
			for ; w.n < maxOpsPerWorker; w.n++ {
				t0 := time.Now()
				if !t0.Before(end) || ctx.Err() != nil {
					return
				}
				err := sc.op(ctx, w)
				d := time.Since(t0)
				if t0.Before(from) {
					continue
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					errs[i][errorCode(err)]++
					sample.CompareAndSwap(nil, err.Error())
					continue
				}
				lat[i] = append(lat[i], d)
			}
		}()
	}

	// At the start of the measured window: reset the peak RSS, start the
	// observers and the profile, take the CPU counters.
	var peakKB atomic.Int64
	hwmReset := false
	var cpu0 cpuSnapshot
	var profileDone chan error
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	select {
	case <-time.After(time.Until(from)):
	case <-ctx.Done():
	}
	if pid > 0 {
		hwmReset = resetPeakRSS(pid)
		go func() {
			defer close(watchDone)
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for {
				if kb, err := procStatusKB(pid, "VmRSS"); err == nil && kb > peakKB.Load() {
					peakKB.Store(kb)
				}
				select {
				case <-stopWatch:
					return
				case <-t.C:
				}
			}
		}()
	} else {
		close(watchDone)
	}
	if sc.lag != nil {
		sc.lag.start(ctx)
	}
	if srv != nil && srv.pprof != "" && r.profileDir != "" {
		profileDone = make(chan error, 1)
		go func() {
			profileDone <- captureProfile(ctx, srv.pprof, r.duration, r.profileDir, sc.name, sc.concurrency)
		}()
	}
	var db0 dbStats
	if r.dbStats != nil {
		db0, _ = r.dbStats(ctx)
	}
	cpu0 = takeCPU(pid, r.postmaster)

	wg.Wait()
	cpu1 := takeCPU(pid, r.postmaster)
	elapsed := time.Since(from)
	var db1 dbStats
	if r.dbStats != nil {
		// Idle backends report their counters within a second.
		time.Sleep(1100 * time.Millisecond)
		db1, _ = r.dbStats(ctx)
	}
	close(stopWatch)
	<-watchDone
	if sc.lag != nil {
		res.Lag = sc.lag.stop()
	}
	if pid > 0 {
		if hwmReset {
			if kb, err := procStatusKB(pid, "VmHWM"); err == nil && kb > peakKB.Load() {
				peakKB.Store(kb)
			}
		}
		res.ServerPeakRSSMB = float64(peakKB.Load()) / 1024
	}
	if profileDone != nil {
		if err := <-profileDone; err != nil {
			fmt.Fprintf(os.Stderr, "(profile: %v) ", err)
		}
	}

	all := slices.Concat(lat...)
	slices.Sort(all)
	res.Seconds = elapsed.Seconds()
	res.Ops = int64(len(all))
	res.OpsPerSec = float64(len(all)) / elapsed.Seconds()
	res.P50ms, res.P95ms, res.P99ms = ms(percentile(all, 0.50)), ms(percentile(all, 0.95)), ms(percentile(all, 0.99))
	if len(all) > 0 {
		res.Maxms = ms(all[len(all)-1])
	}
	res.ErrorCodes = ErrCount{}
	for _, e := range errs {
		for k, v := range e {
			res.ErrorCodes[k] += v
			res.Errors += v
		}
	}
	if res.Errors == 0 {
		res.ErrorCodes = nil
	}
	if s, ok := sample.Load().(string); ok {
		res.ErrorSample = truncate(s, 300)
	}
	res.Unsupported = res.Ops == 0 && res.ErrorCodes["INVALID_ARGUMENT"] > 0
	res.CPU = cpuBetween(cpu0, cpu1)
	if res.Ops > 0 && db1.xacts > 0 {
		n := float64(res.Ops)
		res.TxPerOp = round2(float64(db1.xacts-db0.xacts) / n)
		res.WALSyncPerOp = round2(float64(db1.walSyncs-db0.walSyncs) / n)
		res.WALKBPerOp = round2(float64(db1.walBytes-db0.walBytes) / 1024 / n)
	}
	fmt.Fprintf(os.Stderr, "%.0f ops/s, p99 %.1f ms, %d errors\n", res.OpsPerSec, res.P99ms, res.Errors)
	return res
}

// dbStats are cluster-wide counters: committed and rolled back transactions
// (all databases), WAL fsyncs and WAL bytes.
type dbStats struct {
	xacts, walSyncs, walBytes int64
}

// pgStats reads dbStats. Backends report their counters to the statistics
// system when idle and at least once a second, so short windows are approximate.
func pgStats(pool *pgxpool.Pool) func(context.Context) (dbStats, error) {
	return func(ctx context.Context) (dbStats, error) {
		var s dbStats
		err := pool.QueryRow(ctx, `SELECT (SELECT sum(xact_commit + xact_rollback)::bigint FROM pg_stat_database),
			wal_sync, wal_bytes::bigint FROM pg_stat_wal`).Scan(&s.xacts, &s.walSyncs, &s.walBytes)
		return s, err
	}
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// errorCode is the GraphQL error code of err, or a transport class.
func errorCode(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "TIMEOUT"
	}
	return "TRANSPORT"
}

// captureProfile records the server's CPU profile for d into dir.
func captureProfile(ctx context.Context, addr string, d time.Duration, dir, name string, conc int) error {
	secs := max(1, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(fmt.Sprintf("%s/%s-c%d.cpu.pprof", dir, name, conc))
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}
