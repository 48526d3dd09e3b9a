package graph

import (
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/graph/model"
	"github.com/secretlog/secretlog/projections"
)

func auditPage(p projections.AuditPage, err error) (*model.AuditEventPage, error) {
	if err != nil {
		return nil, err
	}
	out := &model.AuditEventPage{Results: make([]*projections.AuditEvent, len(p.Results))}
	for i := range p.Results {
		out.Results[i] = &p.Results[i]
	}
	if p.NextCursor != "" {
		out.NextCursor = &p.NextCursor
	}
	return out, nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// secretView presents an aggregate (replayed from the log) like a read-model row.
func secretView(s *commands.Secret) *projections.Secret {
	return &projections.Secret{
		SecretID: s.ID, Name: s.Name, SchemaID: optional(s.SchemaID), Provider: optional(s.Provider), Tags: nonNil(s.Tags),
		ResourceGroup: string(s.Scope.Group), DomainID: s.Scope.DomainID, WorkspaceID: optional(s.Scope.WorkspaceID),
		ProjectID: optional(s.Scope.ProjectID), ServiceAccountID: optional(s.ServiceAccountID),
		TrustedSecretID: optional(s.TrustedSecretID), Version: s.DataVersion, CreatedBy: s.CreatedBy, UpdatedBy: s.UpdatedBy,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

func userSecretView(s *commands.UserSecret) *projections.UserSecret {
	return &projections.UserSecret{
		UserSecretID: s.ID, Name: s.Name, SchemaID: optional(s.SchemaID), Provider: optional(s.Provider), Tags: nonNil(s.Tags),
		DomainID: s.DomainID, UserID: s.UserID, Version: s.DataVersion, CreatedBy: s.CreatedBy, UpdatedBy: s.UpdatedBy,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

func trustedSecretView(s *commands.TrustedSecret) *projections.TrustedSecret {
	return &projections.TrustedSecret{
		TrustedSecretID: s.ID, Name: s.Name, SchemaID: optional(s.SchemaID), Provider: optional(s.Provider),
		Tags: nonNil(s.Tags), TrustedAccountID: optional(s.TrustedAccountID), ResourceGroup: string(s.Scope.Group),
		DomainID: s.Scope.DomainID, WorkspaceID: optional(s.Scope.WorkspaceID), Version: s.DataVersion,
		CreatedBy: s.CreatedBy, UpdatedBy: s.UpdatedBy, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
