package commands

import (
	"context"
	"time"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
)

// replayUntil folds the stream's events that occurred at or before asOf.
func replayUntil(ctx context.Context, store events.Store, stream string, asOf time.Time, agg Resource) (deletedLater bool, err error) {
	recs, err := store.ReadStream(ctx, stream)
	if err != nil {
		return false, err
	}
	for _, r := range recs {
		if r.OccurredAt.After(asOf) {
			ev, err := events.Decode(r.Type, r.Data)
			if err != nil {
				return false, err
			}
			switch ev.(type) {
			case *events.SecretDeleted, *events.UserSecretDeleted, *events.TrustedSecretDeleted:
				deletedLater = true
			}
			continue
		}
		if _, err := Fold(agg, r); err != nil {
			return false, err
		}
	}
	return deletedLater, nil
}

// ReadSecretAsOf asks for a secret's metadata at a point in time.
type ReadSecretAsOf struct {
	Meta
	SecretID string
	AsOf     time.Time
}

// ReadUserSecretAsOf asks for a user secret's metadata at a point in time.
type ReadUserSecretAsOf struct {
	Meta
	UserSecretID string
	AsOf         time.Time
}

// HandleReadSecretAsOf implements ReadSecretAsOf.
func (d Deps) HandleReadSecretAsOf(ctx context.Context, q ReadSecretAsOf) (*Secret, error) {
	return d.SecretAsOf(ctx, q.Meta, q.SecretID, q.AsOf)
}

// HandleReadUserSecretAsOf implements ReadUserSecretAsOf.
func (d Deps) HandleReadUserSecretAsOf(ctx context.Context, q ReadUserSecretAsOf) (*UserSecret, error) {
	return d.UserSecretAsOf(ctx, q.Meta, q.UserSecretID, q.AsOf)
}

// SecretAsOf answers a secret's metadata as it was at asOf, replayed from the
// log. A secret deleted since is visible (as of before its deletion) to
// DOMAIN_ADMIN of its domain only.
func (d Deps) SecretAsOf(ctx context.Context, meta Meta, id string, asOf time.Time) (*Secret, error) {
	if err := requireActor(meta); err != nil {
		return nil, err
	}
	if err := checkResourceID("secretId", "secret", secretIDPrefix, id); err != nil {
		return nil, err
	}
	s := &Secret{}
	deletedLater, err := replayUntil(ctx, d.Store, id, asOf, s)
	if err != nil {
		return nil, err
	}
	if !s.Exists() || !meta.Actor.CanReadSecret(s.Scope) {
		return nil, notFound("secret", id)
	}
	if deletedLater && !(meta.Actor.Role == auth.RoleDomainAdmin && meta.Actor.DomainID == s.Scope.DomainID) {
		return nil, notFound("secret", id)
	}
	return s, nil
}

// UserSecretAsOf answers a user secret's metadata as it was at asOf.
func (d Deps) UserSecretAsOf(ctx context.Context, meta Meta, id string, asOf time.Time) (*UserSecret, error) {
	if err := requireActor(meta); err != nil {
		return nil, err
	}
	if err := checkResourceID("userSecretId", "user secret", userSecretIDPrefix, id); err != nil {
		return nil, err
	}
	s := &UserSecret{}
	deletedLater, err := replayUntil(ctx, d.Store, id, asOf, s)
	if err != nil {
		return nil, err
	}
	if !s.Exists() || !meta.Actor.CanReadUserSecret(s.DomainID, s.UserID) {
		return nil, notFound("user secret", id)
	}
	if deletedLater && !(meta.Actor.Role == auth.RoleDomainAdmin && meta.Actor.DomainID == s.DomainID) {
		return nil, notFound("user secret", id)
	}
	return s, nil
}

func (q ReadSecretAsOf) target() string     { return q.SecretID }
func (q ReadUserSecretAsOf) target() string { return q.UserSecretID }
