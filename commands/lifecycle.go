package commands

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/events"
)

// The steps Secret and UserSecret share: both resources live the same life
// (create, change metadata, replace the value, delete, reveal) and differ
// only in scope and event types.

// loadVisible loads the state of id into r and answers NOT_FOUND when it
// does not exist or visible says the caller may not see it: another tenant's
// resource and a missing one look the same.
func (d Deps) loadVisible(ctx context.Context, meta Meta, field, kind, prefix, id string, r Resource, visible func() bool) error {
	if err := requireActor(meta); err != nil {
		return err
	}
	if err := checkResourceID(field, kind, prefix, id); err != nil {
		return err
	}
	if err := d.load(ctx, id, r); err != nil {
		return err
	}
	if !r.Base().Exists() || !visible() {
		return notFound(kind, id)
	}
	return nil
}

// metadataChange validates a requested name and tags against the current
// ones; a nil result means that field does not change.
func metadataChange(name *string, tags map[string]any, cur *Versioned) (*string, map[string]any, error) {
	var newName *string
	var newTags map[string]any
	if name != nil {
		n, err := checkName(*name)
		if err != nil {
			return nil, nil, err
		}
		if n != cur.Name {
			newName = &n
		}
	}
	if tags != nil {
		t, err := checkTags(tags)
		if err != nil {
			return nil, nil, err
		}
		if !sameJSON(t, cur.Tags) {
			newTags = t
		}
	}
	return newName, newTags, nil
}

// precondition is a check that must still hold when a write commits: it
// runs inside the write's transaction before its events are appended (and
// may lock what it reads until then).
type precondition func(ctx context.Context, tx pgx.Tx) error

func checkAll(ctx context.Context, tx pgx.Tx, checks []precondition) error {
	for _, check := range checks {
		if err := check(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// create opens the stream id of a new resource: its data key, its first
// event (built by mk around the sealed value) and its read-model rows commit
// in one transaction, after checks pass in it.
func (d Deps) create(ctx context.Context, meta Meta, tenant events.Tenant, empty Resource, id string, plain []byte,
	typ string, mk func(sealed events.Sealed) any, checks ...precondition) (Result, error) {
	var res Result
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		if err := checkAll(ctx, tx, checks); err != nil {
			return err
		}
		key, err := d.Keys.Create(ctx, tx, id)
		if err != nil {
			return err
		}
		sealed, err := events.Seal(key, id, 1, plain)
		if err != nil {
			return err
		}
		e, err := newEvent(meta, tenant, typ, mk(sealed))
		if err != nil {
			return err
		}
		res, err = d.appendTx(ctx, tx, id, empty, e)
		return err
	})
	return res, err
}

// replaceData validates data against schemaID, seals it for the stream's
// next version and appends the event mk builds around it.
func (d Deps) replaceData(ctx context.Context, meta Meta, cur Resource, schemaID string, data map[string]any,
	typ string, mk func(schemaID, provider string, sealed events.Sealed) any) (Result, error) {
	plain, provider, err := checkData(d.Schemas, schemaID, data)
	if err != nil {
		return Result{}, err
	}
	b := cur.Base()
	key, err := d.Keys.Get(ctx, b.ID)
	if err != nil {
		return Result{}, err
	}
	sealed, err := events.Seal(key, b.ID, b.StreamVersion+1, plain)
	if err != nil {
		return Result{}, err
	}
	return d.write(ctx, meta, cur.Tenant(), cur, b.ID, typ, mk(schemaID, provider, sealed))
}

// remove records the deletion and destroys the data key in one transaction
// (after checks pass in it): both happen or neither does.
func (d Deps) remove(ctx context.Context, meta Meta, cur Resource, typ string, payload any, checks ...precondition) (Result, error) {
	id := cur.Base().ID
	e, err := newEvent(meta, cur.Tenant(), typ, payload)
	if err != nil {
		return Result{}, err
	}
	var res Result
	err = d.inTx(ctx, func(tx pgx.Tx) error {
		if err := checkAll(ctx, tx, checks); err != nil {
			return err
		}
		if res, err = d.appendTx(ctx, tx, id, cur, e); err != nil {
			return err
		}
		return d.Keys.Destroy(ctx, tx, id)
	})
	if err == nil {
		d.Keys.Forget(id)
	}
	return res, err
}

// reveal decrypts the current value and records the read on the access
// stream (durably, in a commit shared with concurrent reads) before the
// value leaves.
func (d Deps) reveal(ctx context.Context, meta Meta, cur Resource, typ string, read any) (Revealed, error) {
	b := cur.Base()
	data, err := d.open(ctx, b.ID, b.DataEventVersion, b.Data)
	if err != nil {
		return Revealed{}, err
	}
	e, err := newEvent(meta, cur.Tenant(), typ, read)
	if err != nil {
		return Revealed{}, err
	}
	if err := d.Access.Record(ctx, cur, e); err != nil {
		return Revealed{}, err
	}
	return Revealed{ID: b.ID, DataVersion: b.DataVersion, Data: data}, nil
}

func (d Deps) open(ctx context.Context, stream string, version int64, sealed events.Sealed) (map[string]any, error) {
	key, err := d.Keys.Get(ctx, stream)
	if err != nil {
		return nil, err
	}
	plain, err := events.Open(key, stream, version, sealed)
	if err != nil {
		return nil, err
	}
	var data map[string]any
	if err := json.Unmarshal(plain, &data); err != nil {
		return nil, err
	}
	return data, nil
}

func sameJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
