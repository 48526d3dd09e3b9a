package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/localpg/pgtest"
	"github.com/secretlog/secretlog/server"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// asyncProjections runs every stack the way a remote log (EventStoreDB)
// runs: writes append to the log, the leased runner projects them and the
// write waits for it. CI runs this package both ways
// (SECRETLOG_TEST_PROJECTIONS=async).
var asyncProjections = os.Getenv("SECRETLOG_TEST_PROJECTIONS") == "async"

// syncBuffer collects the server's log output for inspection.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// stack is the whole service on a fresh database, served over real HTTP.
type stack struct {
	t           *testing.T
	DatabaseURL string
	Server      *server.Server
	HTTP        *httptest.Server
	Logs        *syncBuffer
	keyring     *events.Keyring
	tokenKey    []byte
	// configure, when set, changes the configuration of every start.
	configure func(*server.Config)
}

func newStack(t *testing.T) *stack {
	t.Helper()
	spec, err := events.NewKeySpec("test-1")
	require.NoError(t, err)
	keyring, err := events.ParseKeyring(spec)
	require.NoError(t, err)
	tokenKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(spec, "test-1:"))
	require.NoError(t, err)
	s := &stack{t: t, DatabaseURL: pgtest.NewDatabase(t), Logs: &syncBuffer{}, keyring: keyring, tokenKey: tokenKey}
	s.start()
	return s
}

func (s *stack) start() {
	t := s.t
	logger := slog.New(slog.NewJSONHandler(s.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := server.Config{DatabaseURL: s.DatabaseURL, Keyring: s.keyring, TokenKey: s.tokenKey, Logger: logger,
		AsyncProjections: asyncProjections}
	if s.configure != nil {
		s.configure(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	require.NoError(t, err)
	s.Server = srv
	s.HTTP = httptest.NewServer(srv.Handler())
	t.Cleanup(s.stop)
}

func (s *stack) stop() {
	if s.HTTP != nil {
		s.HTTP.Close()
		s.Server.Close()
		s.HTTP = nil
	}
}

// restart stops the server and starts a new one on the same database.
func (s *stack) restart() {
	s.stop()
	s.start()
}

// token mints a bearer token for id.
func (s *stack) token(id auth.Identity) string {
	s.t.Helper()
	tok, err := s.Server.Signer.Mint(id, time.Hour)
	require.NoError(s.t, err)
	return tok
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
	Status int             `json:"-"`
}

// Code is the first error's extensions.code, "" when there is no error.
func (r gqlResponse) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// Decode unmarshals data into v.
func (r gqlResponse) Decode(t testing.TB, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Data, v))
}

// do posts a GraphQL request; token "" sends none.
func (s *stack) do(token, query string, vars map[string]any) gqlResponse {
	s.t.Helper()
	return doGraphQL(s.t, s.HTTP.URL, token, query, vars)
}

func doGraphQL(t testing.TB, base, token, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out gqlResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	out.Status = resp.StatusCode
	return out
}

// mustOK fails the test on any GraphQL error and decodes data into v (when non-nil).
func (s *stack) mustOK(token, query string, vars map[string]any, v any) {
	s.t.Helper()
	r := s.do(token, query, vars)
	require.Empty(s.t, r.Errors, "query %s", query)
	if v != nil {
		r.Decode(s.t, v)
	}
}

const createSecretMutation = `mutation($in: CreateSecretInput!) { createSecret(input: $in) {
  secretId name schemaId provider tags resourceGroup domainId workspaceId projectId serviceAccountId
  trustedSecretId version createdBy updatedBy createdAt updatedAt } }`

// createSecret creates a secret as token and returns its id.
func (s *stack) createSecret(token string, in map[string]any) string {
	s.t.Helper()
	var out struct {
		CreateSecret struct{ SecretID string } `json:"createSecret"`
	}
	s.mustOK(token, createSecretMutation, map[string]any{"in": in}, &out)
	require.NotEmpty(s.t, out.CreateSecret.SecretID)
	return out.CreateSecret.SecretID
}

const createUserSecretMutation = `mutation($in: CreateUserSecretInput!) { createUserSecret(input: $in) {
  userSecretId name schemaId provider tags domainId userId version createdBy updatedBy createdAt updatedAt } }`

func (s *stack) createUserSecret(token string, in map[string]any) string {
	s.t.Helper()
	var out struct {
		CreateUserSecret struct{ UserSecretID string } `json:"createUserSecret"`
	}
	s.mustOK(token, createUserSecretMutation, map[string]any{"in": in}, &out)
	require.NotEmpty(s.t, out.CreateUserSecret.UserSecretID)
	return out.CreateUserSecret.UserSecretID
}

func TestStackSmoke(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "domain-a", UserID: "alice"})
	id := s.createSecret(admin, map[string]any{"name": "aws-dev", "resourceGroup": "DOMAIN", "schemaId": "aws_access_key",
		"data": map[string]any{"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s3cr3t"}})
	var got struct {
		Secret struct {
			Name     string
			Provider string
			Version  int
		}
	}
	s.mustOK(admin, `query($id: ID!) { secret(secretId: $id) { name provider version } }`, map[string]any{"id": id}, &got)
	require.Equal(t, "aws-dev", got.Secret.Name)
	require.Equal(t, "aws", got.Secret.Provider)
	require.Equal(t, 1, got.Secret.Version)
}
