package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/client"
)

func secretCommand() *cobra.Command {
	o := &clientOptions{}
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "List, read and change secrets on a server",
		Long:  "Secrets of a domain, workspace or project, on a secretlog server." + clientEnvHelp,
		Example: `  export SECRETLOG_TOKEN=$(secretlog token --role DOMAIN_ADMIN --domain domain-dev --user alice)
  secretlog secret create --name aws-dev --schema aws_access_key --tag env=dev --data-file creds.json
  secretlog secret list --provider aws --tag env=dev
  secretlog secret get secret-1a2b3c4d5e6f
  SECRETLOG_TOKEN=$SYSTEM_TOKEN secretlog secret get secret-1a2b3c4d5e6f --data --field aws_secret_access_key`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRun,
	}
	o.bind(cmd)
	k := kindSecret
	cmd.AddCommand(secretList(o),
		getCommand(o, k, `  secretlog secret get secret-1a2b3c4d5e6f
  secretlog secret get secret-1a2b3c4d5e6f --as-of 2026-11-20T12:00:00Z
  secretlog secret get secret-1a2b3c4d5e6f --data -o json
  secretlog secret get secret-1a2b3c4d5e6f --data --field password`,
			(*client.Client).Secret, (*client.Client).SecretData, printSecret),
		secretCreate(o), secretUpdate(o),
		putDataCommand(o, k, `  jq -n '{username: "app", password: env.NEW_PASSWORD}' | secretlog secret put-data secret-1a2b3c4d5e6f --data -
  secretlog secret put-data secret-1a2b3c4d5e6f --data-file new.json`,
			"validate against this data schema (and change the secret's schema)",
			func(c *client.Client, ctx context.Context, id, schema string, data map[string]any) (*client.Secret, error) {
				return c.UpdateSecretData(ctx, client.UpdateSecretDataInput{SecretID: id, SchemaID: schema, Data: data})
			}, printSecret),
		deleteCommand(o, k, "Delete a secret after its recovery window (restore brings it back), or at once with --force",
			(*client.Client).DeleteSecret),
		historyCommand(o, k, "A secret's events, oldest first: changes with old and new metadata, and value reads",
			`Every event of a secret from the log, oldest first: creation, metadata changes with old
and new values, value changes (without values), value reads and deletion. Survives deletion
(DOMAIN_ADMIN).`,
			`  secretlog secret history secret-1a2b3c4d5e6f --all -o json | jq '.results[] | select(.type == "SecretDataRead.v1")'`,
			(*client.Client).SecretHistory),
		versionsCommand(o, k, (*client.Client).SecretVersions))
	return cmd
}

func printSecrets(cmd *cobra.Command, o *clientOptions, list *client.SecretList) error {
	if o.json() {
		return writeJSON(cmd.OutOrStdout(), list)
	}
	t := newTable("id", "name", "group", "provider", "schema", "workspace", "project", "version", "tags", "updated")
	for _, s := range list.Results {
		t.AppendRow([]any{s.SecretID, cell(s.Name, 40), s.ResourceGroup, cell(s.Provider, 0), cell(s.SchemaID, 0),
			cell(s.WorkspaceID, 0), cell(s.ProjectID, 0), s.Version, cell(tagsCell(s.Tags), 40), cell(s.UpdatedAt, 0)})
	}
	render(cmd.OutOrStdout(), t)
	moreNote(cmd.ErrOrStderr(), len(list.Results), list.TotalCount, "secrets")
	return nil
}

// secretWithData is get's JSON: the metadata, plus data when asked for.
type secretWithData struct {
	*client.Secret
	Data map[string]any `json:"data,omitempty"`
}

func printSecret(cmd *cobra.Command, o *clientOptions, s *client.Secret, data map[string]any) error {
	rows := [][2]any{
		{"id", s.SecretID}, {"name", s.Name}, {"resource group", s.ResourceGroup}, {"domain", s.DomainID},
		{"workspace", s.WorkspaceID}, {"project", s.ProjectID}, {"schema", s.SchemaID}, {"provider", s.Provider},
		{"service account", s.ServiceAccountID}, {"trusted secret", s.TrustedSecretID}, {"tags", tagsCell(s.Tags)},
		{"version", s.Version},
	}
	rows = append(rows, createdUpdated(s.CreatedAt, s.CreatedBy, s.UpdatedAt, s.UpdatedBy)...)
	return printResource(cmd, o, secretWithData{Secret: s, Data: data}, rows, data)
}

