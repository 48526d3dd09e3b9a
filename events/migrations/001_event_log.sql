-- The append-only log: the only source of truth.
CREATE TABLE event_log (
    position       bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL CHECK (version > 0),
    type           text        NOT NULL,
    data           bytea       NOT NULL,
    -- json, not jsonb: it keeps the envelope's exact text, which hash covers.
    metadata       json        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    -- events.EventHash of this row, chained to the stream's previous event.
    hash           bytea       NOT NULL,
    -- (transaction_id, position) is the commit order consumers follow.
    PRIMARY KEY (transaction_id, position),
    UNIQUE (stream_id, version),
    UNIQUE (event_id)
);
CREATE INDEX event_log_position ON event_log (position);

-- The application never changes history: enforce it where it cannot be bypassed by a bug.
CREATE FUNCTION event_log_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % rejected', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER event_log_no_update BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION event_log_reject_change();
CREATE TRIGGER event_log_no_truncate BEFORE TRUNCATE ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_reject_change();

-- Periodic checkpoints over the whole log (events.PostgresStore.WriteCheckpoint):
-- hash folds every event's hash in commit order up to and including the event
-- at (commit, position); events counts them. Verify compares each one.
CREATE TABLE log_checkpoints (
    commit     xid8        NOT NULL,
    position   bigint      NOT NULL,
    events     bigint      NOT NULL CHECK (events > 0),
    hash       bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (commit, position)
);
CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE OR DELETE ON log_checkpoints
    FOR EACH ROW EXECUTE FUNCTION event_log_reject_change();
CREATE TRIGGER log_checkpoints_no_truncate BEFORE TRUNCATE ON log_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_reject_change();

-- Wake consumers when an append commits (NOTIFY is delivered on commit only).
CREATE FUNCTION event_log_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('secretlog_appended', '');
    RETURN NULL;
END $$;
CREATE TRIGGER event_log_appended AFTER INSERT ON event_log
    FOR EACH STATEMENT EXECUTE FUNCTION event_log_notify();

-- Wrapped per-stream data keys live outside the log so that destroying one
-- shreds that stream's values while the log stays intact.
CREATE TABLE data_keys (
    stream_id    text PRIMARY KEY,
    kek_id       text,
    wrapped_key  bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    rotated_at   timestamptz,
    destroyed_at timestamptz,
    CHECK ((destroyed_at IS NULL) = (wrapped_key IS NOT NULL)),
    CHECK ((kek_id IS NULL) = (wrapped_key IS NULL))
);
