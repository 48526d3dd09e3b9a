package client

import (
	"encoding/json"
	"time"
)

// The API's types (schema.graphql), with the schema's JSON names.

// ResourceGroup is where a secret belongs: DOMAIN, WORKSPACE or PROJECT.
type ResourceGroup string

// Resource groups.
const (
	ResourceGroupDomain    ResourceGroup = "DOMAIN"
	ResourceGroupWorkspace ResourceGroup = "WORKSPACE"
	ResourceGroupProject   ResourceGroup = "PROJECT"
)

// Secret is a secret's metadata; its value is read with SecretData.
type Secret struct {
	SecretID         string         `json:"secretId"`
	Name             string         `json:"name"`
	SchemaID         *string        `json:"schemaId"`
	Provider         *string        `json:"provider"`
	Tags             map[string]any `json:"tags"`
	ResourceGroup    ResourceGroup  `json:"resourceGroup"`
	DomainID         string         `json:"domainId"`
	WorkspaceID      *string        `json:"workspaceId"`
	ProjectID        *string        `json:"projectId"`
	ServiceAccountID *string        `json:"serviceAccountId"`
	TrustedSecretID  *string        `json:"trustedSecretId"`
	Version          int            `json:"version"`
	CreatedBy        string         `json:"createdBy"`
	UpdatedBy        string         `json:"updatedBy"`
	CreatedAt        time.Time      `json:"createdAt"`
	UpdatedAt        time.Time      `json:"updatedAt"`
}

