package console_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/server"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// chromium finds Debian's chromium, installing it with apt-get when it is
// missing and the tests run as root (as PostgreSQL is, by localpg). Without
// it the browser test fails, unless SECRETLOG_SKIP_BROWSER=1 says to skip it.
func chromium(t *testing.T) string {
	find := func() string {
		for _, name := range []string{os.Getenv("SECRETLOG_CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"} {
			if name == "" {
				continue
			}
			if p, err := exec.LookPath(name); err == nil {
				return p
			}
		}
		return ""
	}
	if p := find(); p != "" {
		return p
	}
	if os.Getenv("SECRETLOG_SKIP_BROWSER") != "1" && os.Geteuid() == 0 {
		t.Log("chromium not found: installing it with apt-get")
		for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "chromium"}} {
			cmd := exec.Command("apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Logf("apt-get %v: %v: %s", args, err, out)
				break
			}
		}
		if p := find(); p != "" {
			return p
		}
	}
	if os.Getenv("SECRETLOG_SKIP_BROWSER") == "1" {
		t.Skip("SKIPPED: the browser test of the audit console needs Debian's chromium (apt-get install -y chromium); " +
			"skipped because SECRETLOG_SKIP_BROWSER=1")
	}
	t.Fatal("chromium is not installed: apt-get install -y chromium (or SECRETLOG_CHROMIUM=/path), " +
		"or set SECRETLOG_SKIP_BROWSER=1 to skip the browser test")
	return ""
}

type stack struct {
	srv  *server.Server
	url  string
	logs *bytes.Buffer
}

func newStack(t *testing.T) *stack {
	spec, err := events.NewKeySpec("test-1")
	require.NoError(t, err)
	keyring, err := events.ParseKeyring(spec)
	require.NoError(t, err)
	tokenKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(spec, "test-1:"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := server.New(ctx, server.Config{DatabaseURL: pgtest.NewDatabase(t), Keyring: keyring, TokenKey: tokenKey,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &stack{srv: srv, url: hs.URL}
}

func (s *stack) token(t *testing.T, id auth.Identity) string {
	tok, err := s.srv.Signer.Mint(id, time.Hour)
	require.NoError(t, err)
	return tok
}

func (s *stack) gql(t *testing.T, token, query string, vars map[string]any) json.RawMessage {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.url+"/graphql", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Data   json.RawMessage
		Errors []any
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Empty(t, out.Errors, query)
	return out.Data
}

func (s *stack) createSecret(t *testing.T, token string, in map[string]any) string {
	var out struct{ CreateSecret struct{ SecretID string } }
	require.NoError(t, json.Unmarshal(s.gql(t, token, `mutation($in: CreateSecretInput!) { createSecret(input: $in) { secretId } }`,
		map[string]any{"in": in}), &out))
	return out.CreateSecret.SecretID
}

// screenshot saves the viewport as name.png (in SECRETLOG_SCREENSHOT_DIR when
// set, for a person to look at) and checks it is a real picture: the
// viewport's size, and not blank (many colours, much of it not background).
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err, name)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644))
	img, err := png.Decode(bytes.NewReader(buf))
	require.NoError(t, err, name)
	b := img.Bounds()
	require.Equal(t, image.Rect(0, 0, 1280, 900), b, "%s: viewport size", name)
	colours := map[uint32]int{}
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[(r>>11)<<10|(g>>11)<<5|bl>>11]++
		}
	}
	most := 0
	for _, n := range colours {
		most = max(most, n)
	}
	total := (b.Dx() / 2) * (b.Dy() / 2)
	require.Greater(t, len(colours), 20, "%s: a blank or flat screenshot", name)
	require.Less(t, float64(most)/float64(total), 0.97, "%s: nearly all one colour", name)
}

