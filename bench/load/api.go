package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// api is a GraphQL client of the server under test.
type api struct {
	url string
	hc  *http.Client
}

func newAPI(base string, conns int) *api {
	tr := &http.Transport{MaxIdleConns: conns + 8, MaxIdleConnsPerHost: conns + 8, DisableCompression: true,
		IdleConnTimeout: time.Minute}
	return &api{url: base + "/graphql", hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// apiError is a GraphQL error (its extensions.code) or an HTTP failure.
type apiError struct {
	Code string
	Msg  string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Msg }

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
}

// call posts one GraphQL operation and decodes data into out.
func (a *api) call(ctx context.Context, token, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r gqlResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return &apiError{Code: fmt.Sprintf("HTTP_%d", resp.StatusCode), Msg: truncate(string(raw), 200)}
	}
	if len(r.Errors) > 0 {
		code := r.Errors[0].Extensions.Code
		if code == "" {
			code = "NO_CODE"
		}
		return &apiError{Code: code, Msg: r.Errors[0].Message}
	}
	if resp.StatusCode != http.StatusOK {
		return &apiError{Code: fmt.Sprintf("HTTP_%d", resp.StatusCode), Msg: truncate(string(raw), 200)}
	}
	if out != nil {
		return json.Unmarshal(r.Data, out)
	}
	return nil
}

const (
	createSecretMutation = `mutation($in: CreateSecretInput!) { createSecret(input: $in) { secretId version } }`
	updateDataMutation   = `mutation($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { secretId version } }`
	getSecretQuery       = `query($id: ID!) { secret(secretId: $id) { secretId name provider tags resourceGroup workspaceId projectId version createdAt updatedAt } }`
	secretDataQuery      = `query($id: ID!) { secretData(secretId: $id) { data } }`
	listSecretsQuery     = `query($ws: String, $q: QueryInput) { secrets(workspaceId: $ws, query: $q) {
		totalCount results { secretId name provider projectId tags version createdAt } } }`
	statQuery       = `query($q: Map!) { secretStat(query: $q) }`
	visibilityQuery = `query($id: ID) { secrets(secretId: $id) { totalCount results { version } } }`
)

// groupByProvider is the StatisticsQuery grouping by provider and counting (the README's secretStat example).
var groupByProvider = map[string]any{"aggregate": []any{map[string]any{"group": map[string]any{
	"keys":   []any{map[string]any{"key": "provider", "name": "provider"}},
	"fields": []any{map[string]any{"operator": "count", "name": "count"}},
}}}}

var envs = []string{"dev", "stg", "prod"}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randString(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[rng.IntN(len(alnum))]
	}
	return string(b)
}

func awsData(rng *rand.Rand) map[string]any {
	return map[string]any{"aws_access_key_id": "AKIA" + randString(rng, 16), "aws_secret_access_key": randString(rng, 40)}
}

// createInput is a realistic PROJECT secret in one of workspaces ws-0..7.
func createInput(rng *rand.Rand, w, n int) map[string]any {
	ws := rng.IntN(8)
	return map[string]any{
		"name": fmt.Sprintf("bench-%d-%d", w, n), "resourceGroup": "PROJECT", "schemaId": "aws_access_key",
		"workspaceId": fmt.Sprintf("ws-%d", ws), "projectId": fmt.Sprintf("p-%d-%d", ws, rng.IntN(4)),
		"tags": map[string]any{"env": envs[rng.IntN(len(envs))], "team": fmt.Sprintf("team-%d", rng.IntN(16))},
		"data": awsData(rng),
	}
}

// idPool holds the ids of secrets the scenarios read and update.
type idPool struct {
	mu  sync.RWMutex
	ids []string
}

func (p *idPool) add(id string) {
	p.mu.Lock()
	if len(p.ids) < 200_000 {
		p.ids = append(p.ids, id)
	}
	p.mu.Unlock()
}

func (p *idPool) pick(rng *rand.Rand) string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.ids[rng.IntN(len(p.ids))]
}

