package projections

// The list and stat query language of DESIGN §5 (Cloudforet core v2),
// translated to PostgreSQL. One translator serves every resource: a
// Resource describes a read-model table, and everything a caller writes
// (keys, operators, values, names, date formats) is either looked up in
// that description or bound as a parameter: no caller text is ever spliced
// into SQL. The caller's tenancy scope is always part of the WHERE clause.
//
// Semantics, following MongoDB as Cloudforet does:
//   - Keys: a field by its GraphQL or Cloudforet name (schemaId, schema_id),
//     or tags.<key> (the rest of the key is the tag name, dots included).
//   - A missing value (SQL NULL, or an absent tag) matches eq null, not,
//     not_in, not_contain and not_contain_in, and never lt/gt/contain/regex.
//     A tag whose value is JSON null exists, and also matches eq null.
//   - eq, in and comparisons are exact and typed: text keys take strings,
//     version takes numbers, times take ISO 8601; a tag value compares only
//     with a value of its JSON type ("1" is not 1).
//   - contain* are case-insensitive substrings; regex* are case-insensitive
//     (Cloudforet passes $options: i) in PostgreSQL's regex syntax; both
//     match text fields and string tag values.
//   - datetime_* take ISO 8601 and timediff_* expressions (now, now/d,
//     now/w + 2h, ...; units s m h d w) on time keys; times are UTC.
//   - Sort: ascending puts missing values first, descending last; ties
//     break on the id, in the direction of the last sort key. Tag values
//     sort in jsonb order: null, strings, numbers, booleans.
//   - only and minimal are validated and accepted: GraphQL field selection
//     already shapes the rows.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/secretlog/secretlog/auth"
)

// Kind is a value's type, which decides how values are bound and compared.
type Kind int

// Value kinds.
const (
	KindText Kind = iota
	KindInt       // a number: bigint columns and numeric stage outputs
	KindTime
	KindJSON // a JSON value: tags, a tag's value, push/add_to_set arrays
)

func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindInt:
		return "number"
	case KindTime:
		return "time"
	case KindJSON:
		return "JSON"
	}
	return "unknown"
}

// Field is one queryable field of a resource.
type Field struct {
	Name   string // GraphQL name
	Column string // column, which is also the Cloudforet (snake_case) name
	Kind   Kind
}

// Resource describes a read model to the query translator: the same code
// serves every resource.
type Resource struct {
	Table   string
	Fields  []Field
	Keyword []string // columns a keyword matches (case-insensitive substring)
	// Tiebreak is appended to every ORDER BY so pages are stable.
	Tiebreak string
	// Visibility is the caller's tenancy scope as an SQL condition.
	Visibility func(b *sqlBuilder, id auth.Identity) string
}

// Condition is one filter: key, value, operator (Cloudforet's k, v, o).
type Condition struct {
	Key   string
	Value any
	Op    string
}

// SortKey orders results.
type SortKey struct {
	Key  string
	Desc bool
}

// Page selects a window: Start is 1-based. In a list query Limit 0 means
// the default page (Limits.DefaultPageSize); in a statistics query it means
// every result row, up to Limits.MaxStatRows.
type Page struct {
	Start int
	Limit int
}

// Query is the list query: filters ANDed, FilterOr ORed (then ANDed), sort,
// page, keyword.
type Query struct {
	Filter    []Condition
	FilterOr  []Condition
	Sort      []SortKey
	Page      Page
	Keyword   string
	CountOnly bool
	// Only names the fields the caller wants; they are validated. Output
	// shaping is GraphQL's field selection, so the rows are always whole.
	Only []string
	// Minimal is accepted for compatibility: GraphQL field selection already
	// returns only what the caller selects.
	Minimal bool
	// Now is the instant timediff_* operators count from; zero means the
	// reader's clock.
	Now time.Time
}

// QueryError is a malformed query; the API answers INVALID_ARGUMENT with its
// message, or RESOURCE_EXHAUSTED when Exhausted (the query is well formed but
// over one of the Limits, or ran out of time).
type QueryError struct {
	Msg       string
	Exhausted bool
}

