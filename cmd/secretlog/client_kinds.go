package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/client"
)

// The commands the three kinds of secret (secret, user-secret,
// trusted-secret) share, written once: get, put-data, delete, history and
// versions differ only in the operations they call and the words they use.

// kind names one kind of secret in commands, help and errors.
type kind struct {
	name  string // in prose and errors: "user secret"
	arg   string // the id argument: USER_SECRET_ID
	idKey string // the id's JSON field: userSecretId
}

var (
	kindSecret        = kind{name: "secret", arg: "SECRET_ID", idKey: "secretId"}
	kindUserSecret    = kind{name: "user secret", arg: "USER_SECRET_ID", idKey: "userSecretId"}
	kindTrustedSecret = kind{name: "trusted secret", arg: "TRUSTED_SECRET_ID", idKey: "trustedSecretId"}
)

// command is the kind's command name: user-secret.
func (k kind) command() string { return strings.ReplaceAll(k.name, " ", "-") }

// printResource prints one resource: asJSON (its metadata, with data when
// read), or a field/value table followed by the value's table when read.
func printResource(cmd *cobra.Command, o *clientOptions, asJSON any, rows [][2]any, data map[string]any) error {
	if o.json() {
		return writeJSON(cmd.OutOrStdout(), asJSON)
	}
	w := cmd.OutOrStdout()
	t := newTable("field", "value")
	for _, r := range rows {
		t.AppendRow([]any{r[0], cell(r[1], 0)})
	}
	render(w, t)
	if data != nil {
		fmt.Fprintln(w)
		dataTable(w, data)
	}
	return nil
}

// createdUpdated are the last two rows of every resource's table.
func createdUpdated(createdAt time.Time, createdBy string, updatedAt time.Time, updatedBy string) [][2]any {
	return [][2]any{
		{"created", fmt.Sprintf("%s by %s", cell(createdAt, 0), cell(createdBy, 0))},
		{"updated", fmt.Sprintf("%s by %s", cell(updatedAt, 0), cell(updatedBy, 0))},
	}
}

