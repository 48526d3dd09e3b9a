package client

import (
	"context"
	"time"
)

// Every operation the client sends, in one place. Each selects every field
// of its type so that JSON output carries what the API returns.

const secretFields = `secretId name schemaId provider tags resourceGroup domainId workspaceId projectId
  serviceAccountId trustedSecretId version createdBy updatedBy createdAt updatedAt`

const userSecretFields = `userSecretId name schemaId provider tags domainId userId version createdBy updatedBy createdAt updatedAt`

// lifecycleFields are the lifecycle state and settings of a resource with a value.
const lifecycleFields = `state description kmsKeyId maxVersions autoRotation rotationPeriodHours nextRotationTime lastRotatedAt`

const trustedSecretFields = `trustedSecretId name schemaId provider tags trustedAccountId resourceGroup domainId workspaceId
  state description kmsKeyId maxVersions version createdBy updatedBy createdAt updatedAt`

const versionPageFields = `results { version stages createdAt createdBy readable rolledBackFrom } nextCursor`

const auditPageFields = `results { position stream resourceType resourceId version dataVersion type
    actor { userId role domainId subject } occurredAt correlationId changes { field old new } }
  nextCursor`

const (
	opSecret = `query Secret($id: ID!, $asOf: Time) { secret(secretId: $id, asOf: $asOf) { ` + secretFields + ` } }`

	opSecrets = `query Secrets($query: QueryInput, $secretId: ID, $name: String, $schemaId: String, $provider: String,
  $workspaceId: String, $projectId: String, $serviceAccountId: String, $trustedSecretId: String) {
  secrets(query: $query, secretId: $secretId, name: $name, schemaId: $schemaId, provider: $provider,
    workspaceId: $workspaceId, projectId: $projectId, serviceAccountId: $serviceAccountId,
    trustedSecretId: $trustedSecretId) { totalCount results { ` + secretFields + ` } } }`

	opSecretData = `query SecretData($id: ID!) { secretData(secretId: $id) { encrypted encryptOptions data } }`

	opSecretStat = `query SecretStat($query: Map!) { secretStat(query: $query) }`

	opCreateSecret = `mutation CreateSecret($in: CreateSecretInput!) { createSecret(input: $in) { ` + secretFields + ` } }`

	opUpdateSecret = `mutation UpdateSecret($in: UpdateSecretInput!) { updateSecret(input: $in) { ` + secretFields + ` } }`

	opUpdateSecretData = `mutation UpdateSecretData($in: UpdateSecretDataInput!) { updateSecretData(input: $in) { ` + secretFields + ` } }`

	opDeleteSecret = `mutation DeleteSecret($id: ID!, $days: Int, $force: Boolean) { deleteSecret(secretId: $id, recoveryWindowDays: $days, force: $force) }`

	opSecretHistory = `query SecretHistory($id: ID!, $first: Int, $after: String) {
  secretHistory(secretId: $id, first: $first, after: $after) { ` + auditPageFields + ` } }`

	opUserSecret = `query UserSecret($id: ID!, $asOf: Time) { userSecret(userSecretId: $id, asOf: $asOf) { ` + userSecretFields + ` } }`

	opUserSecrets = `query UserSecrets($query: QueryInput, $userSecretId: ID, $name: String, $schemaId: String, $provider: String) {
  userSecrets(query: $query, userSecretId: $userSecretId, name: $name, schemaId: $schemaId, provider: $provider) {
    totalCount results { ` + userSecretFields + ` } } }`

	opUserSecretData = `query UserSecretData($id: ID!) { userSecretData(userSecretId: $id) { encrypted encryptOptions data } }`

	opUserSecretStat = `query UserSecretStat($query: Map!) { userSecretStat(query: $query) }`

	opCreateUserSecret = `mutation CreateUserSecret($in: CreateUserSecretInput!) { createUserSecret(input: $in) { ` + userSecretFields + ` } }`

	opUpdateUserSecret = `mutation UpdateUserSecret($in: UpdateUserSecretInput!) { updateUserSecret(input: $in) { ` + userSecretFields + ` } }`

	opUpdateUserSecretData = `mutation UpdateUserSecretData($in: UpdateUserSecretDataInput!) { updateUserSecretData(input: $in) { ` + userSecretFields + ` } }`

	opDeleteUserSecret = `mutation DeleteUserSecret($id: ID!, $days: Int, $force: Boolean) { deleteUserSecret(userSecretId: $id, recoveryWindowDays: $days, force: $force) }`

	opUserSecretHistory = `query UserSecretHistory($id: ID!, $first: Int, $after: String) {
  userSecretHistory(userSecretId: $id, first: $first, after: $after) { ` + auditPageFields + ` } }`

	opAuditEvents = `query AuditEvents($filter: AuditFilter, $first: Int, $after: String, $newestFirst: Boolean) {
  auditEvents(filter: $filter, first: $first, after: $after, newestFirst: $newestFirst) { ` + auditPageFields + ` } }`

	opFeedPosition = `query FeedPosition { feedPosition }`

	opSecretDetails = `query SecretDetails($query: QueryInput) {
  secrets(query: $query) { totalCount results { ` + secretFields + ` ` + lifecycleFields + ` } } }`

	opUserSecretDetails = `query UserSecretDetails($query: QueryInput) {
  userSecrets(query: $query) { totalCount results { ` + userSecretFields + ` ` + lifecycleFields + ` } } }`

	opSecretDataVersion = `query SecretDataVersion($id: ID!, $version: Int) { secretData(secretId: $id, version: $version) { data version } }`

	opUserSecretDataVersion = `query UserSecretDataVersion($id: ID!, $version: Int) {
  userSecretData(userSecretId: $id, version: $version) { data version } }`

	opSecretVersions = `query SecretVersions($id: ID!, $first: Int, $after: String) {
  secretVersions(secretId: $id, first: $first, after: $after) { ` + versionPageFields + ` } }`

	opUserSecretVersions = `query UserSecretVersions($id: ID!, $first: Int, $after: String) {
  userSecretVersions(userSecretId: $id, first: $first, after: $after) { ` + versionPageFields + ` } }`

	opTrustedSecret = `query TrustedSecret($id: ID!, $asOf: Time) {
  trustedSecret(trustedSecretId: $id, asOf: $asOf) { ` + trustedSecretFields + ` } }`

	opTrustedSecrets = `query TrustedSecrets($query: QueryInput, $trustedSecretId: ID, $name: String, $schemaId: String,
  $provider: String, $trustedAccountId: String, $workspaceId: String) {
  trustedSecrets(query: $query, trustedSecretId: $trustedSecretId, name: $name, schemaId: $schemaId, provider: $provider,
    trustedAccountId: $trustedAccountId, workspaceId: $workspaceId) { totalCount results { ` + trustedSecretFields + ` } } }`

	opTrustedSecretData = `query TrustedSecretData($id: ID!) { trustedSecretData(trustedSecretId: $id) { encrypted encryptOptions data } }`

	opCreateTrustedSecret = `mutation CreateTrustedSecret($in: CreateTrustedSecretInput!) {
  createTrustedSecret(input: $in) { ` + trustedSecretFields + ` } }`

	opUpdateTrustedSecret = `mutation UpdateTrustedSecret($in: UpdateTrustedSecretInput!) {
  updateTrustedSecret(input: $in) { ` + trustedSecretFields + ` } }`

	opUpdateTrustedSecretData = `mutation UpdateTrustedSecretData($in: UpdateTrustedSecretDataInput!) {
  updateTrustedSecretData(input: $in) { ` + trustedSecretFields + ` } }`

	opDeleteTrustedSecret = `mutation DeleteTrustedSecret($id: ID!, $days: Int, $force: Boolean) {
  deleteTrustedSecret(trustedSecretId: $id, recoveryWindowDays: $days, force: $force) }`

	opTrustedSecretHistory = `query TrustedSecretHistory($id: ID!, $first: Int, $after: String) {
  trustedSecretHistory(trustedSecretId: $id, first: $first, after: $after) { ` + auditPageFields + ` } }`

	opTrustedSecretVersions = `query TrustedSecretVersions($id: ID!, $first: Int, $after: String) {
  trustedSecretVersions(trustedSecretId: $id, first: $first, after: $after) { ` + versionPageFields + ` } }`

	opVerifyLog = `query VerifyLog { verifyLog { ok eventsChecked firstBrokenPosition reason } }`
)

