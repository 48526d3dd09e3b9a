// Command load is secretlog's benchmark harness. It starts a private durable
// PostgreSQL cluster, builds and runs `secretlog serve` as a separate process,
// drives the GraphQL API over HTTP with N concurrent clients for a fixed time
// per scenario, and compares every scenario with what the same PostgreSQL does
// on its own at the same concurrency (single-row durable INSERTs of an
// event-sized payload, primary-key SELECTs). With -scale it then seeds a large
// data set into the log, rebuilds the read models with `secretlog rebuild`
// and measures list and stat at that size.
//
//	go run ./bench/load                                  # quick look, 10s per scenario
//	go run ./bench/load -scale 1000000 -json bench/results/latest.json
//
// Everything runs on 127.0.0.1 in a temporary directory that is removed at
// the end (-keep keeps it).
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg"
	"github.com/secretlog/secretlog/query"
)

// benchDomain is the tenant the load clients belong to.
const benchDomain = "domain-bench"

type options struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	scale       int
	jsonPath    string
	scenarios   map[string]bool
	profileDir  string
	dir         string
	keep        bool
}

func (o options) want(name string) bool { return len(o.scenarios) == 0 || o.scenarios[name] }

func main() {
	var o options
	var only string
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up before each scenario")
	flag.IntVar(&o.concurrency, "concurrency", 32, "concurrent clients (and baseline connections)")
	flag.IntVar(&o.scale, "scale", 0, "secrets to seed for the scale phase (0: skip it; the full run uses 1000000)")
	flag.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file")
	flag.StringVar(&only, "scenarios", "", "comma-separated scenarios to run (default all): "+strings.Join(allScenarios, ","))
	flag.StringVar(&o.profileDir, "pprof", "", "capture a server CPU profile per scenario into this directory (sets SECRETLOG_PPROF)")
	flag.StringVar(&o.dir, "dir", "", "work directory (default: a new temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory (cluster, server log) afterwards")
	flag.Parse()
	if o.concurrency < 1 || o.duration <= 0 || o.warmup < 0 || o.scale < 0 {
		fmt.Fprintln(os.Stderr, "bench: -concurrency must be >= 1, -duration > 0, -warmup and -scale >= 0")
		os.Exit(2)
	}
	if only != "" {
		o.scenarios = map[string]bool{}
		for _, s := range strings.Split(only, ",") {
			s = strings.TrimSpace(s)
			if !known(s) {
				fmt.Fprintf(os.Stderr, "bench: unknown scenario %q (known: %s)\n", s, strings.Join(allScenarios, ", "))
				os.Exit(2)
			}
			o.scenarios[s] = true
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, strings.Join(os.Args[1:], " ")); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var allScenarios = []string{"baseline_insert", "baseline_select", "create", "update_spread", "update_hot", "get",
	"secretData", "list", "stat", "scale_list", "scale_stat", "scale_sql_list", "scale_sql_stat"}

func known(s string) bool {
	for _, k := range allScenarios {
		if k == s {
			return true
		}
	}
	return false
}

// harness is one benchmark run's state.
type harness struct {
	o        options
	dir      string
	bin      string
	cluster  *localpg.Cluster
	svcURL   string
	env      []string
	keyring  *events.Keyring
	kekID    string
	kek      []byte
	tokenKey []byte
	signer   *auth.Signer
	mu       sync.Mutex
	srv      *serverProc
	runner   *runner
	admin    string // DOMAIN_ADMIN token of benchDomain
	observer string // a second DOMAIN_ADMIN client, for projection lag
	system   string // SYSTEM token (reads values)
	pool     idPool
	hotID    string
	report   Report
}

func (h *harness) server() *serverProc {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.srv
}

func (h *harness) setServer(s *serverProc) {
	h.mu.Lock()
	h.srv = s
	h.mu.Unlock()
}

func run(ctx context.Context, o options, args string) (err error) {
	h := &harness{o: o}
	h.report.Command = strings.TrimSpace("go run ./bench/load " + args)
	h.report.Date = time.Now().UTC().Format(time.RFC3339)
	h.report.Machine = describeMachine()
	h.report.Revision = gitRevision(ctx)
	h.report.Config = Config{DurationSeconds: o.duration.Seconds(), WarmupSeconds: o.warmup.Seconds(), Concurrency: o.concurrency, Scale: o.scale}

	h.dir = o.dir
	if h.dir == "" {
		if h.dir, err = os.MkdirTemp("", "secretlog-bench-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return err
	}
	if h.dir, err = filepath.Abs(h.dir); err != nil {
		return err
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	defer func() {
		h.server().stop()
		if h.cluster != nil {
			_ = h.cluster.Stop()
		}
		if o.keep || err != nil {
			fmt.Fprintf(os.Stderr, "work directory kept: %s\n", h.dir)
		} else {
			_ = os.RemoveAll(h.dir)
		}
	}()

	fmt.Fprintf(os.Stderr, "bench: %d cores, %.1f GiB; work directory %s\n", h.report.Machine.Cores, h.report.Machine.MemoryGiB, h.dir)
	fmt.Fprintln(os.Stderr, "bench: building ./cmd/secretlog")
	if h.bin, err = buildBinary(ctx, h.dir); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bench: starting a private durable PostgreSQL cluster")
	h.cluster, err = localpg.Start(ctx, localpg.Options{Dir: filepath.Join(h.dir, "postgres"), Durable: true, Install: true, Log: os.Stderr})
	if err != nil {
		return err
	}
	for _, db := range []string{"secretlog", "baseline"} {
		if err := h.cluster.CreateDatabase(ctx, db); err != nil {
			return fmt.Errorf("create database %s: %w", db, err)
		}
	}
	h.svcURL = h.cluster.URL("secretlog")
	postmaster := postmasterPID(filepath.Join(h.dir, "postgres", "pgdata"))
	h.report.Machine.PostgreSQL = postgresVersion(ctx, h.svcURL)

	if err := h.keys(); err != nil {
		return err
	}
	h.env = serviceEnv("SECRETLOG_DATABASE_URL="+h.svcURL, "SECRETLOG_MASTER_KEY="+h.kekID+":"+base64.StdEncoding.EncodeToString(h.kek),
		"SECRETLOG_TOKEN_KEY="+base64.StdEncoding.EncodeToString(h.tokenKey), "SECRETLOG_DATA_DIR="+filepath.Join(h.dir, "data"),
		"SECRETLOG_LOG_FORMAT=json",
		// The clients stand for many services of one domain: lift the
		// per-caller and per-domain fairness bounds above the concurrency.
		fmt.Sprintf("SECRETLOG_MAX_CALLER_CONCURRENCY=%d", 2*o.concurrency),
		fmt.Sprintf("SECRETLOG_MAX_DOMAIN_CONCURRENCY=%d", 2*o.concurrency))
	statsPool, err := pgxpool.New(ctx, h.cluster.URL("postgres")+"&pool_max_conns=1")
	if err != nil {
		return err
	}
	defer statsPool.Close()
	h.runner = &runner{duration: o.duration, warmup: o.warmup, server: h.server, postmaster: postmaster,
		dbStats: pgStats(statsPool), profileDir: o.profileDir,
		settle: func(ctx context.Context) float64 { return h.settle(ctx, 30*time.Second) }}

	if err := h.startServer(ctx); err != nil {
		return err
	}
	if err := h.loadPhase(ctx); err != nil {
		return err
	}
	if o.scale > 0 {
		if err := h.scalePhase(ctx); err != nil {
			return err
		}
	}
	h.report.evaluate()
	h.report.print(os.Stdout)
	if o.jsonPath != "" {
		if err := h.report.writeJSON(o.jsonPath); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: results written to %s\n", o.jsonPath)
	}
	return ctx.Err()
}

// keys makes a fresh keyring and token key shared by the harness and the server.
func (h *harness) keys() error {
	h.kekID = "bench-1"
	h.kek = make([]byte, 32)
	h.tokenKey = make([]byte, 32)
	if _, err := rand.Read(h.kek); err != nil {
		return err
	}
	if _, err := rand.Read(h.tokenKey); err != nil {
		return err
	}
	var err error
	if h.keyring, err = events.ParseKeyring(h.kekID + ":" + base64.StdEncoding.EncodeToString(h.kek)); err != nil {
		return err
	}
	if h.signer, err = auth.NewSigner(h.tokenKey); err != nil {
		return err
	}
	mint := func(id auth.Identity) string {
		if err != nil {
			return ""
		}
		var tok string
		tok, err = h.signer.Mint(id, 24*time.Hour)
		return tok
	}
	h.admin = mint(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: benchDomain, UserID: "bench-admin"})
	h.observer = mint(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: benchDomain, UserID: "bench-observer"})
	h.system = mint(auth.Identity{Role: auth.RoleSystem, DomainID: benchDomain, Subject: "bench-system"})
	return err
}

func (h *harness) startServer(ctx context.Context) error {
	fmt.Fprintln(os.Stderr, "bench: starting secretlog serve")
	srv, err := startServer(ctx, h.bin, h.env, filepath.Join(h.dir, "server.log"), h.o.profileDir != "")
	if err != nil {
		return err
	}
	h.setServer(srv)
	return nil
}

func (h *harness) stopServer() {
	h.server().stop()
	h.setServer(nil)
}

func (h *harness) add(r Result) {
	h.report.Results = append(h.report.Results, r)
}

// loadPhase runs the baselines and the API scenarios on a small data set.
func (h *harness) loadPhase(ctx context.Context) error {
	o := h.o
	c := newAPI(h.server().base, o.concurrency)
	// Setup: a hot secret and a pool of secrets to read and update.
	fmt.Fprintln(os.Stderr, "bench: creating the working set (1 hot secret, 256 others)")
	rng := newRand(1)
	var hot mutationAnswer
	if err := c.call(ctx, h.admin, createSecretMutation, map[string]any{"in": createInput(rng, 0, 0)}, &struct {
		CreateSecret *mutationAnswer `json:"createSecret"`
	}{&hot}); err != nil {
		return fmt.Errorf("create the hot secret: %w", err)
	}
	h.hotID = hot.SecretID
	if err := h.createMany(ctx, c, 256); err != nil {
		return err
	}
	size, err := h.eventPayloadBytes(ctx)
	if err != nil {
		return err
	}
	h.report.EventPayloadBytes = size
	fmt.Fprintf(os.Stderr, "bench: one encrypted SecretCreated event is %d bytes (data + metadata)\n", size)

	// Baselines, on the same cluster, with the service idle.
	bpool, err := pgxpool.New(ctx, h.cluster.URL("baseline")+"&pool_max_conns="+strconv.Itoa(o.concurrency+2))
	if err != nil {
		return err
	}
	defer bpool.Close()
	if _, err := bpool.Exec(ctx, baselineDDL); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bench: PostgreSQL baselines")
	needInsert := o.want("baseline_insert") || o.want("create") || o.want("update_spread") || o.want("update_hot")
	needSelect := o.want("baseline_select") || o.want("get") || o.want("secretData") || o.want("list") || o.want("stat") ||
		(o.scale > 0 && (o.want("scale_list") || o.want("scale_stat")))
	if needInsert {
		h.add(h.runner.run(ctx, scenario{name: "baseline_insert", concurrency: o.concurrency,
			description: fmt.Sprintf("PostgreSQL alone: single-row durable INSERT of %d random bytes, autocommit", size),
			op:          baselineInsert(bpool, size)}))
	}
	if needSelect {
		maxID, err := prepareSelectBaseline(ctx, bpool, size)
		if err != nil {
			return err
		}
		h.add(h.runner.run(ctx, scenario{name: "baseline_select", concurrency: o.concurrency,
			description: fmt.Sprintf("PostgreSQL alone: primary-key SELECT of one %d-byte row out of %d", size, maxID),
			op:          baselineSelect(bpool, maxID)}))
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	fmt.Fprintln(os.Stderr, "bench: API scenarios")
	obs := newLagObserver(newAPI(h.server().base, 4), h.observer, 2)
	list := func(ws string, rng *mrand.Rand) map[string]any {
		return map[string]any{"ws": ws, "q": map[string]any{
			"filter": []any{map[string]any{"k": "tags.env", "v": "prod", "o": "eq"}},
			"sort":   []any{map[string]any{"key": "createdAt", "desc": true}},
			"page":   map[string]any{"start": 1 + 20*rng.IntN(5), "limit": 20},
		}}
	}
	scenarios := []scenario{
		{name: "create", baseline: "insert", lag: obs, description: "createSecret (aws_access_key, PROJECT scope, tags); lag observed by a second client",
			op: func(ctx context.Context, w *worker) error {
				var out struct {
					CreateSecret mutationAnswer `json:"createSecret"`
				}
				if err := c.call(ctx, h.admin, createSecretMutation, map[string]any{"in": createInput(w.rng, w.id, w.n)}, &out); err != nil {
					return err
				}
				h.pool.add(out.CreateSecret.SecretID)
				obs.offer(out.CreateSecret.SecretID, out.CreateSecret.Version)
				return nil
			}},
		{name: "update_spread", baseline: "insert", lag: obs, description: "updateSecretData on a random secret of the working set; lag observed by a second client",
			op: func(ctx context.Context, w *worker) error {
				var out struct {
					UpdateSecretData mutationAnswer `json:"updateSecretData"`
				}
				in := map[string]any{"secretId": h.pool.pick(w.rng), "data": awsData(w.rng)}
				if err := c.call(ctx, h.admin, updateDataMutation, map[string]any{"in": in}, &out); err != nil {
					return err
				}
				obs.offer(out.UpdateSecretData.SecretID, out.UpdateSecretData.Version)
				return nil
			}},
		{name: "update_hot", baseline: "insert", description: "updateSecretData, every client on the same secret",
			op: func(ctx context.Context, w *worker) error {
				in := map[string]any{"secretId": h.hotID, "data": awsData(w.rng)}
				return c.call(ctx, h.admin, updateDataMutation, map[string]any{"in": in}, nil)
			}},
		{name: "get", baseline: "select", description: "secret(secretId) of a random secret of the working set",
			op: func(ctx context.Context, w *worker) error {
				return c.call(ctx, h.admin, getSecretQuery, map[string]any{"id": h.pool.pick(w.rng)}, nil)
			}},
		{name: "secretData", baseline: "select", description: "secretData(secretId) as SYSTEM: load stream, unwrap key, decrypt",
			op: func(ctx context.Context, w *worker) error {
				return c.call(ctx, h.system, secretDataQuery, map[string]any{"id": h.pool.pick(w.rng)}, nil)
			}},
		{name: "list", baseline: "select", description: "secrets(workspaceId, filter tags.env=prod, sort createdAt desc, page of 20)",
			op: func(ctx context.Context, w *worker) error {
				return c.call(ctx, h.admin, listSecretsQuery, list(fmt.Sprintf("ws-%d", w.rng.IntN(8)), w.rng), nil)
			}},
		{name: "stat", baseline: "select", description: "secretStat group by provider, count",
			op: func(ctx context.Context, w *worker) error {
				return c.call(ctx, h.admin, statQuery, map[string]any{"q": groupByProvider}, nil)
			}},
	}
	for _, sc := range scenarios {
		if !o.want(sc.name) {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		sc.concurrency = o.concurrency
		h.add(h.runner.run(ctx, sc))
	}
	h.report.WorkingSet = h.pool.size()
	return ctx.Err()
}

// createMany creates n secrets through the API with the configured concurrency.
func (h *harness) createMany(ctx context.Context, c *api, n int) error {
	var wg sync.WaitGroup
	errc := make(chan error, h.o.concurrency)
	next := make(chan int)
	for w := range h.o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := newRand(uint64(w) + 100)
			for i := range next {
				var out struct {
					CreateSecret mutationAnswer `json:"createSecret"`
				}
				if err := c.call(ctx, h.admin, createSecretMutation, map[string]any{"in": createInput(rng, w, i)}, &out); err != nil {
					errc <- err
					return
				}
				h.pool.add(out.CreateSecret.SecretID)
			}
		}()
	}
	var err error
feed:
	for i := range n {
		select {
		case next <- i:
		case err = <-errc:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	if err != nil {
		return fmt.Errorf("create the working set: %w", err)
	}
	return nil
}

func (h *harness) eventPayloadBytes(ctx context.Context) (int, error) {
	pool, err := pgxpool.New(ctx, h.svcURL)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	var n int
	err = pool.QueryRow(ctx, `SELECT round(avg(octet_length(data) + octet_length(metadata::text)))::int
		FROM event_log WHERE type = $1`, events.SecretCreatedV1).Scan(&n)
	return n, err
}

var rebuildLine = regexp.MustCompile(`rebuilt (.+?) from (\d+) events in (\S+) \((\d+) events/s\)`)

// scalePhase seeds the log, rebuilds the read models and measures list and stat.
func (h *harness) scalePhase(ctx context.Context) error {
	o := h.o
	fmt.Fprintf(os.Stderr, "bench: scale phase: stopping the server and seeding %d secrets into the log\n", o.scale)
	h.stopServer()
	pool, err := pgxpool.New(ctx, h.svcURL+"&pool_max_conns=8")
	if err != nil {
		return err
	}
	defer pool.Close()
	sr, err := seed(ctx, pool, h.kekID, h.kek, h.keyring, o.scale)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	fmt.Fprintf(os.Stderr, "bench: seeded %d secrets in %.1fs (%.0f events/s); %d samples verified\n", sr.Secrets, sr.Seconds, sr.EventsPerSec, sr.Verified)
	scale := &Scale{Seed: sr}
	h.report.Scale = scale

	fmt.Fprintln(os.Stderr, "bench: secretlog rebuild")
	start := time.Now()
	cpu0 := takeCPU(0, h.runner.postmaster)
	cmd := execCommand(ctx, h.bin, h.env, "rebuild")
	logf, err := os.Create(filepath.Join(h.dir, "rebuild.log"))
	if err != nil {
		return err
	}
	cmd.Stderr = logf
	out, err := cmd.Output()
	logf.Close()
	if err != nil {
		return fmt.Errorf("secretlog rebuild: %w: %s%s", err, out, tailFile(filepath.Join(h.dir, "rebuild.log"), 2000))
	}
	scale.RebuildWallSeconds = time.Since(start).Seconds()
	cpu1 := takeCPU(0, h.runner.postmaster)
	if st := cmd.ProcessState; st != nil {
		scale.RebuildCPU.Server = (st.UserTime() + st.SystemTime()).Seconds() / scale.RebuildWallSeconds
	}
	share := cpuBetween(cpu0, cpu1)
	scale.RebuildCPU.Postgres, scale.RebuildCPU.Total = share.Postgres, share.Total
	scale.RebuildCPU.Other = max(0, share.Total-share.Postgres-share.Load-scale.RebuildCPU.Server)
	// One line per projection (older builds print one line for all).
	for _, m := range rebuildLine.FindAllStringSubmatch(string(out), -1) {
		p := RebuildProjection{Name: m[1]}
		p.Events, _ = strconv.ParseInt(m[2], 10, 64)
		if d, err := time.ParseDuration(m[3]); err == nil {
			p.Seconds = d.Seconds()
		}
		p.EventsPerSec, _ = strconv.ParseFloat(m[4], 64)
		scale.RebuildProjections = append(scale.RebuildProjections, p)
		scale.RebuildEvents = max(scale.RebuildEvents, p.Events)
	}
	if len(scale.RebuildProjections) == 0 {
		return fmt.Errorf("secretlog rebuild: unexpected output %q", out)
	}
	// The rate an operator sees: the whole log through every read model, per
	// second of the command's run (process start, migrations and swap included).
	scale.RebuildEventsPerSec = float64(scale.RebuildEvents) / scale.RebuildWallSeconds
	fmt.Fprintf(os.Stderr, "bench: %s", out)

	// Autovacuum would get there on its own within minutes; do it now so the
	// measurement does not depend on when it runs.
	start = time.Now()
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE secrets`); err != nil {
		return err
	}
	scale.VacuumAnalyzeSeconds = time.Since(start).Seconds()
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM secrets`).Scan(&scale.ReadModelRows); err != nil {
		return err
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM secrets WHERE domain_id = $1`, benchDomain).Scan(&scale.BenchDomainRows); err != nil {
		return err
	}
	if err := pool.QueryRow(ctx, `SELECT pg_total_relation_size('event_log') / 1048576, pg_total_relation_size('secrets') / 1048576`).
		Scan(&scale.EventLogMB, &scale.SecretsMB); err != nil {
		return err
	}

	if err := h.startServer(ctx); err != nil {
		return err
	}
	// Work the server does once after a start (e.g. a log checkpoint over the
	// seeded events) is not what the queries below should measure.
	scale.SettleSeconds = h.settle(ctx, 2*time.Minute)
	c := newAPI(h.server().base, o.concurrency)
	// A seeded value must decrypt through the API, like any other.
	var seeded string
	if err := pool.QueryRow(ctx, `SELECT stream_id FROM event_log WHERE metadata->'actor'->>'sub' = 'seed@bench'
		AND metadata->'tenant'->>'domain_id' = $1 LIMIT 1`, benchDomain).Scan(&seeded); err != nil {
		return err
	}
	if err := c.call(ctx, h.system, secretDataQuery, map[string]any{"id": seeded}, nil); err != nil {
		return fmt.Errorf("secretData of seeded secret %s: %w", seeded, err)
	}

	listVars := func(w *worker) map[string]any {
		return map[string]any{"ws": seedWorkspaceID(w.rng.IntN(seedWorkspace)), "q": map[string]any{
			"filter": []any{map[string]any{"k": "tags.env", "v": "prod", "o": "eq"}},
			"sort":   []any{map[string]any{"key": "createdAt", "desc": true}},
			"page":   map[string]any{"start": 1 + 20*w.rng.IntN(5), "limit": 20},
		}}
	}
	size := fmt.Sprintf("%d secrets, %d in the caller's domain", scale.ReadModelRows, scale.BenchDomainRows)
	apiScenarios := []scenario{
		{name: "scale_list", baseline: "select", description: "secrets(workspaceId, filter tags.env=prod, sort createdAt desc, page of 20) at " + size,
			op: func(ctx context.Context, w *worker) error {
				return c.call(ctx, h.admin, listSecretsQuery, listVars(w), nil)
			}},
		{name: "scale_stat", baseline: "select", description: "secretStat group by provider over the caller's domain at " + size,
			op: func(ctx context.Context, w *worker) error {
				return c.call(ctx, h.admin, statQuery, map[string]any{"q": groupByProvider}, nil)
			}},
	}
	for _, sc := range apiScenarios {
		for _, conc := range uniq(1, o.concurrency) {
			if !o.want(sc.name) || ctx.Err() != nil {
				continue
			}
			sc.concurrency = conc
			h.add(h.runner.run(ctx, sc))
		}
	}
	// The same reads as plain SQL, one client: what the database alone needs
	// for them on this data set (a reference, not a copy of the Reader's SQL).
	// eq ignores case: tags.env = prod is containment in the folded tags,
	// which the GIN index answers (and which alone is exact for a string).
	prod := query.FoldedTags + ` @> $3::jsonb`
	sqlScenarios := []scenario{
		{name: "scale_sql_list", description: "the same list as two plain SQL statements (count, then the page), sent directly",
			op: func(ctx context.Context, w *worker) error {
				ws := seedWorkspaceID(w.rng.IntN(seedWorkspace))
				var total int64
				if err := pool.QueryRow(ctx, `SELECT count(*) FROM secrets WHERE domain_id = $1 AND workspace_id = $2 AND `+prod,
					benchDomain, ws, `{"env":"prod"}`).Scan(&total); err != nil {
					return err
				}
				rows, err := pool.Query(ctx, `SELECT secret_id, name, schema_id, provider, tags, resource_group, domain_id, workspace_id,
					project_id, service_account_id, trusted_secret_id, version, created_by, updated_by, created_at, updated_at
					FROM secrets WHERE domain_id = $1 AND workspace_id = $2 AND `+prod+`
					ORDER BY created_at DESC NULLS LAST, secret_id LIMIT 20 OFFSET `+strconv.Itoa(20*w.rng.IntN(5)),
					benchDomain, ws, `{"env":"prod"}`)
				if err != nil {
					return err
				}
				rows.Close()
				return rows.Err()
			}},
		{name: "scale_sql_stat", description: "SELECT provider, count(*) ... WHERE domain_id = $1 GROUP BY provider sent directly",
			op: func(ctx context.Context, w *worker) error {
				rows, err := pool.Query(ctx, `SELECT provider, count(*) FROM secrets WHERE domain_id = $1 GROUP BY provider`, benchDomain)
				if err != nil {
					return err
				}
				rows.Close()
				return rows.Err()
			}},
	}
	for _, sc := range sqlScenarios {
		if !o.want(sc.name) || ctx.Err() != nil {
			continue
		}
		sc.concurrency = 1
		h.add(h.runner.run(ctx, sc))
	}
	return ctx.Err()
}

// settle waits until the server and the database are idle (under 0.1 core
// each over a second), at most limit, and returns how long that took.
func (h *harness) settle(ctx context.Context, limit time.Duration) float64 {
	start := time.Now()
	pid := 0
	if srv := h.server(); srv != nil {
		pid = srv.pid
	}
	for time.Since(start) < limit && ctx.Err() == nil {
		a := takeCPU(pid, h.runner.postmaster)
		time.Sleep(500 * time.Millisecond)
		share := cpuBetween(a, takeCPU(pid, h.runner.postmaster))
		if share.Server < 0.1 && share.Postgres < 0.1 {
			break
		}
	}
	return time.Since(start).Seconds()
}

func uniq(a, b int) []int {
	if a == b {
		return []int{a}
	}
	return []int{a, b}
}

// gitRevision is the commit the run measured, "-dirty" when the tree had
// changes; BENCH_REVISION names it when the tree is an export without .git.
func gitRevision(ctx context.Context) string {
	if v := os.Getenv("BENCH_REVISION"); v != "" {
		return v
	}
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func postgresVersion(ctx context.Context, url string) string {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return ""
	}
	defer pool.Close()
	var v string
	if err := pool.QueryRow(ctx, `SHOW server_version`).Scan(&v); err != nil {
		return ""
	}
	return v
}
