package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/server"
)

// sibling starts another server on s's database (same keys), configured by configure.
func (s *stack) sibling(configure func(*server.Config)) *stack {
	n := &stack{t: s.t, DatabaseURL: s.DatabaseURL, Logs: &syncBuffer{}, keyring: s.keyring, tokenKey: s.tokenKey, configure: configure}
	n.start()
	return n
}

// wsClient speaks graphql-transport-ws over a real websocket.
type wsClient struct {
	t    testing.TB
	conn *websocket.Conn
	raw  []string // every message received, as sent
}

type wsMsg struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialWS connects and authenticates with token in connection_init's
// payload. rcvBuf > 0 shrinks the client's socket receive buffer (a client
// that stops reading then fills the server's socket quickly).
func dialWS(t testing.TB, base, token string, rcvBuf int) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dialer := &net.Dialer{}
	if rcvBuf > 0 {
		dialer.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf) })
			if err != nil {
				return err
			}
			return serr
		}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	conn, _, err := websocket.Dial(ctx, strings.Replace(base, "http://", "ws://", 1)+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPClient: hc})
	require.NoError(t, err)
	conn.SetReadLimit(1 << 20)
	c := &wsClient{t: t, conn: conn}
	t.Cleanup(func() { _ = conn.CloseNow() })
	c.send(wsMsg{Type: "connection_init", Payload: json.RawMessage(fmt.Sprintf(`{"Authorization": "Bearer %s"}`, token))})
	m, err := c.read(10 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "connection_ack", m.Type, "payload %s", m.Payload)
	return c
}

func (c *wsClient) send(m wsMsg) {
	c.t.Helper()
	b, err := json.Marshal(m)
	require.NoError(c.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(c.t, c.conn.Write(ctx, websocket.MessageText, b))
}

// read returns the next message other than ping/pong (answering pings).
func (c *wsClient) read(within time.Duration) (wsMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			return wsMsg{}, err
		}
		c.raw = append(c.raw, string(b))
		var m wsMsg
		if err := json.Unmarshal(b, &m); err != nil {
			return wsMsg{}, err
		}
		switch m.Type {
		case "ping":
			c.send(wsMsg{Type: "pong"})
			continue
		case "pong", "ka":
			continue
		}
		return m, nil
	}
}

const changeEventFields = `position eventId type resourceType resourceId version dataVersion occurredAt correlationId
  changedFields actor { userId role domainId subject } tenant { domainId workspaceId projectId userId }`

type changeEvent struct {
	Position      string
	EventID       string
	Type          string
	ResourceType  string
	ResourceID    string
	Version       int
	DataVersion   *int
	ChangedFields []string
	Tenant        struct{ DomainID, WorkspaceID, ProjectID, UserID string }
}

// subscribe starts field (secretEvents or userSecretEvents) as subscription id.
func (c *wsClient) subscribe(id, field string, args string) {
	c.t.Helper()
	if args != "" {
		args = "(" + args + ")"
	}
	q := fmt.Sprintf(`subscription { %s%s { %s } }`, field, args, changeEventFields)
	b, _ := json.Marshal(map[string]any{"query": q})
	c.send(wsMsg{Type: "subscribe", ID: id, Payload: b})
}

// next reads the next event of a subscription, failing on anything else.
func (c *wsClient) next(within time.Duration) changeEvent {
	c.t.Helper()
	m, err := c.read(within)
	require.NoError(c.t, err, "waiting for an event")
	require.Equal(c.t, "next", m.Type, "message %s", m.Payload)
	var p struct {
		Data   map[string]changeEvent
		Errors []gqlError
	}
	require.NoError(c.t, json.Unmarshal(m.Payload, &p))
	require.Empty(c.t, p.Errors)
	for _, ev := range p.Data {
		return ev
	}
	c.t.Fatalf("empty event %s", m.Payload)
	return changeEvent{}
}

// waitSubscribers waits until srv delivers live events to n subscribers.
func waitSubscribers(t testing.TB, srv *server.Server, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return srv.Feed.Subscribers() == n }, 10*time.Second, 10*time.Millisecond,
		"want %d live subscribers", n)
}

func (s *stack) updateSecretName(token, id, name string) {
	s.t.Helper()
	s.mustOK(token, `mutation($in: UpdateSecretInput!) { updateSecret(input: $in) { secretId } }`,
		map[string]any{"in": map[string]any{"secretId": id, "name": name}}, nil)
}

