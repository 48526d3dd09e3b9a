package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// PayloadFormat is the version of the JSON payload inside a v1 archive.
const PayloadFormat = 1

// Payload is what an archive holds, as JSON.
type Payload struct {
	// Format is PayloadFormat.
	Format int `json:"format"`
	// ArchiveID names this export; import derives its idempotency tokens from it.
	ArchiveID string    `json:"archiveId"`
	CreatedAt time.Time `json:"createdAt"`
	// Source says where the secrets came from.
	Source Source `json:"source"`
	// AllVersions: every readable version was exported, not just the current one.
	AllVersions bool     `json:"allVersions"`
	Secrets     []Secret `json:"secrets"`
	UserSecrets []Secret `json:"userSecrets"`
}

// Source is the exporting server and domain.
type Source struct {
	Server   string `json:"server"`
	DomainID string `json:"domainId"`
	// Filters are the export's --filter conditions, as given.
	Filters []string `json:"filters,omitempty"`
}

// Secret is one secret or user secret: metadata, settings and values.
type Secret struct {
	// ID is the id in the source (secret-… or user-secret-…).
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	SchemaID string         `json:"schemaId,omitempty"`
	Provider string         `json:"provider,omitempty"`
	Tags     map[string]any `json:"tags,omitempty"`
	// Secrets only.
	ResourceGroup    string `json:"resourceGroup,omitempty"`
	WorkspaceID      string `json:"workspaceId,omitempty"`
	ProjectID        string `json:"projectId,omitempty"`
	ServiceAccountID string `json:"serviceAccountId,omitempty"`
	// TrustedSecretID is the trusted secret the source secret linked to. Its
	// values are the merged ones secretData answered; import does not link.
	TrustedSecretID string `json:"trustedSecretId,omitempty"`
	// User secrets only: the owner.
	UserID string `json:"userId,omitempty"`
	// Settings.
	Description         string    `json:"description,omitempty"`
	KmsKeyID            string    `json:"kmsKeyId,omitempty"`
	MaxVersions         int       `json:"maxVersions,omitempty"`
	AutoRotation        bool      `json:"autoRotation,omitempty"`
	RotationPeriodHours int       `json:"rotationPeriodHours,omitempty"`
	CreatedAt           time.Time `json:"createdAt"`
	CreatedBy           string    `json:"createdBy,omitempty"`
	// Versions, oldest first; the last is the current value (SYSCURRENT).
	Versions []Version `json:"versions"`
}

// Version is one value.
type Version struct {
	// Version is the version number in the source.
	Version   int            `json:"version"`
	CreatedAt *time.Time     `json:"createdAt,omitempty"`
	Data      map[string]any `json:"data"`
}

var (
	secretIDPattern     = regexp.MustCompile(`^secret-[0-9a-f]{12}$`)
	userSecretIDPattern = regexp.MustCompile(`^user-secret-[0-9a-f]{12}$`)
	archiveIDPattern    = regexp.MustCompile(`^[A-Za-z0-9-]{8,40}$`)
)

// Encode is the payload's JSON.
func (p *Payload) Encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Decode parses and checks a payload. Its errors never quote a value.
func Decode(b []byte) (*Payload, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var p Payload
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: the payload is not the expected JSON", ErrMalformed)
	}
	if p.Format != PayloadFormat {
		return nil, fmt.Errorf("%w: payload format %d (this build reads %d)", ErrUnsupported, p.Format, PayloadFormat)
	}
	if !archiveIDPattern.MatchString(p.ArchiveID) {
		return nil, fmt.Errorf("%w: archive id", ErrMalformed)
	}
	seen := map[string]bool{}
	for i, list := range [][]Secret{p.Secrets, p.UserSecrets} {
		pattern := secretIDPattern
		if i == 1 {
			pattern = userSecretIDPattern
		}
		for _, s := range list {
			if err := s.check(pattern); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
			}
			if seen[s.ID] {
				return nil, fmt.Errorf("%w: %s appears twice", ErrMalformed, s.ID)
			}
			seen[s.ID] = true
		}
	}
	return &p, nil
}

func (s *Secret) check(id *regexp.Regexp) error {
	if !id.MatchString(s.ID) {
		return errors.New("a secret id is not well formed")
	}
	if s.Name == "" {
		return fmt.Errorf("%s has no name", s.ID)
	}
	if len(s.Versions) == 0 {
		return fmt.Errorf("%s has no value", s.ID)
	}
	for i, v := range s.Versions {
		if v.Version < 1 || (i > 0 && v.Version <= s.Versions[i-1].Version) {
			return fmt.Errorf("%s: versions must be positive and ascending", s.ID)
		}
		if len(v.Data) == 0 {
			return fmt.Errorf("%s: version %d has an empty value", s.ID, v.Version)
		}
	}
	return nil
}
