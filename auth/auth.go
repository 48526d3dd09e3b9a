// Package auth implements bearer tokens signed by the server's key (HS256),
// the caller identity carried by those tokens, and the tenancy rules that
// decide which Secrets, UserSecrets and TrustedSecrets an identity may read
// or write.
//
// The rules follow Cloudforet (SpaceONE) Secret/UserSecret semantics with its
// holes closed: every decision requires the resource to live in the caller's
// domain, empty ids never match anything, and only SYSTEM may read secret
// values.
package auth

import (
	"errors"
	"fmt"
	"slices"
)

// Role is the role of a caller within its domain.
type Role string

// Known roles.
const (
	RoleDomainAdmin     Role = "DOMAIN_ADMIN"
	RoleWorkspaceOwner  Role = "WORKSPACE_OWNER"
	RoleWorkspaceMember Role = "WORKSPACE_MEMBER"
	RoleUser            Role = "USER"
	RoleSystem          Role = "SYSTEM"
)

// MaxIDLength is the maximum length, in bytes, of any id carried by an
// Identity (user, domain, workspace, project and token ids).
const MaxIDLength = 40

// MaxSubjectLength is the maximum length, in bytes, of Identity.Subject.
// It is larger than MaxIDLength because the default subject is
// "<role>@<domain>".
const MaxSubjectLength = 128

// ParseRole returns the Role named by s. Matching is exact (upper case, no
// surrounding blanks); anything else is an error.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleDomainAdmin, RoleWorkspaceOwner, RoleWorkspaceMember, RoleUser, RoleSystem:
		return r, nil
	}
	return "", fmt.Errorf("auth: unknown role %q", s)
}

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	_, err := ParseRole(string(r))
	return err == nil
}

// String returns the role name.
func (r Role) String() string { return string(r) }

// Identity is who calls: the verified claims of a token.
type Identity struct {
	Subject     string // token subject (jwt "sub"); defaults to UserID, else "<role>@<domain>"
	UserID      string
	Role        Role
	DomainID    string
	WorkspaceID string
	Projects    []string
	TokenID     string // jwt "jti", random 16 hex
}

// Validate checks that the identity is well formed: the role is known, the
// domain is set, WORKSPACE_OWNER and WORKSPACE_MEMBER carry a workspace,
// USER carries a user id, no id is longer than MaxIDLength and no project id
// is empty.
func (id Identity) Validate() error {
	var errs []error
	if !id.Role.Valid() {
		errs = append(errs, fmt.Errorf("unknown role %q", id.Role))
	}
	if id.DomainID == "" {
		errs = append(errs, errors.New("domain id is required"))
	}
	switch id.Role {
	case RoleWorkspaceOwner, RoleWorkspaceMember:
		if id.WorkspaceID == "" {
			errs = append(errs, fmt.Errorf("workspace id is required for role %s", id.Role))
		}
	case RoleUser:
		if id.UserID == "" {
			errs = append(errs, errors.New("user id is required for role USER"))
		}
	}
	checkLen := func(name, v string) {
		if len(v) > MaxIDLength {
			errs = append(errs, fmt.Errorf("%s is longer than %d characters", name, MaxIDLength))
		}
	}
	checkLen("user id", id.UserID)
	checkLen("domain id", id.DomainID)
	checkLen("workspace id", id.WorkspaceID)
	checkLen("token id", id.TokenID)
	for i, p := range id.Projects {
		if p == "" {
			errs = append(errs, fmt.Errorf("project id #%d is empty", i))
		}
		checkLen(fmt.Sprintf("project id #%d", i), p)
	}
	if len(id.Subject) > MaxSubjectLength {
		errs = append(errs, fmt.Errorf("subject is longer than %d characters", MaxSubjectLength))
	}
	if len(errs) > 0 {
		return fmt.Errorf("auth: invalid identity: %w", errors.Join(errs...))
	}
	return nil
}

// clone returns a copy of id that shares no memory with it.
func (id Identity) clone() Identity {
	id.Projects = slices.Clone(id.Projects)
	return id
}

// ResourceGroup is the level at which a Secret is shared.
type ResourceGroup string

// Resource groups.
const (
	GroupDomain    ResourceGroup = "DOMAIN"
	GroupWorkspace ResourceGroup = "WORKSPACE"
	GroupProject   ResourceGroup = "PROJECT"
)

