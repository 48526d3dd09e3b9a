package commands

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
)

// The lifecycle every resource holding a value shares (Secret, UserSecret):
// versions and stages, enable/disable, the recovery window, rollback,
// rotation and settings. Commands name their resource by id; its kind and
// its tenancy rules come from the id.

// Lifecycle limits.
const (
	maxCustomStages     = 12
	maxDescription      = 2048
	minRecoveryDays     = 7
	maxRecoveryDays     = 30
	minRotationHours    = 4
	maxRotationHours    = 8760
	maxVersionsLimit    = 1000
	DefaultMaxVersions  = 100
	DefaultRecoveryDays = 30
)

// Lifecycle configures the lifecycle commands (zero values: defaults).
type Lifecycle struct {
	// Now is the clock (time.Now).
	Now func() time.Time
	// RecoveryDays is the recovery window when a delete names none.
	RecoveryDays int
	// MinRecoveryDays is the shortest window accepted (7; tests lower it).
	MinRecoveryDays *int
	// MaxVersions is the retention of resources that set none.
	MaxVersions int
}

func (d Deps) now() time.Time {
	if d.Lifecycle.Now != nil {
		return d.Lifecycle.Now().UTC()
	}
	return time.Now().UTC()
}

func (d Deps) recoveryDays() int {
	if d.Lifecycle.RecoveryDays > 0 {
		return d.Lifecycle.RecoveryDays
	}
	return DefaultRecoveryDays
}

func (d Deps) minRecoveryDays() int {
	if d.Lifecycle.MinRecoveryDays != nil {
		return *d.Lifecycle.MinRecoveryDays
	}
	return minRecoveryDays
}

func (d Deps) maxVersions() int {
	if d.Lifecycle.MaxVersions > 0 {
		return d.Lifecycle.MaxVersions
	}
	return DefaultMaxVersions
}

var stageName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Target is the resource a lifecycle command acts on, and optionally the
// data version the caller last saw (check-and-set: a mismatch is CONFLICT
// at once, never retried).
type Target struct {
	Meta
	ID              string
	ExpectedVersion *int64
	// Kind, when set, is the only kind of resource the command takes (its
	// Noun): another kind's id is NOT_FOUND.
	Kind string
	// Internal marks the server's own commands (the scheduler's), which no
	// tenancy rule applies to. The API never sets it.
	Internal bool
}

func (t Target) target() string { return t.ID }

// kinds are the resources that hold values, by id prefix.
var kinds = []struct {
	prefix string
	empty  func() Resource
}{
	{userSecretIDPrefix, func() Resource { return &UserSecret{} }},
	{trustedSecretIDPrefix, func() Resource { return &TrustedSecret{} }},
	{secretIDPrefix, func() Resource { return &Secret{} }},
}

// resourceKind returns the empty state and id prefix of the resource id names.
func resourceKind(id string) (Resource, string, bool) {
	for _, k := range kinds {
		if len(id) > len(k.prefix) && id[:len(k.prefix)] == k.prefix {
			return k.empty(), k.prefix, true
		}
	}
	return nil, "", false
}

// changeTarget runs decide on a resource the caller may change: missing,
// foreign and malformed ids are NOT_FOUND; a resource scheduled for deletion
// only takes the commands that allow it (pending); a stale ExpectedVersion
// is CONFLICT.
func (d Deps) changeTarget(ctx context.Context, t Target, pending bool, decide func(r Resource) (Decision, error)) (Result, error) {
	return d.changeTargetWith(ctx, t, pending, nil, decide)
}

// changeTargetOnce is changeTarget for a request that may carry a token
// (claim): once the caller is known to be allowed, a remembered token
// answers its first result (before the check-and-set and deletion checks,
// which the first request passed) or CONFLICT; otherwise the commit of the
// decision remembers it.
func (d Deps) changeTargetOnce(ctx context.Context, t Target, claim *requestToken, decide func(r Resource) (Decision, error)) (Result, error) {
	return d.changeTargetWith(ctx, t, false, claim, decide)
}

