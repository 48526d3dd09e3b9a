package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/events"
)

// RebuildSuffix names the shadow tables a rebuild fills: <table>_rebuild.
const RebuildSuffix = "_rebuild"

const (
	// defaultRebuildBatch is how many events one replay transaction applies.
	defaultRebuildBatch = 2000
	// defaultLockTimeout bounds how long the swap waits for a table or the
	// checkpoint row, so a stuck reader cannot hang the rebuild (or, queued
	// behind it, every other reader) forever.
	defaultLockTimeout = 10 * time.Second
	// swapAttempts: a swap that timed out on a lock is retried this often.
	swapAttempts = 3
	// rebuildLockSpace is the first key of the advisory locks that keep two
	// rebuilds of one projection from sharing its shadow tables.
	rebuildLockSpace = 0x5eb1d
)

// ErrRebuildRunning: another rebuild (or check) of the projection is running.
var ErrRebuildRunning = errors.New("projections: a rebuild of this projection is already running")

// Progress receives rebuild progress: events replayed so far and the total
// (the size of the log at the start, growing if writers outrun it).
type Progress func(done, total int64)

// RebuildOptions configure RebuildOnline.
type RebuildOptions struct {
	// Projections to rebuild; nil means All().
	Projections []Projection
	// Check only compares: it replays into shadow tables up to each live
	// checkpoint, reports every difference and changes nothing.
	Check bool
	// Progress, when set, is called after every batch.
	Progress Progress
	// BatchSize is how many events one replay transaction applies (default 2000).
	BatchSize int
	// LockTimeout bounds each wait for a lock during the swap (default 10s).
	LockTimeout time.Duration
}

// RebuildReport is what RebuildOnline did.
type RebuildReport struct {
	Projections []ProjectionRebuild
	// Differences (Check only) between the live read models and a fresh
	// replay, ordered by table and key.
	Differences []Difference
	Took        time.Duration
}

// ProjectionRebuild is the outcome for one projection.
type ProjectionRebuild struct {
	Name string
	// Events is how many events the shadow applied: the whole log up to
	// Cursor (after a swap, also the checkpoint's events_applied).
	Events int64
	Cursor events.Cursor
	// Took is the time from the start of the rebuild until the swap (or the
	// comparison) of this projection committed.
	Took time.Duration
}

// DiffKind says how a read-model row differs from the replayed one.
type DiffKind string

// The kinds of difference.
const (
	// DiffChanged: both have the row, some columns differ.
	DiffChanged DiffKind = "changed"
	// DiffMissing: the replay has the row, the live read model does not.
	DiffMissing DiffKind = "missing"
	// DiffExtra: the live read model has a row the replay does not.
	DiffExtra DiffKind = "extra"
)

// Difference is one row that differs between a live table and its replay.
type Difference struct {
	Projection string
	Table      string
	// Key is the row's primary key as "column=value[,column=value]".
	Key     string
	Kind    DiffKind
	Columns []ColumnDiff // DiffChanged only
}

// ColumnDiff is one differing column, with both values as JSON.
type ColumnDiff struct {
	Column  string
	Live    string
	Rebuilt string
}

func (d Difference) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", d.Table, d.Key, d.Kind)
	switch d.Kind {
	case DiffMissing:
		b.WriteString(" (the log has this row, the read model does not)")
	case DiffExtra:
		b.WriteString(" (the read model has this row, the log does not)")
	}
	for _, c := range d.Columns {
		fmt.Fprintf(&b, "\n    %s: live %s, rebuilt %s", c.Column, c.Live, c.Rebuilt)
	}
	return b.String()
}

// sensitiveColumns never have their values printed in a difference. Read
// models hold no secret values; this is a guard should one ever appear.
var sensitiveColumns = map[string]bool{"data": true, "value": true, "values": true, "ciphertext": true, "sealed": true, "wrapped_key": true}

// Lookup returns the projection of All() called name.
func Lookup(name string) (Projection, error) {
	var names []string
	for _, p := range All() {
		if p.Name() == name {
			return p, nil
		}
		names = append(names, p.Name())
	}
	return nil, fmt.Errorf("projections: no projection %q (have %s)", name, strings.Join(names, ", "))
}

