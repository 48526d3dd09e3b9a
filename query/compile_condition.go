package query

import (
	"slices"
	"strings"
)

var comparisons = map[string]string{"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}

// condition compiles one checked condition on rel.
func (b *builder) condition(rel *relation, c Condition) string {
	col := rel.column(b, c.Ref)
	switch c.Op {
	case "eq":
		return b.equal(col, c.Values[0], c.Fold, true)
	case "not":
		return negate(b.equal(col, c.Values[0], false, false))
	case "in":
		return b.in(col, c.Values, c.Fold, true)
	case "not_in":
		return negate(b.in(col, c.Values, false, false))
	case "lt", "lte", "gt", "gte":
		return b.compare(col, comparisons[c.Op], c.Values[0])
	case "datetime_lt", "datetime_lte", "datetime_gt", "datetime_gte":
		return b.compare(col, comparisons[strings.TrimPrefix(c.Op, "datetime_")], c.Values[0])
	case "timediff_lt", "timediff_lte", "timediff_gt", "timediff_gte":
		return col.expr + " " + comparisons[strings.TrimPrefix(c.Op, "timediff_")] + " " + b.Bind(c.Values[0].Param) + "::timestamptz"
	case "exists":
		if c.Values[0].Param.(bool) {
			return col.expr + " IS NOT NULL"
		}
		return col.expr + " IS NULL"
	case "contain":
		return b.contain(col, c.Values[0])
	case "not_contain":
		return negate(b.contain(col, c.Values[0]))
	case "contain_in":
		return b.any(col, c.Values, b.contain)
	case "not_contain_in":
		return negate(b.any(col, c.Values, b.contain))
	case "regex":
		b.regexKey(c.Ref.Key)
		return b.regex(col, c.Values[0])
	case "regex_in":
		b.regexKey(c.Ref.Key)
		return b.any(col, c.Values, b.regex)
	case "match":
		return b.match(col, c.Match)
	}
	panic("query: unchecked operator " + c.Op)
}

func negate(s string) string { return "NOT coalesce(" + s + ", false)" }

// never is false, written with the column so that every parameter its
// expression binds (a tag name) is used: PostgreSQL rejects unused ones.
func never(col column) string { return "(" + col.expr + " IS NULL AND false)" }

// any ORs one condition per value; no values match nothing.
func (b *builder) any(col column, vals []Value, one func(column, Value) string) string {
	if len(vals) == 0 {
		return never(col)
	}
	ors := make([]string, len(vals))
	for i, v := range vals {
		ors[i] = one(col, v)
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

func (b *builder) regexKey(key string) {
	if !slices.Contains(b.regexKeys, key) {
		b.regexKeys = append(b.regexKeys, key)
	}
}

// param binds a checked value with the cast of the column's kind.
func (b *builder) param(col column, v Value) string {
	switch col.kind {
	case KindInt:
		return b.Bind(v.Param) + "::numeric"
	case KindTime:
		return b.Bind(v.Param) + "::timestamptz"
	case KindJSON:
		return b.Bind(v.Param) + "::jsonb"
	}
	return b.Bind(v.Param) + "::text"
}

// folded reports whether v compares ignoring case: a string, with fold.
func folded(v Value, fold bool) bool {
	_, ok := v.Raw.(string)
	return fold && ok
}

// lowerText is the lower-cased text of a text column or of a JSON string.
func lowerText(col column) (expr, guard string) {
	if col.kind == KindJSON {
		return "lower(" + col.expr + " #>> '{}')", "jsonb_typeof(" + col.expr + ") = 'string' AND "
	}
	return "lower(" + col.expr + ")", ""
}

// equal is eq: null matches a missing value (and a JSON null); with fold, a
// string matches ignoring case (python-core's iexact). With hint, a tag of
// the table is first tested on the folded tags, which the GIN index answers
// (on text columns lower(x) is itself what the indexes on lower(x) answer).
func (b *builder) equal(col column, v Value, fold, hint bool) string {
	if v.Null() {
		if col.kind == KindJSON {
			return "(" + col.expr + " IS NULL OR " + col.expr + " = 'null'::jsonb)"
		}
		return col.expr + " IS NULL"
	}
	var eq string
	if folded(v, fold) {
		expr, guard := lowerText(col)
		eq = "(" + guard + expr + " = lower(" + b.Bind(v.Raw) + "::text))"
	} else {
		eq = col.expr + " = " + b.param(col, v)
	}
	if hint && hintable(col, v, fold) {
		eq = "(" + b.tagHint(col, v) + " AND " + eq + ")"
	}
	return eq
}

// in is any of the values; null matches a missing value, and with fold
// strings match ignoring case. With hint, on a tag of the table whose every
// value but null is hintable, the values are first tested on the folded
// tags (any of them), which the GIN index answers.
func (b *builder) in(col column, vals []Value, fold, hint bool) string {
	var exact, lower []string
	nullable := false
	for _, v := range vals {
		if v.Null() {
			nullable = true
		} else if !hintable(col, v, fold) {
			hint = false
		}
	}
	var hints []string
	for _, v := range vals {
		switch {
		case v.Null():
			continue
		case folded(v, fold):
			lower = append(lower, "lower("+b.Bind(v.Raw)+"::text)")
		default:
			exact = append(exact, b.param(col, v))
		}
		if hint {
			hints = append(hints, b.tagHint(col, v))
		}
	}
	var arms []string
	if len(exact) > 0 {
		arms = append(arms, col.expr+" IN ("+strings.Join(exact, ", ")+")")
	}
	if len(lower) > 0 {
		expr, guard := lowerText(col)
		arms = append(arms, "("+guard+expr+" IN ("+strings.Join(lower, ", ")+"))")
	}
	var ors []string
	if len(arms) > 0 {
		match := strings.Join(arms, " OR ")
		if len(arms) > 1 {
			match = "(" + match + ")"
		}
		if len(hints) > 0 {
			match = "((" + strings.Join(hints, " OR ") + ") AND " + match + ")"
		}
		ors = append(ors, match)
	}
	if nullable {
		ors = append(ors, b.equal(col, Value{}, false, false))
	}
	switch len(ors) {
	case 0:
		return never(col)
	case 1:
		return ors[0]
	}
	return "(" + strings.Join(ors, " OR ") + ")"
}

// compare is lt, lte, gt, gte. A JSON value compares only with values of
// the same JSON type (numbers with numbers, strings with strings).
func (b *builder) compare(col column, sym string, v Value) string {
	p := b.param(col, v)
	if col.kind == KindJSON {
		return "(jsonb_typeof(" + col.expr + ") = '" + jsonType(v.Raw) + "' AND " + col.expr + " " + sym + " " + p + ")"
	}
	return col.expr + " " + sym + " " + p
}

// text is the SQL text a substring or regex operator matches: a text
// column, or a JSON string (other JSON values never match).
func text(col column) (expr, guard string) {
	if col.kind == KindJSON {
		return "(" + col.expr + " #>> '{}')", "jsonb_typeof(" + col.expr + ") = 'string' AND "
	}
	return col.expr, ""
}

func (b *builder) contain(col column, v Value) string {
	expr, guard := text(col)
	return "(" + guard + "strpos(lower(" + expr + "), lower(" + b.Bind(v.Param) + "::text)) > 0)"
}

// regex matches case-insensitively (Cloudforet passes $options: i), with
// PostgreSQL's regular expression syntax.
func (b *builder) regex(col column, v Value) string {
	expr, guard := text(col)
	return "(" + guard + expr + " ~* " + b.Bind(v.Param) + "::text)"
}

// match is MongoDB's $elemMatch: some element of the array is an object
// whose every term holds. A value that is not an array never matches.
func (b *builder) match(col column, terms []MatchTerm) string {
	conds := []string{"jsonb_typeof(m.e) = 'object'"}
	for _, t := range terms {
		at := "(m.e #> " + b.Bind(t.Path) + "::text[])"
		if t.Null {
			conds = append(conds, "("+at+" IS NULL OR "+at+" = 'null'::jsonb)")
			continue
		}
		conds = append(conds, at+" = "+b.Bind(t.JSON)+"::jsonb")
	}
	return "EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(" + col.expr + ") = 'array' THEN " + col.expr +
		" ELSE '[]'::jsonb END) AS m(e) WHERE " + strings.Join(conds, " AND ") + ")"
}
