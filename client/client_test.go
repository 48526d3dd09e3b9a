package client

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// TestOperationsMatchSchema validates every operation against schema.graphql,
// so a renamed field or argument fails here and not at a user's prompt.
func TestOperationsMatchSchema(t *testing.T) {
	src, err := os.ReadFile("../schema.graphql")
	require.NoError(t, err)
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: string(src)})
	require.Nil(t, gerr)
	ops := []string{opSecret, opSecrets, opSecretData, opSecretStat, opCreateSecret, opUpdateSecret, opUpdateSecretData,
		opDeleteSecret, opSecretHistory, opUserSecret, opUserSecrets, opUserSecretData, opUserSecretStat, opCreateUserSecret,
		opUpdateUserSecret, opUpdateUserSecretData, opDeleteUserSecret, opUserSecretHistory, opAuditEvents, opVerifyLog, opFeedPosition}
	for _, op := range ops {
		_, errs := gqlparser.LoadQuery(schema, op)
		require.Empty(t, errs, "operation %s", op)
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"":                                DefaultServer + "/graphql",
		"http://127.0.0.1:8080":           "http://127.0.0.1:8080/graphql",
		"http://127.0.0.1:8080/":          "http://127.0.0.1:8080/graphql",
		"https://s.example/graphql":       "https://s.example/graphql",
		"https://s.example/api/?x=1#frag": "https://s.example/api/graphql",
	} {
		got, err := Endpoint(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"127.0.0.1:8080", "ftp://x", "http://", "http://u:p@host"} {
		_, err := Endpoint(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), "u:p", "credentials are not echoed")
	}
}

func TestInsecure(t *testing.T) {
	for base, want := range map[string]bool{
		"http://127.0.0.1:8080": false, "http://localhost:1": false, "http://[::1]:1": false,
		"http://10.0.0.1:8080": true, "http://secrets.example": true, "https://secrets.example": false,
	} {
		c, err := New(base, "tok")
		require.NoError(t, err)
		require.Equal(t, want, c.Insecure(), base)
	}
	c, err := New("http://secrets.example", "")
	require.NoError(t, err)
	require.False(t, c.Insecure(), "no token, nothing to leak")
}

// fake answers every request with status and body, recording the last request.
func fake(t *testing.T, status int, body string) (*httptest.Server, *http.Request, *[]byte) {
	t.Helper()
	var last http.Request
	var lastBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last = *r.Clone(context.Background())
		lastBody, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &last, &lastBody
}

func TestDoSendsBearerAndVariables(t *testing.T) {
	srv, last, body := fake(t, 200, `{"data":{"secret":{"secretId":"secret-000000000001","name":"n","tags":{},"version":3,
		"resourceGroup":"DOMAIN","domainId":"d","createdBy":"a","updatedBy":"a","createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"}}}`)
	c, err := New(srv.URL, "tok-123")
	require.NoError(t, err)
	s, err := c.Secret(context.Background(), "secret-000000000001", nil)
	require.NoError(t, err)
	require.Equal(t, 3, s.Version)
	require.Equal(t, ResourceGroupDomain, s.ResourceGroup)
	require.Equal(t, "/graphql", last.URL.Path)
	require.Equal(t, http.MethodPost, last.Method)
	require.Equal(t, "Bearer tok-123", last.Header.Get("Authorization"))
	var req request
	require.NoError(t, json.Unmarshal(*body, &req))
	require.Equal(t, map[string]any{"id": "secret-000000000001"}, req.Variables)
	require.Contains(t, req.Query, "secret(secretId: $id, asOf: $asOf)")
}

func TestErrorsCarryCode(t *testing.T) {
	srv, _, _ := fake(t, 200, `{"errors":[{"message":"secret \"x\" not found","path":["secret"],"extensions":{"code":"NOT_FOUND"}},
		{"message":"other","extensions":{"code":"INTERNAL"}}],"data":null}`)
	c, err := New(srv.URL, "t")
	require.NoError(t, err)
	_, err = c.Secret(context.Background(), "x", nil)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, CodeNotFound, e.Code)
	require.Equal(t, CodeNotFound, CodeOf(err))
	require.Equal(t, "secret", e.Path)
	require.Equal(t, 1, e.More)
	require.Equal(t, `NOT_FOUND: secret "x" not found (and 1 more errors)`, err.Error())

	// gqlgen answers parse and validation errors with 422.
	srv, _, _ = fake(t, 422, `{"errors":[{"message":"Cannot query field \"nope\""}],"data":null}`)
	c, _ = New(srv.URL, "t")
	require.Equal(t, CodeInvalidArgument, CodeOf(c.Do(context.Background(), "{ nope }", nil, nil)))

	// Partial data next to an error is still an error.
	srv, _, _ = fake(t, 200, `{"data":{"a":1},"errors":[{"message":"denied","extensions":{"code":"PERMISSION_DENIED"}}]}`)
	c, _ = New(srv.URL, "t")
	require.Equal(t, CodePermissionDenied, CodeOf(c.Do(context.Background(), "{ a }", nil, nil)))
}

func TestNotGraphQL(t *testing.T) {
	for status, code := range map[int]Code{502: CodeUnavailable, 404: CodeUnavailable, 401: CodeUnauthenticated,
		403: CodePermissionDenied, 413: CodeResourceExhausted} {
		srv, _, _ := fake(t, status, `<html>proxy error</html>`)
		c, _ := New(srv.URL, "t")
		err := c.Do(context.Background(), "{ a }", nil, nil)
		require.Equal(t, code, CodeOf(err), "status %d", status)
		require.Contains(t, err.Error(), "not GraphQL")
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c, err := New("http://"+addr, "secret-token-value")
	require.NoError(t, err)
	err = c.Do(context.Background(), "{ a }", map[string]any{"v": "canary-value"}, nil)
	require.Equal(t, CodeUnavailable, CodeOf(err))
	require.Contains(t, err.Error(), "cannot reach http://"+addr+"/graphql")
	require.NotContains(t, err.Error(), "secret-token-value")
	require.NotContains(t, err.Error(), "canary-value")

	// A server that accepts but never answers: the deadline.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer hang.Close()
	defer close(release)
	c, _ = New(hang.URL, "t", WithHTTPClient(&http.Client{Timeout: 200 * time.Millisecond}))
	err = c.Do(context.Background(), "{ a }", nil, nil)
	require.Equal(t, CodeUnavailable, CodeOf(err))
	require.Contains(t, err.Error(), "in time")
}

func TestUpdateInputTags(t *testing.T) {
	name := "n2"
	b, err := json.Marshal(UpdateSecretInput{SecretID: "s", Name: &name})
	require.NoError(t, err)
	require.JSONEq(t, `{"secretId":"s","name":"n2"}`, string(b))
	b, err = json.Marshal(UpdateSecretInput{SecretID: "s", Tags: map[string]any{}})
	require.NoError(t, err)
	require.JSONEq(t, `{"secretId":"s","tags":{}}`, string(b), "empty tags clear")
	b, err = json.Marshal(UpdateUserSecretInput{UserSecretID: "u", Tags: map[string]any{"a": "b"}})
	require.NoError(t, err)
	require.JSONEq(t, `{"userSecretId":"u","tags":{"a":"b"}}`, string(b))
	require.False(t, strings.Contains(string(b), "name"))
}
