package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/feed"
	"github.com/secretlog/secretlog/server"
)

// startNATS runs a real NATS server with JetStream in-process.
func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(ns.Shutdown)
	return ns.ClientURL()
}

// streamMsg is one message as JetStream stored it.
type streamMsg struct {
	subject string
	id      string
	env     feed.Envelope
	raw     string // data and headers, for the canary scan
}

// readStream reads every message of the stream, in stream order.
func readStream(t *testing.T, url string) []streamMsg {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	info, err := js.StreamInfo(feed.DefaultStream)
	require.NoError(t, err)
	var out []streamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := js.GetMsg(feed.DefaultStream, seq)
		require.NoError(t, err)
		env, err := feed.Decode(m.Data)
		require.NoError(t, err)
		hdr, _ := json.Marshal(m.Header)
		out = append(out, streamMsg{subject: m.Subject, id: m.Header.Get(nats.MsgIdHdr), env: env, raw: string(m.Data) + string(hdr)})
	}
	return out
}

// logOrder is every event of the log in commit order.
func logOrder(t *testing.T, pool *pgxpool.Pool) []events.Record {
	t.Helper()
	var out []events.Record
	var after events.Cursor
	for {
		recs, err := events.ReadAllIn(context.Background(), pool, after, 1000, true)
		require.NoError(t, err)
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		after = recs[len(recs)-1].Cursor
	}
}

// killingPublisher publishes to next and, at the killAt-th message, kills
// its forwarder right after publishing: its database sessions are
// terminated (the consuming transaction, and with it the offset of what it
// published, is lost, and the lease is released) and it fails.
type killingPublisher struct {
	next   message.Publisher
	killAt int64
	kill   func()
	n      atomic.Int64
}

func (p *killingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := p.next.Publish(topic, msgs...); err != nil {
		return err
	}
	if p.n.Add(int64(len(msgs))) == p.killAt {
		p.kill()
		return errors.New("killed")
	}
	return nil
}

func (p *killingPublisher) Close() error { return nil }

// TestFeedToJetStream: with NATS, a forwarder publishes every committed
// event to a real JetStream server exactly once per event (repeats of a
// killed forwarder are dropped by Nats-Msg-Id), in commit order, on the
// documented subjects, while writes continue; the API server (stateless,
// --no-worker) feeds its websocket subscribers from JetStream; no message
// holds a value or a ciphertext.
func TestFeedToJetStream(t *testing.T) {
	t.Parallel()
	if asyncProjections {
		t.Skip("writes through an API server with no worker for a while: with asynchronous projections each would wait for a runner (covered by TestTwoAPIServersOneWorker)")
	}
	natsURL := startNATS(t)
	s := newStack(t)
	s.stop()
	s.configure = func(c *server.Config) { c.NoWorker, c.NatsURL = true, natsURL }
	s.start()
	require.Nil(t, s.Server.FeedRunner, "an API server runs no forwarder")
	const canary = "CANARY-nats-7c3a91"

	// The first forwarder, on a pool of its own that the test kills.
	pcfg, err := pgxpool.ParseConfig(s.DatabaseURL)
	require.NoError(t, err)
	pcfg.ConnConfig.RuntimeParams["application_name"] = "feed-victim"
	vpool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	require.NoError(t, err)
	defer vpool.Close()
	nc, err := feed.Connect(natsURL, "victim")
	require.NoError(t, err)
	defer nc.Close()
	npub, err := feed.NewNATSPublisher(nc, slog.Default())
	require.NoError(t, err)
	vctx, vcancel := context.WithCancel(context.Background())
	defer vcancel()
	killed := make(chan struct{})
	kp := &killingPublisher{next: npub, killAt: 30, kill: func() {
		vcancel()
		_, err := s.Server.Pool.Exec(context.Background(),
			`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'feed-victim'`)
		if err != nil {
			t.Errorf("terminate: %v", err)
		}
		close(killed)
	}}
	victim := &feed.Forwarder{Publisher: kp, TopicOf: feed.Subject}
	vrunner := feed.NewForwarderRunner(vpool, slog.Default(), victim)
	vdone := make(chan struct{})
	go func() { defer close(vdone); _ = vrunner.Run(vctx) }()

	admins := map[string]string{
		"domain-a": s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"}),
		"domain.b": s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain.b", UserID: "bob"}),
	}
	sub := dialWS(t, s.HTTP.URL, admins["domain-a"], 0)
	sub.subscribe("a", "secretEvents", "")
	waitSubscribers(t, s.Server, 1)

	// Writers keep going through the kill and the restart.
	var wg sync.WaitGroup
	var worker *stack
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			domain := []string{"domain-a", "domain.b"}[w%2]
			tok := admins[domain]
			for i := range 6 {
				id := s.createSecret(tok, map[string]any{"name": fmt.Sprintf("s-%d-%d", w, i), "resourceGroup": "DOMAIN",
					"data": map[string]any{"password": canary}})
				for j := range 3 {
					s.updateSecretName(tok, id, fmt.Sprintf("s-%d-%d-%d", w, i, j))
				}
			}
		}()
	}
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("the first forwarder never reached the kill")
	}
	<-vdone
	// A worker takes over (its forwarder starts from the checkpoint).
	worker = s.sibling(func(c *server.Config) { c.WorkerOnly, c.NatsURL = true, natsURL })
	wg.Wait()

	require.Eventually(t, func() bool { return len(logOrder(t, s.Server.Pool)) == 4*6*4 }, 10*time.Second, 20*time.Millisecond,
		"every write settled in the log")
	want := logOrder(t, s.Server.Pool)
	require.Eventually(t, func() bool {
		return worker.Server.Forwarder.Published() > 0 && len(readStream(t, natsURL)) >= len(want)
	}, 30*time.Second, 100*time.Millisecond, "every event reaches the stream")
	time.Sleep(300 * time.Millisecond) // anything more would be a duplicate
	got := readStream(t, natsURL)
	republished := victim.Published() + worker.Server.Forwarder.Published() - int64(len(want))
	t.Logf("%d events; the killed forwarder published %d (acknowledged fewer), %d published again after the restart and dropped by Nats-Msg-Id",
		len(want), kp.n.Load(), republished)
	require.Positive(t, republished, "the kill left published but unacknowledged events")
	require.Len(t, got, len(want), "exactly one message per event")
	for i, rec := range want {
		m := got[i]
		require.Equal(t, rec.ID, m.env.EventID, "message %d in commit order", i)
		require.Equal(t, rec.ID, m.id, "Nats-Msg-Id is the event id")
		require.Equal(t, feed.FormatPosition(rec.Cursor), m.env.Position)
		domain := feed.SubjectToken(rec.Metadata.Tenant.DomainID)
		require.Equal(t, "secretlog."+domain+".secret."+events.ResourceOfStream(rec.Stream), m.subject)
	}
	require.True(t, strings.HasPrefix(got[len(got)-1].subject, "secretlog.domain-a.") ||
		strings.HasPrefix(got[len(got)-1].subject, "secretlog.domain%2Eb."), "the '.' of domain.b is escaped")

	// The stateless API server's subscriber (from JetStream) saw every
	// domain-a event, once, in order, and nothing of domain.b.
	var wantA []string
	for _, rec := range want {
		if rec.Metadata.Tenant.DomainID == "domain-a" {
			wantA = append(wantA, rec.ID)
		}
	}
	var gotA []string
	for len(gotA) < len(wantA) {
		gotA = append(gotA, sub.next(20*time.Second).EventID)
	}
	require.Equal(t, wantA, gotA)

	// Canary: no value, no ciphertext, in any message or subscription.
	var sealed []string
	for _, rec := range want {
		var p struct{ Data *events.Sealed }
		require.NoError(t, json.Unmarshal(rec.Data, &p))
		if p.Data != nil {
			sealed = append(sealed, base64.StdEncoding.EncodeToString(p.Data.Ciphertext), base64.StdEncoding.EncodeToString(p.Data.Nonce))
		}
	}
	require.NotEmpty(t, sealed)
	scan := func(raw string) {
		require.NotContains(t, raw, canary)
		require.NotContains(t, raw, base64.StdEncoding.EncodeToString([]byte(canary))[:12])
		for _, c := range sealed {
			require.NotContains(t, raw, c)
		}
	}
	for _, m := range got {
		scan(m.raw)
	}
	for _, raw := range sub.raw {
		scan(raw)
	}
}