// UserSecret is a user secret's metadata.
type UserSecret struct {
	UserSecretID string         `json:"userSecretId"`
	Name         string         `json:"name"`
	SchemaID     *string        `json:"schemaId"`
	Provider     *string        `json:"provider"`
	Tags         map[string]any `json:"tags"`
	DomainID     string         `json:"domainId"`
	UserID       string         `json:"userId"`
	Version      int            `json:"version"`
	CreatedBy    string         `json:"createdBy"`
	UpdatedBy    string         `json:"updatedBy"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
}

// SecretData is a secret's value (SYSTEM role only).
type SecretData struct {
	Encrypted      bool           `json:"encrypted"`
	EncryptOptions map[string]any `json:"encryptOptions"`
	Data           map[string]any `json:"data"`
}

// SecretList is a page of secrets; TotalCount counts before paging.
type SecretList struct {
	Results    []Secret `json:"results"`
	TotalCount int      `json:"totalCount"`
}

// UserSecretList is a page of user secrets.
type UserSecretList struct {
	Results    []UserSecret `json:"results"`
	TotalCount int          `json:"totalCount"`
}

// Filter is one condition: key, value, operator (eq when empty).
type Filter struct {
	K string `json:"k"`
	V any    `json:"v,omitempty"`
	O string `json:"o,omitempty"`
}

// Sort orders by one key.
type Sort struct {
	Key  string `json:"key"`
	Desc bool   `json:"desc,omitempty"`
}

// Page selects results: 1-based Start, Limit 0 for no limit.
type Page struct {
	Start int `json:"start,omitempty"`
	Limit int `json:"limit,omitempty"`
}

// QueryInput is the list query language (README "Query language").
type QueryInput struct {
	Filter    []Filter `json:"filter,omitempty"`
	FilterOr  []Filter `json:"filterOr,omitempty"`
	Sort      []Sort   `json:"sort,omitempty"`
	Page      *Page    `json:"page,omitempty"`
	Keyword   string   `json:"keyword,omitempty"`
	Only      []string `json:"only,omitempty"`
	Minimal   bool     `json:"minimal,omitempty"`
	CountOnly bool     `json:"countOnly,omitempty"`
}

// SecretsFilter is the secrets query's arguments; empty strings are not sent.
type SecretsFilter struct {
	Query            *QueryInput
	SecretID         string
	Name             string
	SchemaID         string
	Provider         string
	WorkspaceID      string
	ProjectID        string
	ServiceAccountID string
	TrustedSecretID  string
}

// UserSecretsFilter is the userSecrets query's arguments.
type UserSecretsFilter struct {
	Query        *QueryInput
	UserSecretID string
	Name         string
	SchemaID     string
	Provider     string
}

// CreateSecretInput creates a secret. Data is its value.
type CreateSecretInput struct {
	Name             string         `json:"name"`
	Data             map[string]any `json:"data"`
	ResourceGroup    ResourceGroup  `json:"resourceGroup"`
	SchemaID         string         `json:"schemaId,omitempty"`
	Tags             map[string]any `json:"tags,omitempty"`
	WorkspaceID      string         `json:"workspaceId,omitempty"`
	ProjectID        string         `json:"projectId,omitempty"`
	ServiceAccountID string         `json:"serviceAccountId,omitempty"`
	TrustedSecretID  string         `json:"trustedSecretId,omitempty"`
	Settings
	// ClientRequestToken makes the request idempotent (README "Idempotency").
	ClientRequestToken string `json:"clientRequestToken,omitempty"`
}

// UpdateSecretInput changes a secret's metadata. Nil fields are left as
// they are; a non-nil empty Tags clears the tags.
type UpdateSecretInput struct {
	SecretID  string
	Name      *string
	Tags      map[string]any
	ProjectID *string
}

// MarshalJSON sends tags whenever they are non-nil, empty included.
func (in UpdateSecretInput) MarshalJSON() ([]byte, error) {
	m := map[string]any{"secretId": in.SecretID}
	if in.Name != nil {
		m["name"] = *in.Name
	}
	if in.Tags != nil {
		m["tags"] = in.Tags
	}
	if in.ProjectID != nil {
		m["projectId"] = *in.ProjectID
	}
	return json.Marshal(m)
}

// UpdateSecretDataInput replaces a secret's value (a new data version).
type UpdateSecretDataInput struct {
	SecretID           string         `json:"secretId"`
	Data               map[string]any `json:"data"`
	SchemaID           string         `json:"schemaId,omitempty"`
	ClientRequestToken string         `json:"clientRequestToken,omitempty"`
}

// CreateUserSecretInput creates a user secret of the caller.
type CreateUserSecretInput struct {
	Name     string         `json:"name"`
	Data     map[string]any `json:"data"`
	SchemaID string         `json:"schemaId,omitempty"`
	Tags     map[string]any `json:"tags,omitempty"`
	Settings
	ClientRequestToken string `json:"clientRequestToken,omitempty"`
}

// UpdateUserSecretInput changes a user secret's metadata (see UpdateSecretInput).
type UpdateUserSecretInput struct {
	UserSecretID string
	Name         *string
	Tags         map[string]any
}

// MarshalJSON sends tags whenever they are non-nil, empty included.
func (in UpdateUserSecretInput) MarshalJSON() ([]byte, error) {
	m := map[string]any{"userSecretId": in.UserSecretID}
	if in.Name != nil {
		m["name"] = *in.Name
	}
	if in.Tags != nil {
		m["tags"] = in.Tags
	}
	return json.Marshal(m)
}

// UpdateUserSecretDataInput replaces a user secret's value.
type UpdateUserSecretDataInput struct {
	UserSecretID       string         `json:"userSecretId"`
	Data               map[string]any `json:"data"`
	SchemaID           string         `json:"schemaId,omitempty"`
	ClientRequestToken string         `json:"clientRequestToken,omitempty"`
}

// Actor is who caused an event.
type Actor struct {
	UserID   *string `json:"userId"`
	Role     string  `json:"role"`
	DomainID string  `json:"domainId"`
	Subject  *string `json:"subject"`
}

// FieldChange is a changed metadata field; a value change is the field
// "data" with neither Old nor New.
type FieldChange struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// AuditEvent is one entry of the audit trail.
type AuditEvent struct {
	Position      string        `json:"position"`
	Stream        string        `json:"stream"`
	ResourceType  string        `json:"resourceType"`
	ResourceID    string        `json:"resourceId"`
	Version       int           `json:"version"`
	DataVersion   int           `json:"dataVersion"`
	Type          string        `json:"type"`
	Actor         Actor         `json:"actor"`
	OccurredAt    time.Time     `json:"occurredAt"`
	CorrelationID *string       `json:"correlationId"`
	Changes       []FieldChange `json:"changes"`
}

// AuditEventPage is a page of the trail; NextCursor is nil on the last page.
type AuditEventPage struct {
	Results    []AuditEvent `json:"results"`
	NextCursor *string      `json:"nextCursor"`
}

// AuditFilter narrows auditEvents; zero fields are not sent.
type AuditFilter struct {
	ActorUserID  string     `json:"actorUserId,omitempty"`
	Role         string     `json:"role,omitempty"`
	ResourceType string     `json:"resourceType,omitempty"`
	ResourceID   string     `json:"resourceId,omitempty"`
	Types        []string   `json:"types,omitempty"`
	From         *time.Time `json:"from,omitempty"`
	To           *time.Time `json:"to,omitempty"`
}

// PageArgs selects a page of an audit trail: First events after the cursor After.
type PageArgs struct {
	First int
	After string
}

// VerifyReport is verifyLog's answer.
type VerifyReport struct {
	OK                  bool    `json:"ok"`
	EventsChecked       int     `json:"eventsChecked"`
	FirstBrokenPosition *string `json:"firstBrokenPosition"`
	Reason              *string `json:"reason"`
}

// Settings are a new resource's lifecycle settings (README "Secret
// lifecycle"); zero fields are not sent (the server's defaults apply).
type Settings struct {
	Description         string `json:"description,omitempty"`
	KmsKeyID            string `json:"kmsKeyId,omitempty"`
	MaxVersions         int    `json:"maxVersions,omitempty"`
	AutoRotation        bool   `json:"autoRotation,omitempty"`
	RotationPeriodHours int    `json:"rotationPeriodHours,omitempty"`
}

// Lifecycle is the lifecycle state and settings of a secret or user secret.
type Lifecycle struct {
	State               string     `json:"state"`
	Description         *string    `json:"description"`
	KmsKeyID            *string    `json:"kmsKeyId"`
	MaxVersions         *int       `json:"maxVersions"`
	AutoRotation        *bool      `json:"autoRotation"`
	RotationPeriodHours *int       `json:"rotationPeriodHours"`
	NextRotationTime    *time.Time `json:"nextRotationTime"`
	LastRotatedAt       *time.Time `json:"lastRotatedAt"`
}

// SecretDetail is a secret's metadata with its lifecycle fields.
type SecretDetail struct {
	Secret
	Lifecycle
}

// UserSecretDetail is a user secret's metadata with its lifecycle fields.
type UserSecretDetail struct {
	UserSecret
	Lifecycle
}

// SecretDetailList is a page of secrets with their lifecycle fields.
type SecretDetailList struct {
	Results    []SecretDetail `json:"results"`
	TotalCount int            `json:"totalCount"`
}

// UserSecretDetailList is a page of user secrets with their lifecycle fields.
type UserSecretDetailList struct {
	Results    []UserSecretDetail `json:"results"`
	TotalCount int                `json:"totalCount"`
}

// VersionData is one version of a value (SYSTEM role only).
type VersionData struct {
	Data    map[string]any `json:"data"`
	Version int            `json:"version"`
}

// SecretVersion is one version of a value: its stages and whether its value
// is still readable.
type SecretVersion struct {
	Version        int       `json:"version"`
	Stages         []string  `json:"stages"`
	CreatedAt      time.Time `json:"createdAt"`
	CreatedBy      string    `json:"createdBy"`
	Readable       bool      `json:"readable"`
	RolledBackFrom *int      `json:"rolledBackFrom"`
}

// SecretVersionPage is a page of versions, newest first.
type SecretVersionPage struct {
	Results    []SecretVersion `json:"results"`
	NextCursor *string         `json:"nextCursor"`
}

// TrustedSecret is a trusted secret's metadata: a credential a domain or a
// workspace trusts, which secrets link to (README "Trusted secrets").
type TrustedSecret struct {
	TrustedSecretID  string         `json:"trustedSecretId"`
	Name             string         `json:"name"`
	SchemaID         *string        `json:"schemaId"`
	Provider         *string        `json:"provider"`
	Tags             map[string]any `json:"tags"`
	TrustedAccountID *string        `json:"trustedAccountId"`
	ResourceGroup    ResourceGroup  `json:"resourceGroup"`
	DomainID         string         `json:"domainId"`
	WorkspaceID      *string        `json:"workspaceId"`
	State            string         `json:"state"`
	Description      *string        `json:"description"`
	KmsKeyID         *string        `json:"kmsKeyId"`
	MaxVersions      *int           `json:"maxVersions"`
	Version          int            `json:"version"`
	CreatedBy        string         `json:"createdBy"`
	UpdatedBy        string         `json:"updatedBy"`
	CreatedAt        time.Time      `json:"createdAt"`
	UpdatedAt        time.Time      `json:"updatedAt"`
}

// TrustedSecretList is a page of trusted secrets.
type TrustedSecretList struct {
	Results    []TrustedSecret `json:"results"`
	TotalCount int             `json:"totalCount"`
}

// TrustedSecretsFilter is the trustedSecrets query's arguments; empty strings are not sent.
type TrustedSecretsFilter struct {
	Query            *QueryInput
	TrustedSecretID  string
	Name             string
	SchemaID         string
	Provider         string
	TrustedAccountID string
	WorkspaceID      string
}

// CreateTrustedSecretInput creates a trusted secret; ResourceGroup is DOMAIN
// or WORKSPACE.
type CreateTrustedSecretInput struct {
	Name             string         `json:"name"`
	Data             map[string]any `json:"data"`
	ResourceGroup    ResourceGroup  `json:"resourceGroup"`
	SchemaID         string         `json:"schemaId,omitempty"`
	Tags             map[string]any `json:"tags,omitempty"`
	WorkspaceID      string         `json:"workspaceId,omitempty"`
	TrustedAccountID string         `json:"trustedAccountId,omitempty"`
	Description      string         `json:"description,omitempty"`
	KmsKeyID         string         `json:"kmsKeyId,omitempty"`
	MaxVersions      int            `json:"maxVersions,omitempty"`
}

// UpdateTrustedSecretInput changes a trusted secret's metadata (see
// UpdateSecretInput): nil fields are left as they are.
type UpdateTrustedSecretInput struct {
	TrustedSecretID string
	Name            *string
	Tags            map[string]any
	Description     *string
	MaxVersions     *int
}

// MarshalJSON sends tags whenever they are non-nil, empty included.
func (in UpdateTrustedSecretInput) MarshalJSON() ([]byte, error) {
	m := map[string]any{"trustedSecretId": in.TrustedSecretID}
	if in.Name != nil {
		m["name"] = *in.Name
	}
	if in.Tags != nil {
		m["tags"] = in.Tags
	}
	if in.Description != nil {
		m["description"] = *in.Description
	}
	if in.MaxVersions != nil {
		m["maxVersions"] = *in.MaxVersions
	}
	return json.Marshal(m)
}

// UpdateTrustedSecretDataInput replaces a trusted secret's value.
type UpdateTrustedSecretDataInput struct {
	TrustedSecretID string         `json:"trustedSecretId"`
	Data            map[string]any `json:"data"`
	SchemaID        string         `json:"schemaId,omitempty"`
}
