package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/client"
)

func trustedSecretCommand() *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "trusted-secret",
		Short: "List, read and change trusted secrets (credentials a domain or workspace trusts) on a server",
		Long: `Trusted secrets hold a credential that a domain (DOMAIN) or a workspace (WORKSPACE) trusts;
secrets link to one with --trusted-secret and read its value merged with their own. Writers:
DOMAIN_ADMIN, and WORKSPACE_OWNER in its workspace; values: SYSTEM only.` + clientEnvHelp,
		Example: `  export SECRETLOG_TOKEN=$(secretlog token --role DOMAIN_ADMIN --domain domain-dev --user alice)
  secretlog trusted-secret create --name org-root --schema aws_access_key --data-file root.json
  secretlog trusted-secret list -o json
  SECRETLOG_TOKEN=$SYSTEM_TOKEN secretlog trusted-secret get trusted-secret-1a2b3c4d5e6f --data`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRun,
	}
	o.bind(cmd)
	k := kindTrustedSecret
	cmd.AddCommand(trustedSecretList(o),
		getCommand(o, k, `  secretlog trusted-secret get trusted-secret-1a2b3c4d5e6f
  secretlog trusted-secret get trusted-secret-1a2b3c4d5e6f --as-of 24h
  SECRETLOG_TOKEN=$SYSTEM_TOKEN secretlog trusted-secret get trusted-secret-1a2b3c4d5e6f --data --field aws_secret_access_key`,
			(*client.Client).TrustedSecret, (*client.Client).TrustedSecretData, printTrustedSecret),
		trustedSecretCreate(o), trustedSecretUpdate(o),
		putDataCommand(o, k, `  secretlog trusted-secret put-data trusted-secret-1a2b3c4d5e6f --data-file rotated.json`,
			"validate against this data schema (and change the trusted secret's schema)",
			func(c *client.Client, ctx context.Context, id, schema string, data map[string]any) (*client.TrustedSecret, error) {
				return c.UpdateTrustedSecretData(ctx, client.UpdateTrustedSecretDataInput{TrustedSecretID: id, SchemaID: schema, Data: data})
			}, printTrustedSecret),
		deleteCommand(o, k, "Delete a trusted secret after its recovery window, or at once with --force (refused while a secret links to it)",
			(*client.Client).DeleteTrustedSecret),
		historyCommand(o, k, "A trusted secret's events, oldest first, with value reads (also those through a linked secret)", "", "",
			(*client.Client).TrustedSecretHistory),
		versionsCommand(o, k, (*client.Client).TrustedSecretVersions))
	return cmd
}

func printTrustedSecrets(cmd *cobra.Command, o *clientOptions, list *client.TrustedSecretList) error {
	if o.json() {
		return writeJSON(cmd.OutOrStdout(), list)
	}
	t := newTable("id", "name", "group", "provider", "schema", "workspace", "state", "version", "tags", "updated")
	for _, s := range list.Results {
		t.AppendRow([]any{s.TrustedSecretID, cell(s.Name, 40), s.ResourceGroup, cell(s.Provider, 0), cell(s.SchemaID, 0),
			cell(s.WorkspaceID, 0), cell(s.State, 0), s.Version, cell(tagsCell(s.Tags), 40), cell(s.UpdatedAt, 0)})
	}
	render(cmd.OutOrStdout(), t)
	moreNote(cmd.ErrOrStderr(), len(list.Results), list.TotalCount, "trusted secrets")
	return nil
}

// trustedSecretWithData is get's JSON: the metadata, plus data when asked for.
type trustedSecretWithData struct {
	*client.TrustedSecret
	Data map[string]any `json:"data,omitempty"`
}

func printTrustedSecret(cmd *cobra.Command, o *clientOptions, s *client.TrustedSecret, data map[string]any) error {
	rows := [][2]any{
		{"id", s.TrustedSecretID}, {"name", s.Name}, {"resource group", s.ResourceGroup}, {"domain", s.DomainID},
		{"workspace", s.WorkspaceID}, {"schema", s.SchemaID}, {"provider", s.Provider},
		{"trusted account", s.TrustedAccountID}, {"state", s.State}, {"description", s.Description},
		{"tags", tagsCell(s.Tags)}, {"version", s.Version},
	}
	rows = append(rows, createdUpdated(s.CreatedAt, s.CreatedBy, s.UpdatedAt, s.UpdatedBy)...)
	return printResource(cmd, o, trustedSecretWithData{TrustedSecret: s, Data: data}, rows, data)
}

