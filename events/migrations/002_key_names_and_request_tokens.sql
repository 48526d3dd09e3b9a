-- The keyring key a data key follows: the name its resource chose
-- (kmsKeyId), or NULL for the keyring's primary, whichever it is. Rewrap
-- moves each wrap to the newest version of that name.
ALTER TABLE data_keys ADD COLUMN kms_key_id text;

-- Data keys made before this column: take the name from the creating event
-- of their resource (its settings carry kms_key_id when one was chosen).
UPDATE data_keys dk SET kms_key_id = c.kms_key_id
FROM (SELECT stream_id, convert_from(data, 'UTF8')::jsonb ->> 'kms_key_id' AS kms_key_id
      FROM event_log WHERE version = 1 AND type IN ('SecretCreated.v1', 'UserSecretCreated.v1')) c
WHERE c.kms_key_id IS NOT NULL AND left(dk.stream_id, length(c.stream_id) + 2) = c.stream_id || '/v';

-- Idempotency tokens (clientRequestToken): the first request's answer is
-- the stream version its events ended at. A token is unique in its scope
-- (a domain and an operation, plus the resource for updates) for as long as
-- it is remembered (at least 24 hours; rows older than that are purged).
-- fingerprint is an HMAC of the whole request under a key derived from the
-- keyring key fingerprint_key: it cannot be tested against guessed values
-- without the keyring.
CREATE TABLE request_tokens (
    domain_id       text        NOT NULL,
    scope           text        NOT NULL,
    token           text        NOT NULL,
    fingerprint     bytea       NOT NULL,
    fingerprint_key text        NOT NULL,
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (domain_id, scope, token)
);
CREATE INDEX request_tokens_created_at ON request_tokens (created_at);
