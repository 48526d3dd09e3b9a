package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/graph"
)

// wsImplementation accepts GraphQL websocket connections with
// github.com/coder/websocket, as gqlgen's default does, with two
// differences: the HTTP server's read and write deadlines (set for plain
// requests) are cleared on the hijacked connection, and every write has a
// deadline, so a client that stops reading is cut off instead of holding a
// writer (and its subscription) forever.
type wsImplementation struct {
	writeTimeout time.Duration
}

func (i wsImplementation) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	for k, vs := range opts.ResponseHeader {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	conn, err := coderws.Accept(clearingHijacker{w}, r, &coderws.AcceptOptions{Subprotocols: opts.Subprotocols})
	if err != nil {
		return nil, err
	}
	c := &wsConn{conn: conn, writeTimeout: i.writeTimeout}
	if h, ok := r.Context().Value(wsHolderKey{}).(*wsHolder); ok {
		h.mu.Lock()
		h.conn = c
		h.mu.Unlock()
	}
	return c, nil
}

// wsHolder lets wsInit reach the connection its request accepted.
type wsHolder struct {
	mu   sync.Mutex
	conn *wsConn
}

type wsHolderKey struct{}

// closeNow drops the connection at once (a client that does not read
// would hold a graceful close until the write timeout).
func (h *wsHolder) closeNow() {
	h.mu.Lock()
	c := h.conn
	h.mu.Unlock()
	if c != nil {
		_ = c.conn.CloseNow()
	}
}

// clearingHijacker clears the deadlines net/http left on the connection.
type clearingHijacker struct{ http.ResponseWriter }

func (h clearingHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := unwrapHijacker(h.ResponseWriter)
	if !ok {
		return nil, nil, errors.New("server: the response writer cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	if err == nil {
		_ = c.SetDeadline(time.Time{})
	}
	return c, rw, err
}

func unwrapHijacker(w http.ResponseWriter) (http.Hijacker, bool) {
	for {
		switch t := w.(type) {
		case http.Hijacker:
			return t, true
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return nil, false
		}
	}
}

type wsConn struct {
	conn         *coderws.Conn
	writeTimeout time.Duration

	mu      sync.Mutex
	timer   *time.Timer
	closing bool
}

var (
	_ transport.WebsocketReadLimiter   = (*wsConn)(nil)
	_ transport.WebsocketReadDeadliner = (*wsConn)(nil)
)

func (c *wsConn) Close() error {
	c.stopTimer()
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return nil // WriteClose's handshake closes the connection
	}
	return c.conn.CloseNow()
}

func (c *wsConn) NextReader() (int, io.Reader, error) {
	typ, data, err := c.conn.Read(context.Background())
	if err != nil {
		switch coderws.CloseStatus(err) {
		case coderws.StatusNormalClosure, coderws.StatusNoStatusRcvd:
			return int(typ), nil, transport.ErrWebsocketClosed
		}
		return int(typ), nil, err
	}
	return int(typ), bytes.NewReader(data), nil
}

// WriteJSON writes v within the write timeout; when it expires the
// connection is closed (coder/websocket closes it on a write's context).
func (c *wsConn) WriteJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.writeTimeout)
	defer cancel()
	return c.conn.Write(ctx, coderws.MessageText, data)
}

func (c *wsConn) WriteClose(code int, reason string) error {
	c.stopTimer()
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.mu.Unlock()
	// The close handshake waits for the peer (up to 5s): not on the caller.
	go func() { _ = c.conn.Close(coderws.StatusCode(code), reason) }()
	return nil
}

func (c *wsConn) Subprotocol() string { return c.conn.Subprotocol() }

func (c *wsConn) SetReadLimit(n int64) { c.conn.SetReadLimit(n) }

func (c *wsConn) SetReadDeadline(t time.Time) error {
	c.stopTimer()
	if t.IsZero() {
		return nil
	}
	d := time.Until(t)
	if d <= 0 {
		return c.conn.CloseNow()
	}
	c.mu.Lock()
	c.timer = time.AfterFunc(d, func() { _ = c.conn.CloseNow() })
	c.mu.Unlock()
	return nil
}

func (c *wsConn) stopTimer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

type bearerKey struct{}

// isWebsocket reports whether r asks to upgrade to a websocket.
func isWebsocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// wsForbidden is graphql-transport-ws's close code for a connection_init
// that is refused.
const wsForbidden = 4403

// wsRefuse refuses a connection_init: the connection is closed with 4403
// and reason (it starts with the code, UNAUTHENTICATED), so that a client
// tells a bad or expired token from a dropped connection and does not
// reconnect with it. A close reason holds at most 123 bytes.
func wsRefuse(ctx context.Context, reason string) (context.Context, *transport.InitPayload, error) {
	ctx = transport.WithWebsocketCloseCode(ctx, wsForbidden)
	return transport.AppendCloseReason(ctx, reason), nil, errors.New(reason)
}

// wsInit authenticates a websocket connection: the connection_init
// payload's Authorization (a bearer token) if given, else the upgrade
// request's header (already checked by the signer's middleware). An
// unauthenticated connection is refused. The connection lives until the
// token expires; a subscriber that falls behind disconnects it.
func (s *Server) wsInit(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	tok := strings.TrimSpace(payload.Authorization())
	if tok != "" {
		scheme, rest, found := strings.Cut(tok, " ")
		if found && strings.EqualFold(scheme, "Bearer") {
			tok = strings.TrimSpace(rest)
		}
		id, err := s.Signer.Verify(tok)
		if err != nil {
			return wsRefuse(ctx, "UNAUTHENTICATED: invalid or expired token")
		}
		ctx = auth.WithIdentity(ctx, id)
	} else {
		if _, ok := auth.FromContext(ctx); !ok {
			return wsRefuse(ctx, "UNAUTHENTICATED: send Authorization: Bearer <token> in connection_init's payload or the upgrade request")
		}
		tok, _ = ctx.Value(bearerKey{}).(string)
	}
	var cancel context.CancelFunc
	if exp := tokenExpiry(tok); !exp.IsZero() {
		ctx, cancel = context.WithDeadline(ctx, exp)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	disconnect := cancel
	if h, ok := ctx.Value(wsHolderKey{}).(*wsHolder); ok {
		disconnect = func() {
			cancel()
			time.AfterFunc(time.Second, h.closeNow)
		}
	}
	return graph.WithDisconnect(ctx, disconnect), nil, nil
}

// withBearer keeps the upgrade request's bearer token and connection for wsInit.
func withBearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), wsHolderKey{}, &wsHolder{}))
		if scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok && strings.EqualFold(scheme, "Bearer") {
			r = r.WithContext(context.WithValue(r.Context(), bearerKey{}, strings.TrimSpace(tok)))
		}
		next.ServeHTTP(w, r)
	})
}

// tokenExpiry is the exp claim of a token the signer already verified.
func tokenExpiry(tok string) time.Time {
	if tok == "" {
		return time.Time{}
	}
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil || claims.ExpiresAt == nil {
		return time.Time{}
	}
	return claims.ExpiresAt.Time
}
