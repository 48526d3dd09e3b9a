// Package client is the Go client of the secretlog GraphQL API: one typed
// method per operation (operations.go), errors carrying the API's
// extensions.code. It never logs, and its errors never contain a request's
// variables, so a secret value or the token cannot leak through them.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultServer is the address `secretlog serve` listens on by default.
const DefaultServer = "http://127.0.0.1:8080"

// maxResponseBytes bounds a response body read into memory.
const maxResponseBytes = 64 << 20

// Client sends GraphQL operations to one server with one bearer token.
// It is safe for concurrent use.
type Client struct {
	endpoint  string
	token     string
	http      *http.Client
	userAgent string
	headers   http.Header
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through h (default: a client with a 60 s timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithHeader adds a header to every request, such as X-Correlation-ID, which
// the server records with every event a request appends. It cannot replace
// the headers the client sets itself (Authorization, Content-Type, Accept).
func WithHeader(key, value string) Option {
	return func(c *Client) {
		if c.headers == nil {
			c.headers = http.Header{}
		}
		c.headers.Set(key, value)
	}
}

// New returns a client of the server at base (http(s)://host:port, with or
// without the /graphql path). token may be empty: the server then answers
// UNAUTHENTICATED to everything but introspection.
func New(base, token string, opts ...Option) (*Client, error) {
	endpoint, err := Endpoint(base)
	if err != nil {
		return nil, err
	}
	c := &Client{endpoint: endpoint, token: token, http: &http.Client{Timeout: 60 * time.Second}, userAgent: "secretlog-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Endpoint turns a server address into its GraphQL endpoint URL.
func Endpoint(base string) (string, error) {
	if base == "" {
		base = DefaultServer
	}
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server address %q: want http://host:port or https://host:port", base)
	}
	if u.User != nil {
		return "", errors.New("server address: credentials in the URL are not supported; use a token")
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/graphql") {
		u.Path += "/graphql"
	}
	return u.String(), nil
}

// Endpoint is the URL requests are posted to.
func (c *Client) Endpoint() string { return c.endpoint }

// Insecure reports whether the token would travel in clear text to another
// machine: plain http to a host that is not a loopback address.
func (c *Client) Insecure() bool {
	u, err := url.Parse(c.endpoint)
	if err != nil || u.Scheme != "http" || c.token == "" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

type request struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
}

type wireError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type response struct {
	Data   json.RawMessage `json:"data"`
	Errors []wireError     `json:"errors"`
}

// Do posts one operation and decodes its data into out (when non-nil).
// Any GraphQL error makes it fail with an *Error, even next to partial data;
// a server that cannot be reached or does not answer GraphQL is an *Error
// with CodeUnavailable.
func (c *Client) Do(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(request{Query: query, Variables: vars})
	if err != nil {
		// Marshal errors name types, never values.
		return &Error{Code: CodeInvalidArgument, Message: "encoding the request: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return &Error{Code: CodeInvalidArgument, Message: err.Error()}
	}
	for k, vs := range c.headers {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/graphql-response+json, application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return transportError(c.endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return transportError(c.endpoint, err)
	}
	if len(raw) > maxResponseBytes {
		return &Error{Code: CodeResourceExhausted, Message: "response larger than 64 MiB", HTTPStatus: resp.StatusCode}
	}
	var r response
	if err := json.Unmarshal(raw, &r); err != nil || (r.Data == nil && r.Errors == nil) {
		return httpError(c.endpoint, resp)
	}
	if len(r.Errors) > 0 {
		return newError(resp.StatusCode, r.Errors)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			return &Error{Code: CodeInternal, Message: "decoding the response: " + err.Error(), HTTPStatus: resp.StatusCode}
		}
	}
	return nil
}

// transportError is a failure to exchange a request and a response.
func transportError(endpoint string, err error) error {
	msg := "cannot reach " + endpoint
	var opErr *net.OpError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.Canceled):
		msg = "request to " + endpoint + " cancelled"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		msg = "no answer from " + endpoint + " in time (a change may or may not have been applied)"
	case errors.As(err, &dnsErr):
		msg += ": unknown host " + dnsErr.Name
	case errors.As(err, &opErr) && opErr.Op == "dial":
		msg += ": " + opErr.Err.Error()
	default:
		// *url.Error names the method and URL, never headers or the body.
		var uErr *url.Error
		if errors.As(err, &uErr) {
			err = uErr.Err
		}
		msg += ": " + err.Error()
	}
	return &Error{Code: CodeUnavailable, Message: msg, cause: err}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// httpError is an answer that is not a GraphQL response (a proxy's error
// page, a wrong path).
func httpError(endpoint string, resp *http.Response) error {
	e := &Error{Code: CodeUnavailable, HTTPStatus: resp.StatusCode,
		Message: fmt.Sprintf("%s answered HTTP %s, not GraphQL (is the server address right?)", endpoint, resp.Status)}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		e.Code = CodeUnauthenticated
	case http.StatusForbidden:
		e.Code = CodePermissionDenied
	case http.StatusRequestEntityTooLarge:
		e.Code = CodeResourceExhausted
	case http.StatusTooManyRequests:
		e.Code = CodeResourceExhausted
	}
	return e
}
