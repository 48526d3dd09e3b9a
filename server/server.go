// Package server wires secretlog together: the database, the log, the
// projectors, the command side, the read side and the HTTP surface
// (GraphQL, GraphiQL, health, readiness and metrics).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/commands/schemas"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/feed"
	"github.com/secretlog/secretlog/graph"
	"github.com/secretlog/secretlog/graph/graphiql"
	"github.com/secretlog/secretlog/projections"
	"github.com/secretlog/secretlog/tracing"
	"github.com/secretlog/secretlog/web/console"
)

// Config is what a server needs; cmd/secretlog fills it from flags and environment.
type Config struct {
	DatabaseURL string
	Keyring     *events.Keyring
	TokenKey    []byte
	Logger      *slog.Logger
	// MaxConns bounds the database pool (0: 32).
	MaxConns int32
	// CheckpointEvery is how often a log checkpoint is written (0: one minute).
	CheckpointEvery time.Duration
	// Lifecycle configures retention, recovery windows and the clock.
	Lifecycle commands.Lifecycle
	// SchedulerEvery is how often the scheduler looks for due deletions and
	// rotations (0: 30 seconds).
	SchedulerEvery time.Duration
	// Limits bound every request (zero fields: DefaultLimits).
	Limits Limits
	// DisableIntrospection refuses __schema and __type queries.
	DisableIntrospection bool
	// DisableGraphiQL stops serving GraphiQL at /.
	DisableGraphiQL bool
	// MaxTokenTTL caps the lifetime of the tokens the server accepts and
	// mints (0: auth.DefaultMaxTTL, 24h).
	MaxTokenTTL time.Duration

	// NoWorker disables the background work that runs under leases (the
	// asynchronous projections, the scheduler, the change feed's
	// forwarder) and the log checkpointer: a stateless API server, as
	// `serve --no-worker`. WorkerOnly runs that work and no API: the HTTP
	// surface is /healthz, /readyz and /metrics (`secretlog worker`). Any
	// number of each run against one database; the leases elect one
	// process per piece of work.
	NoWorker   bool
	WorkerOnly bool
	// NatsURL, when set, is a NATS server with JetStream: the forwarder
	// publishes the change feed to the stream NatsStream (default
	// feed.DefaultStream), and API servers feed their subscribers from it.
	// Unset: API servers tail the log for their subscribers.
	NatsURL    string
	NatsStream string
	// FeedPublisher, when set (and NatsURL is not), is where the forwarder
	// publishes the change feed (topic feed.Topic): embedding and tests.
	FeedPublisher message.Publisher

	// Log, when set, is the log (EventStoreDB: events/esdb), which is then
	// not in the database: writes append to it and wait for the leased
	// runner to project them (see commands.Projected). Nil: the log is the
	// event_log table, and AsyncProjections chooses how it is projected.
	Log events.Store
	// AsyncProjections projects the PostgreSQL log the way a remote log is
	// projected (append, then the leased runner, then the write answers)
	// instead of in each write's transaction.
	AsyncProjections bool
	// ProjectionWait bounds how long a write on a remote log waits for its
	// projection (0: 10 seconds); it answers anyway after it.
	ProjectionWait time.Duration
}

// remote reports whether writes are projected after they are appended.
func (c Config) remote() bool { return c.Log != nil || c.AsyncProjections }

func (c Config) checkpointEvery() time.Duration {
	if c.CheckpointEvery > 0 {
		return c.CheckpointEvery
	}
	return time.Minute
}

