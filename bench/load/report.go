package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Report is everything one run measured; it is written as JSON and printed
// as Markdown tables.
type Report struct {
	Date              string   `json:"date"`
	Command           string   `json:"command"`
	Revision          string   `json:"git_revision"`
	Machine           Machine  `json:"machine"`
	Config            Config   `json:"config"`
	EventPayloadBytes int      `json:"event_payload_bytes"`
	WorkingSet        int      `json:"working_set_secrets"`
	Results           []Result `json:"results"`
	Scale             *Scale   `json:"scale,omitempty"`
	ServerPeakRSSMB   float64  `json:"server_peak_rss_mb"`
	Targets           []Target `json:"targets"`
}

// Machine is where the run happened; the load generator shares it.
type Machine struct {
	Cores      int     `json:"cores"`
	MemoryGiB  float64 `json:"memory_gib"`
	CPU        string  `json:"cpu"`
	Kernel     string  `json:"kernel"`
	Go         string  `json:"go"`
	PostgreSQL string  `json:"postgresql"`
}

// Config is the run's settings.
type Config struct {
	DurationSeconds float64 `json:"duration_seconds"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	Concurrency     int     `json:"concurrency"`
	Scale           int     `json:"scale"`
}

// Scale is the large-data-set phase.
type Scale struct {
	Seed          SeedResult `json:"seed"`
	RebuildEvents int64      `json:"rebuild_events"`
	// RebuildEventsPerSec is RebuildEvents over the command's wall time.
	RebuildEventsPerSec float64             `json:"rebuild_events_per_sec"`
	RebuildWallSeconds  float64             `json:"rebuild_wall_seconds"`
	RebuildProjections  []RebuildProjection `json:"rebuild_projections"`
	// RebuildCPU: Server is the rebuild process itself.
	RebuildCPU CPUShare `json:"rebuild_cpu"`
	// UndeliveredEvents is how many events the subscribers had not been
	// handed when the rebuild finished (the seed bypasses them); OffsetsMoved
	// how many consumer groups the harness moved to their checkpoint.
	UndeliveredEvents    int64   `json:"undelivered_events_after_rebuild"`
	OffsetsMoved         int64   `json:"offsets_moved_to_checkpoint"`
	VacuumAnalyzeSeconds float64 `json:"vacuum_analyze_seconds"`
	// SettleSeconds is how long the restarted server took to go idle.
	SettleSeconds   float64 `json:"server_settle_seconds"`
	ReadModelRows   int64   `json:"read_model_rows"`
	BenchDomainRows int64   `json:"bench_domain_rows"`
	EventLogMB      int64   `json:"event_log_mb"`
	SecretsMB       int64   `json:"secrets_read_model_mb"`
}

// RebuildProjection is one line of `secretlog rebuild`'s report.
type RebuildProjection struct {
	Name         string  `json:"name"`
	Events       int64   `json:"events"`
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
}

// Target is one goal of the benchmark issue, measured against this run.
type Target struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	// Met is nil when the run did not measure it (or the feature is missing).
	Met *bool `json:"met"`
}

func newRand(seed uint64) *mrand.Rand {
	return mrand.New(mrand.NewPCG(seed, uint64(time.Now().UnixNano())))
}

func execCommand(ctx context.Context, bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	return cmd
}

func describeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					kb, _ := strconv.ParseFloat(f[0], 64)
					m.MemoryGiB = float64(int(kb/1024/1024*10+0.5)) / 10
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func (r *Report) find(name string, conc int) *Result {
	for i := range r.Results {
		if r.Results[i].Name == name && (conc == 0 || r.Results[i].Concurrency == conc) {
			return &r.Results[i]
		}
	}
	return nil
}

// evaluate fills in the ratios to the baselines, the peak RSS and the targets.
func (r *Report) evaluate() {
	for i := range r.Results {
		res := &r.Results[i]
		if res.Baseline == "" {
			continue
		}
		if b := r.find("baseline_"+res.Baseline, 0); b != nil && b.OpsPerSec > 0 {
			res.BaselineOpsPerSec = b.OpsPerSec
			res.Ratio = res.OpsPerSec / b.OpsPerSec
		}
		r.ServerPeakRSSMB = max(r.ServerPeakRSSMB, res.ServerPeakRSSMB)
	}
	conc := r.Config.Concurrency
	yes, no := true, false
	verdict := func(ok bool) *bool {
		if ok {
			return &yes
		}
		return &no
	}
	add := func(goal, measured string, met *bool) {
		r.Targets = append(r.Targets, Target{Goal: goal, Measured: measured, Met: met})
	}
	ratio := func(name string, goal float64) {
		g := fmt.Sprintf("%s ≥ %.0f%% of the baseline %s rate at concurrency %d", name, goal*100, baselineOf(name), conc)
		res := r.find(name, conc)
		switch {
		case res == nil:
			add(g, "not run", nil)
		case res.Unsupported || res.BaselineOpsPerSec == 0:
			add(g, "not measured", nil)
		default:
			add(g, fmt.Sprintf("%.0f%% (%.0f vs %.0f ops/s)", res.Ratio*100, res.OpsPerSec, res.BaselineOpsPerSec), verdict(res.Ratio >= goal))
		}
	}
	p99 := func(name string, c int, goalMS float64, label string) {
		g := fmt.Sprintf("%s p99 ≤ %.0f ms (concurrency %d)", label, goalMS, c)
		res := r.find(name, c)
		switch {
		case res == nil:
			add(g, "not run", nil)
		case res.Unsupported || res.Ops == 0:
			add(g, "unsupported: "+truncate(res.ErrorSample, 120), nil)
		default:
			add(g, fmt.Sprintf("%.1f ms", res.P99ms), verdict(res.P99ms <= goalMS))
		}
	}
	ratio("create", 0.5)
	p99("create", conc, 30, "create")
	ratio("update_spread", 0.5)
	p99("update_spread", conc, 30, "updateSecretData (many secrets)")
	ratio("update_hot", 0.5)
	p99("update_hot", conc, 30, "updateSecretData (one hot secret)")
	ratio("get", 0.4)
	if res := r.find("secretData", conc); res != nil {
		add("secretData ≥ 5,000/s", fmt.Sprintf("%.0f/s", res.OpsPerSec), verdict(res.OpsPerSec >= 5000))
	} else {
		add("secretData ≥ 5,000/s", "not run", nil)
	}
	label := fmt.Sprintf("at %d secrets: ", r.Config.Scale)
	p99("scale_list", 1, 20, label+"filtered+sorted+paged secrets")
	p99("scale_stat", 1, 300, label+"secretStat group by provider")
	if r.Scale != nil {
		add("rebuild ≥ 100,000 events/s", fmt.Sprintf("%.0f events/s (%d events)", r.Scale.RebuildEventsPerSec, r.Scale.RebuildEvents),
			verdict(r.Scale.RebuildEventsPerSec >= 100_000))
	} else {
		add("rebuild ≥ 100,000 events/s", "not run (-scale 0)", nil)
	}
	var lag float64
	var lagFrom []string
	for _, name := range []string{"create", "update_spread"} {
		if res := r.find(name, conc); res != nil && res.Lag != nil && res.Lag.Samples > 0 {
			lag = max(lag, res.Lag.P99ms)
			lagFrom = append(lagFrom, fmt.Sprintf("%s %.1f ms", name, res.Lag.P99ms))
		}
	}
	if lagFrom != nil {
		add("projection lag p99 ≤ 50 ms under the write load", strings.Join(lagFrom, ", "), verdict(lag <= 50))
	} else {
		add("projection lag p99 ≤ 50 ms under the write load", "not run", nil)
	}
	add("server RSS ≤ 150 MB under load", fmt.Sprintf("%.0f MB peak", r.ServerPeakRSSMB), verdict(r.ServerPeakRSSMB > 0 && r.ServerPeakRSSMB <= 150))
}

func baselineOf(name string) string {
	if strings.HasPrefix(name, "create") || strings.HasPrefix(name, "update") {
		return "INSERT"
	}
	return "SELECT"
}

func (r *Report) writeJSON(path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// print writes the results as Markdown tables (readable as they are, and
// pasted into the README).
func (r *Report) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\n%s — %d cores (%s), %.1f GiB, Linux %s, %s, PostgreSQL %s; load generator on the same machine\n",
		r.Date, m.Cores, m.CPU, m.MemoryGiB, m.Kernel, m.Go, m.PostgreSQL)
	fmt.Fprintf(w, "`%s` at %s: %gs per scenario after %gs warm-up; one encrypted event = %d bytes\n\n",
		r.Command, r.Revision, r.Config.DurationSeconds, r.Config.WarmupSeconds, r.EventPayloadBytes)
	fmt.Fprintln(w, "| scenario | c | ops/s | p50 ms | p95 ms | p99 ms | errors | baseline ops/s | ratio | server RSS MB | cores: server / postgres / load / other | per op: db tx / WAL fsync / WAL KB |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
	for _, res := range r.Results {
		errs := strconv.FormatInt(res.Errors, 10)
		if res.Unsupported {
			errs += " (unsupported)"
		} else if res.Errors > 0 {
			var codes []string
			for k, v := range res.ErrorCodes {
				codes = append(codes, fmt.Sprintf("%s %d", k, v))
			}
			errs += " (" + strings.Join(codes, ", ") + ")"
		}
		base, ratio := "", ""
		if res.BaselineOpsPerSec > 0 {
			base = fmt.Sprintf("%.0f %s", res.BaselineOpsPerSec, strings.ToLower(baselineOf(res.Name)))
			ratio = fmt.Sprintf("%.2f", res.Ratio)
		}
		rss := ""
		if res.ServerPeakRSSMB > 0 {
			rss = fmt.Sprintf("%.0f", res.ServerPeakRSSMB)
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s | %s | %s | %s | %s | %.2f / %.2f / %.2f / %.2f | %s / %s / %s |\n",
			res.Name, res.Concurrency, res.OpsPerSec, num(res.P50ms), num(res.P95ms), num(res.P99ms), errs, base, ratio, rss,
			res.CPU.Server, res.CPU.Postgres, res.CPU.Load, res.CPU.Other, num(res.TxPerOp), num(res.WALSyncPerOp), num(res.WALKBPerOp))
	}
	var disturbed []string
	for _, res := range r.Results {
		if res.CPU.Other > 0.15 {
			disturbed = append(disturbed, fmt.Sprintf("%s (%.2f cores)", res.Name, res.CPU.Other))
		}
	}
	if disturbed != nil {
		fmt.Fprintf(w, "\nWarning: other work on the machine used CPU during %s; those numbers are low.\n", strings.Join(disturbed, ", "))
	}
	var lagRows []Result
	for _, res := range r.Results {
		if res.Lag != nil {
			lagRows = append(lagRows, res)
		}
	}
	if len(lagRows) > 0 {
		fmt.Fprintln(w, "\nProjection lag: from a mutation's answer until a second client's `secrets(secretId:)` shows it")
		fmt.Fprintln(w, "\n| under | samples | p50 ms | p95 ms | p99 ms | max ms | visible on first query | not visible in 5 s | observer query p50 ms |")
		fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|--:|--:|")
		for _, res := range lagRows {
			l := res.Lag
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %.1f%% | %d | %s |\n", res.Name, l.Samples, num(l.P50ms), num(l.P95ms),
				num(l.P99ms), num(l.Maxms), l.VisibleFirstPoll, l.Timeouts, num(l.QueryP50ms))
		}
	}
	if s := r.Scale; s != nil {
		var per []string
		for _, p := range s.RebuildProjections {
			per = append(per, fmt.Sprintf("%s %.1f s, %.0f events/s", p.Name, p.Seconds, p.EventsPerSec))
		}
		fmt.Fprintf(w, "\nScale: %d secrets seeded as SecretCreated.v1 events in %.0f s (%.0f events/s; %d domains, %d rows in the caller's domain). "+
			"`secretlog rebuild` replayed the %d-event log in %.1f s = **%.0f events/s** (%s; cores: rebuild %.2f, postgres %.2f, other %.2f). "+
			"Delivery offsets of %d subscribers moved to their checkpoints (%d seeded events never delivered). VACUUM ANALYZE secrets %.1f s; "+
			"the restarted server was idle after %.0f s; event_log %d MB, secrets read model %d MB.\n",
			s.Seed.Secrets, s.Seed.Seconds, s.Seed.EventsPerSec, s.Seed.Domains, s.BenchDomainRows, s.RebuildEvents, s.RebuildWallSeconds,
			s.RebuildEventsPerSec, strings.Join(per, "; "), s.RebuildCPU.Server, s.RebuildCPU.Postgres, s.RebuildCPU.Other,
			s.OffsetsMoved, s.UndeliveredEvents, s.VacuumAnalyzeSeconds, s.SettleSeconds, s.EventLogMB, s.SecretsMB)
	}
	fmt.Fprintln(w, "\n| target | measured | met |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, t := range r.Targets {
		met := "not measured"
		if t.Met != nil {
			met = map[bool]string{true: "yes", false: "**no**"}[*t.Met]
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.Goal, t.Measured, met)
	}
	fmt.Fprintln(w)
}
