package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/client"
)

// follower is audit --follow: the change feed (secretEvents,
// userSecretEvents and trustedSecretEvents over graphql-transport-ws) with
// audit's filters. It outlives its connection: when the connection drops it
// reconnects with backoff and resumes each subscription after the last
// event it took, so nothing is lost or printed twice.
type follower struct {
	feeds        []string
	filter       client.ChangeFilter
	actor, role  string // not in ChangeFilter: applied here
	events       chan client.ChangeEvent
	done         chan struct{}
	err          error // the subscription's end, once done is closed
	cancel       context.CancelFunc
	skipPosition map[string]bool // global positions the page printed
}

// newFollower maps audit's filter onto the feed's: --type and --resource
// go to ChangeFilter, --resource-type picks the subscriptions, --actor and
// --role are matched here; --to has no meaning for new events.
func newFollower(f client.AuditFilter) (*follower, error) {
	fw := &follower{filter: client.ChangeFilter{Types: f.Types, ResourceID: f.ResourceID}, actor: f.ActorUserID, role: f.Role}
	switch strings.ToLower(f.ResourceType) {
	case "":
		fw.feeds = []string{client.FeedSecrets, client.FeedUserSecrets, client.FeedTrustedSecrets}
	case "secret":
		fw.feeds = []string{client.FeedSecrets}
	case "usersecret":
		fw.feeds = []string{client.FeedUserSecrets}
	case "trustedsecret":
		fw.feeds = []string{client.FeedTrustedSecrets}
	default:
		return nil, usagef("--follow: the change feed carries Secret, UserSecret and TrustedSecret events, not %q", f.ResourceType)
	}
	if f.To != nil {
		return nil, usagef("--follow prints events as they come: --to does not apply")
	}
	return fw, nil
}

// start subscribes and returns once the subscriptions are sent (or the
// first connection failed). Reconnections are told on errOut.
func (fw *follower) start(ctx context.Context, c *client.Client, errOut io.Writer) error {
	ctx, fw.cancel = context.WithCancel(ctx)
	fw.events = make(chan client.ChangeEvent, 256)
	fw.done = make(chan struct{})
	started := make(chan struct{})
	go func() {
		defer close(fw.done)
		fw.err = c.FollowResuming(ctx, fw.feeds, fw.filter, client.ResumeOptions{
			Started: func() { close(started) },
			Reconnecting: func(err error, wait time.Duration) {
				fmt.Fprintf(errOut, "secretlog: the change feed's connection ended (%s); reconnecting in %s\n",
					cell(err.Error(), 0), wait.Round(10*time.Millisecond))
			},
		}, func(e client.ChangeEvent) error {
			// Every event taken here is printed: the next connection
			// resumes after it.
			select {
			case fw.events <- e:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	select {
	case <-started:
		return nil
	case <-fw.done:
		if fw.err == nil {
			return ctx.Err()
		}
		return fw.err
	}
}

func (fw *follower) stop() {
	fw.cancel()
	<-fw.done
}

// print prints each event from the feed, one line (or one JSON object) at a
// time, until the context ends (nil) or the subscription fails. Events the
// page already showed are skipped.
func (fw *follower) print(cmd *cobra.Command, o *clientOptions, page *client.AuditEventPage) error {
	fw.skipPosition = map[string]bool{}
	for _, e := range page.Results {
		fw.skipPosition[e.Position] = true
	}
	w := cmd.OutOrStdout()
	if !o.json() {
		fmt.Fprintln(cmd.ErrOrStderr(), "following the change feed (Ctrl-C to stop)")
	}
	for {
		select {
		case e := <-fw.events:
			if !fw.match(e) {
				continue
			}
			if err := printChange(w, o, e); err != nil {
				return err
			}
		case <-fw.done:
			// Print what arrived before the end, then say why it ended.
			for {
				select {
				case e := <-fw.events:
					if !fw.match(e) {
						continue
					}
					if err := printChange(w, o, e); err != nil {
						return err
					}
				default:
					return fw.err
				}
			}
		}
	}
}

func (fw *follower) match(e client.ChangeEvent) bool {
	// A feed position is "<commit>:<global position>"; the page's are the latter.
	if _, pos, ok := strings.Cut(e.Position, ":"); ok && fw.skipPosition[pos] {
		return false
	}
	if fw.actor != "" && (e.Actor.UserID == nil || *e.Actor.UserID != fw.actor) {
		return false
	}
	return fw.role == "" || strings.EqualFold(e.Actor.Role, fw.role)
}

// printChange prints one event: a compact JSON object per line, or a line
// with the audit table's columns (the changed fields by name only).
func printChange(w io.Writer, o *clientOptions, e client.ChangeEvent) error {
	if o.json() {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(e)
	}
	dv := "-"
	if e.DataVersion != nil {
		dv = fmt.Sprint(*e.DataVersion)
	}
	fields := make([]string, len(e.ChangedFields))
	for i, f := range e.ChangedFields {
		fields[i] = cell(f, 0)
	}
	_, err := fmt.Fprintf(w, "%s  %s  %s  %s  %s  %s  %s\n", cell(e.Position, 0), cell(e.OccurredAt, 0),
		cell(strings.TrimSuffix(e.Type, ".v1"), 0), cell(e.ResourceID, 0), dv, actorCell(e.Actor),
		orDash(strings.Join(fields, ",")))
	return err
}
