package graph

import (
	"context"
	"strconv"

	"github.com/secretlog/secretlog/commands"
	"github.com/secretlog/secretlog/events"
	"github.com/secretlog/secretlog/graph/model"
)

// verify checks the hash and version chains of the caller's own domain's
// streams: a DOMAIN_ADMIN or SYSTEM caller never reads, nor counts, another
// tenant's events. The whole log, checkpoints included, is verified by an
// operator with `secretlog verify`. Runs are spaced per domain and one runs
// at a time on the server (VerifyGate).
func (r *Resolver) verify(ctx context.Context) (*model.VerifyReport, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if r.Log == nil {
		return nil, &commands.Error{Code: commands.FailedPrecondition,
			Message: "verifyLog checks the PostgreSQL log; this server's log is on EventStoreDB (see the README's EventStoreDB section)"}
	}
	var rep events.VerifyReport
	verify := func(ctx context.Context) error {
		var err error
		rep, err = r.Log.VerifyDomain(ctx, id.DomainID, nil)
		return err
	}
	if r.Verify != nil {
		err = r.Verify.run(ctx, id.DomainID, verify)
	} else {
		err = verify(ctx)
	}
	if err != nil {
		return nil, err
	}
	out := &model.VerifyReport{Ok: rep.OK, EventsChecked: int(rep.EventsChecked)}
	if !rep.OK {
		pos := strconv.FormatInt(rep.FirstBrokenPosition, 10)
		out.FirstBrokenPosition, out.Reason = &pos, &rep.Reason
	}
	return out, nil
}
