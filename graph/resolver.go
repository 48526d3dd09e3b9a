// Package graph is secretlog's GraphQL API: gqlgen output, resolvers that
// turn requests into commands and read-model queries, and the error presenter.
package graph

//go:generate go tool gqlgen generate --config ../gqlgen.yml

import (
	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/feed"
	"github.com/secretlog/secretlog/projections"
)

// Resolver holds what resolvers need.
type Resolver struct {
	App    *commands.Application
	Reader *projections.Reader
	Log    *events.PostgresStore
	// Verify rate-limits verifyLog per domain; nil: no limit.
	Verify *VerifyGate
	// Feed serves subscriptions; nil: this server serves none.
	Feed *feed.Broker
}
