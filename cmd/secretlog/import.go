package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/archive"
	"github.com/secretlog/secretlog/client"
)

// sourceTag is the tag --mark-source adds: the resource's id in the source.
const sourceTag = "secretlog-import-source"

// Results of one imported resource.
const (
	resultCreated   = "created"   // created by this run
	resultUpdated   = "updated"   // existed from an earlier run; this run added versions
	resultUnchanged = "unchanged" // an earlier run imported it: nothing appended
	resultSkipped   = "skipped"   // not for this token (another user's user secret)
	resultFailed    = "failed"
)

// importResult is one resource's line in import's output.
type importResult struct {
	Kind     string `json:"kind"`
	SourceID string `json:"sourceId"`
	ID       string `json:"id,omitempty"`
	Name     string `json:"name"`
	Result   string `json:"result"`
	// Versions is how many versions this resource has in the archive.
	Versions int         `json:"versions"`
	Code     client.Code `json:"code,omitempty"`
	Message  string      `json:"message,omitempty"`
}

// importReport is import's output.
type importReport struct {
	ArchiveID     string            `json:"archiveId"`
	CorrelationID string            `json:"correlationId"`
	Created       int               `json:"created"`
	Updated       int               `json:"updated"`
	Unchanged     int               `json:"unchanged"`
	Skipped       int               `json:"skipped"`
	Failed        int               `json:"failed"`
	IDs           map[string]string `json:"ids"`
	Results       []importResult    `json:"results"`
}

func importCommand() *cobra.Command {
	o := &clientOptions{}
	var a archiveFlags
	var in, kmsKeyID string
	var markSource, keepIDs bool
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Replay an archive written by secretlog export into a server",
		Long: `Import opens an archive (nothing is sent unless the whole file authenticates under the
passphrase) and replays it through the API: createSecret with the oldest exported version, then
updateSecretData for each newer one, in order, so every imported resource has an ordinary
history whose events carry the importing token's actor and this run's correlation id
(X-Correlation-ID, printed in the summary).

Each request carries a clientRequestToken derived from the archive id, the source id and the
version: running the same import again within 24 hours (the server's token memory) appends
nothing and reports each resource unchanged. With --mark-source each resource is tagged
` + sourceTag + `=<source id>, and a later run skips resources already carrying that tag,
however much later it runs.

Secrets need a token that may create them (DOMAIN_ADMIN for every resource group). A user secret
is created for the token's user, so only user secrets owned by that user are imported; the
others are reported as skipped: import them with their owner's token (--kind user-secrets).
New ids are assigned by the server: the output maps each source id to its new id.` + archiveEnvHelp + clientEnvHelp,
		Example: `  SECRETLOG_TOKEN=$ADMIN_TOKEN SECRETLOG_EXPORT_PASSPHRASE=... secretlog import --in prod.slarchive -o json`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keepIDs {
				return usagef("--keep-ids is not possible: the server assigns every id at create (a random secret-… id, " +
					"the same on every server) and the API has no way to choose one, which also keeps one tenant from " +
					"claiming ids another uses; import prints the source id → new id mapping instead (-o json: ids)")
			}
			if in == "" {
				return usagef("--in is required (- for standard input)")
			}
			withSecrets, withUserSecrets, err := a.kinds()
			if err != nil {
				return err
			}
			pass, err := a.passphrase(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer clear(pass)
			p, err := openArchive(cmd, in, pass)
			if err != nil {
				return err
			}
			cid := "import-" + uuid.NewString()
			c, claims, ok, err := o.archiveClient(cmd, client.WithHeader("X-Correlation-ID", cid))
			if err != nil {
				return err
			}
			im := &importer{cmd: cmd, c: c, p: p, cid: cid, markSource: markSource, kmsKeyID: kmsKeyID, claims: claims, claimsOK: ok}
			rep := im.run(cmd.Context(), withSecrets, withUserSecrets, a.progress)
			if err := printImport(cmd, o, rep); err != nil {
				return err
			}
			return importError(rep)
		},
	}
	o.bind(cmd)
	a.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&in, "in", "", "the archive file (- for standard input)")
	f.BoolVar(&markSource, "mark-source", false, "tag each resource "+sourceTag+"=<source id>, and skip those already tagged")
	f.StringVar(&kmsKeyID, "kms-key-id", "", "wrap every imported value with this key of the target's keyring instead of the archived kmsKeyId")
	f.BoolVar(&keepIDs, "keep-ids", false, "not possible (the server assigns ids); see the mapping in the output")
	return cmd
}

// openArchive reads, decrypts and checks an archive. Any failure is
// INVALID_ARGUMENT (exit status 2) and happens before a single request.
func openArchive(cmd *cobra.Command, in string, pass []byte) (*archive.Payload, error) {
	var r io.Reader = cmd.InOrStdin()
	name := "standard input"
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return nil, fmt.Errorf("archive: %w", err)
		}
		defer f.Close()
		r, name = f, in
	}
	plain, err := archive.Open(r, pass)
	if err == nil {
		var p *archive.Payload
		p, err = archive.Decode(plain)
		clear(plain)
		if err == nil {
			return p, nil
		}
	}
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return nil, fmt.Errorf("archive %s: %w", name, err)
	}
	return nil, &client.Error{Code: client.CodeInvalidArgument, Message: fmt.Sprintf("archive %s: %v; nothing was imported", name, err)}
}