// set adds v to vars under k unless it is the zero string.
func set(vars map[string]any, k, v string) {
	if v != "" {
		vars[k] = v
	}
}

func idVars(id string, asOf *time.Time) map[string]any {
	vars := map[string]any{"id": id}
	if asOf != nil {
		vars["asOf"] = asOf.UTC().Format(time.RFC3339Nano)
	}
	return vars
}

func pageVars(id string, p PageArgs) map[string]any {
	vars := map[string]any{"id": id}
	if p.First > 0 {
		vars["first"] = p.First
	}
	set(vars, "after", p.After)
	return vars
}

// Secret returns a secret's metadata, as of a past time when asOf is set.
func (c *Client) Secret(ctx context.Context, id string, asOf *time.Time) (*Secret, error) {
	var out struct{ Secret Secret }
	if err := c.Do(ctx, opSecret, idVars(id, asOf), &out); err != nil {
		return nil, err
	}
	return &out.Secret, nil
}

// Secrets lists the secrets the caller may read.
func (c *Client) Secrets(ctx context.Context, f SecretsFilter) (*SecretList, error) {
	vars := map[string]any{}
	if f.Query != nil {
		vars["query"] = f.Query
	}
	set(vars, "secretId", f.SecretID)
	set(vars, "name", f.Name)
	set(vars, "schemaId", f.SchemaID)
	set(vars, "provider", f.Provider)
	set(vars, "workspaceId", f.WorkspaceID)
	set(vars, "projectId", f.ProjectID)
	set(vars, "serviceAccountId", f.ServiceAccountID)
	set(vars, "trustedSecretId", f.TrustedSecretID)
	var out struct{ Secrets SecretList }
	if err := c.Do(ctx, opSecrets, vars, &out); err != nil {
		return nil, err
	}
	return &out.Secrets, nil
}

