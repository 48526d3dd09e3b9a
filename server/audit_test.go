package server_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/secretlog/secretlog/auth"
)

type auditEntry struct {
	Position     string
	Stream       string
	ResourceType string
	ResourceID   string
	Version      int
	DataVersion  int
	Type         string
	Actor        struct {
		UserID   *string
		Role     string
		DomainID string
		Subject  *string
	}
	OccurredAt    time.Time
	CorrelationID *string
	Changes       []struct {
		Field string
		Old   any
		New   any
	}
}

type auditPageOut struct {
	Results    []auditEntry
	NextCursor *string
}

const auditFields = `results { position stream resourceType resourceId version dataVersion type
  actor { userId role domainId subject } occurredAt correlationId changes { field old new } } nextCursor`

func (s *stack) history(token, id string, first int, after *string) (auditPageOut, gqlResponse) {
	s.t.Helper()
	r := s.do(token, `query($id: ID!, $first: Int, $after: String) { secretHistory(secretId: $id, first: $first, after: $after) { `+auditFields+` } }`,
		map[string]any{"id": id, "first": first, "after": after})
	var out struct{ SecretHistory auditPageOut }
	if len(r.Errors) == 0 {
		r.Decode(s.t, &out)
	}
	return out.SecretHistory, r
}

func (s *stack) auditEvents(token string, filter map[string]any, first int, after *string, newest bool) (auditPageOut, gqlResponse) {
	s.t.Helper()
	r := s.do(token, `query($f: AuditFilter, $first: Int, $after: String, $n: Boolean) { auditEvents(filter: $f, first: $first, after: $after, newestFirst: $n) { `+auditFields+` } }`,
		map[string]any{"f": filter, "first": first, "after": after, "n": newest})
	var out struct{ AuditEvents auditPageOut }
	if len(r.Errors) == 0 {
		r.Decode(s.t, &out)
	}
	return out.AuditEvents, r
}

func types(p auditPageOut) []string {
	var out []string
	for _, e := range p.Results {
		out = append(out, e.Type)
	}
	return out
}

