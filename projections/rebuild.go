package projections

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/commands"
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

// sensitiveColumns never have their values printed in a difference. Read
// models hold no secret values; this is a guard should one ever appear.
var sensitiveColumns = map[string]bool{"data": true, "value": true, "values": true, "ciphertext": true, "sealed": true, "wrapped_key": true}

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

// shadow is one projection's rebuild in progress.
type shadow struct {
	live    Projection
	shadow  Projection
	async   bool          // applied from records alone, up to settled events
	swap    bool          // swapped in at the end (false: the fold's scratch table)
	cursor  events.Cursor // last event the shadow applied
	applied int64         // events the shadow applied
	bound   *events.Cursor
}

type rebuild struct {
	pool        *pgxpool.Pool
	store       *events.PostgresStore
	opts        RebuildOptions
	start       time.Time
	done, total int64
	read        events.Cursor // the furthest event read from the log so far
}

// selected reports whether p is one of the projections to rebuild.
func (r *rebuild) selected(p Projection) bool {
	for _, s := range r.opts.Projections {
		if s.Name() == p.Name() {
			return true
		}
	}
	return false
}

// shadowed are the projections that get shadow tables: the selected ones,
// plus the snapshots every state-based projection folds from.
func (r *rebuild) shadowed() []Projection {
	out := append([]Projection(nil), r.opts.Projections...)
	if !r.selected(SnapshotProjection{}) {
		out = append([]Projection{SnapshotProjection{}}, out...)
	}
	return out
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
// created LIKE the live ones) and swaps them in, while servers keep writing
// and answering from the live tables. With no server running it is the
// offline rebuild.
//
// The replay is one pass over the log in commit order, a transaction per
// batch: records are folded into resource states (kept in the snapshots
// shadow between batches, so memory stays flat) and every shadow writes the
// batch's changes at once. The swap takes the write lock exclusively (every
// inline write holds it shared), applies the events that arrived meanwhile,
// replaces the tables and, for asynchronous projections, moves their offsets,
// in one transaction.
//
// With opts.Check nothing is swapped: in one REPEATABLE READ snapshot each
// shadow catches up with what the live tables reflect (for an asynchronous
// projection, its offset) and every differing row is reported. Shadow tables
// are dropped at the end either way.
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
		// An asynchronous projection is compared as of its offset: the
		// replay stops there (compare moves the bound to the offset it sees).
		for _, s := range shadows {
			if s.async {
				offset, err := asyncOffset(ctx, pool, s.live.Name())
				if err != nil {
					return report, err
				}
				s.bound = &offset
			}
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
	if opts.Check {
		diffs, err := r.compare(ctx, shadows)
		if err != nil {
			return report, fmt.Errorf("check: %w", err)
		}
		report.Differences = diffs
	} else {
		for _, s := range shadows {
			if err := r.analyze(ctx, s); err != nil {
				return report, err
			}
		}
		if err := r.swapWithRetry(ctx, shadows); err != nil {
			return report, fmt.Errorf("swap: %w", err)
		}
	}
	for _, s := range shadows {
		if s.swap {
			report.Projections = append(report.Projections, ProjectionRebuild{
				Name: s.live.Name(), Events: s.applied, Cursor: s.cursor, Took: time.Since(r.start)})
		}
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
	for _, p := range r.shadowed() {
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

// createShadows creates every selected projection's shadow tables, empty,
// LIKE the live ones (columns, defaults, constraints, indexes).
func (r *rebuild) createShadows(ctx context.Context) ([]*shadow, error) {
	var out []*shadow
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		for _, p := range r.shadowed() {
			for _, t := range p.Tables() {
				if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+ident(shadowTable(t))); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `CREATE TABLE `+ident(shadowTable(t))+` (LIKE `+ident(t)+` INCLUDING ALL)`); err != nil {
					return fmt.Errorf("create shadow of %s: %w", t, err)
				}
			}
			out = append(out, &shadow{live: p, shadow: p.Shadow(RebuildSuffix), async: isAsync(p), swap: r.selected(p)})
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
	for _, p := range r.shadowed() {
		for _, t := range p.Tables() {
			names = append(names, ident(shadowTable(t)))
		}
	}
	_, _ = r.pool.Exec(ctx, `DROP TABLE IF EXISTS `+strings.Join(names, ", "))
}

// replay is the bulk pass: the log in commit order (settled events only),
// one transaction per batch, into every shadow. It stops once a read comes
// back short: the swap (or the comparison) applies the rest.
func (r *rebuild) replay(ctx context.Context, shadows []*shadow) error {
	var after events.Cursor
	for {
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
			return r.apply(ctx, tx, shadows, recs, false)
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

// apply feeds recs to the shadows that still need them: state-based ones
// get the changes folded from the snapshots shadow, asynchronous ones the
// records alone and only settled ones (unsettled recs skip them).
func (r *rebuild) apply(ctx context.Context, tx pgx.Tx, shadows []*shadow, recs []events.Record, unsettled bool) error {
	var state []*shadow
	for _, s := range shadows {
		if s.async {
			if unsettled {
				continue
			}
			if err := s.write(ctx, tx, recs, asyncChanges); err != nil {
				return err
			}
			continue
		}
		state = append(state, s)
	}
	if len(state) == 0 {
		return nil
	}
	// State-based shadows move together (the snapshots shadow among them):
	// fold only what they have not applied, or states would apply it twice.
	recs = state[0].todo(recs)
	if len(recs) == 0 {
		return nil
	}
	changes, err := foldChanges(ctx, tx, RebuildSuffix, recs)
	if err != nil {
		return err
	}
	for _, s := range state {
		if err := s.writeChanges(ctx, tx, recs, changes); err != nil {
			return err
		}
	}
	return nil
}

// write applies to the shadow the records it still needs, as changes made by mk.
func (s *shadow) write(ctx context.Context, tx pgx.Tx, recs []events.Record, mk func([]events.Record) ([]commands.Change, error)) error {
	todo := s.todo(recs)
	if len(todo) == 0 {
		return nil
	}
	changes, err := mk(todo)
	if err != nil {
		return err
	}
	return s.commit(ctx, tx, changes)
}

// writeChanges applies the changes (one per record of recs) the shadow still needs.
func (s *shadow) writeChanges(ctx context.Context, tx pgx.Tx, recs []events.Record, changes []commands.Change) error {
	var todo []commands.Change
	for i, rec := range recs {
		if s.wants(rec) {
			todo = append(todo, changes[i])
		}
	}
	if len(todo) == 0 {
		return nil
	}
	return s.commit(ctx, tx, todo)
}

func (s *shadow) commit(ctx context.Context, tx pgx.Tx, changes []commands.Change) error {
	b := &pgx.Batch{}
	err := s.shadow.Queue(b, changes)
	if err == nil {
		err = send(ctx, tx, b)
	}
	if err != nil {
		return fmt.Errorf("%s: batch ending at position %d: %w", s.live.Name(), changes[len(changes)-1].Record.Cursor.Position, err)
	}
	s.cursor = changes[len(changes)-1].Record.Cursor
	s.applied += int64(len(changes))
	return nil
}

func (s *shadow) wants(rec events.Record) bool {
	return s.cursor.Before(rec.Cursor) && (s.bound == nil || !s.bound.Before(rec.Cursor))
}

func (s *shadow) todo(recs []events.Record) []events.Record {
	var out []events.Record
	for _, rec := range recs {
		if s.wants(rec) {
			out = append(out, rec)
		}
	}
	return out
}

// asyncChanges are the changes an asynchronous projection sees: records alone.
func asyncChanges(recs []events.Record) ([]commands.Change, error) {
	out := make([]commands.Change, len(recs))
	for i, rec := range recs {
		c, err := asyncChange(rec)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// foldChanges folds recs, in order, into the states of their resources (read
// from the snapshots table named with suffix), one change per record.
func foldChanges(ctx context.Context, q events.Querier, suffix string, recs []events.Record) ([]commands.Change, error) {
	var ids []string
	seen := map[string]bool{}
	for _, rec := range recs {
		if id := events.ResourceOfStream(rec.Stream); !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	states, err := loadSnapshots(ctx, q, suffix, ids)
	if err != nil {
		return nil, err
	}
	out := make([]commands.Change, len(recs))
	for i, rec := range recs {
		id := events.ResourceOfStream(rec.Stream)
		cur, ok := states[id]
		if !ok {
			if cur, ok = commands.NewResource(id); !ok {
				return nil, fmt.Errorf("projections: no resource lives on stream %s", rec.Stream)
			}
			states[id] = cur
		}
		ev, err := events.Decode(rec.Type, rec.Data)
		if err != nil {
			return nil, fmt.Errorf("%s@%d: %w", rec.Stream, rec.Version, err)
		}
		c := commands.Change{Record: rec, Event: ev}
		if cur.Base().StreamVersion > 0 {
			c.Prev = cur
		}
		if rec.Stream != id { // a read: the state stays
			c.Next = cur
		} else {
			next := cur.Clone()
			if err := next.Apply(rec, ev); err != nil {
				return nil, fmt.Errorf("%s@%d: %w", rec.Stream, rec.Version, err)
			}
			c.Next, states[id] = next, next
		}
		out[i] = c
	}
	return out, nil
}

// tail applies, inside tx, the events after the shadows' cursors that tx
// sees: settled ones to every shadow and, with unsettled, also those
// committed past a still running transaction to the state-based shadows.
func (r *rebuild) tail(ctx context.Context, tx pgx.Tx, shadows []*shadow, unsettled bool) error {
	for _, settled := range []bool{true, false} {
		if !settled && !unsettled {
			return nil
		}
		// From the earliest cursor among the shadows this pass feeds
		// (each shadow skips what it already has).
		var after *events.Cursor
		for _, s := range shadows {
			if (settled || !s.async) && (after == nil || s.cursor.Before(*after)) {
				c := s.cursor
				after = &c
			}
		}
		if after == nil {
			continue
		}
		for {
			recs, err := events.ReadAllIn(ctx, tx, *after, r.opts.BatchSize, settled)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				break
			}
			if err := r.apply(ctx, tx, shadows, recs, !settled); err != nil {
				return err
			}
			r.progress(recs)
			after = &recs[len(recs)-1].Cursor
			if len(recs) < r.opts.BatchSize {
				break
			}
		}
	}
	return nil
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

func (r *rebuild) swapWithRetry(ctx context.Context, shadows []*shadow) error {
	for attempt := 1; ; attempt++ {
		saved := make([]shadow, len(shadows))
		for i, s := range shadows {
			saved[i] = *s
		}
		err := r.swap(ctx, shadows)
		if err == nil {
			return nil
		}
		// The transaction rolled back: so did the tail it applied.
		for i, s := range shadows {
			*s = saved[i]
		}
		var pgErr *pgconn.PgError
		if attempt < swapAttempts && errors.As(err, &pgErr) && pgErr.Code == "55P03" && ctx.Err() == nil {
			continue // lock_not_available: a long reader held a table; try again
		}
		return err
	}
}

// swap replaces the selected projections' live tables with their shadows in
// one transaction. Holding the write lock exclusively, it sees every write
// that committed and no write can start meanwhile; writers that appended
// their events but wait for the lock write their rows into the new tables.
func (r *rebuild) swap(ctx context.Context, shadows []*shadow) error {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, r.opts.LockTimeout.Milliseconds())); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLockSpace); err != nil {
		return err
	}
	// Asynchronous runners move their offsets in their own transactions: hold
	// the rows so that a runner's batch either committed before (and is in
	// the log the tail reads) or fails after and starts again from here.
	for _, s := range shadows {
		if s.async && s.swap {
			if _, err := tx.Exec(ctx, `SELECT 1 FROM `+events.OffsetsTable+` WHERE consumer_group = $1 FOR UPDATE`, s.live.Name()); err != nil {
				return err
			}
		}
	}
	// So do the consumers of the PostgreSQL log projected asynchronously.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM `+PositionsTable+` WHERE consumer = ANY($1) FOR UPDATE`, readModelConsumers()); err != nil {
		return err
	}
	if err := r.tail(ctx, tx, shadows, true); err != nil {
		return err
	}
	var quoted []string
	for _, s := range shadows {
		if s.swap {
			for _, t := range s.live.Tables() {
				quoted = append(quoted, ident(t))
			}
		}
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(quoted, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		return err
	}
	for _, s := range shadows {
		if !s.swap {
			continue
		}
		for _, t := range s.live.Tables() {
			if err := replaceTable(ctx, tx, t); err != nil {
				return err
			}
		}
		// A consumer's position moves to where the replay ended (the
		// inline projections' consumer with the snapshots).
		consumer := s.live.Name()
		if !s.async {
			consumer = ReadModelsConsumer
		}
		if _, err := tx.Exec(ctx, `UPDATE `+PositionsTable+` SET commit_position = $2, position = $3 WHERE consumer = $1`,
			consumer, int64(s.cursor.Commit), s.cursor.Position); err != nil {
			return err
		}
		if s.async {
			if _, err := tx.Exec(ctx, `INSERT INTO `+events.OffsetsTable+` (consumer_group, offset_acked, last_processed_transaction_id)
				VALUES ($1, $2, $3::text::xid8) ON CONFLICT (consumer_group) DO UPDATE
				SET offset_acked = excluded.offset_acked, last_processed_transaction_id = excluded.last_processed_transaction_id`,
				s.live.Name(), s.cursor.Position, strconv.FormatUint(s.cursor.Commit, 10)); err != nil {
				return err
			}
		}
	}
	return tx.Commit(ctx)
}

// replaceTable drops live table t and renames its shadow (and the shadow's
// indexes) into its place.
func replaceTable(ctx context.Context, tx pgx.Tx, t string) error {
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
	return nil
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
