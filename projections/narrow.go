package projections

// A list query's only and minimal narrow what it answers
// (query.Query.Fields): a field outside them answers null. Nullable fields
// are cleared on the row; the others answer through the *OrNull methods,
// which the GraphQL schema binds (gqlgen.yml).

import (
	"slices"
	"time"
)

// answer is &v when the row answers field, else nil.
func answer[T any](fields []string, field string, v T) *T {
	if fields != nil && !slices.Contains(fields, field) {
		return nil
	}
	return &v
}

// drop sets *p to nil unless the row answers field.
func drop[T any](fields []string, field string, p **T) {
	if fields != nil && !slices.Contains(fields, field) {
		*p = nil
	}
}

// narrow clears the lifecycle fields a list leaves out.
func (l *Lifecycle) narrow(fields []string) {
	drop(fields, "description", &l.Description)
	drop(fields, "kmsKeyId", &l.KmsKeyID)
	drop(fields, "maxVersions", &l.MaxVersions)
	drop(fields, "rotationPeriodHours", &l.RotationPeriodHours)
	drop(fields, "nextRotationTime", &l.NextRotationTime)
	drop(fields, "lastRotatedAt", &l.LastRotatedAt)
}

func (s *Secret) narrow(fields []string) {
	s.fields = fields
	s.Lifecycle.narrow(fields)
	drop(fields, "schemaId", &s.SchemaID)
	drop(fields, "provider", &s.Provider)
	drop(fields, "workspaceId", &s.WorkspaceID)
	drop(fields, "projectId", &s.ProjectID)
	drop(fields, "serviceAccountId", &s.ServiceAccountID)
	drop(fields, "trustedSecretId", &s.TrustedSecretID)
	if answer(fields, "tags", 0) == nil {
		s.Tags = nil
	}
}

// NameOrNull and the methods below answer a field, or null when a list's
// only or minimal leave it out.
func (s *Secret) NameOrNull() *string { return answer(s.fields, "name", s.Name) }
func (s *Secret) ResourceGroupOrNull() *string {
	return answer(s.fields, "resourceGroup", s.ResourceGroup)
}
func (s *Secret) DomainIDOrNull() *string     { return answer(s.fields, "domainId", s.DomainID) }
func (s *Secret) VersionOrNull() *int64       { return answer(s.fields, "version", s.Version) }
func (s *Secret) CreatedByOrNull() *string    { return answer(s.fields, "createdBy", s.CreatedBy) }
func (s *Secret) UpdatedByOrNull() *string    { return answer(s.fields, "updatedBy", s.UpdatedBy) }
func (s *Secret) CreatedAtOrNull() *time.Time { return answer(s.fields, "createdAt", s.CreatedAt) }
func (s *Secret) UpdatedAtOrNull() *time.Time { return answer(s.fields, "updatedAt", s.UpdatedAt) }

func (s *UserSecret) narrow(fields []string) {
	s.fields = fields
	s.Lifecycle.narrow(fields)
	drop(fields, "schemaId", &s.SchemaID)
	drop(fields, "provider", &s.Provider)
	if answer(fields, "tags", 0) == nil {
		s.Tags = nil
	}
}

// NameOrNull and the methods below answer a field, or null when a list's
// only or minimal leave it out.
func (s *UserSecret) NameOrNull() *string         { return answer(s.fields, "name", s.Name) }
func (s *UserSecret) DomainIDOrNull() *string     { return answer(s.fields, "domainId", s.DomainID) }
func (s *UserSecret) UserIDOrNull() *string       { return answer(s.fields, "userId", s.UserID) }
func (s *UserSecret) VersionOrNull() *int64       { return answer(s.fields, "version", s.Version) }
func (s *UserSecret) CreatedByOrNull() *string    { return answer(s.fields, "createdBy", s.CreatedBy) }
func (s *UserSecret) UpdatedByOrNull() *string    { return answer(s.fields, "updatedBy", s.UpdatedBy) }
func (s *UserSecret) CreatedAtOrNull() *time.Time { return answer(s.fields, "createdAt", s.CreatedAt) }
func (s *UserSecret) UpdatedAtOrNull() *time.Time { return answer(s.fields, "updatedAt", s.UpdatedAt) }

// StateOrNull answers state, or null when a list leaves it out.
func (s *Secret) StateOrNull() *string { return answer(s.fields, "state", s.State) }

// AutoRotationOrNull answers autoRotation, or null when a list leaves it out.
func (s *Secret) AutoRotationOrNull() *bool { return answer(s.fields, "autoRotation", s.AutoRotation) }

// StateOrNull answers state, or null when a list leaves it out.
func (s *UserSecret) StateOrNull() *string { return answer(s.fields, "state", s.State) }

// AutoRotationOrNull answers autoRotation, or null when a list leaves it out.
func (s *UserSecret) AutoRotationOrNull() *bool {
	return answer(s.fields, "autoRotation", s.AutoRotation)
}
