package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
)

// Projection turns changes (events with their resource's state before and
// after) into read-model rows. The same Queue serves a command's own
// transaction (inline: one or a few changes), the asynchronous runner and a
// rebuild's replay (thousands at once): the rows depend only on the changes.
// It queues its statements on a batch that the caller sends in its
// transaction, so a write costs one round trip for every read model.
type Projection interface {
	// Name is also the consumer group of an asynchronous projection.
	Name() string
	// Tables are the read-model tables the projection owns, by their live names.
	Tables() []string
	// Shadow is the same projection writing to tables named table+suffix
	// (a rebuild fills those, then swaps them in).
	Shadow(suffix string) Projection
	// Queue queues the statements that write the rows of changes.
	Queue(b *pgx.Batch, changes []commands.Change) error
}

// Names of the projections.
const (
	SnapshotsProjection    = "snapshots"
	SecretsProjection      = "secrets"
	UserSecretsProjection  = "user_secrets"
	AuditProjectionName    = "audit"
	UsageProjectionName    = "usage"
	VersionsProjectionName = "versions"
	PendingProjectionName  = "pending_deletions"
)

// Inline returns the projections written in the transaction of every write:
// the snapshots commands load from, the secrets, user secrets and trusted
// secrets that get/list/stat answer from, and the audit trail.
func Inline() []Projection {
	return []Projection{SnapshotProjection{}, SecretProjection{}, UserSecretProjection{}, TrustedSecretProjection{},
		AuditProjection{}, VersionsProjection{}, PendingProjection{}}
}

// Async returns the projections a leased runner applies after the fact.
func Async() []Projection { return []Projection{UsageProjection{}} }

// All returns every projection the service keeps.
func All() []Projection { return append(Inline(), Async()...) }

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

// isAsync reports whether p is applied by the leased runner.
func isAsync(p Projection) bool {
	for _, a := range Async() {
		if a.Name() == p.Name() {
			return true
		}
	}
	return false
}

// writeLockSpace is the advisory lock that orders writers and a rebuild's
// swap: every inline write holds it shared in its transaction, the swap
// holds it exclusively, so the swap sees every committed write and no write
// lands in a table being replaced.
const writeLockSpace = 0x5eb1e

// Projector is the commands' view of the read models: inline projections
// written in each command's transaction, and snapshots to load from.
type Projector struct {
	pool        *pgxpool.Pool
	projections []Projection
}

// NewProjector writes every inline projection, and destroys the data keys
// of keys that events destroy (KeyShredding), and loads snapshots from pool.
func NewProjector(pool *pgxpool.Pool, keys *events.KeyStore) *Projector {
	return &Projector{pool: pool, projections: append(Inline(), KeyShredding{Keys: keys})}
}

var _ commands.Projector = (*Projector)(nil)

// TxOptions implements commands.Projector: a writing transaction takes the
// write lock (shared) in the same round trip as BEGIN, before it touches
// any table, so that not even preparing a statement (which locks the
// tables it names) can happen before it.
func (p *Projector) TxOptions() pgx.TxOptions { return writeTx }

var writeTx = pgx.TxOptions{BeginQuery: fmt.Sprintf("BEGIN; SELECT pg_advisory_xact_lock_shared(%d)", writeLockSpace)}

// Project implements commands.Projector.
func (p *Projector) Project(b *pgx.Batch, changes []commands.Change) error {
	return queueAll(b, p.projections, changes)
}

// queueAll queues every projection's statements for changes.
func queueAll(b *pgx.Batch, projections []Projection, changes []commands.Change) error {
	for _, proj := range projections {
		if err := proj.Queue(b, changes); err != nil {
			return fmt.Errorf("projection %s: %w", proj.Name(), err)
		}
	}
	return nil
}

// send runs the batch in tx and reports the first failure.
func send(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, b).Close()
}

// Snapshot implements commands.Projector.
func (p *Projector) Snapshot(ctx context.Context, id string, into commands.Resource) (bool, error) {
	return loadSnapshot(ctx, p.pool, "", id, into)
}

// isRead reports whether c records a value read (an access-stream event):
// reads change no resource state.
func isRead(c commands.Change) bool {
	return c.Record.Stream != events.ResourceOfStream(c.Record.Stream)
}

// latest returns, for each resource whose state the changes moved, its
// state after the last of them, in order of first change.
func latest[T commands.Resource](changes []commands.Change) []T {
	idx := map[string]int{}
	var out []T
	for _, c := range changes {
		next, ok := c.Next.(T)
		if !ok || isRead(c) {
			continue
		}
		id := c.Next.Base().ID
		if i, seen := idx[id]; seen {
			out[i] = next
			continue
		}
		idx[id] = len(out)
		out = append(out, next)
	}
	return out
}

// table writes rows of one read-model table: upserted from JSON documents
// whose keys are its column names, or deleted by key.
type table struct {
	name, key string
	columns   []string // every column but the key, for ON CONFLICT ... DO UPDATE
}

// newTable describes table name keyed by key, with the columns of row's json tags.
func newTable(name, key string, row any) table {
	t := table{name: name, key: key}
	t.columns = columnsOf(reflect.TypeOf(row), key)
	return t
}

// columnsOf lists the json names of rt's fields (embedded structs' fields
// included, as encoding/json flattens them), but key.
func columnsOf(rt reflect.Type, key string) []string {
	var out []string
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && f.Tag.Get("json") == "" {
			out = append(out, columnsOf(f.Type, key)...)
			continue
		}
		col, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if col != "" && col != "-" && col != key {
			out = append(out, col)
		}
	}
	return out
}

var upsertSQL sync.Map // table name + suffix -> statement

// upsert queues inserting or replacing rows (a slice of row structs) in the
// table named with suffix.
func (t table) upsert(b *pgx.Batch, suffix string, rows any) error {
	if reflect.ValueOf(rows).Len() == 0 {
		return nil
	}
	doc, err := jsonRows(rows)
	if err != nil {
		return err
	}
	name := t.name + suffix
	q, ok := upsertSQL.Load(name)
	if !ok {
		excluded := make([]string, len(t.columns))
		for i, c := range t.columns {
			excluded[i] = "excluded." + c
		}
		q = fmt.Sprintf(`INSERT INTO %s SELECT * FROM jsonb_populate_recordset(NULL::%s, $1)
			ON CONFLICT (%s) DO UPDATE SET (%s) = (%s)`, ident(name), ident(name), t.key,
			strings.Join(t.columns, ", "), strings.Join(excluded, ", "))
		upsertSQL.Store(name, q)
	}
	b.Queue(q.(string), doc)
	return nil
}

// remove queues deleting the rows whose key is in ids.
func (t table) remove(b *pgx.Batch, suffix string, ids []string) {
	if len(ids) > 0 {
		b.Queue(`DELETE FROM `+ident(t.name+suffix)+` WHERE `+t.key+` = ANY($1)`, ids)
	}
}

// jsonRows encodes rows for jsonb_populate_recordset.
func jsonRows(rows any) ([]byte, error) { return json.Marshal(rows) }

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonNilTags(t map[string]any) map[string]any {
	if t == nil {
		return map[string]any{}
	}
	return t
}