// SecretStat runs a Cloudforet StatisticsQuery over secrets.
func (c *Client) SecretStat(ctx context.Context, query map[string]any) (map[string]any, error) {
	var out struct{ SecretStat map[string]any }
	if err := c.Do(ctx, opSecretStat, map[string]any{"query": query}, &out); err != nil {
		return nil, err
	}
	return out.SecretStat, nil
}

// SecretData reads a secret's value (SYSTEM role only; the read is audited).
func (c *Client) SecretData(ctx context.Context, id string) (*SecretData, error) {
	var out struct{ SecretData SecretData }
	if err := c.Do(ctx, opSecretData, map[string]any{"id": id}, &out); err != nil {
		return nil, err
	}
	return &out.SecretData, nil
}

// CreateSecret creates a secret.
func (c *Client) CreateSecret(ctx context.Context, in CreateSecretInput) (*Secret, error) {
	var out struct{ CreateSecret Secret }
	if err := c.Do(ctx, opCreateSecret, map[string]any{"in": in}, &out); err != nil {
		return nil, err
	}
	return &out.CreateSecret, nil
}

// UpdateSecret changes a secret's metadata.
func (c *Client) UpdateSecret(ctx context.Context, in UpdateSecretInput) (*Secret, error) {
	var out struct{ UpdateSecret Secret }
	if err := c.Do(ctx, opUpdateSecret, map[string]any{"in": in}, &out); err != nil {
		return nil, err
	}
	return &out.UpdateSecret, nil
}

// UpdateSecretData replaces a secret's value.
func (c *Client) UpdateSecretData(ctx context.Context, in UpdateSecretDataInput) (*Secret, error) {
	var out struct{ UpdateSecretData Secret }
	if err := c.Do(ctx, opUpdateSecretData, map[string]any{"in": in}, &out); err != nil {
		return nil, err
	}
	return &out.UpdateSecretData, nil
}

// DeleteOptions choose how a delete goes: after a recovery window of
// RecoveryWindowDays (nil: the server's default), or at once with Force.
type DeleteOptions struct {
	RecoveryWindowDays *int
	Force              bool
}

func (o DeleteOptions) vars(id string) map[string]any {
	return map[string]any{"id": id, "days": o.RecoveryWindowDays, "force": o.Force}
}

