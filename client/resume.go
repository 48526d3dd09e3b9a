package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// ResumeOptions configure FollowResuming.
type ResumeOptions struct {
	// After is where every feed starts: a position as an event carried it,
	// or "" for the feed's position when FollowResuming starts
	// (FeedPosition).
	After string
	// Started, when not nil, is called once the first connection's
	// subscriptions are sent.
	Started func()
	// Reconnecting, when not nil, is told why a connection ended and how
	// long FollowResuming waits before the next one.
	Reconnecting func(err error, wait time.Duration)
	// MinBackoff is the first wait (250ms); each attempt in a row that
	// delivers no event doubles it, up to MaxBackoff (30s). The waits are
	// jittered (between half and all of it).
	MinBackoff, MaxBackoff time.Duration
}

// FollowResuming is Follow that outlives its connection. When the
// connection drops or the server ends the subscriptions (UNAVAILABLE: a
// failed connection or a server shutting down; RESOURCE_EXHAUSTED: a
// subscriber too far behind, or a subscription limit; INTERNAL), it
// reconnects after a backoff and resubscribes each feed with after = the
// position of the last event fn took from that feed: fn sees every event
// once, each feed's in commit order (events of different feeds in the
// order they arrive). It returns nil when ctx ends, fn's error, the first
// connection's failure, or an error that another attempt would not change
// (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT, ...).
func (c *Client) FollowResuming(ctx context.Context, feeds []string, f ChangeFilter, o ResumeOptions, fn func(ChangeEvent) error) error {
	start := o.After
	if start == "" {
		p, err := c.FeedPosition(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		start = p
	}
	last := make(map[string]string, len(feeds))
	for _, feed := range feeds {
		last[feed] = start
	}
	minWait, maxWait := o.MinBackoff, o.MaxBackoff
	if minWait <= 0 {
		minWait = 250 * time.Millisecond
	}
	if maxWait < minWait {
		maxWait = max(30*time.Second, minWait)
	}
	wait := minWait
	started := false
	for {
		delivered := false
		err := c.follow(ctx, feeds, f, last, func() {
			if !started {
				started = true
				if o.Started != nil {
					o.Started()
				}
			}
		}, func(feed string, e ChangeEvent) error {
			if !positionAfter(e.Position, last[feed]) {
				return nil // had it already
			}
			if err := fn(e); err != nil {
				return stopError{err}
			}
			last[feed] = e.Position
			delivered = true
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		var stop stopError
		if errors.As(err, &stop) {
			return stop.err
		}
		if !started {
			return err
		}
		if err == nil {
			err = &Error{Code: CodeUnavailable, Message: c.endpoint + " ended the subscriptions"}
		}
		if !resumable(err) {
			return err
		}
		if delivered {
			wait = minWait
		}
		d := wait/2 + rand.N(wait/2+1)
		if o.Reconnecting != nil {
			o.Reconnecting(err, d)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(d):
		}
		wait = min(wait*2, maxWait)
	}
}

// stopError carries fn's error out of a connection: never retried.
type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }

// resumable reports whether another connection may get further than the
// one that ended with err.
func resumable(err error) bool {
	switch CodeOf(err) {
	case CodeUnavailable, CodeResourceExhausted, CodeInternal:
		return true
	}
	return false
}

// positionAfter reports whether position p comes after q in the log's
// commit order ("<commit>:<position>"; q "" is before everything). A
// position that does not parse counts as after.
func positionAfter(p, q string) bool {
	pc, pp, ok1 := parsePosition(p)
	qc, qp, ok2 := parsePosition(q)
	if !ok1 || !ok2 {
		return true
	}
	return pc > qc || (pc == qc && pp > qp)
}

func parsePosition(s string) (uint64, int64, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, false
	}
	c, err1 := strconv.ParseUint(a, 10, 64)
	p, err2 := strconv.ParseInt(b, 10, 64)
	return c, p, err1 == nil && err2 == nil
}
