package projections

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is a field's type, which decides how values are bound and compared.
type Kind int

// Field kinds.
const (
	KindText Kind = iota
	KindInt
	KindTime
	KindJSON
)

// Field is one queryable field of a resource.
type Field struct {
	Name   string // GraphQL name
	Column string
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

// Page selects a window: Start is 1-based; Limit 0 means no limit.
type Page struct {
	Start int
	Limit int
}

// Query is the list query: filters ANDed, FilterOr ORed (then ANDed), sort, page, keyword.
type Query struct {
	Filter    []Condition
	FilterOr  []Condition
	Sort      []SortKey
	Page      Page
	Keyword   string
	CountOnly bool
}

// QueryError is a malformed query; the API answers INVALID_ARGUMENT with its message.
type QueryError struct{ Msg string }

func (e *QueryError) Error() string { return e.Msg }

func qerr(format string, args ...any) error { return &QueryError{Msg: fmt.Sprintf(format, args...)} }

// sqlBuilder collects SQL text and its parameters: values are only ever bound.
type sqlBuilder struct {
	args []any
}

func (b *sqlBuilder) bind(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

// lookup resolves a key (GraphQL or Cloudforet name, or tags.<key>) to an SQL expression.
func (r Resource) lookup(b *sqlBuilder, key string) (string, Kind, error) {
	if tag, ok := strings.CutPrefix(key, "tags."); ok && tag != "" {
		return "(tags ->> " + b.bind(tag) + ")", KindText, nil
	}
	for _, f := range r.Fields {
		if key == f.Name || key == f.Column {
			return f.Column, f.Kind, nil
		}
	}
	return "", 0, qerr("unknown key %q", key)
}

func (r Resource) condition(b *sqlBuilder, c Condition) (string, error) {
	col, kind, err := r.lookup(b, c.Key)
	if err != nil {
		return "", err
	}
	op := c.Op
	if op == "" {
		op = "eq"
	}
	list, isList := c.Value.([]any)
	switch op {
	case "in", "not_in", "contain_in", "not_contain_in", "regex_in":
		if !isList {
			return "", qerr("operator %q on key %q needs a list value", op, c.Key)
		}
	default:
		if isList {
			return "", qerr("operator %q on key %q takes a single value, not a list", op, c.Key)
		}
	}
	switch op {
	case "eq":
		if c.Value == nil {
			return col + " IS NULL", nil
		}
		v, err := typed(kind, c)
		if err != nil {
			return "", err
		}
		return col + " = " + b.bind(v), nil
	case "not":
		if c.Value == nil {
			return col + " IS NOT NULL", nil
		}
		v, err := typed(kind, c)
		if err != nil {
			return "", err
		}
		return col + " IS DISTINCT FROM " + b.bind(v), nil
	case "lt", "lte", "gt", "gte":
		v, err := typed(kind, c)
		if err != nil {
			return "", err
		}
		sym := map[string]string{"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
		return col + " " + sym + " " + b.bind(v), nil
	case "exists":
		want, ok := c.Value.(bool)
		if !ok {
			return "", qerr("operator \"exists\" on key %q needs true or false", c.Key)
		}
		if want {
			return col + " IS NOT NULL", nil
		}
		return col + " IS NULL", nil
	case "contain", "not_contain":
		s, ok := c.Value.(string)
		if !ok {
			return "", qerr("operator %q on key %q needs a string", op, c.Key)
		}
		expr := "strpos(lower(" + col + "::text), lower(" + b.bind(s) + ")) > 0"
		if op == "not_contain" {
			return "NOT coalesce(" + expr + ", false)", nil
		}
		return expr, nil
	case "in", "not_in":
		vals := make([]string, 0, len(list))
		for _, item := range list {
			v, err := typed(kind, Condition{Key: c.Key, Value: item, Op: op})
			if err != nil {
				return "", err
			}
			vals = append(vals, b.bind(v))
		}
		if len(vals) == 0 {
			if op == "in" {
				return "false", nil
			}
			return "true", nil
		}
		if op == "in" {
			return col + " IN (" + strings.Join(vals, ", ") + ")", nil
		}
		return "(" + col + " IS NULL OR " + col + " NOT IN (" + strings.Join(vals, ", ") + "))", nil
	case "regex":
		s, ok := c.Value.(string)
		if !ok {
			return "", qerr("operator \"regex\" on key %q needs a string", c.Key)
		}
		return col + "::text ~ " + b.bind(s), nil
	}
	return "", qerr("unknown operator %q on key %q", op, c.Key)
}

// typed checks a value against the field kind and converts it for binding.
func typed(kind Kind, c Condition) (any, error) {
	switch kind {
	case KindInt:
		switch v := c.Value.(type) {
		case float64:
			return int64(v), nil
		case int:
			return int64(v), nil
		case int64:
			return v, nil
		case string:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, qerr("key %q needs an integer", c.Key)
			}
			return n, nil
		}
		return nil, qerr("key %q needs an integer", c.Key)
	case KindText, KindTime:
		switch v := c.Value.(type) {
		case string:
			return v, nil
		case float64, bool, int, int64:
			if kind == KindTime {
				return nil, qerr("key %q needs an ISO 8601 time", c.Key)
			}
			return fmt.Sprint(v), nil
		}
		return nil, qerr("key %q needs a string", c.Key)
	}
	return nil, qerr("key %q cannot be compared", c.Key)
}

// where builds the WHERE clause: scope AND request filters AND filter AND (filterOr) AND keyword.
func (r Resource) where(b *sqlBuilder, scope string, q Query) (string, error) {
	parts := []string{scope}
	for _, c := range q.Filter {
		s, err := r.condition(b, c)
		if err != nil {
			return "", err
		}
		parts = append(parts, s)
	}
	if len(q.FilterOr) > 0 {
		var ors []string
		for _, c := range q.FilterOr {
			s, err := r.condition(b, c)
			if err != nil {
				return "", err
			}
			ors = append(ors, s)
		}
		parts = append(parts, "("+strings.Join(ors, " OR ")+")")
	}
	for _, word := range strings.Fields(q.Keyword) {
		p := b.bind(strings.ToLower(word))
		var ors []string
		for _, col := range r.Keyword {
			ors = append(ors, "strpos(lower(coalesce("+col+", '')), "+p+") > 0")
		}
		parts = append(parts, "("+strings.Join(ors, " OR ")+")")
	}
	return strings.Join(parts, " AND "), nil
}

func (r Resource) orderBy(b *sqlBuilder, sort []SortKey) (string, error) {
	var keys []string
	for _, s := range sort {
		col, _, err := r.lookup(b, s.Key)
		if err != nil {
			return "", err
		}
		dir := " ASC NULLS FIRST"
		if s.Desc {
			dir = " DESC NULLS LAST"
		}
		keys = append(keys, col+dir)
	}
	keys = append(keys, r.Tiebreak)
	return " ORDER BY " + strings.Join(keys, ", "), nil
}

func limitOffset(p Page) (string, error) {
	if p.Start < 0 || p.Limit < 0 {
		return "", qerr("page.start and page.limit must not be negative")
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
		if _, _, err := r.lookup(b, k); err != nil {
			return err
		}
	}
	return nil
}
