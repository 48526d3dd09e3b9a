package query

// Compiling a checked query to PostgreSQL. Everything a caller wrote is
// either a looked-up identifier or a bound parameter: no caller text is
// ever spliced into SQL. The caller's tenancy scope is always part of the
// WHERE clause.

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/secretlog/secretlog/auth"
)

// builder collects SQL parameters and names.
type builder struct {
	Args
	// regexKeys are the keys with a regex condition, to name them if
	// PostgreSQL rejects a pattern.
	regexKeys []string
	aliases   int
}

// alias is a fresh SQL identifier for a stage's output column: names chosen
// by the caller never become identifiers.
func (b *builder) alias() string {
	b.aliases++
	return "c_" + strconv.Itoa(b.aliases)
}

func (b *builder) check() error {
	if len(b.values) > maxParams {
		return qerr("query too large: more than %d values", maxParams)
	}
	return nil
}

// FoldedTags is the tags column as eq and in compare it: every string
// value lower-cased, keys and other values as they are. The read models'
// GIN indexes on tags index this expression (jsonb_path_ops), so
// FoldedTags @> {"key": lower(v)} is answered from the index; it holds
// exactly when the tag is a string equal to v ignoring case, and for a
// number or boolean v exactly when the tag is v. secretlog_fold_tags (the
// projections package defines it) builds the folded document; when lower()
// changes nothing in the document's text, no string value has a case to
// fold and the document is its own folded form, without a function call.
const FoldedTags = "(CASE WHEN lower(tags::text) = tags::text THEN tags ELSE secretlog_fold_tags(tags) END)"

// column is a value a query can refer to: a read-model column, a tag, or
// the output of an aggregate stage.
type column struct {
	expr string // SQL expression
	kind Kind
	// tag is set for tags.<key> of the read-model table itself (tagged):
	// eq and in can then add a containment test on FoldedTags, which the
	// GIN index answers. Later stages read a CTE, where no index helps.
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
	// push, merge_objects and the final result.
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

// column is the SQL of a resolved key on rel.
func (rel *relation) column(b *builder, r Ref) column {
	switch {
	case r.Output != "" && r.Path != "":
		return column{expr: "(" + rel.cols[r.Output].expr + " -> " + b.Bind(r.Path) + "::text)", kind: KindJSON}
	case r.Output != "":
		return rel.cols[r.Output]
	case r.Tag != "":
		tagged := rel.res != nil && rel.from == rel.res.Table
		return column{expr: "(tags -> " + b.Bind(r.Tag) + "::text)", kind: KindJSON, tag: r.Tag, tagged: tagged}
	}
	return column{expr: r.Column, kind: r.Kind}
}

// complete completes terms into a total order. On a resource's rows the id
// follows the direction of the last sort key, so one index serves a sort
// both ways.
func (rel *relation) complete(terms []orderTerm) []orderTerm {
	if rel.pure() && len(terms) > 0 && terms[len(terms)-1].desc {
		return append(terms, orderTerm{expr: rel.res.Tiebreak, desc: true})
	}
	return append(terms, rel.tiebreak...)
}

func (b *builder) sortTerms(rel *relation, sorts []Sort) []orderTerm {
	terms := make([]orderTerm, 0, len(sorts))
	for _, s := range sorts {
		terms = append(terms, orderTerm{expr: rel.column(b, s.Ref).expr, desc: s.Desc, nullsLowest: true})
	}
	return terms
}

// where compiles w on rel: the AND conditions, and the OR group.
func (b *builder) where(rel *relation, w Where) []string {
	var parts []string
	for _, c := range w.And {
		parts = append(parts, b.condition(rel, c))
	}
	if len(w.Or) > 0 {
		ors := make([]string, len(w.Or))
		for i, c := range w.Or {
			ors[i] = b.condition(rel, c)
		}
		parts = append(parts, "("+strings.Join(ors, " OR ")+")")
	}
	return parts
}

// scoped is the caller's scope AND the conditions of w on the resource's rows.
func (b *builder) scoped(rel *relation, id auth.Identity, w Where) string {
	parts := append([]string{"(" + rel.res.Visibility(&b.Args, id) + ")"}, b.where(rel, w)...)
	return strings.Join(parts, " AND ")
}

// SQL is a compiled list query: the count of matching rows (with its own
// arguments) and the page of rows.
type SQL struct {
	Count     string
	CountArgs []any
	Rows      string
	Args      []any
	// RegexKeys name the keys with a regular expression, for Failure.
	RegexKeys []string
}

// SQL compiles q for the caller id, selecting columns.
func (q *Query) SQL(id auth.Identity, columns string) (SQL, error) {
	b := &builder{}
	rel := sourceRelation(q.res, q.res.Table)
	where := b.scoped(rel, id, q.Where)
	out := SQL{Count: `SELECT count(*) FROM ` + q.res.Table + ` WHERE ` + where, CountArgs: slices.Clone(b.values)}
	order := rel.complete(b.sortTerms(rel, q.Sort))
	if err := b.check(); err != nil {
		return SQL{}, err
	}
	out.Rows = `SELECT ` + columns + ` FROM ` + q.res.Table + ` WHERE ` + where + orderClause(order) + limitOffset(q.Page)
	out.Args = b.values
	out.RegexKeys = b.regexKeys
	return out, nil
}

func limitOffset(p Page) string {
	out := ""
	if p.Limit > 0 {
		out += " LIMIT " + strconv.Itoa(p.Limit)
	}
	if p.Start > 1 {
		out += " OFFSET " + strconv.Itoa(p.Start-1)
	}
	return out
}

// hintable reports whether an eq or in value v of col gets a tagHint: a
// tag of the table, and a string (compared ignoring case: fold), a number
// or a boolean. Null, arrays and objects get none, nor strings compared
// exactly (only not and not_in do, where no index helps).
func hintable(col column, v Value, fold bool) bool {
	if !col.tagged {
		return false
	}
	switch v.Raw.(type) {
	case nil, map[string]any, []any:
		return false
	case string:
		return fold
	}
	js, ok := v.Param.(string)
	return ok && json.Valid([]byte(js))
}

// tagHint is FoldedTags @> {"key": value} for a hintable value: the GIN
// index on the folded tags answers it, and the comparison that follows it
// decides. A string is lower-cased by PostgreSQL, as the comparison does.
func (b *builder) tagHint(col column, v Value) string {
	if s, ok := v.Raw.(string); ok {
		return FoldedTags + " @> jsonb_object(ARRAY[" + b.Bind(col.tag) + "::text], ARRAY[lower(" + b.Bind(s) + "::text)])"
	}
	obj, _ := json.Marshal(map[string]json.RawMessage{col.tag: json.RawMessage(v.Param.(string))})
	return FoldedTags + " @> " + b.Bind(string(obj)) + "::jsonb"
}
