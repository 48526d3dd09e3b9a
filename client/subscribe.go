package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// The change feed (schema.graphql's Subscription) over graphql-transport-ws
// on the server's /graphql websocket.

// Feeds: the subscriptions Follow can take.
const (
	FeedSecrets        = "secretEvents"
	FeedUserSecrets    = "userSecretEvents"
	FeedTrustedSecrets = "trustedSecretEvents"
)

const changeEventFields = `position eventId type resourceType resourceId version dataVersion
  actor { userId role domainId subject } tenant { domainId workspaceId projectId userId }
  occurredAt correlationId changedFields`

// Tenant is where a resource lived after an event.
type Tenant struct {
	DomainID    string  `json:"domainId"`
	WorkspaceID *string `json:"workspaceId"`
	ProjectID   *string `json:"projectId"`
	UserID      *string `json:"userId"`
}

// ChangeEvent is one committed event of the change feed: its envelope and
// the names of the fields it set, never a value.
type ChangeEvent struct {
	Position      string    `json:"position"`
	EventID       string    `json:"eventId"`
	Type          string    `json:"type"`
	ResourceType  string    `json:"resourceType"`
	ResourceID    string    `json:"resourceId"`
	Version       int       `json:"version"`
	DataVersion   *int      `json:"dataVersion"`
	Actor         Actor     `json:"actor"`
	Tenant        Tenant    `json:"tenant"`
	OccurredAt    time.Time `json:"occurredAt"`
	CorrelationID *string   `json:"correlationId"`
	ChangedFields []string  `json:"changedFields"`
}

// ChangeFilter narrows a subscription; zero fields are not sent.
type ChangeFilter struct {
	Types      []string `json:"types,omitempty"`
	ResourceID string   `json:"resourceId,omitempty"`
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsURL is the websocket URL of the GraphQL endpoint.
func (c *Client) wsURL() string {
	if rest, ok := strings.CutPrefix(c.endpoint, "https://"); ok {
		return "wss://" + rest
	}
	return "ws://" + strings.TrimPrefix(c.endpoint, "http://")
}

// FeedPosition is the change feed's position now (feedPosition): a
// subscription after it receives every event that commits from now on.
func (c *Client) FeedPosition(ctx context.Context) (string, error) {
	var out struct{ FeedPosition string }
	if err := c.Do(ctx, opFeedPosition, nil, &out); err != nil {
		return "", err
	}
	return out.FeedPosition, nil
}

// Follow subscribes to feeds (FeedSecrets, FeedUserSecrets,
// FeedTrustedSecrets) with filter f (after: a position as an event carried
// it, to replay what came since; "" for live events only) and calls fn with
// each event as it arrives. started, when not nil, is called once every
// subscription has been sent. It returns nil when ctx ends, an *Error when
// the server refuses or ends a subscription (RESOURCE_EXHAUSTED for a
// subscriber too far behind, UNAVAILABLE for a server shutting down), and an
// UNAVAILABLE *Error when the connection fails. fn's error stops it. See
// FollowResuming for a follower that reconnects.
func (c *Client) Follow(ctx context.Context, feeds []string, f ChangeFilter, after string, started func(), fn func(ChangeEvent) error) error {
	afters := make(map[string]string, len(feeds))
	for _, feed := range feeds {
		afters[feed] = after
	}
	return c.follow(ctx, feeds, f, afters, started, func(_ string, e ChangeEvent) error { return fn(e) })
}

// follow is one connection of Follow: each feed starts after its own
// position in afters, and fn learns which feed an event came from.
func (c *Client) follow(ctx context.Context, feeds []string, f ChangeFilter, afters map[string]string, started func(),
	fn func(feed string, e ChangeEvent) error) error {
	if len(feeds) == 0 {
		return &Error{Code: CodeInvalidArgument, Message: "no feed to follow"}
	}
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dialCtx, c.wsURL(), &websocket.DialOptions{
		Subprotocols: []string{"graphql-transport-ws"},
		HTTPClient:   c.http,
		HTTPHeader:   map[string][]string{"User-Agent": {c.userAgent}},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return transportError(c.endpoint, err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)

	send := func(m wsMessage) error {
		b, err := json.Marshal(m)
		if err != nil {
			return &Error{Code: CodeInvalidArgument, Message: "encoding the request: " + err.Error()}
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, b)
	}
	init, _ := json.Marshal(map[string]string{"Authorization": "Bearer " + c.token})
	if c.token == "" {
		init = []byte("{}")
	}
	if err := send(wsMessage{Type: "connection_init", Payload: init}); err != nil {
		return c.wsError(ctx, err)
	}
	acked := false
	open := map[string]bool{}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			return c.wsError(ctx, err)
		}
		var m wsMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return &Error{Code: CodeUnavailable, Message: c.endpoint + " sent a message that is not graphql-transport-ws"}
		}
		switch m.Type {
		case "ping":
			if err := send(wsMessage{Type: "pong"}); err != nil {
				return c.wsError(ctx, err)
			}
		case "pong":
		case "connection_ack":
			if acked {
				continue
			}
			acked = true
			for _, feed := range feeds {
				vars := map[string]any{"filter": f}
				if afters[feed] != "" {
					vars["after"] = afters[feed]
				}
				q := fmt.Sprintf(`subscription Follow($filter: ChangeFilter, $after: String) { %s(filter: $filter, after: $after) { %s } }`,
					feed, changeEventFields)
				payload, _ := json.Marshal(request{Query: q, Variables: vars})
				if err := send(wsMessage{ID: feed, Type: "subscribe", Payload: payload}); err != nil {
					return c.wsError(ctx, err)
				}
				open[feed] = true
			}
			if started != nil {
				started()
			}
		case "next":
			var p struct {
				Data   map[string]ChangeEvent `json:"data"`
				Errors []wireError            `json:"errors"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				return &Error{Code: CodeInternal, Message: "decoding an event: " + err.Error()}
			}
			if len(p.Errors) > 0 {
				return newError(0, p.Errors)
			}
			ev, ok := p.Data[m.ID]
			if !ok {
				continue
			}
			if err := fn(m.ID, ev); err != nil {
				return err
			}
		case "error":
			var errs []wireError
			if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) == 0 {
				return &Error{Code: CodeInternal, Message: "subscription " + m.ID + " failed"}
			}
			return newError(0, errs)
		case "complete":
			delete(open, m.ID)
			if len(open) == 0 {
				_ = conn.Close(websocket.StatusNormalClosure, "")
				return nil
			}
		}
	}
}

// wsError turns a websocket failure into an *Error: nil when ctx ended,
// the server's reason when it closed the connection, else UNAVAILABLE.
func (c *Client) wsError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		e := &Error{Code: CodeUnavailable, Message: fmt.Sprintf("%s closed the change feed (%d %s)", c.endpoint, ce.Code, ce.Reason)}
		// graphql-transport-ws: 4401/4403 are authentication failures; the
		// reason may start with the API's code.
		switch {
		case ce.Code == 4401 || ce.Code == 4403 || strings.HasPrefix(ce.Reason, string(CodeUnauthenticated)):
			e.Code = CodeUnauthenticated
		case strings.HasPrefix(ce.Reason, string(CodeResourceExhausted)):
			e.Code = CodeResourceExhausted
		case ce.Code == 4400:
			e.Code = CodeInvalidArgument
		}
		return e
	}
	return transportError(c.endpoint, err)
}
