package server

import (
	"context"
	"net/http"
	"time"

	"github.com/secretlog/secretlog/graph"
	"github.com/secretlog/secretlog/query"
)

// Limits are every bound the server puts on a request. Zero fields take
// their defaults (DefaultLimits); Settings lists each with its flag and
// environment variable, and the README's Limits table documents them.
type Limits struct {
	// GraphQL: document shape, complexity, concurrency, verifyLog rate.
	GraphQL graph.Limits
	// Query: list and statistics query cost, statement timeout.
	Query query.Limits

	// MaxRequestBytes bounds a request body (1 MiB; a secret's data is at most 64 KiB).
	MaxRequestBytes int64
	// RequestTimeout is the deadline of each /graphql request (30s).
	RequestTimeout time.Duration
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are the
	// HTTP server's (10s, 30s, RequestTimeout+10s, 2m).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration

	// SubscriptionBuffer is how many events a subscriber may fall behind
	// before it is disconnected (256).
	SubscriptionBuffer int
	// MaxCallerSubscriptions bounds the open subscriptions of one caller
	// (token subject in its domain) on one server (16); MaxSubscriptions
	// those of one server (10000).
	MaxCallerSubscriptions int
	MaxSubscriptions       int
	// WebsocketWriteTimeout cuts off a websocket client that does not take
	// a message within it (10s).
	WebsocketWriteTimeout time.Duration
}

// DefaultLimits are the limits unless configured.
func DefaultLimits() Limits {
	return Limits{
		GraphQL:           graph.DefaultLimits(),
		Query:             query.DefaultLimits(),
		MaxRequestBytes:   1 << 20,
		RequestTimeout:    30 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,

		SubscriptionBuffer:     256,
		MaxCallerSubscriptions: 16,
		MaxSubscriptions:       10000,
		WebsocketWriteTimeout:  10 * time.Second,
	}
}

// WithDefaults fills every zero field from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	l.GraphQL = l.GraphQL.WithDefaults()
	l.Query = l.Query.WithDefaults()
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = d.MaxRequestBytes
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&l.RequestTimeout, &d.RequestTimeout}, {&l.ReadHeaderTimeout, &d.ReadHeaderTimeout},
		{&l.ReadTimeout, &d.ReadTimeout}, {&l.IdleTimeout, &d.IdleTimeout},
		{&l.WebsocketWriteTimeout, &d.WebsocketWriteTimeout},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	for _, f := range []struct{ v, def *int }{
		{&l.SubscriptionBuffer, &d.SubscriptionBuffer}, {&l.MaxCallerSubscriptions, &d.MaxCallerSubscriptions},
		{&l.MaxSubscriptions, &d.MaxSubscriptions},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = l.RequestTimeout + 10*time.Second
	}
	return l
}

// Setting is one configurable limit: exactly one of Int, Int64 and
// Duration points at its value.
type Setting struct {
	Flag, Env, Usage string
	Int              *int
	Int64            *int64
	Duration         *time.Duration
}

