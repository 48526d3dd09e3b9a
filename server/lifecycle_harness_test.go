package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/server"
)

// The harness of the lifecycle tests (issue 11): one server, or several on
// one database, sharing a test clock the test advances; the tokens of the
// callers the tests need; and the same operations for Secret and UserSecret.

// lcClock is the lifecycle clock of the servers under test: real time plus
// an offset the test moves forward.
type lcClock struct{ off atomic.Int64 }

func (c *lcClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

func (c *lcClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

type lcOpts struct {
	// nodes is how many servers run on the one database (0: 1).
	nodes int
	// schedulerEvery is the scheduler interval (0: 50ms).
	schedulerEvery time.Duration
	// minRecoveryDays lowers the shortest recovery window (nil: 7).
	minRecoveryDays *int
}

// lcEnv is the servers under test and the callers.
type lcEnv struct {
	t     *testing.T
	nodes []*stack
	s     *stack
	clock *lcClock
	dbURL string

	admin, system, owner, adminB, systemB, bob, bobB, carol string

	mu        sync.Mutex
	canaries  []string
	generated []string
}

// The keyring's two keys: life-1 is the primary.
const (
	lcPrimaryKey = "life-1"
	lcOtherKey   = "life-2"
)

func newLifecycleEnv(t *testing.T, o lcOpts) *lcEnv {
	t.Helper()
	spec1, err := events.NewKeySpec(lcPrimaryKey)
	require.NoError(t, err)
	spec2, err := events.NewKeySpec(lcOtherKey)
	require.NoError(t, err)
	keyring, err := events.ParseKeyring(spec1 + "," + spec2)
	require.NoError(t, err)
	tokenKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(spec1, lcPrimaryKey+":"))
	require.NoError(t, err)
	e := &lcEnv{t: t, clock: &lcClock{}, dbURL: pgtest.NewDatabase(t)}
	// Registered before the servers start, so it runs after they stopped:
	// every log line is written by then.
	t.Cleanup(e.scanLogs)
	n := max(o.nodes, 1)
	every := o.schedulerEvery
	if every == 0 {
		every = 50 * time.Millisecond
	}
	for range n {
		s := &stack{t: t, DatabaseURL: e.dbURL, Logs: &syncBuffer{}, keyring: keyring, tokenKey: tokenKey,
			configure: func(cfg *server.Config) {
				cfg.MaxConns = 8
				cfg.SchedulerEvery = every
				cfg.Lifecycle = commands.Lifecycle{Now: e.clock.Now, MinRecoveryDays: o.minRecoveryDays}
			}}
		s.start()
		e.nodes = append(e.nodes, s)
	}
	e.s = e.nodes[0]
	tok := func(id auth.Identity) string { return e.s.token(id) }
	e.admin = tok(auth.Identity{UserID: "alice", Role: auth.RoleDomainAdmin, DomainID: "domain-a"})
	e.system = tok(auth.Identity{Role: auth.RoleSystem, DomainID: "domain-a"})
	e.owner = tok(auth.Identity{UserID: "olga", Role: auth.RoleWorkspaceOwner, DomainID: "domain-a", WorkspaceID: "ws-1"})
	e.adminB = tok(auth.Identity{UserID: "mallory", Role: auth.RoleDomainAdmin, DomainID: "domain-b"})
	e.systemB = tok(auth.Identity{Role: auth.RoleSystem, DomainID: "domain-b"})
	e.bob = tok(auth.Identity{UserID: "bob", Role: auth.RoleUser, DomainID: "domain-a"})
	e.bobB = tok(auth.Identity{UserID: "bob", Role: auth.RoleUser, DomainID: "domain-b"})
	e.carol = tok(auth.Identity{UserID: "carol", Role: auth.RoleUser, DomainID: "domain-a"})
	return e
}

// canary returns a fresh value that must never appear in a server log.
func (e *lcEnv) canary(label string) string {
	c := canaryNew(e.t, label)
	e.remember(c)
	return c
}

// remember adds a generated value to those the logs must not hold.
func (e *lcEnv) remember(v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.generated = append(e.generated, v)
}

// scanLogs fails the test when any server's log holds a canary in any form.
func (e *lcEnv) scanLogs() {
	e.mu.Lock()
	canaries := append([]string(nil), e.canaries...)
	generated := append([]string(nil), e.generated...)
	e.mu.Unlock()
	if len(canaries) == 0 {
		return
	}
	forms := canaryForms(canaries...)
	// A generated value has no canary prefix: its "random tail" after the
	// last '-' may be a character or two, found anywhere.
	for _, f := range canaryForms(generated...) {
		if f.how != "random tail" {
			forms = append(forms, f)
		}
	}
	if !strings.Contains(e.nodes[0].Logs.String(), `"http request"`) {
		e.t.Errorf("the server that answered the requests logged none: the canary scan would prove nothing")
	}
	for i, s := range e.nodes {
		for _, f := range canaryFind([]byte(s.Logs.String()), forms) {
			e.t.Errorf("server %d log holds a secret value: %s", i, f)
		}
	}
}

// sql runs one query on the database and scans its single row.
func (e *lcEnv) sql(t testing.TB, query string, args []any, dest ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, e.dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.NoError(t, conn.QueryRow(ctx, query, args...).Scan(dest...))
}

// eventCount counts the events of type typ in stream (log truth).
func (e *lcEnv) eventCount(t testing.TB, stream, typ string) int {
	var n int
	e.sql(t, `SELECT count(*) FROM event_log WHERE stream_id = $1 AND type = $2`, []any{stream, typ}, &n)
	return n
}

// streamVersion is the last version of a stream (0: none).
func (e *lcEnv) streamVersion(t testing.TB, stream string) int {
	var n int
	e.sql(t, `SELECT coalesce(max(version), 0) FROM event_log WHERE stream_id = $1`, []any{stream}, &n)
	return n
}

// keyStates maps each data key of resource id ('<id>/v<N>' and a legacy
// '<id>') to whether it is destroyed.
func (e *lcEnv) keyStates(t testing.TB, id string) map[string]bool {
	t.Helper()
	var names []string
	var destroyed []bool
	e.sql(t, `SELECT coalesce(array_agg(stream_id ORDER BY stream_id), '{}'), coalesce(array_agg(destroyed_at IS NOT NULL ORDER BY stream_id), '{}')
		FROM data_keys WHERE stream_id = $1 OR stream_id LIKE $1 || '/%'`, []any{id}, &names, &destroyed)
	out := map[string]bool{}
	for i, n := range names {
		out[n] = destroyed[i]
	}
	return out
}

// lcKind runs the same operations on a Secret (user false) or a UserSecret.
type lcKind struct {
	e    *lcEnv
	user bool
	t    *testing.T
}

func (e *lcEnv) kinds() []lcKind { return []lcKind{{e, false, e.t}, {e, true, e.t}} }

func (e *lcEnv) secrets() lcKind { return lcKind{e, false, e.t} }

func (e *lcEnv) userSecrets() lcKind { return lcKind{e, true, e.t} }

// on is the kind reporting to t (a subtest).
func (k lcKind) on(t *testing.T) lcKind { k.t = t; return k }

func (k lcKind) String() string {
	if k.user {
		return "UserSecret"
	}
	return "Secret"
}

// q spells a query for the kind: %S is Secret or UserSecret, %s secret or
// userSecret, %I secretId or userSecretId.
func (k lcKind) q(tmpl string) string {
	if k.user {
		return strings.NewReplacer("%S", "UserSecret", "%s", "userSecret", "%I", "userSecretId").Replace(tmpl)
	}
	return strings.NewReplacer("%S", "Secret", "%s", "secret", "%I", "secretId").Replace(tmpl)
}

// writer may change the resources the tests create (their creator).
func (k lcKind) writer() string {
	if k.user {
		return k.e.bob
	}
	return k.e.admin
}

// denied sees the resources but may not change them.
func (k lcKind) denied() string {
	if k.user {
		return k.e.admin
	}
	return k.e.system
}

// reader reads values (SYSTEM of the domain).
func (k lcKind) reader() string { return k.e.system }

// foreign are callers that must not see the resources at all.
func (k lcKind) foreign() map[string]string {
	out := map[string]string{"DOMAIN_ADMIN of domain-b": k.e.adminB, "SYSTEM of domain-b": k.e.systemB}
	if k.user {
		out["USER bob of domain-b"] = k.e.bobB
		out["USER carol (not the owner)"] = k.e.carol
	}
	return out
}

// readType, deletedType and dataUpdatedType are the kind's event types.
func (k lcKind) readType() string { return k.String() + "DataRead.v1" }

func (k lcKind) deletedType() string { return k.String() + "Deleted.v1" }

func (k lcKind) dataUpdatedType() string { return k.String() + "DataUpdated.v1" }

const lcFields = `id: %I name state description kmsKeyId maxVersions autoRotation rotationPeriodHours
  nextRotationTime lastRotatedAt lastUsedAt version updatedBy`

type lcRes struct {
	ID                  string
	Name                string
	State               string
	Description         *string
	KmsKeyID            *string `json:"kmsKeyId"`
	MaxVersions         *int
	AutoRotation        *bool
	RotationPeriodHours *int
	NextRotationTime    *time.Time
	LastRotatedAt       *time.Time
	LastUsedAt          *time.Time
	Version             int
	UpdatedBy           string
}

type lcVersion struct {
	Version        int
	Stages         []string
	CreatedAt      time.Time
	CreatedBy      string
	Readable       bool
	RolledBackFrom *int
}

// do sends a query spelled for the kind (see q).
func (k lcKind) do(token, tmpl string, vars map[string]any) gqlResponse {
	k.t.Helper()
	return k.e.s.do(token, k.q(tmpl), vars)
}

// one decodes the single root field of a response holding a resource.
func (k lcKind) one(r gqlResponse) lcRes {
	k.t.Helper()
	require.Empty(k.t, r.Errors)
	var m map[string]lcRes
	r.Decode(k.t, &m)
	require.Len(k.t, m, 1)
	for _, v := range m {
		return v
	}
	return lcRes{}
}

// ok sends a query as the writer that must succeed and answer a resource.
func (k lcKind) ok(tmpl string, vars map[string]any) lcRes {
	k.t.Helper()
	r := k.do(k.writer(), tmpl, vars)
	require.Empty(k.t, r.Errors, "%s: %s", k, k.q(tmpl))
	return k.one(r)
}

// create makes a resource as the writer (a DOMAIN secret for Secret).
func (k lcKind) create(in map[string]any) lcRes {
	k.t.Helper()
	if !k.user {
		if _, ok := in["resourceGroup"]; !ok {
			in["resourceGroup"] = "DOMAIN"
		}
	}
	r := k.tryCreate(k.writer(), in)
	require.Empty(k.t, r.Errors)
	return k.one(r)
}

func (k lcKind) tryCreate(token string, in map[string]any) gqlResponse {
	k.t.Helper()
	if !k.user {
		if _, ok := in["resourceGroup"]; !ok {
			in["resourceGroup"] = "DOMAIN"
		}
	}
	return k.do(token, `mutation($in: Create%SInput!) { create%S(input: $in) { `+lcFields+` } }`, map[string]any{"in": in})
}

func (k lcKind) get(token, id string) (lcRes, gqlResponse) {
	k.t.Helper()
	r := k.do(token, `query($id: ID!) { %s(%I: $id) { `+lcFields+` } }`, map[string]any{"id": id})
	if len(r.Errors) > 0 {
		return lcRes{}, r
	}
	return k.one(r), r
}

func (k lcKind) mustGet(id string) lcRes {
	k.t.Helper()
	res, r := k.get(k.writer(), id)
	require.Empty(k.t, r.Errors)
	return res
}

// listed reports whether the list query shows id to the writer.
func (k lcKind) listed(id string) bool {
	k.t.Helper()
	r := k.do(k.writer(), `{ %ss(query: {page: {limit: 1000}}) { results { id: %I } totalCount } }`, nil)
	require.Empty(k.t, r.Errors)
	var m map[string]struct{ Results []struct{ ID string } }
	r.Decode(k.t, &m)
	for _, l := range m {
		for _, x := range l.Results {
			if x.ID == id {
				return true
			}
		}
	}
	return false
}

func (k lcKind) tryWrite(token, id string, data map[string]any, expected *int) gqlResponse {
	k.t.Helper()
	in := map[string]any{k.q("%I"): id, "data": data}
	if expected != nil {
		in["expectedVersion"] = *expected
	}
	return k.do(token, `mutation($in: Update%SDataInput!) { update%SData(input: $in) { `+lcFields+` } }`, map[string]any{"in": in})
}

// write records a new value as the writer.
func (k lcKind) write(id string, data map[string]any) lcRes {
	k.t.Helper()
	return k.one(k.tryWrite(k.writer(), id, data, nil))
}

func (k lcKind) tryUpdate(token string, in map[string]any) gqlResponse {
	k.t.Helper()
	return k.do(token, `mutation($in: Update%SInput!) { update%S(input: $in) { `+lcFields+` } }`, map[string]any{"in": in})
}

// readAs reads a value: version when non-nil, else stage when non-empty.
func (k lcKind) readAs(token, id string, version *int, stage string) (map[string]any, int, gqlResponse) {
	k.t.Helper()
	vars := map[string]any{"id": id, "v": version}
	if stage != "" {
		vars["st"] = stage
	}
	r := k.do(token, `query($id: ID!, $v: Int, $st: String) { %sData(%I: $id, version: $v, stage: $st) { data version encrypted } }`, vars)
	if len(r.Errors) > 0 {
		return nil, 0, r
	}
	var m map[string]struct {
		Data    map[string]any
		Version int
	}
	r.Decode(k.t, &m)
	for _, d := range m {
		return d.Data, d.Version, r
	}
	return nil, 0, r
}

func (k lcKind) read(id string, version *int, stage string) (map[string]any, int, gqlResponse) {
	k.t.Helper()
	return k.readAs(k.reader(), id, version, stage)
}

// mustRead reads a value that must be readable.
func (k lcKind) mustRead(id string, version *int, stage string) (map[string]any, int) {
	k.t.Helper()
	d, v, r := k.read(id, version, stage)
	require.Empty(k.t, r.Errors, "reading %s %s version %v stage %q", k, id, lcIntStr(version), stage)
	return d, v
}

func lcIntStr(p *int) any {
	if p == nil {
		return "nil"
	}
	return *p
}

func (k lcKind) versionsAs(token, id string, first int, after *string) (lcVersionPage, gqlResponse) {
	k.t.Helper()
	r := k.do(token, `query($id: ID!, $first: Int, $after: String) { %sVersions(%I: $id, first: $first, after: $after) {
		results { version stages createdAt createdBy readable rolledBackFrom } nextCursor } }`,
		map[string]any{"id": id, "first": first, "after": after})
	if len(r.Errors) > 0 {
		return lcVersionPage{}, r
	}
	var m map[string]lcVersionPage
	r.Decode(k.t, &m)
	for _, p := range m {
		return p, r
	}
	return lcVersionPage{}, r
}

type lcVersionPage struct {
	Results    []lcVersion
	NextCursor *string
}

// versions lists every version, newest first, in pages of 2 (the cursor too).
func (k lcKind) versions(id string) []lcVersion {
	k.t.Helper()
	var out []lcVersion
	var after *string
	for range 100 {
		p, r := k.versionsAs(k.writer(), id, 2, after)
		require.Empty(k.t, r.Errors)
		out = append(out, p.Results...)
		if p.NextCursor == nil {
			return out
		}
		after = p.NextCursor
	}
	k.t.Fatal("secretVersions paging does not end")
	return nil
}

// byVersion indexes versions by number.
func lcByVersion(vs []lcVersion) map[int]lcVersion {
	out := map[int]lcVersion{}
	for _, v := range vs {
		out[v.Version] = v
	}
	return out
}

// history is every entry of the resource's history, oldest first, as the
// domain's admin sees it (a deleted user secret's history is the admin's).
func (k lcKind) history(id string) []auditEntry {
	k.t.Helper()
	var out []auditEntry
	var after *string
	for range 1000 {
		r := k.do(k.e.admin, `query($id: ID!, $first: Int, $after: String) { %sHistory(%I: $id, first: $first, after: $after) { `+auditFields+` } }`,
			map[string]any{"id": id, "first": 50, "after": after})
		require.Empty(k.t, r.Errors)
		var m map[string]auditPageOut
		r.Decode(k.t, &m)
		for _, p := range m {
			out = append(out, p.Results...)
			after = p.NextCursor
		}
		if after == nil {
			return out
		}
	}
	k.t.Fatal("history paging does not end")
	return nil
}

func lcTypes(h []auditEntry) []string {
	out := make([]string, len(h))
	for i, e := range h {
		out[i] = e.Type
	}
	return out
}

// lcOfType returns the entries of type typ.
func lcOfType(h []auditEntry, typ string) []auditEntry {
	var out []auditEntry
	for _, e := range h {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// eventuallyHistory waits until the history satisfies ok (reads and the
// scheduler's events may land a moment after the call that caused them).
func (k lcKind) eventuallyHistory(id string, within time.Duration, ok func([]auditEntry) bool) []auditEntry {
	k.t.Helper()
	deadline := time.Now().Add(within)
	for {
		h := k.history(id)
		if ok(h) {
			return h
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("%s %s: history never got there within %s; it is %v", k, id, within, lcTypes(h))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lcWant asserts a response's error code (extensions.code).
func lcWant(t *testing.T, r gqlResponse, code string, format string, args ...any) {
	t.Helper()
	require.Equal(t, code, r.Code(), "%s (errors: %+v)", fmt.Sprintf(format, args...), r.Errors)
}

func lcIntp(n int) *int { return &n }

// lcJSON is v as compact JSON, for comparing values.
func lcJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
