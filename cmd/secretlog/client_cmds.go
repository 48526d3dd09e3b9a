package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/client"
)

// The client commands: secret, user-secret, trusted-secret and audit talk to a server over
// GraphQL with the client package. Values are printed only by get --data.

const clientEnvHelp = `
The server is --server or SECRETLOG_ADDR (default ` + client.DefaultServer + `); the token comes
from --token-file or SECRETLOG_TOKEN, never from a flag's value. Exit statuses follow the
API's error codes (see the README's CLI section): 2 usage, 3 unauthenticated or denied,
4 not found, 5 conflict, 6 too large, 7 server unreachable.`

// listFlags are the query-language flags shared by both list commands.
type listFlags struct {
	name, schema, provider, keyword, queryJSON string
	tags, filters, sorts                       []string
	limit, start                               int
}

func (l *listFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&l.name, "name", "", "only this exact name")
	f.StringVar(&l.schema, "schema", "", "only this schema id")
	f.StringVar(&l.provider, "provider", "", "only this provider")
	f.StringArrayVar(&l.tags, "tag", nil, "only with tag key=value (repeatable)")
	f.StringArrayVar(&l.filters, "filter", nil, "condition key=value or key!=value on any field or tags.<key> (repeatable)")
	f.StringVar(&l.keyword, "keyword", "", "substring search")
	f.StringArrayVar(&l.sorts, "sort", nil, "sort key, -key for descending (repeatable; default -createdAt)")
	f.IntVar(&l.limit, "limit", 100, "at most this many results (0: all)")
	f.IntVar(&l.start, "start", 1, "1-based position of the first result")
	f.StringVar(&l.queryJSON, "query-json", "", "a full QueryInput as JSON; the other flags add to it")
}

func (l *listFlags) query() (*client.QueryInput, error) {
	q := &client.QueryInput{}
	if l.queryJSON != "" {
		m, err := decodeObject([]byte(l.queryJSON), "--query-json")
		if err != nil {
			return nil, err
		}
		if err := remarshal(m, q); err != nil {
			return nil, usagef("--query-json: %v", err)
		}
	}
	filters, err := parseFilters(l.filters)
	if err != nil {
		return nil, err
	}
	q.Filter = append(q.Filter, filters...)
	tags, err := parseTags(l.tags)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q.Filter = append(q.Filter, client.Filter{K: "tags." + k, V: tags[k]})
	}
	if l.keyword != "" {
		q.Keyword = l.keyword
	}
	for _, s := range l.sorts {
		key, desc := strings.CutPrefix(s, "-")
		if key == "" {
			return nil, usagef("--sort wants a key or -key")
		}
		q.Sort = append(q.Sort, client.Sort{Key: key, Desc: desc})
	}
	if len(q.Sort) == 0 {
		q.Sort = []client.Sort{{Key: "createdAt", Desc: true}}
	}
	if l.limit < 0 || l.start < 1 {
		return nil, usagef("--limit must be at least 0 and --start at least 1")
	}
	if q.Page == nil {
		q.Page = &client.Page{Start: l.start, Limit: l.limit}
	}
	return q, nil
}

// moreNote tells a person on standard error that a list was cut.
func moreNote(w io.Writer, shown, total int, what string) {
	if shown < total {
		fmt.Fprintf(w, "showing %d of %d %s (--limit, --start)\n", shown, total, what)
	}
}

// historyFlags page through an audit trail.
type historyFlags struct {
	first int
	after string
	all   bool
}

func (h *historyFlags) bind(cmd *cobra.Command, def int) {
	f := cmd.Flags()
	f.IntVar(&h.first, "first", def, "events per page")
	f.StringVar(&h.after, "after", "", "continue after this cursor (printed when there is more)")
	f.BoolVar(&h.all, "all", false, "follow every page to the end")
}

// collect fetches one page, or every page with --all.
func (h *historyFlags) collect(fetch func(client.PageArgs) (*client.AuditEventPage, error)) (*client.AuditEventPage, error) {
	results, next, err := collectPages(h, func(p client.PageArgs) ([]client.AuditEvent, *string, error) {
		page, err := fetch(p)
		if err != nil {
			return nil, nil, err
		}
		return page.Results, page.NextCursor, nil
	})
	if err != nil {
		return nil, err
	}
	return &client.AuditEventPage{Results: results, NextCursor: next}, nil
}

// collectPages is every cursor-paged listing's loop (history, audit,
// versions): one page from --after, or with --all every page to the end.
// The results are never nil (an empty page is [] in JSON).
func collectPages[T any](h *historyFlags, fetch func(client.PageArgs) ([]T, *string, error)) ([]T, *string, error) {
	if h.first < 1 {
		return nil, nil, usagef("--first must be at least 1")
	}
	args := client.PageArgs{First: h.first, After: h.after}
	out := []T{}
	for {
		results, next, err := fetch(args)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, results...)
		if !h.all || next == nil || len(results) == 0 {
			return out, next, nil
		}
		args.After = *next
	}
}

