package events

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Versioned event names. A name never changes meaning: a new shape gets a new
// version and an upcaster from the old one.
const (
	SecretCreatedV1         = "SecretCreated.v1"
	SecretUpdatedV1         = "SecretUpdated.v1"
	SecretDataUpdatedV1     = "SecretDataUpdated.v1"
	SecretDeletedV1         = "SecretDeleted.v1"
	UserSecretCreatedV1     = "UserSecretCreated.v1"
	UserSecretUpdatedV1     = "UserSecretUpdated.v1"
	UserSecretDataUpdatedV1 = "UserSecretDataUpdated.v1"
	UserSecretDeletedV1     = "UserSecretDeleted.v1"
	SecretDataReadV1        = "SecretDataRead.v1"
	UserSecretDataReadV1    = "UserSecretDataRead.v1"

	TrustedSecretCreatedV1     = "TrustedSecretCreated.v1"
	TrustedSecretUpdatedV1     = "TrustedSecretUpdated.v1"
	TrustedSecretDataUpdatedV1 = "TrustedSecretDataUpdated.v1"
	TrustedSecretDeletedV1     = "TrustedSecretDeleted.v1"
	TrustedSecretDataReadV1    = "TrustedSecretDataRead.v1"
	// SecretLinkChangedV1 records a secret linking to another trusted
	// secret (or unlinking) after its creation.
	SecretLinkChangedV1 = "SecretLinkChanged.v1"
)

// AccessStream is the stream that records value reads of a resource. Reads
// live beside the resource's own stream so that readers never contend with
// writers for its version.
func AccessStream(resourceID string) string { return resourceID + ":access" }

// ResourceOfStream maps a stream (a resource's own or its access stream) to
// the resource id.
func ResourceOfStream(stream string) string {
	id, _ := strings.CutSuffix(stream, ":access")
	return id
}

// SecretCreated opens a Secret stream. Data is sealed with the stream's key.
type SecretCreated struct {
	SecretID         string         `json:"secret_id"`
	Name             string         `json:"name"`
	SchemaID         string         `json:"schema_id,omitempty"`
	Provider         string         `json:"provider,omitempty"`
	Tags             map[string]any `json:"tags"`
	ResourceGroup    string         `json:"resource_group"`
	DomainID         string         `json:"domain_id"`
	WorkspaceID      string         `json:"workspace_id,omitempty"`
	ProjectID        string         `json:"project_id,omitempty"`
	ServiceAccountID string         `json:"service_account_id,omitempty"`
	TrustedSecretID  string         `json:"trusted_secret_id,omitempty"`
	Data             Sealed         `json:"data"`
}

// SecretUpdated changes metadata; nil fields are unchanged. Tags has no omitempty:
// an empty (non-nil) map clears the tags.
type SecretUpdated struct {
	Name      *string        `json:"name,omitempty"`
	Tags      map[string]any `json:"tags"`
	ProjectID *string        `json:"project_id,omitempty"`
}

// SecretDataUpdated replaces the value and starts a new data version.
type SecretDataUpdated struct {
	SchemaID string `json:"schema_id,omitempty"`
	Provider string `json:"provider,omitempty"`
	Data     Sealed `json:"data"`
}

// SecretDeleted ends a Secret; its data key is destroyed with it.
type SecretDeleted struct{}

// UserSecretCreated opens a UserSecret stream.
type UserSecretCreated struct {
	UserSecretID string         `json:"user_secret_id"`
	Name         string         `json:"name"`
	SchemaID     string         `json:"schema_id,omitempty"`
	Provider     string         `json:"provider,omitempty"`
	Tags         map[string]any `json:"tags"`
	DomainID     string         `json:"domain_id"`
	UserID       string         `json:"user_id"`
	Data         Sealed         `json:"data"`
}

// UserSecretUpdated changes metadata; nil fields are unchanged. Tags has no omitempty:
// an empty (non-nil) map clears the tags.
type UserSecretUpdated struct {
	Name *string        `json:"name,omitempty"`
	Tags map[string]any `json:"tags"`
}

// UserSecretDataUpdated replaces the value.
type UserSecretDataUpdated struct {
	SchemaID string `json:"schema_id,omitempty"`
	Provider string `json:"provider,omitempty"`
	Data     Sealed `json:"data"`
}

// UserSecretDeleted ends a UserSecret.
type UserSecretDeleted struct{}

// SecretDataRead records that a secret's value was read, and which data version.
type SecretDataRead struct {
	SecretID    string `json:"secret_id"`
	DataVersion int64  `json:"data_version"`
}

// UserSecretDataRead records that a user secret's value was read.
type UserSecretDataRead struct {
	UserSecretID string `json:"user_secret_id"`
	DataVersion  int64  `json:"data_version"`
}

