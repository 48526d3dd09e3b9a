package projections

// StatisticsQuery (DESIGN §5): filter, filter_or and keyword select the
// caller's visible rows; then either `distinct` or an `aggregate` pipeline
// of stages runs on them, each stage a CTE over the previous one. Stages:
// group, count, sort, limit, skip, project, unwind, match. Everything runs
// in PostgreSQL; Go only decodes the final rows.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/auth"
)

// Stat answers a StatisticsQuery on res within the caller's scope:
// {"results": [...]} plus "total_count" when page.limit > 0.
func (r *Reader) Stat(ctx context.Context, id auth.Identity, res Resource, stat map[string]any) (map[string]any, error) {
	sq, err := buildStatWithin(&res, id, stat, r.now(), r.limits)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	err = readOnly(ctx, r.pool, r.limits.StatementTimeout, func(tx pgx.Tx) error {
		if sq.count != "" {
			var n int64
			if err := tx.QueryRow(ctx, sq.count, sq.args...).Scan(&n); err != nil {
				return err
			}
			out["total_count"] = n
		}
		rows, err := tx.Query(ctx, sq.rows, sq.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		results := []any{}
		vals := make([][]byte, len(sq.names))
		dest := make([]any, len(vals))
		for i := range vals {
			dest[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			if sq.distinct {
				v, err := decodeJSON(vals[0])
				if err != nil {
					return err
				}
				results = append(results, v)
				continue
			}
			row := make(map[string]any, len(sq.names))
			for i, name := range sq.names {
				v, err := decodeJSON(vals[i])
				if err != nil {
					return err
				}
				row[name] = v
			}
			results = append(results, row)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(results) > sq.maxRows {
			return overLimit("the statistics query has more than %d result rows (SECRETLOG_MAX_STAT_ROWS): add a limit stage or a page", sq.maxRows)
		}
		out["results"] = results
		return nil
	})
	if err != nil {
		return nil, queryFailure(ctx, err, sq.regexKeys, r.limits.StatementTimeout)
	}
	return out, nil
}

// decodeJSON decodes a value: integers as int64, other numbers as float64.
func decodeJSON(raw []byte) (any, error) {
	if raw == nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f)
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// statSQL is a statistics query's SQL: rows, the optional total count, and
// the names of the result columns.
type statSQL struct {
	rows      string
	count     string
	args      []any
	names     []string
	distinct  bool
	regexKeys []string
	// maxRows is the most result rows the query may return; the SQL asks
	// for one more, to tell "exactly the limit" from "over it".
	maxRows int
}

// pipeline accumulates the CTEs of an aggregate pipeline.
type pipeline struct {
	b    *sqlBuilder
	ctes []string
}

func (p *pipeline) cte(body string) string {
	name := "s" + strconv.Itoa(len(p.ctes))
	p.ctes = append(p.ctes, name+" AS ("+body+")")
	return name
}

// next is a copy of rel reading from the CTE name.
func (rel *relation) next(from string) *relation {
	n := *rel
	n.from = from
	n.cols = maps.Clone(rel.cols)
	n.names = slices.Clone(rel.names)
	n.keys = slices.Clone(rel.keys)
	return &n
}

// output is one result column.
type output struct {
	name string
	col  column
}

func (rel *relation) outputs() []output {
	var out []output
	if rel.res != nil {
		for _, f := range rel.res.Fields {
			out = append(out, output{f.Name, column{expr: f.Column, kind: f.Kind}})
		}
	}
	for _, name := range rel.names {
		out = append(out, output{name, rel.cols[name]})
	}
	return out
}

// toJSON renders a value as jsonb; times as RFC 3339 UTC strings.
func toJSON(c column) string {
	if c.kind == KindTime {
		return `to_jsonb(to_char((` + c.expr + `) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))`
	}
	return "to_jsonb(" + c.expr + ")"
}

var statKeys = []string{"filter", "filter_or", "filterOr", "keyword", "aggregate", "distinct", "page"}

func buildStat(res *Resource, id auth.Identity, stat map[string]any, now time.Time) (statSQL, error) {
	return buildStatWithin(res, id, stat, now, DefaultLimits())
}

// maxStageItems bounds the keys and fields of one group, project or sort stage.
const maxStageItems = 50

// buildStatWithin is buildStat within lim: stages, push/add_to_set fields,
// unwinds, conditions, list values, regex length and result rows are bounded.
func buildStatWithin(res *Resource, id auth.Identity, stat map[string]any, now time.Time, lim Limits) (statSQL, error) {
	lim = lim.WithDefaults()
	if res.Visibility == nil {
		return statSQL{}, errNoScope
	}
	if err := onlyKeys(stat, "statistics query", statKeys...); err != nil {
		return statSQL{}, err
	}
	var q Query
	var err error
	if v, ok := pick(stat, "filter"); ok {
		if q.Filter, err = parseConditions("filter", v); err != nil {
			return statSQL{}, err
		}
	}
	if v, ok := pick(stat, "filter_or", "filterOr"); ok {
		if q.FilterOr, err = parseConditions("filter_or", v); err != nil {
			return statSQL{}, err
		}
	}
	if v, ok := pick(stat, "keyword"); ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return statSQL{}, qerr("keyword must be a string")
		}
		q.Keyword = s
	}
	page, err := parsePage(stat["page"])
	if err != nil {
		return statSQL{}, err
	}
	agg, hasAgg := pick(stat, "aggregate")
	distinct, hasDistinct := pick(stat, "distinct")
	if hasAgg == hasDistinct {
		return statSQL{}, qerr("a statistics query needs either aggregate (a list of stages) or distinct (a key), not both")
	}

	if page.Limit > lim.MaxStatRows {
		return statSQL{}, overLimit("page.limit must be at most %d (SECRETLOG_MAX_STAT_ROWS)", lim.MaxStatRows)
	}
	b := &sqlBuilder{now: now, lim: &lim}
	p := &pipeline{b: b}
	rel := sourceRelation(res, res.Table)
	where, err := b.where(rel, res.Visibility(b, id), q)
	if err != nil {
		return statSQL{}, err
	}
	rel = rel.next(p.cte("SELECT * FROM " + res.Table + " WHERE " + where))

	out := statSQL{}
	var outs []output
	if hasDistinct {
		key, ok := distinct.(string)
		if !ok || strings.TrimSpace(key) == "" {
			return statSQL{}, qerr("distinct must be a key, such as \"provider\"")
		}
		col, err := rel.lookup(b, key)
		if err != nil {
			return statSQL{}, within("distinct", err)
		}
		a := b.alias()
		notNull := col.expr + " IS NOT NULL"
		if col.kind == KindJSON {
			notNull += " AND " + col.expr + " <> 'null'::jsonb"
		}
		from := p.cte("SELECT DISTINCT " + col.expr + " AS " + a + " FROM " + rel.from + " WHERE " + notNull)
		rel = &relation{from: from, cols: map[string]column{}}
		rel.add(key, column{expr: a, kind: col.kind})
		rel.order = []orderTerm{{expr: a}}
		outs = rel.outputs()
		out.distinct = true
	} else {
		stages, ok := agg.([]any)
		if !ok || len(stages) == 0 {
			return statSQL{}, qerr("aggregate must be a non-empty list of stages")
		}
		if len(stages) > lim.MaxStatStages {
			return statSQL{}, overLimit("aggregate has %d stages, more than the limit of %d (SECRETLOG_MAX_STAT_STAGES)", len(stages), lim.MaxStatStages)
		}
		for i, s := range stages {
			if rel, err = p.stage(rel, i, s); err != nil {
				return statSQL{}, err
			}
		}
		outs = rel.outputs()
	}
	if err := b.check(); err != nil {
		return statSQL{}, err
	}
	with := "WITH " + strings.Join(p.ctes, ", ") + " "
	sel := make([]string, len(outs))
	for i, o := range outs {
		sel[i] = toJSON(o.col)
		out.names = append(out.names, o.name)
	}
	window, err := limitOffset(page)
	if err != nil {
		return statSQL{}, err
	}
	if page.Limit == 0 {
		// Every row, up to the limit: one more tells that there are more.
		window += " LIMIT " + strconv.Itoa(lim.MaxStatRows+1)
	}
	out.maxRows = lim.MaxStatRows
	out.rows = with + "SELECT " + strings.Join(sel, ", ") + " FROM " + rel.from + orderClause(rel.order) + window
	if page.Limit > 0 {
		out.count = with + "SELECT count(*) FROM " + rel.from
	}
	out.args = b.args
	out.regexKeys = b.regexKeys
	return out, nil
}

var stageNames = []string{"group", "count", "sort", "limit", "skip", "project", "unwind", "match"}

// stage adds aggregate[i] to the pipeline and returns the relation it produces.
func (p *pipeline) stage(rel *relation, i int, raw any) (*relation, error) {
	m, ok := raw.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, qerr("aggregate[%d] must be an object with exactly one stage (%s)", i, strings.Join(stageNames, ", "))
	}
	for name, opts := range m {
		where := fmt.Sprintf("aggregate[%d].%s", i, name)
		var out *relation
		var err error
		switch name {
		case "group":
			out, err = p.group(rel, opts)
		case "count":
			out, err = p.count(rel, opts)
		case "sort":
			out, err = p.sort(rel, opts)
		case "limit", "skip":
			out, err = p.window(rel, name, opts)
		case "project":
			out, err = p.project(rel, opts)
		case "unwind":
			out, err = p.unwind(rel, opts)
		case "match":
			out, err = p.match(rel, opts)
		default:
			return nil, qerr("aggregate[%d]: unknown stage %q (stages: %s)", i, name, strings.Join(stageNames, ", "))
		}
		if err != nil {
			return nil, within(where, err)
		}
		return out, nil
	}
	panic("unreachable")
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

func (p *pipeline) groupKey(rel *relation, raw any) (string, column, error) {
	b := p.b
	var key, name, format string
	switch k := raw.(type) {
	case string:
		key = k
	case map[string]any:
		if err := onlyKeys(k, "key", "key", "k", "name", "n", "date_format", "dateFormat"); err != nil {
			return "", column{}, err
		}
		var err error
		if key, err = str(k, "key", "key", "k"); err != nil {
			return "", column{}, err
		}
		if name, err = str(k, "name", "name", "n"); err != nil {
			return "", column{}, err
		}
		if format, err = str(k, "date_format", "date_format", "dateFormat"); err != nil {
			return "", column{}, err
		}
	default:
		return "", column{}, qerr("a key must be an object {key, name, date_format}")
	}
	if strings.TrimSpace(key) == "" {
		return "", column{}, qerr("key is required")
	}
	if name == "" {
		name = key
	}
	col, err := rel.lookup(b, key)
	if err != nil {
		return "", column{}, err
	}
	if format == "" {
		if col.kind == KindJSON {
			// A missing value and a JSON null are one group, as in MongoDB.
			col.expr = "NULLIF(" + col.expr + ", 'null'::jsonb)"
		}
		return name, col, nil
	}
	if col.kind != KindTime {
		return "", column{}, qerr("date_format needs a time key (such as createdAt), not %q", key)
	}
	utc := "((" + col.expr + ") AT TIME ZONE 'UTC')"
	switch format {
	case "year", "month", "day":
		return name, column{expr: "(extract(" + format + " FROM " + utc + ")::int)", kind: KindInt}, nil
	}
	f, err := toCharFormat(format)
	if err != nil {
		return "", column{}, err
	}
	return name, column{expr: "to_char(" + utc + ", " + b.bind(f) + "::text)", kind: KindText}, nil
}

var groupOperators = []string{"count", "sum", "average", "max", "min", "first", "last", "push", "add_to_set"}

// groupField is one aggregate of a group stage. conditions restrict the
// rows it aggregates (an SQL FILTER): count and sum count and add only the
// matching rows, average averages them.
func (p *pipeline) groupField(rel *relation, raw any) (string, column, error) {
	b := p.b
	m, ok := raw.(map[string]any)
	if !ok {
		return "", column{}, qerr("a field must be an object {key, name, operator, conditions}")
	}
	if err := onlyKeys(m, "field", "key", "k", "name", "n", "operator", "o", "conditions", "fields"); err != nil {
		return "", column{}, err
	}
	key, err := str(m, "key", "key", "k")
	if err != nil {
		return "", column{}, err
	}
	name, err := str(m, "name", "name", "n")
	if err != nil {
		return "", column{}, err
	}
	op, err := str(m, "operator", "operator", "o")
	if err != nil {
		return "", column{}, err
	}
	if !slices.Contains(groupOperators, op) {
		return "", column{}, qerr("unknown operator %q (operators: %s)", op, strings.Join(groupOperators, ", "))
	}
	if name == "" {
		name = key
		if name == "" {
			name = op
		}
	}
	_, hasSub := m["fields"]
	if hasSub && op != "push" {
		return "", column{}, qerr("field %q: fields is for the push operator only", name)
	}
	var filter []string
	if raw, ok := m["conditions"]; ok && raw != nil {
		conds, err := parseConditions("conditions", raw)
		if err != nil {
			return "", column{}, within("field "+strconv.Quote(name), err)
		}
		parts, err := b.conditions(rel, conds, nil)
		if err != nil {
			return "", column{}, within("field "+strconv.Quote(name)+" conditions", err)
		}
		filter = parts
	}
	agg := func(expr string, extra ...string) string {
		f := append(slices.Clone(filter), extra...)
		if len(f) == 0 {
			return expr
		}
		return expr + " FILTER (WHERE " + strings.Join(f, " AND ") + ")"
	}
	if op == "count" {
		if key != "" {
			// Cloudforet counts rows whatever the key; the key must still exist.
			if _, err := rel.lookup(&sqlBuilder{}, key); err != nil {
				return "", column{}, err
			}
		}
		return name, column{expr: agg("count(*)"), kind: KindInt}, nil
	}
	if op == "push" || op == "add_to_set" {
		b.accumulators++
		if max := b.limits().MaxStatAccumulators; b.accumulators > max {
			return "", column{}, overLimit("more than %d push and add_to_set fields in one query (SECRETLOG_MAX_STAT_ACCUMULATORS)", max)
		}
	}
	if op == "push" && hasSub {
		list, ok := m["fields"].([]any)
		if !ok || len(list) == 0 || len(list) > 50 {
			return "", column{}, qerr("field %q: fields must be a list of 1 to 50 {key, name}", name)
		}
		var pairs []string
		for _, item := range list {
			sub, ok := item.(map[string]any)
			if !ok {
				return "", column{}, qerr("field %q: fields must be a list of {key, name}", name)
			}
			if err := onlyKeys(sub, "push field", "key", "k", "name", "n"); err != nil {
				return "", column{}, err
			}
			k, err := str(sub, "key", "key", "k")
			if err != nil {
				return "", column{}, err
			}
			n, err := str(sub, "name", "name", "n")
			if err != nil {
				return "", column{}, err
			}
			if k == "" {
				return "", column{}, qerr("field %q: every push field needs a key", name)
			}
			if n == "" {
				n = k
			}
			col, err := rel.lookup(b, k)
			if err != nil {
				return "", column{}, err
			}
			pairs = append(pairs, b.bind(n)+"::text", toJSON(col))
		}
		return name, column{expr: "coalesce(" + agg("jsonb_agg(jsonb_build_object("+strings.Join(pairs, ", ")+")"+orderClause(rel.order)+")") + ", '[]'::jsonb)", kind: KindJSON}, nil
	}
	if key == "" {
		return "", column{}, qerr("field %q: operator %q needs a key", name, op)
	}
	col, err := rel.lookup(b, key)
	if err != nil {
		return "", column{}, err
	}
	numeric := col.expr
	switch col.kind {
	case KindInt:
	case KindJSON:
		numeric = "(CASE WHEN jsonb_typeof(" + col.expr + ") = 'number' THEN (" + col.expr + ")::numeric END)"
	default:
		numeric = ""
	}
	switch op {
	case "sum", "average":
		if numeric == "" {
			return "", column{}, qerr("field %q: operator %q needs a numeric key, and %q is a %s", name, op, key, col.kind)
		}
		if op == "sum" {
			return name, column{expr: "coalesce(" + agg("sum("+numeric+")") + ", 0)", kind: KindInt}, nil
		}
		return name, column{expr: "(" + agg("avg("+numeric+")") + ")::float8", kind: KindInt}, nil
	case "max", "min":
		if col.kind == KindJSON {
			// jsonb has an order but no max(): the first of the sorted values.
			t := orderTerm{expr: col.expr, desc: op == "max"}
			return name, column{expr: "(" + agg("array_agg("+col.expr+orderClause([]orderTerm{t})+")",
				col.expr+" IS NOT NULL", col.expr+" <> 'null'::jsonb") + ")[1]", kind: col.kind}, nil
		}
		return name, column{expr: agg(op + "(" + col.expr + ")"), kind: col.kind}, nil
	case "first", "last":
		order := rel.order
		if op == "last" {
			order = reversed(order)
		}
		return name, column{expr: "(" + agg("array_agg("+col.expr+orderClause(order)+")") + ")[1]", kind: col.kind}, nil
	case "push":
		return name, column{expr: "coalesce(" + agg("jsonb_agg("+toJSON(col)+orderClause(rel.order)+")") + ", '[]'::jsonb)", kind: KindJSON}, nil
	case "add_to_set":
		v := toJSON(col)
		return name, column{expr: "coalesce(" + agg("jsonb_agg(DISTINCT "+v+" ORDER BY "+v+")", col.expr+" IS NOT NULL") + ", '[]'::jsonb)", kind: KindJSON}, nil
	}
	return "", column{}, qerr("unknown operator %q", op)
}

// group: {keys: [{key, name, date_format}], fields: [{key, name, operator,
// conditions}]}. Groups come out ordered by their keys; with no keys, one
// group of every row (none when there are no rows).
func (p *pipeline) group(rel *relation, opts any) (*relation, error) {
	m, ok := opts.(map[string]any)
	if !ok {
		return nil, qerr("must be an object {keys, fields}")
	}
	if err := onlyKeys(m, "group", "keys", "fields"); err != nil {
		return nil, err
	}
	keys, err := optList(m, "keys")
	if err != nil {
		return nil, err
	}
	fields, err := optList(m, "fields")
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 && len(fields) == 0 {
		return nil, qerr("needs keys or fields")
	}
	if len(keys)+len(fields) > maxStageItems {
		return nil, overLimit("more than %d keys and fields in one group", maxStageItems)
	}
	out := &relation{cols: map[string]column{}}
	var sel, groupBy []string
	for i, k := range keys {
		name, col, err := p.groupKey(rel, k)
		if err != nil {
			return nil, within(fmt.Sprintf("keys[%d]", i), err)
		}
		if _, dup := out.cols[name]; dup {
			return nil, qerr("keys[%d]: name %q is used twice", i, name)
		}
		a := p.b.alias()
		sel = append(sel, col.expr+" AS "+a)
		groupBy = append(groupBy, strconv.Itoa(len(sel)))
		out.add(name, column{expr: a, kind: col.kind})
		out.keys = append(out.keys, name)
		out.tiebreak = append(out.tiebreak, orderTerm{expr: a, nullsLowest: true})
	}
	for i, f := range fields {
		name, col, err := p.groupField(rel, f)
		if err != nil {
			return nil, within(fmt.Sprintf("fields[%d]", i), err)
		}
		if _, dup := out.cols[name]; dup {
			return nil, qerr("fields[%d]: name %q is used twice", i, name)
		}
		a := p.b.alias()
		sel = append(sel, col.expr+" AS "+a)
		out.add(name, column{expr: a, kind: col.kind})
	}
	body := "SELECT " + strings.Join(sel, ", ") + " FROM " + rel.from
	if len(groupBy) > 0 {
		body += " GROUP BY " + strings.Join(groupBy, ", ")
	} else {
		body += " HAVING count(*) > 0"
	}
	out.from = p.cte(body)
	out.order = out.tiebreak
	return out, nil
}

// count: {name}: one row with the number of rows (0 when there are none).
func (p *pipeline) count(rel *relation, opts any) (*relation, error) {
	name := "count"
	if opts != nil {
		m, ok := opts.(map[string]any)
		if !ok {
			return nil, qerr("must be an object {name}")
		}
		if err := onlyKeys(m, "count", "name", "n"); err != nil {
			return nil, err
		}
		n, err := str(m, "name", "name", "n")
		if err != nil {
			return nil, err
		}
		if n != "" {
			name = n
		}
	}
	a := p.b.alias()
	out := &relation{cols: map[string]column{}}
	out.add(name, column{expr: a, kind: KindInt})
	out.from = p.cte("SELECT count(*) AS " + a + " FROM " + rel.from)
	return out, nil
}

// sort: [{key, desc}] (or {key, desc}, or {keys: [...]}). The sort values
// are computed in the stage, so later stages and the final ORDER BY refer
// to them by alias.
func (p *pipeline) sort(rel *relation, opts any) (*relation, error) {
	var list []any
	switch s := opts.(type) {
	case []any:
		list = s
	case map[string]any:
		if keys, ok := s["keys"]; ok {
			if err := onlyKeys(s, "sort", "keys"); err != nil {
				return nil, err
			}
			l, ok := keys.([]any)
			if !ok {
				return nil, qerr("keys must be a list of {key, desc}")
			}
			list = l
		} else {
			list = []any{s}
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
	var keys []SortKey
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, qerr("[%d] must be an object {key, desc}", i)
		}
		if err := onlyKeys(m, "sort key", "key", "k", "desc"); err != nil {
			return nil, err
		}
		k, err := str(m, "key", "key", "k")
		if err != nil {
			return nil, err
		}
		desc := false
		if d, ok := m["desc"]; ok && d != nil {
			if desc, ok = d.(bool); !ok {
				return nil, qerr("[%d].desc must be true or false", i)
			}
		}
		keys = append(keys, SortKey{Key: k, Desc: desc})
	}
	terms, err := p.b.sortTerms(rel, keys)
	if err != nil {
		return nil, err
	}
	terms = rel.complete(terms)
	sel := []string{"*"}
	for i, t := range terms[:len(keys)] {
		a := p.b.alias()
		sel = append(sel, t.expr+" AS "+a)
		terms[i].expr = a
	}
	out := rel.next(p.cte("SELECT " + strings.Join(sel, ", ") + " FROM " + rel.from))
	out.order = terms
	return out, nil
}

// window is limit n or skip n, in the relation's order.
func (p *pipeline) window(rel *relation, name string, opts any) (*relation, error) {
	n, ok := integer(opts)
	if !ok || n < 0 {
		return nil, qerr("must be a non-negative integer")
	}
	clause := " LIMIT " + strconv.FormatInt(n, 10)
	if name == "skip" {
		clause = " OFFSET " + strconv.FormatInt(n, 10)
	}
	return rel.next(p.cte("SELECT * FROM " + rel.from + orderClause(rel.order) + clause)), nil
}

var projectOperators = []string{"size"}

// project: {fields: [{key, name, operator}], exclude_keys}: the named
// values (operator size: an array's length), after the group keys unless
// exclude_keys.
func (p *pipeline) project(rel *relation, opts any) (*relation, error) {
	m, ok := opts.(map[string]any)
	if !ok {
		return nil, qerr("must be an object {fields, exclude_keys}")
	}
	if err := onlyKeys(m, "project", "fields", "exclude_keys", "excludeKeys", "only_keys", "onlyKeys"); err != nil {
		return nil, err
	}
	fields, err := optList(m, "fields")
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return nil, qerr("fields is required")
	}
	if len(fields) > maxStageItems {
		return nil, overLimit("more than %d fields in one project stage", maxStageItems)
	}
	exclude := false
	if v, ok := pick(m, "exclude_keys", "excludeKeys"); ok && v != nil {
		if exclude, ok = v.(bool); !ok {
			return nil, qerr("exclude_keys must be true or false")
		}
	}
	if v, ok := pick(m, "only_keys", "onlyKeys"); ok && v != nil {
		if _, ok := v.(bool); !ok {
			return nil, qerr("only_keys must be true or false")
		}
	}
	type item struct {
		name string
		col  column
	}
	var items []item
	names := map[string]bool{}
	for i, f := range fields {
		fm, ok := f.(map[string]any)
		if !ok {
			return nil, qerr("fields[%d] must be an object {key, name, operator}", i)
		}
		if err := onlyKeys(fm, "project field", "key", "k", "name", "n", "operator", "o"); err != nil {
			return nil, within(fmt.Sprintf("fields[%d]", i), err)
		}
		key, err := str(fm, "key", "key", "k")
		if err != nil {
			return nil, err
		}
		name, err := str(fm, "name", "name", "n")
		if err != nil {
			return nil, err
		}
		op, err := str(fm, "operator", "operator", "o")
		if err != nil {
			return nil, err
		}
		if key == "" {
			key = name
		}
		if name == "" {
			name = key
		}
		if key == "" {
			return nil, qerr("fields[%d]: key is required", i)
		}
		if names[name] {
			return nil, qerr("fields[%d]: name %q is used twice", i, name)
		}
		names[name] = true
		col, err := rel.lookup(p.b, key)
		if err != nil {
			return nil, within(fmt.Sprintf("fields[%d]", i), err)
		}
		switch op {
		case "":
		case "size":
			if col.kind != KindJSON {
				return nil, qerr("fields[%d]: operator size needs an array (from push or add_to_set), and %q is a %s", i, key, col.kind)
			}
			col = column{expr: "(CASE WHEN jsonb_typeof(" + col.expr + ") = 'array' THEN jsonb_array_length(" + col.expr + ") END)", kind: KindInt}
		default:
			return nil, qerr("fields[%d]: unknown operator %q (operators: %s)", i, op, strings.Join(projectOperators, ", "))
		}
		items = append(items, item{name, col})
	}
	out := &relation{cols: map[string]column{}}
	var sel []string
	if !exclude {
		for _, k := range rel.keys {
			if names[k] {
				continue
			}
			a := p.b.alias()
			sel = append(sel, rel.cols[k].expr+" AS "+a)
			out.add(k, column{expr: a, kind: rel.cols[k].kind})
			out.keys = append(out.keys, k)
		}
	}
	for _, it := range items {
		a := p.b.alias()
		sel = append(sel, it.col.expr+" AS "+a)
		out.add(it.name, column{expr: a, kind: it.col.kind})
	}
	ord := p.b.alias()
	sel = append(sel, "row_number() OVER ("+strings.TrimPrefix(orderClause(rel.order), " ")+") AS "+ord)
	out.from = p.cte("SELECT " + strings.Join(sel, ", ") + " FROM " + rel.from)
	out.order = []orderTerm{{expr: ord}}
	out.tiebreak = out.order
	return out, nil
}

