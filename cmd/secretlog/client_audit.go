package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/client"
)

func auditCommand() *cobra.Command {
	o := &clientOptions{}
	var h historyFlags
	var types []string
	var resource, resourceType, actor, role, from, to string
	var oldestFirst, follow bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The domain's audit trail, newest first: changes and value reads (DOMAIN_ADMIN, SYSTEM)",
		Long: `The domain's audit trail from the log, newest first: every change (with old and new
metadata) and every value read, by whom and when. Needs a DOMAIN_ADMIN or SYSTEM token.` + clientEnvHelp,
		Example: `  secretlog audit --type SecretDataRead --from 24h
  secretlog audit --resource secret-1a2b3c4d5e6f --all -o json
  secretlog audit --actor alice --from 2026-11-01 --to 2026-12-01 --oldest-first
  secretlog audit --follow --type SecretDataRead            # then one line per new event, until Ctrl-C
  secretlog audit --follow --resource secret-1a2b3c4d5e6f -o json | jq -c 'select(.type? == "SecretDataRead.v1")'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			f := client.AuditFilter{ActorUserID: actor, Role: strings.ToUpper(role), ResourceID: resource, ResourceType: resourceType}
			for _, t := range types {
				for _, s := range strings.Split(t, ",") {
					if s = strings.TrimSpace(s); s != "" {
						f.Types = append(f.Types, s)
					}
				}
			}
			var err error
			if f.From, err = parseTime("from", from, now); err != nil {
				return err
			}
			if f.To, err = parseTime("to", to, now); err != nil {
				return err
			}
			if f.From != nil && f.To != nil && f.To.Before(*f.From) {
				return usagef("--to is before --from")
			}
			var fw *follower
			if follow {
				if fw, err = newFollower(f); err != nil {
					return err
				}
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			if fw != nil {
				// Subscribed before the page is read, so that nothing
				// committed in between is missed (what both carry is printed once).
				if err := fw.start(cmd.Context(), c, cmd.ErrOrStderr()); err != nil {
					return err
				}
				defer fw.stop()
			}
			page, err := h.collect(func(p client.PageArgs) (*client.AuditEventPage, error) {
				return c.AuditEvents(cmd.Context(), f, p, !oldestFirst)
			})
			if err != nil {
				return err
			}
			if err := printEvents(cmd, o, page, true); err != nil || fw == nil {
				return err
			}
			return fw.print(cmd, o, page)
		},
	}
	o.bind(cmd)
	h.bind(cmd, 50)
	fl := cmd.Flags()
	fl.StringArrayVar(&types, "type", nil, "event type, with or without .v1 (repeatable or comma-separated): SecretCreated, SecretUpdated, SecretDataUpdated, SecretDeleted, SecretDataRead, UserSecret...")
	fl.StringVar(&resource, "resource", "", "only this secret, user secret or trusted secret id")
	fl.StringVar(&resourceType, "resource-type", "", "only Secret, UserSecret or TrustedSecret")
	fl.StringVar(&actor, "actor", "", "only events caused by this user id")
	fl.StringVar(&role, "role", "", "only events caused by this role")
	fl.StringVar(&from, "from", "", "not before: RFC 3339, a date (2026-11-20) or an age (90m, 24h, 7d)")
	fl.StringVar(&to, "to", "", "before: RFC 3339, a date or an age")
	fl.BoolVar(&oldestFirst, "oldest-first", false, "oldest first instead of newest first")
	fl.BoolVar(&follow, "follow", false, "after the page, print each new event as it commits (the change feed), until interrupted; reconnects and resumes when the connection drops")
	return cmd
}
