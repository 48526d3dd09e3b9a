package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/events"
)

// compare brings every shadow to exactly what the live tables reflect and
// diffs each table pair. It runs in one REPEATABLE READ transaction: inline
// read models commit with their events, so its snapshot sees the live tables
// exactly as of the events it sees; an asynchronous projection is compared
// as of its offset in the same snapshot. Nothing is held back.
func (r *rebuild) compare(ctx context.Context, shadows []*shadow) ([]Difference, error) {
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, s := range shadows {
		if !s.async {
			continue
		}
		offset, err := asyncOffset(ctx, tx, s.live.Name())
		if err != nil {
			return nil, err
		}
		if offset.Before(s.cursor) {
			return nil, fmt.Errorf("%s: the replay passed the live offset (was the projection reset?); run the check again", s.live.Name())
		}
		s.bound = &offset
	}
	if err := r.tail(ctx, tx, shadows, true); err != nil {
		return nil, err
	}
	var out []Difference
	for _, s := range shadows {
		if !s.swap {
			continue
		}
		for _, t := range s.live.Tables() {
			diffs, err := diffTable(ctx, tx, s.live.Name(), t)
			if err != nil {
				return nil, err
			}
			out = append(out, diffs...)
		}
	}
	return out, nil
}

// asyncOffset is the last event an asynchronous projection applied: its
// position as a consumer of a remote log, else its watermill-sql offset.
func asyncOffset(ctx context.Context, q events.Querier, name string) (events.Cursor, error) {
	var remote bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+PositionsTable+` WHERE consumer = $1)`, name).Scan(&remote); err != nil {
		return events.Cursor{}, err
	}
	if remote {
		return Position(ctx, q, name)
	}
	var commit, position int64
	err := q.QueryRow(ctx, `SELECT last_processed_transaction_id::text::bigint, offset_acked FROM `+events.OffsetsTable+`
		WHERE consumer_group = $1`, name).Scan(&commit, &position)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.Cursor{}, nil
	}
	return events.Cursor{Commit: uint64(commit), Position: position}, err
}

// diffTable lists the rows of table and its shadow that differ, by primary key.
func diffTable(ctx context.Context, tx pgx.Tx, projection, table string) ([]Difference, error) {
	keyCols, err := columnNames(ctx, tx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
		WHERE i.indrelid = $1::regclass AND i.indisprimary
		ORDER BY array_position(i.indkey::int2[], a.attnum)`, table)
	if err != nil {
		return nil, err
	}
	if len(keyCols) == 0 {
		return nil, fmt.Errorf("%s has no primary key to compare rows by", table)
	}
	cols, err := columnNames(ctx, tx, `SELECT attname FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, table)
	if err != nil {
		return nil, err
	}
	only := func(a, b string) (map[string]map[string]json.RawMessage, error) {
		rows, err := tx.Query(ctx, `SELECT to_jsonb(x) FROM (SELECT * FROM `+ident(a)+` EXCEPT SELECT * FROM `+ident(b)+`) x`)
		if err != nil {
			return nil, err
		}
		raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			return nil, err
		}
		out := map[string]map[string]json.RawMessage{}
		for _, raw := range raws {
			var row map[string]json.RawMessage
			if err := json.Unmarshal(raw, &row); err != nil {
				return nil, err
			}
			out[rowKey(keyCols, row)] = row
		}
		return out, nil
	}
	liveOnly, err := only(table, shadowTable(table))
	if err != nil {
		return nil, err
	}
	shadowOnly, err := only(shadowTable(table), table)
	if err != nil {
		return nil, err
	}
	var out []Difference
	for key, l := range liveOnly {
		d := Difference{Projection: projection, Table: table, Key: key, Kind: DiffExtra}
		if s, ok := shadowOnly[key]; ok {
			d.Kind = DiffChanged
			for _, c := range cols {
				if string(l[c]) == string(s[c]) {
					continue
				}
				cd := ColumnDiff{Column: c, Live: string(l[c]), Rebuilt: string(s[c])}
				if sensitiveColumns[c] {
					cd.Live, cd.Rebuilt = "[redacted]", "[redacted]"
				}
				d.Columns = append(d.Columns, cd)
			}
		}
		out = append(out, d)
	}
	for key := range shadowOnly {
		if _, ok := liveOnly[key]; !ok {
			out = append(out, Difference{Projection: projection, Table: table, Key: key, Kind: DiffMissing})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// columnNames runs a query returning one name per row.
func columnNames(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// rowKey renders a row's primary key as "col=value[,col=value]".
func rowKey(keyCols []string, row map[string]json.RawMessage) string {
	parts := make([]string, len(keyCols))
	for i, c := range keyCols {
		v := string(row[c])
		var s string
		if json.Unmarshal(row[c], &s) == nil {
			v = s
		}
		parts[i] = c + "=" + v
	}
	return strings.Join(parts, ",")
}
