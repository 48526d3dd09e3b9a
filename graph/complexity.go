package graph

import (
	"time"

	"github.com/secretlog/secretlog/graph/model"
	"github.com/secretlog/secretlog/query"
)

// Field costs beyond gqlgen's default (1 plus the selection's cost).
const (
	costStatRows     = 100  // rows a statistics query is assumed to return without page.limit
	costAsOf         = 50   // replaying a stream
	costReveal       = 10   // decrypting a value and appending the read to the log
	costVerify       = 1000 // reading every event of the domain
	defaultAuditPage = 50   // the audit page when first is not given
	maxAuditPage     = 1000
)

// NewComplexity weights list fields by the page they ask for (the default
// page when they do not say), so the complexity limit bounds the rows and
// values an operation can return; the expensive single fields get fixed costs.
func NewComplexity(lim query.Limits) ComplexityRoot {
	d := query.DefaultLimits()
	if lim.DefaultPageSize <= 0 {
		lim.DefaultPageSize = d.DefaultPageSize
	}
	if lim.MaxPageSize <= 0 {
		lim.MaxPageSize = d.MaxPageSize
	}
	if lim.MaxStatRows <= 0 {
		lim.MaxStatRows = d.MaxStatRows
	}
	page := func(q *model.QueryInput) int {
		n := 0
		if q != nil && q.CountOnly != nil && *q.CountOnly {
			return 1
		}
		if q != nil && q.Page != nil && q.Page.Limit != nil {
			n = *q.Page.Limit
		}
		if n <= 0 {
			n = lim.DefaultPageSize
		}
		return min(n, lim.MaxPageSize+1) // more is refused before it runs
	}
	first := func(n *int) int {
		if n == nil || *n <= 0 {
			return defaultAuditPage
		}
		return min(*n, maxAuditPage+1)
	}
	stat := func(q map[string]any) int {
		n := costStatRows
		if p, ok := q["page"].(map[string]any); ok {
			if l, ok := p["limit"].(int64); ok && l > 0 {
				n = int(min(l, int64(lim.MaxStatRows)+1))
			}
		}
		return 1 + n
	}
	var c ComplexityRoot
	c.Query.Secrets = func(child int, q *model.QueryInput, _, _, _, _, _, _, _, _ *string) int {
		return 1 + page(q)*child
	}
	c.Query.UserSecrets = func(child int, q *model.QueryInput, _, _, _, _ *string) int {
		return 1 + page(q)*child
	}
	c.Query.SecretStat = func(_ int, q map[string]any) int { return stat(q) }
	c.Query.UserSecretStat = func(_ int, q map[string]any) int { return stat(q) }
	c.Query.SecretHistory = func(child int, _ string, n *int, _ *string) int { return 1 + first(n)*child }
	c.Query.UserSecretHistory = func(child int, _ string, n *int, _ *string) int { return 1 + first(n)*child }
	c.Query.AuditEvents = func(child int, _ *model.AuditFilter, n *int, _ *string, _ *bool) int {
		return 1 + first(n)*child
	}
	c.Query.Secret = func(child int, _ string, asOf *time.Time) int {
		if asOf != nil {
			return costAsOf + child
		}
		return 1 + child
	}
	c.Query.UserSecret = func(child int, _ string, asOf *time.Time) int {
		if asOf != nil {
			return costAsOf + child
		}
		return 1 + child
	}
	c.Query.SecretData = func(child int, _ string, _ *int, _ *string) int { return costReveal + child }
	c.Query.UserSecretData = func(child int, _ string, _ *int, _ *string) int { return costReveal + child }
	c.Query.SecretVersions = func(child int, _ string, n *int, _ *string) int { return 1 + first(n)*child }
	c.Query.UserSecretVersions = func(child int, _ string, n *int, _ *string) int { return 1 + first(n)*child }
	c.Query.VerifyLog = func(child int) int { return costVerify + child }
	c.Query.TrustedSecrets = func(child int, q *model.QueryInput, _, _, _, _, _, _ *string) int {
		return 1 + page(q)*child
	}
	c.Query.TrustedSecretStat = func(_ int, q map[string]any) int { return stat(q) }
	c.Query.TrustedSecretHistory = func(child int, _ string, n *int, _ *string) int { return 1 + first(n)*child }
	c.Query.TrustedSecret = func(child int, _ string, asOf *time.Time) int {
		if asOf != nil {
			return costAsOf + child
		}
		return 1 + child
	}
	c.Query.TrustedSecretData = func(child int, _ string, _ *int, _ *string) int { return costReveal + child }
	c.Query.TrustedSecretVersions = func(child int, _ string, n *int, _ *string) int { return 1 + first(n)*child }
	return c
}
