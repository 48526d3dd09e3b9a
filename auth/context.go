package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

type ctxKey struct{}

// ctxAuth is what the context carries: either a verified identity, or the
// error of a token that was presented but rejected.
type ctxAuth struct {
	id  Identity
	ok  bool
	err error
}

// WithIdentity returns a copy of ctx carrying id (and no token error).
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, ctxAuth{id: id.clone(), ok: true})
}

// withTokenError returns a copy of ctx carrying no identity and err.
func withTokenError(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, ctxKey{}, ctxAuth{err: err})
}

// FromContext returns the identity carried by ctx, if any. It reports false
// when no identity was set, or when the request presented an invalid token.
func FromContext(ctx context.Context) (Identity, bool) {
	a, ok := ctx.Value(ctxKey{}).(ctxAuth)
	if !ok || !a.ok {
		return Identity{}, false
	}
	return a.id.clone(), true
}

// TokenError returns the error recorded by Middleware for a request that
// presented an invalid token, or nil.
func TokenError(ctx context.Context) error {
	a, ok := ctx.Value(ctxKey{}).(ctxAuth)
	if !ok {
		return nil
	}
	return a.err
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header. present is false when there is no Authorization header at all.
func bearerToken(r *http.Request) (token string, present bool, err error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, errors.New("multiple Authorization headers")
	}
	scheme, tok, found := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, errors.New("authorization header is not a Bearer token")
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", true, errors.New("malformed Bearer token")
	}
	return tok, true, nil
}

// Middleware authenticates requests carrying "Authorization: Bearer <token>".
//
//   - No Authorization header: the request proceeds unchanged (without
//     identity); resolvers answer UNAUTHENTICATED.
//   - A valid token: the request proceeds with the token's identity
//     (FromContext).
//   - A present but invalid header or token: the request proceeds without
//     identity (FromContext reports false, even if an outer layer had set
//     one) and TokenError returns an error wrapping ErrInvalidToken.
func (s *Signer) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, present, err := bearerToken(r)
		if !present {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		if err != nil {
			ctx = withTokenError(ctx, fmt.Errorf("%w: %w", ErrInvalidToken, err))
		} else if id, verr := s.Verify(tok); verr != nil {
			ctx = withTokenError(ctx, verr)
		} else {
			ctx = WithIdentity(ctx, id)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