// TestSubscriptionTenancyOrderAndResume: over a real websocket, a domain's
// subscriber sees that domain's changes in commit order and none of another
// domain's; a WORKSPACE_MEMBER stops seeing a secret moved out of its
// project; resuming with after replays exactly the gap.
func TestSubscriptionTenancyOrderAndResume(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	adminA := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"})
	adminB := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-b", UserID: "bob"})
	member := s.token(auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: "domain-a", WorkspaceID: "ws-1",
		Projects: []string{"p-1"}, UserID: "carol"})
	const canary = "CANARY-feed-5f1e2d"

	ca := dialWS(t, s.HTTP.URL, adminA, 0)
	ca.subscribe("a", "secretEvents", "")
	cm := dialWS(t, s.HTTP.URL, member, 0)
	cm.subscribe("m", "secretEvents", "")
	cu := dialWS(t, s.HTTP.URL, adminA, 0)
	cu.subscribe("u", "userSecretEvents", "")
	waitSubscribers(t, s.Server, 3)

	x := s.createSecret(adminA, map[string]any{"name": "x", "resourceGroup": "PROJECT", "workspaceId": "ws-1", "projectId": "p-1",
		"data": map[string]any{"password": canary}})
	y := s.createSecret(adminB, map[string]any{"name": "y", "resourceGroup": "DOMAIN", "data": map[string]any{"password": canary}})
	s.updateSecretName(adminA, x, "x2")
	s.updateSecretName(adminB, y, "y2")
	// The member sees x while it lives in its project …
	require.Equal(t, []string{"SecretCreated.v1", "SecretUpdated.v1"}, eventTypes([]changeEvent{cm.next(10 * time.Second), cm.next(10 * time.Second)}))
	// … not once it is moved to another project (checked against where it is now) …
	s.mustOK(adminA, `mutation($in: UpdateSecretInput!) { updateSecret(input: $in) { secretId } }`,
		map[string]any{"in": map[string]any{"secretId": x, "projectId": "p-2"}}, nil)
	s.updateSecretName(adminA, x, "x3")
	z := s.createSecret(adminA, map[string]any{"name": "z", "resourceGroup": "DOMAIN", "data": map[string]any{"password": canary}})
	mgot := cm.next(10 * time.Second)
	require.Equal(t, z, mgot.ResourceID, "x is in p-2 now, so none of its events; z is a DOMAIN secret")
	// … and again once it is back.
	s.mustOK(adminA, `mutation($in: UpdateSecretInput!) { updateSecret(input: $in) { secretId } }`,
		map[string]any{"in": map[string]any{"secretId": x, "projectId": "p-1"}}, nil)
	back := cm.next(10 * time.Second)
	require.Equal(t, x, back.ResourceID)
	require.Equal(t, "p-1", back.Tenant.ProjectID)

	var got []changeEvent
	for range 6 {
		got = append(got, ca.next(10*time.Second))
	}
	require.Equal(t, x, got[5].ResourceID)
	got = got[:5]
	require.Equal(t, []string{x, x, x, x, z}, resourceIDs(got))
	require.Equal(t, []string{"SecretCreated.v1", "SecretUpdated.v1", "SecretUpdated.v1", "SecretUpdated.v1", "SecretCreated.v1"}, eventTypes(got))
	require.Equal(t, []string{"name"}, got[1].ChangedFields)
	require.Equal(t, []string{"projectId"}, got[2].ChangedFields)
	require.Contains(t, got[0].ChangedFields, "data")
	require.Equal(t, 1, *got[0].DataVersion)
	require.Equal(t, 1, *got[3].DataVersion, "data version filled for an update")
	for _, ev := range got {
		require.Equal(t, "domain-a", ev.Tenant.DomainID)
	}

	// Resume: a new connection after the first event replays the gap.
	ca.conn.CloseNow()
	w := s.createSecret(adminA, map[string]any{"name": "w", "resourceGroup": "DOMAIN", "data": map[string]any{"password": canary}})
	r := dialWS(t, s.HTTP.URL, adminA, 0)
	r.subscribe("r", "secretEvents", fmt.Sprintf(`after: %q`, got[0].Position))
	var replay []changeEvent
	for range 6 {
		replay = append(replay, r.next(10*time.Second))
	}
	require.Equal(t, eventIDs(got[1:]), eventIDs(replay[:4]))
	require.Equal(t, x, replay[4].ResourceID, "the move back")
	require.Equal(t, w, replay[5].ResourceID)
	// … and continues live after the replay.
	s.updateSecretName(adminA, w, "w2")
	live := r.next(10 * time.Second)
	require.Equal(t, w, live.ResourceID)
	require.Equal(t, "SecretUpdated.v1", live.Type)

	// A filter (auditEvents-style): only z's events.
	f := dialWS(t, s.HTTP.URL, adminA, 0)
	f.subscribe("f", "secretEvents", fmt.Sprintf(`filter: {resourceId: %q, types: ["SecretUpdated"]}, after: %q`, z, got[0].Position))
	s.updateSecretName(adminA, z, "z2")
	fe := f.next(10 * time.Second)
	require.Equal(t, z, fe.ResourceID)
	require.Equal(t, "SecretUpdated.v1", fe.Type)

	// A user-secret subscriber saw none of this.
	us := s.createUserSecret(adminA, map[string]any{"name": "mine", "data": map[string]any{"token": canary}})
	ue := cu.next(10 * time.Second)
	require.Equal(t, us, ue.ResourceID)

	for _, c := range []*wsClient{ca, cm, cu, r, f} {
		for _, raw := range c.raw {
			require.NotContains(t, raw, canary)
			require.NotContains(t, raw, "password")
		}
	}
}

