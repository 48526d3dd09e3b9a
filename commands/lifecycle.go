package commands

import (
	"context"

	"github.com/secretlog/secretlog/events"
)

// The steps Secret and UserSecret share: both resources live the same life
// (create, change metadata, replace the value, delete) and differ only in
// scope and event types.

// loadVisible loads the stream of id into agg and answers NOT_FOUND when it
// does not exist or visible says the caller may not see it: another tenant's
// resource and a missing one look the same.
func (d Deps) loadVisible(ctx context.Context, meta Meta, field, kind, id string, agg interface {
	aggregate
	Exists() bool
}, visible func() bool) error {
	if err := requireActor(meta); err != nil {
		return err
	}
	if id == "" {
		return invalid(field, "is required")
	}
	if err := checkID(field, id); err != nil {
		return err
	}
	if err := load(ctx, d.Store, id, agg); err != nil {
		return err
	}
	if !agg.Exists() || !visible() {
		return notFound(kind, id)
	}
	return nil
}

// metadataChange validates a requested name and tags against the current
// ones; a nil result means that field does not change.
func metadataChange(name *string, tags map[string]any, curName string, curTags map[string]any) (*string, map[string]any, error) {
	var newName *string
	var newTags map[string]any
	if name != nil {
		n, err := checkName(*name)
		if err != nil {
			return nil, nil, err
		}
		if n != curName {
			newName = &n
		}
	}
	if tags != nil {
		t, err := checkTags(tags)
		if err != nil {
			return nil, nil, err
		}
		if !sameJSON(t, curTags) {
			newTags = t
		}
	}
	return newName, newTags, nil
}

// sealFirst creates the data key of a new stream and seals its first value.
func (d Deps) sealFirst(ctx context.Context, id string, plain []byte) (events.Sealed, error) {
	key, err := d.Keys.Create(ctx, id)
	if err != nil {
		return events.Sealed{}, err
	}
	return events.Seal(key, id, 1, plain)
}

// appendOne appends one event to stream id at the expected version.
func (d Deps) appendOne(ctx context.Context, meta Meta, tenant events.Tenant, id string, expected int64, typ string, payload any) (Result, error) {
	e, err := newEvent(meta, tenant, typ, payload)
	if err != nil {
		return Result{}, err
	}
	recs, err := d.Store.Append(ctx, id, expected, e)
	if err != nil {
		return Result{}, err
	}
	return Result{ID: id, Records: recs}, nil
}

// appendData validates data against schemaID, seals it for the stream's next
// version and appends the event mk builds around it.
func (d Deps) appendData(ctx context.Context, meta Meta, tenant events.Tenant, id string, streamVersion int64,
	schemaID string, data map[string]any, typ string, mk func(schemaID, provider string, sealed events.Sealed) any) (Result, error) {
	plain, provider, err := checkData(d.Schemas, schemaID, data)
	if err != nil {
		return Result{}, err
	}
	key, err := d.Keys.Get(ctx, id)
	if err != nil {
		return Result{}, err
	}
	sealed, err := events.Seal(key, id, streamVersion+1, plain)
	if err != nil {
		return Result{}, err
	}
	return d.appendOne(ctx, meta, tenant, id, streamVersion, typ, mk(schemaID, provider, sealed))
}

// appendDeletion records the deletion, then shreds the data key.
func (d Deps) appendDeletion(ctx context.Context, meta Meta, tenant events.Tenant, id string, streamVersion int64, typ string, payload any) (Result, error) {
	res, err := d.appendOne(ctx, meta, tenant, id, streamVersion, typ, payload)
	if err != nil {
		return Result{}, err
	}
	return res, d.Keys.Destroy(ctx, id)
}

// reveal decrypts the current value and records the read on the access
// stream before the value leaves.
func (d Deps) reveal(ctx context.Context, meta Meta, tenant events.Tenant, id string, dataVersion, sealedAt int64,
	sealed events.Sealed, typ string, read any) (Revealed, error) {
	data, err := d.open(ctx, id, sealedAt, sealed)
	if err != nil {
		return Revealed{}, err
	}
	if _, err := d.appendOne(ctx, meta, tenant, events.AccessStream(id), events.AnyVersion, typ, read); err != nil {
		return Revealed{}, err
	}
	return Revealed{ID: id, DataVersion: dataVersion, Data: data}, nil
}