func (d Deps) changeTargetWith(ctx context.Context, t Target, pending bool, claim *requestToken, decide func(r Resource) (Decision, error)) (Result, error) {
	if err := requireActor(t.Meta); err != nil {
		return Result{}, err
	}
	empty, prefix, ok := resourceKind(t.ID)
	if !ok || (t.Kind != "" && empty.Noun() != t.Kind) {
		return Result{}, &Error{Code: NotFound, Message: "resource not found (malformed id)"}
	}
	if err := checkResourceID(empty.IDField(), empty.Noun(), prefix, t.ID); err != nil {
		return Result{}, err
	}
	return d.change(ctx, t.Meta, t.ID, empty, claim, func(cur Resource) (Decision, error) {
		b := cur.Base()
		if !b.Exists() || (!t.Internal && !cur.Allows(t.Actor, ActRead)) {
			return Decision{}, notFound(cur.Noun(), t.ID)
		}
		if !t.Internal && !cur.Allows(t.Actor, ActWrite) {
			return Decision{}, denied("%s may not change %s %q", t.Actor.Role, cur.Noun(), t.ID)
		}
		if claim != nil {
			stored, err := d.lookupToken(ctx, claim)
			if err != nil {
				return Decision{}, err
			}
			if stored != nil {
				if !d.sameRequest(claim, stored) || stored.Stream != t.ID {
					return Decision{}, tokenConflict()
				}
				return Decision{Replay: stored.Version}, nil
			}
		}
		if b.PendingDelete && !pending {
			return Decision{}, failed("%s %q is scheduled for deletion: restore it first", cur.Noun(), t.ID)
		}
		if t.ExpectedVersion != nil && *t.ExpectedVersion != b.DataVersion {
			return Decision{}, &Error{Code: Conflict, Field: "expectedVersion",
				Message: fmt.Sprintf("the value is at version %d, not %d", b.DataVersion, *t.ExpectedVersion)}
		}
		return decide(cur)
	})
}

// valueToken is the claim of a value update's token: scoped to the
// resource, fingerprinting the value, the schema and the check-and-set.
func (d Deps) valueToken(t Target, token, op string, schemaID *string, data map[string]any) (*requestToken, error) {
	return d.claimToken(t.Meta, token, op+"/"+t.ID, struct {
		SchemaID        *string
		ExpectedVersion *int64
		Data            map[string]any
	}{schemaID, t.ExpectedVersion, data})
}

func one(cur Resource, typ string, payload any) Decision {
	return Decision{Tenant: cur.Tenant(), Events: []Emit{{Type: typ, Payload: payload}}}
}

// keyName names the data key of version n of resource id: each version has
// its own, so one version can be destroyed alone.
// KeyName names the data key of version n of resource id.
func KeyName(id string, n int64) string { return id + "/v" + strconv.FormatInt(n, 10) }

// SetStage attaches Stage to Version (0 detaches it); the stage leaves the
// version it was on.
type SetStage struct {
	Target
	Stage   string
	Version int64
}

// HandleSetStage implements SetStage.
func (d Deps) HandleSetStage(ctx context.Context, cmd SetStage) (Result, error) {
	return d.changeTarget(ctx, cmd.Target, false, func(r Resource) (Decision, error) {
		b := r.Base()
		if !stageName.MatchString(cmd.Stage) {
			return Decision{}, invalid("stage", "must match %s", stageName)
		}
		if cmd.Stage == StageCurrent || cmd.Stage == StagePrevious {
			return Decision{}, invalid("stage", "%s moves with every new value (use rollbackSecret)", cmd.Stage)
		}
		if cmd.Version != 0 {
			if _, ok := b.Version(cmd.Version); !ok {
				return Decision{}, invalid("version", "version %d is not readable", cmd.Version)
			}
		}
		if b.Stages[cmd.Stage] == cmd.Version {
			return Decision{}, nil
		}
		if _, exists := b.Stages[cmd.Stage]; !exists && cmd.Version != 0 && customStages(b) >= maxCustomStages {
			return Decision{}, failed("at most %d custom stages per resource", maxCustomStages)
		}
		return one(r, events.StageMovedV1, events.StageMoved{Stage: cmd.Stage, Version: cmd.Version}), nil
	})
}

func customStages(b *Versioned) int {
	n := 0
	for st := range b.Stages {
		if st != StageCurrent && st != StagePrevious {
			n++
		}
	}
	return n
}

// DestroyVersions crypto-shreds versions of a value (Vault's destroy): their
// keys are destroyed, the other versions stay readable.
type DestroyVersions struct {
	Target
	Versions []int64
}