// shadow is one projection's rebuild in progress.
type shadow struct {
	live    Projection
	shadow  Projection
	cursor  events.Cursor  // last event the shadow applied
	applied int64          // events the shadow applied
	bound   *events.Cursor // Check: the live checkpoint the replay stops at
}

type rebuild struct {
	pool        *pgxpool.Pool
	store       *events.PostgresStore
	opts        RebuildOptions
	start       time.Time
	done, total int64
	read        events.Cursor // the furthest event read from the log so far
}

// progress counts the events among recs not read before.
func (r *rebuild) progress(recs []events.Record) {
	n := 0
	for _, rec := range recs {
		if r.read.Before(rec.Cursor) {
			r.read = rec.Cursor
			n++
		}
	}
	if n == 0 {
		return
	}
	r.done += int64(n)
	if r.done > r.total {
		r.total = r.done
	}
	if r.opts.Progress != nil {
		r.opts.Progress(r.done, r.total)
	}
}

// RebuildOnline replays the log into fresh shadow tables (<table>_rebuild,
// created LIKE the live ones) and swaps each projection's tables in with its
// checkpoint in one transaction, while servers keep answering from the old
// tables until that commit. With no server running it is the offline rebuild.
//
// The replay is one pass over the log in commit order, a transaction per
// batch, feeding every selected projection. The swap locks the projection's
// checkpoint row, which holds back the live projector's next event for it,
// applies the events that arrived meanwhile, replaces the tables and sets the
// checkpoint to the shadow's: the live projector then goes on from there.
//
// With opts.Check nothing is swapped: each shadow stops at the live
// checkpoint and every differing row is reported. Shadow tables are dropped
// at the end either way.
func RebuildOnline(ctx context.Context, pool *pgxpool.Pool, opts RebuildOptions) (RebuildReport, error) {
	r := &rebuild{pool: pool, store: events.NewPostgresStore(pool), opts: opts, start: time.Now()}
	if r.opts.Projections == nil {
		r.opts.Projections = All()
	}
	if r.opts.BatchSize <= 0 {
		r.opts.BatchSize = defaultRebuildBatch
	}
	if r.opts.LockTimeout <= 0 {
		r.opts.LockTimeout = defaultLockTimeout
	}
	var report RebuildReport
	seen := map[string]bool{}
	for _, p := range r.opts.Projections {
		if seen[p.Name()] {
			return report, fmt.Errorf("projections: %s selected twice", p.Name())
		}
		seen[p.Name()] = true
	}

	unlock, err := r.lock(ctx)
	if err != nil {
		return report, err
	}
	defer unlock()
	defer r.dropShadows()

	shadows, err := r.createShadows(ctx)
	if err != nil {
		return report, err
	}
	if opts.Check {
		for _, s := range shadows {
			c, err := liveCheckpoint(ctx, pool, s.live.Name())
			if err != nil {
				return report, err
			}
			s.bound = &c
		}
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM event_log`).Scan(&r.total); err != nil {
		return report, err
	}
	if r.opts.Progress != nil {
		r.opts.Progress(0, r.total)
	}
	if err := r.replay(ctx, shadows); err != nil {
		return report, err
	}

	for _, s := range shadows {
		if opts.Check {
			diffs, err := r.compare(ctx, s)
			if err != nil {
				return report, fmt.Errorf("check %s: %w", s.live.Name(), err)
			}
			report.Differences = append(report.Differences, diffs...)
		} else {
			if err := r.analyze(ctx, s); err != nil {
				return report, err
			}
			if err := r.swapWithRetry(ctx, s); err != nil {
				return report, fmt.Errorf("swap %s: %w", s.live.Name(), err)
			}
		}
		report.Projections = append(report.Projections, ProjectionRebuild{
			Name: s.live.Name(), Events: s.applied, Cursor: s.cursor, Took: time.Since(r.start)})
	}
	if r.opts.Progress != nil {
		r.opts.Progress(r.done, r.done)
	}
	report.Took = time.Since(r.start)
	return report, nil
}

// lock takes a session advisory lock per selected projection on a connection
// it holds until unlock: two rebuilds must not fill the same shadow tables.
func (r *rebuild) lock(ctx context.Context) (unlock func(), err error) {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	var held []string
	unlock = func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, name := range held {
			if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, rebuildLockSpace, name); err != nil {
				// The lock dies with the session: close it rather than pool it.
				_ = conn.Conn().Close(uctx)
				break
			}
		}
		conn.Release()
	}
	for _, p := range r.opts.Projections {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, rebuildLockSpace, p.Name()).Scan(&ok); err != nil {
			unlock()
			return nil, err
		}
		if !ok {
			unlock()
			return nil, fmt.Errorf("%w: %s", ErrRebuildRunning, p.Name())
		}
		held = append(held, p.Name())
	}
	return unlock, nil
}

func shadowTable(t string) string { return t + RebuildSuffix }

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// createShadows creates every selected projection's shadow tables, empty,
// LIKE the live ones (columns, defaults, constraints, indexes).
func (r *rebuild) createShadows(ctx context.Context) ([]*shadow, error) {
	var out []*shadow
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		for _, p := range r.opts.Projections {
			for _, t := range p.Tables() {
				if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+ident(shadowTable(t))); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `CREATE TABLE `+ident(shadowTable(t))+` (LIKE `+ident(t)+` INCLUDING ALL)`); err != nil {
					return fmt.Errorf("create shadow of %s: %w", t, err)
				}
			}
			out = append(out, &shadow{live: p, shadow: p.Shadow(RebuildSuffix)})
		}
		return nil
	})
	return out, err
}

// dropShadows removes whatever shadow tables are left (after a swap there
// are none), also when the rebuild failed or was cancelled.
func (r *rebuild) dropShadows() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var names []string
	for _, p := range r.opts.Projections {
		for _, t := range p.Tables() {
			names = append(names, ident(shadowTable(t)))
		}
	}
	_, _ = r.pool.Exec(ctx, `DROP TABLE IF EXISTS `+strings.Join(names, ", "))
}

// replay is the bulk pass: the log in commit order, one transaction per
// batch, into every shadow. It stops once a read comes back short (caught up
// with the head; the swap applies the rest) or, for a check, once every
// shadow reached its bound.
func (r *rebuild) replay(ctx context.Context, shadows []*shadow) error {
	var after events.Cursor
	for {
		if r.opts.Check && !r.anyBelowBound(shadows, after) {
			return nil
		}
		recs, err := r.store.ReadAll(ctx, after, r.opts.BatchSize)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
				return err
			}
			for _, s := range shadows {
				if err := s.applyAll(ctx, tx, recs); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		after = recs[len(recs)-1].Cursor
		r.progress(recs)
		if len(recs) < r.opts.BatchSize {
			return nil
		}
	}
}

func (r *rebuild) anyBelowBound(shadows []*shadow, c events.Cursor) bool {
	for _, s := range shadows {
		if c.Before(*s.bound) {
			return true
		}
	}
	return false
}

// apply feeds rec to the shadow unless it lies past the shadow's bound or
// was applied already.
func (s *shadow) apply(ctx context.Context, tx pgx.Tx, rec events.Record) error {
	if (s.bound != nil && s.bound.Before(rec.Cursor)) || !s.cursor.Before(rec.Cursor) {
		return nil
	}
	if err := s.shadow.Apply(ctx, tx, rec); err != nil {
		return fmt.Errorf("%s: %s@%d: %w", s.live.Name(), rec.Stream, rec.Version, err)
	}
	s.cursor = rec.Cursor
	s.applied++
	return nil
}

// applyAll feeds the shadow the records it still needs, in one go when the
// projection can apply a batch (the bulk path of a rebuild).
func (s *shadow) applyAll(ctx context.Context, tx pgx.Tx, recs []events.Record) error {
	bulk, ok := s.shadow.(BatchApplier)
	if !ok {
		for _, rec := range recs {
			if err := s.apply(ctx, tx, rec); err != nil {
				return err
			}
		}
		return nil
	}
	todo := make([]events.Record, 0, len(recs))
	for _, rec := range recs {
		if (s.bound == nil || !s.bound.Before(rec.Cursor)) && s.cursor.Before(rec.Cursor) {
			todo = append(todo, rec)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if err := bulk.ApplyBatch(ctx, tx, todo); err != nil {
		return fmt.Errorf("%s: batch ending at position %d: %w", s.live.Name(), todo[len(todo)-1].Cursor.Position, err)
	}
	s.cursor = todo[len(todo)-1].Cursor
	s.applied += int64(len(todo))
	return nil
}

// tail applies, inside tx, the events after the shadow's cursor that the log
// shows now, up to upper when given.
func (r *rebuild) tail(ctx context.Context, tx pgx.Tx, s *shadow, upper *events.Cursor) error {
	for {
		recs, err := r.store.ReadAll(ctx, s.cursor, r.opts.BatchSize)
		if err != nil {
			return err
		}
		for i, rec := range recs {
			if upper != nil && upper.Before(rec.Cursor) {
				r.progress(recs[:i])
				return nil
			}
			if err := s.apply(ctx, tx, rec); err != nil {
				return err
			}
		}
		r.progress(recs)
		if len(recs) < r.opts.BatchSize {
			return nil
		}
	}
}

// analyze gives the planner statistics for the new tables before they serve.
func (r *rebuild) analyze(ctx context.Context, s *shadow) error {
	for _, t := range s.live.Tables() {
		if _, err := r.pool.Exec(ctx, `ANALYZE `+ident(shadowTable(t))); err != nil {
			return err
		}
	}
	return nil
}

func (r *rebuild) swapWithRetry(ctx context.Context, s *shadow) error {
	for attempt := 1; ; attempt++ {
		cursor, applied := s.cursor, s.applied
		err := r.swap(ctx, s)
		if err == nil {
			return nil
		}
		// The transaction rolled back: so did the tail it applied.
		s.cursor, s.applied = cursor, applied
		var pgErr *pgconn.PgError
		if attempt < swapAttempts && errors.As(err, &pgErr) && pgErr.Code == "55P03" && ctx.Err() == nil {
			continue // lock_not_available: a long reader held a table; try again
		}
		return err
	}
}

// swap replaces the projection's live tables with its shadow tables and sets
// its checkpoint, in one transaction.
func (r *rebuild) swap(ctx context.Context, s *shadow) error {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	name := s.live.Name()
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, r.opts.LockTimeout.Milliseconds())); err != nil {
		return err
	}
	// Locking the checkpoint row holds back the live projector: each of its
	// transactions starts by upserting this row. Whatever it committed before
	// is at or before the checkpoint read here.
	if _, err := tx.Exec(ctx, `INSERT INTO `+events.CheckpointsTable+` (projection) VALUES ($1) ON CONFLICT DO NOTHING`, name); err != nil {
		return err
	}
	live, err := scanCursor(tx.QueryRow(ctx, `SELECT last_commit::text::bigint, last_position FROM `+events.CheckpointsTable+`
		WHERE projection = $1 FOR UPDATE`, name))
	if err != nil {
		return err
	}
	if err := r.tail(ctx, tx, s, nil); err != nil {
		return err
	}
	if s.cursor.Before(live) {
		// Cannot happen: the projector only reads what ReadAll shows.
		return fmt.Errorf("shadow at %v is behind the live checkpoint %v", s.cursor, live)
	}
	tables := s.live.Tables()
	quoted := make([]string, len(tables))
	for i, t := range tables {
		quoted[i] = ident(t)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(quoted, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		return err
	}
	for _, t := range tables {
		liveIdx, err := indexes(ctx, tx, t)
		if err != nil {
			return err
		}
		shadowIdx, err := indexes(ctx, tx, shadowTable(t))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DROP TABLE `+ident(t)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE `+ident(shadowTable(t))+` RENAME TO `+ident(t)); err != nil {
			return err
		}
		for from, to := range indexRenames(t, liveIdx, shadowIdx) {
			if _, err := tx.Exec(ctx, `ALTER INDEX `+ident(from)+` RENAME TO `+ident(to)); err != nil {
				return err
			}
		}
	}
	commit := strconv.FormatUint(s.cursor.Commit, 10)
	if _, err := tx.Exec(ctx, `UPDATE `+events.CheckpointsTable+`
		SET last_commit = $2::text::xid8, last_position = $3, events_applied = $4 WHERE projection = $1`,
		name, commit, s.cursor.Position, s.applied); err != nil {
		return err
	}
	// After a Reset the delivery offset is gone: start it at the checkpoint
	// rather than redeliver the whole log only to skip it. An existing offset
	// belongs to a subscriber and is left alone (events up to the checkpoint
	// are skipped when redelivered).
	if _, err := tx.Exec(ctx, `INSERT INTO `+events.OffsetsTable+` (consumer_group, offset_acked, last_processed_transaction_id)
		VALUES ($1, $2, $3::text::xid8) ON CONFLICT (consumer_group) DO NOTHING`, name, s.cursor.Position, commit); err != nil {
		return err
	}
	// Writers waiting for their event (Waiter) learn the new checkpoint now.
	payload := fmt.Sprintf("%s:%d:%d", name, s.cursor.Commit, s.cursor.Position)
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ProjectedChannel, payload); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func scanCursor(row pgx.Row) (events.Cursor, error) {
	var commit, position int64
	if err := row.Scan(&commit, &position); err != nil {
		return events.Cursor{}, err
	}
	return events.Cursor{Commit: uint64(commit), Position: position}, nil
}

func liveCheckpoint(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) (events.Cursor, error) {
	c, err := scanCursor(q.QueryRow(ctx, `SELECT last_commit::text::bigint, last_position FROM `+events.CheckpointsTable+`
		WHERE projection = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return events.Cursor{}, nil
	}
	return c, err
}