// unwind: {path}: one row per element of an array (as from push or
// add_to_set); a missing or null value gives no row, a non-array value one.
func (p *pipeline) unwind(rel *relation, opts any) (*relation, error) {
	var path string
	switch o := opts.(type) {
	case string:
		path = o
	case map[string]any:
		if err := onlyKeys(o, "unwind", "path"); err != nil {
			return nil, err
		}
		var err error
		if path, err = str(o, "path", "path"); err != nil {
			return nil, err
		}
	default:
		return nil, qerr("must be an object {path}")
	}
	path = strings.TrimPrefix(path, "$")
	if path == "" {
		return nil, qerr("path is required")
	}
	p.b.unwinds++
	if max := p.b.limits().MaxStatUnwinds; p.b.unwinds > max {
		return nil, overLimit("more than %d unwind stages in one query (SECRETLOG_MAX_STAT_UNWINDS): each multiplies the rows", max)
	}
	col, err := rel.lookup(p.b, path)
	if err != nil {
		return nil, err
	}
	if col.kind != KindJSON || (rel.res != nil && col.expr == "tags") {
		what := col.kind.String()
		if col.kind == KindJSON {
			what = "JSON object"
		}
		return nil, qerr("path %q is a %s, not an array: unwind takes an array such as one made by push or add_to_set", path, what)
	}
	elems := "jsonb_array_elements(CASE WHEN " + col.expr + " IS NULL OR " + col.expr + " = 'null'::jsonb THEN '[]'::jsonb WHEN jsonb_typeof(" +
		col.expr + ") = 'array' THEN " + col.expr + " ELSE jsonb_build_array(" + col.expr + ") END) WITH ORDINALITY AS u(u_v, u_o)"
	v, ord := p.b.alias(), p.b.alias()
	terms := append(slices.Clone(rel.order), orderTerm{expr: "u.u_o"})
	from := p.cte("SELECT " + rel.from + ".*, u.u_v AS " + v + ", row_number() OVER (" + strings.TrimPrefix(orderClause(terms), " ") +
		") AS " + ord + " FROM " + rel.from + " CROSS JOIN LATERAL " + elems)
	out := rel.next(from)
	out.add(path, column{expr: v, kind: KindJSON})
	out.order = []orderTerm{{expr: ord}}
	out.tiebreak = out.order
	return out, nil
}