// HandleDestroyVersions implements DestroyVersions.
func (d Deps) HandleDestroyVersions(ctx context.Context, cmd DestroyVersions) (Result, error) {
	return d.changeTarget(ctx, cmd.Target, false, func(r Resource) (Decision, error) {
		b := r.Base()
		if len(cmd.Versions) == 0 || len(cmd.Versions) > maxVersionsLimit {
			return Decision{}, invalid("versions", "name 1 to %d versions", maxVersionsLimit)
		}
		var todo []int64
		for _, n := range cmd.Versions {
			if _, ok := b.Version(n); !ok {
				return Decision{}, invalid("versions", "version %d is not readable", n)
			}
			if n == b.DataVersion {
				return Decision{}, failed("version %d holds %s: write a new value first", n, StageCurrent)
			}
			if !slices.Contains(todo, n) {
				todo = append(todo, n)
			}
		}
		slices.Sort(todo)
		return d.destroying(r, todo, "destroy"), nil
	})
}

// destroying is the decision that destroys versions (the projections
// destroy their keys with the event: projections.KeyShredding).
func (d Deps) destroying(r Resource, versions []int64, reason string) Decision {
	return one(r, events.VersionsDestroyedV1, events.VersionsDestroyed{Versions: versions, Reason: reason})
}

// SetEnabled enables or disables reading a resource's values.
type SetEnabled struct {
	Target
	Enabled bool
}

// HandleSetEnabled implements SetEnabled.
func (d Deps) HandleSetEnabled(ctx context.Context, cmd SetEnabled) (Result, error) {
	return d.changeTarget(ctx, cmd.Target, false, func(r Resource) (Decision, error) {
		switch b := r.Base(); {
		case cmd.Enabled && b.Disabled:
			return one(r, events.EnabledV1, events.Enabled{}), nil
		case !cmd.Enabled && !b.Disabled:
			return one(r, events.DisabledV1, events.Disabled{}), nil
		}
		return Decision{}, nil
	})
}

// Delete removes a resource: by default after a recovery window
// (RecoveryWindowDays, 7 to 30; the server's default when nil), during which
// Restore brings it back; with Force at once, destroying every key.
type Delete struct {
	Target
	RecoveryWindowDays *int
	Force              bool
}

// HandleDelete implements Delete.
func (d Deps) HandleDelete(ctx context.Context, cmd Delete) (Result, error) {
	return d.changeTarget(ctx, cmd.Target, true, func(r Resource) (Decision, error) {
		if cmd.Force {
			if cmd.RecoveryWindowDays != nil {
				return Decision{}, invalid("recoveryWindowDays", "does not go with force")
			}
			return d.removal(r), nil
		}
		if r.Base().PendingDelete {
			return Decision{}, failed("%s %q is already scheduled for deletion", r.Noun(), r.Base().ID)
		}
		days := d.recoveryDays()
		if cmd.RecoveryWindowDays != nil {
			days = *cmd.RecoveryWindowDays
			if days < d.minRecoveryDays() || days > maxRecoveryDays {
				return Decision{}, invalid("recoveryWindowDays", "must be %d to %d", d.minRecoveryDays(), maxRecoveryDays)
			}
		}
		at := d.now().Add(time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Microsecond)
		return d.guardDeletion(r, one(r, events.DeletionScheduledV1, events.DeletionScheduled{DeleteAt: at, RecoveryWindowDays: days})), nil
	})
}

// removal is the final deletion: the event and the destruction of every
// version's key commit together (projections.KeyShredding).
func (d Deps) removal(r Resource) Decision {
	id := r.Base().ID
	typ, payload := events.SecretDeletedV1, any(events.SecretDeleted{})
	switch r.(type) {
	case *UserSecret:
		typ, payload = events.UserSecretDeletedV1, events.UserSecretDeleted{}
	case *TrustedSecret:
		typ, payload = events.TrustedSecretDeletedV1, events.TrustedSecretDeleted{}
	}
	dec := one(r, typ, payload)
	dec.After = func() { d.Keys.Forget(id) }
	return d.guardDeletion(r, dec)
}

// Restore cancels a scheduled deletion: the resource is back unchanged.
type Restore struct{ Target }

