package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/feed"
	"github.com/secretlog/secretlog/server"
)

// trustedLog is every trusted-secret event of the log, in commit order.
func trustedLog(t *testing.T, s *stack) []events.Record {
	t.Helper()
	var out []events.Record
	for _, rec := range logOrder(t, s.Server.Pool) {
		if strings.HasPrefix(events.ResourceOfStream(rec.Stream), "trusted-secret-") {
			out = append(out, rec)
		}
	}
	return out
}

// recordIDs are the event ids of recs that keep says to keep.
func recordIDs(recs []events.Record, keep func(events.Record) bool) []string {
	out := []string{}
	for _, r := range recs {
		if keep == nil || keep(r) {
			out = append(out, r.ID)
		}
	}
	return out
}

// nextN reads n events of c's subscription.
func (c *wsClient) nextN(n int) []changeEvent {
	c.t.Helper()
	out := make([]changeEvent, 0, n)
	for range n {
		out = append(out, c.next(10*time.Second))
	}
	return out
}

// quiet requires that nothing arrives on c within d.
func (c *wsClient) quiet(d time.Duration) {
	c.t.Helper()
	m, err := c.read(d)
	require.ErrorIs(c.t, err, context.DeadlineExceeded, "unexpected message %s %s", m.Type, m.Payload)
}

func (c *wsClient) scan(t *testing.T, forbidden ...string) {
	t.Helper()
	for _, raw := range c.raw {
		for _, f := range forbidden {
			require.NotContains(t, raw, f)
		}
	}
}