// TrustedSecretCreated opens a TrustedSecret stream (a DOMAIN or WORKSPACE
// credential that secrets link to). Data is sealed with the stream's key.
type TrustedSecretCreated struct {
	TrustedSecretID  string         `json:"trusted_secret_id"`
	Name             string         `json:"name"`
	SchemaID         string         `json:"schema_id,omitempty"`
	Provider         string         `json:"provider,omitempty"`
	Tags             map[string]any `json:"tags"`
	TrustedAccountID string         `json:"trusted_account_id,omitempty"`
	ResourceGroup    string         `json:"resource_group"`
	DomainID         string         `json:"domain_id"`
	WorkspaceID      string         `json:"workspace_id,omitempty"`
	Data             Sealed         `json:"data"`
}

// TrustedSecretUpdated changes metadata; nil fields are unchanged. Tags has
// no omitempty: an empty (non-nil) map clears the tags.
type TrustedSecretUpdated struct {
	Name *string        `json:"name,omitempty"`
	Tags map[string]any `json:"tags"`
}

// TrustedSecretDataUpdated replaces the value and starts a new data version.
type TrustedSecretDataUpdated struct {
	SchemaID string `json:"schema_id,omitempty"`
	Provider string `json:"provider,omitempty"`
	Data     Sealed `json:"data"`
}

// TrustedSecretDeleted ends a TrustedSecret; its data key is destroyed with it.
type TrustedSecretDeleted struct{}

// TrustedSecretDataRead records that a trusted secret's value was read, and
// which data version. ViaSecretID is the linked secret whose secretData
// merged it in; empty for a trustedSecretData read.
type TrustedSecretDataRead struct {
	TrustedSecretID string `json:"trusted_secret_id"`
	DataVersion     int64  `json:"data_version"`
	ViaSecretID     string `json:"via_secret_id,omitempty"`
}

// SecretLinkChanged links a secret to another trusted secret; an empty
// TrustedSecretID unlinks it.
type SecretLinkChanged struct {
	TrustedSecretID string `json:"trusted_secret_id"`
}

var factories = map[string]func() any{
	SecretCreatedV1:         func() any { return &SecretCreated{} },
	SecretUpdatedV1:         func() any { return &SecretUpdated{} },
	SecretDataUpdatedV1:     func() any { return &SecretDataUpdated{} },
	SecretDeletedV1:         func() any { return &SecretDeleted{} },
	UserSecretCreatedV1:     func() any { return &UserSecretCreated{} },
	UserSecretUpdatedV1:     func() any { return &UserSecretUpdated{} },
	UserSecretDataUpdatedV1: func() any { return &UserSecretDataUpdated{} },
	UserSecretDeletedV1:     func() any { return &UserSecretDeleted{} },
	SecretDataReadV1:        func() any { return &SecretDataRead{} },
	UserSecretDataReadV1:    func() any { return &UserSecretDataRead{} },

	TrustedSecretCreatedV1:     func() any { return &TrustedSecretCreated{} },
	TrustedSecretUpdatedV1:     func() any { return &TrustedSecretUpdated{} },
	TrustedSecretDataUpdatedV1: func() any { return &TrustedSecretDataUpdated{} },
	TrustedSecretDeletedV1:     func() any { return &TrustedSecretDeleted{} },
	TrustedSecretDataReadV1:    func() any { return &TrustedSecretDataRead{} },
	SecretLinkChangedV1:        func() any { return &SecretLinkChanged{} },
}

// Upcaster turns a stored payload of an old event version into the current one.
type Upcaster func(data []byte) (newType string, newData []byte, err error)

// upcasters maps an old versioned name to its upgrade. Empty until a payload
// shape changes; Decode applies them in a chain.
var upcasters = map[string]Upcaster{}

// Decode turns a record's payload into its typed event (a pointer to one of
// the structs above), upcasting old versions first.
func Decode(typ string, data []byte) (any, error) {
	for i := 0; ; i++ {
		up, ok := upcasters[typ]
		if !ok {
			break
		}
		if i > 16 {
			return nil, fmt.Errorf("events: upcaster loop at %s", typ)
		}
		var err error
		if typ, data, err = up(data); err != nil {
			return nil, err
		}
	}
	f, ok := factories[typ]
	if !ok {
		return nil, fmt.Errorf("events: unknown event type %q", typ)
	}
	v := f()
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("events: decode %s: %w", typ, err)
	}
	return v, nil
}

// Encode returns the payload bytes of a typed event.
func Encode(v any) ([]byte, error) { return json.Marshal(v) }

// BaseName is an event type without its version suffix ("SecretCreated").
func BaseName(typ string) string {
	base, _, _ := strings.Cut(typ, ".")
	return base
}