// Scope is where a Secret lives. DOMAIN secrets have empty
// WorkspaceID/ProjectID; WORKSPACE secrets empty ProjectID.
type Scope struct {
	Group       ResourceGroup
	DomainID    string
	WorkspaceID string
	ProjectID   string
}

// wellFormed reports whether the scope is consistent with its group. A
// malformed scope is never accessible to anyone.
func (s Scope) wellFormed() bool {
	if s.DomainID == "" {
		return false
	}
	switch s.Group {
	case GroupDomain:
		return s.WorkspaceID == "" && s.ProjectID == ""
	case GroupWorkspace:
		return s.WorkspaceID != "" && s.ProjectID == ""
	case GroupProject:
		return s.WorkspaceID != "" && s.ProjectID != ""
	}
	return false
}

// sameDomain reports whether domainID is the identity's (non-empty) domain.
func (id Identity) sameDomain(domainID string) bool {
	return id.DomainID != "" && domainID == id.DomainID
}

// sameWorkspace reports whether workspaceID is the identity's (non-empty)
// workspace.
func (id Identity) sameWorkspace(workspaceID string) bool {
	return id.WorkspaceID != "" && workspaceID == id.WorkspaceID
}

// hasProject reports whether projectID (non-empty) is one of the identity's
// projects.
func (id Identity) hasProject(projectID string) bool {
	return projectID != "" && slices.Contains(id.Projects, projectID)
}

// ownsUserSecret reports whether the identity is the (non-empty) owner.
func (id Identity) ownsUserSecret(ownerUserID string) bool {
	return id.UserID != "" && ownerUserID == id.UserID
}

// secretAccess is the common precondition of every Secret decision: a valid
// identity, a well-formed scope, and the scope in the identity's domain.
func (id Identity) secretAccess(s Scope) bool {
	return id.Validate() == nil && s.wellFormed() && id.sameDomain(s.DomainID)
}

// CanReadSecret reports whether the identity may read the metadata of a
// Secret living in s.
func (id Identity) CanReadSecret(s Scope) bool {
	if !id.secretAccess(s) {
		return false
	}
	switch id.Role {
	case RoleSystem, RoleDomainAdmin:
		return true
	case RoleWorkspaceOwner:
		switch s.Group {
		case GroupDomain:
			return true
		case GroupWorkspace, GroupProject:
			return id.sameWorkspace(s.WorkspaceID)
		}
	case RoleWorkspaceMember:
		switch s.Group {
		case GroupDomain:
			return true
		case GroupWorkspace:
			return id.sameWorkspace(s.WorkspaceID)
		case GroupProject:
			return id.sameWorkspace(s.WorkspaceID) && id.hasProject(s.ProjectID)
		}
	}
	return false
}

// CanWriteSecret reports whether the identity may create, update or delete
// a Secret living in s. The identity's own scope must match exactly; DOMAIN
// secrets are writable by DOMAIN_ADMIN only.
func (id Identity) CanWriteSecret(s Scope) bool {
	if !id.secretAccess(s) {
		return false
	}
	switch id.Role {
	case RoleDomainAdmin:
		return true
	case RoleWorkspaceOwner:
		switch s.Group {
		case GroupWorkspace, GroupProject:
			return id.sameWorkspace(s.WorkspaceID)
		}
	case RoleWorkspaceMember:
		if s.Group == GroupProject {
			return id.sameWorkspace(s.WorkspaceID) && id.hasProject(s.ProjectID)
		}
	}
	return false
}

// CanReadSecretValue reports whether the identity may read the decrypted
// value of a Secret living in s: SYSTEM only, within its domain.
func (id Identity) CanReadSecretValue(s Scope) bool {
	return id.Role == RoleSystem && id.secretAccess(s)
}

// userSecretAccess is the common precondition of every UserSecret decision:
// a valid identity, the UserSecret in the identity's domain, and a non-empty
// owner.
func (id Identity) userSecretAccess(domainID, ownerUserID string) bool {
	return id.Validate() == nil && id.sameDomain(domainID) && ownerUserID != ""
}

