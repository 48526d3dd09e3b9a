package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/events"
)

// The scale data set goes into the log as real SecretCreated.v1 events, each
// with its own data key wrapped by the keyring exactly as events.KeyStore does
// (Seal(kek, "datakey:"+stream, 0, key), stored nonce||ciphertext) and its
// value sealed for (stream, version 1). Only the transport is bulk: pgx
// CopyFrom into data_keys and event_log, many secrets per transaction. The
// read models are then built from the log by `secretlog rebuild`. When the log
// carries a tamper-evidence hash column, each row gets its events.EventHash.

const (
	seedBatch     = 10_000
	seedWorkspace = 20 // per domain
	seedProjects  = 5  // per workspace
	otherDomains  = 19
)

// seedSchema is a data schema with its provider, share of the data set and a
// value generator.
type seedSchema struct {
	id, provider string
	weight       int
	data         func(r *mrand.Rand) map[string]any
}

var seedSchemas = []seedSchema{
	{"aws_access_key", "aws", 35, func(r *mrand.Rand) map[string]any { return awsData(r) }},
	{"aws_assume_role", "aws", 10, func(r *mrand.Rand) map[string]any {
		d := awsData(r)
		d["role_arn"] = fmt.Sprintf("arn:aws:iam::%012d:role/%s", r.Int64N(1e12), randString(r, 10))
		return d
	}},
	{"google_oauth2_credentials", "google_cloud", 20, func(r *mrand.Rand) map[string]any {
		return map[string]any{"type": "service_account", "project_id": "proj-" + randString(r, 8),
			"private_key_id": randString(r, 40), "private_key": "-----BEGIN PRIVATE KEY-----\n" + randString(r, 200) + "\n-----END PRIVATE KEY-----\n",
			"client_email": "sa-" + randString(r, 6) + "@example.iam.gserviceaccount.com", "client_id": randString(r, 21)}
	}},
	{"azure_client_secret", "azure", 15, func(r *mrand.Rand) map[string]any {
		return map[string]any{"tenant_id": uuid.NewString(), "subscription_id": uuid.NewString(),
			"client_id": uuid.NewString(), "client_secret": randString(r, 40)}
	}},
	{"api_token", "generic", 12, func(r *mrand.Rand) map[string]any { return map[string]any{"token": randString(r, 48)} }},
	{"basic_auth", "generic", 8, func(r *mrand.Rand) map[string]any {
		return map[string]any{"username": "svc-" + randString(r, 6), "password": randString(r, 24)}
	}},
}

func pickSchema(r *mrand.Rand) seedSchema {
	n := r.IntN(100)
	for _, s := range seedSchemas {
		if n < s.weight {
			return s
		}
		n -= s.weight
	}
	return seedSchemas[0]
}

// seedDomain is where secret i of the data set lives: half of them in the
// benchmark's own domain, the rest spread over other tenants.
func seedDomain(i int) string {
	if i%2 == 0 {
		return benchDomain
	}
	return fmt.Sprintf("domain-%02d", (i/2)%otherDomains+1)
}

func seedWorkspaceID(n int) string { return fmt.Sprintf("ws-%02d", n) }

// seedData is one batch ready for COPY.
type seedData struct {
	keys [][]any
	evs  [][]any
}

type seeder struct {
	// hashed: event_log has a hash column (events.EventHash chained per stream).
	hashed bool
	kekID  string
	kek    []byte
	n      int
	runTag uint16
	from   time.Time
	span   time.Duration
}

// secretID is unique per index: 4 hex digits of run tag + 8 of the index.
func (s *seeder) secretID(i int) string { return fmt.Sprintf("secret-%04x%08x", s.runTag, i) }

func (s *seeder) generate(first, last int) (seedData, error) {
	r := mrand.New(mrand.NewPCG(uint64(first), uint64(s.runTag)))
	out := seedData{keys: make([][]any, 0, last-first), evs: make([][]any, 0, last-first)}
	for i := first; i < last; i++ {
		id := s.secretID(i)
		domain := seedDomain(i)
		schema := pickSchema(r)
		env := envs[r.IntN(len(envs))]
		ev := events.SecretCreated{
			SecretID: id, Name: fmt.Sprintf("%s-%s-%07d", schema.provider, env, i), SchemaID: schema.id, Provider: schema.provider,
			Tags:     map[string]any{"env": env, "team": fmt.Sprintf("team-%02d", r.IntN(40)), "app": fmt.Sprintf("app-%03d", r.IntN(500))},
			DomainID: domain,
		}
		tenant := events.Tenant{DomainID: domain}
		switch g := r.IntN(10); {
		case g == 0:
			ev.ResourceGroup = "DOMAIN"
		case g < 3:
			ev.ResourceGroup = "WORKSPACE"
			ev.WorkspaceID = seedWorkspaceID(r.IntN(seedWorkspace))
		default:
			ev.ResourceGroup = "PROJECT"
			w := r.IntN(seedWorkspace)
			ev.WorkspaceID = seedWorkspaceID(w)
			ev.ProjectID = fmt.Sprintf("prj-%02d-%d", w, r.IntN(seedProjects))
		}
		tenant.WorkspaceID, tenant.ProjectID = ev.WorkspaceID, ev.ProjectID

		dataKey := make([]byte, 32)
		if _, err := rand.Read(dataKey); err != nil {
			return out, err
		}
		wrapped, err := events.Seal(s.kek, "datakey:"+id, 0, dataKey)
		if err != nil {
			return out, err
		}
		plain, err := json.Marshal(schema.data(r))
		if err != nil {
			return out, err
		}
		if ev.Data, err = events.Seal(dataKey, id, 1, plain); err != nil {
			return out, err
		}
		payload, err := events.Encode(ev)
		if err != nil {
			return out, err
		}
		meta, err := json.Marshal(events.Metadata{
			Actor:         events.Actor{Subject: "seed@bench", UserID: "seed@bench", Role: "DOMAIN_ADMIN", DomainID: domain},
			Tenant:        tenant,
			CorrelationID: fmt.Sprintf("seed-%d", first/seedBatch),
			CausationID:   uuid.NewString(),
		})
		if err != nil {
			return out, err
		}
		// Creation times rise through the past year, as a real log's would.
		at := s.from.Add(time.Duration(float64(s.span) * float64(i) / float64(s.n))).Add(time.Duration(r.Int64N(int64(time.Second)))).UTC().Truncate(time.Microsecond)
		out.keys = append(out.keys, []any{id, s.kekID, append(wrapped.Nonce, wrapped.Ciphertext...)})
		eventID := uuid.New()
		row := []any{eventID, id, int64(1), events.SecretCreatedV1, payload, meta, at}
		if s.hashed {
			row = append(row, events.EventHash(nil, id, 1, eventID.String(), events.SecretCreatedV1, at, payload, meta))
		}
		out.evs = append(out.evs, row)
	}
	return out, nil
}

