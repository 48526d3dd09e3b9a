package main

import (
	"context"
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
	k := kindUserSecret
	cmd.AddCommand(userSecretList(o),
		getCommand(o, k, "", (*client.Client).UserSecret, (*client.Client).UserSecretData, printUserSecret),
		userSecretCreate(o), userSecretUpdate(o),
		putDataCommand(o, k, "", "validate against this data schema",
			func(c *client.Client, ctx context.Context, id, schema string, data map[string]any) (*client.UserSecret, error) {
				return c.UpdateUserSecretData(ctx, client.UpdateUserSecretDataInput{UserSecretID: id, SchemaID: schema, Data: data})
			}, printUserSecret),
		deleteCommand(o, k, "Delete a user secret after its recovery window, or at once with --force", (*client.Client).DeleteUserSecret),
		historyCommand(o, k, "A user secret's events, oldest first", "", "", (*client.Client).UserSecretHistory),
		versionsCommand(o, k, (*client.Client).UserSecretVersions))
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
	rows := [][2]any{
		{"id", s.UserSecretID}, {"name", s.Name}, {"user", s.UserID}, {"domain", s.DomainID},
		{"schema", s.SchemaID}, {"provider", s.Provider}, {"tags", tagsCell(s.Tags)}, {"version", s.Version},
	}
	rows = append(rows, createdUpdated(s.CreatedAt, s.CreatedBy, s.UpdatedAt, s.UpdatedBy)...)
	return printResource(cmd, o, userSecretWithData{UserSecret: s, Data: data}, rows, data)
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
			var err error
			if in.Tags, err = tagChange(tags, clearTags); err != nil {
				return err
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