// DeleteSecret schedules a secret's deletion (or, with Force, deletes it and
// destroys its keys now).
func (c *Client) DeleteSecret(ctx context.Context, id string, o DeleteOptions) error {
	return c.Do(ctx, opDeleteSecret, o.vars(id), nil)
}

// SecretHistory returns a page of a secret's events, oldest first.
func (c *Client) SecretHistory(ctx context.Context, id string, p PageArgs) (*AuditEventPage, error) {
	var out struct{ SecretHistory AuditEventPage }
	if err := c.Do(ctx, opSecretHistory, pageVars(id, p), &out); err != nil {
		return nil, err
	}
	return &out.SecretHistory, nil
}

// UserSecret returns a user secret's metadata.
func (c *Client) UserSecret(ctx context.Context, id string, asOf *time.Time) (*UserSecret, error) {
	var out struct{ UserSecret UserSecret }
	if err := c.Do(ctx, opUserSecret, idVars(id, asOf), &out); err != nil {
		return nil, err
	}
	return &out.UserSecret, nil
}

// UserSecrets lists the user secrets the caller may read.
func (c *Client) UserSecrets(ctx context.Context, f UserSecretsFilter) (*UserSecretList, error) {
	vars := map[string]any{}
	if f.Query != nil {
		vars["query"] = f.Query
	}
	set(vars, "userSecretId", f.UserSecretID)
	set(vars, "name", f.Name)
	set(vars, "schemaId", f.SchemaID)
	set(vars, "provider", f.Provider)
	var out struct{ UserSecrets UserSecretList }
	if err := c.Do(ctx, opUserSecrets, vars, &out); err != nil {
		return nil, err
	}
	return &out.UserSecrets, nil
}

// UserSecretStat runs a Cloudforet StatisticsQuery over user secrets.
func (c *Client) UserSecretStat(ctx context.Context, query map[string]any) (map[string]any, error) {
	var out struct{ UserSecretStat map[string]any }
	if err := c.Do(ctx, opUserSecretStat, map[string]any{"query": query}, &out); err != nil {
		return nil, err
	}
	return out.UserSecretStat, nil
}

// UserSecretData reads a user secret's value (SYSTEM role only; audited).
func (c *Client) UserSecretData(ctx context.Context, id string) (*SecretData, error) {
	var out struct{ UserSecretData SecretData }
	if err := c.Do(ctx, opUserSecretData, map[string]any{"id": id}, &out); err != nil {
		return nil, err
	}
	return &out.UserSecretData, nil
}

// CreateUserSecret creates a user secret of the caller.
func (c *Client) CreateUserSecret(ctx context.Context, in CreateUserSecretInput) (*UserSecret, error) {
	var out struct{ CreateUserSecret UserSecret }
	if err := c.Do(ctx, opCreateUserSecret, map[string]any{"in": in}, &out); err != nil {
		return nil, err
	}
	return &out.CreateUserSecret, nil
}

// UpdateUserSecret changes a user secret's metadata.
func (c *Client) UpdateUserSecret(ctx context.Context, in UpdateUserSecretInput) (*UserSecret, error) {
	var out struct{ UpdateUserSecret UserSecret }
	if err := c.Do(ctx, opUpdateUserSecret, map[string]any{"in": in}, &out); err != nil {
		return nil, err
	}
	return &out.UpdateUserSecret, nil
}

// UpdateUserSecretData replaces a user secret's value.
func (c *Client) UpdateUserSecretData(ctx context.Context, in UpdateUserSecretDataInput) (*UserSecret, error) {
	var out struct{ UpdateUserSecretData UserSecret }
	if err := c.Do(ctx, opUpdateUserSecretData, map[string]any{"in": in}, &out); err != nil {
		return nil, err
	}
	return &out.UpdateUserSecretData, nil
}

// DeleteUserSecret schedules a user secret's deletion (or deletes it now).
func (c *Client) DeleteUserSecret(ctx context.Context, id string, o DeleteOptions) error {
	return c.Do(ctx, opDeleteUserSecret, o.vars(id), nil)
}