// match: {filter, filter_or}: keeps the rows that match, in order.
func (p *pipeline) match(rel *relation, opts any) (*relation, error) {
	m, ok := opts.(map[string]any)
	if !ok {
		return nil, qerr("must be an object {filter, filter_or}")
	}
	if err := onlyKeys(m, "match", "filter", "filter_or", "filterOr"); err != nil {
		return nil, err
	}
	var filter, filterOr []Condition
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
	parts, err := p.b.conditions(rel, filter, filterOr)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, qerr("needs filter or filter_or")
	}
	return rel.next(p.cte("SELECT * FROM " + rel.from + " WHERE " + strings.Join(parts, " AND "))), nil
}

// --- parsing helpers --------------------------------------------------------

// pick returns the first of names present in m.
func pick(m map[string]any, names ...string) (any, bool) {
	for _, n := range names {
		if v, ok := m[n]; ok {
			return v, true
		}
	}
	return nil, false
}

// onlyKeys rejects keys of m that are not allowed.
func onlyKeys(m map[string]any, what string, allowed ...string) error {
	var bad []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return qerr("unknown %s option %q (allowed: %s)", what, bad[0], strings.Join(allowed, ", "))
}

// str reads an optional string option under any of names.
func str(m map[string]any, label string, names ...string) (string, error) {
	v, ok := pick(m, names...)
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", qerr("%s must be a string", label)
	}
	return s, nil
}

