package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Issue 11's "What must show", through HTTP and GraphQL on PostgreSQL, for
// Secret and UserSecret alike. Every value written is a canary that no
// server log may hold (lcEnv.scanLogs runs after the servers stop).

const (
	lcSetStage = `mutation($id: ID!, $st: String!, $v: Int, $ev: Int) { set%SStage(%I: $id, stage: $st, version: $v, expectedVersion: $ev) { ` + lcFields + ` } }`
	lcDestroy  = `mutation($id: ID!, $vs: [Int!]!, $ev: Int) { destroy%SVersions(%I: $id, versions: $vs, expectedVersion: $ev) { ` + lcFields + ` } }`
	lcRollback = `mutation($id: ID!, $to: Int!, $ev: Int) { rollback%S(%I: $id, toVersion: $to, expectedVersion: $ev) { ` + lcFields + ` } }`
	lcRotate   = `mutation($id: ID!, $ev: Int) { rotate%S(%I: $id, expectedVersion: $ev) { ` + lcFields + ` } }`
	lcDisable  = `mutation($id: ID!, $ev: Int) { disable%S(%I: $id, expectedVersion: $ev) { ` + lcFields + ` } }`
	lcEnable   = `mutation($id: ID!, $ev: Int) { enable%S(%I: $id, expectedVersion: $ev) { ` + lcFields + ` } }`
	lcRestore  = `mutation($id: ID!) { restore%S(%I: $id) { ` + lcFields + ` } }`
	lcDelete   = `mutation($id: ID!, $days: Int, $force: Boolean, $ev: Int) { delete%S(%I: $id, recoveryWindowDays: $days, force: $force, expectedVersion: $ev) }`
	lcPending  = `query($type: String) { pendingDeletions(resourceType: $type) { resourceId resourceType name scheduledDeleteTime deletedAt deletedBy } }`
)

type lcPendingRow struct {
	ResourceID          string
	ResourceType        string
	Name                string
	ScheduledDeleteTime time.Time
	DeletedAt           time.Time
	DeletedBy           string
}

// pending is the recycle bin token sees, of this kind.
func (k lcKind) pending(token string) map[string]lcPendingRow {
	k.t.Helper()
	r := k.do(token, lcPending, map[string]any{"type": k.String()})
	require.Empty(k.t, r.Errors)
	var out struct{ PendingDeletions []lcPendingRow }
	r.Decode(k.t, &out)
	m := map[string]lcPendingRow{}
	for _, p := range out.PendingDeletions {
		require.Equal(k.t, k.String(), p.ResourceType)
		m[p.ResourceID] = p
	}
	return m
}

// deleted reports whether a delete answered true.
func (k lcKind) deleted(r gqlResponse) bool {
	k.t.Helper()
	require.Empty(k.t, r.Errors)
	var m map[string]bool
	r.Decode(k.t, &m)
	for _, v := range m {
		return v
	}
	return false
}

func lcVal(v string) map[string]any { return map[string]any{"v": v} }

// ---------------------------------------------------------------------------
// Versions and stages

func TestLifecycleVersionsAndStages(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{})
	for _, k := range e.kinds() {
		t.Run(k.String(), func(t *testing.T) { lcVersionsAndStages(k.on(t)) })
	}
}

