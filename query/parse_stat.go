package query

// StatisticsQuery (the README's query language section): filter, filter_or and keyword select the
// caller's visible rows; then either `distinct` or an `aggregate` pipeline
// of stages runs on them. Parsing decodes every stage into its typed form
// with its keys resolved against the stage before it.

import (
	"fmt"
	"strings"
	"time"
)

var statKeys = []string{"filter", "filter_or", "filterOr", "keyword", "aggregate", "distinct", "page"}

var stageNames = []string{"group", "count", "sort", "limit", "skip", "project", "unwind", "match"}

// ParseStat checks a statistics query on res within lim; timediff_* count
// from now.
func ParseStat(res *Resource, stat map[string]any, lim Limits, now time.Time) (*Stat, error) {
	if res.Visibility == nil {
		return nil, errNoScope
	}
	if err := onlyKeys(stat, "statistics query", statKeys...); err != nil {
		return nil, err
	}
	p := newParser(lim, now)
	s := &Stat{res: res, maxRows: p.lim.MaxStatRows}
	sc := &scope{res: res}
	if err := p.statWhere(sc, stat, &s.Where); err != nil {
		return nil, err
	}
	var err error
	if s.Page, err = parsePage(stat["page"]); err != nil {
		return nil, err
	}
	agg, hasAgg := pick(stat, "aggregate")
	distinct, hasDistinct := pick(stat, "distinct")
	if hasAgg == hasDistinct {
		return nil, qerr("a statistics query needs either aggregate (a list of stages) or distinct (a key), not both")
	}
	if s.Page.Limit > p.lim.MaxStatRows {
		return nil, overLimit("page.limit must be at most %d (SECRETLOG_MAX_STAT_ROWS)", p.lim.MaxStatRows)
	}
	if err := checkPage(s.Page); err != nil {
		return nil, err
	}
	if hasDistinct {
		key, ok := distinct.(string)
		if !ok || strings.TrimSpace(key) == "" {
			return nil, qerr("distinct must be a key, such as \"provider\"")
		}
		ref, err := sc.resolve(key)
		if err != nil {
			return nil, within("distinct", err)
		}
		s.Distinct = &ref
		return s, nil
	}
	s.Stages, err = p.stages(sc, agg)
	return s, err
}

// statWhere reads filter, filter_or and keyword.
func (p *parser) statWhere(sc *scope, stat map[string]any, w *Where) error {
	var filter, filterOr []Filter
	var err error
	if v, ok := pick(stat, "filter"); ok {
		if filter, err = parseConditions("filter", v); err != nil {
			return err
		}
	}
	if v, ok := pick(stat, "filter_or", "filterOr"); ok {
		if filterOr, err = parseConditions("filter_or", v); err != nil {
			return err
		}
	}
	keyword := ""
	if v, ok := pick(stat, "keyword"); ok && v != nil {
		if keyword, ok = v.(string); !ok {
			return qerr("keyword must be a string")
		}
	}
	if *w, err = p.where(sc, filter, filterOr); err != nil {
		return err
	}
	return p.keyword(sc.res, w, keyword)
}

// stages decodes the aggregate pipeline.
func (p *parser) stages(sc *scope, agg any) ([]Stage, error) {
	list, ok := agg.([]any)
	if !ok || len(list) == 0 {
		return nil, qerr("aggregate must be a non-empty list of stages")
	}
	if len(list) > p.lim.MaxStatStages {
		return nil, overLimit("aggregate has %d stages, more than the limit of %d (SECRETLOG_MAX_STAT_STAGES)", len(list), p.lim.MaxStatStages)
	}
	out := make([]Stage, 0, len(list))
	for i, raw := range list {
		m, ok := raw.(map[string]any)
		if !ok || len(m) != 1 {
			return nil, qerr("aggregate[%d] must be an object with exactly one stage (%s)", i, strings.Join(stageNames, ", "))
		}
		for name, opts := range m {
			st, next, err := p.stage(sc, name, opts)
			if err != nil {
				if err == errUnknownStage {
					return nil, qerr("aggregate[%d]: unknown stage %q (stages: %s)", i, name, strings.Join(stageNames, ", "))
				}
				return nil, within(fmt.Sprintf("aggregate[%d].%s", i, name), err)
			}
			out, sc = append(out, st), next
		}
	}
	return out, nil
}

var errUnknownStage = &Error{Msg: "unknown stage"}

// stage decodes one stage and returns the scope after it.
func (p *parser) stage(sc *scope, name string, opts any) (Stage, *scope, error) {
	switch name {
	case "group":
		return p.group(sc, opts)
	case "count":
		return p.count(opts)
	case "sort":
		st, err := p.sortStage(sc, opts)
		return st, sc, err
	case "limit", "skip":
		n, ok := integer(opts)
		if !ok || n < 0 {
			return nil, nil, qerr("must be a non-negative integer")
		}
		return WindowStage{Skip: name == "skip", N: n}, sc, nil
	case "project":
		return p.project(sc, opts)
	case "unwind":
		return p.unwind(sc, opts)
	case "match":
		st, err := p.matchStage(sc, opts)
		return st, sc, err
	}
	return nil, nil, errUnknownStage
}

