package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
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

	// The lifecycle every resource holding a value shares (Secret,
	// UserSecret, …): the resource is the stream's.
	SettingsChangedV1          = "SettingsChanged.v1"
	StageMovedV1               = "StageMoved.v1"
	VersionsDestroyedV1        = "VersionsDestroyed.v1"
	DisabledV1                 = "Disabled.v1"
	EnabledV1                  = "Enabled.v1"
	DeletionScheduledV1        = "DeletionScheduled.v1"
	RestoredV1                 = "Restored.v1"
	RotationDueV1              = "RotationDue.v1"
	TrustedSecretCreatedV1     = "TrustedSecretCreated.v1"
	TrustedSecretUpdatedV1     = "TrustedSecretUpdated.v1"
	TrustedSecretDataUpdatedV1 = "TrustedSecretDataUpdated.v1"
	TrustedSecretDeletedV1     = "TrustedSecretDeleted.v1"
	TrustedSecretDataReadV1    = "TrustedSecretDataRead.v1"
	// SecretLinkChangedV1 records a secret linking to another trusted
	// secret (or unlinking) after its creation.
	SecretLinkChangedV1 = "SecretLinkChanged.v1"
)

// Settings are a valued resource's lifecycle settings, set on create and
// changed by SettingsChanged.
type Settings struct {
	Description string `json:"description,omitempty"`
	// KmsKeyID names the keyring key that wraps the resource's data keys
	// ("" : the keyring's primary).
	KmsKeyID string `json:"kms_key_id,omitempty"`
	// MaxVersions is how many readable versions are kept (0: the server's default).
	MaxVersions         int  `json:"max_versions,omitempty"`
	AutoRotation        bool `json:"auto_rotation,omitempty"`
	RotationPeriodHours int  `json:"rotation_period_hours,omitempty"`
}

// SettingsChanged changes settings; nil fields are unchanged.
type SettingsChanged struct {
	Description         *string `json:"description,omitempty"`
	MaxVersions         *int    `json:"max_versions,omitempty"`
	AutoRotation        *bool   `json:"auto_rotation,omitempty"`
	RotationPeriodHours *int    `json:"rotation_period_hours,omitempty"`
}

// StageMoved attaches Stage to Version (0: detaches it).
type StageMoved struct {
	Stage   string `json:"stage"`
	Version int64  `json:"version"`
}

// VersionsDestroyed records that the data keys of Versions were destroyed:
// their values can no longer be read (Reason: "destroy" or "retention").
type VersionsDestroyed struct {
	Versions []int64 `json:"versions"`
	Reason   string  `json:"reason"`
}

// Disabled makes the values unreadable until Enabled.
type Disabled struct{}

// Enabled makes the values readable again.
type Enabled struct{}

// DeletionScheduled hides the resource until DeleteAt, when the scheduler
// deletes it for good, unless Restored comes first.
type DeletionScheduled struct {
	DeleteAt           time.Time `json:"delete_at"`
	RecoveryWindowDays int       `json:"recovery_window_days"`
}

// Restored cancels a scheduled deletion.
type Restored struct{}

// RotationDue says a rotation came due (for rotation workers and the change
// feed); Next is when the next one is due.
type RotationDue struct {
	DueAt time.Time `json:"due_at"`
	Next  time.Time `json:"next"`
}

// Valued is a payload that carries a sealed value, and the schema and
// provider it was validated with.
type Valued interface {
	SealedValue() Sealed
	Schema() (schemaID, provider string)
}

// SealedValue implements Valued.
func (e *SecretCreated) SealedValue() Sealed { return e.Data }

// Schema implements Valued.
func (e *SecretCreated) Schema() (string, string) { return e.SchemaID, e.Provider }

// SealedValue implements Valued.
func (e *SecretDataUpdated) SealedValue() Sealed { return e.Data }

// Schema implements Valued.
func (e *SecretDataUpdated) Schema() (string, string) { return e.SchemaID, e.Provider }

// SealedValue implements Valued.
func (e *UserSecretCreated) SealedValue() Sealed { return e.Data }

// Schema implements Valued.
func (e *UserSecretCreated) Schema() (string, string) { return e.SchemaID, e.Provider }

// SealedValue implements Valued.
func (e *UserSecretDataUpdated) SealedValue() Sealed { return e.Data }

// Schema implements Valued.
func (e *UserSecretDataUpdated) Schema() (string, string) { return e.SchemaID, e.Provider }

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
	Settings
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
	// RolledBackFrom is the version whose value this one copies (rollback).
	RolledBackFrom int64 `json:"rolled_back_from,omitempty"`
	// Rotated: the value was generated by rotateSecret.
	Rotated bool `json:"rotated,omitempty"`
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
	Settings
}

// UserSecretUpdated changes metadata; nil fields are unchanged. Tags has no omitempty:
// an empty (non-nil) map clears the tags.
type UserSecretUpdated struct {
	Name *string        `json:"name,omitempty"`
	Tags map[string]any `json:"tags"`
}

// UserSecretDataUpdated replaces the value.
type UserSecretDataUpdated struct {
	SchemaID       string `json:"schema_id,omitempty"`
	Provider       string `json:"provider,omitempty"`
	Data           Sealed `json:"data"`
	RolledBackFrom int64  `json:"rolled_back_from,omitempty"`
	Rotated        bool   `json:"rotated,omitempty"`
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
	Settings
}

// TrustedSecretUpdated changes metadata; nil fields are unchanged. Tags has
// no omitempty: an empty (non-nil) map clears the tags.
type TrustedSecretUpdated struct {
	Name *string        `json:"name,omitempty"`
	Tags map[string]any `json:"tags"`
}

// TrustedSecretDataUpdated replaces the value and starts a new data version.
type TrustedSecretDataUpdated struct {
	SchemaID       string `json:"schema_id,omitempty"`
	Provider       string `json:"provider,omitempty"`
	Data           Sealed `json:"data"`
	RolledBackFrom int64  `json:"rolled_back_from,omitempty"`
	Rotated        bool   `json:"rotated,omitempty"`
}

// SealedValue implements Valued.
func (e *TrustedSecretCreated) SealedValue() Sealed { return e.Data }

// Schema implements Valued.
func (e *TrustedSecretCreated) Schema() (string, string) { return e.SchemaID, e.Provider }

// SealedValue implements Valued.
func (e *TrustedSecretDataUpdated) SealedValue() Sealed { return e.Data }

// Schema implements Valued.
func (e *TrustedSecretDataUpdated) Schema() (string, string) { return e.SchemaID, e.Provider }

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
	SettingsChangedV1:       func() any { return &SettingsChanged{} },
	StageMovedV1:            func() any { return &StageMoved{} },
	VersionsDestroyedV1:     func() any { return &VersionsDestroyed{} },
	DisabledV1:              func() any { return &Disabled{} },
	EnabledV1:               func() any { return &Enabled{} },
	DeletionScheduledV1:     func() any { return &DeletionScheduled{} },
	RestoredV1:              func() any { return &Restored{} },
	RotationDueV1:           func() any { return &RotationDue{} },

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