func optList(m map[string]any, name string) ([]any, error) {
	v, ok := m[name]
	if !ok || v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, qerr("%s must be a list", name)
	}
	return l, nil
}

func integer(v any) (int64, bool) {
	switch v.(type) {
	case string, nil:
		return 0, false
	}
	n, ok := number(v)
	if !ok {
		return 0, false
	}
	i, ok := n.(int64)
	return i, ok
}

func parsePage(v any) (Page, error) {
	if v == nil {
		return Page{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return Page{}, qerr("page must be an object {start, limit}")
	}
	if err := onlyKeys(m, "page", "start", "limit"); err != nil {
		return Page{}, err
	}
	var p Page
	for name, dst := range map[string]*int{"start": &p.Start, "limit": &p.Limit} {
		raw, ok := m[name]
		if !ok || raw == nil {
			continue
		}
		n, ok := integer(raw)
		if !ok || n < 0 || n > math.MaxInt32 {
			return Page{}, qerr("page.%s must be a non-negative integer", name)
		}
		*dst = int(n)
	}
	return p, nil
}

// parseConditions reads [{k, v, o}] (or {key, value, operator}).
func parseConditions(field string, v any) ([]Condition, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, qerr("%s must be a list of {k, v, o}", field)
	}
	out := make([]Condition, 0, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, qerr("%s[%d] must be an object {k, v, o}", field, i)
		}
		if err := onlyKeys(m, fmt.Sprintf("%s[%d]", field, i), "k", "key", "v", "value", "o", "operator"); err != nil {
			return nil, err
		}
		key, err := str(m, fmt.Sprintf("%s[%d].k", field, i), "k", "key")
		if err != nil {
			return nil, err
		}
		op, err := str(m, fmt.Sprintf("%s[%d].o", field, i), "o", "operator")
		if err != nil {
			return nil, err
		}
		val, _ := pick(m, "v", "value")
		if strings.TrimSpace(key) == "" {
			return nil, qerr("%s[%d]: k is required", field, i)
		}
		out = append(out, Condition{Key: key, Value: val, Op: op})
	}
	return out, nil
}