// group: {keys: [{key, name, date_format}], fields: [{key, name, operator,
// conditions}]}.
func (p *parser) group(sc *scope, opts any) (Stage, *scope, error) {
	m, ok := opts.(map[string]any)
	if !ok {
		return nil, nil, qerr("must be an object {keys, fields}")
	}
	if err := onlyKeys(m, "group", "keys", "fields"); err != nil {
		return nil, nil, err
	}
	keys, err := optList(m, "keys")
	if err != nil {
		return nil, nil, err
	}
	fields, err := optList(m, "fields")
	if err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 && len(fields) == 0 {
		return nil, nil, qerr("needs keys or fields")
	}
	if len(keys)+len(fields) > maxStageItems {
		return nil, nil, overLimit("more than %d keys and fields in one group", maxStageItems)
	}
	var g GroupStage
	out := &scope{}
	for i, raw := range keys {
		k, err := groupKey(sc, raw)
		if err != nil {
			return nil, nil, within(fmt.Sprintf("keys[%d]", i), err)
		}
		if out.has(k.Name) {
			return nil, nil, qerr("keys[%d]: name %q is used twice", i, k.Name)
		}
		g.Keys = append(g.Keys, k)
		out.add(k.Name, k.kind())
		out.keys = append(out.keys, k.Name)
	}
	for i, raw := range fields {
		f, err := p.groupField(sc, raw)
		if err != nil {
			return nil, nil, within(fmt.Sprintf("fields[%d]", i), err)
		}
		if out.has(f.Name) {
			return nil, nil, qerr("fields[%d]: name %q is used twice", i, f.Name)
		}
		g.Fields = append(g.Fields, f)
		out.add(f.Name, f.kind())
	}
	return g, out, nil
}

func (k GroupKey) kind() Kind {
	switch {
	case k.DatePart != "":
		return KindInt
	case k.ToChar != "":
		return KindText
	}
	return k.Ref.Kind
}

// groupKey decodes a key: a string, or {key, name, date_format}.
func groupKey(sc *scope, raw any) (GroupKey, error) {
	var key, name, format string
	switch k := raw.(type) {
	case string:
		key = k
	case map[string]any:
		if err := onlyKeys(k, "key", "key", "k", "name", "n", "date_format", "dateFormat"); err != nil {
			return GroupKey{}, err
		}
		var err error
		if key, err = str(k, "key", "key", "k"); err != nil {
			return GroupKey{}, err
		}
		if name, err = str(k, "name", "name", "n"); err != nil {
			return GroupKey{}, err
		}
		if format, err = str(k, "date_format", "date_format", "dateFormat"); err != nil {
			return GroupKey{}, err
		}
	default:
		return GroupKey{}, qerr("a key must be an object {key, name, date_format}")
	}
	if strings.TrimSpace(key) == "" {
		return GroupKey{}, qerr("key is required")
	}
	if name == "" {
		name = key
	}
	ref, err := sc.resolve(key)
	if err != nil {
		return GroupKey{}, err
	}
	gk := GroupKey{Name: name, Ref: ref}
	if format == "" {
		return gk, nil
	}
	if ref.Kind != KindTime {
		return GroupKey{}, qerr("date_format needs a time key (such as createdAt), not %q", key)
	}
	switch format {
	case "year", "month", "day":
		gk.DatePart = format
		return gk, nil
	}
	gk.ToChar, err = toCharFormat(format)
	return gk, err
}

// groupKey date formats: MongoDB's $dateToString directives, and year,
// month, day (numbers, as Cloudforet's $year, $month, $dayOfMonth).
var dateDirectives = map[byte]string{
	'Y': "YYYY", 'm': "MM", 'd': "DD", 'H': "HH24", 'M': "MI", 'S': "SS", 'L': "MS",
	'j': "DDD", 'G': "IYYY", 'V': "IW", 'u': "ID", 'w': "D",
}

// toCharFormat translates a $dateToString format into a to_char format,
// quoting every literal so it is never read as a pattern.
func toCharFormat(f string) (string, error) {
	var out, lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out.WriteString(`"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(lit.String()) + `"`)
			lit.Reset()
		}
	}
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			lit.WriteByte(f[i])
			continue
		}
		i++
		if i == len(f) {
			return "", qerr("date_format %q ends with %%", f)
		}
		if f[i] == '%' {
			lit.WriteByte('%')
			continue
		}
		pat, ok := dateDirectives[f[i]]
		if !ok {
			return "", qerr("date_format %q: unsupported directive %%%c (supported: %%Y %%m %%d %%H %%M %%S %%L %%j %%G %%V %%u %%w %%%%, or year, month, day)", f, f[i])
		}
		flush()
		out.WriteString(pat)
	}
	flush()
	return out.String(), nil
}

