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
	"github.com/secretlog/secretlog/query"
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

// listQuery turns QueryInput and the request-level filters (eq
// conditions, as python-core's append_query_filter adds them) into the
// query.Input the reader parses once: every key, operator and value is
// checked there, against res.
func listQuery(in *model.QueryInput, eq map[string]*string) query.Input {
	var q query.Input
	if in != nil {
		q = query.Input{Filter: filters(in.Filter), FilterOr: filters(in.FilterOr), Keyword: str(in.Keyword),
			CountOnly: in.CountOnly != nil && *in.CountOnly, Minimal: in.Minimal != nil && *in.Minimal, Only: in.Only}
		for _, s := range in.Sort {
			if s != nil {
				q.Sort = append(q.Sort, query.SortKey{Key: s.Key, Desc: s.Desc != nil && *s.Desc})
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
	}
	keys := make([]string, 0, len(eq))
	for key, v := range eq {
		if v != nil {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		q.Filter = append(q.Filter, query.Filter{Key: key, Value: *eq[key], Op: "eq"})
	}
	return q
}

func filters(in []*model.FilterInput) []query.Filter {
	var out []query.Filter
	for _, f := range in {
		if f != nil {
			out = append(out, query.Filter{Key: f.K, Value: f.V, Op: str(f.O)})
		}
	}
	return out
}

func secretData(rv commands.Revealed) *model.SecretData {
	return &model.SecretData{Encrypted: false, EncryptOptions: map[string]any{}, Data: rv.Data, Version: int(rv.DataVersion)}
}
