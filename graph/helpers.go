package graph

import (
	"context"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/graph/model"
	"github.com/secretlog/secretlog/projections"
)

// readYourWritesTimeout bounds how long a mutation waits for its projection.
const readYourWritesTimeout = 10 * time.Second

type correlationKey struct{}

// WithCorrelationID stores the request's correlation id for the events it causes.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

func correlationID(ctx context.Context) string {
	if id, ok := ctx.Value(correlationKey{}).(string); ok && id != "" {
		return id
	}
	return uuid.NewString()
}

// caller is the authenticated identity, or UNAUTHENTICATED.
func caller(ctx context.Context) (auth.Identity, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		msg := "authentication required: send Authorization: Bearer <token>"
		if auth.TokenError(ctx) != nil {
			msg = "invalid or expired token"
		}
		return auth.Identity{}, &commands.Error{Code: commands.Unauthenticated, Message: msg}
	}
	return id, nil
}

func meta(ctx context.Context) (commands.Meta, error) {
	id, err := caller(ctx)
	if err != nil {
		return commands.Meta{}, err
	}
	return commands.Meta{Actor: id, CorrelationID: correlationID(ctx)}, nil
}

// settle waits until projection has applied the write, so the answer and
// every later query by this client reflect it.
func (r *Resolver) settle(ctx context.Context, projection string, c events.Cursor) error {
	ctx, cancel := context.WithTimeout(ctx, readYourWritesTimeout)
	defer cancel()
	if err := r.Waiter.Wait(ctx, projection, c); err != nil {
		return &commands.Error{Code: commands.Internal, Message: "the write is stored but its read model is lagging; query again shortly"}
	}
	return nil
}

func (r *Resolver) secretAfter(ctx context.Context, m commands.Meta, res commands.Result) (*projections.Secret, error) {
	if err := r.settle(ctx, projections.SecretsProjection, res.Cursor()); err != nil {
		return nil, err
	}
	s, err := r.Reader.Secret(ctx, m.Actor, res.ID)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func (r *Resolver) userSecretAfter(ctx context.Context, m commands.Meta, res commands.Result) (*projections.UserSecret, error) {
	if err := r.settle(ctx, projections.UserSecretsProjection, res.Cursor()); err != nil {
		return nil, err
	}
	s, err := r.Reader.UserSecret(ctx, m.Actor, res.ID)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// listQuery turns QueryInput and the request-level filters into a
// projections.Query; every key, operator and value is checked when the
// query is translated. `only` keys are validated: the rows' shape is the
// GraphQL selection, which `minimal` and `only` cannot narrow further.
func listQuery(in *model.QueryInput, res projections.Resource, eq map[string]*string) (projections.Query, error) {
	var q projections.Query
	if in != nil {
		for _, f := range in.Filter {
			if f != nil {
				q.Filter = append(q.Filter, projections.Condition{Key: f.K, Value: f.V, Op: str(f.O)})
			}
		}
		for _, f := range in.FilterOr {
			if f != nil {
				q.FilterOr = append(q.FilterOr, projections.Condition{Key: f.K, Value: f.V, Op: str(f.O)})
			}
		}
		for _, s := range in.Sort {
			if s != nil {
				q.Sort = append(q.Sort, projections.SortKey{Key: s.Key, Desc: s.Desc != nil && *s.Desc})
			}
		}
		if in.Page != nil {
			if in.Page.Start != nil {
				q.Page.Start = *in.Page.Start
			}
			if in.Page.Limit != nil {
				q.Page.Limit = *in.Page.Limit
			}
		}
		q.Keyword = str(in.Keyword)
		q.CountOnly = in.CountOnly != nil && *in.CountOnly
		q.Minimal = in.Minimal != nil && *in.Minimal
		q.Only = in.Only
		if err := res.CheckKeys(in.Only); err != nil {
			return q, err
		}
	}
	keys := make([]string, 0, len(eq))
	for key, v := range eq {
		if v != nil {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		q.Filter = append(q.Filter, projections.Condition{Key: key, Value: *eq[key], Op: "eq"})
	}
	return q, nil
}

func secretData(rv commands.Revealed) *model.SecretData {
	return &model.SecretData{Encrypted: false, EncryptOptions: map[string]any{}, Data: rv.Data}
}
