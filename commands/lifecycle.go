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

// create opens the stream id of a new resource: the data key of its first
// version, its first event (built by mk around the sealed value), its
// read-model rows and the request's token (when claim is set) commit in one
// transaction.
func (d Deps) create(ctx context.Context, meta Meta, tenant events.Tenant, empty Resource, id, kmsKeyID string, plain []byte,
	claim *requestToken, typ string, mk func(sealed events.Sealed) any, checks ...precondition) (Result, error) {
	key, storeKey, err := d.Keys.New(KeyName(id, 1), kmsKeyID)
	if err != nil {
		return Result{}, err
	}
	sealed, err := events.Seal(key, id, 1, plain)
	if err != nil {
		return Result{}, err
	}
	e, err := newEvent(meta, tenant, typ, mk(sealed))
	if err != nil {
		return Result{}, err
	}
	also := storeKey
	if claim != nil {
		also = func(b *pgx.Batch) { storeKey(b); d.queueToken(b, claim, id, 1) }
	}
	return d.commit(ctx, id, empty, checks, []func(*pgx.Batch){also}, []events.Event{e})
}

// changeValue is update…Data for every kind: the new value, validated
// against schemaID (else the current schema), becomes the next version; a
// linked secret's value is validated merged with its trusted secret's.
// token (op names the command) makes it idempotent.
func (d Deps) changeValue(ctx context.Context, t Target, kind, token, op string, schemaID *string, data map[string]any) (Result, error) {
	t.Kind = kind
	claim, err := d.valueToken(t, token, op, schemaID, data)
	if err != nil {
		return Result{}, err
	}
	return d.changeTargetOnce(ctx, t, claim, func(r Resource) (Decision, error) {
		id := r.Base().SchemaID
		if schemaID != nil {
			id = *schemaID
		}
		if s, ok := r.(*Secret); ok && s.TrustedSecretID != "" {
			return d.linkedValue(ctx, s, id, data)
		}
		return d.newValue(ctx, r, id, data)
	})
}

// described is the decision changing r's name and tags (the event mk
// builds) and its settings, where tenant is where r lives afterwards; no
// events when nothing changes.
func described(r Resource, tenant events.Tenant, name *string, tags map[string]any, settings ChangeSettings,
	mk func(name *string, tags map[string]any) Emit) (Decision, error) {
	n, t, err := metadataChange(name, tags, r.Base())
	if err != nil {
		return Decision{}, err
	}
	s, err := settingsChange(settings, r.Base().Settings)
	if err != nil {
		return Decision{}, err
	}
	dec := Decision{Tenant: tenant}
	if n != nil || t != nil {
		dec.Events = append(dec.Events, mk(n, t))
	}
	if s != nil {
		dec.Events = append(dec.Events, Emit{events.SettingsChangedV1, *s})
	}
	return dec, nil
}

// newValue validates data against schemaID and records it as the next version.
func (d Deps) newValue(ctx context.Context, cur Resource, schemaID string, data map[string]any) (Decision, error) {
	plain, provider, err := checkData(d.Schemas, schemaID, data)
	if err != nil {
		return Decision{}, err
	}
	return d.sealed(ctx, cur, schemaID, provider, plain, valueOrigin{})
}

// RevealOptions choose the version a reveal reads: Version when set, else
// the one carrying Stage, else SYSCURRENT.
type RevealOptions struct {
	Version *int64
	Stage   *string
}

// reveal decrypts the version opts chooses and records the read on the
// access stream (durably, in a commit shared with concurrent reads) before
// the value leaves.
func (d Deps) reveal(ctx context.Context, meta Meta, cur Resource, opts RevealOptions, typ string, read func(version int64) any) (Revealed, error) {
	b := cur.Base()
	data, n, err := d.openChosen(ctx, cur, opts)
	if err != nil {
		return Revealed{}, err
	}
	e, err := newEvent(meta, cur.Tenant(), typ, read(n))
	if err != nil {
		return Revealed{}, err
	}
	if err := d.Access.Record(ctx, cur, e); err != nil {
		return Revealed{}, err
	}
	return Revealed{ID: b.ID, DataVersion: n, Data: data}, nil
}

// openChosen decrypts the version of cur's value that opts choose: FAILED_
// PRECONDITION when the resource is disabled or the version unreadable.
func (d Deps) openChosen(ctx context.Context, cur Resource, opts RevealOptions) (map[string]any, int64, error) {
	b := cur.Base()
	if b.Disabled {
		return nil, 0, failed("%s %q is disabled: enable it to read its value", cur.Noun(), b.ID)
	}
	n := b.DataVersion
	switch {
	case opts.Version != nil:
		n = *opts.Version
	case opts.Stage != nil:
		var ok bool
		if n, ok = b.Stages[*opts.Stage]; !ok {
			return nil, 0, invalid("stage", "no version carries stage %q", *opts.Stage)
		}
	}
	v, ok := b.Version(n)
	if !ok {
		return nil, 0, failed("version %d of %s %q is not readable (destroyed or never written)", n, cur.Noun(), b.ID)
	}
	payload, err := d.sealedVersion(ctx, cur, v)
	if err != nil {
		return nil, 0, err
	}
	data, err := d.open(ctx, KeyName(b.ID, n), b.ID, v.EventVersion, payload.Data)
	return data, n, err
}

// open decrypts a sealed value with the key named keyName; stream and
// version are its associated data.
func (d Deps) open(ctx context.Context, keyName, stream string, version int64, sealed events.Sealed) (map[string]any, error) {
	key, err := d.Keys.Get(ctx, keyName)
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
