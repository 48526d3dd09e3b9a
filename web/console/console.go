// Package console serves the audit console: a small page that signs in with a
// bearer token and shows a domain's audit trail through the GraphQL API
// (timeline with filters, a resource's history with its field changes, who
// read which value when). Its assets are embedded from dist/, the build
// output of the TypeScript sources beside this file (see build.sh and
// README.md); no CDN, no inline script.
//
// Handler is mounted at Prefix ("/console/") and serves:
//
//	/console/                 index.html (revalidated on every load)
//	/console/assets/<hashed>  the script and the stylesheet (immutable)
//
// Every other path under the prefix is answered with 404.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// Prefix is where Handler expects to be mounted.
const Prefix = "/console/"

//go:embed dist
var distFS embed.FS

// ContentSecurityPolicy is sent with every response of Handler: scripts,
// styles and fetches from the page's own origin only, no inline script or
// eval, no frames, no form posts, no plugins.
const ContentSecurityPolicy = "default-src 'none'; " +
	"script-src 'self'; " +
	"style-src 'self'; " +
	"img-src 'self'; " +
	"connect-src 'self'; " +
	"base-uri 'none'; " +
	"form-action 'none'; " +
	"frame-ancestors 'none'"

type asset struct {
	contentType string
	body        []byte
	etag        string
	immutable   bool

	gzipOnce sync.Once
	gzipBody []byte // nil if gzip does not make the body smaller
}

// loadAssets maps request paths to the embedded files.
var loadAssets = sync.OnceValue(func() map[string]*asset {
	m := map[string]*asset{}
	err := fs.WalkDir(distFS, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := distFS.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, "dist/")
		ct := mime.TypeByExtension(path.Ext(rel))
		switch path.Ext(rel) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		a := &asset{contentType: ct, body: body, etag: hex.EncodeToString(sum[:16]),
			// Vite names the assets by their content hash.
			immutable: strings.HasPrefix(rel, "assets/")}
		m[Prefix+rel] = a
		if rel == "index.html" {
			m[Prefix] = a
		}
		return nil
	})
	if err != nil || m[Prefix] == nil {
		// Embedded at compile time: a missing file is a build defect.
		panic("console: embedded assets missing: run web/console/build.sh")
	}
	return m
})

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

// Handler serves the console; mount it at Prefix.
func Handler() http.Handler {
	assets := loadAssets()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		a, ok := assets[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", a.contentType)
		if a.immutable {
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			// The page names the current assets: revalidate it on every load
			// (a cheap 304 through the ETag).
			h.Set("Cache-Control", "no-cache")
		}
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