// HandleRestore implements Restore.
func (d Deps) HandleRestore(ctx context.Context, cmd Restore) (Result, error) {
	return d.changeTarget(ctx, cmd.Target, true, func(r Resource) (Decision, error) {
		if !r.Base().PendingDelete {
			return Decision{}, failed("%s %q is not scheduled for deletion", r.Noun(), r.Base().ID)
		}
		return one(r, events.RestoredV1, events.Restored{}), nil
	})
}

// Purge is the scheduler's final deletion of a resource whose recovery
// window ended (a no-op otherwise, so several schedulers agree).
type Purge struct{ Target }

// HandlePurge implements Purge.
func (d Deps) HandlePurge(ctx context.Context, cmd Purge) (Result, error) {
	return d.changeTarget(ctx, cmd.Target, true, func(r Resource) (Decision, error) {
		b := r.Base()
		if !b.PendingDelete || b.DeleteAt == nil || d.now().Before(*b.DeleteAt) {
			return Decision{}, nil
		}
		return d.removal(r), nil
	})
}

// Rollback makes a new version whose value is ToVersion's, sealed anew.
type Rollback struct {
	Target
	ToVersion int64
}

// HandleRollback implements Rollback.
func (d Deps) HandleRollback(ctx context.Context, cmd Rollback) (Result, error) {
	return d.changeTarget(ctx, cmd.Target, false, func(r Resource) (Decision, error) {
		b := r.Base()
		v, ok := b.Version(cmd.ToVersion)
		if !ok {
			return Decision{}, failed("version %d is not readable (destroyed or never written)", cmd.ToVersion)
		}
		old, err := d.sealedVersion(ctx, r, v)
		if err != nil {
			return Decision{}, err
		}
		plain, err := d.openVersion(ctx, b.ID, v, old.Data)
		if err != nil {
			return Decision{}, err
		}
		return d.sealed(ctx, r, old.SchemaID, old.Provider, plain, valueOrigin{rolledBackFrom: cmd.ToVersion})
	})
}

// Rotate writes a generated value for the fields the schema generates.
type Rotate struct{ Target }

// HandleRotate implements Rotate.
func (d Deps) HandleRotate(ctx context.Context, cmd Rotate) (Result, error) {
	return d.changeTarget(ctx, cmd.Target, false, func(r Resource) (Decision, error) {
		b := r.Base()
		schema, ok := d.Schemas.Lookup(b.SchemaID)
		if !ok || len(schema.Generated) == 0 {
			return Decision{}, failed("schema %q generates no fields: write the new value with update…Data", b.SchemaID)
		}
		current, err := d.open(ctx, KeyName(b.ID, b.DataVersion), b.ID, b.DataEventVersion, b.Data)
		if err != nil {
			return Decision{}, err
		}
		for field, policy := range schema.Generated {
			v, err := policy.Generate()
			if err != nil {
				return Decision{}, err
			}
			current[field] = v
		}
		plain, provider, err := checkData(d.Schemas, b.SchemaID, current)
		if err != nil {
			return Decision{}, err
		}
		return d.sealed(ctx, r, b.SchemaID, provider, plain, valueOrigin{rotated: true})
	})
}

// MarkRotationDue is the scheduler's: when a rotation is due it records so
// (once per period, however many schedulers run).
type MarkRotationDue struct{ Target }

// HandleMarkRotationDue implements MarkRotationDue.
func (d Deps) HandleMarkRotationDue(ctx context.Context, cmd MarkRotationDue) (Result, error) {
	return d.changeTarget(ctx, cmd.Target, false, func(r Resource) (Decision, error) {
		b := r.Base()
		now := d.now()
		if !b.AutoRotation || b.NextRotation == nil || now.Before(*b.NextRotation) {
			return Decision{}, nil
		}
		period := time.Duration(b.RotationPeriodHours) * time.Hour
		next := b.NextRotation.Add(period)
		for !next.After(now) { // a scheduler that was down catches up once
			next = next.Add(period)
		}
		return one(r, events.RotationDueV1, events.RotationDue{DueAt: *b.NextRotation, Next: next}), nil
	})
}

// ChangeSettings changes description, retention and the rotation schedule.
type ChangeSettings struct {
	Target
	Description         *string
	MaxVersions         *int
	AutoRotation        *bool
	RotationPeriodHours *int
}

