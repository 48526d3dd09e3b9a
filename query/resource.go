package query

import (
	"strconv"
	"strings"

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

// Resource describes a read-model table to the translator: the same code
// serves every resource. Its owner (projections) defines one per table.
type Resource struct {
	Table  string
	Fields []Field
	// Keyword lists the columns a keyword searches (python-core's
	// append_keyword_filter keys): one contain_in per column, ORed.
	Keyword []string
	// Exact lists the columns that eq and in compare case-sensitively
	// (python-core's exact_fields); on every other text field and on
	// string tag values, eq and in ignore case (python-core's iexact).
	Exact []string
	// Minimal lists the fields (GraphQL names) a minimal list answers
	// (python-core's minimal_fields).
	Minimal []string
	// Tiebreak is appended to every ORDER BY so pages are stable; it is
	// also the field every list answers, whatever only and minimal say.
	Tiebreak string
	// Visibility is the caller's tenancy scope as an SQL condition; every
	// value it uses is bound with a.Bind.
	Visibility func(a *Args, id auth.Identity) string
}

// Args collects the parameters of one SQL statement: values are only ever
// bound, never spliced.
type Args struct {
	values []any
}

// Bind adds v and returns its placeholder ($n).
func (a *Args) Bind(v any) string {
	a.values = append(a.values, v)
	return "$" + strconv.Itoa(len(a.values))
}

// Values are the bound values, in placeholder order.
func (a *Args) Values() []any { return a.values }

// field resolves a key of the resource: GraphQL or Cloudforet name, or
// tags.<key> (the rest of the key is the tag name, dots included).
func (r *Resource) field(key string) (Ref, error) {
	if tag, ok := strings.CutPrefix(key, "tags."); ok {
		if tag == "" {
			return Ref{}, qerr("unknown key %q: name the tag, as in tags.env", key)
		}
		return Ref{Key: key, Kind: KindJSON, Tag: tag}, nil
	}
	for _, f := range r.Fields {
		if key == f.Name || key == f.Column {
			return Ref{Key: key, Kind: f.Kind, Column: f.Column, Field: f.Name}, nil
		}
	}
	return Ref{}, qerr("unknown key %q", key)
}

// byColumn is the field stored in column.
func (r *Resource) byColumn(column string) (Field, bool) {
	for _, f := range r.Fields {
		if f.Column == column {
			return f, true
		}
	}
	return Field{}, false
}

// idField is the GraphQL name of the tiebreak column: the resource's id.
func (r *Resource) idField() string {
	if f, ok := r.byColumn(r.Tiebreak); ok {
		return f.Name
	}
	return r.Tiebreak
}

// exact reports whether column compares case-sensitively in eq and in.
func (r *Resource) exact(column string) bool {
	for _, c := range r.Exact {
		if c == column {
			return true
		}
	}
	return false
}

// CheckKeys reports the first key that is not a field of the resource.
func (r *Resource) CheckKeys(keys []string) error {
	for _, k := range keys {
		if _, err := r.field(k); err != nil {
			return err
		}
	}
	return nil
}
