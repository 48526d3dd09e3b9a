package projections

import (
	"time"

	"github.com/secretlog/secretlog/auth"
)

// ListSQLForTest is the SQL and arguments of a list query's page, for the
// benchmark's EXPLAIN.
func ListSQLForTest(res *Resource, id auth.Identity, q Query, now time.Time) (string, []any, error) {
	sq, err := buildList(res, "*", id, q, now)
	return sq.rows, sq.args, err
}

// StatSQLForTest is the SQL and arguments of a statistics query's rows.
func StatSQLForTest(res *Resource, id auth.Identity, stat map[string]any, now time.Time) (string, []any, error) {
	sq, err := buildStat(res, id, stat, now)
	return sq.rows, sq.args, err
}