func (e *QueryError) Error() string { return e.Msg }

func qerr(format string, args ...any) error { return &QueryError{Msg: fmt.Sprintf(format, args...)} }

// overLimit is a QueryError for a query over one of the Limits.
func overLimit(format string, args ...any) error {
	return &QueryError{Msg: fmt.Sprintf(format, args...), Exhausted: true}
}

// within prefixes a query error with where it happened (aggregate[1].group, ...).
func within(where string, err error) error {
	var qe *QueryError
	if errors.As(err, &qe) {
		return &QueryError{Msg: where + ": " + qe.Msg, Exhausted: qe.Exhausted}
	}
	return err
}

// maxParams bounds the values one query may bind (PostgreSQL allows 65535).
const maxParams = 10000

// sqlBuilder collects SQL text and its parameters: values are only ever bound.
type sqlBuilder struct {
	args []any
	now  time.Time
	// lim bounds the query's cost; nil means DefaultLimits.
	lim *Limits
	// conds counts filter conditions and keyword words, for MaxConditions.
	conds int
	// accumulators and unwinds count push/add_to_set fields and unwind stages.
	accumulators, unwinds int
	// regexKeys are the keys with a regex condition, to name them if
	// PostgreSQL rejects a pattern.
	regexKeys []string
	aliases   int
}