// UserSecretHistory returns a page of a user secret's events, oldest first.
func (c *Client) UserSecretHistory(ctx context.Context, id string, p PageArgs) (*AuditEventPage, error) {
	var out struct{ UserSecretHistory AuditEventPage }
	if err := c.Do(ctx, opUserSecretHistory, pageVars(id, p), &out); err != nil {
		return nil, err
	}
	return &out.UserSecretHistory, nil
}

// AuditEvents returns a page of the domain's audit trail (DOMAIN_ADMIN, SYSTEM).
func (c *Client) AuditEvents(ctx context.Context, f AuditFilter, p PageArgs, newestFirst bool) (*AuditEventPage, error) {
	vars := map[string]any{"filter": f, "newestFirst": newestFirst}
	if p.First > 0 {
		vars["first"] = p.First
	}
	set(vars, "after", p.After)
	var out struct{ AuditEvents AuditEventPage }
	if err := c.Do(ctx, opAuditEvents, vars, &out); err != nil {
		return nil, err
	}
	return &out.AuditEvents, nil
}

// VerifyLog walks the whole log checking hash links and checkpoints.
func (c *Client) VerifyLog(ctx context.Context) (*VerifyReport, error) {
	var out struct{ VerifyLog VerifyReport }
	if err := c.Do(ctx, opVerifyLog, nil, &out); err != nil {
		return nil, err
	}
	return &out.VerifyLog, nil
}

// SecretDetails lists secrets with their lifecycle fields.
func (c *Client) SecretDetails(ctx context.Context, q *QueryInput) (*SecretDetailList, error) {
	var out struct{ Secrets SecretDetailList }
	if err := c.Do(ctx, opSecretDetails, map[string]any{"query": q}, &out); err != nil {
		return nil, err
	}
	return &out.Secrets, nil
}

// UserSecretDetails lists user secrets with their lifecycle fields.
func (c *Client) UserSecretDetails(ctx context.Context, q *QueryInput) (*UserSecretDetailList, error) {
	var out struct{ UserSecrets UserSecretDetailList }
	if err := c.Do(ctx, opUserSecretDetails, map[string]any{"query": q}, &out); err != nil {
		return nil, err
	}
	return &out.UserSecrets, nil
}

func versionVars(id string, version int) map[string]any {
	vars := map[string]any{"id": id}
	if version > 0 {
		vars["version"] = version
	}
	return vars
}

// SecretDataVersion reads one version of a secret's value (0: the current
// one). SYSTEM role only; the read is audited.
func (c *Client) SecretDataVersion(ctx context.Context, id string, version int) (*VersionData, error) {
	var out struct{ SecretData VersionData }
	if err := c.Do(ctx, opSecretDataVersion, versionVars(id, version), &out); err != nil {
		return nil, err
	}
	return &out.SecretData, nil
}

// UserSecretDataVersion reads one version of a user secret's value (0: the
// current one). SYSTEM role only; the read is audited.
func (c *Client) UserSecretDataVersion(ctx context.Context, id string, version int) (*VersionData, error) {
	var out struct{ UserSecretData VersionData }
	if err := c.Do(ctx, opUserSecretDataVersion, versionVars(id, version), &out); err != nil {
		return nil, err
	}
	return &out.UserSecretData, nil
}

// SecretVersions returns a page of a secret's versions, newest first.
func (c *Client) SecretVersions(ctx context.Context, id string, p PageArgs) (*SecretVersionPage, error) {
	var out struct{ SecretVersions SecretVersionPage }
	if err := c.Do(ctx, opSecretVersions, pageVars(id, p), &out); err != nil {
		return nil, err
	}
	return &out.SecretVersions, nil
}

// UserSecretVersions returns a page of a user secret's versions, newest first.
func (c *Client) UserSecretVersions(ctx context.Context, id string, p PageArgs) (*SecretVersionPage, error) {
	var out struct{ UserSecretVersions SecretVersionPage }
	if err := c.Do(ctx, opUserSecretVersions, pageVars(id, p), &out); err != nil {
		return nil, err
	}
	return &out.UserSecretVersions, nil
}

// TrustedSecret returns a trusted secret's metadata, as of a past time when asOf is set.
func (c *Client) TrustedSecret(ctx context.Context, id string, asOf *time.Time) (*TrustedSecret, error) {
	var out struct{ TrustedSecret TrustedSecret }
	if err := c.Do(ctx, opTrustedSecret, idVars(id, asOf), &out); err != nil {
		return nil, err
	}
	return &out.TrustedSecret, nil
}

