package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/client"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/server"
)

// trackingListener remembers the connections it accepted, to drop them.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

// dropAll closes every connection accepted so far, websockets included,
// without a word to the peer.
func (l *trackingListener) dropAll() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.conns)
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
	return n
}

// servedStack is a server run as `secretlog serve` runs it (server.Serve on
// a listener), on an address that stays the same across restarts.
type servedStack struct {
	t    *testing.T
	cfg  server.Config
	addr string
	srv  *server.Server
	l    *trackingListener
	stop func()
}

func newServedStack(t *testing.T) *servedStack {
	t.Helper()
	spec, err := events.NewKeySpec("test-1")
	require.NoError(t, err)
	keyring, err := events.ParseKeyring(spec)
	require.NoError(t, err)
	tokenKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(spec, "test-1:"))
	require.NoError(t, err)
	s := &servedStack{t: t, addr: "127.0.0.1:0", cfg: server.Config{DatabaseURL: pgtest.NewDatabase(t), Keyring: keyring,
		TokenKey: tokenKey, Logger: slog.New(slog.NewJSONHandler(&lockedBuffer{}, nil))}}
	s.start()
	return s
}

func (s *servedStack) url() string { return "http://" + s.addr }

func (s *servedStack) start() {
	t := s.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := server.New(ctx, s.cfg)
	require.NoError(t, err)
	var l net.Listener
	require.Eventually(t, func() bool { l, err = net.Listen("tcp", s.addr); return err == nil }, 10*time.Second, 50*time.Millisecond,
		"listening on %s again", s.addr)
	s.addr, s.srv, s.l = l.Addr().String(), srv, &trackingListener{Listener: l}
	serveCtx, stopServe := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(serveCtx, s.l) }()
	var once sync.Once
	s.stop = func() { once.Do(func() { stopServe(); <-done; srv.Close() }) }
	t.Cleanup(s.stop)
}

// tokenFile mints a token for id into a 0600 file and returns its path.
func (s *servedStack) tokenFile(id auth.Identity) string {
	s.t.Helper()
	tok, err := s.srv.Signer.Mint(id, time.Hour)
	require.NoError(s.t, err)
	path := filepath.Join(s.t.TempDir(), "token")
	require.NoError(s.t, os.WriteFile(path, []byte(tok+"\n"), 0o600))
	return path
}

// printedEvents decodes audit --follow -o json output: the page, then the events.
func printedEvents(t *testing.T, out string) (client.AuditEventPage, []client.ChangeEvent) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var page client.AuditEventPage
	require.NoError(t, dec.Decode(&page))
	var evs []client.ChangeEvent
	for dec.More() {
		var e client.ChangeEvent
		require.NoError(t, dec.Decode(&e))
		evs = append(evs, e)
	}
	return page, evs
}