// count: {name}: one row with the number of rows.
func (p *parser) count(opts any) (Stage, *scope, error) {
	name := "count"
	if opts != nil {
		m, ok := opts.(map[string]any)
		if !ok {
			return nil, nil, qerr("must be an object {name}")
		}
		if err := onlyKeys(m, "count", "name", "n"); err != nil {
			return nil, nil, err
		}
		n, err := str(m, "name", "name", "n")
		if err != nil {
			return nil, nil, err
		}
		if n != "" {
			name = n
		}
	}
	out := &scope{}
	out.add(name, KindInt)
	return CountStage{Name: name}, out, nil
}

// sortStage: [{key, desc}] (or {key, desc}, or {keys: [...]}).
func (p *parser) sortStage(sc *scope, opts any) (Stage, error) {
	var list []any
	switch s := opts.(type) {
	case []any:
		list = s
	case map[string]any:
		keys, ok := s["keys"]
		if !ok {
			list = []any{s}
			break
		}
		if err := onlyKeys(s, "sort", "keys"); err != nil {
			return nil, err
		}
		if list, ok = keys.([]any); !ok {
			return nil, qerr("keys must be a list of {key, desc}")
		}
	default:
		return nil, qerr("must be a list of {key, desc}")
	}
	if len(list) == 0 {
		return nil, qerr("needs at least one key")
	}
	if len(list) > maxStageItems {
		return nil, overLimit("more than %d sort keys", maxStageItems)
	}
	keys := make([]SortKey, 0, len(list))
	for i, item := range list {
		k, err := sortKey(i, item)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	sorts, err := p.sorts(sc, keys)
	return SortStage{Keys: sorts}, err
}

func sortKey(i int, item any) (SortKey, error) {
	m, ok := item.(map[string]any)
	if !ok {
		return SortKey{}, qerr("[%d] must be an object {key, desc}", i)
	}
	if err := onlyKeys(m, "sort key", "key", "k", "desc"); err != nil {
		return SortKey{}, err
	}
	k, err := str(m, "key", "key", "k")
	if err != nil {
		return SortKey{}, err
	}
	desc := false
	if d, ok := m["desc"]; ok && d != nil {
		if desc, ok = d.(bool); !ok {
			return SortKey{}, qerr("[%d].desc must be true or false", i)
		}
	}
	return SortKey{Key: k, Desc: desc}, nil
}

// unwind: {path}: one row per element of an array.
func (p *parser) unwind(sc *scope, opts any) (Stage, *scope, error) {
	var path string
	switch o := opts.(type) {
	case string:
		path = o
	case map[string]any:
		if err := onlyKeys(o, "unwind", "path"); err != nil {
			return nil, nil, err
		}
		var err error
		if path, err = str(o, "path", "path"); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, qerr("must be an object {path}")
	}
	path = strings.TrimPrefix(path, "$")
	if path == "" {
		return nil, nil, qerr("path is required")
	}
	p.unwinds++
	if max := p.lim.MaxStatUnwinds; p.unwinds > max {
		return nil, nil, overLimit("more than %d unwind stages in one query (SECRETLOG_MAX_STAT_UNWINDS): each multiplies the rows", max)
	}
	ref, err := sc.resolve(path)
	if err != nil {
		return nil, nil, err
	}
	if ref.Kind != KindJSON || ref.Column == "tags" {
		what := ref.Kind.String()
		if ref.Kind == KindJSON {
			what = "JSON object"
		}
		return nil, nil, qerr("path %q is a %s, not an array: unwind takes an array such as one made by push or add_to_set", path, what)
	}
	out := sc.clone()
	out.add(path, KindJSON)
	return UnwindStage{Path: path, Ref: ref}, out, nil
}

func (sc *scope) clone() *scope {
	out := &scope{res: sc.res, names: append([]string(nil), sc.names...), keys: append([]string(nil), sc.keys...)}
	for n, k := range sc.kinds {
		out.add(n, k)
	}
	out.names = append([]string(nil), sc.names...)
	return out
}

// matchStage: {filter, filter_or}: keeps the rows that match.
func (p *parser) matchStage(sc *scope, opts any) (Stage, error) {
	m, ok := opts.(map[string]any)
	if !ok {
		return nil, qerr("must be an object {filter, filter_or}")
	}
	if err := onlyKeys(m, "match", "filter", "filter_or", "filterOr"); err != nil {
		return nil, err
	}
	var filter, filterOr []Filter
	var err error
	if v, ok := pick(m, "filter"); ok {
		if filter, err = parseConditions("filter", v); err != nil {
			return nil, err
		}
	}
	if v, ok := pick(m, "filter_or", "filterOr"); ok {
		if filterOr, err = parseConditions("filter_or", v); err != nil {
			return nil, err
		}
	}
	w, err := p.where(sc, filter, filterOr)
	if err != nil {
		return nil, err
	}
	if len(w.And) == 0 && len(w.Or) == 0 {
		return nil, qerr("needs filter or filter_or")
	}
	return MatchStage{Where: w}, nil
}