// TestTwoAPIServersOneWorker: two stateless API servers (no NATS: each
// tails the log) and one worker on one database; writes through both,
// subscriptions on both, nothing missing, and the leased work runs on the
// worker only.
func TestTwoAPIServersOneWorker(t *testing.T) {
	t.Parallel()
	a := newStack(t)
	a.stop()
	a.configure = func(c *server.Config) { c.NoWorker = true }
	a.start()
	b := a.sibling(func(c *server.Config) { c.NoWorker = true })
	w := a.sibling(func(c *server.Config) { c.WorkerOnly = true })
	require.Nil(t, w.Server.Feed, "a worker serves no subscriptions")
	require.Eventually(t, func() bool { return w.Server.Runner.Status()[projectionsUsage].Leader }, 10*time.Second, 20*time.Millisecond)
	require.Empty(t, a.Server.Runner.Status())
	require.Empty(t, b.Server.Runner.Status())

	admin := a.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	subA := dialWS(t, a.HTTP.URL, admin, 0)
	subA.subscribe("a", "secretEvents", "")
	subB := dialWS(t, b.HTTP.URL, admin, 0)
	subB.subscribe("b", "secretEvents", "")
	waitSubscribers(t, a.Server, 1)
	waitSubscribers(t, b.Server, 1)

	var wg sync.WaitGroup
	for i, node := range []*stack{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				id := node.createSecret(admin, map[string]any{"name": fmt.Sprintf("n%d-%d", i, j), "resourceGroup": "DOMAIN",
					"data": map[string]any{"k": "v"}})
				node.updateSecretName(admin, id, fmt.Sprintf("n%d-%d'", i, j))
			}
		}()
	}
	wg.Wait()
	var want []string
	require.Eventually(t, func() bool { return len(logOrder(t, a.Server.Pool)) == 40 }, 10*time.Second, 20*time.Millisecond,
		"every write settled in the log")
	for _, rec := range logOrder(t, a.Server.Pool) {
		want = append(want, rec.ID)
	}
	for _, c := range []*wsClient{subA, subB} {
		var got []string
		for len(got) < len(want) {
			got = append(got, c.next(20*time.Second).EventID)
		}
		require.Equal(t, want, got)
	}
	// The worker's HTTP surface is health only.
	r := doGraphQLStatus(t, w.HTTP.URL+"/graphql")
	require.Equal(t, 404, r)
}

const projectionsUsage = "usage"

func doGraphQLStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(`{"query":"{__typename}"}`))
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}