// importer replays one archive.
type importer struct {
	cmd        *cobra.Command
	c          *client.Client
	p          *archive.Payload
	cid        string
	markSource bool
	kmsKeyID   string
	claims     tokenClaims
	claimsOK   bool
}

func (im *importer) run(ctx context.Context, withSecrets, withUserSecrets bool, progress bool) importReport {
	rep := importReport{ArchiveID: im.p.ArchiveID, CorrelationID: im.cid, IDs: map[string]string{}, Results: []importResult{}}
	total := 0
	if withSecrets {
		total += len(im.p.Secrets)
	}
	if withUserSecrets {
		total += len(im.p.UserSecrets)
	}
	bar := newProgress(im.cmd, progress, total, "importing")
	step := func(r importResult) {
		if bar != nil {
			_ = bar.Add(1)
		}
		rep.Results = append(rep.Results, r)
		switch r.Result {
		case resultCreated:
			rep.Created++
		case resultUpdated:
			rep.Updated++
		case resultUnchanged:
			rep.Unchanged++
		case resultSkipped:
			rep.Skipped++
		default:
			rep.Failed++
		}
		if r.ID != "" {
			rep.IDs[r.SourceID] = r.ID
		}
	}
	if withSecrets {
		for _, s := range im.p.Secrets {
			if im.claimsOK && im.claims.Role == "USER" {
				step(im.skip("secret", s, "a USER token cannot create secrets (--kind user-secrets)"))
				continue
			}
			step(im.one(ctx, false, s))
		}
	}
	if withUserSecrets {
		for _, s := range im.p.UserSecrets {
			switch {
			case !im.claimsOK:
				step(im.skip("user secret", s, "cannot tell the token's user: user secrets are created for their owner only"))
			case s.UserID != im.claims.UserID:
				step(im.skip("user secret", s, fmt.Sprintf("owned by %s: import it with that user's token (--kind user-secrets)", s.UserID)))
			default:
				step(im.one(ctx, true, s))
			}
		}
	}
	finishProgress(im.cmd, bar)
	return rep
}

func (im *importer) skip(kind string, s archive.Secret, reason string) importResult {
	return importResult{Kind: kind, SourceID: s.ID, Name: s.Name, Result: resultSkipped, Versions: len(s.Versions), Message: reason}
}

// one replays one resource: create with the oldest version, then a value
// update per newer version, each with its derived clientRequestToken.
func (im *importer) one(ctx context.Context, user bool, s archive.Secret) importResult {
	kind := kindName(user)
	res := importResult{Kind: kind, SourceID: s.ID, Name: s.Name, Versions: len(s.Versions)}
	fail := func(step string, err error) importResult {
		res.Result, res.Code = resultFailed, client.CodeOf(err)
		if res.Code == "" {
			res.Code = client.CodeInternal
		}
		res.Message = step + ": " + err.Error()
		if res.Code == client.CodeConflict {
			res.Message += " (this archive was imported before with other options, by another user, or the resource changed since)"
		}
		return res
	}
	tags := s.Tags
	if im.markSource {
		tags = make(map[string]any, len(s.Tags)+1)
		for k, v := range s.Tags {
			tags[k] = v
		}
		tags[sourceTag] = s.ID
		id, err := im.findMarked(ctx, user, s.ID)
		if err != nil {
			return fail("looking for an earlier import", err)
		}
		if id != "" {
			res.ID, res.Result = id, resultUnchanged
			return res
		}
	}
	settings := client.Settings{Description: s.Description, KmsKeyID: s.KmsKeyID, MaxVersions: s.MaxVersions,
		AutoRotation: s.AutoRotation, RotationPeriodHours: s.RotationPeriodHours}
	if im.kmsKeyID != "" {
		settings.KmsKeyID = im.kmsKeyID
	}
	first := s.Versions[0]
	if user {
		u, err := im.c.CreateUserSecret(ctx, client.CreateUserSecretInput{Name: s.Name, Data: first.Data, SchemaID: s.SchemaID, Tags: tags,
			Settings: settings, ClientRequestToken: requestToken(im.p.ArchiveID, s.ID, first.Version)})
		if err != nil {
			return fail("create", err)
		}
		res.ID = u.UserSecretID
	} else {
		in := client.CreateSecretInput{Name: s.Name, Data: first.Data, ResourceGroup: client.ResourceGroup(s.ResourceGroup),
			SchemaID: s.SchemaID, Tags: tags, WorkspaceID: s.WorkspaceID, ProjectID: s.ProjectID, ServiceAccountID: s.ServiceAccountID,
			Settings: settings, ClientRequestToken: requestToken(im.p.ArchiveID, s.ID, first.Version)}
		created, err := im.c.CreateSecret(ctx, in)
		if err != nil {
			return fail("create", err)
		}
		res.ID = created.SecretID
	}
	for _, v := range s.Versions[1:] {
		tok := requestToken(im.p.ArchiveID, s.ID, v.Version)
		var err error
		if user {
			_, err = im.c.UpdateUserSecretData(ctx, client.UpdateUserSecretDataInput{UserSecretID: res.ID, Data: v.Data, ClientRequestToken: tok})
		} else {
			_, err = im.c.UpdateSecretData(ctx, client.UpdateSecretDataInput{SecretID: res.ID, Data: v.Data, ClientRequestToken: tok})
		}
		if err != nil {
			return fail(fmt.Sprintf("version %d", v.Version), err)
		}
	}
	created, updates, err := im.appended(ctx, user, res.ID)
	switch {
	case err != nil:
		// Imported; only the classification is unknown.
		res.Result, res.Message = resultUnchanged, "imported; whether by this run is unknown: "+err.Error()
	case created:
		res.Result = resultCreated
	case updates > 0:
		res.Result = resultUpdated
	default:
		res.Result = resultUnchanged
	}
	return res
}