// settingsChange validates requested settings against the current ones; nil
// when nothing changes.
func settingsChange(cmd ChangeSettings, cur events.Settings) (*events.SettingsChanged, error) {
	var out events.SettingsChanged
	changed := false
	if cmd.Description != nil && *cmd.Description != cur.Description {
		if err := checkDescription(*cmd.Description); err != nil {
			return nil, err
		}
		out.Description, changed = cmd.Description, true
	}
	if cmd.MaxVersions != nil && *cmd.MaxVersions != cur.MaxVersions {
		if err := checkMaxVersions(*cmd.MaxVersions); err != nil {
			return nil, err
		}
		out.MaxVersions, changed = cmd.MaxVersions, true
	}
	if cmd.AutoRotation != nil && *cmd.AutoRotation != cur.AutoRotation {
		out.AutoRotation, changed = cmd.AutoRotation, true
	}
	if cmd.RotationPeriodHours != nil && *cmd.RotationPeriodHours != cur.RotationPeriodHours {
		out.RotationPeriodHours, changed = cmd.RotationPeriodHours, true
	}
	period := cur.RotationPeriodHours
	if out.RotationPeriodHours != nil {
		period = *out.RotationPeriodHours
	}
	auto := cur.AutoRotation
	if out.AutoRotation != nil {
		auto = *out.AutoRotation
	}
	if err := checkRotation(auto, period); err != nil {
		return nil, err
	}
	if !changed {
		return nil, nil
	}
	return &out, nil
}

func checkDescription(s string) error {
	if err := checkText("description", s); err != nil {
		return err
	}
	if len([]rune(s)) > maxDescription {
		return invalid("description", "must be at most %d characters", maxDescription)
	}
	return nil
}

func checkMaxVersions(n int) error {
	if n < 0 || n > maxVersionsLimit {
		return invalid("maxVersions", "must be 1 to %d (0: the server's default)", maxVersionsLimit)
	}
	return nil
}

func checkRotation(auto bool, hours int) error {
	if hours != 0 && (hours < minRotationHours || hours > maxRotationHours) {
		return invalid("rotationPeriodHours", "must be %d to %d", minRotationHours, maxRotationHours)
	}
	if auto && hours == 0 {
		return invalid("rotationPeriodHours", "is required with autoRotation")
	}
	return nil
}

// checkSettings validates the settings of a new resource.
func (d Deps) checkSettings(s events.Settings) error {
	if err := checkDescription(s.Description); err != nil {
		return err
	}
	if err := checkMaxVersions(s.MaxVersions); err != nil {
		return err
	}
	if s.KmsKeyID != "" && !d.Keys.HasKey(s.KmsKeyID) {
		return invalid("kmsKeyId", "no such key in the keyring")
	}
	return checkRotation(s.AutoRotation, s.RotationPeriodHours)
}

// HandleChangeSettings implements ChangeSettings.
func (d Deps) HandleChangeSettings(ctx context.Context, cmd ChangeSettings) (Result, error) {
	return d.changeTarget(ctx, cmd.Target, false, func(r Resource) (Decision, error) {
		ev, err := settingsChange(cmd, r.Base().Settings)
		if err != nil || ev == nil {
			return Decision{}, err
		}
		return one(r, events.SettingsChangedV1, *ev), nil
	})
}

// valueOrigin says where a new version's value comes from.
type valueOrigin struct {
	rolledBackFrom int64
	rotated        bool
}

// sealed is the decision recording plain as the next version of r: sealed
// with a new key of its own (stored with the event), stages moved, and the
// oldest unstaged versions beyond the retention shredded in the same commit.
func (d Deps) sealed(ctx context.Context, r Resource, schemaID, provider string, plain []byte, origin valueOrigin) (Decision, error) {
	b := r.Base()
	next := b.DataVersion + 1
	key, store, err := d.Keys.New(KeyName(b.ID, next), b.KmsKeyID)
	if err != nil {
		return Decision{}, err
	}
	sealed, err := events.Seal(key, b.ID, b.StreamVersion+1, plain)
	if err != nil {
		return Decision{}, err
	}
	var typ string
	var payload any
	switch r.(type) {
	case *UserSecret:
		typ, payload = events.UserSecretDataUpdatedV1, events.UserSecretDataUpdated{SchemaID: schemaID, Provider: provider,
			Data: sealed, RolledBackFrom: origin.rolledBackFrom, Rotated: origin.rotated}
	case *TrustedSecret:
		typ, payload = events.TrustedSecretDataUpdatedV1, events.TrustedSecretDataUpdated{SchemaID: schemaID, Provider: provider,
			Data: sealed, RolledBackFrom: origin.rolledBackFrom, Rotated: origin.rotated}
	default:
		typ, payload = events.SecretDataUpdatedV1, events.SecretDataUpdated{SchemaID: schemaID, Provider: provider,
			Data: sealed, RolledBackFrom: origin.rolledBackFrom, Rotated: origin.rotated}
	}
	dec := one(r, typ, payload)
	dec.Also = store
	if old := d.beyondRetention(b); len(old) > 0 {
		dec.Events = append(dec.Events, d.destroying(r, old, "retention").Events...)
	}
	return dec, nil
}