// getCommand is `get ID`: metadata (as of a past time with --as-of); with
// --data also the value (SYSTEM token; the read is audited), or one key of
// it with --field.
func getCommand[T any](o *clientOptions, k kind, example string,
	meta func(*client.Client, context.Context, string, *time.Time) (T, error),
	value func(*client.Client, context.Context, string) (*client.SecretData, error),
	print func(*cobra.Command, *clientOptions, T, map[string]any) error,
) *cobra.Command {
	var read bool
	var field, asOf string
	cmd := &cobra.Command{
		Use:     "get " + k.arg,
		Short:   "Show a " + k.name + "'s metadata; --data also reads its value (SYSTEM token; the read is audited)",
		Example: example,
		Args:    exactArgs(k.arg),
		RunE: func(cmd *cobra.Command, args []string) error {
			if field != "" && !read {
				return usagef("--field needs --data")
			}
			if asOf != "" && read {
				return usagef("--as-of reads metadata only; values are read as they are now, without --as-of")
			}
			at, err := parseAsOf(asOf)
			if err != nil {
				return err
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			m, err := meta(c, cmd.Context(), args[0], at)
			if err != nil {
				return about(k.name, args[0], err)
			}
			var data map[string]any
			if read {
				d, err := value(c, cmd.Context(), args[0])
				if err != nil {
					return about(k.name, args[0], err)
				}
				data = d.Data
				if field != "" {
					return printField(cmd.OutOrStdout(), data, field)
				}
			}
			return print(cmd, o, m, data)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&read, "data", false, "also read and print the value (SYSTEM role only; appends an audited read)")
	f.StringVar(&field, "field", "", "with --data: print only this key of the value, as is")
	f.StringVar(&asOf, "as-of", "", "the metadata as it was at this time (RFC 3339, a date, or an age: 24h, 7d)")
	return cmd
}

// putDataCommand is `put-data ID`: a new value from --data-file or --data -.
func putDataCommand[T any](o *clientOptions, k kind, example, schemaUsage string,
	put func(c *client.Client, ctx context.Context, id, schema string, data map[string]any) (T, error),
	print func(*cobra.Command, *clientOptions, T, map[string]any) error,
) *cobra.Command {
	var schema string
	var data dataInput
	cmd := &cobra.Command{
		Use:     "put-data " + k.arg + " (--data-file FILE | --data -)",
		Short:   "Replace a " + k.name + "'s value (a new data version)",
		Example: example,
		Args:    exactArgs(k.arg),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := data.read(cmd)
			if err != nil {
				return err
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			m, err := put(c, cmd.Context(), args[0], schema, value)
			if err != nil {
				return about(k.name, args[0], err)
			}
			return print(cmd, o, m, nil)
		},
	}
	cmd.Flags().StringVar(&schema, "schema", "", schemaUsage)
	data.bind(cmd)
	return cmd
}

// deleteCommand is `delete ID --yes`: after the recovery window, or at once
// with --force.
func deleteCommand(o *clientOptions, k kind, short string,
	del func(*client.Client, context.Context, string, client.DeleteOptions) error,
) *cobra.Command {
	var yes bool
	var df deleteFlags
	cmd := &cobra.Command{
		Use:   "delete " + k.arg + " --yes",
		Short: short,
		Args:  exactArgs(k.arg),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := confirmDelete(cmd, yes, k.name, args[0]); err != nil {
				return err
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			if err := del(c, cmd.Context(), args[0], df.options(cmd)); err != nil {
				return about(k.name, args[0], err)
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{k.idKey: args[0], "deleted": true})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		},
	}
	df.bind(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// historyCommand is `history ID`: the resource's events, oldest first.
func historyCommand(o *clientOptions, k kind, short, long, example string,
	fetch func(*client.Client, context.Context, string, client.PageArgs) (*client.AuditEventPage, error),
) *cobra.Command {
	var h historyFlags
	cmd := &cobra.Command{
		Use:     "history " + k.arg,
		Short:   short,
		Long:    long,
		Example: example,
		Args:    exactArgs(k.arg),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			page, err := h.collect(func(p client.PageArgs) (*client.AuditEventPage, error) {
				return fetch(c, cmd.Context(), args[0], p)
			})
			if err != nil {
				return about(k.name, args[0], err)
			}
			return printEvents(cmd, o, page, false)
		},
	}
	h.bind(cmd, 100)
	return cmd
}

// versionsCommand is `versions ID`: the versions of the value, newest first,
// with their stages and whether they can still be read (never a value).
func versionsCommand(o *clientOptions, k kind,
	fetch func(*client.Client, context.Context, string, client.PageArgs) (*client.SecretVersionPage, error),
) *cobra.Command {
	var h historyFlags
	cmd := &cobra.Command{
		Use:   "versions " + k.arg,
		Short: "The versions of a " + k.name + "'s value, newest first: stages, creation, whether still readable (never a value)",
		Example: fmt.Sprintf(`  secretlog %s versions %s --all
  secretlog %s versions %s -o json | jq '.results[] | select(.readable)'`, k.command(), k.arg, k.command(), k.arg),
		Args: exactArgs(k.arg),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			results, next, err := collectPages(&h, func(p client.PageArgs) ([]client.SecretVersion, *string, error) {
				page, err := fetch(c, cmd.Context(), args[0], p)
				if err != nil {
					return nil, nil, err
				}
				return page.Results, page.NextCursor, nil
			})
			if err != nil {
				return about(k.name, args[0], err)
			}
			return printVersions(cmd, o, &client.SecretVersionPage{Results: results, NextCursor: next})
		},
	}
	h.bind(cmd, 100)
	cmd.Flags().Lookup("first").Usage = "versions per page"
	return cmd
}

// tagChange is update's --tag/--clear-tags: nil leaves the tags alone, an
// empty map clears them, else the tags replace the whole set.
func tagChange(tags []string, clearTags bool) (map[string]any, error) {
	t, err := parseTags(tags)
	if err != nil {
		return nil, err
	}
	switch {
	case clearTags && t != nil:
		return nil, usagef("--tag and --clear-tags exclude each other")
	case clearTags:
		return map[string]any{}, nil
	}
	return t, nil
}

// pickResourceGroup is create's --resource-group: given, or PROJECT with a
// project, WORKSPACE with a workspace, else DOMAIN. withProject: whether
// PROJECT is allowed (not for trusted secrets).
func pickResourceGroup(group, workspace, project string, withProject bool) (client.ResourceGroup, error) {
	allowed := "DOMAIN or WORKSPACE"
	if withProject {
		allowed = "DOMAIN, WORKSPACE or PROJECT"
	}
	switch g := client.ResourceGroup(strings.ToUpper(group)); {
	case g == "" && project != "" && withProject:
		return client.ResourceGroupProject, nil
	case g == "" && workspace != "":
		return client.ResourceGroupWorkspace, nil
	case g == "":
		return client.ResourceGroupDomain, nil
	case g == client.ResourceGroupDomain, g == client.ResourceGroupWorkspace, g == client.ResourceGroupProject && withProject:
		return g, nil
	}
	return "", usagef("--resource-group must be %s, not %q", allowed, group)
}
