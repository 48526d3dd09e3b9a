// Package scalar holds the API's custom GraphQL scalars.
package scalar

import (
	"github.com/99designs/gqlgen/graphql"

	"github.com/secretlog/secretlog/commands"
)

// MarshalMap writes a JSON object.
func MarshalMap(v map[string]any) graphql.Marshaler { return graphql.MarshalMap(v) }

// UnmarshalMap accepts only a JSON object. Anything else is INVALID_ARGUMENT,
// and the message never repeats the value (it may be a secret).
func UnmarshalMap(v any) (map[string]any, error) {
	if m, ok := v.(map[string]any); ok {
		return m, nil
	}
	return nil, &commands.Error{Code: commands.InvalidArgument, Message: "must be a JSON object"}
}
