package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/secretlog/secretlog/events"
)

// Projection turns log records into read-model rows. Apply runs inside the
// consuming transaction; it must ignore records of other streams' types.
type Projection interface {
	// Name is also the consumer group and the checkpoint's key.
	Name() string
	// Tables are the read-model tables the projection owns, by their live names.
	Tables() []string
	// Shadow is the same projection writing to tables named table+suffix
	// (a rebuild fills those, then swaps them in).
	Shadow(suffix string) Projection
	Apply(ctx context.Context, tx pgx.Tx, rec events.Record) error
}

// Names of the projections, which are also their consumer groups.
const (
	SecretsProjection     = "secrets"
	UserSecretsProjection = "user_secrets"
)

func tagsJSON(t map[string]any) ([]byte, error) {
	if t == nil {
		t = map[string]any{}
	}
	return json.Marshal(t)
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// update builds "UPDATE table SET ... WHERE key = $1 AND stream_version < $2":
// the version guard makes a repeated event a no-op.
type update struct {
	sets []string
	args []any
}

func (u *update) set(col string, v any) {
	u.args = append(u.args, v)
	u.sets = append(u.sets, fmt.Sprintf("%s = $%d", col, len(u.args)+2))
}

func (u *update) raw(expr string) { u.sets = append(u.sets, expr) }

// metadata sets the name and tags an update event changes (nil: unchanged).
func (u *update) metadata(name *string, tags map[string]any) error {
	if name != nil {
		u.set("name", *name)
	}
	if tags != nil {
		t, err := tagsJSON(tags)
		if err != nil {
			return err
		}
		u.set("tags", t)
	}
	return nil
}

// newData is the update for a new value: schema and provider, next data version.
func newData(schemaID, provider string) *update {
	u := &update{}
	u.set("schema_id", nullIfEmpty(schemaID))
	u.set("provider", nullIfEmpty(provider))
	u.raw("version = version + 1")
	return u
}

func (u *update) exec(ctx context.Context, tx pgx.Tx, table, key string, rec events.Record) error {
	u.set("stream_version", rec.Version)
	u.set("updated_at", rec.OccurredAt)
	u.set("updated_by", rec.Metadata.Actor.Subject)
	q := fmt.Sprintf("UPDATE %s SET %s WHERE %s = $1 AND stream_version < $2", table, strings.Join(u.sets, ", "), key)
	_, err := tx.Exec(ctx, q, append([]any{rec.Stream, rec.Version}, u.args...)...)
	return err
}

// SecretProjection maintains the secrets read model.
type SecretProjection struct{ Table string }

// Name implements Projection.
func (SecretProjection) Name() string { return SecretsProjection }

// Tables implements Projection.
func (SecretProjection) Tables() []string { return []string{"secrets"} }

// Shadow implements Projection.
func (SecretProjection) Shadow(suffix string) Projection {
	return SecretProjection{Table: "secrets" + suffix}
}

func (p SecretProjection) table() string {
	if p.Table == "" {
		return "secrets"
	}
	return p.Table
}

// Apply implements Projection.
func (p SecretProjection) Apply(ctx context.Context, tx pgx.Tx, rec events.Record) error {
	if !strings.HasPrefix(rec.Type, "Secret") {
		return nil
	}
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return err
	}
	switch e := ev.(type) {
	case *events.SecretCreated:
		tags, err := tagsJSON(e.Tags)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+p.table()+` (secret_id, name, schema_id, provider, tags, resource_group,
			domain_id, workspace_id, project_id, service_account_id, trusted_secret_id, version, stream_version,
			created_by, updated_by, created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,1,$12,$13,$13,$14,$14) ON CONFLICT (secret_id) DO NOTHING`,
			e.SecretID, e.Name, nullIfEmpty(e.SchemaID), nullIfEmpty(e.Provider), tags, e.ResourceGroup,
			e.DomainID, nullIfEmpty(e.WorkspaceID), nullIfEmpty(e.ProjectID), nullIfEmpty(e.ServiceAccountID),
			nullIfEmpty(e.TrustedSecretID), rec.Version, rec.Metadata.Actor.Subject, rec.OccurredAt)
		return err
	case *events.SecretUpdated:
		var u update
		if err := u.metadata(e.Name, e.Tags); err != nil {
			return err
		}
		if e.ProjectID != nil {
			u.set("project_id", *e.ProjectID)
		}
		return u.exec(ctx, tx, p.table(), "secret_id", rec)
	case *events.SecretDataUpdated:
		return newData(e.SchemaID, e.Provider).exec(ctx, tx, p.table(), "secret_id", rec)
	case *events.SecretDeleted:
		_, err := tx.Exec(ctx, `DELETE FROM `+p.table()+` WHERE secret_id = $1`, rec.Stream)
		return err
	}
	return nil
}

// UserSecretProjection maintains the user_secrets read model.
type UserSecretProjection struct{ Table string }

// Name implements Projection.
func (UserSecretProjection) Name() string { return UserSecretsProjection }

// Tables implements Projection.
func (UserSecretProjection) Tables() []string { return []string{"user_secrets"} }

// Shadow implements Projection.
func (UserSecretProjection) Shadow(suffix string) Projection {
	return UserSecretProjection{Table: "user_secrets" + suffix}
}

func (p UserSecretProjection) table() string {
	if p.Table == "" {
		return "user_secrets"
	}
	return p.Table
}

// Apply implements Projection.
func (p UserSecretProjection) Apply(ctx context.Context, tx pgx.Tx, rec events.Record) error {
	if !strings.HasPrefix(rec.Type, "UserSecret") {
		return nil
	}
	ev, err := events.Decode(rec.Type, rec.Data)
	if err != nil {
		return err
	}
	switch e := ev.(type) {
	case *events.UserSecretCreated:
		tags, err := tagsJSON(e.Tags)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO `+p.table()+` (user_secret_id, name, schema_id, provider, tags,
			domain_id, user_id, version, stream_version, created_by, updated_by, created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,1,$8,$9,$9,$10,$10) ON CONFLICT (user_secret_id) DO NOTHING`,
			e.UserSecretID, e.Name, nullIfEmpty(e.SchemaID), nullIfEmpty(e.Provider), tags,
			e.DomainID, e.UserID, rec.Version, rec.Metadata.Actor.Subject, rec.OccurredAt)
		return err
	case *events.UserSecretUpdated:
		var u update
		if err := u.metadata(e.Name, e.Tags); err != nil {
			return err
		}
		return u.exec(ctx, tx, p.table(), "user_secret_id", rec)
	case *events.UserSecretDataUpdated:
		return newData(e.SchemaID, e.Provider).exec(ctx, tx, p.table(), "user_secret_id", rec)
	case *events.UserSecretDeleted:
		_, err := tx.Exec(ctx, `DELETE FROM `+p.table()+` WHERE user_secret_id = $1`, rec.Stream)
		return err
	}
	return nil
}