func lcVersionsAndStages(k lcKind) {
	t, e := k.t, k.e
	vals := make([]string, 6) // vals[n]: version n's value
	vals[1] = e.canary("v1")
	created := k.create(map[string]any{"name": "versions", "data": lcVal(vals[1])})
	id := created.ID
	require.Equal(t, 1, created.Version)
	require.Equal(t, "ENABLED", created.State)
	require.Equal(t, []string{"SYSCURRENT"}, lcByVersion(k.versions(id))[1].Stages)

	for n := 2; n <= 5; n++ {
		vals[n] = e.canary(fmt.Sprintf("v%d", n))
		require.Equal(t, n, k.write(id, lcVal(vals[n])).Version)
		// SYSCURRENT and SYSPREVIOUS move with each new value.
		vs := lcByVersion(k.versions(id))
		require.Len(t, vs, n)
		require.Equal(t, []string{"SYSCURRENT"}, vs[n].Stages, "after writing version %d", n)
		require.Equal(t, []string{"SYSPREVIOUS"}, vs[n-1].Stages, "after writing version %d", n)
		for m := 1; m < n-1; m++ {
			require.Empty(t, vs[m].Stages, "version %d after writing %d", m, n)
		}
	}

	var reads []int // the data version of every successful read, in order
	read := func(version *int, stage string) (string, int) {
		t.Helper()
		d, v := k.mustRead(id, version, stage)
		reads = append(reads, v)
		s, _ := d["v"].(string)
		return s, v
	}
	readCode := func(version *int, stage, code string) {
		t.Helper()
		_, _, r := k.read(id, version, stage)
		lcWant(t, r, code, "reading version %v stage %q", lcIntStr(version), stage)
	}
	moves := 0
	setStage := func(stage string, version *int) lcRes {
		t.Helper()
		moves++
		return k.ok(lcSetStage, map[string]any{"id": id, "st": stage, "v": version})
	}
	setStageCode := func(stage string, version *int, code string) {
		t.Helper()
		r := k.do(k.writer(), lcSetStage, map[string]any{"id": id, "st": stage, "v": version})
		lcWant(t, r, code, "stage %q on version %v", stage, lcIntStr(version))
	}

	// Each version by number, the default, and the system stages.
	for n := 1; n <= 5; n++ {
		v, got := read(lcIntp(n), "")
		require.Equal(t, vals[n], v)
		require.Equal(t, n, got)
	}
	v, n := read(nil, "")
	require.Equal(t, [2]any{vals[5], 5}, [2]any{v, n}, "the default is SYSCURRENT")
	v, n = read(nil, "SYSCURRENT")
	require.Equal(t, [2]any{vals[5], 5}, [2]any{v, n})
	v, n = read(nil, "SYSPREVIOUS")
	require.Equal(t, [2]any{vals[4], 4}, [2]any{v, n})
	readCode(lcIntp(6), "", "FAILED_PRECONDITION")
	readCode(lcIntp(0), "", "FAILED_PRECONDITION")
	readCode(nil, "no-such-stage", "INVALID_ARGUMENT")
	// Reading values is SYSTEM's: the writer is refused.
	_, _, r := k.readAs(k.writer(), id, nil, "")
	lcWant(t, r, "PERMISSION_DENIED", "value read by a non-SYSTEM caller")

	// A custom stage: attached, read through, moved, detached.
	res := setStage("blue", lcIntp(3))
	require.Equal(t, 5, res.Version, "a stage is no new value")
	v, n = read(nil, "blue")
	require.Equal(t, [2]any{vals[3], 3}, [2]any{v, n})
	require.Equal(t, []string{"blue"}, lcByVersion(k.versions(id))[3].Stages)
	setStage("blue", lcIntp(1))
	v, n = read(nil, "blue")
	require.Equal(t, [2]any{vals[1], 1}, [2]any{v, n}, "the stage moved")
	vs := lcByVersion(k.versions(id))
	require.Empty(t, vs[3].Stages, "the stage left version 3")
	require.Equal(t, []string{"blue"}, vs[1].Stages)
	setStage("green", lcIntp(1))
	require.Equal(t, []string{"blue", "green"}, lcByVersion(k.versions(id))[1].Stages, "a version carries several stages")
	setStage("green", nil) // detach
	readCode(nil, "green", "INVALID_ARGUMENT")
	require.Equal(t, []string{"blue"}, lcByVersion(k.versions(id))[1].Stages)
	// Setting a stage where it already is appends nothing.
	before := e.streamVersion(t, id)
	k.ok(lcSetStage, map[string]any{"id": id, "st": "blue", "v": 1})
	require.Equal(t, before, e.streamVersion(t, id), "a stage set where it is appends nothing")

	// Names: ^[a-zA-Z0-9_-]{1,64}$; the system stages move by themselves.
	for _, bad := range []string{"", "has space", "semi;colon", "dot.ted", "ümlaut", "slash/", strings.Repeat("a", 65), "SYSCURRENT", "SYSPREVIOUS"} {
		setStageCode(bad, lcIntp(2), "INVALID_ARGUMENT")
	}
	setStage(strings.Repeat("a", 63)+"Z", lcIntp(2))
	setStage(strings.Repeat("a", 63)+"Z", nil)
	setStage("A_b-9", lcIntp(2))
	setStage("A_b-9", nil)
	setStageCode("red", lcIntp(99), "INVALID_ARGUMENT")

	// At most 12 custom stages (blue is the first).
	for i := 1; i <= 11; i++ {
		setStage(fmt.Sprintf("s%d", i), lcIntp(1+i%5))
	}
	setStageCode("s12", lcIntp(2), "FAILED_PRECONDITION")
	setStage("s1", lcIntp(4)) // moving one of the twelve is fine
	setStage("s11", nil)      // detaching makes room
	setStage("s12", lcIntp(2))
	for i := 1; i <= 12; i++ {
		if i != 11 {
			setStage(fmt.Sprintf("s%d", i), nil)
		}
	}
	vs = lcByVersion(k.versions(id))
	require.Equal(t, []string{"blue"}, vs[1].Stages)
	for _, m := range []int{2, 3} {
		require.Empty(t, vs[m].Stages)
	}

	// Destroy version 2: it is unreadable, 1 and 3 still open.
	destroyed := 0
	res = k.ok(lcDestroy, map[string]any{"id": id, "vs": []int{2}})
	destroyed++
	require.Equal(t, 5, res.Version)
	readCode(lcIntp(2), "", "FAILED_PRECONDITION")
	for _, m := range []int{1, 3} {
		v, _ := read(lcIntp(m), "")
		require.Equal(t, vals[m], v, "version %d after destroying 2", m)
	}
	vs = lcByVersion(k.versions(id))
	require.Len(t, vs, 5, "a destroyed version stays listed")
	for m := 1; m <= 5; m++ {
		require.Equal(t, m != 2, vs[m].Readable, "version %d readable", m)
	}
	keys := e.keyStates(t, id)
	for m := 1; m <= 5; m++ {
		gone, ok := keys[fmt.Sprintf("%s/v%d", id, m)]
		require.True(t, ok, "version %d has a data key of its own: %v", m, keys)
		require.Equal(t, m == 2, gone, "data key of version %d destroyed", m)
	}
	// Refusals: the current version, an unreadable one, none.
	for _, c := range []struct {
		vs   []int
		code string
	}{{[]int{5}, "FAILED_PRECONDITION"}, {[]int{3, 5}, "FAILED_PRECONDITION"}, {[]int{2}, "INVALID_ARGUMENT"},
		{[]int{99}, "INVALID_ARGUMENT"}, {[]int{}, "INVALID_ARGUMENT"}} {
		r := k.do(k.writer(), lcDestroy, map[string]any{"id": id, "vs": c.vs})
		lcWant(t, r, c.code, "destroying %v", c.vs)
	}
	require.True(t, lcByVersion(k.versions(id))[3].Readable, "a refused destroy destroys nothing")
	setStageCode("blue", lcIntp(2), "INVALID_ARGUMENT") // no stage on a destroyed version

	// Destroying a staged version takes its stages with it.
	setStage("red", lcIntp(4))
	k.ok(lcDestroy, map[string]any{"id": id, "vs": []int{4}})
	destroyed++
	readCode(nil, "red", "INVALID_ARGUMENT")
	readCode(nil, "SYSPREVIOUS", "INVALID_ARGUMENT")
	vs = lcByVersion(k.versions(id))
	require.False(t, vs[4].Readable)
	require.Empty(t, vs[4].Stages)
	// The next value puts SYSPREVIOUS back on the current one.
	vals = append(vals, e.canary("v6"))
	k.write(id, lcVal(vals[6]))
	v, n = read(nil, "SYSPREVIOUS")
	require.Equal(t, [2]any{vals[5], 5}, [2]any{v, n})

	// The audit trail: each read with the version read, each stage move,
	// each destruction.
	h := k.eventuallyHistory(id, 10*time.Second, func(h []auditEntry) bool { return len(lcOfType(h, k.readType())) >= len(reads) })
	var got []int
	for _, x := range lcOfType(h, k.readType()) {
		got = append(got, x.DataVersion)
		require.Equal(t, "SYSTEM", x.Actor.Role)
		require.Equal(t, id+":access", x.Stream)
	}
	require.Equal(t, reads, got, "every value read is audited with the version read (and failed reads are not)")
	require.Len(t, lcOfType(h, "StageMoved.v1"), moves)
	require.Len(t, lcOfType(h, "VersionsDestroyed.v1"), destroyed)
	for _, x := range lcOfType(h, "VersionsDestroyed.v1") {
		require.Equal(t, 5, x.DataVersion)
	}
	require.Len(t, lcOfType(h, k.dataUpdatedType()), 5)
}

// Retention: maxVersions 3 shreds the oldest versions without a stage.
func TestLifecycleRetention(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{})
	for _, k := range e.kinds() {
		t.Run(k.String(), func(t *testing.T) {
			k := k.on(t)
			for _, bad := range []int{-1, 1001} {
				lcWant(t, k.tryCreate(k.writer(), map[string]any{"name": "r", "data": lcVal("x"), "maxVersions": bad}),
					"INVALID_ARGUMENT", "maxVersions %d", bad)
			}
			vals := []string{"", e.canary("r1")}
			res := k.create(map[string]any{"name": "retained", "maxVersions": 3, "data": lcVal(vals[1])})
			id := res.ID
			require.Equal(t, lcIntp(3), res.MaxVersions)
			lcWant(t, k.tryUpdate(k.writer(), map[string]any{k.q("%I"): id, "maxVersions": 1001}), "INVALID_ARGUMENT", "maxVersions 1001")
			k.ok(lcSetStage, map[string]any{"id": id, "st": "keep", "v": 1})
			for n := 2; n <= 6; n++ {
				vals = append(vals, e.canary(fmt.Sprintf("r%d", n)))
				k.write(id, lcVal(vals[n]))
			}
			vs := lcByVersion(k.versions(id))
			require.Len(t, vs, 6)
			for n, want := range map[int]bool{1: true, 2: false, 3: false, 4: false, 5: true, 6: true} {
				require.Equal(t, want, vs[n].Readable, "version %d readable", n)
			}
			require.Equal(t, []string{"keep"}, vs[1].Stages, "a version with a custom stage is kept")
			require.Equal(t, []string{"SYSPREVIOUS"}, vs[5].Stages)
			require.Equal(t, []string{"SYSCURRENT"}, vs[6].Stages)
			for _, n := range []int{2, 3, 4} {
				_, _, r := k.read(id, lcIntp(n), "")
				lcWant(t, r, "FAILED_PRECONDITION", "reading shredded version %d", n)
			}
			for _, n := range []int{1, 5, 6} {
				d, _ := k.mustRead(id, lcIntp(n), "")
				require.Equal(t, vals[n], d["v"])
			}
			keys := e.keyStates(t, id)
			for n := 1; n <= 6; n++ {
				require.Equal(t, n >= 2 && n <= 4, keys[fmt.Sprintf("%s/v%d", id, n)], "data key of version %d destroyed", n)
			}
			h := k.history(id)
			require.Len(t, lcOfType(h, "VersionsDestroyed.v1"), 3, "one destruction with each of the writes 4, 5, 6")
		})
	}
}

