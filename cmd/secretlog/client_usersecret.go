package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/client"
)

func userSecretCommand() *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "user-secret",
		Short: "List, read and change user secrets (a user's own secrets) on a server",
		Long:  "User secrets belong to the token's user; DOMAIN_ADMIN sees their metadata." + clientEnvHelp,
		Example: `  export SECRETLOG_TOKEN=$(secretlog token --role USER --domain domain-dev --user bob)
  secretlog user-secret create --name gh --schema api_token --data-file token.json
  secretlog user-secret list -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRun,
	}
	o.bind(cmd)
	cmd.AddCommand(userSecretList(o), userSecretGet(o), userSecretCreate(o), userSecretUpdate(o), userSecretPutData(o),
		userSecretDelete(o), userSecretHistory(o),
		versionsCommand(o, "user secret", "USER_SECRET_ID", func(c *client.Client, cmd *cobra.Command, id string, p client.PageArgs) (*client.SecretVersionPage, error) {
			return c.UserSecretVersions(cmd.Context(), id, p)
		}))
	return cmd
}

func printUserSecrets(cmd *cobra.Command, o *clientOptions, list *client.UserSecretList) error {
	if o.json() {
		return writeJSON(cmd.OutOrStdout(), list)
	}
	t := newTable("id", "name", "user", "provider", "schema", "version", "tags", "updated")
	for _, s := range list.Results {
		t.AppendRow([]any{s.UserSecretID, cell(s.Name, 40), cell(s.UserID, 0), cell(s.Provider, 0), cell(s.SchemaID, 0),
			s.Version, cell(tagsCell(s.Tags), 40), cell(s.UpdatedAt, 0)})
	}
	render(cmd.OutOrStdout(), t)
	moreNote(cmd.ErrOrStderr(), len(list.Results), list.TotalCount, "user secrets")
	return nil
}

type userSecretWithData struct {
	*client.UserSecret
	Data map[string]any `json:"data,omitempty"`
}

func printUserSecret(cmd *cobra.Command, o *clientOptions, s *client.UserSecret, data map[string]any) error {
	if o.json() {
		return writeJSON(cmd.OutOrStdout(), userSecretWithData{UserSecret: s, Data: data})
	}
	w := cmd.OutOrStdout()
	t := newTable("field", "value")
	for _, r := range [][2]any{
		{"id", s.UserSecretID}, {"name", s.Name}, {"user", s.UserID}, {"domain", s.DomainID},
		{"schema", s.SchemaID}, {"provider", s.Provider}, {"tags", tagsCell(s.Tags)}, {"version", s.Version},
		{"created", fmt.Sprintf("%s by %s", cell(s.CreatedAt, 0), cell(s.CreatedBy, 0))},
		{"updated", fmt.Sprintf("%s by %s", cell(s.UpdatedAt, 0), cell(s.UpdatedBy, 0))},
	} {
		t.AppendRow([]any{r[0], cell(r[1], 0)})
	}
	render(cmd.OutOrStdout(), t)
	if data != nil {
		fmt.Fprintln(w)
		dataTable(w, data)
	}
	return nil
}

func userSecretList(o *clientOptions) *cobra.Command {
	var l listFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the user secrets the token may read (metadata only), newest first",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := l.query()
			if err != nil {
				return err
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			list, err := c.UserSecrets(cmd.Context(), client.UserSecretsFilter{Query: q, Name: l.name, SchemaID: l.schema, Provider: l.provider})
			if err != nil {
				return err
			}
			return printUserSecrets(cmd, o, list)
		},
	}
	l.bind(cmd)
	return cmd
}

func userSecretGet(o *clientOptions) *cobra.Command {
	var withData bool
	var field, asOf string
	cmd := &cobra.Command{
		Use:   "get USER_SECRET_ID",
		Short: "Show a user secret's metadata; --data also reads its value (SYSTEM token; audited)",
		Args:  exactArgs("USER_SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if field != "" && !withData {
				return usagef("--field needs --data")
			}
			if asOf != "" && withData {
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
			s, err := c.UserSecret(cmd.Context(), args[0], at)
			if err != nil {
				return about("user secret", args[0], err)
			}
			var data map[string]any
			if withData {
				d, err := c.UserSecretData(cmd.Context(), args[0])
				if err != nil {
					return about("user secret", args[0], err)
				}
				data = d.Data
				if field != "" {
					return printField(cmd.OutOrStdout(), data, field)
				}
			}
			return printUserSecret(cmd, o, s, data)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&withData, "data", false, "also read and print the value (SYSTEM role only; appends an audited read)")
	f.StringVar(&field, "field", "", "with --data: print only this key of the value, as is")
	f.StringVar(&asOf, "as-of", "", "the metadata as it was at this time (RFC 3339, a date, or an age: 24h, 7d)")
	return cmd
}

func userSecretCreate(o *clientOptions) *cobra.Command {
	var in client.CreateUserSecretInput
	var tags []string
	var data dataInput
	cmd := &cobra.Command{
		Use:   "create --name NAME (--data-file FILE | --data -)",
		Short: "Create a user secret of the token's user",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(in.Name) == "" && !cmd.Flags().Changed("name") {
				return usagef("--name is required")
			}
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			in.Tags = t
			if in.Data, err = data.read(cmd); err != nil {
				return err
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			s, err := c.CreateUserSecret(cmd.Context(), in)
			if err != nil {
				return err
			}
			return printUserSecret(cmd, o, s, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Name, "name", "", "name (required)")
	f.StringVar(&in.SchemaID, "schema", "", "data schema id")
	f.StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable)")
	data.bind(cmd)
	return cmd
}

func userSecretUpdate(o *clientOptions) *cobra.Command {
	var name string
	var tags []string
	var clearTags bool
	cmd := &cobra.Command{
		Use:   "update USER_SECRET_ID [--name NAME] [--tag k=v ... | --clear-tags]",
		Short: "Change a user secret's name or tags (--tag replaces the whole tag set)",
		Args:  exactArgs("USER_SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := client.UpdateUserSecretInput{UserSecretID: args[0]}
			if cmd.Flags().Changed("name") {
				in.Name = &name
			}
			t, err := parseTags(tags)
			if err != nil {
				return err
			}
			switch {
			case clearTags && t != nil:
				return usagef("--tag and --clear-tags exclude each other")
			case clearTags:
				in.Tags = map[string]any{}
			default:
				in.Tags = t
			}
			if in.Name == nil && in.Tags == nil {
				return usagef("nothing to change: give --name, --tag or --clear-tags")
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			s, err := c.UpdateUserSecret(cmd.Context(), in)
			if err != nil {
				return about("user secret", args[0], err)
			}
			return printUserSecret(cmd, o, s, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable; replaces all tags)")
	f.BoolVar(&clearTags, "clear-tags", false, "remove every tag")
	return cmd
}

func userSecretPutData(o *clientOptions) *cobra.Command {
	var schema string
	var data dataInput
	cmd := &cobra.Command{
		Use:   "put-data USER_SECRET_ID (--data-file FILE | --data -)",
		Short: "Replace a user secret's value (a new data version)",
		Args:  exactArgs("USER_SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := client.UpdateUserSecretDataInput{UserSecretID: args[0], SchemaID: schema}
			var err error
			if in.Data, err = data.read(cmd); err != nil {
				return err
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			s, err := c.UpdateUserSecretData(cmd.Context(), in)
			if err != nil {
				return about("user secret", args[0], err)
			}
			return printUserSecret(cmd, o, s, nil)
		},
	}
	cmd.Flags().StringVar(&schema, "schema", "", "validate against this data schema")
	data.bind(cmd)
	return cmd
}

func userSecretDelete(o *clientOptions) *cobra.Command {
	var yes bool
	var del deleteFlags
	cmd := &cobra.Command{
		Use:   "delete USER_SECRET_ID --yes",
		Short: "Delete a user secret and destroy its data key",
		Args:  exactArgs("USER_SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := confirmDelete(cmd, yes, "user secret", args[0]); err != nil {
				return err
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			if err := c.DeleteUserSecret(cmd.Context(), args[0], del.options(cmd)); err != nil {
				return about("user secret", args[0], err)
			}
			if o.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"userSecretId": args[0], "deleted": true})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
			return nil
		},
	}
	del.bind(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func userSecretHistory(o *clientOptions) *cobra.Command {
	var h historyFlags
	cmd := &cobra.Command{
		Use:   "history USER_SECRET_ID",
		Short: "A user secret's events, oldest first",
		Args:  exactArgs("USER_SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			page, err := h.collect(func(p client.PageArgs) (*client.AuditEventPage, error) {
				return c.UserSecretHistory(cmd.Context(), args[0], p)
			})
			if err != nil {
				return about("user secret", args[0], err)
			}
			return printEvents(cmd, o, page, false)
		},
	}
	h.bind(cmd, 100)
	return cmd
}