// waitJS polls a JavaScript expression until it answers true.
func waitJS(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for {
			if ok, err := chromedp.Evaluate[bool](expr)(ctx, t); err == nil && ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", expr, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

func text(ctx context.Context, t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(t, err, sel)
	return s
}

func evalJS[T any](ctx context.Context, t *testing.T, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

func do(ctx context.Context, t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	require.NoError(t, chromedp.Do(ctx, steps...))
}

// The audit console in a real browser: sign in with a DOMAIN_ADMIN token,
// filter the timeline, open a secret's history with its field changes, see
// who read which value when; no value on any page, no CSP violation.
func TestConsoleInBrowser(t *testing.T) {
	exe := chromium(t)
	s := newStack(t)
	const domain = "domain-c"
	const canary = "CONSOLE-CANARY-7d3e"
	admin := s.token(t, auth.Identity{Role: auth.RoleDomainAdmin, DomainID: domain, UserID: "alice"})
	bob := s.token(t, auth.Identity{Role: auth.RoleDomainAdmin, DomainID: domain, UserID: "bob"})
	system := s.token(t, auth.Identity{Role: auth.RoleSystem, DomainID: domain, Subject: "deployer"})

	// The trail: alice creates two secrets, bob renames and retags one and
	// changes its value, the deployer reads the value.
	db := s.createSecret(t, admin, map[string]any{"name": "db", "resourceGroup": "DOMAIN", "tags": map[string]any{"env": "dev"},
		"data": map[string]any{"password": canary}})
	other := s.createSecret(t, admin, map[string]any{"name": "api-key", "resourceGroup": "DOMAIN", "data": map[string]any{"key": canary + "-2"}})
	require.NotEmpty(t, other)
	s.gql(t, bob, `mutation($id: ID!) { updateSecret(input: {secretId: $id, name: "db-main", tags: {env: "prod"}}) { name } }`, map[string]any{"id": db})
	s.gql(t, bob, `mutation($id: ID!, $d: Map!) { updateSecretData(input: {secretId: $id, data: $d}) { version } }`,
		map[string]any{"id": db, "d": map[string]any{"password": canary + "-v2"}})
	read := s.gql(t, system, `query($id: ID!) { secretData(secretId: $id) { data version } }`, map[string]any{"id": db})
	require.Contains(t, string(read), canary+"-v2")
	// Value reads reach the log through the access log's flusher.
	require.Eventually(t, func() bool {
		h := s.gql(t, admin, `query($id: ID!) { secretHistory(secretId: $id) { results { type } } }`, map[string]any{"id": db})
		return strings.Contains(string(h), "SecretDataRead")
	}, 20*time.Second, 100*time.Millisecond)

	shots := os.Getenv("SECRETLOG_SCREENSHOT_DIR")
	if shots == "" {
		shots = t.TempDir()
	} else {
		require.NoError(t, os.MkdirAll(shots, 0o755))
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// The first call starts the browser and binds its life to its context:
	// no timeout on that one.
	require.NoError(t, chromedp.Do(bctx), "start chromium")

	// Console errors, uncaught exceptions and CSP violations fail the test.
	var mu sync.Mutex
	var problems []string
	require.NoError(t, chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			problems = append(problems, "exception: "+msg)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				problems = append(problems, fmt.Sprintf("console %s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				problems = append(problems, "console.error")
			}
		}
	}))
	_, err := chromedp.Call(bctx, cdplog.Enable, cdp.Empty{})
	require.NoError(t, err)
	_, err = chromedp.Call(bctx, runtime.Enable, cdp.Empty{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	noValue := func(view string) {
		t.Helper()
		body := evalJS[string](ctx, t, `document.documentElement.outerHTML + document.body.innerText`)
		require.NotContains(t, body, canary, "%s shows no value", view)
	}

	// Sign in.
	do(ctx, t,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(s.url+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#token")))
	require.Contains(t, text(ctx, t, "main"), "session storage only")
	screenshot(t, ctx, shots, "1-signin")
	do(ctx, t,
		chromedp.SetValue(chromedp.CSS("#token"), admin),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#events tbody tr")),
		waitJS(`/\d+ events/.test(document.querySelector('#events-status').textContent)`))
	require.Equal(t, domain+" · DOMAIN_ADMIN · alice", text(ctx, t, "#identity"))
	require.Equal(t, admin, evalJS[string](ctx, t, `sessionStorage.getItem('secretlog.console.token')`))
	require.Equal(t, 0, evalJS[int](ctx, t, `localStorage.length`), "nothing in localStorage")
	require.Equal(t, "", evalJS[string](ctx, t, `document.cookie`))

	// The whole timeline, newest first: the value read on top.
	types := evalJS[[]string](ctx, t, `[...document.querySelectorAll('#events tbody tr')].map(r => r.dataset.type)`)
	require.Equal(t, []string{"SecretDataRead", "SecretDataUpdated", "SecretUpdated", "SecretCreated", "SecretCreated"}, types)
	timeline := text(ctx, t, "#events")
	require.Contains(t, timeline, "name: db → db-main")
	require.Contains(t, timeline, "data: value changed (not shown)")
	require.Contains(t, timeline, "deployer")
	noValue("timeline")
	screenshot(t, ctx, shots, "2-timeline")

	// Filter: bob's changes only.
	do(ctx, t,
		chromedp.SetValue(chromedp.CSS("#f-actor"), "bob"),
		chromedp.SetValue(chromedp.CSS("#f-types"), "SecretUpdated"),
		chromedp.Click(chromedp.CSS("#apply")),
		waitJS(`location.hash.includes('actor=bob')`),
		waitJS(`document.querySelector('#events-status') && /\d+ event/.test(document.querySelector('#events-status').textContent)`))
	types = evalJS[[]string](ctx, t, `[...document.querySelectorAll('#events tbody tr')].map(r => r.dataset.type)`)
	require.Equal(t, []string{"SecretUpdated"}, types)
	require.Contains(t, text(ctx, t, "#events tbody"), "bob")
	require.NotContains(t, text(ctx, t, "#events tbody"), "alice")
	screenshot(t, ctx, shots, "3-timeline-filtered")

	// A time range with nothing in it.
	// Whole minutes: a datetime-local input shows ":00" seconds as nothing.
	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")
	do(ctx, t,
		chromedp.Navigate(s.url+"/console/#/timeline?from="+future),
		waitJS(`document.querySelector('#events-status') && document.querySelector('#events-status').textContent === 'No events match.'`))
	require.Equal(t, future, evalJS[string](ctx, t, `document.querySelector('#f-from').value`))

	// Back to the filtered list, then open the secret's history from it.
	do(ctx, t,
		chromedp.Navigate(s.url+"/console/#/timeline?actor=bob&types=SecretUpdated"),
		chromedp.WaitVisible(chromedp.CSS("#events tbody tr a.resource")),
		chromedp.Click(chromedp.CSS("#events tbody tr a.resource")),
		chromedp.WaitVisible(chromedp.CSS("#history li.entry.read")))
	require.Equal(t, "#/history/Secret/"+db, evalJS[string](ctx, t, `location.hash`))
	require.Equal(t, "Secret "+db, text(ctx, t, "#history-title"))
	entries := evalJS[[]string](ctx, t, `[...document.querySelectorAll('#history li.entry')].map(e => e.dataset.type)`)
	require.Equal(t, []string{"SecretCreated", "SecretUpdated", "SecretDataUpdated", "SecretDataRead"}, entries)
	changes := evalJS[[][]string](ctx, t, `[...document.querySelectorAll('#history li.entry[data-type=SecretUpdated] table.changes tbody tr')].map(r => [...r.cells].map(c => c.textContent))`)
	require.Contains(t, changes, []string{"name", "db", "db-main"})
	require.Contains(t, changes, []string{"tags", `{"env":"dev"}`, `{"env":"prod"}`})
	readEntry := text(ctx, t, "#history li.entry.read")
	require.Contains(t, readEntry, "deployer")
	require.Contains(t, readEntry, "SYSTEM")
	require.Contains(t, readEntry, "read version 2")
	require.Contains(t, text(ctx, t, "#history li.entry[data-type=SecretDataUpdated]"), "value changed (not shown)")
	noValue("history")
	screenshot(t, ctx, shots, "4-history")

	// Who read which value when.
	do(ctx, t,
		chromedp.Click(chromedp.CSS("#tab-reads")),
		chromedp.WaitVisible(chromedp.CSS("#reads tbody tr")))
	rows := evalJS[[][]string](ctx, t, `[...document.querySelectorAll('#reads tbody tr')].map(r => [...r.cells].map(c => c.textContent))`)
	require.Len(t, rows, 1)
	require.Contains(t, rows[0][1], "deployer")
	require.Contains(t, rows[0][2], db)
	require.Equal(t, "version 2", rows[0][3])
	noValue("reads")
	screenshot(t, ctx, shots, "5-reads")

	// A token without the audit role gets a clear refusal.
	member := s.token(t, auth.Identity{Role: auth.RoleWorkspaceMember, DomainID: domain, WorkspaceID: "w1", UserID: "eve"})
	do(ctx, t,
		waitJS(fmt.Sprintf(`(sessionStorage.setItem('secretlog.console.token', %q), true)`, member)),
		chromedp.Navigate(s.url+"/console/#/timeline"),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#events-status .error")))
	require.Contains(t, text(ctx, t, "#events-status"), "PERMISSION_DENIED")

	// Sign out forgets the token.
	do(ctx, t,
		chromedp.Click(chromedp.CSS("#signout")),
		chromedp.WaitVisible(chromedp.CSS("#token")))
	require.Equal(t, 0, evalJS[int](ctx, t, `sessionStorage.length`))

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, problems, "browser errors (CSP violations, exceptions)")
	t.Logf("screenshots in %s", shots)
}