// TestTrustedSecretSubscription: over real websockets, trustedSecretEvents
// shows each token the trusted-secret changes the trusted secret queries
// would show it (DOMAIN_ADMIN: its domain's; WORKSPACE_OWNER and
// WORKSPACE_MEMBER: the DOMAIN ones and their workspace's; USER: none), in
// commit order, and none of another domain's; secretEvents carries none of
// them; after replays exactly the gap, then continues live; no message holds
// a value.
func TestTrustedSecretSubscription(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	tk := apiNewTokens(s)
	member2 := s.token(auth.Identity{UserID: "erin", Role: auth.RoleWorkspaceMember, DomainID: "domain-a", WorkspaceID: "ws-2"})
	const canary = "CANARY-trusted-feed-4b9e"
	tokens := map[string]string{"admin": tk.admin, "adminB": tk.adminB, "owner": tk.owner, "member2": member2, "bob": tk.bob}
	// Who sees what, by the rules of the trusted secret queries.
	sees := map[string]func(tenant events.Tenant) bool{
		"admin":  func(tn events.Tenant) bool { return tn.DomainID == "domain-a" },
		"adminB": func(tn events.Tenant) bool { return tn.DomainID == "domain-b" },
		"owner": func(tn events.Tenant) bool {
			return tn.DomainID == "domain-a" && (tn.WorkspaceID == "" || tn.WorkspaceID == "ws-1")
		},
		"member2": func(tn events.Tenant) bool {
			return tn.DomainID == "domain-a" && (tn.WorkspaceID == "" || tn.WorkspaceID == "ws-2")
		},
		"bob": func(events.Tenant) bool { return false },
	}
	subs := map[string]*wsClient{}
	for name, tok := range tokens {
		subs[name] = dialWS(t, s.HTTP.URL, tok, 0)
		subs[name].subscribe(name, "trustedSecretEvents", "")
	}
	plain := dialWS(t, s.HTTP.URL, tk.admin, 0)
	plain.subscribe("plain", "secretEvents", "")
	waitSubscribers(t, s.Server, len(subs)+1)

	data := map[string]any{"password": canary}
	root := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "root", "resourceGroup": "DOMAIN", "data": data})
	ws1 := apiCreateTrusted(t, s, tk.owner, map[string]any{"name": "ws1", "resourceGroup": "WORKSPACE", "workspaceId": "ws-1", "data": data})
	ws2 := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "ws2", "resourceGroup": "WORKSPACE", "workspaceId": "ws-2", "data": data})
	foreign := apiCreateTrusted(t, s, tk.adminB, map[string]any{"name": "b", "resourceGroup": "DOMAIN", "data": data})
	apiOK(t, s, tk.admin, apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": root.TrustedSecretID, "name": "root2"}}, nil)
	apiOK(t, s, tk.owner, apiUpdateTrustedDataMutation, map[string]any{"in": map[string]any{"trustedSecretId": ws1.TrustedSecretID,
		"data": map[string]any{"password": canary + "-2"}}}, nil)
	apiOK(t, s, tk.adminB, apiUpdateTrustedDataMutation, map[string]any{"in": map[string]any{"trustedSecretId": foreign.TrustedSecretID,
		"data": map[string]any{"password": canary + "-b"}}}, nil)
	require.Equal(t, canary, apiTrustedDataOf(t, s, tk.system, root.TrustedSecretID)["password"])

	// The queries' answer, per token, before ws2 is deleted.
	visible := map[string][]string{}
	for name, tok := range tokens {
		visible[name] = []string{}
		for _, ts := range []apiTrusted{root, ws1, ws2, foreign} {
			r := apiDo(t, s, tok, apiTrustedQuery, map[string]any{"id": ts.TrustedSecretID})
			if len(r.Errors) == 0 {
				visible[name] = append(visible[name], ts.TrustedSecretID)
			} else {
				require.Equal(t, "NOT_FOUND", r.Code(), "%s reading %s", name, ts.Name)
			}
		}
	}
	require.ElementsMatch(t, []string{root.TrustedSecretID, ws1.TrustedSecretID, ws2.TrustedSecretID}, visible["admin"])
	require.Empty(t, visible["bob"])
	apiOK(t, s, tk.admin, apiDeleteTrustedMutation, map[string]any{"id": ws2.TrustedSecretID}, nil)
	// Last, one event each domain's subscribers see.
	apiCreateTrusted(t, s, tk.adminB, map[string]any{"name": "b-last", "resourceGroup": "DOMAIN", "data": data})
	last := apiCreateTrusted(t, s, tk.admin, map[string]any{"name": "a-last", "resourceGroup": "DOMAIN", "data": data})
	sentinel := s.createSecret(tk.admin, map[string]any{"name": "plain", "resourceGroup": "DOMAIN", "data": data})

	var recs []events.Record
	require.Eventually(t, func() bool {
		recs = trustedLog(t, s)
		return len(recs) > 0 && events.ResourceOfStream(recs[len(recs)-1].Stream) == last.TrustedSecretID &&
			strings.Contains(fmt.Sprint(recordTypes(recs)), "TrustedSecretDataRead")
	}, 10*time.Second, 20*time.Millisecond, "every write (and the read) settled in the log")

	got := map[string][]changeEvent{}
	for name, c := range subs {
		want := recordIDs(recs, func(r events.Record) bool { return sees[name](r.Metadata.Tenant) })
		got[name] = c.nextN(len(want))
		require.Equal(t, want, eventIDs(got[name]), "%s: its events, in commit order", name)
		seenIDs := []string{}
		for _, ts := range []apiTrusted{root, ws1, ws2, foreign} {
			if slices.ContainsFunc(got[name], func(e changeEvent) bool { return e.ResourceID == ts.TrustedSecretID }) {
				seenIDs = append(seenIDs, ts.TrustedSecretID)
			}
		}
		require.ElementsMatch(t, visible[name], seenIDs, "%s sees the trusted secrets the queries show it", name)
	}
	for _, c := range subs {
		c.quiet(300 * time.Millisecond)
	}
	require.Equal(t, sentinel, plain.next(10*time.Second).ResourceID, "secretEvents carries no trusted-secret event")

	// What the admin's events say (names, never values).
	byType := map[string]changeEvent{}
	for _, e := range got["admin"] {
		if e.ResourceID == root.TrustedSecretID || e.ResourceID == ws1.TrustedSecretID || e.ResourceID == ws2.TrustedSecretID {
			byType[e.ResourceID+" "+e.Type] = e
		}
	}
	created := byType[root.TrustedSecretID+" TrustedSecretCreated.v1"]
	require.Contains(t, created.ChangedFields, "data")
	require.NotContains(t, created.ChangedFields, "trustedSecretId")
	require.Equal(t, 1, *created.DataVersion)
	require.Equal(t, []string{"name"}, byType[root.TrustedSecretID+" TrustedSecretUpdated.v1"].ChangedFields)
	read := byType[root.TrustedSecretID+" TrustedSecretDataRead.v1"]
	require.Equal(t, []string{}, read.ChangedFields)
	require.Equal(t, 1, *read.DataVersion)
	put := byType[ws1.TrustedSecretID+" TrustedSecretDataUpdated.v1"]
	require.Equal(t, []string{"data"}, put.ChangedFields)
	require.Equal(t, 2, *put.DataVersion)
	require.Equal(t, "ws-1", put.Tenant.WorkspaceID)
	require.Equal(t, []string{"deleted"}, byType[ws2.TrustedSecretID+" TrustedSecretDeleted.v1"].ChangedFields)

	// Resume: a new connection after the admin's third event replays the
	// rest and what was written while it was away, then continues live.
	admin := got["admin"]
	subs["admin"].conn.CloseNow()
	apiOK(t, s, tk.admin, apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": root.TrustedSecretID, "name": "root3"}}, nil)
	apiOK(t, s, tk.owner, apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": ws1.TrustedSecretID, "name": "ws1b"}}, nil)
	apiOK(t, s, tk.adminB, apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": foreign.TrustedSecretID, "name": "b2"}}, nil)
	require.Eventually(t, func() bool { recs = trustedLog(t, s); return len(recs) >= len(admin)+5 }, 10*time.Second, 20*time.Millisecond)
	wantA := recordIDs(recs, func(r events.Record) bool { return sees["admin"](r.Metadata.Tenant) })
	require.Len(t, wantA, len(admin)+2)
	r := dialWS(t, s.HTTP.URL, tk.admin, 0)
	r.subscribe("r", "trustedSecretEvents", fmt.Sprintf(`after: %q`, admin[2].Position))
	require.Equal(t, wantA[3:], eventIDs(r.nextN(len(wantA)-3)), "exactly the gap, in order")
	apiOK(t, s, tk.admin, apiUpdateTrustedMutation, map[string]any{"in": map[string]any{"trustedSecretId": last.TrustedSecretID, "name": "a-last2"}}, nil)
	live := r.next(10 * time.Second)
	require.Equal(t, last.TrustedSecretID, live.ResourceID)
	require.Equal(t, "TrustedSecretUpdated.v1", live.Type)
	// A filter: one trusted secret's updates only, replayed from the start.
	f := dialWS(t, s.HTTP.URL, tk.owner, 0)
	f.subscribe("f", "trustedSecretEvents", fmt.Sprintf(`filter: {resourceId: %q, types: ["TrustedSecretUpdated"]}, after: %q`,
		ws1.TrustedSecretID, admin[0].Position))
	fe := f.next(10 * time.Second)
	require.Equal(t, ws1.TrustedSecretID, fe.ResourceID)
	require.Equal(t, "TrustedSecretUpdated.v1", fe.Type)
	f.quiet(300 * time.Millisecond)

	for _, c := range append([]*wsClient{plain, r, f}, subs["admin"], subs["adminB"], subs["owner"], subs["member2"], subs["bob"]) {
		c.scan(t, canary, "password")
	}
	require.NotContains(t, s.Logs.String(), canary)
}

func recordTypes(recs []events.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Type
	}
	return out
}

// resumeAfter matches the position a cut-off subscription's error names.
var resumeAfter = regexp.MustCompile(`after: \\"(\d+:\d+)\\"`)

// TestTrustedSecretSubscriptionSlowCutOff: a trustedSecretEvents client
// that stops reading is cut off like any subscriber (RESOURCE_EXHAUSTED,
// connection closed); resuming after the position the error names (or the
// last event it got) loses and repeats nothing.
func TestTrustedSecretSubscriptionSlowCutOff(t *testing.T) {
	if asyncProjections {
		t.Skip("not yet cut off reliably with asynchronous projections (writes arrive slower than the socket drains); open item in the README")
	}
	t.Parallel()
	s := newStack(t)
	api := s.sibling(func(c *server.Config) { c.NoWorker, c.Limits.SubscriptionBuffer = true, 4 })
	tk := apiNewTokens(s)
	hot := apiCreateTrusted(t, api, tk.admin, map[string]any{"name": "hot", "resourceGroup": "DOMAIN",
		"tags": map[string]any{"padding": strings.Repeat("p", 2000)}, "data": map[string]any{"k": "v"}})
	// The database holds hot's events only: no filter needed.
	slow := dialWS(t, api.HTTP.URL, tk.admin, 2048)
	slow.subscribe("s", "trustedSecretEvents", `after: "0:0"`)
	waitSubscribers(t, api.Server, 1)

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				if api.Server.Feed.Subscribers() == 0 {
					return
				}
				doGraphQL(t, api.HTTP.URL, tk.admin, apiUpdateTrustedMutation, map[string]any{"in": map[string]any{
					"trustedSecretId": hot.TrustedSecretID, "name": fmt.Sprintf("n-%d-%d", w, i)}})
			}
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool { return api.Server.Feed.Subscribers() == 0 }, 10*time.Second, 20*time.Millisecond,
		"the slow subscriber was cut off")
	require.Eventually(t, func() bool {
		m, _ := scrape(t, api.HTTP.URL)
		return m["secretlog_subscriptions_cut_total"] == 1
	}, 10*time.Second, 20*time.Millisecond, "the cut-off is counted")
	var before []changeEvent
	resume := "0:0" // the start of the log, if the client got nothing
	for {
		m, err := slow.read(15 * time.Second)
		if err != nil {
			require.NotErrorIs(t, err, context.DeadlineExceeded, "the connection was closed")
			break
		}
		switch m.Type {
		case "next":
			var p struct{ Data map[string]changeEvent }
			require.NoError(t, json.Unmarshal(m.Payload, &p))
			before = append(before, p.Data["trustedSecretEvents"])
		case "error":
			require.Contains(t, string(m.Payload), "RESOURCE_EXHAUSTED")
			require.Contains(t, string(m.Payload), "fell more than 4 events behind")
			sub := resumeAfter.FindStringSubmatch(string(m.Payload))
			require.NotNil(t, sub, "the error names where to resume: %s", m.Payload)
			resume = sub[1]
		}
	}
	sawErr := resume != "0:0"
	if !sawErr && len(before) > 0 {
		resume = before[len(before)-1].Position // the error could not be written
	}
	t.Logf("%d events before the cut; error delivered: %v; resuming after %q", len(before), sawErr, resume)
	{
		c, err := feed.ParsePosition(resume)
		require.NoError(t, err)
		for _, e := range before {
			p, err := feed.ParsePosition(e.Position)
			require.NoError(t, err)
			require.False(t, c.Before(p), "the error's position is at or after every event the client got")
		}
	}

	want := recordIDs(trustedLog(t, s), nil)
	r := dialWS(t, api.HTTP.URL, tk.admin, 0)
	r.subscribe("r", "trustedSecretEvents", fmt.Sprintf(`after: %q`, resume))
	after := r.nextN(len(want) - len(before))
	require.Equal(t, want, eventIDs(append(before, after...)), "every event of the trusted secret once, in order")
	r.quiet(300 * time.Millisecond)
}