// Server is a running secretlog instance.
type Server struct {
	Pool *pgxpool.Pool
	// Store is the PostgreSQL log (event_log); Log is the log in use: Store,
	// or the remote one of Config.Log.
	Store  *events.PostgresStore
	Log    events.Store
	Keys   *events.KeyStore
	App    *commands.Application
	Reader *projections.Reader
	Signer *auth.Signer
	// Runner applies the asynchronous projections (under leases).
	Runner *projections.Runner
	// Scheduler deletes resources whose recovery window ended and marks
	// rotations due (under a lease).
	Scheduler *Scheduler
	// Feed fans the change feed out to this server's subscribers (nil on a
	// worker).
	Feed *feed.Broker
	// Forwarder publishes the change feed (under a lease) on a worker with
	// a publisher (NATS or FeedPublisher); FeedRunner runs it.
	Forwarder  *feed.Forwarder
	FeedRunner *projections.Runner

	logger *slog.Logger
	// devToken, in development mode, pre-fills GraphiQL's headers.
	devToken atomic.Value
	cfg      Config
	limits   Limits
	handler  http.Handler
	cancel   context.CancelFunc
	done     chan struct{}
	ready    atomic.Bool
	registry *prometheus.Registry
	nats     *nats.Conn
}

// Migrate brings the log and read-model schemas up to date. It reports
// whether the read models want a replay of the log (see projections.Migrate).
func Migrate(ctx context.Context, databaseURL string) (replay bool, err error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	if err := events.Migrate(ctx, conn); err != nil {
		return false, fmt.Errorf("migrate log: %w", err)
	}
	if replay, err = projections.Migrate(ctx, conn); err != nil {
		return false, fmt.Errorf("migrate read models: %w", err)
	}
	return replay, nil
}

