package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/secretlog/secretlog/archive"
	"github.com/secretlog/secretlog/client"
)

// exportPage is how many resources one list request asks for.
const exportPage = 100

// skipped is a resource left out of an export or an import, and why.
type skipped struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// exportReport is export's output.
type exportReport struct {
	File        string    `json:"file"`
	ArchiveID   string    `json:"archiveId"`
	DomainID    string    `json:"domainId"`
	AllVersions bool      `json:"allVersions"`
	Secrets     int       `json:"secrets"`
	UserSecrets int       `json:"userSecrets"`
	Versions    int       `json:"versions"`
	Skipped     []skipped `json:"skipped"`
}

func exportCommand() *cobra.Command {
	o := &clientOptions{}
	var a archiveFlags
	var domain, out string
	var filters []string
	var allVersions, force bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a domain's secrets and their values to an encrypted archive (SYSTEM token)",
		Long: `Export writes the secrets and user secrets of a domain, with their metadata, settings and
current values (every readable version with --all-versions), to an encrypted archive that
secretlog import replays into any server. It reads values, so it needs a SYSTEM token of the
domain, and the server audits every value it reads. Disabled resources cannot be read and are
left out (listed on standard error).` + archiveEnvHelp + clientEnvHelp,
		Example: `  SECRETLOG_TOKEN=$SYSTEM_TOKEN SECRETLOG_EXPORT_PASSPHRASE=... \
    secretlog export --domain domain-dev --filter tags.env=prod --all-versions --out prod.slarchive`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if domain == "" {
				return usagef("--domain is required")
			}
			if out == "" {
				return usagef("--out is required (- for standard output)")
			}
			if out != "-" && !force {
				if _, err := os.Stat(out); err == nil {
					return usagef("%s exists: pass --force to replace it", out)
				}
			}
			withSecrets, withUserSecrets, err := a.kinds()
			if err != nil {
				return err
			}
			conds, err := parseFilters(filters)
			if err != nil {
				return err
			}
			pass, err := a.passphrase(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer clear(pass)
			if len([]rune(string(pass))) < minPassphrase {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: a passphrase of fewer than %d characters is weak protection for an archive of values\n", minPassphrase)
			}
			c, claims, ok, err := o.archiveClient(cmd)
			if err != nil {
				return err
			}
			if ok && claims.DomainID != domain {
				return usagef("the token is for domain %q, not %q", claims.DomainID, domain)
			}
			if ok && claims.Role != "SYSTEM" {
				return &client.Error{Code: client.CodePermissionDenied, Message: "export reads values: it needs a SYSTEM token of the domain, not " + claims.Role}
			}
			e := &exporter{cmd: cmd, c: c, domain: domain, all: allVersions, conds: conds, progress: a.progress}
			p := &archive.Payload{Format: archive.PayloadFormat, ArchiveID: uuid.NewString(), CreatedAt: time.Now().UTC(),
				Source: archive.Source{Server: c.Endpoint(), DomainID: domain, Filters: filters}, AllVersions: allVersions,
				Secrets: []archive.Secret{}, UserSecrets: []archive.Secret{}}
			if err := e.run(cmd.Context(), p, withSecrets, withUserSecrets); err != nil {
				return err
			}
			plain, err := p.Encode()
			if err != nil {
				return err
			}
			var sealed bytes.Buffer
			err = archive.Seal(&sealed, pass, plain, archiveParams)
			clear(plain)
			wipe(p)
			if err != nil {
				return err
			}
			if err := writeArchive(cmd, out, sealed.Bytes()); err != nil {
				return err
			}
			rep := exportReport{File: out, ArchiveID: p.ArchiveID, DomainID: domain, AllVersions: allVersions,
				Secrets: len(p.Secrets), UserSecrets: len(p.UserSecrets), Versions: e.versions, Skipped: e.skipped}
			return printExport(cmd, o, rep)
		},
	}
	o.bind(cmd)
	a.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&domain, "domain", "", "the domain to export (the token's)")
	f.StringArrayVar(&filters, "filter", nil, "only resources matching key=value or key!=value, any field or tags.<key> (repeatable)")
	f.BoolVar(&allVersions, "all-versions", false, "every readable version of each value, not only the current one")
	f.StringVar(&out, "out", "", "the archive file (- for standard output)")
	f.BoolVar(&force, "force", false, "replace --out if it exists")
	return cmd
}

// exporter reads what goes into an archive.
type exporter struct {
	cmd      *cobra.Command
	c        *client.Client
	domain   string
	all      bool
	conds    []client.Filter
	progress bool
	versions int
	skipped  []skipped
}

// item is a listed resource, before its values are read.
type item struct {
	user bool
	meta archive.Secret
	// disabled resources' values cannot be read.
	state string
}