func TestAuditHistoryAccessLogAndAsOf(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	owner := s.token(auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: "w1", UserID: "olga"})
	system := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "d1", Subject: "deployer"})
	otherAdmin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d2", UserID: "mallory"})
	const value = "AUDIT-CANARY-5e1f"

	id := s.createSecret(owner, map[string]any{"name": "db", "resourceGroup": "WORKSPACE", "workspaceId": "w1",
		"tags": map[string]any{"env": "dev"}, "data": map[string]any{"password": value}})
	tCreated := time.Now()
	time.Sleep(5 * time.Millisecond)
	s.mustOK(admin, `mutation($id: ID!) { updateSecret(input: {secretId: $id, name: "db-main", tags: {env: "prod"}}) { name } }`, map[string]any{"id": id}, nil)
	time.Sleep(5 * time.Millisecond)
	tRenamed := time.Now()
	s.mustOK(owner, `mutation($id: ID!) { updateSecretData(input: {secretId: $id, data: {password: "`+value+`-2"}}) { version } }`, map[string]any{"id": id}, nil)
	s.mustOK(system, `query($id: ID!) { secretData(secretId: $id) { data } }`, map[string]any{"id": id}, nil)

	// Metadata reads are not value reads and are not logged as such.
	s.mustOK(admin, `query($id: ID!) { secret(secretId: $id) { name } }`, map[string]any{"id": id}, nil)

	h, r := s.history(owner, id, 50, nil)
	require.Empty(t, r.Errors)
	require.Equal(t, []string{"SecretCreated.v1", "SecretUpdated.v1", "SecretDataUpdated.v1", "SecretDataRead.v1"}, types(h))
	created, updated, dataUpdated, read := h.Results[0], h.Results[1], h.Results[2], h.Results[3]
	require.Equal(t, "olga", *created.Actor.UserID)
	require.Equal(t, "WORKSPACE_OWNER", created.Actor.Role)
	require.Equal(t, "d1", created.Actor.DomainID)
	require.Equal(t, id, created.ResourceID)
	require.Equal(t, "Secret", created.ResourceType)
	require.Equal(t, 1, created.Version)
	require.NotNil(t, created.CorrelationID)
	require.Equal(t, "alice", *updated.Actor.UserID)
	require.ElementsMatch(t, []string{"name", "tags"}, fieldNames(updated))
	for _, c := range updated.Changes {
		if c.Field == "name" {
			require.Equal(t, "db", c.Old)
			require.Equal(t, "db-main", c.New)
		}
	}
	require.Contains(t, fieldNames(dataUpdated), "data")
	require.Contains(t, fieldNames(dataUpdated), "dataVersion")
	require.Equal(t, 2, dataUpdated.DataVersion)
	require.Equal(t, "SYSTEM", read.Actor.Role)
	require.Equal(t, "deployer", *read.Actor.Subject)
	require.Equal(t, 2, read.DataVersion, "the access log says which version was read")
	require.Equal(t, id+":access", read.Stream)
	require.Empty(t, read.Changes)
	positions := map[string]bool{}
	for _, e := range h.Results {
		require.False(t, positions[e.Position])
		positions[e.Position] = true
	}

	// Paging.
	p1, r := s.history(admin, id, 3, nil)
	require.Empty(t, r.Errors)
	require.Len(t, p1.Results, 3)
	require.NotNil(t, p1.NextCursor)
	p2, r := s.history(admin, id, 3, p1.NextCursor)
	require.Empty(t, r.Errors)
	require.Equal(t, []string{"SecretDataRead.v1"}, types(p2))
	require.Nil(t, p2.NextCursor)

	// Tenancy: another domain sees nothing.
	_, r = s.history(otherAdmin, id, 10, nil)
	require.Equal(t, "NOT_FOUND", r.Code())

	// Point in time.
	var asOf struct {
		Secret struct {
			Name    string
			Tags    map[string]any
			Version int
		}
	}
	s.mustOK(owner, `query($id: ID!, $t: Time) { secret(secretId: $id, asOf: $t) { name tags version } }`,
		map[string]any{"id": id, "t": tCreated.Format(time.RFC3339Nano)}, &asOf)
	require.Equal(t, "db", asOf.Secret.Name)
	require.Equal(t, map[string]any{"env": "dev"}, asOf.Secret.Tags)
	s.mustOK(owner, `query($id: ID!, $t: Time) { secret(secretId: $id, asOf: $t) { name tags version } }`,
		map[string]any{"id": id, "t": tRenamed.Format(time.RFC3339Nano)}, &asOf)
	require.Equal(t, "db-main", asOf.Secret.Name)
	require.Equal(t, 1, asOf.Secret.Version)
	r = s.do(owner, `query($id: ID!, $t: Time) { secret(secretId: $id, asOf: $t) { name } }`,
		map[string]any{"id": id, "t": tCreated.Add(-time.Hour).Format(time.RFC3339Nano)})
	require.Equal(t, "NOT_FOUND", r.Code(), "did not exist yet")

	// Deletion: history survives, for DOMAIN_ADMIN; point-in-time reads before deletion too.
	s.mustOK(admin, `mutation($id: ID!) { deleteSecret(secretId: $id, force: true) }`, map[string]any{"id": id}, nil)
	h, r = s.history(admin, id, 50, nil)
	require.Empty(t, r.Errors)
	require.Equal(t, "SecretDeleted.v1", h.Results[len(h.Results)-1].Type)
	_, r = s.history(owner, id, 50, nil)
	require.Equal(t, "NOT_FOUND", r.Code(), "a deleted secret's history is for DOMAIN_ADMIN")
	s.mustOK(admin, `query($id: ID!, $t: Time) { secret(secretId: $id, asOf: $t) { name } }`,
		map[string]any{"id": id, "t": tRenamed.Format(time.RFC3339Nano)}, &asOf)
	require.Equal(t, "db-main", asOf.Secret.Name)
	r = s.do(owner, `query($id: ID!, $t: Time) { secret(secretId: $id, asOf: $t) { name } }`,
		map[string]any{"id": id, "t": tRenamed.Format(time.RFC3339Nano)})
	require.Equal(t, "NOT_FOUND", r.Code())
	r = s.do(admin, `query($id: ID!) { secret(secretId: $id, asOf: "2999-01-01T00:00:00Z") { name } }`, map[string]any{"id": id})
	require.Equal(t, "NOT_FOUND", r.Code(), "deleted by then")

	// Never a value in the audit trail.
	all, r := s.auditEvents(admin, nil, 100, nil, false)
	require.Empty(t, r.Errors)
	b, _ := json.Marshal(all)
	require.NotContains(t, string(b), "AUDIT-CANARY")
}