// index is a table's index: its name and its definition without the name
// and the table ("primary unique USING btree (col)").
type index struct{ name, def string }

func indexes(ctx context.Context, tx pgx.Tx, table string) ([]index, error) {
	rows, err := tx.Query(ctx, `SELECT c.relname, i.indisprimary, i.indisunique, pg_get_indexdef(i.indexrelid)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = $1::regclass ORDER BY c.relname`, table)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (index, error) {
		var x index
		var primary, unique bool
		var def string
		if err := row.Scan(&x.name, &primary, &unique, &def); err != nil {
			return x, err
		}
		if i := strings.Index(def, " USING "); i >= 0 {
			def = def[i:]
		}
		x.def = fmt.Sprintf("primary=%t unique=%t%s", primary, unique, def)
		return x, nil
	})
}

// indexRenames gives every shadow index of table the name of the live index
// with the same definition (CREATE TABLE LIKE names them after the shadow
// table and their columns), so index names never change across rebuilds and
// stay those the migrations created. A shadow index without a live twin
// loses the shadow suffix from its name.
func indexRenames(table string, live, shadowIdx []index) map[string]string {
	byDef := map[string][]string{}
	for _, x := range live {
		byDef[x.def] = append(byDef[x.def], x.name)
	}
	out := map[string]string{}
	for _, x := range shadowIdx {
		if names := byDef[x.def]; len(names) > 0 {
			out[x.name] = names[0]
			byDef[x.def] = names[1:]
		} else if prefix := shadowTable(table); strings.HasPrefix(x.name, prefix) {
			out[x.name] = table + strings.TrimPrefix(x.name, prefix)
		}
	}
	for from, to := range out {
		if from == to {
			delete(out, from)
		}
	}
	return out
}