func (b *sqlBuilder) bind(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

// alias is a fresh SQL identifier for a stage's output column: names chosen
// by the caller never become identifiers.
func (b *sqlBuilder) alias() string {
	b.aliases++
	return "c_" + strconv.Itoa(b.aliases)
}

// limits is the builder's Limits, with defaults filled in.
func (b *sqlBuilder) limits() Limits {
	if b.lim == nil {
		l := DefaultLimits()
		b.lim = &l
	}
	return *b.lim
}

// countCondition counts one more condition against MaxConditions.
func (b *sqlBuilder) countCondition() error {
	b.conds++
	if max := b.limits().MaxConditions; b.conds > max {
		return overLimit("query too large: more than %d filter conditions and keywords (limit SECRETLOG_MAX_QUERY_CONDITIONS)", max)
	}
	return nil
}

func (b *sqlBuilder) check() error {
	if len(b.args) > maxParams {
		return qerr("query too large: more than %d values", maxParams)
	}
	return nil
}

// column is a value a query can refer to: a read-model column, a tag, or
// the output of an aggregate stage.
type column struct {
	expr string // SQL expression
	kind Kind
	// tag is set for tags.<key> of the read-model table: equality can then
	// add a containment test the GIN index on tags answers.
	tag    string
	tagged bool
}

// orderTerm is one ORDER BY term. nullsLowest sorts nulls as the lowest
// values (ASC NULLS FIRST, DESC NULLS LAST), as MongoDB does; without it
// the column is never null and PostgreSQL's default keeps index scans usable.
type orderTerm struct {
	expr        string
	desc        bool
	nullsLowest bool
}

func (t orderTerm) String() string {
	switch {
	case t.desc && t.nullsLowest:
		return t.expr + " DESC NULLS LAST"
	case t.desc:
		return t.expr + " DESC"
	case t.nullsLowest:
		return t.expr + " ASC NULLS FIRST"
	}
	return t.expr + " ASC"
}

func reversed(terms []orderTerm) []orderTerm {
	out := make([]orderTerm, len(terms))
	for i, t := range terms {
		t.desc = !t.desc
		out[i] = t
	}
	return out
}

// relation is the row set a query or a pipeline stage reads.
type relation struct {
	from string    // table or CTE name
	res  *Resource // set while rows are the resource's rows
	cols map[string]column
	// names lists cols in output order.
	names []string
	// keys are the group keys (names), kept by project unless exclude_keys.
	keys []string
	// order is the relation's row order, used by limit, skip, first, last,
	// push and the final result.
	order []orderTerm
	// tiebreak completes a sort so every order is total.
	tiebreak []orderTerm
}

func sourceRelation(res *Resource, from string) *relation {
	rel := &relation{from: from, res: res, cols: map[string]column{}}
	rel.tiebreak = []orderTerm{{expr: res.Tiebreak}}
	rel.order = rel.tiebreak
	return rel
}

// pure reports whether rows are the resource's rows, unchanged.
func (rel *relation) pure() bool { return rel.res != nil && len(rel.cols) == 0 }

func (rel *relation) add(name string, c column) {
	if _, ok := rel.cols[name]; !ok {
		rel.names = append(rel.names, name)
	}
	rel.cols[name] = c
}

// lookup resolves a key to a column: a stage output by name, a key into a
// JSON output (name.key), or a field of the resource (GraphQL or Cloudforet
// name, or tags.<key>).
func (rel *relation) lookup(b *sqlBuilder, key string) (column, error) {
	if c, ok := rel.cols[key]; ok {
		return c, nil
	}
	if name, sub, ok := strings.Cut(key, "."); ok && sub != "" {
		if c, ok := rel.cols[name]; ok && c.kind == KindJSON {
			return column{expr: "(" + c.expr + " -> " + b.bind(sub) + "::text)", kind: KindJSON}, nil
		}
	}
	if rel.res != nil {
		return rel.res.field(b, key)
	}
	if len(rel.names) == 0 {
		return column{}, qerr("unknown key %q", key)
	}
	return column{}, qerr("unknown key %q (this stage's fields: %s)", key, strings.Join(rel.names, ", "))
}

// field resolves a key of the resource: GraphQL or Cloudforet name, or tags.<key>.
func (r *Resource) field(b *sqlBuilder, key string) (column, error) {
	if tag, ok := strings.CutPrefix(key, "tags."); ok {
		if tag == "" {
			return column{}, qerr("unknown key %q: name the tag, as in tags.env", key)
		}
		return column{expr: "(tags -> " + b.bind(tag) + "::text)", kind: KindJSON, tag: tag, tagged: true}, nil
	}
	for _, f := range r.Fields {
		if key == f.Name || key == f.Column {
			return column{expr: f.Column, kind: f.Kind}, nil
		}
	}
	return column{}, qerr("unknown key %q", key)
}

// operators lists every filter operator; list operators take a list value.
var operators = map[string]bool{
	"eq": false, "not": false, "lt": false, "lte": false, "gt": false, "gte": false, "exists": false,
	"contain": false, "not_contain": false, "in": true, "not_in": true, "contain_in": true,
	"not_contain_in": true, "regex": false, "regex_in": true,
	"datetime_gt": false, "datetime_lt": false, "datetime_gte": false, "datetime_lte": false,
	"timediff_gt": false, "timediff_lt": false, "timediff_gte": false, "timediff_lte": false,
}

func operatorNames() string {
	names := make([]string, 0, len(operators))
	for op := range operators {
		names = append(names, op)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

var comparisons = map[string]string{"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}

func asList(v any) ([]any, bool) {
	switch l := v.(type) {
	case []any:
		return l, true
	case []string:
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

// condition translates one filter condition on rel to SQL.
func (b *sqlBuilder) condition(rel *relation, c Condition) (string, error) {
	op := c.Op
	if op == "" {
		op = "eq"
	}
	listOp, known := operators[op]
	if !known {
		return "", qerr("unknown operator %q on key %q (operators: %s)", op, c.Key, operatorNames())
	}
	if err := b.countCondition(); err != nil {
		return "", err
	}
	list, isList := asList(c.Value)
	if max := b.limits().MaxListValues; isList && len(list) > max {
		return "", overLimit("query too large: operator %q on key %q has a list of %d values, more than the limit of %d (SECRETLOG_MAX_LIST_VALUES)", op, c.Key, len(list), max)
	}
	if listOp && !isList {
		return "", qerr("operator %q on key %q needs a list value", op, c.Key)
	}
	if !listOp && isList {
		return "", qerr("operator %q on key %q takes a single value, not a list", op, c.Key)
	}
	col, err := rel.lookup(b, c.Key)
	if err != nil {
		return "", err
	}
	negate := func(s string, err error) (string, error) {
		if err != nil {
			return "", err
		}
		return "NOT coalesce(" + s + ", false)", nil
	}
	switch op {
	case "eq":
		return b.equal(col, c.Key, op, c.Value)
	case "not":
		return negate(b.equal(col, c.Key, op, c.Value))
	case "in":
		return b.in(col, c.Key, op, list)
	case "not_in":
		return negate(b.in(col, c.Key, op, list))
	case "lt", "lte", "gt", "gte":
		return b.compare(col, c.Key, op, comparisons[op], c.Value)
	case "datetime_lt", "datetime_lte", "datetime_gt", "datetime_gte":
		if col.kind != KindTime {
			return "", qerr("operator %q needs a time key (such as createdAt), not %q", op, c.Key)
		}
		return b.compare(col, c.Key, op, comparisons[strings.TrimPrefix(op, "datetime_")], c.Value)
	case "timediff_lt", "timediff_lte", "timediff_gt", "timediff_gte":
		if col.kind != KindTime {
			return "", qerr("operator %q needs a time key (such as createdAt), not %q", op, c.Key)
		}
		s, ok := c.Value.(string)
		if !ok {
			return "", qerr("operator %q on key %q needs a time expression such as \"now-1d\"", op, c.Key)
		}
		at, err := timediff(s, b.now)
		if err != nil {
			return "", qerr("operator %q on key %q: %v", op, c.Key, err)
		}
		return col.expr + " " + comparisons[strings.TrimPrefix(op, "timediff_")] + " " + b.bind(at) + "::timestamptz", nil
	case "exists":
		want, ok := c.Value.(bool)
		if !ok {
			return "", qerr("operator \"exists\" on key %q needs true or false", c.Key)
		}
		if want {
			return col.expr + " IS NOT NULL", nil
		}
		return col.expr + " IS NULL", nil
	case "contain":
		return b.contain(col, c.Key, op, c.Value)
	case "not_contain":
		return negate(b.contain(col, c.Key, op, c.Value))
	case "contain_in", "not_contain_in":
		var ors []string
		for _, v := range list {
			s, err := b.contain(col, c.Key, op, v)
			if err != nil {
				return "", err
			}
			ors = append(ors, s)
		}
		expr := never(col)
		if len(ors) > 0 {
			expr = "(" + strings.Join(ors, " OR ") + ")"
		}
		if op == "not_contain_in" {
			return negate(expr, nil)
		}
		return expr, nil
	case "regex":
		return b.regex(col, c.Key, op, c.Value)
	case "regex_in":
		var ors []string
		for _, v := range list {
			s, err := b.regex(col, c.Key, op, v)
			if err != nil {
				return "", err
			}
			ors = append(ors, s)
		}
		if len(ors) == 0 {
			return never(col), nil
		}
		return "(" + strings.Join(ors, " OR ") + ")", nil
	}
	return "", qerr("unknown operator %q on key %q", op, c.Key)
}

// never is false, written with the column so that every parameter its
// expression binds (a tag name) is used: PostgreSQL rejects unused ones.
func never(col column) string { return "(" + col.expr + " IS NULL AND false)" }

// equal is eq: null matches a missing value (and a JSON null).
func (b *sqlBuilder) equal(col column, key, op string, v any) (string, error) {
	if v == nil {
		if col.kind == KindJSON {
			return "(" + col.expr + " IS NULL OR " + col.expr + " = 'null'::jsonb)", nil
		}
		return col.expr + " IS NULL", nil
	}
	p, err := b.value(col, key, op, v)
	if err != nil {
		return "", err
	}
	eq := col.expr + " = " + p
	if hint := b.tagHint(col, v); hint != "" {
		eq = "(" + hint + " AND " + eq + ")"
	}
	return eq, nil
}

// tagHint is tags @> {"key": value} for a scalar value of a table tag: the
// GIN index on tags answers it; the exact comparison still follows it.
func (b *sqlBuilder) tagHint(col column, v any) string {
	if !col.tagged {
		return ""
	}
	switch v.(type) {
	case map[string]any, []any, nil:
		return ""
	}
	js, err := jsonValue(v)
	if err != nil {
		return ""
	}
	obj, err := json.Marshal(map[string]json.RawMessage{col.tag: json.RawMessage(js)})
	if err != nil {
		return ""
	}
	return "tags @> " + b.bind(string(obj)) + "::jsonb"
}

func (b *sqlBuilder) in(col column, key, op string, list []any) (string, error) {
	var vals, hints, ors []string
	nullable, hinted := false, col.tagged
	for _, v := range list {
		switch v.(type) {
		case nil:
			nullable = true
		case []any, map[string]any:
			if col.kind != KindJSON {
				return "", qerr("operator %q on key %q: list items must be single values", op, key)
			}
			hinted = false
		}
	}
	for _, v := range list {
		if v == nil {
			continue
		}
		p, err := b.value(col, key, op, v)
		if err != nil {
			return "", err
		}
		vals = append(vals, p)
		if hinted {
			hints = append(hints, b.tagHint(col, v))
		}
	}
	if len(vals) > 0 {
		in := col.expr + " IN (" + strings.Join(vals, ", ") + ")"
		if hinted {
			in = "((" + strings.Join(hints, " OR ") + ") AND " + in + ")"
		}
		ors = append(ors, in)
	}
	if nullable {
		eq, _ := b.equal(col, key, op, nil)
		ors = append(ors, eq)
	}
	switch len(ors) {
	case 0:
		return never(col), nil
	case 1:
		return ors[0], nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", nil
}

// compare is lt, lte, gt, gte. A JSON value compares only with values of
// the same JSON type (numbers with numbers, strings with strings).
func (b *sqlBuilder) compare(col column, key, op, sym string, v any) (string, error) {
	if v == nil {
		return "", qerr("operator %q on key %q needs a value, not null", op, key)
	}
	p, err := b.value(col, key, op, v)
	if err != nil {
		return "", err
	}
	if col.kind == KindJSON {
		typ := jsonType(v)
		if typ != "string" && typ != "number" && typ != "boolean" {
			return "", qerr("operator %q on key %q needs a string or a number", op, key)
		}
		return "(jsonb_typeof(" + col.expr + ") = '" + typ + "' AND " + col.expr + " " + sym + " " + p + ")", nil
	}
	return col.expr + " " + sym + " " + p, nil
}

// text is the SQL text a substring or regex operator matches: a text
// column, or a JSON string (other JSON values never match).
func text(col column, key, op string) (expr, guard string, err error) {
	switch col.kind {
	case KindText:
		return col.expr, "", nil
	case KindJSON:
		return "(" + col.expr + " #>> '{}')", "jsonb_typeof(" + col.expr + ") = 'string' AND ", nil
	}
	return "", "", qerr("operator %q needs a text key, and %q is a %s", op, key, col.kind)
}

func (b *sqlBuilder) contain(col column, key, op string, v any) (string, error) {
	expr, guard, err := text(col, key, op)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", qerr("operator %q on key %q needs a string", op, key)
	}
	return "(" + guard + "strpos(lower(" + expr + "), lower(" + b.bind(s) + "::text)) > 0)", nil
}

// regex matches case-insensitively (Cloudforet passes $options: i), with
// PostgreSQL's regular expression syntax.
func (b *sqlBuilder) regex(col column, key, op string, v any) (string, error) {
	expr, guard, err := text(col, key, op)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", qerr("operator %q on key %q needs a string (a regular expression)", op, key)
	}
	if max := b.limits().MaxRegexLength; len(s) > max {
		return "", overLimit("operator %q on key %q: the regular expression is %d bytes long, more than the limit of %d (SECRETLOG_MAX_REGEX_LENGTH)", op, key, len(s), max)
	}
	if !slices.Contains(b.regexKeys, key) {
		b.regexKeys = append(b.regexKeys, key)
	}
	return "(" + guard + expr + " ~* " + b.bind(s) + "::text)", nil
}

// value checks v against the column's kind and binds it with a cast.
func (b *sqlBuilder) value(col column, key, op string, v any) (string, error) {
	switch col.kind {
	case KindText:
		s, ok := v.(string)
		if !ok {
			return "", qerr("operator %q on key %q needs a string", op, key)
		}
		return b.bind(s) + "::text", nil
	case KindInt:
		n, ok := number(v)
		if !ok {
			return "", qerr("operator %q on key %q needs a number", op, key)
		}
		return b.bind(n) + "::numeric", nil
	case KindTime:
		t, err := isoTime(v)
		if err != nil {
			return "", qerr("operator %q on key %q needs an ISO 8601 time such as 2024-05-01T12:00:00Z", op, key)
		}
		return b.bind(t) + "::timestamptz", nil
	case KindJSON:
		js, err := jsonValue(v)
		if err != nil {
			return "", qerr("operator %q on key %q: %v", op, key, err)
		}
		return b.bind(js) + "::jsonb", nil
	}
	return "", qerr("key %q cannot be compared", key)
}

// number accepts JSON numbers in every form a decoder hands over, and
// numeric strings.
func number(v any) (any, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case float32:
		return number(float64(n))
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, false
		}
		if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
			return int64(n), true
		}
		return n, true
	case json.Number:
		return number(string(n))
	case string:
		if i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64); err == nil {
			return i, true
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(n), 64); err == nil {
			return number(f)
		}
	}
	return nil, false
}

// jsonValue is v as JSON text, for comparison with a JSON value.
func jsonValue(v any) (string, error) {
	switch x := v.(type) {
	case json.Number:
		if _, ok := number(x); !ok {
			return "", errors.New("not a number")
		}
		return string(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", errors.New("not a number")
		}
	}
	js, err := json.Marshal(v)
	if err != nil {
		return "", errors.New("value is not JSON")
	}
	return string(js), nil
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	if _, ok := number(v); ok {
		return "number"
	}
	return ""
}

// isoLayouts are the ISO 8601 forms a time value may take; without a zone,
// UTC.
var isoLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

func isoTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t, nil
	case string:
		s := strings.TrimSpace(t)
		for _, layout := range isoLayouts {
			if at, err := time.Parse(layout, s); err == nil {
				return at, nil
			}
		}
	}
	return time.Time{}, errors.New("not an ISO 8601 time")
}