// TrustedSecrets lists the trusted secrets the caller may read.
func (c *Client) TrustedSecrets(ctx context.Context, f TrustedSecretsFilter) (*TrustedSecretList, error) {
	vars := map[string]any{}
	if f.Query != nil {
		vars["query"] = f.Query
	}
	set(vars, "trustedSecretId", f.TrustedSecretID)
	set(vars, "name", f.Name)
	set(vars, "schemaId", f.SchemaID)
	set(vars, "provider", f.Provider)
	set(vars, "trustedAccountId", f.TrustedAccountID)
	set(vars, "workspaceId", f.WorkspaceID)
	var out struct{ TrustedSecrets TrustedSecretList }
	if err := c.Do(ctx, opTrustedSecrets, vars, &out); err != nil {
		return nil, err
	}
	return &out.TrustedSecrets, nil
}

// TrustedSecretData reads a trusted secret's value (SYSTEM role only; audited).
func (c *Client) TrustedSecretData(ctx context.Context, id string) (*SecretData, error) {
	var out struct{ TrustedSecretData SecretData }
	if err := c.Do(ctx, opTrustedSecretData, map[string]any{"id": id}, &out); err != nil {
		return nil, err
	}
	return &out.TrustedSecretData, nil
}

// CreateTrustedSecret creates a trusted secret (DOMAIN or WORKSPACE).
func (c *Client) CreateTrustedSecret(ctx context.Context, in CreateTrustedSecretInput) (*TrustedSecret, error) {
	var out struct{ CreateTrustedSecret TrustedSecret }
	if err := c.Do(ctx, opCreateTrustedSecret, map[string]any{"in": in}, &out); err != nil {
		return nil, err
	}
	return &out.CreateTrustedSecret, nil
}

// UpdateTrustedSecret changes a trusted secret's metadata.
func (c *Client) UpdateTrustedSecret(ctx context.Context, in UpdateTrustedSecretInput) (*TrustedSecret, error) {
	var out struct{ UpdateTrustedSecret TrustedSecret }
	if err := c.Do(ctx, opUpdateTrustedSecret, map[string]any{"in": in}, &out); err != nil {
		return nil, err
	}
	return &out.UpdateTrustedSecret, nil
}

// UpdateTrustedSecretData replaces a trusted secret's value.
func (c *Client) UpdateTrustedSecretData(ctx context.Context, in UpdateTrustedSecretDataInput) (*TrustedSecret, error) {
	var out struct{ UpdateTrustedSecretData TrustedSecret }
	if err := c.Do(ctx, opUpdateTrustedSecretData, map[string]any{"in": in}, &out); err != nil {
		return nil, err
	}
	return &out.UpdateTrustedSecretData, nil
}

// DeleteTrustedSecret schedules a trusted secret's deletion (or, with
// Force, deletes it now). FAILED_PRECONDITION while a live secret links to it.
func (c *Client) DeleteTrustedSecret(ctx context.Context, id string, o DeleteOptions) error {
	return c.Do(ctx, opDeleteTrustedSecret, o.vars(id), nil)
}

// TrustedSecretHistory returns a page of a trusted secret's events, oldest first.
func (c *Client) TrustedSecretHistory(ctx context.Context, id string, p PageArgs) (*AuditEventPage, error) {
	var out struct{ TrustedSecretHistory AuditEventPage }
	if err := c.Do(ctx, opTrustedSecretHistory, pageVars(id, p), &out); err != nil {
		return nil, err
	}
	return &out.TrustedSecretHistory, nil
}

// TrustedSecretVersions returns a page of a trusted secret's versions, newest first.
func (c *Client) TrustedSecretVersions(ctx context.Context, id string, p PageArgs) (*SecretVersionPage, error) {
	var out struct{ TrustedSecretVersions SecretVersionPage }
	if err := c.Do(ctx, opTrustedSecretVersions, pageVars(id, p), &out); err != nil {
		return nil, err
	}
	return &out.TrustedSecretVersions, nil
}
