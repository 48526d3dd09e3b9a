package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/archive"
	"github.com/secretlog/secretlog/client"
)

// What export and import share: the archive passphrase, the token's claims,
// progress bars and the kinds of resources an archive holds.

// archiveParams are the argon2id parameters of new archives (tests lower
// them; every archive records its own).
var archiveParams = archive.DefaultParams

// passphraseEnv holds the archive passphrase when --passphrase-file is not given.
const passphraseEnv = "SECRETLOG_EXPORT_PASSPHRASE"

// minPassphrase is the length under which export warns.
const minPassphrase = 12

// progressThreshold: more resources than this get a progress bar.
const progressThreshold = 5

const archiveEnvHelp = `

The archive passphrase comes from --passphrase-file or ` + passphraseEnv + `, never from a
flag's value; an empty one is refused. The archive is encrypted with AES-256-GCM under a key
derived from the passphrase with argon2id (README "Export and import" documents the format).
`

// archiveFlags are the flags export and import share.
type archiveFlags struct {
	passphraseFile string
	kind           string
	progress       bool
}

func (a *archiveFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&a.passphraseFile, "passphrase-file", "", "file holding the archive passphrase (default: the "+passphraseEnv+" variable)")
	f.StringVar(&a.kind, "kind", "all", "which resources: all, secrets or user-secrets")
	f.BoolVar(&a.progress, "progress", false, "show a progress bar on standard error even when it is not a terminal")
}

func (a *archiveFlags) kinds() (secrets, userSecrets bool, err error) {
	switch a.kind {
	case "all":
		return true, true, nil
	case "secrets":
		return true, false, nil
	case "user-secrets":
		return false, true, nil
	}
	return false, false, usagef("--kind must be all, secrets or user-secrets, not %q", a.kind)
}

// passphrase reads the archive passphrase: --passphrase-file (one trailing
// line break removed), else the variable. An empty one is a usage error.
func (a *archiveFlags) passphrase(stderr io.Writer) ([]byte, error) {
	var p []byte
	if a.passphraseFile != "" {
		fi, err := os.Stat(a.passphraseFile)
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(stderr, "warning: passphrase file %s is readable by other users (chmod 600 it)\n", a.passphraseFile)
		}
		b, err := os.ReadFile(a.passphraseFile)
		if err != nil {
			return nil, fmt.Errorf("passphrase file: %w", err)
		}
		if s, ok := strings.CutSuffix(string(b), "\n"); ok {
			b = []byte(strings.TrimSuffix(s, "\r"))
		}
		p = b
	} else {
		p = []byte(os.Getenv(passphraseEnv))
	}
	if len(p) == 0 {
		return nil, usagef("no archive passphrase: set %s or pass --passphrase-file (an empty passphrase is refused)", passphraseEnv)
	}
	return p, nil
}

// tokenClaims are the claims of a secretlog token, read without checking
// its signature: only to explain, before any request, what the server
// would refuse, and to know whose user secrets an import may create. The
// server decides.
type tokenClaims struct {
	UserID   string `json:"user_id"`
	Role     string `json:"role"`
	DomainID string `json:"domain_id"`
}

// peekClaims decodes a JWT's payload; ok is false for anything else.
func peekClaims(tok string) (c tokenClaims, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(b, &c) != nil || c.Role == "" {
		return tokenClaims{}, false
	}
	return c, true
}

// archiveClient is clientOptions.client with extra options (headers), and
// the token's claims.
func (o *clientOptions) archiveClient(cmd *cobra.Command, extra ...client.Option) (*client.Client, tokenClaims, bool, error) {
	c, err := o.client(cmd)
	if err != nil {
		return nil, tokenClaims{}, false, err
	}
	tok, err := o.token(io.Discard)
	if err != nil {
		return nil, tokenClaims{}, false, err
	}
	claims, ok := peekClaims(tok)
	if len(extra) > 0 {
		opts := append([]client.Option{client.WithHTTPClient(&http.Client{Timeout: o.timeout}), client.WithUserAgent("secretlog-cli")}, extra...)
		if c, err = client.New(o.server, tok, opts...); err != nil {
			return nil, tokenClaims{}, false, &usageError{err: err}
		}
	}
	return c, claims, ok, nil
}

// newProgress is a bar of total steps on standard error, or nil: only for
// more than a handful of resources, and only on a terminal unless forced.
func newProgress(cmd *cobra.Command, force bool, total int, what string) *progressbar.ProgressBar {
	w := cmd.ErrOrStderr()
	if total <= progressThreshold {
		return nil
	}
	if f, ok := w.(*os.File); !force && (!ok || !isTerminal(f)) {
		return nil
	}
	return progressbar.NewOptions(total, progressbar.OptionSetDescription(what), progressbar.OptionSetWriter(w),
		progressbar.OptionShowCount(), progressbar.OptionSetItsString("secrets"), progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionFullWidth())
}

func finishProgress(cmd *cobra.Command, bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(cmd.ErrOrStderr())
	}
}

// requestToken is the clientRequestToken of one replayed value: the same
// archive, source resource and version always give the same token, so a
// second import answers the first one's results and appends nothing.
func requestToken(archiveID, sourceID string, version int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("secretlog-import\x00%s\x00%s\x00%d", archiveID, sourceID, version)))
	return "import-" + hex.EncodeToString(sum[:20])
}