var (
	timediffBase   = regexp.MustCompile(`^now\s*(?:/\s*([smhdw]))?`)
	timediffOffset = regexp.MustCompile(`^([+-])\s*(\d+)\s*([smhdw])`)
)

var timediffUnits = map[string]time.Duration{
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

// timediff evaluates a Cloudforet time expression: "now", optionally
// rounded down to the start of a unit ("now/d"; weeks start on Monday),
// then offsets ("-1d", "+ 2h"). Units: s m h d w. Times are UTC.
func timediff(expr string, now time.Time) (time.Time, error) {
	s := strings.ToLower(strings.TrimSpace(expr))
	m := timediffBase.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, fmt.Errorf("time expression %q must start with \"now\" (as in now-1d, now/d, now/w + 2h)", expr)
	}
	at := now.UTC()
	switch m[1] {
	case "s", "m", "h":
		at = at.Truncate(timediffUnits[m[1]])
	case "d":
		at = time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
	case "w":
		day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
		at = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	}
	s = strings.TrimSpace(s[len(m[0]):])
	for s != "" {
		o := timediffOffset.FindStringSubmatch(s)
		if o == nil {
			return time.Time{}, fmt.Errorf("time expression %q: cannot read %q (offsets look like -1d or + 2h; units s m h d w)", expr, s)
		}
		n, err := strconv.ParseInt(o[2], 10, 32)
		if err != nil {
			return time.Time{}, fmt.Errorf("time expression %q: offset too large", expr)
		}
		d := time.Duration(n) * timediffUnits[o[3]]
		if o[1] == "-" {
			d = -d
		}
		at = at.Add(d)
		s = strings.TrimSpace(s[len(o[0]):])
	}
	return at, nil
}

