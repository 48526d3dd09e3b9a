// Package projections builds secretlog's read models from the log and answers
// queries from them. Read models are disposable: Reset drops them and the
// projectors replay the log into identical rows.
package projections

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/secretlog/secretlog/events"
)

// readModelDDL creates every read-model table; {{suffix}} lets a rebuild
// build shadow tables next to the live ones.
const readModelDDL = `
CREATE TABLE IF NOT EXISTS secrets{{suffix}} (
    secret_id          text PRIMARY KEY,
    name               text        NOT NULL,
    schema_id          text,
    provider           text,
    tags               jsonb       NOT NULL DEFAULT '{}',
    resource_group     text        NOT NULL,
    domain_id          text        NOT NULL,
    workspace_id       text,
    project_id         text,
    service_account_id text,
    trusted_secret_id  text,
    version            bigint      NOT NULL,
    stream_version     bigint      NOT NULL,
    created_by         text        NOT NULL,
    updated_by         text        NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
-- The list and stat translator (query.go) always scopes by domain_id, sorts
-- ascending with nulls first (descending: nulls last) and breaks ties on the
-- id in the last key's direction: (domain_id, x NULLS FIRST, secret_id)
-- serves a filter on x and a sort on x both ways. The visibility columns are
-- INCLUDEd so a workspace caller's scope is checked without the heap; tag
-- equality is tags @> {...} on the GIN index.
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_scope ON secrets{{suffix}} (domain_id, workspace_id, project_id);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_visibility ON secrets{{suffix}} (domain_id, resource_group, workspace_id, project_id);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_domain_id ON secrets{{suffix}} (domain_id, secret_id)
    INCLUDE (resource_group, workspace_id, project_id);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_domain_created ON secrets{{suffix}} (domain_id, created_at NULLS FIRST, secret_id)
    INCLUDE (resource_group, workspace_id, project_id);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_domain_name ON secrets{{suffix}} (domain_id, name NULLS FIRST, secret_id)
    INCLUDE (resource_group, workspace_id, project_id);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_domain_provider ON secrets{{suffix}} (domain_id, provider NULLS FIRST, schema_id NULLS FIRST, secret_id)
    INCLUDE (resource_group, workspace_id, project_id);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_domain_schema ON secrets{{suffix}} (domain_id, schema_id NULLS FIRST, secret_id)
    INCLUDE (resource_group, workspace_id, project_id);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_tags ON secrets{{suffix}} USING gin (tags jsonb_path_ops);

CREATE TABLE IF NOT EXISTS user_secrets{{suffix}} (
    user_secret_id text PRIMARY KEY,
    name           text        NOT NULL,
    schema_id      text,
    provider       text,
    tags           jsonb       NOT NULL DEFAULT '{}',
    domain_id      text        NOT NULL,
    user_id        text        NOT NULL,
    version        bigint      NOT NULL,
    stream_version bigint      NOT NULL,
    created_by     text        NOT NULL,
    updated_by     text        NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS user_secrets{{suffix}}_owner ON user_secrets{{suffix}} (domain_id, user_id, created_at);
CREATE INDEX IF NOT EXISTS user_secrets{{suffix}}_domain_id ON user_secrets{{suffix}} (domain_id, user_secret_id);
CREATE INDEX IF NOT EXISTS user_secrets{{suffix}}_tags ON user_secrets{{suffix}} USING gin (tags jsonb_path_ops);
`

// checkpointsDDL: watermill-sql's delivery offsets, and each projection's
// checkpoint (with a count of applied events that proves exactly-once).
const checkpointsDDL = `
CREATE TABLE IF NOT EXISTS ` + events.OffsetsTable + ` (
    consumer_group                varchar(255) PRIMARY KEY,
    offset_acked                  bigint,
    last_processed_transaction_id xid8 NOT NULL
);
CREATE TABLE IF NOT EXISTS ` + events.CheckpointsTable + ` (
    projection     text PRIMARY KEY,
    last_commit    xid8   NOT NULL DEFAULT '0',
    last_position  bigint NOT NULL DEFAULT 0,
    events_applied bigint NOT NULL DEFAULT 0
);`

func readModels(suffix string) string { return strings.ReplaceAll(readModelDDL, "{{suffix}}", suffix) }

// Migrate brings the read-model schema up to date.
func Migrate(ctx context.Context, conn *pgx.Conn) error {
	m, err := migrate.NewMigrator(ctx, conn, "schema_version_projections")
	if err != nil {
		return err
	}
	m.AppendMigration("read models and checkpoints", readModels("")+checkpointsDDL, "")
	m.AppendMigration("audit trail", auditTables(""), "")
	if err := m.Migrate(ctx); err != nil {
		return err
	}
	// Read models are disposable: if someone dropped one, rebuild them all
	// from the log rather than fail.
	var missing bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('secrets') IS NULL OR to_regclass('user_secrets') IS NULL
		OR to_regclass('audit_events') IS NULL OR to_regclass('audit_streams') IS NULL`).Scan(&missing); err != nil {
		return err
	}
	if missing {
		return Reset(ctx, conn)
	}
	return nil
}

// Reset drops every read model and checkpoint and recreates them empty: the
// projectors then replay the whole log. Stop the projectors first.
func Reset(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS secrets, user_secrets, audit_events, audit_streams`); err != nil {
		return fmt.Errorf("drop read models: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+events.CheckpointsTable+`; DELETE FROM `+events.OffsetsTable); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, readModels("")+auditTables("")); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
