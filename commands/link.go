package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/commands/schemas"
	"github.com/secretlog/secretlog/events"
)

// The link between a Secret and the TrustedSecret it names (trustedSecretId).
//
// A secret may link only to a trusted secret that exists, is not deleted,
// lives in the secret's domain and is visible from the secret's workspace
// (auth.TrustedSecretVisibleFrom); a trusted secret that a live secret links
// to cannot be deleted. Both rules hold at commit, not just when checked:
//
//   - Linking (createSecret, updateSecret with trustedSecretId) takes a
//     transaction-scoped advisory lock on the trusted secret's id in SHARE
//     mode, then re-reads the trusted secret inside its transaction and
//     appends the secret's event (whose read-model row carries the link).
//   - Deleting a trusted secret takes the same lock EXCLUSIVE, then looks for
//     a live secret linked to it in the secrets read model, in the same
//     transaction that appends the deletion.
//
// So a link and the deletion never overlap: whichever takes the lock first
// commits first, and the other (READ COMMITTED: each statement sees what
// committed before it started) sees its outcome once it holds the lock: the
// deletion sees the new link and refuses, the link sees the deletion and
// refuses. Links to one trusted secret do not wait for each other (shared).
//
// The lock is an advisory lock rather than a row lock on the trusted
// secret's snapshot row (SELECT ... FOR SHARE / FOR UPDATE) because it
// protects exactly the link invariant: it needs no row to exist (snapshots
// are a disposable read model that a reset empties until the replay), it
// does not block, nor is blocked by, other writers of the trusted secret
// (every update rewrites its snapshot row), and the codebase already orders
// access-stream appenders the same way. Hash collisions of two ids only make
// unrelated links and deletions wait for each other.

// linkLockSpace is the first key of the advisory locks on trusted secret ids.
const linkLockSpace = 0x7a57ed

// LinkReader is what the link needs from the read models, inside a write's
// transaction. The projections' Projector implements it.
type LinkReader interface {
	// SnapshotIn is Projector.Snapshot read inside tx.
	SnapshotIn(ctx context.Context, tx pgx.Tx, id string, into Resource) (found bool, err error)
	// LinkedSecret returns the id of a live secret of domainID linked to
	// trustedSecretID (the first by id), or "" when there is none.
	LinkedSecret(ctx context.Context, tx pgx.Tx, domainID, trustedSecretID string) (string, error)
}

func (d Deps) links() (LinkReader, error) {
	lr, ok := d.Projector.(LinkReader)
	if !ok {
		return nil, fmt.Errorf("commands: projector %T cannot check trusted secret links", d.Projector)
	}
	return lr, nil
}

func lockTrustedSecret(ctx context.Context, tx pgx.Tx, id string, exclusive bool) error {
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	_, err := tx.Exec(ctx, `SELECT `+fn+`($1, hashtext($2))`, linkLockSpace, id)
	return err
}

// errNoLinkTarget: the trusted secret is missing, deleted, another domain's
// or out of the secret's workspace; the caller cannot tell which.
var errNoLinkTarget = errors.New("no usable trusted secret")

func badLink() *Error {
	return invalid("trustedSecretId", "names no trusted secret this secret can link to "+
		"(it must exist, in the secret's domain, and be DOMAIN-wide or in the secret's workspace)")
}

// linkTarget loads the trusted secret id for a secret living in scope, or
// errNoLinkTarget when the secret may not link to it.
func (d Deps) linkTarget(ctx context.Context, scope auth.Scope, id string) (*TrustedSecret, error) {
	if err := checkResourceID("trustedSecretId", "trusted secret", trustedSecretIDPrefix, id); err != nil {
		return nil, errNoLinkTarget
	}
	t := &TrustedSecret{}
	if err := d.load(ctx, id, t); err != nil {
		return nil, err
	}
	if !t.Live() || !auth.TrustedSecretVisibleFrom(t.Scope, scope) {
		return nil, errNoLinkTarget
	}
	return t, nil
}

// checkLink validates a new link of a secret living in scope, whose own
// value is own, to trusted secret id: INVALID_ARGUMENT naming trustedSecretId
// when the secret may not link to it, or naming data when the merged value
// does not match schemaID. It returns the schema's provider.
func (d Deps) checkLink(ctx context.Context, scope auth.Scope, id, schemaID string, own map[string]any) (string, error) {
	t, err := d.linkTarget(ctx, scope, id)
	if errors.Is(err, errNoLinkTarget) {
		return "", badLink()
	}
	if err != nil {
		return "", err
	}
	return d.checkMerged(ctx, t, schemaID, own)
}

