package graph

import (
	"context"
	"strconv"

	"github.com/secretlog/secretlog/graph/model"
)

// verify walks the whole log checking every hash link and checkpoint.
func (r *Resolver) verify(ctx context.Context) (*model.VerifyReport, error) {
	rep, err := r.Log.Verify(ctx, nil)
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
