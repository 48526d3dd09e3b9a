package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

// concClient is shared by the concurrent writers; it keeps enough idle
// connections that the writers do not serialise on connection setup.
var concClient = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 0},
}

// concPost is doGraphQL for goroutines: it reports failures as an error
// instead of calling t.FailNow off the test goroutine. correlationID is sent
// as X-Correlation-ID so the events a request causes can be traced back to it.
func concPost(base, token, correlationID, query string, vars map[string]any) (gqlResponse, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return gqlResponse{}, err
	}
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return gqlResponse{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if correlationID != "" {
		req.Header.Set("X-Correlation-ID", correlationID)
	}
	resp, err := concClient.Do(req)
	if err != nil {
		return gqlResponse{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return gqlResponse{}, err
	}
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		return gqlResponse{}, fmt.Errorf("status %d, body %q: %w", resp.StatusCode, raw, err)
	}
	out.Status = resp.StatusCode
	return out, nil
}

// concRun calls f(0..n-1) from n goroutines released together.
func concRun(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

// concEvent is one row of a stream in event_log.
type concEvent struct {
	Version       int64
	Type          string
	CorrelationID string
}

func concStream(t *testing.T, databaseURL, stream string) []concEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT version, type, coalesce(metadata->>'correlation_id', '')
		FROM event_log WHERE stream_id = $1 ORDER BY version`, stream)
	require.NoError(t, err)
	var out []concEvent
	for rows.Next() {
		var e concEvent
		require.NoError(t, rows.Scan(&e.Version, &e.Type, &e.CorrelationID))
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

// concDataUpdateCase describes one resource kind for the lost-update test.
type concDataUpdateCase struct {
	writers     int
	writerToken string
	readerToken string // SYSTEM: reads the value
	id          string
	createdType string
	updatedType string
	mutation    string // $in: the update input; answers { <field> { version } }
	field       string // the mutation's field name
	idKey       string // the input's id key
	metaQuery   string // $id -> { <metaField> { version } }
	metaField   string
	revealQuery string // $id -> { <revealField> { data } }
	revealField string
}

// concNoLostUpdate fires c.writers data updates at one resource at once and
// checks that every answer is a success or CONFLICT, and that the log, the
// read model and the decrypted value agree on exactly the successful writes.
func concNoLostUpdate(t *testing.T, s *stack, c concDataUpdateCase) {
	t.Helper()
	type outcome struct {
		resp gqlResponse
		err  error
	}
	results := make([]outcome, c.writers)
	cid := func(i int) string { return fmt.Sprintf("conc-%s-w%02d", c.id, i) }
	concRun(c.writers, func(i int) {
		r, err := concPost(s.HTTP.URL, c.writerToken, cid(i), c.mutation, map[string]any{"in": map[string]any{
			c.idKey: c.id, "data": map[string]any{"token": fmt.Sprintf("v%d", i)}}})
		results[i] = outcome{r, err}
	})

	// Every answer: success (with the resource's version) or CONFLICT, nothing else.
	responseVersion := map[string]int{} // correlation id -> version in the answer
	conflicts := 0
	for i, o := range results {
		require.NoError(t, o.err, "writer %d", i)
		if len(o.resp.Errors) > 0 {
			require.Len(t, o.resp.Errors, 1, "writer %d: %+v", i, o.resp.Errors)
			require.Equal(t, "CONFLICT", o.resp.Code(), "writer %d: %+v", i, o.resp.Errors)
			conflicts++
			continue
		}
		var data map[string]struct{ Version int }
		require.NoError(t, json.Unmarshal(o.resp.Data, &data), "writer %d", i)
		got, ok := data[c.field]
		require.True(t, ok, "writer %d: no %s in %s", i, c.field, o.resp.Data)
		require.GreaterOrEqual(t, got.Version, 2, "writer %d", i)
		responseVersion[cid(i)] = got.Version
	}
	successes := len(responseVersion)
	t.Logf("%s: %d writers, %d succeeded, %d conflicted", c.field, c.writers, successes, conflicts)
	require.NotZero(t, successes, "at least one writer must win")
	n := 1 + successes

	// The read model counts every successful write, and only those.
	var meta map[string]struct{ Version int }
	s.mustOK(c.writerToken, c.metaQuery, map[string]any{"id": c.id}, &meta)
	require.Equal(t, n, meta[c.metaField].Version, "version after %d successful updates", successes)

	// The log: one creation and one data event per success, versions 1..n without gaps,
	// each success's correlation id exactly once and no loser's at all.
	evs := concStream(t, s.DatabaseURL, c.id)
	require.Len(t, evs, n, "events in stream %s", c.id)
	seen := map[string]int64{}
	for i, e := range evs {
		require.Equal(t, int64(i+1), e.Version, "stream versions must be 1..n consecutive")
		if i == 0 {
			require.Equal(t, c.createdType, e.Type)
			continue
		}
		require.Equal(t, c.updatedType, e.Type, "event %d", e.Version)
		_, won := responseVersion[e.CorrelationID]
		require.True(t, won, "event %d was written by %q, which was not answered with success", e.Version, e.CorrelationID)
		_, dup := seen[e.CorrelationID]
		require.False(t, dup, "request %q appended twice", e.CorrelationID)
		seen[e.CorrelationID] = e.Version
	}
	require.Len(t, seen, successes)

	// Read-your-writes: each answer reflects at least the writer's own event.
	maxVersion := 0
	for id, v := range responseVersion {
		require.GreaterOrEqual(t, v, int(seen[id]), "answer of %s predates its own write", id)
		require.LessOrEqual(t, v, n, "answer of %s", id)
		maxVersion = max(maxVersion, v)
	}
	require.Equal(t, n, maxVersion, "some answer must carry the final version")

	// The current value is the last write in log order; its writer's answer saw the final version.
	last := evs[len(evs)-1].CorrelationID
	require.Equal(t, n, responseVersion[last], "the last writer's answer")
	var lastWriter int
	_, err := fmt.Sscanf(last, "conc-"+c.id+"-w%d", &lastWriter)
	require.NoError(t, err, "correlation id %q", last)
	var revealed map[string]struct{ Data map[string]any }
	s.mustOK(c.readerToken, c.revealQuery, map[string]any{"id": c.id}, &revealed)
	require.Equal(t, map[string]any{"token": fmt.Sprintf("v%d", lastWriter)}, revealed[c.revealField].Data,
		"the value must be the last appended write (writer %d)", lastWriter)
}

func TestConcurrentUpdateSecretDataNoLostUpdate(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"})
	system := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "domain-a"})
	id := s.createSecret(admin, map[string]any{"name": "conc-target", "resourceGroup": "DOMAIN",
		"data": map[string]any{"token": "initial"}})
	concNoLostUpdate(t, s, concDataUpdateCase{
		writers: 50, writerToken: admin, readerToken: system, id: id,
		createdType: "SecretCreated.v1", updatedType: "SecretDataUpdated.v1",
		mutation: `mutation($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { version } }`,
		field:    "updateSecretData", idKey: "secretId",
		metaQuery:   `query($id: ID!) { secret(secretId: $id) { version } }`,
		metaField:   "secret",
		revealQuery: `query($id: ID!) { secretData(secretId: $id) { data } }`,
		revealField: "secretData",
	})
}

func TestConcurrentUpdateUserSecretDataNoLostUpdate(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	bob := s.token(auth.Identity{Role: auth.RoleUser, DomainID: "domain-a", UserID: "bob"})
	system := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "domain-a"})
	id := s.createUserSecret(bob, map[string]any{"name": "conc-user-target", "data": map[string]any{"token": "initial"}})
	concNoLostUpdate(t, s, concDataUpdateCase{
		writers: 20, writerToken: bob, readerToken: system, id: id,
		createdType: "UserSecretCreated.v1", updatedType: "UserSecretDataUpdated.v1",
		mutation: `mutation($in: UpdateUserSecretDataInput!) { updateUserSecretData(input: $in) { version } }`,
		field:    "updateUserSecretData", idKey: "userSecretId",
		metaQuery:   `query($id: ID!) { userSecret(userSecretId: $id) { version } }`,
		metaField:   "userSecret",
		revealQuery: `query($id: ID!) { userSecretData(userSecretId: $id) { data } }`,
		revealField: "userSecretData",
	})
}

func TestConcurrentCreatesAllVisible(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"})
	const n = 40
	type outcome struct {
		resp gqlResponse
		err  error
	}
	results := make([]outcome, n)
	concRun(n, func(i int) {
		r, err := concPost(s.HTTP.URL, admin, "", createSecretMutation, map[string]any{"in": map[string]any{
			"name": fmt.Sprintf("conc-create-%02d", i), "resourceGroup": "DOMAIN",
			"data": map[string]any{"token": fmt.Sprintf("v%d", i)}}})
		results[i] = outcome{r, err}
	})
	created := map[string]string{} // id -> name
	for i, o := range results {
		require.NoError(t, o.err, "creator %d", i)
		require.Empty(t, o.resp.Errors, "creator %d", i)
		var out struct {
			CreateSecret struct {
				SecretID string
				Name     string
				Version  int
			}
		}
		o.resp.Decode(t, &out)
		require.NotEmpty(t, out.CreateSecret.SecretID, "creator %d", i)
		require.Equal(t, fmt.Sprintf("conc-create-%02d", i), out.CreateSecret.Name)
		require.Equal(t, 1, out.CreateSecret.Version)
		_, dup := created[out.CreateSecret.SecretID]
		require.False(t, dup, "id %s handed out twice", out.CreateSecret.SecretID)
		created[out.CreateSecret.SecretID] = out.CreateSecret.Name
	}
	require.Len(t, created, n)

	var list struct {
		Secrets struct {
			TotalCount int
			Results    []struct {
				SecretID string
				Name     string
			}
		}
	}
	s.mustOK(admin, `{ secrets { totalCount results { secretId name } } }`, nil, &list)
	require.Equal(t, n, list.Secrets.TotalCount)
	listed := map[string]string{}
	for _, r := range list.Secrets.Results {
		listed[r.SecretID] = r.Name
	}
	require.Equal(t, created, listed, "every created secret is listed, and nothing else")

	// Each creation opened its own stream at version 1.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT stream_id FROM event_log WHERE type = 'SecretCreated.v1' AND version = 1`)
	require.NoError(t, err)
	var streams []string
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		streams = append(streams, id)
	}
	require.NoError(t, rows.Err())
	want := make([]string, 0, n)
	for id := range created {
		want = append(want, id)
	}
	sort.Strings(want)
	sort.Strings(streams)
	require.Equal(t, want, streams)
}
