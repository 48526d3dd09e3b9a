package graph

import (
	"context"
	"fmt"
	"sort"

	"github.com/google/uuid"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/graph/model"
	"github.com/secretlog/secretlog/projections"
)

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

// secretAfter answers a mutation from the state it committed: the read
// models were written in the same transaction, so this is what every server
// answers from now on.
func secretAfter(res commands.Result) (*projections.Secret, error) {
	s, ok := res.State.(*commands.Secret)
	if !ok {
		return nil, fmt.Errorf("graph: a secret command returned %T", res.State)
	}
	return secretView(s), nil
}

func userSecretAfter(res commands.Result) (*projections.UserSecret, error) {
	s, ok := res.State.(*commands.UserSecret)
	if !ok {
		return nil, fmt.Errorf("graph: a user secret command returned %T", res.State)
	}
	return userSecretView(s), nil
}

func trustedSecretAfter(res commands.Result) (*projections.TrustedSecret, error) {
	s, ok := res.State.(*commands.TrustedSecret)
	if !ok {
		return nil, fmt.Errorf("graph: a trusted secret command returned %T", res.State)
	}
	return trustedSecretView(s), nil
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