// Settings lists every limit of l with its flag and variable, for
// cmd/secretlog to bind; a flag's default is the value l holds.
func (l *Limits) Settings() []Setting {
	g, q := &l.GraphQL, &l.Query
	i := func(flag, env, usage string, v *int) Setting {
		return Setting{Flag: flag, Env: env, Usage: usage, Int: v}
	}
	d := func(flag, env, usage string, v *time.Duration) Setting {
		return Setting{Flag: flag, Env: env, Usage: usage, Duration: v}
	}
	return []Setting{
		{Flag: "max-request-bytes", Env: "SECRETLOG_MAX_REQUEST_BYTES", Usage: "largest request body, in bytes", Int64: &l.MaxRequestBytes},
		d("request-timeout", "SECRETLOG_REQUEST_TIMEOUT", "deadline of each /graphql request", &l.RequestTimeout),
		d("read-header-timeout", "SECRETLOG_READ_HEADER_TIMEOUT", "HTTP: time to read request headers", &l.ReadHeaderTimeout),
		d("read-timeout", "SECRETLOG_READ_TIMEOUT", "HTTP: time to read a whole request", &l.ReadTimeout),
		d("write-timeout", "SECRETLOG_WRITE_TIMEOUT", "HTTP: time to write a response (0: request timeout + 10s)", &l.WriteTimeout),
		d("idle-timeout", "SECRETLOG_IDLE_TIMEOUT", "HTTP: keep-alive idle time", &l.IdleTimeout),
		i("max-query-tokens", "SECRETLOG_MAX_QUERY_TOKENS", "GraphQL: tokens of a query document", &g.MaxTokens),
		i("max-query-fields", "SECRETLOG_MAX_QUERY_FIELDS", "GraphQL: fields of a document, fragments expanded", &g.MaxFields),
		i("max-query-depth", "SECRETLOG_MAX_QUERY_DEPTH", "GraphQL: nesting of selection sets", &g.MaxDepth),
		i("max-query-aliases", "SECRETLOG_MAX_QUERY_ALIASES", "GraphQL: aliased fields", &g.MaxAliases),
		i("max-root-fields", "SECRETLOG_MAX_ROOT_FIELDS", "GraphQL: top-level fields of an operation", &g.MaxRootFields),
		i("max-query-complexity", "SECRETLOG_MAX_QUERY_COMPLEXITY", "GraphQL: cost, 1 per field, lists times their page size", &g.MaxComplexity),
		i("max-input-depth", "SECRETLOG_MAX_INPUT_DEPTH", "GraphQL: nesting of arguments and variables", &g.MaxInputDepth),
		i("max-input-values", "SECRETLOG_MAX_INPUT_VALUES", "GraphQL: values in arguments and variables", &g.MaxInputValues),
		i("max-request-concurrency", "SECRETLOG_MAX_REQUEST_CONCURRENCY", "query fields of one request running at once", &g.RequestConcurrency),
		i("max-caller-concurrency", "SECRETLOG_MAX_CALLER_CONCURRENCY", "query fields of one caller running at once", &g.CallerConcurrency),
		i("max-domain-concurrency", "SECRETLOG_MAX_DOMAIN_CONCURRENCY", "query fields of one domain running at once", &g.DomainConcurrency),
		d("queue-wait", "SECRETLOG_QUEUE_WAIT", "longest wait for a concurrency slot", &g.QueueWait),
		d("verify-interval", "SECRETLOG_VERIFY_INTERVAL", "least time between two verifyLog runs of a domain (also 10× the last run's duration)", &g.VerifyInterval),
		i("default-page-size", "SECRETLOG_DEFAULT_PAGE_SIZE", "list page when page.limit is 0 or missing", &q.DefaultPageSize),
		i("max-page-size", "SECRETLOG_MAX_PAGE_SIZE", "largest page.limit of a list", &q.MaxPageSize),
		i("max-query-conditions", "SECRETLOG_MAX_QUERY_CONDITIONS", "filter conditions and keywords of one list or stat query", &q.MaxConditions),
		i("max-list-values", "SECRETLOG_MAX_LIST_VALUES", "values of one in/not_in/contain_in/regex_in list", &q.MaxListValues),
		i("max-regex-length", "SECRETLOG_MAX_REGEX_LENGTH", "bytes of a regular expression", &q.MaxRegexLength),
		i("max-stat-stages", "SECRETLOG_MAX_STAT_STAGES", "stages of an aggregate pipeline", &q.MaxStatStages),
		i("max-stat-accumulators", "SECRETLOG_MAX_STAT_ACCUMULATORS", "push and add_to_set fields of one stat query", &q.MaxStatAccumulators),
		i("max-stat-unwinds", "SECRETLOG_MAX_STAT_UNWINDS", "unwind stages of one stat query", &q.MaxStatUnwinds),
		i("max-stat-rows", "SECRETLOG_MAX_STAT_ROWS", "result rows of a stat query", &q.MaxStatRows),
		d("statement-timeout", "SECRETLOG_STATEMENT_TIMEOUT", "statement_timeout of list and stat queries", &q.StatementTimeout),
		i("subscription-buffer", "SECRETLOG_SUBSCRIPTION_BUFFER", "events a subscriber may fall behind before it is disconnected", &l.SubscriptionBuffer),
		i("max-caller-subscriptions", "SECRETLOG_MAX_CALLER_SUBSCRIPTIONS", "open subscriptions of one caller on one server", &l.MaxCallerSubscriptions),
		i("max-subscriptions", "SECRETLOG_MAX_SUBSCRIPTIONS", "open subscriptions of one server", &l.MaxSubscriptions),
		d("websocket-write-timeout", "SECRETLOG_WEBSOCKET_WRITE_TIMEOUT", "cut off a websocket client that takes no message for this long", &l.WebsocketWriteTimeout),
	}
}

// withDeadline bounds each request by timeout; the request's context also
// ends when the client goes away, which cancels its database work.
func withDeadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
