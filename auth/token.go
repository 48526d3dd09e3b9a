package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Issuer is the "iss" claim of every token minted by a Signer.
const Issuer = "secretlog"

// MinKeyLength is the minimum length of a signing key, in bytes.
const MinKeyLength = 32

// ErrInvalidToken is returned (wrapping the cause) by Signer.Verify for any
// token that is not accepted.
var ErrInvalidToken = errors.New("invalid token")

// claims is the JWT payload of a secretlog token.
type claims struct {
	UserID      string   `json:"user_id,omitempty"`
	Role        string   `json:"role"`
	DomainID    string   `json:"domain_id"`
	WorkspaceID string   `json:"workspace_id,omitempty"`
	Projects    []string `json:"projects,omitempty"`
	jwt.RegisteredClaims
}

// DefaultMaxTTL caps a token's lifetime unless configured otherwise
// (SECRETLOG_MAX_TOKEN_TTL).
const DefaultMaxTTL = 24 * time.Hour

// Signer mints and verifies HS256 bearer tokens with the server's key.
// It is safe for concurrent use.
type Signer struct {
	key    []byte
	now    func() time.Time // clock; overridden in tests
	maxTTL time.Duration
	// verified remembers tokens that passed Verify (by their SHA-256), so
	// a client's repeated requests skip the signature check and decoding;
	// each hit still checks the token's validity window.
	verified *expirable.LRU[[sha256.Size]byte, verifiedToken]
}

type verifiedToken struct {
	id       Identity
	nbf, exp time.Time
}

// Bounds of the verified-token cache.
const (
	verifiedCacheSize = 10000
	verifiedCacheTTL  = 5 * time.Minute
)

func newVerifiedCache() *expirable.LRU[[sha256.Size]byte, verifiedToken] {
	return expirable.NewLRU[[sha256.Size]byte, verifiedToken](verifiedCacheSize, nil, verifiedCacheTTL)
}

// NewSigner returns a Signer using a copy of key, which must be at least
// MinKeyLength bytes long. Its tokens live at most DefaultMaxTTL.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinKeyLength {
		return nil, fmt.Errorf("auth: signing key must be at least %d bytes, got %d", MinKeyLength, len(key))
	}
	return &Signer{key: slices.Clone(key), now: time.Now, maxTTL: DefaultMaxTTL, verified: newVerifiedCache()}, nil
}

// WithMaxTTL returns a Signer with the same key whose tokens may live at
// most max (0: DefaultMaxTTL). Mint refuses longer lifetimes, and Verify
// refuses tokens issued for longer, whoever minted them.
func (s *Signer) WithMaxTTL(max time.Duration) *Signer {
	c := *s
	c.verified = newVerifiedCache()
	c.maxTTL = max
	if max <= 0 {
		c.maxTTL = DefaultMaxTTL
	}
	return &c
}

// MaxTTL is the longest lifetime of a token.
func (s *Signer) MaxTTL() time.Duration { return s.maxTTL }

// newTokenID returns 16 random hex characters.
func newTokenID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: generating token id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Mint validates id and returns a token for it, valid for ttl from now.
// It sets iat, nbf, exp, iss ("secretlog") and a fresh random jti (any
// TokenID in id is ignored). An empty Subject defaults to UserID, else to
// "<role>@<domain>".
func (s *Signer) Mint(id Identity, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("auth: token ttl must be positive, got %s", ttl)
	}
	if ttl > s.maxTTL {
		return "", fmt.Errorf("auth: token ttl %s is longer than the maximum of %s (SECRETLOG_MAX_TOKEN_TTL)", ttl, s.maxTTL)
	}
	jti, err := newTokenID()
	if err != nil {
		return "", err
	}
	id.TokenID = jti
	if id.Subject == "" {
		if id.UserID != "" {
			id.Subject = id.UserID
		} else {
			id.Subject = string(id.Role) + "@" + id.DomainID
		}
	}
	if err := id.Validate(); err != nil {
		return "", err
	}
	now := s.now()
	c := claims{
		UserID:      id.UserID,
		Role:        string(id.Role),
		DomainID:    id.DomainID,
		WorkspaceID: id.WorkspaceID,
		Projects:    id.Projects,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   id.Subject,
			ID:        id.TokenID,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("auth: signing token: %w", err)
	}
	return tok, nil
}

// Verify checks token and returns the identity it carries. Only HS256
// tokens signed with the Signer's key are accepted; exp, nbf, iat, iss,
// sub and jti are required and checked, and the identity is re-validated.
// Every failure is reported as an error wrapping both ErrInvalidToken and
// the cause.
func (s *Signer) Verify(token string) (Identity, error) {
	key := sha256.Sum256([]byte(token))
	if v, ok := s.verified.Get(key); ok {
		if now := s.now(); !now.Before(v.nbf) && now.Before(v.exp) {
			return v.id, nil
		}
		s.verified.Remove(key)
	}
	id, c, err := s.verify(token)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	s.verified.Add(key, verifiedToken{id: id, nbf: c.NotBefore.Time, exp: c.ExpiresAt.Time})
	return id, nil
}

func (s *Signer) verify(token string) (Identity, claims, error) {
	if token == "" {
		return Identity{}, claims{}, errors.New("empty token")
	}
	var c claims
	_, err := jwt.ParseWithClaims(token, &c,
		func(t *jwt.Token) (any, error) {
			// Belt and braces: WithValidMethods already restricts alg.
			if t.Method != jwt.SigningMethodHS256 {
				return nil, fmt.Errorf("unexpected signing method %v", t.Header["alg"])
			}
			return s.key, nil
		},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return Identity{}, c, err
	}
	// The parser checks nbf and iat only when present; require them.
	if c.NotBefore == nil {
		return Identity{}, c, errors.New("token is missing the nbf claim")
	}
	if c.IssuedAt == nil {
		return Identity{}, c, errors.New("token is missing the iat claim")
	}
	if c.Subject == "" {
		return Identity{}, c, errors.New("token is missing the sub claim")
	}
	if c.ID == "" {
		return Identity{}, c, errors.New("token is missing the jti claim")
	}
	if c.ExpiresAt.Sub(c.IssuedAt.Time) > s.maxTTL {
		return Identity{}, c, fmt.Errorf("token lifetime is longer than the maximum of %s", s.maxTTL)
	}
	role, err := ParseRole(c.Role)
	if err != nil {
		return Identity{}, c, err
	}
	id := Identity{
		Subject:     c.Subject,
		UserID:      c.UserID,
		Role:        role,
		DomainID:    c.DomainID,
		WorkspaceID: c.WorkspaceID,
		Projects:    c.Projects,
		TokenID:     c.ID,
	}
	if err := id.Validate(); err != nil {
		return Identity{}, c, err
	}
	return id, c, nil
}