// conditions ANDs filter and ORs filterOr (the OR group ANDed with the rest).
func (b *sqlBuilder) conditions(rel *relation, filter, filterOr []Condition) ([]string, error) {
	var parts []string
	for _, c := range filter {
		s, err := b.condition(rel, c)
		if err != nil {
			return nil, err
		}
		parts = append(parts, s)
	}
	if len(filterOr) > 0 {
		var ors []string
		for _, c := range filterOr {
			s, err := b.condition(rel, c)
			if err != nil {
				return nil, err
			}
			ors = append(ors, s)
		}
		parts = append(parts, "("+strings.Join(ors, " OR ")+")")
	}
	return parts, nil
}

// where builds the WHERE clause over the resource's table: scope AND filter
// AND (filterOr) AND keyword.
func (b *sqlBuilder) where(rel *relation, scope string, q Query) (string, error) {
	parts := []string{"(" + scope + ")"}
	conds, err := b.conditions(rel, q.Filter, q.FilterOr)
	if err != nil {
		return "", err
	}
	parts = append(parts, conds...)
	for _, word := range strings.Fields(q.Keyword) {
		if err := b.countCondition(); err != nil {
			return "", err
		}
		p := b.bind(word)
		var ors []string
		for _, col := range rel.res.Keyword {
			ors = append(ors, "strpos(lower(coalesce("+col+", '')), lower("+p+"::text)) > 0")
		}
		parts = append(parts, "("+strings.Join(ors, " OR ")+")")
	}
	return strings.Join(parts, " AND "), nil
}

