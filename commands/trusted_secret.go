package commands

import (
	"fmt"

	"github.com/secretlog/secretlog/auth"
	"github.com/secretlog/secretlog/events"
)

const trustedSecretIDPrefix = "trusted-secret-"

// TrustedSecret is the aggregate rebuilt from a trusted secret's stream: a
// credential that a domain or a workspace trusts and that secrets link to
// (Cloudforet's TrustedSecret). It lives the life every resource with a
// value lives (Versioned); its scope is a DOMAIN or a WORKSPACE.
type TrustedSecret struct {
	Versioned
	Scope            auth.Scope
	TrustedAccountID string
}

// Kind implements Resource.
func (*TrustedSecret) Kind() string { return "TrustedSecret" }

// Tenant implements Resource.
func (s *TrustedSecret) Tenant() events.Tenant { return secretTenant(s.Scope) }

// Clone implements Resource.
func (s *TrustedSecret) Clone() Resource { c := *s; return &c }

// Allows implements Resource.
func (s *TrustedSecret) Allows(a auth.Identity, act Action) bool {
	switch act {
	case ActRead:
		return a.CanReadTrustedSecret(s.Scope)
	case ActWrite:
		return a.CanReadTrustedSecret(s.Scope) && a.CanWriteTrustedSecret(s.Scope)
	default:
		return a.CanReadTrustedSecretValue(s.Scope)
	}
}

// Noun implements Resource.
func (*TrustedSecret) Noun() string { return "trusted secret" }

// IDField implements Resource.
func (*TrustedSecret) IDField() string { return "trustedSecretId" }

// Apply implements Resource. It only changes state.
func (s *TrustedSecret) Apply(rec events.Record, ev any) error {
	switch e := ev.(type) {
	case *events.TrustedSecretCreated:
		*s = TrustedSecret{
			Scope: auth.Scope{Group: auth.ResourceGroup(e.ResourceGroup), DomainID: e.DomainID,
				WorkspaceID: e.WorkspaceID},
			TrustedAccountID: e.TrustedAccountID,
		}
		s.create(rec, e.TrustedSecretID, e.Name, e.SchemaID, e.Provider, e.Tags, e.Data, e.Settings)
	case *events.TrustedSecretUpdated:
		s.rename(e.Name, e.Tags)
	case *events.TrustedSecretDataUpdated:
		s.newData(rec, e.SchemaID, e.Provider, e.Data, e.RolledBackFrom)
	case *events.TrustedSecretDeleted:
		s.delete()
	case *events.TrustedSecretDataRead:
		return nil // a read changes nothing
	default:
		if !s.applyLifecycle(rec, ev) {
			return fmt.Errorf("commands: %s does not belong to a trusted secret stream", rec.Type)
		}
	}
	s.touch(rec)
	return nil
}
