package query

// A statistics query compiles to one statement: the caller's visible rows
// that match, then each stage a CTE over the previous one. Everything runs
// in PostgreSQL; the reader only decodes the final rows.

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/secretlog/secretlog/auth"
)

// StatSQL is a compiled statistics query: the rows (one JSON value per
// column, named Names), and the total count when the query has a page.
type StatSQL struct {
	Rows  string
	Count string
	Args  []any
	Names []string
	// Distinct: each row is one value, not an object.
	Distinct  bool
	RegexKeys []string
	// MaxRows is the most result rows the query may return; the SQL asks
	// for one more, to tell "exactly the limit" from "over it".
	MaxRows int
}

// pipeline accumulates the CTEs of a statistics query.
type pipeline struct {
	b    *builder
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

// SQL compiles s for the caller id.
func (s *Stat) SQL(id auth.Identity) (StatSQL, error) {
	b := &builder{}
	p := &pipeline{b: b}
	rel := sourceRelation(s.res, s.res.Table)
	rel = rel.next(p.cte("SELECT * FROM " + s.res.Table + " WHERE " + b.scoped(rel, id, s.Where)))
	out := StatSQL{MaxRows: s.maxRows, Distinct: s.Distinct != nil}
	if s.Distinct != nil {
		rel = p.distinct(rel, *s.Distinct)
	} else {
		for _, st := range s.Stages {
			rel = p.stage(rel, st)
		}
	}
	if err := b.check(); err != nil {
		return StatSQL{}, err
	}
	with := "WITH " + strings.Join(p.ctes, ", ") + " "
	outs := rel.outputs()
	sel := make([]string, len(outs))
	for i, o := range outs {
		sel[i] = toJSON(o.col)
		out.Names = append(out.Names, o.name)
	}
	window := limitOffset(s.Page)
	if s.Page.Limit == 0 {
		// Every row, up to the limit: one more tells that there are more.
		window += " LIMIT " + strconv.Itoa(s.maxRows+1)
	}
	out.Rows = with + "SELECT " + strings.Join(sel, ", ") + " FROM " + rel.from + orderClause(rel.order) + window
	if s.Page.Limit > 0 {
		out.Count = with + "SELECT count(*) FROM " + rel.from
	}
	out.Args = b.values
	out.RegexKeys = b.regexKeys
	return out, nil
}

// distinct: the key's values, not null, in order.
func (p *pipeline) distinct(rel *relation, ref Ref) *relation {
	col := rel.column(p.b, ref)
	a := p.b.alias()
	notNull := col.expr + " IS NOT NULL"
	if col.kind == KindJSON {
		notNull += " AND " + col.expr + " <> 'null'::jsonb"
	}
	from := p.cte("SELECT DISTINCT " + col.expr + " AS " + a + " FROM " + rel.from + " WHERE " + notNull)
	out := &relation{from: from, cols: map[string]column{}}
	out.add(ref.Key, column{expr: a, kind: col.kind})
	out.order = []orderTerm{{expr: a}}
	return out
}

// stage adds st to the pipeline and returns the relation it produces.
func (p *pipeline) stage(rel *relation, st Stage) *relation {
	switch st := st.(type) {
	case GroupStage:
		return p.group(rel, st)
	case CountStage:
		a := p.b.alias()
		out := &relation{cols: map[string]column{}}
		out.add(st.Name, column{expr: a, kind: KindInt})
		out.from = p.cte("SELECT count(*) AS " + a + " FROM " + rel.from)
		return out
	case SortStage:
		return p.sort(rel, st)
	case WindowStage:
		clause := " LIMIT " + strconv.FormatInt(st.N, 10)
		if st.Skip {
			clause = " OFFSET " + strconv.FormatInt(st.N, 10)
		}
		return rel.next(p.cte("SELECT * FROM " + rel.from + orderClause(rel.order) + clause))
	case ProjectStage:
		return p.project(rel, st)
	case UnwindStage:
		return p.unwind(rel, st)
	case MatchStage:
		return rel.next(p.cte("SELECT * FROM " + rel.from + " WHERE " + strings.Join(p.b.where(rel, st.Where), " AND ")))
	}
	panic("query: unchecked stage")
}

// sort computes the sort values in the stage, so later stages and the
// final ORDER BY refer to them by alias.
func (p *pipeline) sort(rel *relation, st SortStage) *relation {
	terms := rel.complete(p.b.sortTerms(rel, st.Keys))
	sel := []string{"*"}
	for i, t := range terms[:len(st.Keys)] {
		a := p.b.alias()
		sel = append(sel, t.expr+" AS "+a)
		terms[i].expr = a
	}
	out := rel.next(p.cte("SELECT " + strings.Join(sel, ", ") + " FROM " + rel.from))
	out.order = terms
	return out
}

// project: the named values (size: an array's length), after the group
// keys unless exclude_keys, in the order of the rows before.
func (p *pipeline) project(rel *relation, st ProjectStage) *relation {
	names := map[string]bool{}
	for _, f := range st.Fields {
		names[f.Name] = true
	}
	out := &relation{cols: map[string]column{}}
	var sel []string
	if !st.ExcludeKeys {
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
	for _, f := range st.Fields {
		col := rel.column(p.b, f.Ref)
		if f.Size {
			col = column{expr: "(CASE WHEN jsonb_typeof(" + col.expr + ") = 'array' THEN jsonb_array_length(" + col.expr + ") END)", kind: KindInt}
		}
		a := p.b.alias()
		sel = append(sel, col.expr+" AS "+a)
		out.add(f.Name, column{expr: a, kind: col.kind})
	}
	ord := p.b.alias()
	sel = append(sel, "row_number() OVER ("+strings.TrimPrefix(orderClause(rel.order), " ")+") AS "+ord)
	out.from = p.cte("SELECT " + strings.Join(sel, ", ") + " FROM " + rel.from)
	out.order = []orderTerm{{expr: ord}}
	out.tiebreak = out.order
	return out
}

// unwind: one row per element of an array (as from push or add_to_set); a
// missing or null value gives no row, a non-array value one.
func (p *pipeline) unwind(rel *relation, st UnwindStage) *relation {
	col := rel.column(p.b, st.Ref)
	elems := "jsonb_array_elements(CASE WHEN " + col.expr + " IS NULL OR " + col.expr + " = 'null'::jsonb THEN '[]'::jsonb WHEN jsonb_typeof(" +
		col.expr + ") = 'array' THEN " + col.expr + " ELSE jsonb_build_array(" + col.expr + ") END) WITH ORDINALITY AS u(u_v, u_o)"
	v, ord := p.b.alias(), p.b.alias()
	terms := append(slices.Clone(rel.order), orderTerm{expr: "u.u_o"})
	from := p.cte("SELECT " + rel.from + ".*, u.u_v AS " + v + ", row_number() OVER (" + strings.TrimPrefix(orderClause(terms), " ") +
		") AS " + ord + " FROM " + rel.from + " CROSS JOIN LATERAL " + elems)
	out := rel.next(from)
	out.add(st.Path, column{expr: v, kind: KindJSON})
	out.order = []orderTerm{{expr: ord}}
	out.tiebreak = out.order
	return out
}