// sortTerms resolves sort keys on rel: ascending puts nulls first and
// descending last (as MongoDB does). It returns each key's column too.
func (b *sqlBuilder) sortTerms(rel *relation, sort []SortKey) ([]orderTerm, error) {
	if len(sort) > maxStageItems {
		return nil, overLimit("more than %d sort keys", maxStageItems)
	}
	var terms []orderTerm
	for _, s := range sort {
		if strings.TrimSpace(s.Key) == "" {
			return nil, qerr("sort key is required")
		}
		col, err := rel.lookup(b, s.Key)
		if err != nil {
			return nil, err
		}
		terms = append(terms, orderTerm{expr: col.expr, desc: s.Desc, nullsLowest: true})
	}
	return terms, nil
}

// tiebreak completes terms into a total order. On a resource's rows the id
// follows the direction of the last sort key, so one index serves a sort
// both ways.
func (rel *relation) complete(terms []orderTerm) []orderTerm {
	if rel.pure() && len(terms) > 0 && terms[len(terms)-1].desc {
		return append(terms, orderTerm{expr: rel.res.Tiebreak, desc: true})
	}
	return append(terms, rel.tiebreak...)
}

func orderClause(terms []orderTerm) string {
	if len(terms) == 0 {
		return ""
	}
	parts := make([]string, len(terms))
	for i, t := range terms {
		parts[i] = t.String()
	}
	return " ORDER BY " + strings.Join(parts, ", ")
}