// New migrates the database, starts the projectors and builds the HTTP handler.
func New(ctx context.Context, cfg Config) (*Server, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = tracing.Logger(logger) // trace_id and span_id on request log lines
	replay, err := Migrate(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	pcfg.ConnConfig.Tracer = tracing.PgxTracer()
	pcfg.MaxConns = 32
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	if cfg.remote() {
		// Held for good on a remote log: each consumer's subscription
		// (read models, usage) and the waiter's LISTEN.
		pcfg.MaxConns += 3
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	if replay && cfg.remote() {
		// The runner fills them from the log.
		logger.Info("read models reset: the projection runner replays the log into them")
		if err := projections.RestartConsumers(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
	} else if replay {
		// The read models were reset: fill them from the log before serving.
		logger.Info("replaying the log into empty read models")
		if _, err := projections.RebuildOnline(ctx, pool, projections.RebuildOptions{}); err != nil {
			pool.Close()
			return nil, fmt.Errorf("replay: %w", err)
		}
	}
	signer, err := auth.NewSigner(cfg.TokenKey)
	if err != nil {
		pool.Close()
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store := events.NewPostgresStore(pool)
	keys := events.NewKeyStore(pool, cfg.Keyring)
	projector := projections.NewProjector(pool, keys)
	s := &Server{
		Pool:     pool,
		Store:    store,
		Log:      store,
		Keys:     keys,
		Reader:   projections.NewReader(pool),
		cfg:      cfg,
		Signer:   signer,
		Runner:   projections.NewRunner(pool, logger, projections.Async()...),
		logger:   logger,
		done:     make(chan struct{}),
		registry: reg,
	}
	access := commands.NewAccessLog(pool, projector)
	deps := commands.Deps{DB: pool, Store: store, Keys: s.Keys, Schemas: schemas.Default(),
		Projector: projector, Access: access, Lifecycle: cfg.Lifecycle}
	var waiter *projections.Waiter
	if cfg.remote() {
		if cfg.Log != nil {
			s.Log = cfg.Log
		}
		// Writes append to the log and wait for the read models' consumer.
		waiter = s.remoteWrites(reg)
		keys.ReplaceOrphans = true
		deps.Store, deps.Remote, access.Remote, access.Projected = s.Log, waiter, s.Log, waiter
		s.Runner = projections.NewRunner(pool, logger, append([]projections.Projection{projections.NewReadModels(keys)}, projections.Async()...)...)
		s.Runner.Log = s.Log
	}
	s.Runner.Register(reg)
	s.App = commands.NewApplication(deps, logger, commands.NewMetrics(reg))

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	var background sync.WaitGroup
	s.Scheduler = &Scheduler{pool: pool, app: s.App, logger: logger, Every: cfg.SchedulerEvery, Now: cfg.Lifecycle.Now}
	if s.Scheduler.Every <= 0 {
		s.Scheduler.Every = 30 * time.Second
	}
	if s.Scheduler.Now == nil {
		s.Scheduler.Now = time.Now
	}
	if cfg.NatsURL != "" {
		if s.nats, err = feed.Connect(cfg.NatsURL, "secretlog"); err != nil {
			pool.Close()
			return nil, fmt.Errorf("nats: %w", err)
		}
		if err := feed.EnsureStream(s.nats, s.natsStream()); err != nil {
			s.nats.Close()
			pool.Close()
			return nil, err
		}
	}
	run := func(f func()) {
		background.Add(1)
		go func() { defer background.Done(); f() }()
	}
	run(func() { access.Run(runCtx, 2) })
	if waiter != nil {
		run(func() { waiter.Run(runCtx) })
	}
	run(func() { s.Keys.Follow(runCtx) })
	if !cfg.NoWorker {
		if err := s.startWorker(runCtx, run); err != nil {
			cancel()
			background.Wait()
			s.closeNATS()
			pool.Close()
			return nil, err
		}
	}
	if !cfg.WorkerOnly {
		feedLog := feed.PostgresLog{Pool: pool, Projected: cfg.remote(), Store: cfg.Log}
		s.Feed = feed.NewBroker(feedLog, projector.Snapshot, logger)
		lim := cfg.Limits.WithDefaults()
		s.Feed.Buffer, s.Feed.MaxPerCaller, s.Feed.MaxTotal = lim.SubscriptionBuffer, lim.MaxCallerSubscriptions, lim.MaxSubscriptions
		if s.nats != nil {
			run(func() { feed.RunNATS(runCtx, s.nats, s.natsStream(), s.Feed, logger) })
		} else {
			run(func() { feed.RunLogTail(runCtx, feedLog, s.Feed, logger) })
		}
	}
	feed.RegisterMetrics(reg, pool, s.Forwarder, s.Feed)
	go func() { background.Wait(); close(s.done) }()
	if replay && waiter != nil {
		// Serve once the runner (here or on a worker) has refilled the read models.
		if head, ok := s.Log.(interface {
			Head(context.Context) (events.Cursor, error)
		}); ok {
			if err := waiter.CatchUp(ctx, head); err != nil {
				s.Close()
				return nil, err
			}
		}
	}
	s.ready.Store(true)
	if cfg.WorkerOnly {
		s.handler = s.workerRoutes()
	} else {
		s.handler = s.routes(&graph.Resolver{App: s.App, Reader: s.Reader, Log: s.verifiable(), Feed: s.Feed})
	}
	return s, nil
}

func (s *Server) natsStream() string {
	if s.cfg.NatsStream != "" {
		return s.cfg.NatsStream
	}
	return feed.DefaultStream
}

func (s *Server) closeNATS() {
	if s.nats != nil {
		s.nats.Close()
	}
}

// startWorker starts the work that runs under leases (the asynchronous
// projections, the scheduler, the change feed's forwarder) and the log
// checkpointer.
func (s *Server) startWorker(ctx context.Context, run func(func())) error {
	logger, cfg := s.logger, s.cfg
	var pub message.Publisher
	topicOf := func(feed.Envelope) string { return feed.Topic }
	switch {
	case s.nats != nil:
		p, err := feed.NewNATSPublisher(s.nats, logger)
		if err != nil {
			return fmt.Errorf("nats publisher: %w", err)
		}
		pub, topicOf = p, feed.Subject
	case cfg.FeedPublisher != nil:
		pub = cfg.FeedPublisher
	}
	if pub != nil {
		s.Forwarder = &feed.Forwarder{Publisher: pub, TopicOf: topicOf}
		s.FeedRunner = feed.NewForwarderRunner(s.Pool, logger, s.Forwarder)
		if cfg.Log != nil {
			// The forwarder follows the remote log (on the PostgreSQL
			// log it is a watermill-sql consumer, projected or not).
			s.FeedRunner.Log = s.Log
		}
		run(func() { _ = s.FeedRunner.Run(ctx) })
	}
	run(func() { _ = s.Runner.Run(ctx) })
	run(func() { s.Scheduler.Run(ctx) })
	if cfg.Log != nil {
		return nil // checkpoints are the PostgreSQL log's
	}
	// Log checkpoints: a running hash over the whole log, so truncation and
	// reordering are detectable by verify. Their hashes also go to the
	// service log, a copy outside the database.
	run(func() {
		s.Store.RunCheckpointer(ctx, cfg.checkpointEvery(), func(cp events.Checkpoint, err error) {
			if err != nil {
				if ctx.Err() == nil {
					logger.Warn("log checkpoint failed", "error", err.Error())
				}
				return
			}
			logger.Info("log checkpoint", "position", cp.Cursor.Position, "events", cp.Events, "hash", fmt.Sprintf("%x", cp.Hash))
		})
	})
	return nil
}

// failing lists the asynchronous work failing in this process.
func (s *Server) failing() []string {
	out := s.Runner.Failing()
	if s.FeedRunner != nil {
		out = append(out, s.FeedRunner.Failing()...)
	}
	return out
}

// workerRoutes is a worker's HTTP surface: health, readiness and metrics.
func (s *Server) workerRoutes() http.Handler {
	s.limits = s.cfg.Limits.WithDefaults()
	mux := http.NewServeMux()
	s.healthRoutes(mux)
	return s.accessLog(mux)
}

// routes builds the HTTP surface, applying the configured limits to the
// reader, the resolvers and the token signer first.
func (s *Server) routes(res *graph.Resolver) http.Handler {
	s.limits = s.cfg.Limits.WithDefaults()
	lim := s.limits
	s.Reader = s.Reader.WithLimits(lim.Query)
	res.Reader = s.Reader
	res.Verify = graph.NewVerifyGate(lim.GraphQL.VerifyInterval, lim.GraphQL.QueueWait)
	s.Signer = s.Signer.WithMaxTTL(s.cfg.MaxTokenTTL)
	gql := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: res, Complexity: graph.NewComplexity(lim.Query)}))
	readLimit := lim.MaxRequestBytes
	gql.AddTransport(transport.Websocket{
		Implementation:        wsImplementation{writeTimeout: lim.WebsocketWriteTimeout},
		InitFunc:              s.wsInit,
		InitTimeout:           10 * time.Second,
		KeepAlivePingInterval: 15 * time.Second,
		PayloadReadLimit:      &readLimit,
	})
	gql.AddTransport(transport.GET{})
	gql.AddTransport(transport.POST{})
	// Parsed and validated documents are reused: clients send the same few
	// operations, and parsing plus validation was a sixth of a read's CPU.
	gql.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	// Before gqlgen parses and validates: token, field, depth, alias,
	// root-field and input limits (validation is quadratic in the fields).
	gql.Use(graph.NewDocumentLimits(lim.GraphQL))
	gql.SetParserTokenLimit(lim.GraphQL.MaxTokens)
	if !s.cfg.DisableIntrospection {
		gql.Use(extension.Introspection{})
	}
	gql.Use(&graph.ComplexityLimit{Limit: lim.GraphQL.MaxComplexity})
	conc := graph.NewConcurrency(lim.GraphQL)
	gql.AroundOperations(conc.AroundOperations)
	gql.AroundRootFields(conc.AroundRootFields)
	gql.Use(tracing.GraphQL{})
	gql.SetErrorPresenter(graph.ErrorPresenter(s.logger))
	gql.SetRecoverFunc(graph.Recover(s.logger))

	mux := http.NewServeMux()
	plain := withDeadline(lim.RequestTimeout, http.MaxBytesHandler(s.Signer.Middleware(gql), lim.MaxRequestBytes))
	// A subscription's connection lives as long as its token: no request
	// deadline (wsInit bounds it by the token's expiry).
	ws := withBearer(s.Signer.Middleware(gql))
	mux.Handle("/graphql", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWebsocket(r) {
			ws.ServeHTTP(w, r)
			return
		}
		plain.ServeHTTP(w, r)
	}))
	s.healthRoutes(mux)
	mux.Handle(console.Prefix, console.Handler()) // the audit console (web/console)
	if !s.cfg.DisableGraphiQL {
		mux.Handle("/", graphiql.HandlerWithDevHeaders(func() string {
			if tok, _ := s.devToken.Load().(string); tok != "" {
				return `{"Authorization": "Bearer ` + tok + `"}`
			}
			return ""
		}))
	}
	return tracing.Middleware(s.accessLog(mux))
}

