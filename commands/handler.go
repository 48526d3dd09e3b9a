// Package commands is secretlog's write side: one small struct per command,
// one handler per command that loads the aggregate from its stream, decides,
// and appends encrypted events with the expected version. Cross-cutting
// concerns (retries on conflict, logging, metrics) are decorators.
package commands

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands/schemas"
	"github.com/secretlog/secretlog/events"
)

// Handler handles one command type and answers synchronously.
type Handler[C, R any] interface {
	Handle(ctx context.Context, cmd C) (R, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc[C, R any] func(ctx context.Context, cmd C) (R, error)

// Handle calls f.
func (f HandlerFunc[C, R]) Handle(ctx context.Context, cmd C) (R, error) { return f(ctx, cmd) }

// Meta is who issues a command, carried into every event it records.
type Meta struct {
	Actor         auth.Identity
	CorrelationID string
}

// Result of a write: the resource id, the records appended and the
// resource's state after them (what its read models now say).
type Result struct {
	ID      string
	Records []events.Record
	State   Resource
	// States are the states after each record.
	States []Resource
}

// Deps are what handlers need. With the PostgreSQL log, a command's events,
// its data key and its read-model rows commit in one transaction on DB.
// With a remote log (Remote set) the events are appended to Store and
// projected afterwards.
type Deps struct {
	DB        *pgxpool.Pool
	Store     events.Store
	Keys      *events.KeyStore
	Schemas   *schemas.Registry
	Projector Projector
	Access    *AccessLog
	// Streams groups concurrent commands on one stream into one commit
	// (nil: no grouping across calls).
	Streams *StreamQueue
	// Lifecycle configures retention, recovery windows and the clock.
	Lifecycle Lifecycle
	// Remote, when set, says the log (Store) is not the event_log table of
	// DB: writes append to Store and wait for the leased runner to project
	// them (see Projected). Nil: Store is the PostgreSQL log in DB and the
	// read models commit with each write.
	Remote Projected
}

func newEvent(meta Meta, tenant events.Tenant, typ string, payload any) (events.Event, error) {
	data, err := events.Encode(payload)
	if err != nil {
		return events.Event{}, err
	}
	a := meta.Actor
	return events.Event{
		Type: typ,
		Data: data,
		Metadata: events.Metadata{
			Actor:         events.Actor{Subject: a.Subject, UserID: a.UserID, Role: string(a.Role), DomainID: a.DomainID},
			Tenant:        tenant,
			CorrelationID: meta.CorrelationID,
			CausationID:   uuid.NewString(),
		},
	}, nil
}

func requireActor(meta Meta) error {
	if meta.Actor.Role == "" || meta.Actor.DomainID == "" {
		return &Error{Code: Unauthenticated, Message: "authentication required"}
	}
	return nil
}

// Retrying re-runs h when its append lost a race (events.ErrConflict), up to
// attempts times with jittered backoff, then answers CONFLICT.
func Retrying[C, R any](h Handler[C, R], attempts int) Handler[C, R] {
	return HandlerFunc[C, R](func(ctx context.Context, cmd C) (R, error) {
		var res R
		var err error
		for i := 0; i < attempts; i++ {
			res, err = h.Handle(ctx, cmd)
			if !errors.Is(err, events.ErrConflict) {
				return res, err
			}
			backoff := time.Duration(rand.Int64N(int64(time.Millisecond) << min(i, 5)))
			select {
			case <-ctx.Done():
				return res, ctx.Err()
			case <-time.After(backoff):
			}
		}
		return res, &Error{Code: Conflict, Message: "the resource was changed concurrently; retry"}
	})
}

// Logged records each command's outcome. It logs ids, never values.
func Logged[C command, R any](h Handler[C, R], logger *slog.Logger, name string) Handler[C, R] {
	return HandlerFunc[C, R](func(ctx context.Context, cmd C) (R, error) {
		start := time.Now()
		res, err := h.Handle(ctx, cmd)
		m := cmd.meta()
		resource := cmd.target()
		if r, ok := any(res).(Result); ok && resource == "" {
			resource = r.ID
		}
		attrs := []any{
			slog.String("command", name),
			slog.String("actor", m.Actor.Subject),
			slog.String("role", string(m.Actor.Role)),
			slog.String("domain", m.Actor.DomainID),
			slog.String("resource", resource),
			slog.String("correlation_id", m.CorrelationID),
			slog.Duration("took", time.Since(start)),
		}
		if err != nil {
			code := CodeOf(err)
			attrs = append(attrs, slog.String("code", string(code)))
			if code == Internal {
				attrs = append(attrs, slog.String("error", err.Error()))
				logger.ErrorContext(ctx, "command failed", attrs...)
			} else {
				logger.InfoContext(ctx, "command rejected", attrs...)
			}
			return res, err
		}
		logger.InfoContext(ctx, "command handled", attrs...)
		return res, nil
	})
}

// Metrics counts and times commands by name and outcome code.
type Metrics struct {
	duration *prometheus.HistogramVec
}

// NewMetrics registers the command metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "secretlog_command_duration_seconds",
		Help:    "Time to handle a command, by command and outcome code.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"command", "code"})}
	reg.MustRegister(m.duration)
	return m
}

// Measured records h's latency and outcome in m.
func Measured[C, R any](h Handler[C, R], m *Metrics, name string) Handler[C, R] {
	return HandlerFunc[C, R](func(ctx context.Context, cmd C) (R, error) {
		start := time.Now()
		res, err := h.Handle(ctx, cmd)
		code := "OK"
		if err != nil {
			code = string(CodeOf(err))
		}
		m.duration.WithLabelValues(name, code).Observe(time.Since(start).Seconds())
		return res, err
	})
}
