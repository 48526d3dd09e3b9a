package query

import (
	"slices"
	"strconv"
	"strings"
)

// group: groups come out ordered by their keys; with no keys, one group of
// every row (none when there are no rows).
func (p *pipeline) group(rel *relation, g GroupStage) *relation {
	out := &relation{cols: map[string]column{}}
	var sel, groupBy []string
	for _, k := range g.Keys {
		col := p.groupKey(rel, k)
		a := p.b.alias()
		sel = append(sel, col.expr+" AS "+a)
		groupBy = append(groupBy, strconv.Itoa(len(sel)))
		out.add(k.Name, column{expr: a, kind: col.kind})
		out.keys = append(out.keys, k.Name)
		out.tiebreak = append(out.tiebreak, orderTerm{expr: a, nullsLowest: true})
	}
	for _, f := range g.Fields {
		col := p.groupField(rel, f)
		a := p.b.alias()
		sel = append(sel, col.expr+" AS "+a)
		out.add(f.Name, column{expr: a, kind: col.kind})
	}
	body := "SELECT " + strings.Join(sel, ", ") + " FROM " + rel.from
	if len(groupBy) > 0 {
		body += " GROUP BY " + strings.Join(groupBy, ", ")
	} else {
		body += " HAVING count(*) > 0"
	}
	out.from = p.cte(body)
	out.order = out.tiebreak
	return out
}

func (p *pipeline) groupKey(rel *relation, k GroupKey) column {
	col := rel.column(p.b, k.Ref)
	utc := "((" + col.expr + ") AT TIME ZONE 'UTC')"
	switch {
	case k.DatePart != "":
		return column{expr: "(extract(" + k.DatePart + " FROM " + utc + ")::int)", kind: KindInt}
	case k.ToChar != "":
		return column{expr: "to_char(" + utc + ", " + p.b.Bind(k.ToChar) + "::text)", kind: KindText}
	case col.kind == KindJSON:
		// A missing value and a JSON null are one group, as in MongoDB.
		col.expr = "NULLIF(" + col.expr + ", 'null'::jsonb)"
	}
	return col
}

// aggregate is one aggregate call restricted to the rows filter selects
// (an SQL FILTER): count and sum count and add only the matching rows,
// average averages them.
type aggregate struct{ filter []string }

func (a aggregate) call(expr string, extra ...string) string {
	f := append(slices.Clone(a.filter), extra...)
	if len(f) == 0 {
		return expr
	}
	return expr + " FILTER (WHERE " + strings.Join(f, " AND ") + ")"
}

// groupField is one aggregate of a group stage.
func (p *pipeline) groupField(rel *relation, f GroupField) column {
	agg := aggregate{p.b.where(rel, Where{And: f.Where})}
	switch f.Op {
	case "count":
		return column{expr: agg.call("count(*)"), kind: KindInt}
	case "push":
		if f.Push != nil {
			return p.pushObjects(rel, agg, f.Push)
		}
	}
	col := rel.column(p.b, *f.Ref)
	switch f.Op {
	case "sum", "average":
		return numericAggregate(agg, f.Op, col)
	case "max", "min":
		if col.kind == KindJSON {
			// jsonb has an order but no max(): the first of the sorted values.
			t := orderTerm{expr: col.expr, desc: f.Op == "max"}
			return column{expr: "(" + agg.call("array_agg("+col.expr+orderClause([]orderTerm{t})+")",
				col.expr+" IS NOT NULL", col.expr+" <> 'null'::jsonb") + ")[1]", kind: col.kind}
		}
		return column{expr: agg.call(f.Op + "(" + col.expr + ")"), kind: col.kind}
	case "first", "last":
		order := rel.order
		if f.Op == "last" {
			order = reversed(order)
		}
		return column{expr: "(" + agg.call("array_agg("+col.expr+orderClause(order)+")") + ")[1]", kind: col.kind}
	case "push":
		return column{expr: "coalesce(" + agg.call("jsonb_agg("+toJSON(col)+orderClause(rel.order)+")") + ", '[]'::jsonb)", kind: KindJSON}
	case "add_to_set":
		v := toJSON(col)
		return column{expr: "coalesce(" + agg.call("jsonb_agg(DISTINCT "+v+" ORDER BY "+v+")", col.expr+" IS NOT NULL") + ", '[]'::jsonb)", kind: KindJSON}
	case "merge_objects":
		return mergeObjects(agg, rel, col)
	}
	panic("query: unchecked group operator " + f.Op)
}

func numericAggregate(agg aggregate, op string, col column) column {
	numeric := col.expr
	if col.kind == KindJSON {
		numeric = "(CASE WHEN jsonb_typeof(" + col.expr + ") = 'number' THEN (" + col.expr + ")::numeric END)"
	}
	if op == "sum" {
		return column{expr: "coalesce(" + agg.call("sum("+numeric+")") + ", 0)", kind: KindInt}
	}
	return column{expr: "(" + agg.call("avg("+numeric+")") + ")::float8", kind: KindInt}
}

// pushObjects is push with fields: one {name: value} object per row.
func (p *pipeline) pushObjects(rel *relation, agg aggregate, fields []PushField) column {
	var pairs []string
	for _, f := range fields {
		pairs = append(pairs, p.b.Bind(f.Name)+"::text", toJSON(rel.column(p.b, f.Ref)))
	}
	return column{expr: "coalesce(" + agg.call("jsonb_agg(jsonb_build_object("+strings.Join(pairs, ", ")+")"+orderClause(rel.order)+")") + ", '[]'::jsonb)", kind: KindJSON}
}

// mergeObjects is MongoDB's $mergeObjects accumulator: the objects of the
// group merged into one, in the rows' order, so a later row's value of a
// key wins; missing, null and non-object values are skipped; no objects
// give {}.
func mergeObjects(agg aggregate, rel *relation, col column) column {
	objects := agg.call("jsonb_agg("+col.expr+orderClause(rel.order)+")", "jsonb_typeof("+col.expr+") = 'object'")
	return column{expr: "(SELECT coalesce(jsonb_object_agg(e.key, e.value ORDER BY o.n), '{}'::jsonb) FROM jsonb_array_elements(coalesce(" +
		objects + ", '[]'::jsonb)) WITH ORDINALITY AS o(obj, n) CROSS JOIN LATERAL jsonb_each(o.obj) AS e)", kind: KindJSON}
}
