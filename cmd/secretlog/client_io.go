package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/secretlog/secretlog/client"
)

// clientOptions are the flags of the client commands (secret, user-secret, trusted-secret, audit).
type clientOptions struct {
	server    string
	tokenFile string
	output    string
	timeout   time.Duration
}

func (o *clientOptions) bind(cmd *cobra.Command) {
	hideServerFlags(cmd)
	f := cmd.PersistentFlags()
	f.StringVar(&o.server, "server", env("SECRETLOG_ADDR", client.DefaultServer), "server address [SECRETLOG_ADDR]")
	f.StringVar(&o.tokenFile, "token-file", env("SECRETLOG_TOKEN_FILE", ""), "file holding the bearer token (default: the SECRETLOG_TOKEN variable) [SECRETLOG_TOKEN_FILE]")
	f.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&o.timeout, "timeout", 60*time.Second, "time limit of each request")
}

// hideServerFlags leaves the server's own flags (--database-url, --master-key,
// ...), which a client command ignores, out of the client commands' help.
func hideServerFlags(cmd *cobra.Command) {
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		var hidden []*pflag.Flag
		c.Root().PersistentFlags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden {
				f.Hidden = true
				hidden = append(hidden, f)
			}
		})
		defer func() {
			for _, f := range hidden {
				f.Hidden = false
			}
		}()
		c.Root().HelpFunc()(c, args)
	})
}

// token reads the bearer token: --token-file, else SECRETLOG_TOKEN. It is
// never a flag's value, so it stays out of shell history and process lists.
func (o *clientOptions) token(stderr io.Writer) (string, error) {
	var tok string
	if o.tokenFile != "" {
		fi, err := os.Stat(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(stderr, "warning: token file %s is readable by other users (chmod 600 it)\n", o.tokenFile)
		}
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	} else {
		tok = strings.TrimSpace(os.Getenv("SECRETLOG_TOKEN"))
	}
	if tok == "" {
		return "", &client.Error{Code: client.CodeUnauthenticated, Message: "no token: set SECRETLOG_TOKEN or pass --token-file (mint one with secretlog token)"}
	}
	if strings.ContainsFunc(tok, unicode.IsSpace) {
		return "", &client.Error{Code: client.CodeUnauthenticated, Message: "the token contains whitespace: one token, on one line"}
	}
	return tok, nil
}

// client checks the output format and returns a client with the token.
func (o *clientOptions) client(cmd *cobra.Command) (*client.Client, error) {
	if o.output != "table" && o.output != "json" {
		return nil, usagef("--output must be table or json, not %q", o.output)
	}
	if o.timeout <= 0 {
		return nil, usagef("--timeout must be positive")
	}
	if _, err := client.Endpoint(o.server); err != nil {
		return nil, &usageError{err: err}
	}
	tok, err := o.token(cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	c, err := client.New(o.server, tok, client.WithHTTPClient(&http.Client{Timeout: o.timeout}),
		client.WithUserAgent("secretlog-cli"))
	if err != nil {
		return nil, &usageError{err: err}
	}
	if c.Insecure() {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: sending the token in clear text to %s; use https\n", c.Endpoint())
	}
	return c, nil
}

func (o *clientOptions) json() bool { return o.output == "json" }

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// tableStyle: no borders, upper-case headers, columns apart by two spaces.
var tableStyle = func() table.Style {
	s := table.StyleDefault
	s.Options = table.OptionsNoBordersAndSeparators
	s.Box.PaddingLeft = ""
	s.Box.PaddingRight = "  "
	return s
}()

// newTable starts a table for w; render prints it.
func newTable(header ...any) table.Writer {
	t := table.NewWriter()
	t.SetStyle(tableStyle)
	if len(header) > 0 {
		t.AppendHeader(table.Row(header))
	}
	return t
}

// render prints t to w without the padding left at the end of each line.
func render(w io.Writer, t table.Writer) {
	lines := strings.Split(t.Render(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// about names the resource an error is about, keeping its code.
func about(kind, id string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", kind, id, err)
}

// clean makes server text safe for a terminal: control characters (escape
// sequences, carriage returns) become U+FFFD. keepNewlines keeps line breaks
// and tabs, for multi-line values such as PEM keys.
func clean(s string, keepNewlines bool) string {
	return strings.Map(func(r rune) rune {
		if keepNewlines && (r == '\n' || r == '\t') {
			return r
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			return '\uFFFD'
		}
		return r
	}, s)
}

// cell renders a value for a table cell, at most max runes (0: no limit).
func cell(v any, max int) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		s = x
	case *string:
		if x == nil {
			return ""
		}
		s = *x
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case client.ResourceGroup:
		s = string(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		s = string(b)
	}
	s = clean(s, false)
	if max > 0 && utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

// tagsCell renders tags as k=v pairs in key order.
func tagsCell(tags map[string]any) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v, ok := tags[k].(string)
		if !ok {
			v = cell(tags[k], 0)
		}
		parts[i] = k + "=" + v
	}
	return cell(strings.Join(parts, ","), 0)
}

// maxDataBytes bounds what is read as a value; the server has its own, lower limits.
const maxDataBytes = 4 << 20

// dataInput is how a value is given to create and put-data.
type dataInput struct {
	file  string
	stdin string
	json  string
}

func (d *dataInput) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&d.file, "data-file", "", "read the value, a JSON object, from FILE (- for standard input)")
	f.StringVar(&d.stdin, "data", "", "- : read the value, a JSON object, from standard input")
	f.StringVar(&d.json, "data-json", "", "the value as a JSON literal (discouraged: it stays in shell history and process lists)")
}

