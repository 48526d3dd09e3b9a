package graph

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/feed"
	"github.com/secretlog/secretlog/graph/model"
)

type disconnectKey struct{}

// WithDisconnect stores how to close the websocket connection ctx belongs
// to: a subscriber that fell behind is disconnected, not only unsubscribed.
func WithDisconnect(ctx context.Context, disconnect func()) context.Context {
	return context.WithValue(ctx, disconnectKey{}, disconnect)
}

// disconnectDelay lets the subscription's error message go out before the
// connection closes.
const disconnectDelay = 500 * time.Millisecond

// maxFilterTypes bounds filter.types of a subscription.
const maxFilterTypes = 100

// subscribe runs a subscription of resourceType's events on the feed.
func (r *Resolver) subscribe(ctx context.Context, resourceType string, filter *model.ChangeFilter, after *string) (<-chan *model.ChangeEvent, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if r.Feed == nil {
		return nil, &commands.Error{Code: commands.FailedPrecondition, Message: "this server does not serve the change feed"}
	}
	f := feed.Filter{ResourceType: resourceType}
	if filter != nil {
		if len(filter.Types) > maxFilterTypes {
			return nil, &commands.Error{Code: commands.InvalidArgument, Message: "filter.types: at most 100 types"}
		}
		f.Types, f.ResourceID = filter.Types, str(filter.ResourceID)
	}
	var from *events.Cursor
	if after != nil {
		c, err := feed.ParsePosition(*after)
		if err != nil {
			return nil, &commands.Error{Code: commands.InvalidArgument, Field: "after", Message: err.Error()}
		}
		from = &c
	}
	envs, wait, err := r.Feed.Subscribe(ctx, id, f, from)
	if errors.Is(err, feed.ErrTooManySubscriptions) {
		return nil, &commands.Error{Code: commands.ResourceExhausted, Message: err.Error()}
	}
	if errors.Is(err, feed.ErrClosed) {
		return nil, &commands.Error{Code: codeUnavailable, Message: (&feed.ClosedError{}).Error()}
	}
	if err != nil {
		return nil, err
	}
	out := make(chan *model.ChangeEvent)
	ended := make(chan struct{})
	go func() { _ = wait(); close(ended) }()
	go func() {
		defer close(out)
		// resume is the position of the last event handed on to the
		// connection (or after): an event the broker delivered that is not
		// handed on when the subscription fails must not be skipped by a
		// client resuming from the position the error names.
		var resume string
		if after != nil {
			resume = *after
		}
		dropped := false
	loop:
		for env := range envs {
			select {
			case out <- changeEvent(env):
				resume = env.Position
			case <-ended: // failed while the client was not taking events
				dropped = true
				break loop
			case <-ctx.Done():
			}
		}
		err := wait()
		if err == nil || ctx.Err() != nil {
			// The client is gone: gqlgen no longer reads this
			// subscription's error (writing it would race its reader).
			return
		}
		var slow *feed.SlowError
		var closed *feed.ClosedError
		code, msg := commands.Internal, "internal error"
		switch {
		case errors.As(err, &slow):
			if dropped || slow.Last == "" {
				slow.Last = resume
			}
			code, msg = commands.ResourceExhausted, slow.Error()
		case errors.As(err, &closed):
			if dropped || closed.Last == "" {
				closed.Last = resume
			}
			code, msg = codeUnavailable, closed.Error()
		default:
			slog.Default().ErrorContext(ctx, "subscription failed", "error", err.Error())
		}
		transport.AddSubscriptionError(ctx, &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": string(code)}})
		// The connection of a subscriber cut off (too slow, or the server
		// shutting down) is closed: a client reconnects and resumes.
		if d, ok := ctx.Value(disconnectKey{}).(func()); ok && code != commands.Internal {
			time.AfterFunc(disconnectDelay, d)
		}
	}()
	return out, nil
}

// codeUnavailable is the code of a subscription the server ends because it
// stops serving the change feed: resubscribe (here later, or elsewhere).
const codeUnavailable commands.Code = "UNAVAILABLE"

// feedPosition is the feed's position now, for any caller.
func (r *Resolver) feedPosition(ctx context.Context) (string, error) {
	if _, err := caller(ctx); err != nil {
		return "", err
	}
	if r.Feed == nil {
		return "", &commands.Error{Code: commands.FailedPrecondition, Message: "this server does not serve the change feed"}
	}
	c, err := r.Feed.Head(ctx)
	if err != nil {
		return "", err
	}
	return feed.FormatPosition(c), nil
}

func changeEvent(env feed.Envelope) *model.ChangeEvent {
	e := &model.ChangeEvent{Position: env.Position, EventID: env.EventID, Type: env.Type, ResourceType: env.ResourceType,
		ResourceID: env.ResourceID, Version: int(env.Version), OccurredAt: env.OccurredAt,
		CorrelationID: nonEmpty(env.CorrelationID), ChangedFields: env.ChangedFields,
		Actor: &model.Actor{UserID: nonEmpty(env.Actor.UserID), Role: env.Actor.Role, DomainID: env.Actor.DomainID,
			Subject: nonEmpty(env.Actor.Subject)},
		Tenant: &model.Tenant{DomainID: env.Tenant.DomainID, WorkspaceID: nonEmpty(env.Tenant.WorkspaceID),
			ProjectID: nonEmpty(env.Tenant.ProjectID), UserID: nonEmpty(env.Tenant.UserID)}}
	if env.DataVersion != nil {
		v := int(*env.DataVersion)
		e.DataVersion = &v
	}
	if e.ChangedFields == nil {
		e.ChangedFields = []string{}
	}
	return e
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
