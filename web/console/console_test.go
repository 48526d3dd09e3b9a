package console_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/web/console"
)

func get(t *testing.T, h http.Handler, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

var assetRef = regexp.MustCompile(`(?:src|href)="(/console/assets/[^"]+)"`)

func TestHandlerServesPageAndAssets(t *testing.T) {
	h := console.Handler()
	resp := get(t, h, "/console/", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, console.ContentSecurityPolicy, resp.Header.Get("Content-Security-Policy"))
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self';")
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	etag := resp.Header.Get("ETag")
	require.NotEmpty(t, etag)
	body, _ := io.ReadAll(resp.Body)
	page := string(body)

	// No inline script, nothing from another origin.
	require.NotRegexp(t, `<script(?:\s[^>]*)?>[^<\s]`, page, "inline script")
	require.NotContains(t, page, "//cdn")
	require.NotRegexp(t, `(?:src|href)="(?:https?:)?//`, page)
	refs := assetRef.FindAllStringSubmatch(page, -1)
	require.Len(t, refs, 2, "one script and one stylesheet: %s", page)

	for _, ref := range refs {
		r := get(t, h, ref[1], nil)
		require.Equal(t, http.StatusOK, r.StatusCode, ref[1])
		require.Equal(t, "public, max-age=31536000, immutable", r.Header.Get("Cache-Control"))
		require.Equal(t, console.ContentSecurityPolicy, r.Header.Get("Content-Security-Policy"))
		b, _ := io.ReadAll(r.Body)
		require.NotEmpty(t, b)
		require.NotContains(t, string(b), "https://", "%s loads nothing from elsewhere", ref[1])
		if strings.HasSuffix(ref[1], ".js") {
			require.Equal(t, "text/javascript; charset=utf-8", r.Header.Get("Content-Type"))
			require.NotContains(t, string(b), "localStorage", "the token is kept in sessionStorage only")
			require.Contains(t, string(b), "sessionStorage")
		}
	}

	// index.html under its own name, conditional requests, gzip.
	require.Equal(t, http.StatusOK, get(t, h, "/console/index.html", nil).StatusCode)
	require.Equal(t, http.StatusNotModified, get(t, h, "/console/", map[string]string{"If-None-Match": etag}).StatusCode)
	gz := get(t, h, "/console/", map[string]string{"Accept-Encoding": "gzip"})
	require.Equal(t, "gzip", gz.Header.Get("Content-Encoding"))
	zr, err := gzip.NewReader(gz.Body)
	require.NoError(t, err)
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, page, string(plain))
}

func TestHandlerRefuses(t *testing.T) {
	h := console.Handler()
	for _, p := range []string{"/console/nope", "/console/assets/", "/console/assets/nope.js", "/console/../go.mod", "/console/src/main.ts"} {
		resp := get(t, h, p, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
		require.Equal(t, console.ContentSecurityPolicy, resp.Header.Get("Content-Security-Policy"))
	}
	req := httptest.NewRequest(http.MethodPost, "/console/", strings.NewReader("x"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}