func fieldNames(e auditEntry) []string {
	var out []string
	for _, c := range e.Changes {
		out = append(out, c.Field)
	}
	return out
}

func TestAuditEventsFiltersAndTenancy(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	admin2 := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d2", UserID: "bob"})
	system := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "d1", UserID: "svc"})
	owner := s.token(auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: "w1", UserID: "olga"})
	user := s.token(auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "ursula"})

	a := s.createSecret(admin, map[string]any{"name": "a", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}})
	b := s.createSecret(owner, map[string]any{"name": "b", "resourceGroup": "WORKSPACE", "data": map[string]any{"k": "v"}})
	s.createSecret(admin2, map[string]any{"name": "other", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}})
	us := s.createUserSecret(user, map[string]any{"name": "mine", "data": map[string]any{"k": "v"}})
	s.mustOK(system, `query($id: ID!) { secretData(secretId: $id) { data } }`, map[string]any{"id": a}, nil)
	s.mustOK(system, `query($id: ID!) { userSecretData(userSecretId: $id) { data } }`, map[string]any{"id": us}, nil)

	all, r := s.auditEvents(admin, nil, 100, nil, false)
	require.Empty(t, r.Errors)
	require.Equal(t, []string{"SecretCreated.v1", "SecretCreated.v1", "UserSecretCreated.v1", "SecretDataRead.v1", "UserSecretDataRead.v1"}, types(all))
	for _, e := range all.Results {
		require.NotEqual(t, "other", e.ResourceID)
		require.Equal(t, "d1", e.Actor.DomainID)
	}
	other, r := s.auditEvents(admin2, nil, 100, nil, false)
	require.Empty(t, r.Errors)
	require.Equal(t, []string{"SecretCreated.v1"}, types(other), "no cross-domain leakage")

	newest, r := s.auditEvents(system, nil, 100, nil, true)
	require.Empty(t, r.Errors)
	require.Equal(t, "UserSecretDataRead.v1", newest.Results[0].Type)

	reads, r := s.auditEvents(admin, map[string]any{"types": []string{"SecretDataRead", "UserSecretDataRead.v1"}}, 100, nil, false)
	require.Empty(t, r.Errors)
	require.Len(t, reads.Results, 2)
	for _, e := range reads.Results {
		require.Equal(t, "svc", *e.Actor.UserID, "the reader's identity")
	}
	byActor, _ := s.auditEvents(admin, map[string]any{"actorUserId": "olga"}, 100, nil, false)
	require.Len(t, byActor.Results, 1)
	require.Equal(t, b, byActor.Results[0].ResourceID)
	byRole, _ := s.auditEvents(admin, map[string]any{"role": "SYSTEM"}, 100, nil, false)
	require.Len(t, byRole.Results, 2)
	byType, _ := s.auditEvents(admin, map[string]any{"resourceType": "UserSecret"}, 100, nil, false)
	require.Len(t, byType.Results, 2)
	byID, _ := s.auditEvents(admin, map[string]any{"resourceId": a}, 100, nil, false)
	require.Equal(t, []string{"SecretCreated.v1", "SecretDataRead.v1"}, types(byID))
	future, _ := s.auditEvents(admin, map[string]any{"from": time.Now().Add(time.Hour).Format(time.RFC3339)}, 100, nil, false)
	require.Empty(t, future.Results)
	past, _ := s.auditEvents(admin, map[string]any{"to": time.Now().Add(-time.Hour).Format(time.RFC3339)}, 100, nil, false)
	require.Empty(t, past.Results)

	// Paging newest first walks backwards without repeats.
	var seen []string
	var after *string
	for {
		p, r := s.auditEvents(admin, nil, 2, after, true)
		require.Empty(t, r.Errors)
		for _, e := range p.Results {
			seen = append(seen, e.Position)
		}
		if p.NextCursor == nil {
			break
		}
		after = p.NextCursor
	}
	require.Len(t, seen, 5)
	for i := 1; i < len(seen); i++ {
		require.Greater(t, strings.Compare(pad(seen[i-1]), pad(seen[i])), 0)
	}

	for _, tok := range []string{owner, user} {
		_, r := s.auditEvents(tok, nil, 10, nil, false)
		require.Equal(t, "PERMISSION_DENIED", r.Code())
	}
	_, r = s.auditEvents(admin, nil, 0, nil, false)
	require.Equal(t, "INVALID_ARGUMENT", r.Code())
	bad := "not-a-cursor"
	_, r = s.auditEvents(admin, nil, 10, &bad, false)
	require.Equal(t, "INVALID_ARGUMENT", r.Code())

	// A user sees its own user secret's history, another user does not.
	r = s.do(user, `query($id: ID!) { userSecretHistory(userSecretId: $id) { results { type actor { role } } } }`, map[string]any{"id": us})
	require.Empty(t, r.Errors)
	require.Contains(t, string(r.Data), "UserSecretDataRead.v1")
	other2 := s.token(auth.Identity{Role: auth.RoleUser, DomainID: "d1", UserID: "someone"})
	r = s.do(other2, `query($id: ID!) { userSecretHistory(userSecretId: $id) { results { type } } }`, map[string]any{"id": us})
	require.Equal(t, "NOT_FOUND", r.Code())
}

