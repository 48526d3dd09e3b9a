package query

import "time"

// --- what callers write ------------------------------------------------------

// Filter is one condition as written: key, value, operator (Cloudforet's
// k, v, o; eq when the operator is empty).
type Filter struct {
	Key   string
	Value any
	Op    string
}

// SortKey orders results, as written.
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

// Input is a list query as written (Cloudforet's Query, GraphQL's
// QueryInput): ParseList checks it and resolves every key once.
type Input struct {
	Filter    []Filter
	FilterOr  []Filter
	Sort      []SortKey
	Page      Page
	Keyword   string
	CountOnly bool
	// Only names the fields to answer; Minimal adds the resource's minimal
	// fields. Fields outside them answer null (the id always answers).
	Only    []string
	Minimal bool
	// Now is the instant timediff_* operators count from; zero means the
	// reader's clock.
	Now time.Time
}

// --- what the translator compiles ----------------------------------------------

// Ref is a key resolved against what a query reads: a field of the
// resource, one of its tags, or a named output of an earlier stage (or a
// key into a JSON output).
type Ref struct {
	Key    string // as the caller wrote it, for messages
	Kind   Kind
	Column string // a resource field's column
	Field  string // a resource field's GraphQL name
	Tag    string // tags.<Tag>
	Output string // a stage output's name
	Path   string // a key into the JSON output (Output.Path)
}

// Value is one checked value of a condition: Param is what is bound (with
// a cast for the key's kind), Raw what the caller wrote.
type Value struct {
	Raw   any
	Param any
}

// Null reports whether the caller wrote null.
func (v Value) Null() bool { return v.Raw == nil }

// MatchTerm is one field of a match operator's value: the element's value
// at Path equals JSON (or is missing or null, when Null).
type MatchTerm struct {
	Path []string
	JSON string
	Null bool
}

// Condition is one checked filter condition.
type Condition struct {
	Ref Ref
	Op  string // a key of operators
	// Values holds the value of a single-value operator, or the items of a
	// list operator; exists holds a bool, timediff_* the instant.
	Values []Value
	// Fold: eq and in compare strings ignoring case (python-core's iexact).
	Fold bool
	// Match is the value of the match operator.
	Match []MatchTerm
}

// Where is filter AND (filter_or, keyword ORed).
type Where struct {
	And []Condition
	Or  []Condition
}

// Sort is one checked sort key.
type Sort struct {
	Ref  Ref
	Desc bool
}

// Query is a checked list query.
type Query struct {
	Where     Where
	Sort      []Sort
	Page      Page // Limit is never 0: the default page is filled in
	CountOnly bool
	// Fields are the GraphQL names answered; nil answers every field.
	Fields []string
	res    *Resource
}

// Answers reports whether the list answers the field (GraphQL name).
func (q *Query) Answers(field string) bool {
	if q.Fields == nil {
		return true
	}
	for _, f := range q.Fields {
		if f == field {
			return true
		}
	}
	return false
}

// Stat is a checked statistics query: Where selects the rows, then either
// Distinct or the Stages run on them.
type Stat struct {
	Where    Where
	Distinct *Ref
	Stages   []Stage
	Page     Page
	maxRows  int
	res      *Resource
}

// Stage is one stage of an aggregate pipeline.
type Stage interface{ stage() string }

// GroupStage groups by Keys and computes Fields per group.
type GroupStage struct {
	Keys   []GroupKey
	Fields []GroupField
}

// GroupKey is one group key. DatePart is year, month or day; ToChar a
// to_char format translated from a date_format.
type GroupKey struct {
	Name     string
	Ref      Ref
	DatePart string
	ToChar   string
}

// GroupField is one aggregate of a group stage; Where restricts the rows
// it aggregates (conditions). Ref is unset for count; Push lists push's
// fields.
type GroupField struct {
	Name  string
	Op    string
	Ref   *Ref
	Where []Condition
	Push  []PushField
}

// PushField is one {key, name} of a push with fields.
type PushField struct {
	Name string
	Ref  Ref
}

// CountStage counts the rows into one row named Name.
type CountStage struct{ Name string }

// SortStage orders the rows.
type SortStage struct{ Keys []Sort }

// WindowStage is limit (Skip false) or skip N rows.
type WindowStage struct {
	Skip bool
	N    int64
}

// ProjectStage keeps Fields (after the group keys unless ExcludeKeys).
type ProjectStage struct {
	Fields      []ProjectField
	ExcludeKeys bool
}

// ProjectField is one projected value; Size is the size operator.
type ProjectField struct {
	Name string
	Ref  Ref
	Size bool
}

// UnwindStage makes one row per element of the array at Ref, named Path.
type UnwindStage struct {
	Path string
	Ref  Ref
}

// MatchStage keeps the rows that match.
type MatchStage struct{ Where Where }

func (GroupStage) stage() string   { return "group" }
func (CountStage) stage() string   { return "count" }
func (SortStage) stage() string    { return "sort" }
func (WindowStage) stage() string  { return "limit" }
func (ProjectStage) stage() string { return "project" }
func (UnwindStage) stage() string  { return "unwind" }
func (MatchStage) stage() string   { return "match" }
