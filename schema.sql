-- The desired state of the identity-store database.
--
-- Every timestamp column holds instants from 0001-01-02T00:00:00Z to
-- 9999-12-30T23:59:59.999999Z (the domain's TIMESTAMP_MIN..TIMESTAMP_MAX, which every
-- client reads back in any time zone) or +/-infinity, which versions before these
-- *_range checks stored for Python's first and last instants and which the read
-- models give back as those instants. Any writer may still store +/-infinity (the
-- library never does); anything else (years 10000+, BC) could not be read by the
-- application at all.
--
-- Edit this file, then run `make migration name=<what_changed>`: Atlas diffs it against
-- migrations/ and writes the next versioned migration. Only objects Atlas Community
-- Edition understands belong here (tables, columns, indexes, foreign keys, checks,
-- enums, identity columns); anything else would be dropped from diffs silently, and
-- `make check` compares a database built from this file with one built from migrations/.

CREATE TYPE user_status AS ENUM ('active', 'disabled');

CREATE TYPE token_kind AS ENUM (
    'session',
    'refresh',
    'api_key',
    'email_verification',
    'password_reset'
);

CREATE TABLE users (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    password_hash text        NULL,
    status        user_status NOT NULL DEFAULT 'active',
    version       integer     NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    -- What makes two addresses the same account: the address with A-Z lowered and
    -- every other character kept, whatever the server's locale (lower() under the
    -- "C" collation touches ASCII only; under a UTF-8 locale it would turn the Kelvin
    -- sign into k). identity_store.domain.validation.email_key is the same function
    -- in Python, and a test holds the two equal on every code point.
    email_key     text        NOT NULL GENERATED ALWAYS AS (lower(email COLLATE "C")) STORED,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_length CHECK (char_length(email) BETWEEN 3 AND 320),
    CONSTRAINT users_display_name_length CHECK (char_length(display_name) BETWEEN 1 AND 200),
    CONSTRAINT users_version_positive CHECK (version > 0),
    CONSTRAINT users_updated_after_created CHECK (updated_at >= created_at),
    CONSTRAINT users_created_at_range CHECK (
        (created_at AT TIME ZONE 'UTC') BETWEEN '0001-01-02 00:00:00' AND '9999-12-30 23:59:59.999999'
        OR NOT isfinite(created_at)
    ),
    CONSTRAINT users_updated_at_range CHECK (
        (updated_at AT TIME ZONE 'UTC') BETWEEN '0001-01-02 00:00:00' AND '9999-12-30 23:59:59.999999'
        OR NOT isfinite(updated_at)
    )
);

-- E-mail addresses are unique by their key; lookups compare keys.
CREATE UNIQUE INDEX users_email_key_key ON users (email_key);
-- Keyset pagination walks (created_at, id).
CREATE INDEX users_created_at_id_idx ON users (created_at, id);

CREATE TABLE tokens (
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL,
    kind         token_kind  NOT NULL,
    token_hash   bytea       NOT NULL,
    scopes       text[]      NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    last_used_at timestamptz NULL,
    revoked_at   timestamptz NULL,
    CONSTRAINT tokens_pkey PRIMARY KEY (id),
    CONSTRAINT tokens_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON UPDATE NO ACTION ON DELETE CASCADE,
    CONSTRAINT tokens_token_hash_sha256 CHECK (octet_length(token_hash) = 32),
    CONSTRAINT tokens_expires_after_created CHECK (expires_at > created_at),
    CONSTRAINT tokens_created_at_range CHECK (
        (created_at AT TIME ZONE 'UTC') BETWEEN '0001-01-02 00:00:00' AND '9999-12-30 23:59:59.999999'
        OR NOT isfinite(created_at)
    ),
    CONSTRAINT tokens_expires_at_range CHECK (
        (expires_at AT TIME ZONE 'UTC') BETWEEN '0001-01-02 00:00:00' AND '9999-12-30 23:59:59.999999'
        OR NOT isfinite(expires_at)
    ),
    CONSTRAINT tokens_last_used_at_range CHECK (
        (last_used_at AT TIME ZONE 'UTC') BETWEEN '0001-01-02 00:00:00' AND '9999-12-30 23:59:59.999999'
        OR NOT isfinite(last_used_at)
    ),
    CONSTRAINT tokens_revoked_at_range CHECK (
        (revoked_at AT TIME ZONE 'UTC') BETWEEN '0001-01-02 00:00:00' AND '9999-12-30 23:59:59.999999'
        OR NOT isfinite(revoked_at)
    )
);

CREATE UNIQUE INDEX tokens_token_hash_key ON tokens (token_hash);
-- A user's live tokens: what "revoke all" and session listings read.
CREATE INDEX tokens_user_id_live_idx ON tokens (user_id, expires_at) WHERE revoked_at IS NULL;
-- The purge of expired tokens walks this one.
CREATE INDEX tokens_expires_at_idx ON tokens (expires_at);