// CanReadUserSecret reports whether the identity may read the metadata of
// the UserSecret of ownerUserID in domainID. SYSTEM and DOMAIN_ADMIN read
// every UserSecret of their domain; everyone else only their own.
func (id Identity) CanReadUserSecret(domainID, ownerUserID string) bool {
	if !id.userSecretAccess(domainID, ownerUserID) {
		return false
	}
	switch id.Role {
	case RoleSystem, RoleDomainAdmin:
		return true
	}
	return id.ownsUserSecret(ownerUserID)
}

// CanWriteUserSecret reports whether the identity may create, update or
// delete the UserSecret of ownerUserID in domainID: only the owner, and
// never SYSTEM (which writes nothing).
func (id Identity) CanWriteUserSecret(domainID, ownerUserID string) bool {
	if !id.userSecretAccess(domainID, ownerUserID) || id.Role == RoleSystem {
		return false
	}
	return id.ownsUserSecret(ownerUserID)
}

// CanReadUserSecretValue reports whether the identity may read the decrypted
// value of the UserSecret of ownerUserID in domainID: SYSTEM only, within its
// domain.
func (id Identity) CanReadUserSecretValue(domainID, ownerUserID string) bool {
	return id.Role == RoleSystem && id.userSecretAccess(domainID, ownerUserID)
}

// TrustedSecrets (Cloudforet's TrustedSecret) live in a DOMAIN or a
// WORKSPACE, never in a project: credentials a domain or a workspace trusts,
// which secrets link to. Their rules follow Cloudforet's role types
// (writers DOMAIN_ADMIN and WORKSPACE_OWNER, readers those and
// WORKSPACE_MEMBER) with the same closed holes as Secret: the scope must be
// well formed and in the caller's domain, and only SYSTEM reads values.

// trustedSecretAccess is the common precondition of every TrustedSecret
// decision: a valid identity, a well-formed DOMAIN or WORKSPACE scope, and
// the scope in the identity's domain.
func (id Identity) trustedSecretAccess(s Scope) bool {
	return (s.Group == GroupDomain || s.Group == GroupWorkspace) && id.secretAccess(s)
}

// CanReadTrustedSecret reports whether the identity may read the metadata of
// a TrustedSecret living in s: SYSTEM and DOMAIN_ADMIN every one of their
// domain; WORKSPACE_OWNER and WORKSPACE_MEMBER the DOMAIN ones and their own
// workspace's.
func (id Identity) CanReadTrustedSecret(s Scope) bool {
	if !id.trustedSecretAccess(s) {
		return false
	}
	switch id.Role {
	case RoleSystem, RoleDomainAdmin:
		return true
	case RoleWorkspaceOwner, RoleWorkspaceMember:
		return s.Group == GroupDomain || id.sameWorkspace(s.WorkspaceID)
	}
	return false
}

// CanWriteTrustedSecret reports whether the identity may create, update or
// delete a TrustedSecret living in s: DOMAIN_ADMIN in both groups,
// WORKSPACE_OWNER in its own workspace only.
func (id Identity) CanWriteTrustedSecret(s Scope) bool {
	if !id.trustedSecretAccess(s) {
		return false
	}
	switch id.Role {
	case RoleDomainAdmin:
		return true
	case RoleWorkspaceOwner:
		return s.Group == GroupWorkspace && id.sameWorkspace(s.WorkspaceID)
	}
	return false
}

// CanReadTrustedSecretValue reports whether the identity may read the
// decrypted value of a TrustedSecret living in s: SYSTEM only, within its
// domain.
func (id Identity) CanReadTrustedSecretValue(s Scope) bool {
	return id.Role == RoleSystem && id.trustedSecretAccess(s)
}

// TrustedSecretVisibleFrom reports whether a Secret living in secret may
// link to a TrustedSecret living in trusted: both in one domain, and the
// trusted secret either DOMAIN-wide or in the secret's own workspace (a
// DOMAIN secret, which has no workspace, links to DOMAIN ones only).
func TrustedSecretVisibleFrom(trusted, secret Scope) bool {
	if !secret.wellFormed() || !trusted.wellFormed() || trusted.DomainID != secret.DomainID {
		return false
	}
	switch trusted.Group {
	case GroupDomain:
		return true
	case GroupWorkspace:
		return secret.WorkspaceID != "" && secret.WorkspaceID == trusted.WorkspaceID
	}
	return false
}