func secretList(o *clientOptions) *cobra.Command {
	var l listFlags
	var workspace, project, serviceAccount, trusted string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the secrets the token may read (metadata only), newest first",
		Example: `  secretlog secret list --workspace ws-1 --tag env=prod
  secretlog secret list --filter provider=aws --filter 'tags.team!=core' --sort name -o json`,
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
			list, err := c.Secrets(cmd.Context(), client.SecretsFilter{Query: q, Name: l.name, SchemaID: l.schema, Provider: l.provider,
				WorkspaceID: workspace, ProjectID: project, ServiceAccountID: serviceAccount, TrustedSecretID: trusted})
			if err != nil {
				return err
			}
			return printSecrets(cmd, o, list)
		},
	}
	l.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&workspace, "workspace", "", "only this workspace")
	f.StringVar(&project, "project", "", "only this project")
	f.StringVar(&serviceAccount, "service-account", "", "only this service account")
	f.StringVar(&trusted, "trusted-secret", "", "only this trusted secret")
	return cmd
}

func secretCreate(o *clientOptions) *cobra.Command {
	var in client.CreateSecretInput
	var group string
	var tags []string
	var data dataInput
	cmd := &cobra.Command{
		Use:   "create --name NAME (--data-file FILE | --data -)",
		Short: "Create a secret",
		Long: `Create a secret. The value is a JSON object read from a file or standard input, never
from a command-line literal (which would stay in shell history); with a known --schema it is
validated and sets the provider. The resource group defaults to PROJECT with --project,
WORKSPACE with --workspace, else DOMAIN.`,
		Example: `  secretlog secret create --name aws-dev --schema aws_access_key --workspace ws-1 --project p-1 \
      --tag env=dev --data-file creds.json
  secretlog secret create --name api --schema api_token --data - -o json < token.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(in.Name) == "" && !cmd.Flags().Changed("name") {
				return usagef("--name is required")
			}
			var err error
			if in.ResourceGroup, err = pickResourceGroup(group, in.WorkspaceID, in.ProjectID, true); err != nil {
				return err
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
			s, err := c.CreateSecret(cmd.Context(), in)
			if err != nil {
				return err
			}
			return printSecret(cmd, o, s, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Name, "name", "", "name (required)")
	f.StringVar(&group, "resource-group", "", "DOMAIN, WORKSPACE or PROJECT (default: from --project/--workspace)")
	f.StringVar(&in.SchemaID, "schema", "", "data schema id (aws_access_key, basic_auth, api_token, ...)")
	f.StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable)")
	f.StringVar(&in.WorkspaceID, "workspace", "", "workspace id")
	f.StringVar(&in.ProjectID, "project", "", "project id")
	f.StringVar(&in.ServiceAccountID, "service-account", "", "service account id")
	f.StringVar(&in.TrustedSecretID, "trusted-secret", "", "trusted secret id")
	data.bind(cmd)
	return cmd
}

func secretUpdate(o *clientOptions) *cobra.Command {
	var name, project string
	var tags []string
	var clearTags bool
	cmd := &cobra.Command{
		Use:   "update SECRET_ID [--name NAME] [--tag k=v ... | --clear-tags] [--project P]",
		Short: "Change a secret's metadata (the value is changed with put-data)",
		Long: `Change a secret's name, tags or project. --tag replaces the whole tag set with the tags
given; --clear-tags removes every tag.`,
		Example: `  secretlog secret update secret-1a2b3c4d5e6f --name aws-prod --tag env=prod --tag team=core`,
		Args:    exactArgs("SECRET_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := client.UpdateSecretInput{SecretID: args[0]}
			fl := cmd.Flags()
			if fl.Changed("name") {
				in.Name = &name
			}
			if fl.Changed("project") {
				in.ProjectID = &project
			}
			var err error
			if in.Tags, err = tagChange(tags, clearTags); err != nil {
				return err
			}
			if in.Name == nil && in.ProjectID == nil && in.Tags == nil {
				return usagef("nothing to change: give --name, --tag, --clear-tags or --project")
			}
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			s, err := c.UpdateSecret(cmd.Context(), in)
			if err != nil {
				return about("secret", args[0], err)
			}
			return printSecret(cmd, o, s, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable; replaces all tags)")
	f.BoolVar(&clearTags, "clear-tags", false, "remove every tag")
	f.StringVar(&project, "project", "", "move to this project")
	return cmd
}