// printVersions renders a page of versions for people or scripts.
func printVersions(cmd *cobra.Command, o *clientOptions, page *client.SecretVersionPage) error {
	if o.json() {
		return writeJSON(cmd.OutOrStdout(), page)
	}
	t := newTable("version", "stages", "created", "by", "readable")
	for _, v := range page.Results {
		stages := make([]string, len(v.Stages))
		for i, s := range v.Stages {
			stages[i] = cell(s, 0)
		}
		created := cell(v.CreatedAt, 0)
		if v.RolledBackFrom != nil {
			created += fmt.Sprintf(" (rollback of %d)", *v.RolledBackFrom)
		}
		readable := "yes"
		if !v.Readable {
			readable = "no (destroyed)"
		}
		t.AppendRow([]any{v.Version, strings.Join(stages, ","), created, cell(v.CreatedBy, 0), readable})
	}
	render(cmd.OutOrStdout(), t)
	if page.NextCursor != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "more: --after %s (or --all)\n", *page.NextCursor)
	}
	return nil
}

// printEvents renders an audit page for people or scripts.
func printEvents(cmd *cobra.Command, o *clientOptions, page *client.AuditEventPage, withResource bool) error {
	if o.json() {
		return writeJSON(cmd.OutOrStdout(), page)
	}
	header := []any{"position", "time", "type"}
	if withResource {
		header = append(header, "resource")
	}
	header = append(header, "data version", "actor", "changes")
	t := newTable(header...)
	for _, e := range page.Results {
		row := []any{e.Position, cell(e.OccurredAt, 0), cell(strings.TrimSuffix(e.Type, ".v1"), 0)}
		if withResource {
			row = append(row, cell(e.ResourceID, 0))
		}
		row = append(row, e.DataVersion, actorCell(e.Actor), changesCell(e.Changes))
		t.AppendRow(row)
	}
	// Long change lists wrap within their column.
	t.SetColumnConfigs([]table.ColumnConfig{{Number: len(header), WidthMax: 80, WidthMaxEnforcer: text.WrapSoft}})
	render(cmd.OutOrStdout(), t)
	if page.NextCursor != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "more: --after %s (or --all)\n", *page.NextCursor)
	}
	return nil
}

func actorCell(a client.Actor) string {
	who := a.Subject
	if a.UserID != nil && *a.UserID != "" {
		who = a.UserID
	}
	if who == nil || *who == "" {
		return cell(a.Role, 0)
	}
	return cell(*who+" ("+a.Role+")", 0)
}

func changesCell(cs []client.FieldChange) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		if c.Field == "dataVersion" {
			continue // its own column
		}
		if c.Old == nil && c.New == nil {
			parts = append(parts, cell(c.Field, 0)+" changed")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %s → %s", cell(c.Field, 0), orDash(cell(c.Old, 40)), orDash(cell(c.New, 40))))
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dataTable prints a value's keys and values (only on request).
func dataTable(w io.Writer, data map[string]any) {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := newTable("data key", "value")
	for _, k := range keys {
		v, ok := data[k].(string)
		if ok {
			v = clean(v, true)
		} else {
			v = cell(data[k], 0)
		}
		t.AppendRow([]any{cell(k, 0), v})
	}
	render(w, t)
}

// printField prints one key of a value as is, for scripts (get --data --field).
func printField(w io.Writer, data map[string]any, field string) error {
	v, ok := data[field]
	if !ok {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return &client.Error{Code: client.CodeNotFound, Message: fmt.Sprintf("the value has no key %q (keys: %s)", field, strings.Join(keys, ", "))}
	}
	if s, ok := v.(string); ok {
		_, err := fmt.Fprintln(w, s)
		return err
	}
	return writeJSON(w, v)
}

// confirmDelete asks on a terminal, and insists on --yes elsewhere.
func confirmDelete(cmd *cobra.Command, yes bool, what, id string) error {
	if yes {
		return nil
	}
	in := cmd.InOrStdin()
	f, ok := in.(*os.File)
	if !ok || !isTerminal(f) {
		return usagef("deleting %s %s destroys its data key and cannot be undone: pass --yes", what, id)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Delete %s %s and destroy its data key? This cannot be undone.\nType the id to confirm: ", what, id)
	line, _ := bufio.NewReader(in).ReadString('\n')
	if strings.TrimSpace(line) != id {
		return usagef("not confirmed; nothing deleted")
	}
	return nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// parseAsOf reads --as-of.
func parseAsOf(s string) (*time.Time, error) {
	return parseTime("as-of", s, time.Now())
}