func trustedSecretList(o *clientOptions) *cobra.Command {
	var l listFlags
	var workspace, account string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the trusted secrets the token may read (metadata only), newest first",
		Example: `  secretlog trusted-secret list --workspace ws-1
  secretlog trusted-secret list --provider aws --tag env=prod -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := l.query()
			if err != nil {
				return err
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			list, err := c.TrustedSecrets(cmd.Context(), client.TrustedSecretsFilter{Query: q, Name: l.name, SchemaID: l.schema,
				Provider: l.provider, WorkspaceID: workspace, TrustedAccountID: account})
			if err != nil {
				return err
			}
			return printTrustedSecrets(cmd, o, list)
		},
	}
	l.bind(cmd)
	cmd.Flags().StringVar(&workspace, "workspace", "", "only this workspace")
	cmd.Flags().StringVar(&account, "trusted-account", "", "only this trusted account")
	return cmd
}

func trustedSecretCreate(o *clientOptions) *cobra.Command {
	var in client.CreateTrustedSecretInput
	var group string
	var tags []string
	var data dataInput
	cmd := &cobra.Command{
		Use:   "create --name NAME (--data-file FILE | --data -)",
		Short: "Create a trusted secret",
		Long: `Create a trusted secret. The value is a JSON object read from a file or standard input.
The resource group is WORKSPACE with --workspace, else DOMAIN (or --resource-group).`,
		Example: `  secretlog trusted-secret create --name org-root --schema aws_access_key --data-file root.json
  secretlog trusted-secret create --name ws-root --workspace ws-1 --data - -o json < root.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(in.Name) == "" && !cmd.Flags().Changed("name") {
				return usagef("--name is required")
			}
			var err error
			if in.ResourceGroup, err = pickResourceGroup(group, in.WorkspaceID, "", false); err != nil {
				return err
			}
			if in.Tags, err = parseTags(tags); err != nil {
				return err
			}
			if in.Data, err = data.read(cmd); err != nil {
				return err
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			s, err := c.CreateTrustedSecret(cmd.Context(), in)
			if err != nil {
				return err
			}
			return printTrustedSecret(cmd, o, s, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Name, "name", "", "name (required)")
	f.StringVar(&group, "resource-group", "", "DOMAIN or WORKSPACE (default: WORKSPACE with --workspace)")
	f.StringVar(&in.SchemaID, "schema", "", "data schema id (aws_access_key, basic_auth, api_token, ...)")
	f.StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable)")
	f.StringVar(&in.WorkspaceID, "workspace", "", "workspace id (WORKSPACE; default: the token's)")
	f.StringVar(&in.TrustedAccountID, "trusted-account", "", "trusted account id")
	f.StringVar(&in.Description, "description", "", "description (at most 2,048 characters)")
	f.StringVar(&in.KmsKeyID, "kms-key", "", "key of the server's keyring that wraps its data keys")
	f.IntVar(&in.MaxVersions, "max-versions", 0, "versions kept (default: the server's)")
	data.bind(cmd)
	return cmd
}

func trustedSecretUpdate(o *clientOptions) *cobra.Command {
	var name, description string
	var maxVersions int
	var tags []string
	var clearTags bool
	cmd := &cobra.Command{
		Use:     "update TRUSTED_SECRET_ID [--name NAME] [--tag k=v ... | --clear-tags] [--description D] [--max-versions N]",
		Short:   "Change a trusted secret's metadata (the value is changed with put-data; --tag replaces all tags)",
		Example: `  secretlog trusted-secret update trusted-secret-1a2b3c4d5e6f --name org-root-2 --tag env=prod`,
		Args:    exactArgs("TRUSTED_SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := client.UpdateTrustedSecretInput{TrustedSecretID: args[0]}
			fl := cmd.Flags()
			if fl.Changed("name") {
				in.Name = &name
			}
			if fl.Changed("description") {
				in.Description = &description
			}
			if fl.Changed("max-versions") {
				in.MaxVersions = &maxVersions
			}
			var err error
			if in.Tags, err = tagChange(tags, clearTags); err != nil {
				return err
			}
			if in.Name == nil && in.Tags == nil && in.Description == nil && in.MaxVersions == nil {
				return usagef("nothing to change: give --name, --tag, --clear-tags, --description or --max-versions")
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			s, err := c.UpdateTrustedSecret(cmd.Context(), in)
			if err != nil {
				return about("trusted secret", args[0], err)
			}
			return printTrustedSecret(cmd, o, s, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable; replaces all tags)")
	f.BoolVar(&clearTags, "clear-tags", false, "remove every tag")
	f.StringVar(&description, "description", "", "new description")
	f.IntVar(&maxVersions, "max-versions", 0, "versions kept")
	return cmd
}