// read returns the value as a JSON object. Errors never quote the input.
func (d *dataInput) read(cmd *cobra.Command) (map[string]any, error) {
	n := 0
	for _, s := range []string{d.file, d.stdin, d.json} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return nil, usagef("give the value with exactly one of --data-file FILE, --data - (standard input) or --data-json")
	}
	var r io.Reader
	what := ""
	switch {
	case d.stdin != "":
		if d.stdin != "-" {
			return nil, usagef("--data takes only - (standard input): a value on the command line would stay in shell history; use --data-file FILE")
		}
		r, what = cmd.InOrStdin(), "standard input"
	case d.file == "-":
		r, what = cmd.InOrStdin(), "standard input"
	case d.file != "":
		f, err := os.Open(d.file)
		if err != nil {
			return nil, fmt.Errorf("data file: %w", err)
		}
		defer f.Close()
		r, what = f, d.file
	default:
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: --data-json puts the value in shell history and process lists; prefer --data-file or --data -")
		r, what = strings.NewReader(d.json), "--data-json"
	}
	b, err := io.ReadAll(io.LimitReader(r, maxDataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the value from %s: %w", what, err)
	}
	if len(b) > maxDataBytes {
		return nil, &client.Error{Code: client.CodeResourceExhausted, Message: fmt.Sprintf("the value in %s is larger than %d bytes", what, maxDataBytes)}
	}
	return decodeObject(b, what)
}

// decodeObject parses a JSON object without ever quoting its content: a
// syntax error names only the byte offset.
func decodeObject(b []byte, what string) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, usagef("the value in %s is not valid JSON (syntax error at byte %d)", what, syn.Offset)
		}
		return nil, usagef("the value in %s is not valid JSON", what)
	}
	if dec.More() {
		return nil, usagef("the value in %s has more than one JSON value", what)
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, usagef("the value in %s must be a non-empty JSON object", what)
	}
	return m, nil
}

// parseTags turns repeated key=value flags into a tag map (nil when none).
func parseTags(pairs []string) (map[string]any, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	tags := make(map[string]any, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("--tag wants key=value, got %q", p)
		}
		tags[k] = v
	}
	return tags, nil
}

// parseFilters turns key=value (eq) and key!=value (not) into filters.
func parseFilters(exprs []string) ([]client.Filter, error) {
	var out []client.Filter
	for _, e := range exprs {
		k, v, ok := strings.Cut(e, "=")
		if !ok || strings.TrimSpace(strings.TrimSuffix(k, "!")) == "" {
			return nil, usagef("--filter wants key=value or key!=value, got %q", e)
		}
		f := client.Filter{K: k, V: v}
		if strings.HasSuffix(k, "!") {
			f = client.Filter{K: strings.TrimSuffix(k, "!"), V: v, O: "not"}
		}
		out = append(out, f)
	}
	return out, nil
}

// parseTime reads RFC 3339, a date (YYYY-MM-DD, UTC) or an age such as 90m,
// 24h or 7d (that long ago).
func parseTime(flag, s string, now time.Time) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return &t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return &t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			t := now.Add(-time.Duration(n) * 24 * time.Hour)
			return &t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		t := now.Add(-d)
		return &t, nil
	}
	return nil, usagef("--%s: want RFC 3339 (2026-11-20T12:00:00Z), a date (2026-11-20) or an age (90m, 24h, 7d), got %q", flag, s)
}

// remarshal converts a decoded JSON object into v, rejecting unknown fields.
func remarshal(m map[string]any, v any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// deleteFlags are delete's: the recovery window, or --force.
type deleteFlags struct {
	days  int
	force bool
}

func (f *deleteFlags) bind(cmd *cobra.Command) {
	cmd.Flags().IntVar(&f.days, "recovery-window-days", 0, "days until the final deletion (7 to 30; default: the server's)")
	cmd.Flags().BoolVar(&f.force, "force", false, "delete now and destroy every version's key (no recovery)")
}

func (f *deleteFlags) options(cmd *cobra.Command) client.DeleteOptions {
	o := client.DeleteOptions{Force: f.force}
	if cmd.Flags().Changed("recovery-window-days") {
		o.RecoveryWindowDays = &f.days
	}
	return o
}
