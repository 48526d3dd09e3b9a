package query

// Parsing checks a query once: operators and values against the keys'
// kinds, aliases (k/key, v/value, o/operator, filter_or/filterOr, ...)
// resolved, keys resolved against the resource's fields or the outputs of
// earlier stages, and every limit but the database's. Compiling (compile.go)
// then only writes SQL.

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// errNoScope guards against a Resource without a tenancy scope.
var errNoScope = errors.New("query: resource has no Visibility")

// parser carries what a query has used so far, for its limits.
type parser struct {
	lim Limits
	now time.Time
	// conds counts filter conditions and keyword words, for MaxConditions.
	conds int
	// accumulators and unwinds count push/add_to_set/merge_objects fields
	// and unwind stages.
	accumulators, unwinds int
}

func newParser(lim Limits, now time.Time) *parser {
	return &parser{lim: lim.WithDefaults(), now: now}
}

// ParseList checks a list query on res within lim; timediff_* count from
// now unless in.Now is set.
func ParseList(res *Resource, in Input, lim Limits, now time.Time) (*Query, error) {
	if res.Visibility == nil {
		return nil, errNoScope
	}
	if !in.Now.IsZero() {
		now = in.Now
	}
	p := newParser(lim, now)
	q := &Query{res: res, CountOnly: in.CountOnly}
	var err error
	if q.Page, err = p.listPage(in.Page); err != nil {
		return nil, err
	}
	sc := &scope{res: res}
	if q.Where, err = p.where(sc, in.Filter, in.FilterOr); err != nil {
		return nil, err
	}
	if err := p.keyword(res, &q.Where, in.Keyword); err != nil {
		return nil, err
	}
	if q.Sort, err = p.sorts(sc, in.Sort); err != nil {
		return nil, err
	}
	if q.Fields, err = res.answered(in.Only, in.Minimal); err != nil {
		return nil, err
	}
	return q, nil
}

// listPage checks a list's page: limit 0 is the default page, and a page
// is at most MaxPageSize.
func (p *parser) listPage(pg Page) (Page, error) {
	switch {
	case pg.Limit == 0:
		pg.Limit = p.lim.DefaultPageSize
	case pg.Limit > p.lim.MaxPageSize:
		return Page{}, overLimit("page.limit must be at most %d (SECRETLOG_MAX_PAGE_SIZE); page through larger results with page.start", p.lim.MaxPageSize)
	}
	return pg, checkPage(pg)
}

func checkPage(pg Page) error {
	if pg.Start < 0 || pg.Limit < 0 {
		return qerr("page.start and page.limit must not be negative")
	}
	if pg.Start > maxPageStart {
		return overLimit("page.start must be at most %d: narrow the filter instead", maxPageStart)
	}
	return nil
}

// answered is the fields (GraphQL names) a list with only and minimal
// answers: their union (mongoengine's only() is a union), with the id
// always; nil when neither narrows. A tag (tags.env) answers the tags.
func (r *Resource) answered(only []string, minimal bool) ([]string, error) {
	if len(only) == 0 && !minimal {
		return nil, nil
	}
	out := []string{r.idField()}
	add := func(name string) {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	for _, k := range only {
		ref, err := r.field(k)
		if err != nil {
			return nil, within("only", err)
		}
		if ref.Tag != "" {
			add("tags")
			continue
		}
		add(ref.Field)
	}
	if minimal {
		for _, name := range r.Minimal {
			add(name)
		}
	}
	return out, nil
}

// where checks filter (ANDed) and filterOr (ORed).
func (p *parser) where(sc *scope, filter, filterOr []Filter) (Where, error) {
	var w Where
	for _, f := range filter {
		c, err := p.condition(sc, f)
		if err != nil {
			return Where{}, err
		}
		w.And = append(w.And, c)
	}
	for _, f := range filterOr {
		c, err := p.condition(sc, f)
		if err != nil {
			return Where{}, err
		}
		w.Or = append(w.Or, c)
	}
	return w, nil
}

// keyword adds python-core's append_keyword_filter to w: the keyword,
// stripped and split on spaces, becomes one contain_in per keyword field
// with every word, and these join filter_or. A row matches when any word
// is in any keyword field (or it matches another filter_or condition).
func (p *parser) keyword(res *Resource, w *Where, keyword string) error {
	var words []Value
	for _, word := range strings.Split(strings.TrimSpace(keyword), " ") {
		if word == "" {
			continue
		}
		if err := p.countCondition(); err != nil {
			return err
		}
		words = append(words, Value{Raw: word, Param: word})
	}
	if len(words) == 0 {
		return nil
	}
	for _, col := range res.Keyword {
		f, ok := res.byColumn(col)
		if !ok {
			return errors.New("query: keyword column " + col + " is not a field")
		}
		ref := Ref{Key: f.Name, Kind: f.Kind, Column: f.Column, Field: f.Name}
		w.Or = append(w.Or, Condition{Ref: ref, Op: "contain_in", Values: words})
	}
	return nil
}

// sorts checks sort keys.
func (p *parser) sorts(sc *scope, keys []SortKey) ([]Sort, error) {
	if len(keys) > maxStageItems {
		return nil, overLimit("more than %d sort keys", maxStageItems)
	}
	var out []Sort
	for _, s := range keys {
		if strings.TrimSpace(s.Key) == "" {
			return nil, qerr("sort key is required")
		}
		ref, err := sc.resolve(s.Key)
		if err != nil {
			return nil, err
		}
		out = append(out, Sort{Ref: ref, Desc: s.Desc})
	}
	return out, nil
}

// countCondition counts one more condition against MaxConditions.
func (p *parser) countCondition() error {
	p.conds++
	if max := p.lim.MaxConditions; p.conds > max {
		return overLimit("query too large: more than %d filter conditions and keywords (limit SECRETLOG_MAX_QUERY_CONDITIONS)", max)
	}
	return nil
}

// scope is what keys resolve against at one point of a query: the
// resource's fields while rows are still its rows, and the named outputs
// of earlier stages.
type scope struct {
	res   *Resource
	kinds map[string]Kind
	// names lists the outputs in order; keys are the group keys among them.
	names []string
	keys  []string
}

func (sc *scope) add(name string, k Kind) {
	if sc.kinds == nil {
		sc.kinds = map[string]Kind{}
	}
	if _, ok := sc.kinds[name]; !ok {
		sc.names = append(sc.names, name)
	}
	sc.kinds[name] = k
}

func (sc *scope) has(name string) bool {
	_, ok := sc.kinds[name]
	return ok
}

// resolve resolves a key: a stage output by name, a key into a JSON output
// (name.key), or a field of the resource.
func (sc *scope) resolve(key string) (Ref, error) {
	if k, ok := sc.kinds[key]; ok {
		return Ref{Key: key, Kind: k, Output: key}, nil
	}
	if name, sub, ok := strings.Cut(key, "."); ok && sub != "" {
		if k, ok := sc.kinds[name]; ok && k == KindJSON {
			return Ref{Key: key, Kind: KindJSON, Output: name, Path: sub}, nil
		}
	}
	if sc.res != nil {
		return sc.res.field(key)
	}
	if len(sc.names) == 0 {
		return Ref{}, qerr("unknown key %q", key)
	}
	return Ref{}, qerr("unknown key %q (this stage's fields: %s)", key, strings.Join(sc.names, ", "))
}