func pad(s string) string { return strings.Repeat("0", 20-len(s)) + s }

// TestVerifyLogQuery: verifyLog through GraphQL finds a tampered byte by position.
func TestVerifyLogQuery(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	admin := s.token(auth.Identity{Role: auth.RoleDomainAdmin, DomainID: "d1", UserID: "alice"})
	system := s.token(auth.Identity{Role: auth.RoleSystem, DomainID: "d1", UserID: "svc"})
	owner := s.token(auth.Identity{Role: auth.RoleWorkspaceOwner, DomainID: "d1", WorkspaceID: "w1", UserID: "olga"})
	for i := 0; i < 3; i++ {
		id := s.createSecret(admin, map[string]any{"name": "s", "resourceGroup": "DOMAIN", "data": map[string]any{"k": "v"}})
		s.mustOK(system, `query($id: ID!) { secretData(secretId: $id) { data } }`, map[string]any{"id": id}, nil)
	}
	type report struct {
		VerifyLog struct {
			Ok                  bool
			EventsChecked       int
			FirstBrokenPosition *string
			Reason              *string
		}
	}
	var rep report
	// Verify covers what has committed below the oldest running transaction
	// (cluster-wide: other tests' transactions can hold it back for a moment).
	require.Eventually(t, func() bool {
		s.mustOK(admin, `{ verifyLog { ok eventsChecked firstBrokenPosition reason } }`, nil, &rep)
		return rep.VerifyLog.EventsChecked == 6
	}, 10*time.Second, 20*time.Millisecond)
	require.True(t, rep.VerifyLog.Ok)
	require.Equal(t, "PERMISSION_DENIED", s.do(owner, `{ verifyLog { ok } }`, nil).Code())

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var pos int64
	require.NoError(t, conn.QueryRow(ctx, `SELECT position FROM event_log ORDER BY position OFFSET 2 LIMIT 1`).Scan(&pos))
	_, err = conn.Exec(ctx, `ALTER TABLE event_log DISABLE TRIGGER event_log_no_update`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `UPDATE event_log SET type = 'SecretUpdated.v1' WHERE position = $1`, pos)
	require.NoError(t, err)
	s.mustOK(system, `{ verifyLog { ok eventsChecked firstBrokenPosition reason } }`, nil, &rep)
	require.False(t, rep.VerifyLog.Ok)
	require.Equal(t, strconv.FormatInt(pos, 10), *rep.VerifyLog.FirstBrokenPosition)
	require.NotEmpty(t, *rep.VerifyLog.Reason)
}