// beyondRetention lists the oldest versions without a stage that a new
// version pushes beyond the resource's retention.
func (d Deps) beyondRetention(b *Versioned) []int64 {
	limit := b.MaxVersions
	if limit == 0 {
		limit = d.maxVersions()
	}
	excess := len(b.Versions) + 1 - limit
	var out []int64
	for _, v := range b.Versions {
		if excess <= 0 {
			break
		}
		staged := false
		for st, n := range b.Stages {
			// SYSCURRENT moves to next; what it leaves becomes SYSPREVIOUS.
			if n == v.Number && st != StagePrevious {
				staged = true
			}
		}
		if v.Number == b.DataVersion {
			staged = true // becomes SYSPREVIOUS
		}
		if !staged {
			out = append(out, v.Number)
			excess--
		}
	}
	return out
}

// sealedVersion reads the payload that sealed version v (one indexed lookup
// in the log; the current version is in the state).
func (d Deps) sealedVersion(ctx context.Context, r Resource, v VersionInfo) (sealedPayload, error) {
	b := r.Base()
	if v.Number == b.DataVersion {
		return sealedPayload{SchemaID: b.SchemaID, Provider: b.Provider, Data: b.Data}, nil
	}
	rec, err := d.Store.ReadVersion(ctx, b.ID, v.EventVersion)
	if err != nil {
		return sealedPayload{}, err
	}
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return sealedPayload{}, err
	}
	valued, ok := ev.(events.Valued)
	if !ok {
		return sealedPayload{}, fmt.Errorf("commands: %s@%d carries no value", b.ID, v.EventVersion)
	}
	out := sealedPayload{Data: valued.SealedValue()}
	out.SchemaID, out.Provider = valued.Schema()
	return out, nil
}

type sealedPayload struct {
	SchemaID, Provider string
	Data               events.Sealed
}

// openVersion decrypts version v's value as bytes.
func (d Deps) openVersion(ctx context.Context, id string, v VersionInfo, sealed events.Sealed) ([]byte, error) {
	key, err := d.Keys.Get(ctx, KeyName(id, v.Number))
	if err != nil {
		return nil, err
	}
	return events.Open(key, id, v.EventVersion, sealed)
}

// guardDeletion adds to a deletion (scheduled or final) the checks its
// resource needs in the deleting transaction: a trusted secret that a live
// secret links to is not deleted.
func (d Deps) guardDeletion(r Resource, dec Decision) Decision {
	if t, ok := r.(*TrustedSecret); ok {
		dec.Checks = append(dec.Checks, d.noLinkedSecret(t))
	}
	return dec
}

func failed(format string, args ...any) *Error {
	return &Error{Code: FailedPrecondition, Message: fmt.Sprintf(format, args...)}
}

// ListKeys asks for the keyring's keys (names and versions, never material).
type ListKeys struct{ Meta }

func (ListKeys) target() string { return "" }

// HandleListKeys answers the keyring's keys to DOMAIN_ADMIN and SYSTEM.
func (d Deps) HandleListKeys(_ context.Context, q ListKeys) ([]events.KeyInfo, error) {
	if err := requireActor(q.Meta); err != nil {
		return nil, err
	}
	if r := q.Actor.Role; r != auth.RoleDomainAdmin && r != auth.RoleSystem {
		return nil, denied("the keyring's keys are listed to DOMAIN_ADMIN and SYSTEM")
	}
	return d.Keys.Keyring().Keys(), nil
}