// ---------------------------------------------------------------------------
// State

func TestLifecycleDisableEnable(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{})
	for _, k := range e.kinds() {
		t.Run(k.String(), func(t *testing.T) {
			k := k.on(t)
			val := e.canary("state")
			id := k.create(map[string]any{"name": "stateful", "data": lcVal(val), "description": "d"}).ID

			lcWant(t, k.do(k.denied(), lcDisable, map[string]any{"id": id}), "PERMISSION_DENIED", "disable by a reader")
			res := k.ok(lcDisable, map[string]any{"id": id})
			require.Equal(t, "DISABLED", res.State)
			got := k.mustGet(id)
			require.Equal(t, "DISABLED", got.State)
			require.Equal(t, "stateful", got.Name, "metadata stays visible")
			require.Equal(t, "d", *got.Description)
			require.True(t, k.listed(id), "a disabled resource is still listed")
			require.Len(t, k.versions(id), 1, "its versions are still listed")
			for _, c := range []struct {
				v  *int
				st string
			}{{nil, ""}, {lcIntp(1), ""}, {nil, "SYSCURRENT"}} {
				_, _, r := k.read(id, c.v, c.st)
				lcWant(t, r, "FAILED_PRECONDITION", "reading a disabled value (version %v stage %q)", lcIntStr(c.v), c.st)
			}
			before := e.streamVersion(t, id)
			require.Equal(t, "DISABLED", k.ok(lcDisable, map[string]any{"id": id}).State)
			require.Equal(t, before, e.streamVersion(t, id), "disabling a disabled resource appends nothing")

			lcWant(t, k.do(k.denied(), lcEnable, map[string]any{"id": id}), "PERMISSION_DENIED", "enable by a reader")
			require.Equal(t, "ENABLED", k.ok(lcEnable, map[string]any{"id": id}).State)
			require.Equal(t, "ENABLED", k.mustGet(id).State)
			d, _ := k.mustRead(id, nil, "")
			require.Equal(t, val, d["v"])

			h := k.eventuallyHistory(id, 10*time.Second, func(h []auditEntry) bool { return len(lcOfType(h, k.readType())) == 1 })
			types := lcTypes(h)
			require.Equal(t, []string{k.String() + "Created.v1", "Disabled.v1", "Enabled.v1", k.readType()}, types)
			for i, x := range h[1:3] {
				require.Equal(t, k.String(), x.ResourceType)
				require.Equal(t, 1, x.DataVersion)
				require.NotNil(t, x.Actor.UserID)
				states := []any{"ENABLED", "DISABLED"}
				if i == 1 {
					states[0], states[1] = states[1], states[0]
				}
				require.Len(t, x.Changes, 1, "%s: %+v", x.Type, x.Changes)
				require.Equal(t, "state", x.Changes[0].Field)
				require.Equal(t, states, []any{x.Changes[0].Old, x.Changes[0].New}, x.Type)
				// asOf reads show the state as it was.
				require.Equal(t, states[1], k.asOf(id, x.OccurredAt).State, "asOf %s", x.Type)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Recovery window

func TestLifecycleRecoveryWindow(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{})
	for _, k := range e.kinds() {
		t.Run(k.String(), func(t *testing.T) { lcRecoveryWindow(k.on(t)) })
	}
}

func lcRecoveryWindow(k lcKind) {
	t, e := k.t, k.e
	vals := []string{"", e.canary("rw1"), e.canary("rw2")}
	id := k.create(map[string]any{"name": "recyclable", "data": lcVal(vals[1])}).ID
	k.write(id, lcVal(vals[2]))
	k.ok(lcSetStage, map[string]any{"id": id, "st": "keep", "v": 1})
	beforeVersions := k.versions(id)
	beforeRes := k.mustGet(id)

	// Refusals: the window's bounds, force with a window, stale version, readers.
	for _, days := range []int{-1, 0, 6, 31, 365} {
		lcWant(t, k.do(k.writer(), lcDelete, map[string]any{"id": id, "days": days}), "INVALID_ARGUMENT", "recoveryWindowDays %d", days)
	}
	lcWant(t, k.do(k.writer(), lcDelete, map[string]any{"id": id, "days": 7, "force": true}), "INVALID_ARGUMENT", "force with a window")
	lcWant(t, k.do(k.writer(), lcDelete, map[string]any{"id": id, "ev": 1}), "CONFLICT", "delete with a stale expectedVersion")
	lcWant(t, k.do(k.denied(), lcDelete, map[string]any{"id": id}), "PERMISSION_DENIED", "delete by a reader")
	require.True(t, k.listed(id))

	// Delete with the default window (30 days).
	at := e.clock.Now()
	require.True(t, k.deleted(k.do(k.writer(), lcDelete, map[string]any{"id": id, "ev": 2})))
	_, r := k.get(k.writer(), id)
	lcWant(t, r, "NOT_FOUND", "get of a resource scheduled for deletion")
	require.False(t, k.listed(id), "gone from the list")
	_, _, r = k.read(id, nil, "")
	lcWant(t, r, "NOT_FOUND", "value of a resource scheduled for deletion")
	_, _, r = k.read(id, lcIntp(1), "")
	lcWant(t, r, "NOT_FOUND", "old value of a resource scheduled for deletion")
	_, r = k.versionsAs(k.writer(), id, 10, nil)
	lcWant(t, r, "NOT_FOUND", "versions of a resource scheduled for deletion")
	p, ok := k.pending(k.writer())[id]
	require.True(t, ok, "listed in pendingDeletions")
	require.Equal(t, "recyclable", p.Name)
	require.WithinDuration(t, at.Add(30*24*time.Hour), p.ScheduledDeleteTime, time.Minute)
	require.WithinDuration(t, time.Now(), p.DeletedAt, time.Minute)
	require.NotEmpty(t, p.DeletedBy)
	require.Contains(t, k.pending(k.e.admin), id, "the domain's admin sees the recycle bin")
	for who, tok := range k.foreign() {
		require.NotContains(t, k.pending(tok), id, "%s sees another's recycle bin", who)
	}

	// Only restore and a forced delete apply.
	for name, c := range map[string]struct {
		tmpl string
		vars map[string]any
	}{
		"update":       {`mutation($in: Update%SInput!) { update%S(input: $in) { id: %I } }`, map[string]any{"in": map[string]any{k.q("%I"): id, "description": "x"}}},
		"updateData":   {`mutation($in: Update%SDataInput!) { update%SData(input: $in) { id: %I } }`, map[string]any{"in": map[string]any{k.q("%I"): id, "data": lcVal(e.canary("pending-write"))}}},
		"disable":      {lcDisable, map[string]any{"id": id}},
		"enable":       {lcEnable, map[string]any{"id": id}},
		"setStage":     {lcSetStage, map[string]any{"id": id, "st": "x", "v": 1}},
		"destroy":      {lcDestroy, map[string]any{"id": id, "vs": []int{1}}},
		"rollback":     {lcRollback, map[string]any{"id": id, "to": 1}},
		"rotate":       {lcRotate, map[string]any{"id": id}},
		"delete again": {lcDelete, map[string]any{"id": id}},
	} {
		lcWant(t, k.do(k.writer(), c.tmpl, c.vars), "FAILED_PRECONDITION", "%s of a resource scheduled for deletion", name)
	}
	lcWant(t, k.do(k.denied(), lcRestore, map[string]any{"id": id}), "PERMISSION_DENIED", "restore by a reader")
	for who, tok := range k.foreign() {
		lcWant(t, k.do(tok, lcRestore, map[string]any{"id": id}), "NOT_FOUND", "restore by %s", who)
	}

	// Restore: back unchanged, same versions and values.
	res := k.ok(lcRestore, map[string]any{"id": id})
	require.Equal(t, "ENABLED", res.State)
	require.Equal(t, 2, res.Version)
	require.Equal(t, beforeRes, k.mustGet(id), "the same metadata")
	require.Equal(t, lcJSON(t, beforeVersions), lcJSON(t, k.versions(id)), "the same versions and stages")
	for n := 1; n <= 2; n++ {
		d, _ := k.mustRead(id, lcIntp(n), "")
		require.Equal(t, vals[n], d["v"])
	}
	require.True(t, k.listed(id))
	require.NotContains(t, k.pending(k.writer()), id)
	lcWant(t, k.do(k.writer(), lcRestore, map[string]any{"id": id}), "FAILED_PRECONDITION", "restore of a live resource")
	for name, gone := range e.keyStates(t, id) {
		require.False(t, gone, "key %s destroyed by a delete that was restored", name)
	}

	// A 7-day window, then force while pending: deleted at once, for good.
	require.True(t, k.deleted(k.do(k.writer(), lcDelete, map[string]any{"id": id, "days": 7})))
	require.WithinDuration(t, e.clock.Now().Add(7*24*time.Hour), k.pending(k.writer())[id].ScheduledDeleteTime, time.Minute)
	require.True(t, k.deleted(k.do(k.writer(), lcDelete, map[string]any{"id": id, "force": true})))
	lcWant(t, k.do(k.writer(), lcRestore, map[string]any{"id": id}), "NOT_FOUND", "restore after the final deletion")
	require.NotContains(t, k.pending(k.writer()), id)
	keys := e.keyStates(t, id)
	require.Len(t, keys, 2)
	for name, gone := range keys {
		require.True(t, gone, "key %s survived the final deletion", name)
	}
	h := k.history(id)
	want := []string{"DeletionScheduled.v1", "Restored.v1", "DeletionScheduled.v1", k.deletedType()}
	var got []string
	for _, x := range h {
		if x.Type == "DeletionScheduled.v1" || x.Type == "Restored.v1" || x.Type == k.deletedType() {
			got = append(got, x.Type)
		}
	}
	require.Equal(t, want, got)
	require.Equal(t, k.deletedType(), h[len(h)-1].Type, "the history ends with the deletion")
	for _, x := range h {
		var states []any
		for _, c := range x.Changes {
			if c.Field == "state" {
				states = []any{c.Old, c.New}
			}
		}
		switch x.Type {
		case "DeletionScheduled.v1":
			require.Equal(t, []any{"ENABLED", "PENDING_DELETE"}, states, "%s changes %+v", x.Type, x.Changes)
		case "Restored.v1":
			require.Equal(t, []any{"PENDING_DELETE", "ENABLED"}, states, "%s changes %+v", x.Type, x.Changes)
		case k.deletedType():
			require.Equal(t, []any{"PENDING_DELETE", nil}, states, "%s changes %+v", x.Type, x.Changes)
			require.Contains(t, fieldNames(x), "deleted")
		}
	}

	// force: true on a live resource deletes it at once.
	other := k.create(map[string]any{"name": "forced", "data": lcVal(e.canary("forced"))}).ID
	require.True(t, k.deleted(k.do(k.writer(), lcDelete, map[string]any{"id": other, "force": true})))
	_, r = k.get(k.writer(), other)
	lcWant(t, r, "NOT_FOUND", "get after a forced delete")
	lcWant(t, k.do(k.writer(), lcRestore, map[string]any{"id": other}), "NOT_FOUND", "restore after a forced delete")
	require.NotContains(t, k.pending(k.writer()), other)
	require.Equal(t, map[string]bool{other + "/v1": true}, e.keyStates(t, other))
	require.Equal(t, []string{k.String() + "Created.v1", k.deletedType()}, lcTypes(k.history(other)))
}

// ---------------------------------------------------------------------------
// The scheduler: final deletion when the window ends, once across servers.

func TestLifecycleScheduledDeletion(t *testing.T) {
	t.Parallel()
	zero := 0
	e := newLifecycleEnv(t, lcOpts{nodes: 2, minRecoveryDays: &zero})
	type doomed struct {
		k         lcKind
		now, late string // deleted with a 0-day and a 7-day window
	}
	var all []doomed
	for _, k := range e.kinds() {
		d := doomed{k: k}
		for i, idp := range []*string{&d.now, &d.late} {
			*idp = k.create(map[string]any{"name": fmt.Sprintf("doomed-%d", i), "data": lcVal(e.canary("doomed"))}).ID
			k.write(*idp, lcVal(e.canary("doomed2")))
			k.write(*idp, lcVal(e.canary("doomed3")))
			k.ok(lcDestroy, map[string]any{"id": *idp, "vs": []int{1}})
		}
		// Still 7..30 above the (lowered) minimum... and never above 30.
		lcWant(t, k.do(k.writer(), lcDelete, map[string]any{"id": d.now, "days": 31}), "INVALID_ARGUMENT", "31 days")
		lcWant(t, k.do(k.writer(), lcDelete, map[string]any{"id": d.now, "days": -1}), "INVALID_ARGUMENT", "-1 days")
		require.True(t, k.deleted(k.do(k.writer(), lcDelete, map[string]any{"id": d.now, "days": 0})))
		require.True(t, k.deleted(k.do(k.writer(), lcDelete, map[string]any{"id": d.late, "days": 7})))
		all = append(all, d)
	}
	purged := func(k lcKind, id string) {
		t.Helper()
		h := k.eventuallyHistory(id, 15*time.Second, func(h []auditEntry) bool { return h[len(h)-1].Type == k.deletedType() })
		last := h[len(h)-1]
		require.Equal(t, "SYSTEM", last.Actor.Role, "the scheduler's deletion")
		require.Equal(t, "secretlog-scheduler", *last.Actor.Subject)
		keys := e.keyStates(t, id)
		require.Len(t, keys, 3)
		for n := 1; n <= 3; n++ {
			require.True(t, keys[fmt.Sprintf("%s/v%d", id, n)], "data key of version %d after the final deletion", n)
		}
		lcWant(t, k.do(k.writer(), lcRestore, map[string]any{"id": id}), "NOT_FOUND", "restore after the window ended")
		require.NotContains(t, k.pending(k.writer()), id)
		_, r := k.get(k.writer(), id)
		lcWant(t, r, "NOT_FOUND", "get after the final deletion")
	}
	for _, d := range all {
		purged(d.k, d.now)
	}
	// The 7-day ones wait for their time.
	time.Sleep(300 * time.Millisecond) // several scheduler ticks
	for _, d := range all {
		require.Contains(t, d.k.pending(d.k.writer()), d.late)
		require.Equal(t, 0, e.eventCount(t, d.late, d.k.deletedType()))
		for name, gone := range e.keyStates(t, d.late) {
			require.Equal(t, strings.HasSuffix(name, "/v1"), gone, "key %s before the window ended", name)
		}
	}
	e.clock.Advance(7*24*time.Hour + time.Minute)
	for _, d := range all {
		purged(d.k, d.late)
	}
	// Both servers ran the scheduler: the final deletion is in the log once.
	// Stop the first server (whichever held the lease, the other takes it
	// over within a second) and let the other tick: still once.
	e.nodes[0].stop()
	e.s = e.nodes[1]
	time.Sleep(1500 * time.Millisecond)
	for _, d := range all {
		for _, id := range []string{d.now, d.late} {
			require.Equal(t, 1, e.eventCount(t, id, d.k.deletedType()), "%s %s deleted once", d.k, id)
			require.Len(t, lcOfType(d.k.history(id), d.k.deletedType()), 1)
		}
	}
}

// ---------------------------------------------------------------------------
// Rollback

func TestLifecycleRollback(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{})
	for _, k := range e.kinds() {
		t.Run(k.String(), func(t *testing.T) {
			k := k.on(t)
			vals := []string{"", e.canary("rb1")}
			id := k.create(map[string]any{"name": "rollback", "data": lcVal(vals[1])}).ID
			for n := 2; n <= 5; n++ {
				vals = append(vals, e.canary(fmt.Sprintf("rb%d", n)))
				k.write(id, lcVal(vals[n]))
			}
			lcWant(t, k.do(k.writer(), lcRollback, map[string]any{"id": id, "to": 2, "ev": 4}), "CONFLICT", "stale expectedVersion")
			lcWant(t, k.do(k.denied(), lcRollback, map[string]any{"id": id, "to": 2}), "PERMISSION_DENIED", "rollback by a reader")

			res := k.ok(lcRollback, map[string]any{"id": id, "to": 2, "ev": 5})
			require.Equal(t, 6, res.Version)
			d, n := k.mustRead(id, lcIntp(6), "")
			require.Equal(t, vals[2], d["v"])
			require.Equal(t, 6, n)
			d, n = k.mustRead(id, nil, "SYSCURRENT")
			require.Equal(t, [2]any{vals[2], 6}, [2]any{d["v"], n})
			d, n = k.mustRead(id, nil, "SYSPREVIOUS")
			require.Equal(t, [2]any{vals[5], 5}, [2]any{d["v"], n})
			vs := lcByVersion(k.versions(id))
			require.Equal(t, []string{"SYSCURRENT"}, vs[6].Stages)
			require.Equal(t, []string{"SYSPREVIOUS"}, vs[5].Stages)
			require.Empty(t, vs[2].Stages)
			require.Equal(t, lcIntp(2), vs[6].RolledBackFrom)
			require.Nil(t, vs[5].RolledBackFrom)
			keys := e.keyStates(t, id)
			require.Contains(t, keys, id+"/v6", "sealed anew, under a key of its own")
			d, _ = k.mustRead(id, lcIntp(2), "")
			require.Equal(t, vals[2], d["v"], "the old version is still there")

			// Refused for a destroyed version, and for one never written.
			k.ok(lcDestroy, map[string]any{"id": id, "vs": []int{3}})
			for _, to := range []int{3, 7, 0, -1} {
				lcWant(t, k.do(k.writer(), lcRollback, map[string]any{"id": id, "to": to}), "FAILED_PRECONDITION", "rollback to %d", to)
			}
			require.Equal(t, 6, k.mustGet(id).Version)

			h := k.history(id)
			ups := lcOfType(h, k.dataUpdatedType())
			require.Len(t, ups, 5)
			last := ups[len(ups)-1]
			require.Equal(t, 6, last.DataVersion)
			require.ElementsMatch(t, []string{"dataVersion", "data"}, fieldNames(last), "a value change names no value")
			for _, c := range last.Changes {
				if c.Field == "data" {
					require.Nil(t, c.Old)
					require.Nil(t, c.New)
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Check-and-set

func TestLifecycleCheckAndSet(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{})
	for _, k := range e.kinds() {
		t.Run(k.String(), func(t *testing.T) {
			k := k.on(t)
			id := k.create(map[string]any{"name": "cas", "schemaId": "api_token", "data": map[string]any{"token": e.canary("cas")}}).ID
			// Rounds of two writers with the same expectedVersion.
			for round := 1; round <= 4; round++ {
				before := e.streamVersion(t, id)
				vals := []string{e.canary("w0"), e.canary("w1")}
				var rs [2]gqlResponse
				var took [2]time.Duration
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						t0 := time.Now()
						rs[i] = k.tryWrite(k.writer(), id, map[string]any{"token": vals[i]}, lcIntp(round))
						took[i] = time.Since(t0)
					}()
				}
				close(start)
				wg.Wait()
				winner := -1
				for i, r := range rs {
					switch r.Code() {
					case "":
						require.Equal(t, -1, winner, "round %d: both writers won", round)
						winner = i
					case "CONFLICT":
						require.Less(t, took[i], 5*time.Second, "a conflict answers at once")
					default:
						t.Fatalf("round %d: writer %d: %+v", round, i, r.Errors)
					}
				}
				require.NotEqual(t, -1, winner, "round %d: nobody won: %+v %+v", round, rs[0].Errors, rs[1].Errors)
				require.Equal(t, before+1, e.streamVersion(t, id), "round %d: the loser appended nothing", round)
				d, n := k.mustRead(id, nil, "")
				require.Equal(t, round+1, n)
				require.Equal(t, vals[winner], d["token"])
			}
			require.Equal(t, 4, e.eventCount(t, id, k.dataUpdatedType()))
			// A value the schema refuses: refused without echoing it (the
			// canary scan checks the log too).
			refused := e.canary("refused")
			r := k.tryWrite(k.writer(), id, map[string]any{"token": 12345, "note": refused}, lcIntp(5))
			lcWant(t, r, "INVALID_ARGUMENT", "a value its schema refuses")
			require.NotContains(t, lcJSON(t, r.Errors), refused)

			// Every mutation of an existing resource checks it: a stale one is
			// CONFLICT and appends nothing.
			cur := k.mustGet(id).Version
			stale := cur - 1
			before := e.streamVersion(t, id)
			for name, c := range map[string]struct {
				tmpl string
				vars map[string]any
			}{
				"update":     {`mutation($in: Update%SInput!) { update%S(input: $in) { id: %I } }`, map[string]any{"in": map[string]any{k.q("%I"): id, "description": "x", "expectedVersion": stale}}},
				"updateData": {`mutation($in: Update%SDataInput!) { update%SData(input: $in) { id: %I } }`, map[string]any{"in": map[string]any{k.q("%I"): id, "data": map[string]any{"token": e.canary("stale")}, "expectedVersion": stale}}},
				"disable":    {lcDisable, map[string]any{"id": id, "ev": stale}},
				"enable":     {lcEnable, map[string]any{"id": id, "ev": stale}},
				"setStage":   {lcSetStage, map[string]any{"id": id, "st": "x", "v": 1, "ev": stale}},
				"destroy":    {lcDestroy, map[string]any{"id": id, "vs": []int{1}, "ev": stale}},
				"rollback":   {lcRollback, map[string]any{"id": id, "to": 1, "ev": stale}},
				"rotate":     {lcRotate, map[string]any{"id": id, "ev": stale}},
				"delete":     {lcDelete, map[string]any{"id": id, "ev": stale}},
				"delete now": {lcDelete, map[string]any{"id": id, "force": true, "ev": cur + 1}},
			} {
				r := k.do(k.writer(), c.tmpl, c.vars)
				lcWant(t, r, "CONFLICT", "%s with a stale expectedVersion", name)
				require.Equal(t, "expectedVersion", lcErrorField(r), "%s", name)
			}
			require.Equal(t, before, e.streamVersion(t, id), "nothing appended for stale writers")
			require.Equal(t, "DISABLED", k.ok(lcDisable, map[string]any{"id": id, "ev": cur}).State, "the current version passes")
		})
	}
}

// lcErrorField is the field a CONFLICT names: its message starts with it.
func lcErrorField(r gqlResponse) string {
	if len(r.Errors) == 0 {
		return ""
	}
	f, _, _ := strings.Cut(r.Errors[0].Message, ":")
	return f
}

// asOf is the resource as the writer sees it at a past time.
func (k lcKind) asOf(id string, at time.Time) lcRes {
	k.t.Helper()
	return k.one(k.do(k.writer(), `query($id: ID!, $at: Time) { %s(%I: $id, asOf: $at) { `+lcFields+` } }`,
		map[string]any{"id": id, "at": at.Format(time.RFC3339Nano)}))
}

// ---------------------------------------------------------------------------
// Rotation

// lcPolicies reads the x-generate policies of a schema def, as documented.
func lcPolicies(t *testing.T, schemaID string) map[string]struct {
	Length  int
	Charset string
} {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "commands", "schemas", "defs", schemaID+".json"))
	require.NoError(t, err)
	var def struct {
		Properties map[string]struct {
			Generate *struct {
				Length  int
				Charset string
			} `json:"x-generate"`
		}
	}
	require.NoError(t, json.Unmarshal(b, &def))
	out := map[string]struct {
		Length  int
		Charset string
	}{}
	for name, p := range def.Properties {
		if p.Generate != nil {
			out[name] = *p.Generate
		}
	}
	return out
}

// lcCharsets are the character sets a policy names (schemas/generate.go's documentation).
var lcCharsets = map[string]string{
	"alphanumeric":         "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	"alphanumeric-symbols": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#%+-.:=@^_~",
	"hex":                  "0123456789abcdef",
}

func TestLifecycleRotateSecret(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{})
	for _, k := range e.kinds() {
		t.Run(k.String(), func(t *testing.T) {
			k := k.on(t)
			for _, c := range []struct {
				schema string
				data   map[string]any
				field  string
			}{
				{"api_token", map[string]any{"token": e.canary("tok")}, "token"},
				{"basic_auth", map[string]any{"username": "svc-user", "password": e.canary("pw")}, "password"},
			} {
				policies := lcPolicies(t, c.schema)
				require.Len(t, policies, 1, c.schema)
				pol, ok := policies[c.field]
				require.True(t, ok, "%s generates %s", c.schema, c.field)
				set := lcCharsets[pol.Charset]
				require.NotEmpty(t, set, pol.Charset)

				res := k.create(map[string]any{"name": "rot-" + c.schema, "schemaId": c.schema, "data": c.data})
				id := res.ID
				lcWant(t, k.do(k.denied(), lcRotate, map[string]any{"id": id}), "PERMISSION_DENIED", "rotate by a reader")
				lcWant(t, k.do(k.writer(), lcRotate, map[string]any{"id": id, "ev": 2}), "CONFLICT", "rotate with a stale version")
				prev := c.data[c.field].(string)
				for round := 2; round <= 3; round++ {
					rot := k.ok(lcRotate, map[string]any{"id": id, "ev": round - 1})
					require.Equal(t, round, rot.Version)
					require.NotNil(t, rot.LastRotatedAt)
					require.True(t, rot.LastRotatedAt.After(*res.LastRotatedAt), "lastRotatedAt moves")
					d, n := k.mustRead(id, nil, "")
					require.Equal(t, round, n)
					got, _ := d[c.field].(string)
					e.remember(got)
					require.Len(t, got, pol.Length, "%s.%s follows its policy's length", c.schema, c.field)
					for _, ch := range got {
						require.Contains(t, set, string(ch), "%s.%s follows its policy's charset %s", c.schema, c.field, pol.Charset)
					}
					require.NotEqual(t, prev, got, "a new value")
					for f, v := range c.data {
						if f != c.field {
							require.Equal(t, v, d[f], "rotation keeps the fields it does not generate")
						}
					}
					prev = got
					d, _ = k.mustRead(id, lcIntp(round-1), "")
					require.NotEqual(t, got, d[c.field], "the previous version keeps its value")
				}
				ups := lcOfType(k.history(id), k.dataUpdatedType())
				require.Len(t, ups, 2)
				require.Equal(t, 3, ups[1].DataVersion)
			}
			// Schemas that generate nothing.
			aws := k.create(map[string]any{"name": "rot-aws", "schemaId": "aws_access_key", "data": map[string]any{
				"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": e.canary("aws")}}).ID
			lcWant(t, k.do(k.writer(), lcRotate, map[string]any{"id": aws}), "FAILED_PRECONDITION", "rotate aws_access_key")
			plain := k.create(map[string]any{"name": "rot-plain", "data": lcVal(e.canary("plain"))}).ID
			lcWant(t, k.do(k.writer(), lcRotate, map[string]any{"id": plain}), "FAILED_PRECONDITION", "rotate a schema-less value")
			require.Equal(t, 1, e.streamVersion(t, aws))
			require.Equal(t, 1, e.streamVersion(t, plain))
		})
	}
}

func TestLifecycleRotationSchedule(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{nodes: 2})
	type rotating struct {
		k       lcKind
		id, off string // off: autoRotation false, never due
		created lcRes
	}
	var rs []rotating
	for _, k := range e.kinds() {
		// The period's bounds, on create and update.
		for _, bad := range []map[string]any{
			{"autoRotation": true, "rotationPeriodHours": 3}, {"autoRotation": true, "rotationPeriodHours": 8761},
			{"rotationPeriodHours": -4}, {"autoRotation": true},
		} {
			in := map[string]any{"name": "bad", "schemaId": "api_token", "data": map[string]any{"token": "t"}}
			for f, v := range bad {
				in[f] = v
			}
			lcWant(t, k.tryCreate(k.writer(), in), "INVALID_ARGUMENT", "create with %v", bad)
		}
		res := k.create(map[string]any{"name": "rotating", "schemaId": "api_token", "data": map[string]any{"token": e.canary("sched")},
			"autoRotation": true, "rotationPeriodHours": 4})
		require.Equal(t, true, *res.AutoRotation)
		require.Equal(t, 4, *res.RotationPeriodHours)
		require.NotNil(t, res.NextRotationTime)
		require.Equal(t, res.LastRotatedAt.Add(4*time.Hour), *res.NextRotationTime)
		for _, h := range []int{3, 8761, 0} {
			lcWant(t, k.tryUpdate(k.writer(), map[string]any{k.q("%I"): res.ID, "rotationPeriodHours": h}), "INVALID_ARGUMENT", "update to %d hours", h)
		}
		off := k.create(map[string]any{"name": "manual", "schemaId": "api_token", "data": map[string]any{"token": e.canary("off")},
			"rotationPeriodHours": 4}).ID
		rs = append(rs, rotating{k: k, id: res.ID, off: off, created: res})
	}
	count := func(r rotating) int {
		t.Helper()
		return len(lcOfType(r.k.history(r.id), "RotationDue.v1"))
	}
	settle := func(want int) {
		t.Helper()
		for _, r := range rs {
			r.k.eventuallyHistory(r.id, 15*time.Second, func(h []auditEntry) bool { return len(lcOfType(h, "RotationDue.v1")) >= want })
		}
		time.Sleep(500 * time.Millisecond) // ten scheduler ticks on each server
		for _, r := range rs {
			require.Equal(t, want, count(r), "%s: RotationDue events once per period", r.k)
			require.Equal(t, want, e.eventCount(t, r.id, "RotationDue.v1"))
			require.Equal(t, 0, e.eventCount(t, r.off, "RotationDue.v1"), "no rotation without autoRotation")
			got := r.k.mustGet(r.id)
			require.Equal(t, r.created.NextRotationTime.Add(time.Duration(want)*4*time.Hour), *got.NextRotationTime,
				"%s: nextRotationTime after %d due", r.k, want)
			require.Equal(t, 1, got.Version, "RotationDue writes no value")
		}
	}
	settle(0)
	e.clock.Advance(4*time.Hour + time.Minute)
	settle(1)
	e.clock.Advance(4 * time.Hour)
	settle(2)
	for _, r := range rs {
		for _, x := range lcOfType(r.k.history(r.id), "RotationDue.v1") {
			require.Equal(t, "SYSTEM", x.Actor.Role)
			require.Equal(t, "secretlog-scheduler", *x.Actor.Subject)
		}
	}
}

// ---------------------------------------------------------------------------
// Settings: description, kmsKeyId, maxVersions, rotation (SettingsChanged)

func TestLifecycleSettings(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{})
	for _, k := range e.kinds() {
		t.Run(k.String(), func(t *testing.T) {
			k := k.on(t)
			long := strings.Repeat("é", 2048) // characters, not bytes
			res := k.create(map[string]any{"name": "described", "description": long, "data": lcVal(e.canary("s1"))})
			require.Equal(t, long, *res.Description)
			lcWant(t, k.tryCreate(k.writer(), map[string]any{"name": "x", "description": long + "e", "data": lcVal("x")}),
				"INVALID_ARGUMENT", "2049 characters")
			lcWant(t, k.tryUpdate(k.writer(), map[string]any{k.q("%I"): res.ID, "description": long + "e"}), "INVALID_ARGUMENT", "2049 characters")
			lcWant(t, k.tryUpdate(k.denied(), map[string]any{k.q("%I"): res.ID, "description": "mine"}), "PERMISSION_DENIED", "update by a reader")
			require.Nil(t, res.KmsKeyID, "the primary key when none is named")
			require.Equal(t, lcPrimaryKey, e.kekOf(t, res.ID+"/v1"))

			// kmsKeyId: unknown refused; another key of the keyring wraps every version.
			lcWant(t, k.tryCreate(k.writer(), map[string]any{"name": "x", "kmsKeyId": "no-such-key", "data": lcVal("x")}),
				"INVALID_ARGUMENT", "unknown kmsKeyId")
			keyed := k.create(map[string]any{"name": "keyed", "kmsKeyId": lcOtherKey, "data": lcVal(e.canary("k1"))})
			require.Equal(t, lcOtherKey, *keyed.KmsKeyID)
			require.Equal(t, lcOtherKey, *k.mustGet(keyed.ID).KmsKeyID)
			v2 := e.canary("k2")
			k.write(keyed.ID, lcVal(v2))
			require.Equal(t, lcOtherKey, e.kekOf(t, keyed.ID+"/v1"))
			require.Equal(t, lcOtherKey, e.kekOf(t, keyed.ID+"/v2"), "later versions use the secret's key too")
			d, _ := k.mustRead(keyed.ID, nil, "")
			require.Equal(t, v2, d["v"])

			// Changes are SettingsChanged events that name their fields.
			before := e.streamVersion(t, res.ID)
			got := k.one(k.tryUpdate(k.writer(), map[string]any{k.q("%I"): res.ID, "description": long}))
			require.Equal(t, long, *got.Description)
			require.Equal(t, before, e.streamVersion(t, res.ID), "an unchanged description appends nothing")
			got = k.one(k.tryUpdate(k.writer(), map[string]any{k.q("%I"): res.ID, "description": "short", "maxVersions": 5}))
			require.Equal(t, "short", *got.Description)
			require.Equal(t, 5, *got.MaxVersions)
			got = k.one(k.tryUpdate(k.writer(), map[string]any{k.q("%I"): res.ID, "autoRotation": true, "rotationPeriodHours": 8760}))
			require.True(t, *got.AutoRotation)
			require.Equal(t, 8760, *got.RotationPeriodHours)
			require.NotNil(t, got.NextRotationTime)
			got = k.mustGet(res.ID)
			require.Equal(t, "short", *got.Description)
			require.Equal(t, 1, got.Version, "settings are no new value")

			changed := lcOfType(k.history(res.ID), "SettingsChanged.v1")
			require.Len(t, changed, 2)
			fields := func(x auditEntry) map[string][2]any {
				m := map[string][2]any{}
				for _, c := range x.Changes {
					m[c.Field] = [2]any{c.Old, c.New}
				}
				return m
			}
			f := fields(changed[0])
			require.Contains(t, f, "description", "SettingsChanged names the description it changed: %v", changed[0].Changes)
			require.Equal(t, "short", f["description"][1])
			require.Equal(t, long, f["description"][0])
			require.Contains(t, f, "maxVersions")
			f = fields(changed[1])
			require.Contains(t, f, "autoRotation", "%v", changed[1].Changes)
			require.Contains(t, f, "rotationPeriodHours")
			// asOf reads show the description as it was.
			require.Equal(t, long, *k.asOf(res.ID, changed[0].OccurredAt.Add(-time.Microsecond)).Description)
			require.Equal(t, "short", *k.asOf(res.ID, changed[0].OccurredAt).Description)
		})
	}
}