func limitOffset(p Page) (string, error) {
	if p.Start < 0 || p.Limit < 0 {
		return "", qerr("page.start and page.limit must not be negative")
	}
	if p.Start > maxPageStart {
		return "", overLimit("page.start must be at most %d: narrow the filter instead", maxPageStart)
	}
	out := ""
	if p.Limit > 0 {
		out += " LIMIT " + strconv.Itoa(p.Limit)
	}
	if p.Start > 1 {
		out += " OFFSET " + strconv.Itoa(p.Start-1)
	}
	return out, nil
}

// CheckKeys reports the first key that is not a field of the resource.
func (r Resource) CheckKeys(keys []string) error {
	b := &sqlBuilder{}
	for _, k := range keys {
		if _, err := r.field(b, k); err != nil {
			return err
		}
	}
	return nil
}

// listSQL is a list query's SQL: the count of matching rows (its own
// arguments), and the page of rows with columns.
type listSQL struct {
	count     string
	countArgs []any
	rows      string
	args      []any
	regexKeys []string
}

// errNoScope guards against a Resource without a tenancy scope.
var errNoScope = errors.New("projections: resource has no Visibility")

func buildList(res *Resource, columns string, id auth.Identity, q Query, now time.Time) (listSQL, error) {
	return buildListWithin(res, columns, id, q, now, DefaultLimits())
}