// compare brings the shadow to exactly the live checkpoint and diffs each
// table pair. It runs in one REPEATABLE READ transaction: its snapshot sees
// the live tables exactly as of the checkpoint it reads (each event commits
// with the checkpoint), so the live projector is never held back.
func (r *rebuild) compare(ctx context.Context, s *shadow) ([]Difference, error) {
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	live, err := liveCheckpoint(ctx, tx, s.live.Name())
	if err != nil {
		return nil, err
	}
	if live.Before(s.cursor) {
		return nil, fmt.Errorf("the live checkpoint went back from %v to %v (was the projection reset?); run the check again", *s.bound, live)
	}
	s.bound = &live
	if err := r.tail(ctx, tx, s, &live); err != nil {
		return nil, err
	}
	if s.cursor != live {
		return nil, fmt.Errorf("replay reached %v, not the live checkpoint %v", s.cursor, live)
	}
	var out []Difference
	for _, t := range s.live.Tables() {
		diffs, err := diffTable(ctx, tx, s.live.Name(), t)
		if err != nil {
			return nil, err
		}
		out = append(out, diffs...)
	}
	return out, nil
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

// All returns every projection the service runs.
func All() []Projection {
	return []Projection{SecretProjection{}, UserSecretProjection{}, AuditProjection{}}
}
