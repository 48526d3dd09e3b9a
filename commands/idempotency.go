package commands

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/secretlog/secretlog/events"
)

// Idempotency (clientRequestToken, as AWS Secrets Manager's
// ClientRequestToken): a create or a value update that carries a token is
// remembered under it, in the transaction that appends its events, with
// the stream version its events ended at. The same token with the same
// request answers that first result again (the resource as it was right
// after that request) and appends nothing; the same token with another
// request is CONFLICT. Tokens are scoped per domain and operation (per
// user for user secrets, per resource for value updates) and remembered
// for TokenTTL at least.
//
// What makes two requests "the same" is a fingerprint: HMAC-SHA256 of the
// whole request (caller, operation, every field, the value included) under
// a key derived (HKDF) from the newest version of the keyring's primary;
// the row keeps that key's id so a rotation does not change old answers.
// A plain hash would let anyone who can read the table test guesses of a
// low-entropy value (a PIN, a short password) offline; the keyed MAC needs
// the keyring, which already opens every value.

// TokenTTL is how long a clientRequestToken is remembered: a token older
// than this is fresh again, and the scheduler purges its row.
const TokenTTL = 24 * time.Hour

var requestTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// fingerprintPurpose names the derived MAC key (and its version).
const fingerprintPurpose = "request-fingerprint/v1"

// requestToken is a token claimed by one request.
type requestToken struct {
	DomainID, Scope, Token string
	Fingerprint            []byte
	KeyID                  string
	// message is what Fingerprint MACs, kept to recompute it under an
	// older key.
	message []byte
}

func (t *requestToken) key() string { return t.DomainID + "\x00" + t.Scope + "\x00" + t.Token }

// storedToken is a remembered token's row.
type storedToken struct {
	Fingerprint []byte
	KeyID       string
	Stream      string
	Version     int64
}

// claimToken builds the claim of token ("" : none) for a request in scope;
// request is every field that makes it this request.
func (d Deps) claimToken(meta Meta, token, scope string, request any) (*requestToken, error) {
	if token == "" {
		return nil, nil
	}
	if !requestTokenPattern.MatchString(token) {
		return nil, invalid("clientRequestToken", "must be 1 to 64 letters, digits, '_' or '-'")
	}
	a := meta.Actor
	msg, err := json.Marshal(struct {
		Scope   string `json:"scope"`
		Subject string `json:"sub"`
		UserID  string `json:"uid"`
		Role    string `json:"role"`
		Domain  string `json:"dom"`
		Work    string `json:"ws"`
		Request any    `json:"req"`
	}{scope, a.Subject, a.UserID, string(a.Role), a.DomainID, a.WorkspaceID, request})
	if err != nil {
		return nil, err
	}
	keyID, key, err := d.Keys.Keyring().MACKey(fingerprintPurpose)
	if err != nil {
		return nil, err
	}
	return &requestToken{DomainID: a.DomainID, Scope: scope, Token: token, Fingerprint: mac(key, msg), KeyID: keyID, message: msg}, nil
}

func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// sameRequest reports whether the stored token was claimed by this
// request. A fingerprint whose key left the keyring cannot be checked: it
// is another request then (CONFLICT), never silently the same.
func (d Deps) sameRequest(claim *requestToken, stored *storedToken) bool {
	if stored.KeyID == claim.KeyID {
		return hmac.Equal(stored.Fingerprint, claim.Fingerprint)
	}
	key, err := d.Keys.Keyring().MACKeyFor(stored.KeyID, fingerprintPurpose)
	if err != nil {
		return false
	}
	return hmac.Equal(stored.Fingerprint, mac(key, claim.message))
}

