package graphiql_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/graph/graphiql"
)

// get performs a GET without transparent gzip handling so that headers and
// bodies are exactly what the handler sent.
func get(t *testing.T, srv *httptest.Server, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func TestIndexReferencesAssets(t *testing.T) {
	srv := httptest.NewServer(graphiql.Handler())
	defer srv.Close()

	resp, body := get(t, srv, "/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, graphiql.ContentSecurityPolicy, resp.Header.Get("Content-Security-Policy"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))

	html := string(body)
	require.Contains(t, html, `<script src="/graphiql/graphiql.js"></script>`)
	require.Contains(t, html, `<link rel="stylesheet" href="/graphiql/graphiql.css">`)
	require.Contains(t, html, `id="graphiql"`)
	// Nothing may be loaded from another origin.
	require.NotContains(t, html, "http://")
	require.NotContains(t, html, "https://")
	require.NotContains(t, html, `src="//`)
	require.NotContains(t, html, `href="//`)
}

func TestAssetsServed(t *testing.T) {
	srv := httptest.NewServer(graphiql.Handler())
	defer srv.Close()

	for _, tc := range []struct {
		path        string
		contentType string
		minSize     int
		marker      string
	}{
		{"/graphiql/graphiql.js", "text/javascript; charset=utf-8", 200_000, "createRoot"},
		{"/graphiql/graphiql.css", "text/css; charset=utf-8", 20_000, ".graphiql-container"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, srv, tc.path, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tc.contentType, resp.Header.Get("Content-Type"))
			require.Empty(t, resp.Header.Get("Content-Encoding"))
			require.Equal(t, graphiql.ContentSecurityPolicy, resp.Header.Get("Content-Security-Policy"))
			require.Greater(t, len(body), tc.minSize)
			require.Less(t, len(body), 5<<20, "bundle should stay below a few MB")
			require.Contains(t, string(body), tc.marker)

			// Conditional request with the ETag yields 304.
			etag := resp.Header.Get("ETag")
			require.NotEmpty(t, etag)
			resp, _ = get(t, srv, tc.path, map[string]string{"If-None-Match": etag})
			require.Equal(t, http.StatusNotModified, resp.StatusCode)

			// gzip variant decodes to the same bytes.
			resp, gz := get(t, srv, tc.path, map[string]string{"Accept-Encoding": "gzip"})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
			require.Equal(t, tc.contentType, resp.Header.Get("Content-Type"))
			require.NotEqual(t, etag, resp.Header.Get("ETag"))
			require.Less(t, len(gz), len(body))
			zr, err := gzip.NewReader(strings.NewReader(string(gz)))
			require.NoError(t, err)
			plain, err := io.ReadAll(zr)
			require.NoError(t, err)
			require.Equal(t, body, plain)
		})
	}
}

func TestCSPDoesNotAllowUnsafeScripts(t *testing.T) {
	csp := graphiql.ContentSecurityPolicy
	require.Contains(t, csp, "script-src 'self'")
	require.NotContains(t, csp, "unsafe-eval")
	require.NotContains(t, csp, "http:")
	require.NotContains(t, csp, "https:")
	require.NotContains(t, csp, "*")
}

func TestUnknownPathIsNotFound(t *testing.T) {
	srv := httptest.NewServer(graphiql.Handler())
	defer srv.Close()

	for _, p := range []string{
		"/nope",
		"/index.html",
		"/graphiql/",
		"/graphiql/other.js",
		"/assets/graphiql.js",
		"/graphql",
	} {
		resp, _ := get(t, srv, p, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	srv := httptest.NewServer(graphiql.Handler())
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
}

// TestDevHeaders: in development mode the page loads a script that pre-fills
// the headers; otherwise that script sets nothing.
func TestDevHeaders(t *testing.T) {
	var token atomic.Value
	token.Store("")
	srv := httptest.NewServer(graphiql.HandlerWithDevHeaders(func() string {
		if token.Load().(string) == "" {
			return ""
		}
		return `{"Authorization": "Bearer ` + token.Load().(string) + `"}`
	}))
	defer srv.Close()
	get := func() string {
		resp, err := http.Get(srv.URL + graphiql.DevScript)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b)
	}
	require.NotContains(t, get(), "secretlogDevHeaders")
	token.Store("tok-123")
	require.Contains(t, get(), `window.secretlogDevHeaders = "{\"Authorization\": \"Bearer tok-123\"}";`)
	resp, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `<script src="/graphiql/dev.js"></script>`)
}
