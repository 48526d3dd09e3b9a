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
	"github.com/secretlog/secretlog/query"
)

// foldTagsDDL defines secretlog_fold_tags(tags): the document with every
// string value lower-cased exactly as eq and in compare a tag
// (lower(tags -> key #>> '{}')), keys and other values as they are, so
// that {"key": lower(v)} is contained in it exactly when the tag is a
// string equal to v ignoring case. The GIN indexes on tags index
// query.FoldedTags, which calls it only for documents lower() changes.
// Its body names only pg_catalog's functions: index maintenance may run
// it with no other schema on the search path.
const foldTagsDDL = `
CREATE OR REPLACE FUNCTION secretlog_fold_tags(tags jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
    SELECT CASE WHEN jsonb_typeof(tags) <> 'object' THEN tags ELSE coalesce(
        (SELECT jsonb_object_agg(e.key, CASE WHEN jsonb_typeof(e.value) = 'string'
            THEN to_jsonb(lower(e.value #>> '{}')) ELSE e.value END)
        FROM jsonb_each(tags) AS e), '{}') END
    $$;
`

// readModelDDL creates every read-model table; {{suffix}} lets a rebuild
// build shadow tables next to the live ones. It starts with foldTagsDDL,
// which the tags indexes use.
const readModelDDL = foldTagsDDL + `
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
    state              text        NOT NULL DEFAULT 'ENABLED',
    description        text,
    kms_key_id         text,
    max_versions       integer,
    auto_rotation      boolean     NOT NULL DEFAULT false,
    rotation_period_hours integer,
    next_rotation_time timestamptz,
    last_rotated_at    timestamptz,
    version            bigint      NOT NULL,
    stream_version     bigint      NOT NULL,
    created_by         text        NOT NULL,
    updated_by         text        NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
-- The list and stat translator (package query) always scopes by domain_id, sorts
-- ascending with nulls first (descending: nulls last) and breaks ties on the
-- id in the last key's direction: (domain_id, x NULLS FIRST, secret_id)
-- serves a filter on x and a sort on x both ways. The visibility columns are
-- INCLUDEd so a workspace caller's scope is checked without the heap.
-- eq and in ignore case (lower(x) = lower($1)) on every field but the ids:
-- the _folded indexes on lower(x) serve them for name, provider and
-- schema_id. Tag equality is a containment test on the folded tags
-- (query.FoldedTags, every string value lower-cased) that the GIN index
-- answers, followed by the exact comparison.
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
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_domain_name_folded ON secrets{{suffix}} (domain_id, lower(name), secret_id)
    INCLUDE (resource_group, workspace_id, project_id);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_domain_provider_folded ON secrets{{suffix}} (domain_id, lower(provider), lower(schema_id), secret_id)
    INCLUDE (resource_group, workspace_id, project_id);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_domain_schema_folded ON secrets{{suffix}} (domain_id, lower(schema_id), secret_id)
    INCLUDE (resource_group, workspace_id, project_id);
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_tags_folded ON secrets{{suffix}} USING gin (` + query.FoldedTags + ` jsonb_path_ops);

CREATE TABLE IF NOT EXISTS user_secrets{{suffix}} (
    user_secret_id text PRIMARY KEY,
    name           text        NOT NULL,
    schema_id      text,
    provider       text,
    tags           jsonb       NOT NULL DEFAULT '{}',
    domain_id      text        NOT NULL,
    user_id        text        NOT NULL,
    state              text        NOT NULL DEFAULT 'ENABLED',
    description        text,
    kms_key_id         text,
    max_versions       integer,
    auto_rotation      boolean     NOT NULL DEFAULT false,
    rotation_period_hours integer,
    next_rotation_time timestamptz,
    last_rotated_at    timestamptz,
    version        bigint      NOT NULL,
    stream_version bigint      NOT NULL,
    created_by     text        NOT NULL,
    updated_by     text        NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS user_secrets{{suffix}}_owner ON user_secrets{{suffix}} (domain_id, user_id, created_at);
CREATE INDEX IF NOT EXISTS user_secrets{{suffix}}_domain_id ON user_secrets{{suffix}} (domain_id, user_secret_id);
CREATE INDEX IF NOT EXISTS user_secrets{{suffix}}_tags_folded ON user_secrets{{suffix}} USING gin (` + query.FoldedTags + ` jsonb_path_ops);
-- The scheduler's: rotations that come due.
CREATE INDEX IF NOT EXISTS secrets{{suffix}}_rotation ON secrets{{suffix}} (next_rotation_time) WHERE auto_rotation;
CREATE INDEX IF NOT EXISTS user_secrets{{suffix}}_rotation ON user_secrets{{suffix}} (next_rotation_time) WHERE auto_rotation;

-- Every version of every value, readable or destroyed (secretVersions).
CREATE TABLE IF NOT EXISTS resource_versions{{suffix}} (
    resource_id      text        NOT NULL,
    version          bigint      NOT NULL,
    event_version    bigint      NOT NULL,
    stages           jsonb       NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL,
    created_by       text        NOT NULL,
    rolled_back_from bigint,
    destroyed        boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (resource_id, version)
);

-- Resources scheduled for deletion (the recycle bin), hidden from the
-- other read models until restored; the scheduler deletes them when due.
CREATE TABLE IF NOT EXISTS pending_deletions{{suffix}} (
    resource_id   text PRIMARY KEY,
    resource_type text        NOT NULL,
    name          text        NOT NULL,
    domain_id     text        NOT NULL,
    delete_at     timestamptz NOT NULL,
    scheduled_at  timestamptz NOT NULL,
    scheduled_by  text        NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_deletions{{suffix}}_due ON pending_deletions{{suffix}} (delete_at);
CREATE INDEX IF NOT EXISTS pending_deletions{{suffix}}_domain ON pending_deletions{{suffix}} (domain_id, delete_at);
`