CREATE TABLE events (
    id          bigint      NOT NULL GENERATED ALWAYS AS IDENTITY,
    event_key   uuid        NOT NULL,
    user_id     uuid        NULL,
    type        text        NOT NULL,
    payload     jsonb       NOT NULL DEFAULT '{}',
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    -- The writing transaction's id (xid8 as bigint, so every tool reads it). The stream
    -- is read in (tx_id, id) order, and only below the oldest running transaction:
    -- identity values are handed out before commit and in another order than xids,
    -- so following `id` alone would step past rows that commit later.
    tx_id       bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    CONSTRAINT events_pkey PRIMARY KEY (id),
    CONSTRAINT events_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON UPDATE NO ACTION ON DELETE SET NULL,
    CONSTRAINT events_type_format CHECK (type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    CONSTRAINT events_occurred_at_range CHECK (
        (occurred_at AT TIME ZONE 'UTC') BETWEEN '0001-01-02 00:00:00' AND '9999-12-30 23:59:59.999999'
        OR NOT isfinite(occurred_at)
    ),
    CONSTRAINT events_recorded_at_range CHECK (
        (recorded_at AT TIME ZONE 'UTC') BETWEEN '0001-01-02 00:00:00' AND '9999-12-30 23:59:59.999999'
        OR NOT isfinite(recorded_at)
    )
);

CREATE UNIQUE INDEX events_event_key_key ON events (event_key);
CREATE INDEX events_user_id_id_idx ON events (user_id, id);
CREATE INDEX events_type_id_idx ON events (type, id);
-- The stream walks (tx_id, id).
CREATE INDEX events_tx_id_id_idx ON events (tx_id, id);

-- Durable subscriptions to the event stream (identity_store.consume). A subscription
-- has read every event at or before its position (after_tx_id, after_id) in the
-- stream's (tx_id, id) order. Its filter: exact types, type prefixes ending in '.'
-- (both empty: every type), optionally one user, optionally a partition of the users.
CREATE TABLE subscriptions (
    name               text        NOT NULL,
    after_tx_id        bigint      NOT NULL DEFAULT 0,
    after_id           bigint      NOT NULL DEFAULT 0,
    types              text[]      NOT NULL DEFAULT '{}',
    type_prefixes      text[]      NOT NULL DEFAULT '{}',
    user_id            uuid        NULL,
    -- Only the events whose user's id ends in a byte b with b % partition_count =
    -- partition_index (events without a user: b = 0). Several subscriptions that
    -- split one stream this way are handled in parallel, each user's events in order.
    partition_index    integer     NOT NULL DEFAULT 0,
    partition_count    integer     NOT NULL DEFAULT 1,
    -- What happens to an event that failed max_attempts deliveries on its own:
    -- 'park' records it in subscription_parked_events and moves on, 'stop' stops
    -- the subscription until it is reset.
    on_failure         text        NOT NULL DEFAULT 'park',
    max_attempts       integer     NOT NULL DEFAULT 5,
    -- Failed deliveries in a row at this position; while the position is below
    -- (narrow_tx_id, narrow_id), the end of a failed batch, batches hold one event.
    failures           integer     NOT NULL DEFAULT 0,
    narrow_tx_id       bigint      NOT NULL DEFAULT 0,
    narrow_id          bigint      NOT NULL DEFAULT 0,
    retry_at           timestamptz NULL,
    stopped_at         timestamptz NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CONSTRAINT subscriptions_pkey PRIMARY KEY (name),
    CONSTRAINT subscriptions_name_format CHECK (name ~ '^[a-z][a-z0-9_.-]{0,62}$'),
    CONSTRAINT subscriptions_position_positive CHECK (after_tx_id >= 0 AND after_id >= 0),
    CONSTRAINT subscriptions_on_failure_known CHECK (on_failure IN ('park', 'stop')),
    CONSTRAINT subscriptions_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 1000),
    CONSTRAINT subscriptions_failures_positive CHECK (failures >= 0),
    CONSTRAINT subscriptions_partition_count_range CHECK (partition_count BETWEEN 1 AND 256),
    CONSTRAINT subscriptions_partition_index_range CHECK (
        partition_index >= 0 AND partition_index < partition_count
    )
);

-- Events a subscription gave up on (never their payload: the event is still in
-- events, by id).
CREATE TABLE subscription_parked_events (
    subscription  text        NOT NULL,
    event_id      bigint      NOT NULL,
    error_class   text        NOT NULL,
    error_message text        NOT NULL,
    attempts      integer     NOT NULL,
    parked_at     timestamptz NOT NULL,
    CONSTRAINT subscription_parked_events_pkey PRIMARY KEY (subscription, event_id),
    CONSTRAINT subscription_parked_events_subscription_fkey FOREIGN KEY (subscription)
        REFERENCES subscriptions (name) ON UPDATE NO ACTION ON DELETE CASCADE,
    CONSTRAINT subscription_parked_events_error_length CHECK (
        char_length(error_class) <= 200 AND char_length(error_message) <= 1000
    )
);

-- How many events there are of each type, kept by the append queries themselves in
-- the appending transaction (no trigger: Atlas CE would drop it), so count_by_type
-- reads a few rows instead of the whole log. A type's count is spread over shards
-- (the writer's backend pid modulo 32, see queries/events.sql) so that concurrent
-- writers of one type do not wait on one row until commit; readers sum the shards.
-- purge_events subtracts what it deletes, in the same transaction, on its own shard:
-- a shard may go below zero, the sum of a type's shards never does.
CREATE TABLE event_type_counts (
    type  text     NOT NULL,
    shard smallint NOT NULL,
    count bigint   NOT NULL,
    CONSTRAINT event_type_counts_pkey PRIMARY KEY (type, shard)
);

-- How far purge_events has deleted the stream: events at or before
-- (purged_tx_id, purged_id) may be gone, so a subscription positioned below it cannot
-- read on. One row, or none while nothing was purged. The application only reads it.
CREATE TABLE event_retention (
    singleton    boolean     NOT NULL DEFAULT true,
    purged_tx_id bigint      NOT NULL,
    purged_id    bigint      NOT NULL,
    purged_at    timestamptz NOT NULL,
    CONSTRAINT event_retention_pkey PRIMARY KEY (singleton),
    CONSTRAINT event_retention_singleton CHECK (singleton)
);