func (e *exporter) run(ctx context.Context, p *archive.Payload, withSecrets, withUserSecrets bool) error {
	var items []item
	if withSecrets {
		list, err := e.listSecrets(ctx)
		if err != nil {
			return err
		}
		items = append(items, list...)
	}
	if withUserSecrets {
		list, err := e.listUserSecrets(ctx)
		if err != nil {
			return err
		}
		items = append(items, list...)
	}
	bar := newProgress(e.cmd, e.progress, len(items), "exporting")
	defer finishProgress(e.cmd, bar)
	for _, it := range items {
		err := e.one(ctx, p, it)
		if bar != nil {
			_ = bar.Add(1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// one reads one listed resource's values into the payload, or leaves it
// out with a reason.
func (e *exporter) one(ctx context.Context, p *archive.Payload, it item) error {
	kind := kindName(it.user)
	if it.state == "DISABLED" {
		e.skip(kind, it.meta, "disabled: its values cannot be read (enable it and export again)")
		return nil
	}
	versions, reason, err := e.readValues(ctx, it.user, it.meta.ID)
	if err != nil {
		return about(kind, it.meta.ID, err)
	}
	if reason != "" {
		e.skip(kind, it.meta, reason)
		return nil
	}
	s := it.meta
	s.Versions = versions
	e.versions += len(versions)
	if it.user {
		p.UserSecrets = append(p.UserSecrets, s)
	} else {
		p.Secrets = append(p.Secrets, s)
	}
	return nil
}

func kindName(user bool) string {
	if user {
		return "user secret"
	}
	return "secret"
}

func (e *exporter) skip(kind string, s archive.Secret, reason string) {
	e.skipped = append(e.skipped, skipped{Kind: kind, ID: s.ID, Name: s.Name, Reason: reason})
	fmt.Fprintf(e.cmd.ErrOrStderr(), "warning: %s %s (%s) left out: %s\n", kind, s.ID, cell(s.Name, 60), reason)
}

func (e *exporter) query(start int) *client.QueryInput {
	return &client.QueryInput{Filter: e.conds, Sort: []client.Sort{{Key: "createdAt"}}, Page: &client.Page{Start: start, Limit: exportPage}}
}

func (e *exporter) checkDomain(id, domainID string) error {
	if domainID != e.domain {
		return usagef("%s is in domain %q, not %q: use a token of domain %q", id, domainID, e.domain, e.domain)
	}
	return nil
}

// listSecrets pages through the secrets, oldest first.
func (e *exporter) listSecrets(ctx context.Context) ([]item, error) {
	var out []item
	seen := map[string]bool{}
	for start := 1; ; start += exportPage {
		page, err := e.c.SecretDetails(ctx, e.query(start))
		if err != nil {
			return nil, err
		}
		for _, s := range page.Results {
			if seen[s.SecretID] {
				continue
			}
			seen[s.SecretID] = true
			if err := e.checkDomain(s.SecretID, s.DomainID); err != nil {
				return nil, err
			}
			if s.TrustedSecretID != nil && *s.TrustedSecretID != "" {
				fmt.Fprintf(e.cmd.ErrOrStderr(), "note: secret %s links to %s: its merged value is exported, and import creates it unlinked\n",
					s.SecretID, *s.TrustedSecretID)
			}
			out = append(out, item{meta: withSettings(archive.Secret{ID: s.SecretID, Name: s.Name, SchemaID: deref(s.SchemaID), Provider: deref(s.Provider),
				Tags: s.Tags, ResourceGroup: string(s.ResourceGroup), WorkspaceID: deref(s.WorkspaceID), ProjectID: deref(s.ProjectID),
				ServiceAccountID: deref(s.ServiceAccountID), TrustedSecretID: deref(s.TrustedSecretID),
				CreatedAt: s.CreatedAt, CreatedBy: s.CreatedBy}, s.Lifecycle), state: s.State})
		}
		if len(page.Results) < exportPage || start+exportPage > page.TotalCount {
			return out, nil
		}
	}
}

// listUserSecrets pages through the user secrets of every user, oldest first.
func (e *exporter) listUserSecrets(ctx context.Context) ([]item, error) {
	var out []item
	seen := map[string]bool{}
	for start := 1; ; start += exportPage {
		page, err := e.c.UserSecretDetails(ctx, e.query(start))
		if err != nil {
			return nil, err
		}
		for _, s := range page.Results {
			if seen[s.UserSecretID] {
				continue
			}
			seen[s.UserSecretID] = true
			if err := e.checkDomain(s.UserSecretID, s.DomainID); err != nil {
				return nil, err
			}
			out = append(out, item{user: true, meta: withSettings(archive.Secret{ID: s.UserSecretID, Name: s.Name, SchemaID: deref(s.SchemaID),
				Provider: deref(s.Provider), Tags: s.Tags, UserID: s.UserID, CreatedAt: s.CreatedAt, CreatedBy: s.CreatedBy}, s.Lifecycle),
				state: s.State})
		}
		if len(page.Results) < exportPage || start+exportPage > page.TotalCount {
			return out, nil
		}
	}
}

// readValues reads the current value, or every readable version oldest
// first. A resource that went away or became unreadable since it was listed
// gives a reason to leave it out; other errors stop the export.
func (e *exporter) readValues(ctx context.Context, user bool, id string) ([]archive.Version, string, error) {
	read := e.c.SecretDataVersion
	versions := e.c.SecretVersions
	if user {
		read, versions = e.c.UserSecretDataVersion, e.c.UserSecretVersions
	}
	gone := func(err error) string {
		switch client.CodeOf(err) {
		case client.CodeNotFound:
			return "deleted while exporting"
		case client.CodeFailedPrecondition:
			var ce *client.Error
			errors.As(err, &ce)
			return "its value cannot be read now: " + ce.Message
		}
		return ""
	}
	if !e.all {
		d, err := read(ctx, id, 0)
		if err != nil {
			if r := gone(err); r != "" {
				return nil, r, nil
			}
			return nil, "", err
		}
		return []archive.Version{{Version: d.Version, Data: d.Data}}, "", nil
	}
	var list []client.SecretVersion
	args := client.PageArgs{First: exportPage}
	for {
		page, err := versions(ctx, id, args)
		if err != nil {
			if r := gone(err); r != "" {
				return nil, r, nil
			}
			return nil, "", err
		}
		list = append(list, page.Results...)
		if page.NextCursor == nil || len(page.Results) == 0 {
			break
		}
		args.After = *page.NextCursor
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Version < list[j].Version })
	var out []archive.Version
	for _, v := range list {
		if !v.Readable {
			continue
		}
		d, err := read(ctx, id, v.Version)
		if err != nil {
			if r := gone(err); r != "" {
				fmt.Fprintf(e.cmd.ErrOrStderr(), "warning: %s version %d left out: %s\n", id, v.Version, r)
				continue
			}
			return nil, "", err
		}
		created := v.CreatedAt
		out = append(out, archive.Version{Version: d.Version, CreatedAt: &created, Data: d.Data})
	}
	if len(out) == 0 {
		return nil, "no readable version", nil
	}
	return out, "", nil
}

// withSettings adds a resource's lifecycle settings.
func withSettings(s archive.Secret, l client.Lifecycle) archive.Secret {
	s.Description, s.KmsKeyID = deref(l.Description), deref(l.KmsKeyID)
	s.MaxVersions, s.AutoRotation, s.RotationPeriodHours = deref(l.MaxVersions), deref(l.AutoRotation), deref(l.RotationPeriodHours)
	return s
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// writeArchive writes the sealed archive: to standard output, or to a
// temporary file (0600) in the target's directory renamed over it once
// synced, so a failed export never leaves half an archive.
func writeArchive(cmd *cobra.Command, out string, sealed []byte) error {
	if out == "-" {
		_, err := cmd.OutOrStdout().Write(sealed)
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".secretlog-export-*")
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("archive: %w", err)
	}
	if _, err := f.Write(sealed); err != nil {
		f.Close()
		return fmt.Errorf("archive: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("archive: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// wipe drops the values from the payload once sealed (best effort: Go may
// have copied them).
func wipe(p *archive.Payload) {
	for _, list := range [][]archive.Secret{p.Secrets, p.UserSecrets} {
		for i := range list {
			for j := range list[i].Versions {
				clear(list[i].Versions[j].Data)
			}
		}
	}
}

func printExport(cmd *cobra.Command, o *clientOptions, rep exportReport) error {
	w := cmd.OutOrStdout()
	if rep.File == "-" {
		w = cmd.ErrOrStderr() // standard output holds the archive
	}
	if rep.Skipped == nil {
		rep.Skipped = []skipped{}
	}
	if o.json() {
		return writeJSON(w, rep)
	}
	versions := "current values"
	if rep.AllVersions {
		versions = "readable versions"
	}
	fmt.Fprintf(w, "exported %d secrets and %d user secrets of %s (%d %s) to %s\narchive id %s\n",
		rep.Secrets, rep.UserSecrets, cell(rep.DomainID, 0), rep.Versions, versions, cell(rep.File, 0), rep.ArchiveID)
	printSkipped(w, rep.Skipped)
	return nil
}

func printSkipped(w io.Writer, list []skipped) {
	if len(list) == 0 {
		return
	}
	t := newTable("left out", "id", "name", "reason")
	for _, s := range list {
		t.AppendRow([]any{s.Kind, s.ID, cell(s.Name, 40), cell(s.Reason, 0)})
	}
	render(w, t)
}