// holdLink is the precondition of a write that links a secret living in
// scope to trusted secret id: under the shared lock, the trusted secret
// still exists and is visible (it may have been deleted since checkLink).
func (d Deps) holdLink(scope auth.Scope, id string) precondition {
	return func(ctx context.Context, tx pgx.Tx) error {
		lr, err := d.links()
		if err != nil {
			return err
		}
		if err := lockTrustedSecret(ctx, tx, id, false); err != nil {
			return err
		}
		t := &TrustedSecret{}
		found, err := lr.SnapshotIn(ctx, tx, id, t)
		if err != nil {
			return err
		}
		if !found || !t.Live() || !auth.TrustedSecretVisibleFrom(t.Scope, scope) {
			return badLink()
		}
		return nil
	}
}

// noLinkedSecret is the precondition of deleting trusted secret t: under the
// exclusive lock, no live secret links to it (Cloudforet's
// ERROR_EXIST_RELATED_SECRET).
func (d Deps) noLinkedSecret(t *TrustedSecret) precondition {
	return func(ctx context.Context, tx pgx.Tx) error {
		lr, err := d.links()
		if err != nil {
			return err
		}
		if err := lockTrustedSecret(ctx, tx, t.ID, true); err != nil {
			return err
		}
		linked, err := lr.LinkedSecret(ctx, tx, t.Scope.DomainID, t.ID)
		if err != nil {
			return err
		}
		if linked != "" {
			return failedPrecondition("trustedSecretId", "trusted secret %q is linked to secret %q (and maybe others): "+
				"delete those secrets or link them elsewhere first", t.ID, linked)
		}
		return nil
	}
}