// TestSlowSubscriberCutOff: a client that never reads is disconnected once
// its buffer overflows, with RESOURCE_EXHAUSTED for a client that reads
// what came before.
func TestSlowSubscriberCutOff(t *testing.T) {
	if asyncProjections {
		t.Skip("not yet cut off reliably with asynchronous projections (writes arrive slower than the socket drains); open item in the README")
	}
	t.Parallel()
	s := newStack(t)
	s.stop()
	s.configure = func(c *server.Config) { c.Limits.SubscriptionBuffer = 4 }
	s.start()
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	slow := dialWS(t, s.HTTP.URL, admin, 2048)
	slow.subscribe("s", "secretEvents", "")
	waitSubscribers(t, s.Server, 1)

	// Enough events to fill the client's small window and the buffer.
	id := s.createSecret(admin, map[string]any{"name": "hot", "resourceGroup": "DOMAIN",
		"tags": map[string]any{"padding": strings.Repeat("p", 2000)}, "data": map[string]any{"k": "v"}})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				if s.Server.Feed.Subscribers() == 0 {
					return
				}
				doGraphQL(t, s.HTTP.URL, admin, `mutation($in: UpdateSecretInput!) { updateSecret(input: $in) { secretId } }`,
					map[string]any{"in": map[string]any{"secretId": id, "name": fmt.Sprintf("n-%d-%d", w, i)}})
			}
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool { return s.Server.Feed.Subscribers() == 0 }, 10*time.Second, 20*time.Millisecond,
		"the slow subscriber was cut off")
	// Reading now: some events, then the error (if it could still be
	// written) and the end of the connection.
	var sawErr bool
	for {
		m, err := slow.read(15 * time.Second)
		if err != nil {
			require.NotErrorIs(t, err, context.DeadlineExceeded, "the connection was closed")
			break
		}
		if m.Type == "error" {
			require.Contains(t, string(m.Payload), "RESOURCE_EXHAUSTED")
			require.Contains(t, string(m.Payload), "fell more than 4 events behind")
			sawErr = true
		}
	}
	t.Logf("error message delivered before the close: %v", sawErr)

	// A client that reads keeps working on the same server.
	ok := dialWS(t, s.HTTP.URL, admin, 0)
	ok.subscribe("o", "secretEvents", "")
	waitSubscribers(t, s.Server, 1)
	s.updateSecretName(admin, id, "after")
	require.Equal(t, id, ok.next(10*time.Second).ResourceID)
}

// TestSubscriptionAuth: no token, a bad token, or a bad position are refused.
func TestSubscriptionAuth(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(s.HTTP.URL, "http://", "ws://", 1)+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	require.NoError(t, err)
	defer conn.CloseNow()
	require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{"type":"connection_init","payload":{"Authorization":"Bearer nope"}}`)))
	_, _, err = conn.Read(ctx)
	require.Error(t, err, "an invalid token closes the connection")

	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	c := dialWS(t, s.HTTP.URL, admin, 0)
	c.subscribe("x", "secretEvents", `after: "bogus"`)
	m, err := c.read(10 * time.Second)
	require.NoError(t, err)
	require.Contains(t, string(m.Payload), "INVALID_ARGUMENT")
}

func resourceIDs(evs []changeEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ResourceID
	}
	return out
}

func eventTypes(evs []changeEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

func eventIDs(evs []changeEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.EventID
	}
	return out
}