// SeedResult reports the bulk seeding.
type SeedResult struct {
	Secrets       int     `json:"secrets"`
	Seconds       float64 `json:"seconds"`
	EventsPerSec  float64 `json:"events_per_sec"`
	InBenchDomain int     `json:"in_bench_domain"`
	Domains       int     `json:"domains"`
	Workspaces    int     `json:"workspaces_per_domain"`
	Verified      int     `json:"verified_samples"`
}

// seed appends n SecretCreated.v1 events (and their data keys) to the log.
func seed(ctx context.Context, pool *pgxpool.Pool, kekID string, kek []byte, keyring *events.Keyring, n int) (SeedResult, error) {
	start := time.Now()
	var tag [2]byte
	_, _ = rand.Read(tag[:])
	s := &seeder{kekID: kekID, kek: kek, n: n, runTag: uint16(tag[0])<<8 | uint16(tag[1]),
		from: time.Now().Add(-365 * 24 * time.Hour), span: 364 * 24 * time.Hour}
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.columns
		WHERE table_name = 'event_log' AND column_name = 'hash')`).Scan(&s.hashed); err != nil {
		return SeedResult{}, err
	}
	columns := []string{"event_id", "stream_id", "version", "type", "data", "metadata", "occurred_at"}
	if s.hashed {
		columns = append(columns, "hash")
	}

	batches := make(chan int)
	ready := make(chan seedData, 2)
	errc := make(chan error, 16)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		cancel()
	}
	go func() {
		defer close(batches)
		for first := 0; first < n; first += seedBatch {
			select {
			case batches <- first:
			case <-ctx.Done():
				return
			}
		}
	}()
	var gen sync.WaitGroup
	for range runtime.NumCPU() {
		gen.Add(1)
		go func() {
			defer gen.Done()
			for first := range batches {
				d, err := s.generate(first, min(first+seedBatch, n))
				if err != nil {
					fail(err)
					return
				}
				select {
				case ready <- d:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { gen.Wait(); close(ready) }()

	var written atomic.Int64
	var wr sync.WaitGroup
	for range 2 {
		wr.Add(1)
		go func() {
			defer wr.Done()
			for d := range ready {
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					if _, err := tx.CopyFrom(ctx, pgx.Identifier{"data_keys"}, []string{"stream_id", "kek_id", "wrapped_key"},
						pgx.CopyFromRows(d.keys)); err != nil {
						return fmt.Errorf("copy data_keys: %w", err)
					}
					_, err := tx.CopyFrom(ctx, pgx.Identifier{"event_log"}, columns, pgx.CopyFromRows(d.evs))
					if err != nil {
						return fmt.Errorf("copy event_log: %w", err)
					}
					return nil
				})
				if err != nil {
					fail(err)
					return
				}
				done := written.Add(int64(len(d.evs)))
				if done%100_000 < seedBatch {
					fmt.Fprintf(os.Stderr, "    seeded %d/%d secrets (%.0f/s)\n", done, n, float64(done)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wr.Wait()
	select {
	case err := <-errc:
		return SeedResult{}, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return SeedResult{}, err
	}
	took := time.Since(start)
	res := SeedResult{Secrets: n, Seconds: took.Seconds(), EventsPerSec: float64(n) / took.Seconds(),
		InBenchDomain: (n + 1) / 2, Domains: 1 + otherDomains, Workspaces: seedWorkspace}

	// Check samples the way the service reads them: the key unwraps through
	// events.KeyStore and the value opens.
	ks := events.NewKeyStore(pool, keyring)
	for _, i := range []int{0, n / 3, n / 2, n - 1} {
		id := s.secretID(i)
		key, err := ks.Get(ctx, id)
		if err != nil {
			return res, fmt.Errorf("seed check %s: %w", id, err)
		}
		var typ string
		var data []byte
		if err := pool.QueryRow(ctx, `SELECT type, data FROM event_log WHERE stream_id = $1 AND version = 1`, id).Scan(&typ, &data); err != nil {
			return res, fmt.Errorf("seed check %s: %w", id, err)
		}
		ev, err := events.Decode(typ, data)
		if err != nil {
			return res, fmt.Errorf("seed check %s: %w", id, err)
		}
		created, ok := ev.(*events.SecretCreated)
		if !ok {
			return res, fmt.Errorf("seed check %s: decoded %T", id, ev)
		}
		plain, err := events.Open(key, id, 1, created.Data)
		if err != nil || !bytes.HasPrefix(plain, []byte("{")) {
			return res, fmt.Errorf("seed check %s: value does not open: %v", id, err)
		}
		res.Verified++
	}
	return res, nil
}
