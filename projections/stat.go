package projections

// Statistics queries (package query parses and compiles them) run here:
// one read-only statement, whose rows Go only decodes.

import (
	"bytes"
	"context"
	"encoding/json"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/query"
)

// Stat answers a StatisticsQuery on res within the caller's scope:
// {"results": [...]} plus "total_count" when page.limit > 0.
func (r *Reader) Stat(ctx context.Context, id auth.Identity, res query.Resource, stat map[string]any) (map[string]any, error) {
	q, err := query.ParseStat(&res, stat, r.limits, r.now())
	if err != nil {
		return nil, err
	}
	sq, err := q.SQL(id)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	err = readOnly(ctx, r.pool, r.limits.StatementTimeout, func(tx pgx.Tx) error {
		if sq.Count != "" {
			var n int64
			if err := tx.QueryRow(ctx, sq.Count, sq.Args...).Scan(&n); err != nil {
				return err
			}
			out["total_count"] = n
		}
		rows, err := tx.Query(ctx, sq.Rows, sq.Args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		results := []any{}
		vals := make([][]byte, len(sq.Names))
		dest := make([]any, len(vals))
		for i := range vals {
			dest[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			if sq.Distinct {
				v, err := decodeJSON(vals[0])
				if err != nil {
					return err
				}
				results = append(results, v)
				continue
			}
			row := make(map[string]any, len(sq.Names))
			for i, name := range sq.Names {
				v, err := decodeJSON(vals[i])
				if err != nil {
					return err
				}
				row[name] = v
			}
			results = append(results, row)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(results) > sq.MaxRows {
			return overLimit("the statistics query has more than %d result rows (SECRETLOG_MAX_STAT_ROWS): add a limit stage or a page", sq.MaxRows)
		}
		out["results"] = results
		return nil
	})
	if err != nil {
		return nil, query.Failure(ctx, err, sq.RegexKeys, r.limits.StatementTimeout)
	}
	return out, nil
}

// decodeJSON decodes a value: integers as int64, other numbers as float64.
func decodeJSON(raw []byte) (any, error) {
	if raw == nil {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f)
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}