// findMarked is the id of a resource an earlier --mark-source import
// created from sourceID, or "".
func (im *importer) findMarked(ctx context.Context, user bool, sourceID string) (string, error) {
	q := &client.QueryInput{Filter: []client.Filter{{K: "tags." + sourceTag, V: sourceID}}, Page: &client.Page{Start: 1, Limit: 1}}
	if user {
		list, err := im.c.UserSecrets(ctx, client.UserSecretsFilter{Query: q})
		if err != nil || len(list.Results) == 0 {
			return "", err
		}
		return list.Results[0].UserSecretID, nil
	}
	list, err := im.c.Secrets(ctx, client.SecretsFilter{Query: q})
	if err != nil || len(list.Results) == 0 {
		return "", err
	}
	return list.Results[0].SecretID, nil
}

// appended counts the value events this run (its correlation id) appended
// to a resource: whether it created it, and how many values it added. The
// server answers a repeated clientRequestToken with the first result, so the
// answers alone cannot tell.
func (im *importer) appended(ctx context.Context, user bool, id string) (created bool, updates int, err error) {
	createdType, updatedType := "SecretCreated.v1", "SecretDataUpdated.v1"
	history := im.c.SecretHistory
	if user {
		createdType, updatedType = "UserSecretCreated.v1", "UserSecretDataUpdated.v1"
		history = im.c.UserSecretHistory
	}
	count := func(events []client.AuditEvent) {
		for _, e := range events {
			if e.CorrelationID == nil || *e.CorrelationID != im.cid {
				continue
			}
			switch e.Type {
			case createdType:
				created = true
			case updatedType:
				updates++
			}
		}
	}
	// The audit trail filtered by type is short; roles that may not read it
	// page through the resource's history instead.
	args := client.PageArgs{First: 1000}
	for {
		page, err := im.c.AuditEvents(ctx, client.AuditFilter{ResourceID: id, Types: []string{createdType, updatedType}}, args, false)
		if client.CodeOf(err) == client.CodePermissionDenied {
			break
		}
		if err != nil {
			return false, 0, err
		}
		count(page.Results)
		if page.NextCursor == nil || len(page.Results) == 0 {
			return created, updates, nil
		}
		args.After = *page.NextCursor
	}
	args = client.PageArgs{First: 1000}
	for {
		page, err := history(ctx, id, args)
		if err != nil {
			return false, 0, err
		}
		count(page.Results)
		if page.NextCursor == nil || len(page.Results) == 0 {
			return created, updates, nil
		}
		args.After = *page.NextCursor
	}
}

func printImport(cmd *cobra.Command, o *clientOptions, rep importReport) error {
	w := cmd.OutOrStdout()
	if o.json() {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "archive %s, correlation id %s\ncreated %d, updated %d, unchanged %d, skipped %d, failed %d\n",
		rep.ArchiveID, rep.CorrelationID, rep.Created, rep.Updated, rep.Unchanged, rep.Skipped, rep.Failed)
	if len(rep.Results) == 0 {
		return nil
	}
	t := newTable("source id", "id", "kind", "name", "versions", "result", "note")
	for _, r := range rep.Results {
		t.AppendRow([]any{r.SourceID, r.ID, r.Kind, cell(r.Name, 40), r.Versions, r.Result, cell(r.Message, 0)})
	}
	render(w, t)
	return nil
}

// importError is the run's status: the first failure's code when any failed.
func importError(rep importReport) error {
	if rep.Failed == 0 {
		return nil
	}
	var first importResult
	for _, r := range rep.Results {
		if r.Result == resultFailed {
			first = r
			break
		}
	}
	return &client.Error{Code: first.Code, Message: fmt.Sprintf("%d of %d resources failed to import (first: %s %s: %s)",
		rep.Failed, len(rep.Results), first.Kind, first.SourceID, strings.TrimSpace(first.Message))}
}