// overlay is trusted's data with own's keys on top: the secret's keys win.
func overlay(trusted, own map[string]any) map[string]any {
	out := make(map[string]any, len(trusted)+len(own))
	for k, v := range trusted {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}

// checkMerged validates a secret's value own against schemaID, with the
// data of trusted secret t (nil: not linked) merged under it: a schema may
// require fields that only the trusted secret supplies. It returns the
// schema's provider. Errors name fields, never values.
func (d Deps) checkMerged(ctx context.Context, t *TrustedSecret, schemaID string, own map[string]any) (string, error) {
	if schemaID == "" {
		return "", nil
	}
	if err := checkID("schemaId", schemaID); err != nil {
		return "", err
	}
	data := own
	if t != nil {
		trusted, err := d.openCurrent(ctx, t)
		if err != nil {
			return "", err
		}
		data = overlay(trusted, own)
	}
	return checkSchema(d.Schemas, schemaID, data, t != nil)
}

// checkSchema validates data against schemaID (which must be known) and
// returns its provider; merged says the data includes a trusted secret's.
func checkSchema(reg *schemas.Registry, schemaID string, data map[string]any, merged bool) (string, error) {
	schema, ok := reg.Lookup(schemaID)
	if !ok {
		return "", invalid("schemaId", "unknown schema %q", schemaID)
	}
	err := reg.Validate(schemaID, data)
	if err == nil {
		return schema.Provider, nil
	}
	what := "does not match"
	if merged {
		what = "merged with the linked trusted secret's data, does not match"
	}
	var ve *schemas.ValidationError
	if errors.As(err, &ve) && len(ve.Fields) > 0 {
		parts := make([]string, len(ve.Fields))
		for i, f := range ve.Fields {
			parts[i] = f.String()
		}
		return "", invalid("data", "%s schema %q: %s", what, schemaID, strings.Join(parts, "; "))
	}
	return "", invalid("data", "%s schema %q", what, schemaID)
}

// relink validates changing secret s (moving to scope) to link to trusted
// secret id ("" unlinks): the secret's current value, merged with the new
// trusted secret's (or alone), must still match its schema.
func (d Deps) relink(ctx context.Context, s *Secret, scope auth.Scope, id string) ([]precondition, error) {
	own, err := d.openCurrent(ctx, s)
	if err != nil {
		return nil, err
	}
	if id == "" {
		_, err := d.checkMerged(ctx, nil, s.SchemaID, own)
		return nil, err
	}
	if err := checkID("trustedSecretId", id); err != nil {
		return nil, err
	}
	if _, err := d.checkLink(ctx, scope, id, s.SchemaID, own); err != nil {
		return nil, err
	}
	return []precondition{d.holdLink(scope, id)}, nil
}

// openCurrent decrypts r's current value.
func (d Deps) openCurrent(ctx context.Context, r Resource) (map[string]any, error) {
	b := r.Base()
	return d.open(ctx, KeyName(b.ID, b.DataVersion), b.ID, b.DataEventVersion, b.Data)
}

// linkedTrustedSecret is the trusted secret a linked secret s reads its
// merged value with: FAILED_PRECONDITION when it is no longer usable (only
// links recorded before they were checked can dangle: a linked trusted
// secret cannot be deleted).
func (d Deps) linkedTrustedSecret(ctx context.Context, s *Secret) (*TrustedSecret, error) {
	t, err := d.linkTarget(ctx, s.Scope, s.TrustedSecretID)
	if errors.Is(err, errNoLinkTarget) {
		return nil, failedPrecondition("trustedSecretId", "secret %q links to no usable trusted secret: "+
			"link it to another one, or unlink it (updateSecret with trustedSecretId \"\")", s.ID)
	}
	return t, err
}

// revealLinked answers secretData of a linked secret: the trusted secret's
// current value overlaid by the secret's own version n (the secret's keys
// win), validated against the secret's schema (the trusted secret's value
// may have changed since the secret was written), with the read recorded on
// both resources' access streams before the value leaves.
func (d Deps) revealLinked(ctx context.Context, meta Meta, s *Secret, opts RevealOptions) (Revealed, error) {
	t, err := d.linkedTrustedSecret(ctx, s)
	if err != nil {
		return Revealed{}, err
	}
	if !meta.Actor.CanReadTrustedSecretValue(t.Scope) {
		return Revealed{}, denied("only SYSTEM reads secret values")
	}
	if t.Disabled {
		return Revealed{}, failed("the trusted secret %q that secret %q links to is disabled", t.ID, s.ID)
	}
	own, n, err := d.openChosen(ctx, s, opts)
	if err != nil {
		return Revealed{}, err
	}
	trusted, err := d.openCurrent(ctx, t)
	if err != nil {
		return Revealed{}, err
	}
	merged := overlay(trusted, own)
	if s.SchemaID != "" {
		if _, err := checkSchema(d.Schemas, s.SchemaID, merged, true); err != nil {
			var e *Error
			if errors.As(err, &e) {
				// The stored values no longer fit: not the reader's argument.
				return Revealed{}, failedPrecondition(e.Field, "secret %q: %s", s.ID, e.Message)
			}
			return Revealed{}, err
		}
	}
	secretRead, err := newEvent(meta, s.Tenant(), events.SecretDataReadV1,
		events.SecretDataRead{SecretID: s.ID, DataVersion: n})
	if err != nil {
		return Revealed{}, err
	}
	trustedRead, err := newEvent(meta, t.Tenant(), events.TrustedSecretDataReadV1,
		events.TrustedSecretDataRead{TrustedSecretID: t.ID, DataVersion: t.DataVersion, ViaSecretID: s.ID})
	if err != nil {
		return Revealed{}, err
	}
	// Both reads queue at once, so they usually share one commit.
	done := make(chan error, 1)
	go func() { done <- d.Access.Record(ctx, t, trustedRead) }()
	errSecret := d.Access.Record(ctx, s, secretRead)
	if err := errors.Join(errSecret, <-done); err != nil {
		return Revealed{}, err
	}
	return Revealed{ID: s.ID, DataVersion: n, Data: merged}, nil
}

// linkedValue is the decision replacing the value of linked secret s: the
// new value, merged with the trusted secret's, must match schemaID.
func (d Deps) linkedValue(ctx context.Context, s *Secret, schemaID string, data map[string]any) (Decision, error) {
	plain, _, err := checkData(d.Schemas, "", data)
	if err != nil {
		return Decision{}, err
	}
	t, err := d.linkedTrustedSecret(ctx, s)
	if err != nil {
		return Decision{}, err
	}
	provider, err := d.checkMerged(ctx, t, schemaID, data)
	if err != nil {
		return Decision{}, err
	}
	return d.sealed(ctx, s, schemaID, provider, plain, valueOrigin{})
}