// checkpointsDDL: watermill-sql's delivery offsets (and, in the first
// schema, the projection checkpoints that inline projections replaced).
const checkpointsDDL = `
CREATE TABLE IF NOT EXISTS ` + events.OffsetsTable + ` (
    consumer_group                varchar(255) PRIMARY KEY,
    offset_acked                  bigint,
    last_processed_transaction_id xid8 NOT NULL
);
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    projection     text PRIMARY KEY,
    last_commit    xid8   NOT NULL DEFAULT '0',
    last_position  bigint NOT NULL DEFAULT 0,
    events_applied bigint NOT NULL DEFAULT 0
);`

// snapshotsDDL: each resource's latest state (SnapshotProjection).
const snapshotsDDL = `
CREATE TABLE IF NOT EXISTS snapshots{{suffix}} (
    stream_id text PRIMARY KEY,
    kind      text   NOT NULL,
    version   bigint NOT NULL,
    state     jsonb  NOT NULL
);`

// inlineDDL replaces the asynchronous pipeline's bookkeeping with the
// inline projections' tables; the read models are replayed after it.
const inlineDDL = `
DROP TABLE IF EXISTS audit_streams, projection_checkpoints;
DELETE FROM ` + events.OffsetsTable + `;
DROP TABLE IF EXISTS secrets, user_secrets, audit_events;`

func readModels(suffix string) string {
	return strings.ReplaceAll(readModelDDL+trustedSecretsDDL+auditDDL+snapshotsDDL+usageDDL, "{{suffix}}", suffix)
}

// liveTables are every read-model table, by their live names.
func liveTables() []string {
	var out []string
	for _, p := range All() {
		out = append(out, p.Tables()...)
	}
	return out
}

// Migrate brings the read-model schema up to date. It reports whether the
// read models are empty while the log is not (a table was dropped, or a
// migration replaced them): the caller then replays the log (RebuildOnline)
// before serving.
func Migrate(ctx context.Context, conn *pgx.Conn) (replay bool, err error) {
	m, err := migrate.NewMigrator(ctx, conn, "schema_version_projections")
	if err != nil {
		return false, err
	}
	m.AppendMigration("read models and checkpoints", strings.ReplaceAll(readModelDDL, "{{suffix}}", "")+checkpointsDDL, "")
	m.AppendMigration("audit trail", strings.ReplaceAll(auditDDL, "{{suffix}}", "")+`
CREATE TABLE IF NOT EXISTS audit_streams (resource_id text PRIMARY KEY, resource_type text NOT NULL, state jsonb NOT NULL);`, "")
	m.AppendMigration("inline projections", inlineDDL+readModels(""), "")
	m.AppendMigration("secret lifecycle", `DROP TABLE IF EXISTS secrets, user_secrets, audit_events, snapshots, resource_usage, resource_versions, pending_deletions;
DROP TABLE IF EXISTS resource_usage;
DELETE FROM `+events.OffsetsTable+`;`+readModels(""), "")
	m.AppendMigration("trusted secrets", strings.ReplaceAll(trustedSecretsDDL, "{{suffix}}", ""), "")
	m.AppendMigration("remote log positions", positionsDDL, "")
	// eq and in ignore case: indexes on lower(column) and on the folded
	// tags replace the exact tags indexes (readModels creates the missing
	// ones; the rows stay, nothing is replayed).
	m.AppendMigration("case-insensitive indexes", `DROP INDEX IF EXISTS secrets_tags, user_secrets_tags, trusted_secrets_tags;`+
		readModels(""), "")
	if err := m.Migrate(ctx); err != nil {
		return false, err
	}
	// Read models are disposable: if someone dropped one, recreate them all
	// empty and have the log replayed rather than fail.
	var missing bool
	regs := make([]string, 0, len(liveTables()))
	for _, t := range liveTables() {
		regs = append(regs, "to_regclass('"+t+"') IS NULL")
	}
	if err := conn.QueryRow(ctx, `SELECT `+strings.Join(regs, " OR ")).Scan(&missing); err != nil {
		return false, err
	}
	if missing {
		if err := Reset(ctx, conn); err != nil {
			return false, err
		}
	}
	return Empty(ctx, conn)
}

// Empty reports whether the log holds events that no snapshot reflects: the
// read models were reset and want a replay.
func Empty(ctx context.Context, q events.Querier) (bool, error) {
	var empty bool
	var logExists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('event_log') IS NOT NULL`).Scan(&logExists); err != nil || !logExists {
		return false, err // read models without a log (query tests): nothing to replay
	}
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM event_log) AND NOT EXISTS (SELECT 1 FROM snapshots)`).Scan(&empty)
	return empty, err
}

// Reset drops every read model and asynchronous offset and recreates them
// empty; RebuildOnline then replays the log into them. Writers wait for it
// (it holds the write lock).
func Reset(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writeLockSpace); err != nil {
		return err
	}
	quoted := make([]string, 0, len(liveTables()))
	for _, t := range liveTables() {
		quoted = append(quoted, ident(t))
	}
	if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+strings.Join(quoted, ", ")); err != nil {
		return fmt.Errorf("drop read models: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+events.OffsetsTable); err != nil {
		return err
	}
	// A remote log's projections start again from its beginning.
	if _, err := tx.Exec(ctx, `DELETE FROM `+PositionsTable+` WHERE consumer = ANY($1)`, readModelConsumers()); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, readModels("")+strings.ReplaceAll(trustedSecretsDDL, "{{suffix}}", "")); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