// TestCLIAuditFollowReconnects: audit --follow outlives its connection. The
// connection is dropped under it (the server keeps running), then the
// server shuts down while writes go on through another server, and comes
// back on the same address: the CLI reconnects with backoff each time,
// resumes after the last event it printed, and in the end has printed
// every event committed since it started exactly once, each kind's in
// commit order, and never a value.
func TestCLIAuditFollowReconnects(t *testing.T) {
	t.Parallel()
	s := newServedStack(t)
	admin := s.tokenFile(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	bob := s.tokenFile(auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "bob"})
	const canary = "canary-reconnect-5d1f"
	url := s.url()
	ok := func(token, stdin string, args ...string) string {
		t.Helper()
		r := runCLI(t, stdin, append(args, "--token-file", token, "--server", url)...)
		require.Equal(t, 0, r.status, "%v: %s", args, r)
		return r.stdout
	}
	okJSON := func(v any, token, stdin string, args ...string) {
		t.Helper()
		require.NoError(t, json.Unmarshal([]byte(ok(token, stdin, append(args, "-o", "json")...)), v))
	}
	var before secretJSON
	okJSON(&before, admin, `{"k": "`+canary+`"}`, "secret", "create", "--name", "before", "--data", "-")

	out, errOut, stop := followCLI(t, url, admin, "-o", "json")
	eventually(t, "the page", func() bool { return strings.Contains(out.String(), `"results"`) })
	printed := func() int { return strings.Count(out.String(), `"eventId"`) }

	var sec secretJSON
	var us userSecretJSON
	var ts trustedSecretJSON
	okJSON(&sec, admin, `{"k": "`+canary+`"}`, "secret", "create", "--name", "s", "--data", "-")
	okJSON(&us, bob, `{"t": "`+canary+`"}`, "user-secret", "create", "--name", "u", "--data", "-")
	okJSON(&ts, admin, `{"k": "`+canary+`"}`, "trusted-secret", "create", "--name", "t", "--data", "-")
	eventually(t, "3 events", func() bool { return printed() == 3 })

	// 1. The connection drops under the CLI; writes go on meanwhile.
	require.Positive(t, s.l.dropAll())
	// The CLI's own idle keep-alive connections were dropped too: not reused.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	ok(admin, "", "secret", "update", sec.SecretID, "--name", "s2")
	ok(admin, "", "trusted-secret", "update", ts.TrustedSecretID, "--name", "t2")
	eventually(t, "5 events after the drop", func() bool { return printed() == 5 })
	require.Contains(t, errOut.String(), "reconnecting in")

	// 2. The server shuts down; writes go through another server on the
	// same database while it is away; it comes back on the same address.
	s.stop()
	eventually(t, "told of the shutdown", func() bool { return strings.Count(errOut.String(), "reconnecting in") >= 2 })
	require.Contains(t, errOut.String(), "UNAVAILABLE")
	other, err := server.New(context.Background(), s.cfg)
	require.NoError(t, err)
	otherHTTP := httptest.NewServer(other.Handler())
	t.Cleanup(func() { otherHTTP.Close(); other.Close() })
	url = otherHTTP.URL
	ok(admin, `{"k": "`+canary+`-2"}`, "secret", "put-data", sec.SecretID, "--data", "-")
	ok(bob, `{"t": "`+canary+`-2"}`, "user-secret", "put-data", us.UserSecretID, "--data", "-")
	ok(admin, `{"k": "`+canary+`-2"}`, "trusted-secret", "put-data", ts.TrustedSecretID, "--data", "-")
	eventually(t, "an attempt that finds no server", func() bool {
		return strings.Count(errOut.String(), "reconnecting in") >= 3 && strings.Contains(errOut.String(), "cannot reach")
	})
	s.start()
	eventually(t, "8 events after the restart", func() bool { return printed() == 8 })
	url = s.url()
	ok(admin, "", "secret", "update", sec.SecretID, "--name", "s3") // live again
	eventually(t, "9 events", func() bool { return printed() == 9 })
	time.Sleep(200 * time.Millisecond) // a repeat would show now
	require.NoError(t, stop())
	t.Logf("audit --follow's standard error:\n%s", errOut.String())

	page, got := printedEvents(t, out.String())
	require.Len(t, page.Results, 1)
	var want []events.Record
	var after events.Cursor
	for {
		recs, err := events.ReadAllIn(context.Background(), s.srv.Pool, after, 1000, true)
		require.NoError(t, err)
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Stream != page.Results[0].Stream || r.Version != int64(page.Results[0].Version) {
				want = append(want, r)
			}
		}
		after = recs[len(recs)-1].Cursor
	}
	require.Len(t, got, len(want), "every event since the start, once")
	seen := map[string]bool{}
	for _, e := range got {
		require.False(t, seen[e.EventID], "printed twice: %s %s", e.Type, e.Position)
		seen[e.EventID] = true
	}
	for kind, n := range map[string]int{"Secret": 4, "UserSecret": 2, "TrustedSecret": 3} {
		var w, g []string
		for _, r := range want {
			if res, _ := resourceKind(events.ResourceOfStream(r.Stream)); res == kind {
				w = append(w, r.ID)
			}
		}
		for _, e := range got {
			if e.ResourceType == kind {
				g = append(g, e.EventID)
			}
		}
		require.Len(t, w, n, kind)
		require.Equal(t, w, g, "%s events in commit order", kind)
	}
	for _, o := range []string{out.String(), errOut.String()} {
		require.NotContains(t, o, canary)
	}
}

// resourceKind is the resource type living on a stream's resource id.
func resourceKind(id string) (string, bool) {
	switch {
	case strings.HasPrefix(id, "trusted-secret-"):
		return "TrustedSecret", true
	case strings.HasPrefix(id, "user-secret-"):
		return "UserSecret", true
	case strings.HasPrefix(id, "secret-"):
		return "Secret", true
	}
	return "", false
}

// TestCLIAuditFollowTokenExpires: when the token expires the server ends
// the subscriptions; the CLI tries again, is refused, and stops with
// UNAUTHENTICATED (status 3) instead of retrying forever.
func TestCLIAuditFollowTokenExpires(t *testing.T) {
	t.Parallel()
	s := newServedStack(t)
	tok, err := s.srv.Signer.Mint(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"}, 2*time.Second)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte(tok+"\n"), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	var out, errOut lockedBuffer
	root := rootCommand()
	root.SetArgs([]string{"audit", "--follow", "--token-file", path, "--server", s.url()})
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.ExecuteContext(ctx)
	require.Error(t, err, "stderr:\n%s", errOut.String())
	require.NoError(t, ctx.Err(), "it stopped by itself")
	require.Equal(t, 3, exitCode(err), "%v\n%s", err, errOut.String())
	require.Contains(t, errOut.String(), "reconnecting in", "it tried once more")
}
