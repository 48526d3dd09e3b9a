package server_test

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/server"
)

// scrape reads base's /metrics: each unlabelled sample by name, and the raw text.
func scrape(t *testing.T, base string) (map[string]float64, string) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err, line)
		out[name] = f
	}
	return out, string(raw)
}

// gatedPublisher accepts every message, except while it is held: then
// Publish waits (a forwarder that cannot get its messages out).
type gatedPublisher struct {
	mu       sync.Mutex
	gate     chan struct{}
	n        atomic.Int64
	payloads []string
}

func (p *gatedPublisher) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
}

func (p *gatedPublisher) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
}

func (p *gatedPublisher) Publish(_ string, msgs ...*message.Message) error {
	p.mu.Lock()
	g := p.gate
	p.mu.Unlock()
	if g != nil {
		<-g
	}
	p.mu.Lock()
	for _, m := range msgs {
		p.payloads = append(p.payloads, string(m.Payload))
	}
	p.mu.Unlock()
	p.n.Add(int64(len(msgs)))
	return nil
}

func (p *gatedPublisher) Close() error { return nil }

var feedMetrics = []string{
	"secretlog_feed_published_total", "secretlog_feed_position", "secretlog_feed_events_behind", "secretlog_feed_lag_seconds",
	"secretlog_feed_broker_events_total", "secretlog_feed_broker_position",
	"secretlog_subscriptions_active", "secretlog_subscriptions_cut_total", "secretlog_subscriptions_refused_total",
}

// TestFeedMetrics: /metrics tells what the change feed does: the
// forwarder's published messages and position move with writes; a stalled
// forwarder shows events behind and a growing lag, both back to 0 once it
// catches up; the broker's position follows the log; open and refused
// subscriptions are counted. No value appears in any metric.
func TestFeedMetrics(t *testing.T) {
	t.Parallel()
	pub := &gatedPublisher{}
	s := newStack(t)
	s.stop()
	s.configure = func(c *server.Config) { c.FeedPublisher = pub; c.Limits.MaxCallerSubscriptions = 2 }
	s.start()
	t.Cleanup(pub.release) // before the server stops (cleanups run last first)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	const canary = "CANARY-metrics-2e8f"

	m, _ := scrape(t, s.HTTP.URL)
	for _, name := range feedMetrics {
		require.Contains(t, m, name)
	}
	require.Zero(t, m["secretlog_subscriptions_active"])

	// Subscriptions: two open, a third of the same caller refused.
	c := dialWS(t, s.HTTP.URL, admin, 0)
	c.subscribe("a", "secretEvents", "")
	c.subscribe("b", "userSecretEvents", "")
	waitSubscribers(t, s.Server, 2)
	c.subscribe("c", "trustedSecretEvents", "")
	msg, err := c.read(10 * time.Second)
	require.NoError(t, err)
	require.Contains(t, string(msg.Payload), "RESOURCE_EXHAUSTED")
	m, _ = scrape(t, s.HTTP.URL)
	require.Equal(t, 2.0, m["secretlog_subscriptions_active"])
	require.Equal(t, 1.0, m["secretlog_subscriptions_refused_total"])
	require.Zero(t, m["secretlog_subscriptions_cut_total"])

	// Writes: published and positions move, nothing behind.
	id := s.createSecret(admin, map[string]any{"name": "a", "resourceGroup": "DOMAIN", "data": map[string]any{"k": canary}})
	for i := range 3 {
		s.updateSecretName(admin, id, "a"+strconv.Itoa(i))
	}
	caughtUp := func(n int) func() bool {
		return func() bool {
			recs := logOrder(t, s.Server.Pool) // settled: not while the forwarder's transaction is open
			if len(recs) != n {
				return false
			}
			head := float64(recs[len(recs)-1].Cursor.Position)
			m, _ = scrape(t, s.HTTP.URL)
			return m["secretlog_feed_published_total"] >= float64(n) && m["secretlog_feed_position"] == head &&
				m["secretlog_feed_events_behind"] == 0 && m["secretlog_feed_lag_seconds"] == 0 &&
				m["secretlog_feed_broker_position"] == head && m["secretlog_feed_broker_events_total"] >= float64(n)
		}
	}
	require.Eventually(t, caughtUp(4), 10*time.Second, 50*time.Millisecond, "metrics after 4 events: %v", m)

	// A stalled forwarder: events behind, and a lag that grows.
	pub.hold()
	for i := range 3 {
		s.updateSecretName(admin, id, "b"+strconv.Itoa(i))
	}
	require.Eventually(t, func() bool {
		m, _ = scrape(t, s.HTTP.URL)
		return m["secretlog_feed_events_behind"] == 3 && m["secretlog_feed_lag_seconds"] >= 1
	}, 10*time.Second, 50*time.Millisecond, "a stalled forwarder is behind: %v", m)
	require.Equal(t, 4.0, m["secretlog_feed_published_total"])
	pub.release()
	require.Eventually(t, caughtUp(7), 10*time.Second, 50*time.Millisecond, "caught up again: %v", m)

	// A closed connection ends its subscriptions.
	c.conn.CloseNow()
	require.Eventually(t, func() bool {
		m, _ = scrape(t, s.HTTP.URL)
		return m["secretlog_subscriptions_active"] == 0
	}, 10*time.Second, 50*time.Millisecond)

	_, raw := scrape(t, s.HTTP.URL)
	require.NotContains(t, raw, canary)
	require.NotContains(t, raw, id, "no ids in labels")
	pub.mu.Lock()
	defer pub.mu.Unlock()
	require.NotEmpty(t, pub.payloads)
	for _, p := range pub.payloads {
		require.NotContains(t, p, canary)
	}
}
