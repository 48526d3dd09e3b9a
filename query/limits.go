package query

import "time"

// Limits bound what one list or statistics query may cost. A zero field
// takes its default (DefaultLimits); the README's Limits table lists each
// with the variable that sets it.
type Limits struct {
	// DefaultPageSize is a list's page when page.limit is 0 or missing (100).
	DefaultPageSize int
	// MaxPageSize is the largest page.limit of a list (1000).
	MaxPageSize int
	// MaxConditions bounds the filter conditions of one query: filter,
	// filter_or, match and conditions of every stage, and keyword words (50).
	MaxConditions int
	// MaxListValues bounds the values of one list operator (in, not_in,
	// contain_in, regex_in, ...) (500).
	MaxListValues int
	// MaxRegexLength bounds a regular expression, in bytes (256).
	MaxRegexLength int
	// MaxStatStages bounds the stages of an aggregate pipeline (10).
	MaxStatStages int
	// MaxStatAccumulators bounds push, add_to_set and merge_objects fields
	// over a whole pipeline (4); they build values whose size is the
	// number of rows.
	MaxStatAccumulators int
	// MaxStatUnwinds bounds unwind stages (2): each multiplies the rows.
	MaxStatUnwinds int
	// MaxStatRows bounds the result rows of a statistics query (1000); more
	// is RESOURCE_EXHAUSTED, so results are never silently cut.
	MaxStatRows int
	// StatementTimeout bounds each SQL statement of a list or statistics
	// query (5s).
	StatementTimeout time.Duration
}

// DefaultLimits are the limits a reader applies unless told otherwise.
func DefaultLimits() Limits {
	return Limits{
		DefaultPageSize:     100,
		MaxPageSize:         1000,
		MaxConditions:       50,
		MaxListValues:       500,
		MaxRegexLength:      256,
		MaxStatStages:       10,
		MaxStatAccumulators: 4,
		MaxStatUnwinds:      2,
		MaxStatRows:         1000,
		StatementTimeout:    5 * time.Second,
	}
}

// WithDefaults fills every zero field from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	fill := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&l.DefaultPageSize, d.DefaultPageSize)
	fill(&l.MaxPageSize, d.MaxPageSize)
	fill(&l.MaxConditions, d.MaxConditions)
	fill(&l.MaxListValues, d.MaxListValues)
	fill(&l.MaxRegexLength, d.MaxRegexLength)
	fill(&l.MaxStatStages, d.MaxStatStages)
	fill(&l.MaxStatAccumulators, d.MaxStatAccumulators)
	fill(&l.MaxStatUnwinds, d.MaxStatUnwinds)
	fill(&l.MaxStatRows, d.MaxStatRows)
	if l.StatementTimeout <= 0 {
		l.StatementTimeout = d.StatementTimeout
	}
	l.DefaultPageSize = min(l.DefaultPageSize, l.MaxPageSize)
	return l
}

// maxPageStart bounds page.start: skipping millions of rows costs as much
// as reading them.
const maxPageStart = 1_000_000

// maxStageItems bounds the keys and fields of one group, project, sort or
// match value.
const maxStageItems = 50

// maxParams bounds the values one query may bind (PostgreSQL allows 65535).
const maxParams = 10000
