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

// secretView presents an aggregate (replayed from the log, or as a command
// left it) like a read-model row.
func secretView(s *commands.Secret) *projections.Secret {
	v := projections.SecretView(s)
	return &v
}

func userSecretView(s *commands.UserSecret) *projections.UserSecret {
	v := projections.UserSecretView(s)
	return &v
}

func trustedSecretView(s *commands.TrustedSecret) *projections.TrustedSecret {
	return &projections.TrustedSecret{
		TrustedSecretID: s.ID, Name: s.Name, SchemaID: optional(s.SchemaID), Provider: optional(s.Provider),
		Tags: nonNil(s.Tags), TrustedAccountID: optional(s.TrustedAccountID), ResourceGroup: string(s.Scope.Group),
		DomainID: s.Scope.DomainID, WorkspaceID: optional(s.Scope.WorkspaceID), Lifecycle: projections.LifecycleOf(&s.Versioned),
		Version: s.DataVersion, CreatedBy: s.CreatedBy, UpdatedBy: s.UpdatedBy, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