func (p *idPool) size() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.ids)
}

type mutationAnswer struct {
	SecretID string `json:"secretId"`
	Version  int    `json:"version"`
}

// Lag is how long after a mutation's answer another client sees the change in
// `secrets`. Each sample is handed to an idle observer the moment the answer
// arrives (never queued), which then queries until the change is visible.
type Lag struct {
	Samples          int     `json:"samples"`
	P50ms            float64 `json:"p50_ms"`
	P95ms            float64 `json:"p95_ms"`
	P99ms            float64 `json:"p99_ms"`
	Maxms            float64 `json:"max_ms"`
	VisibleFirstPoll float64 `json:"visible_on_first_query_pct"`
	Timeouts         int     `json:"not_visible_within_5s"`
	QueryP50ms       float64 `json:"observer_query_p50_ms"`
}

// lagObserver is a second client (its own token and connections) watching
// the writes of a scenario.
type lagObserver struct {
	api       *api
	token     string
	observers int

	active  atomic.Bool
	probes  chan probe
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	lags    []time.Duration
	queries []time.Duration
	first   int
	timeout int
}

type probe struct {
	id       string
	version  int
	answered time.Time
}

func newLagObserver(a *api, token string, observers int) *lagObserver {
	return &lagObserver{api: a, token: token, observers: observers}
}

// offer hands the write to an idle observer, if any; it never blocks.
func (o *lagObserver) offer(id string, version int) {
	if o == nil || !o.active.Load() {
		return
	}
	select {
	case o.probes <- probe{id: id, version: version, answered: time.Now()}:
	default:
	}
}

func (o *lagObserver) start(ctx context.Context) {
	o.lags, o.queries, o.first, o.timeout = nil, nil, 0, 0
	o.probes = make(chan probe) // unbuffered: a sample never waits in a queue
	ctx, o.cancel = context.WithCancel(ctx)
	for range o.observers {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-o.probes:
					o.observe(ctx, p)
				}
			}
		}()
	}
	o.active.Store(true)
}

func (o *lagObserver) observe(ctx context.Context, p probe) {
	deadline := p.answered.Add(5 * time.Second)
	for polls := 1; ; polls++ {
		var out struct {
			Secrets struct {
				TotalCount int `json:"totalCount"`
				Results    []struct {
					Version int `json:"version"`
				} `json:"results"`
			} `json:"secrets"`
		}
		q0 := time.Now()
		err := o.api.call(ctx, o.token, visibilityQuery, map[string]any{"id": p.id}, &out)
		qd := time.Since(q0)
		if ctx.Err() != nil {
			return
		}
		o.mu.Lock()
		o.queries = append(o.queries, qd)
		o.mu.Unlock()
		if err == nil && out.Secrets.TotalCount == 1 && len(out.Secrets.Results) == 1 && out.Secrets.Results[0].Version >= p.version {
			lag := time.Since(p.answered)
			o.mu.Lock()
			o.lags = append(o.lags, lag)
			if polls == 1 {
				o.first++
			}
			o.mu.Unlock()
			return
		}
		if time.Now().After(deadline) {
			o.mu.Lock()
			o.timeout++
			o.mu.Unlock()
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (o *lagObserver) stop() *Lag {
	o.active.Store(false)
	o.cancel()
	o.wg.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	slices.Sort(o.lags)
	slices.Sort(o.queries)
	l := &Lag{Samples: len(o.lags), P50ms: ms(percentile(o.lags, 0.5)), P95ms: ms(percentile(o.lags, 0.95)),
		P99ms: ms(percentile(o.lags, 0.99)), Timeouts: o.timeout, QueryP50ms: ms(percentile(o.queries, 0.5))}
	if len(o.lags) > 0 {
		l.Maxms = ms(o.lags[len(o.lags)-1])
		l.VisibleFirstPoll = 100 * float64(o.first) / float64(len(o.lags))
	}
	return l
}