// healthRoutes serves /healthz, /readyz and /metrics on mux.
func (s *Server) healthRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if !s.ready.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if err := s.Pool.Ping(ctx); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		// A failing asynchronous projection degrades only what it serves
		// (lastUsedAt): the server stays ready and names it.
		if failing := s.failing(); len(failing) > 0 {
			_, _ = fmt.Fprintf(w, "ready; degraded: projection %s failing\n", strings.Join(failing, ", projection "))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
}

// accessLog logs one line per request (method, path, status, time), never bodies.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		cid := r.Header.Get("X-Correlation-ID")
		if cid == "" || len(cid) > 64 {
			cid = uuid.NewString()
		}
		w.Header().Set("X-Correlation-ID", cid)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(graph.WithCorrelationID(r.Context(), cid)))
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			return
		}
		s.logger.InfoContext(r.Context(), "http request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"took", time.Since(start), "correlation_id", cid)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController and websocket upgrades reach the
// connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// SetDevToken makes GraphiQL start with token in its Authorization header:
// development mode only (the token is served to anyone who can reach the
// server, which there listens on loopback).
func (s *Server) SetDevToken(token string) { s.devToken.Store(token) }

// Handler is the HTTP surface.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on l until ctx ends, then drains requests and stops.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		ReadTimeout: s.limits.ReadTimeout, WriteTimeout: s.limits.WriteTimeout, IdleTimeout: s.limits.IdleTimeout}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.logger.Info("shutting down: draining requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops the background work (access-log flushers, key cache
// follower, asynchronous projections) and releases the database.
func (s *Server) Close() {
	s.ready.Store(false)
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.logger.Warn("background work did not stop within 15s")
	}
	s.closeNATS()
	s.Pool.Close()
}

// remoteWrites is the waiter of writes on a remote log, which logs and
// counts the writes answered before their projection.
func (s *Server) remoteWrites(reg prometheus.Registerer) *projections.Waiter {
	late := prometheus.NewCounter(prometheus.CounterOpts{Name: "secretlog_projection_wait_timeouts_total",
		Help: "Writes on a remote log answered before the read models applied them (ProjectionWait passed)."})
	reg.MustRegister(late)
	w := projections.NewWaiter(s.Pool, projections.ReadModelsConsumer)
	if s.cfg.ProjectionWait > 0 {
		w.Timeout = s.cfg.ProjectionWait
	}
	w.Late = func(c events.Cursor) {
		late.Inc()
		s.logger.Warn("write answered before its projection", "commit", c.Commit, "position", c.Position, "waited", w.Timeout.String())
	}
	return w
}

// verifiable is the log verifyLog checks: the PostgreSQL log, unless the
// log is elsewhere (nil: verifyLog refuses).
func (s *Server) verifiable() *events.PostgresStore {
	if s.cfg.Log != nil {
		return nil
	}
	return s.Store
}
