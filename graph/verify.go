package graph

import (
	"context"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/graph/model"
)

// verify walks the log (wired to events.PostgresStore.Verify).
func (r *Resolver) verify(ctx context.Context) (*model.VerifyReport, error) {
	return nil, &commands.Error{Code: commands.Internal, Message: "verify is not wired yet"}
}