// kekOf is the keyring key that wraps the data key name.
func (e *lcEnv) kekOf(t testing.TB, name string) string {
	t.Helper()
	var kek string
	e.sql(t, `SELECT kek_id FROM data_keys WHERE stream_id = $1`, []any{name}, &kek)
	return kek
}

// ---------------------------------------------------------------------------
// lastUsedAt

func TestLifecycleLastUsedAt(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{})
	for _, k := range e.kinds() {
		t.Run(k.String(), func(t *testing.T) {
			k := k.on(t)
			id := k.create(map[string]any{"name": "used", "data": lcVal(e.canary("used"))}).ID
			require.Nil(t, k.mustGet(id).LastUsedAt)
			before := time.Now()
			k.mustRead(id, nil, "")
			deadline := time.Now().Add(15 * time.Second)
			for {
				got := k.mustGet(id)
				if got.LastUsedAt != nil {
					require.WithinDuration(t, before, *got.LastUsedAt, time.Minute)
					break
				}
				require.True(t, time.Now().Before(deadline), "lastUsedAt never appeared after a read")
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Tenancy and permissions: every lifecycle operation

// lcOps are every lifecycle operation on one resource, as (name, query, vars).
func (k lcKind) ops(id string) []struct {
	name string
	tmpl string
	vars map[string]any
} {
	return []struct {
		name string
		tmpl string
		vars map[string]any
	}{
		{"get", `query($id: ID!) { %s(%I: $id) { id: %I } }`, map[string]any{"id": id}},
		{"data", `query($id: ID!) { %sData(%I: $id) { version } }`, map[string]any{"id": id}},
		{"data by version", `query($id: ID!) { %sData(%I: $id, version: 1) { version } }`, map[string]any{"id": id}},
		{"data by stage", `query($id: ID!) { %sData(%I: $id, stage: "SYSPREVIOUS") { version } }`, map[string]any{"id": id}},
		{"versions", `query($id: ID!) { %sVersions(%I: $id) { nextCursor } }`, map[string]any{"id": id}},
		{"history", `query($id: ID!) { %sHistory(%I: $id) { nextCursor } }`, map[string]any{"id": id}},
		{"update", `mutation($in: Update%SInput!) { update%S(input: $in) { id: %I } }`, map[string]any{"in": map[string]any{k.q("%I"): id, "description": "x"}}},
		{"updateData", `mutation($in: Update%SDataInput!) { update%SData(input: $in) { id: %I } }`, map[string]any{"in": map[string]any{k.q("%I"): id, "data": lcVal(k.e.canary("refused"))}}},
		{"disable", lcDisable, map[string]any{"id": id}},
		{"enable", lcEnable, map[string]any{"id": id}},
		{"setStage", lcSetStage, map[string]any{"id": id, "st": "x", "v": 1}},
		{"destroy", lcDestroy, map[string]any{"id": id, "vs": []int{1}}},
		{"rollback", lcRollback, map[string]any{"id": id, "to": 1}},
		{"rotate", lcRotate, map[string]any{"id": id}},
		{"restore", lcRestore, map[string]any{"id": id}},
		{"delete", lcDelete, map[string]any{"id": id}},
		{"delete force", lcDelete, map[string]any{"id": id, "force": true}},
	}
}

func TestLifecycleTenancy(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, lcOpts{})
	for _, k := range e.kinds() {
		t.Run(k.String(), func(t *testing.T) {
			k := k.on(t)
			mk := func(name string) string {
				id := k.create(map[string]any{"name": name, "schemaId": "api_token", "data": map[string]any{"token": e.canary(name)}}).ID
				k.tryWrite(k.writer(), id, map[string]any{"token": e.canary(name + "2")}, nil)
				return id
			}
			live, pending, disabled := mk("live"), mk("pending"), mk("disabled")
			require.True(t, k.deleted(k.do(k.writer(), lcDelete, map[string]any{"id": pending})))
			k.ok(lcDisable, map[string]any{"id": disabled})
			missing := "secret-0123456789ab" // a well-formed id that names nothing
			if k.user {
				missing = "user-secret-0123456789ab"
			}
			// The other kind's id is no resource of this kind either.
			otherKind := lcKind{e, !k.user, t}.create(map[string]any{"name": "other-kind", "data": lcVal(e.canary("ok"))}).ID
			versions := map[string]int{}
			for _, id := range []string{live, pending, disabled, otherKind} {
				versions[id] = e.streamVersion(t, id)
			}
			for who, tok := range k.foreign() {
				for _, id := range []string{live, pending, disabled} {
					for _, op := range k.ops(id) {
						lcWant(t, k.do(tok, op.tmpl, op.vars), "NOT_FOUND", "%s: %s of another's %s", who, op.name, id)
					}
				}
				require.NotContains(t, k.pending(tok), pending, who)
			}
			for _, id := range []string{missing, otherKind} {
				for _, op := range k.ops(id) {
					lcWant(t, k.do(k.writer(), op.tmpl, op.vars), "NOT_FOUND", "%s of %s", op.name, id)
					lcWant(t, k.do(k.reader(), op.tmpl, op.vars), "NOT_FOUND", "%s of %s by SYSTEM", op.name, id)
				}
			}
			for id, v := range versions {
				require.Equal(t, v, e.streamVersion(t, id), "nothing appended to %s", id)
			}
			d, n := k.mustRead(live, nil, "")
			require.Equal(t, 2, n)
			require.NotEmpty(t, d["token"])

			// Callers who see the resource but may not change it.
			for _, op := range k.ops(live)[6:] {
				lcWant(t, k.do(k.denied(), op.tmpl, op.vars), "PERMISSION_DENIED", "%s by a reader", op.name)
			}
			for _, op := range k.ops(live)[1:4] {
				lcWant(t, k.do(k.writer(), op.tmpl, op.vars), "PERMISSION_DENIED", "%s by a non-SYSTEM caller", op.name)
			}
			if !k.user {
				// A workspace owner sees DOMAIN secrets but changes none.
				for _, op := range k.ops(live)[6:] {
					lcWant(t, k.do(e.owner, op.tmpl, op.vars), "PERMISSION_DENIED", "%s of a DOMAIN secret by a WORKSPACE_OWNER", op.name)
				}
			}
			require.Equal(t, versions[live], e.streamVersion(t, live))
		})
	}
}
