// Package graphiql serves the GraphiQL IDE from assets embedded in the binary (no CDN).
//
// The bundle in assets/ is built from src/ (see src/build.sh); it talks to the
// GraphQL endpoint at "/graphql" on the same origin. Handler is meant to be
// mounted at "/" of the server and serves:
//
//	/                      index.html
//	/graphiql/graphiql.js  the GraphiQL JavaScript bundle
//	/graphiql/graphiql.css the GraphiQL stylesheet
//
// Every other path is answered with 404.
package graphiql

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

//go:embed assets
var assetsFS embed.FS

// ContentSecurityPolicy is the Content-Security-Policy header sent with every
// response of Handler. Scripts, styles and XHR/fetch are restricted to the
// page's own origin; no inline script or eval is allowed. The stylesheet
// embeds its web fonts as data: URLs, so fonts additionally allow data:.
// GraphiQL sets element styles only through the CSSOM (element.style), which
// style-src does not restrict, so 'unsafe-inline' is not needed.
const ContentSecurityPolicy = "default-src 'self'; " +
	"script-src 'self'; " +
	"style-src 'self'; " +
	"font-src 'self' data:; " +
	"img-src 'self'; " +
	"connect-src 'self'; " +
	"object-src 'none'; " +
	"base-uri 'none'; " +
	"form-action 'none'; " +
	"frame-ancestors 'none'"

// asset is one embedded file together with its precomputed representations.
type asset struct {
	contentType string
	body        []byte
	etag        string

	gzipOnce sync.Once
	gzipBody []byte // nil if gzip does not make the body smaller
}

// routes maps request paths to files in assetsFS.
var routes = map[string]struct{ file, contentType string }{
	"/":                      {"assets/index.html", "text/html; charset=utf-8"},
	"/graphiql/graphiql.js":  {"assets/graphiql.js", "text/javascript; charset=utf-8"},
	"/graphiql/graphiql.css": {"assets/graphiql.css", "text/css; charset=utf-8"},
}

var loadAssets = sync.OnceValue(func() map[string]*asset {
	m := make(map[string]*asset, len(routes))
	for p, r := range routes {
		body, err := assetsFS.ReadFile(r.file)
		if err != nil {
			// The files are embedded at compile time; a missing one is a
			// build defect, not a runtime condition.
			panic("graphiql: embedded asset missing: " + err.Error())
		}
		sum := sha256.Sum256(body)
		m[p] = &asset{
			contentType: r.contentType,
			body:        body,
			etag:        hex.EncodeToString(sum[:16]),
		}
	}
	return m
})

// gzipped returns the gzip-compressed body, compressing it on first use.
func (a *asset) gzipped() []byte {
	a.gzipOnce.Do(func() {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			return
		}
		if _, err := zw.Write(a.body); err != nil {
			return
		}
		if err := zw.Close(); err != nil {
			return
		}
		if buf.Len() < len(a.body) {
			a.gzipBody = buf.Bytes()
		}
	})
	return a.gzipBody
}

// Handler returns an http.Handler that serves the GraphiQL page and its
// assets. It is intended to be mounted at "/" of the server.
func Handler() http.Handler { return HandlerWithDevHeaders(nil) }

// DevScript is the path of the script that pre-fills GraphiQL's headers.
const DevScript = "/graphiql/dev.js"

// HandlerWithDevHeaders is Handler whose GraphiQL starts with the headers
// devHeaders returns (a JSON object, such as the development token's
// Authorization), for development mode only; "" or a nil func: none.
func HandlerWithDevHeaders(devHeaders func() string) http.Handler {
	assets := loadAssets()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == DevScript {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if devHeaders != nil {
				if h := devHeaders(); h != "" {
					quoted, _ := json.Marshal(h)
					_, _ = fmt.Fprintf(w, "window.secretlogDevHeaders = %s;\n", quoted)
					return
				}
			}
			_, _ = w.Write([]byte("// not in development mode: no headers\n"))
			return
		}
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}

		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		// Revalidate on every load; the ETag makes that a cheap 304.
		h.Set("Cache-Control", "no-cache")
		h.Add("Vary", "Accept-Encoding")

		body, etag := a.body, a.etag
		if acceptsGzip(r) {
			if gz := a.gzipped(); gz != nil {
				body, etag = gz, a.etag+"-gz"
				h.Set("Content-Encoding", "gzip")
			}
		}
		h.Set("ETag", `"`+etag+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
				continue
			}
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