// buildListWithin is buildList within lim: page.limit 0 is the default page,
// and a page may not be larger than lim.MaxPageSize.
func buildListWithin(res *Resource, columns string, id auth.Identity, q Query, now time.Time, lim Limits) (listSQL, error) {
	if res.Visibility == nil {
		return listSQL{}, errNoScope
	}
	if !q.Now.IsZero() {
		now = q.Now
	}
	lim = lim.WithDefaults()
	switch {
	case q.Page.Limit == 0:
		q.Page.Limit = lim.DefaultPageSize
	case q.Page.Limit > lim.MaxPageSize:
		return listSQL{}, overLimit("page.limit must be at most %d (SECRETLOG_MAX_PAGE_SIZE); page through larger results with page.start", lim.MaxPageSize)
	}
	b := &sqlBuilder{now: now, lim: &lim}
	rel := sourceRelation(res, res.Table)
	where, err := b.where(rel, res.Visibility(b, id), q)
	if err != nil {
		return listSQL{}, err
	}
	out := listSQL{count: `SELECT count(*) FROM ` + res.Table + ` WHERE ` + where, countArgs: slices.Clone(b.args)}
	order, err := b.sortTerms(rel, q.Sort)
	if err != nil {
		return listSQL{}, err
	}
	page, err := limitOffset(q.Page)
	if err != nil {
		return listSQL{}, err
	}
	if err := res.CheckKeys(q.Only); err != nil {
		return listSQL{}, within("only", err)
	}
	if err := b.check(); err != nil {
		return listSQL{}, err
	}
	out.rows = `SELECT ` + columns + ` FROM ` + res.Table + ` WHERE ` + where + orderClause(rel.complete(order)) + page
	out.args = b.args
	out.regexKeys = b.regexKeys
	return out, nil
}

// queryFailure turns PostgreSQL's rejection of a caller's value into a
// QueryError, and a statement that ran out of time into an exhausted one;
// anything else stays internal.
func queryFailure(ctx context.Context, err error, regexKeys []string, timeout time.Duration) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "2201B": // invalid_regular_expression
			return qerr("invalid regular expression on key %s: %s", strings.Join(quoteAll(regexKeys), ", "), pg.Message)
		case "57014": // query_canceled: statement_timeout, or the request's context
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return overLimit("the query ran longer than the statement timeout of %s (SECRETLOG_STATEMENT_TIMEOUT): narrow the filter or lower the page size", timeout)
		case "54000", "53200": // program_limit_exceeded, out_of_memory
			return overLimit("the query is too large for the database: narrow the filter or simplify the pipeline")
		}
		if strings.HasPrefix(pg.Code, "22") {
			// data_exception: a value PostgreSQL cannot take (a NUL byte, a
			// number or time out of range). Its message may quote the value:
			// only the condition's name goes back.
			return qerr("a value in the query cannot be used for its key (%s)", dataException(pg.Code))
		}
	}
	return err
}

// dataException names the data exceptions a caller's value can cause.
func dataException(code string) string {
	switch code {
	case "22021", "22P05":
		return "invalid byte sequence, such as a NUL character"
	case "22003":
		return "number out of range"
	case "22008":
		return "time out of range"
	case "22P02", "22007":
		return "invalid text representation"
	case "22001":
		return "string too long"
	}
	return "data exception " + code
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