// lookupToken reads the claim's token if it is still remembered.
func (d Deps) lookupToken(ctx context.Context, claim *requestToken) (*storedToken, error) {
	var s storedToken
	err := d.DB.QueryRow(ctx, `SELECT fingerprint, fingerprint_key, stream_id, stream_version FROM request_tokens
		WHERE domain_id = $1 AND scope = $2 AND token = $3 AND created_at > $4`,
		claim.DomainID, claim.Scope, claim.Token, d.now().Add(-TokenTTL)).Scan(&s.Fingerprint, &s.KeyID, &s.Stream, &s.Version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// queueToken queues remembering claim as answered by stream at version, on
// the batch of the transaction appending that version. A remembered row
// past TokenTTL gives way; a live one makes the insert fail (tokenTaken).
func (d Deps) queueToken(b *pgx.Batch, claim *requestToken, stream string, version int64) {
	now := d.now()
	b.Queue(`DELETE FROM request_tokens WHERE domain_id = $1 AND scope = $2 AND token = $3 AND created_at <= $4`,
		claim.DomainID, claim.Scope, claim.Token, now.Add(-TokenTTL))
	b.Queue(`INSERT INTO request_tokens (domain_id, scope, token, fingerprint, fingerprint_key, stream_id, stream_version, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		claim.DomainID, claim.Scope, claim.Token, claim.Fingerprint, claim.KeyID, stream, version, now)
}

// tokenTaken reports whether err is another request claiming the same
// token first (the loser of the unique index).
func tokenTaken(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "request_tokens_pkey"
}

func tokenConflict() *Error {
	return &Error{Code: Conflict, Field: "clientRequestToken",
		Message: "this token was used by a different request (tokens are remembered for 24 hours)"}
}

// answerToken is a remembered token's answer to claim: the first result
// when the request is the same, CONFLICT when not; ok is false when the
// token is not remembered.
func (d Deps) answerToken(ctx context.Context, claim *requestToken, empty Resource) (res Result, ok bool, err error) {
	stored, err := d.lookupToken(ctx, claim)
	if err != nil || stored == nil {
		return Result{}, false, err
	}
	if !d.sameRequest(claim, stored) {
		return Result{}, true, tokenConflict()
	}
	res, err = d.stateAt(ctx, stored.Stream, stored.Version, empty)
	return res, true, err
}

// stateAt is the result of the request whose events ended at version of
// stream: the resource's state then, replayed from the log.
func (d Deps) stateAt(ctx context.Context, stream string, version int64, empty Resource) (Result, error) {
	r := empty.Clone()
	recs, err := d.Store.ReadStream(ctx, stream)
	if err != nil {
		return Result{}, err
	}
	for _, rec := range recs {
		if rec.Version > version {
			break
		}
		if _, err := Fold(r, rec); err != nil {
			return Result{}, err
		}
	}
	if r.Base().StreamVersion < version && d.remote() {
		// On a remote log a token is remembered before its events are
		// appended: they may still be on their way.
		return Result{}, events.ErrConflict
	}
	if r.Base().StreamVersion != version {
		return Result{}, fmt.Errorf("commands: %s has no version %d for a remembered token", stream, version)
	}
	return Result{ID: stream, State: r}, nil
}

// idempotent runs a create under claim (nil: no token): a remembered token
// answers at once; a create that loses the token to a concurrent one (on
// this server or another) answers the winner's result.
func (d Deps) idempotent(ctx context.Context, claim *requestToken, empty Resource, create func() (Result, error)) (Result, error) {
	if claim == nil {
		return create()
	}
	if res, ok, err := d.answerToken(ctx, claim, empty); ok || err != nil {
		return res, err
	}
	res, err := create()
	if !tokenTaken(err) {
		return res, err
	}
	res, ok, err := d.answerToken(ctx, claim, empty)
	if err == nil && !ok {
		err = fmt.Errorf("commands: token lost to a request whose row is gone")
	}
	return res, err
}

// sameClaim reports whether two claims in one group commit are the same
// request (both were made with the same, current key).
func sameClaim(a, b *requestToken) bool {
	return a.KeyID == b.KeyID && bytes.Equal(a.Fingerprint, b.Fingerprint)
}
