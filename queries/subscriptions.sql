-- Durable subscriptions to the event stream: see identity_store.consume.

-- Create the subscription unless one has the name; no row back then.
-- name: CreateSubscription :one
INSERT INTO subscriptions (
    name, after_tx_id, after_id, types, type_prefixes, user_id, partition_index,
    partition_count, on_failure, max_attempts, created_at, updated_at
)
VALUES (
    @name, @after_tx_id, @after_id, @types, @type_prefixes, sqlc.narg(user_id),
    @partition_index, @partition_count, @on_failure, @max_attempts, @now, @now
)
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- name: GetSubscription :one
SELECT * FROM subscriptions
WHERE name = @name;

-- The subscription's row, locked until the transaction ends, or no row while another
-- transaction holds it (a worker busy with a batch): workers take turns, never
-- handle the same batch.
-- name: ClaimSubscription :one
SELECT * FROM subscriptions
WHERE name = @name
FOR UPDATE SKIP LOCKED;

-- The subscription's row, locked, waiting for a worker's batch to end.
-- name: LockSubscription :one
SELECT * FROM subscriptions
WHERE name = @name
FOR UPDATE;

-- name: DeleteSubscription :execrows
DELETE FROM subscriptions
WHERE name = @name;

-- Store the subscription's progress (position, failure state) as the caller computed
-- it under the row's lock.
-- name: SaveSubscriptionProgress :exec
UPDATE subscriptions
SET after_tx_id = @after_tx_id,
    after_id = @after_id,
    failures = @failures,
    narrow_tx_id = @narrow_tx_id,
    narrow_id = @narrow_id,
    retry_at = sqlc.narg(retry_at),
    stopped_at = sqlc.narg(stopped_at),
    updated_at = @now
WHERE name = @name;

-- The stream's horizon: every transaction with a smaller id has ended, so no event
-- can still appear below it (see ReadEventStream).
-- name: StreamHorizon :one
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon;

-- The subscription's next events after the position (@after_tx_id, @after_id) and
-- below @horizon (a value of StreamHorizon: the horizon only grows, so an older one is
-- safe), matching its filter (the caller passes the locked row's), in stream order.
-- Constants, not a join with the row: the row comparison then bounds the scan of
-- events_tx_id_id_idx (joined, it was a filter over the stream from its start). The
-- filter is spelled the same in SubscriptionLag.
-- name: ReadSubscriptionBatch :many
SELECT * FROM events
WHERE (tx_id, id) > (@after_tx_id::bigint, @after_id::bigint)
  AND tx_id < @horizon::bigint
  AND (
      cardinality(@types::text[]) + cardinality(@type_prefixes::text[]) = 0
      OR type = ANY(@types::text[])
      OR EXISTS (
          SELECT 1 FROM unnest(@type_prefixes::text[]) AS p (prefix)
          WHERE starts_with(type, p.prefix)
      )
  )
  AND (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id)::uuid)
  AND (
      @partition_count::integer = 1
      OR coalesce(get_byte(uuid_send(user_id), 15), 0) % @partition_count::integer
         = @partition_index::integer
  )
ORDER BY tx_id, id
LIMIT @max_rows;

-- name: ParkEvent :exec
INSERT INTO subscription_parked_events (
    subscription, event_id, error_class, error_message, attempts, parked_at
)
VALUES (@subscription, @event_id, @error_class, @error_message, @attempts, @parked_at)
ON CONFLICT (subscription, event_id) DO NOTHING;

-- name: ListParkedEvents :many
SELECT * FROM subscription_parked_events
WHERE subscription = @subscription
ORDER BY event_id
LIMIT @max_rows;

-- How far each subscription is behind: matching events after its position (committed
-- or not yet below the horizon), and the seconds since the oldest of them was recorded.
-- LATERAL, so that each subscription's position bounds its index scan.
-- name: SubscriptionLag :many
SELECT s.name,
       s.stopped_at,
       behind.events_behind,
       behind.seconds_behind
FROM subscriptions AS s
CROSS JOIN LATERAL (
    SELECT count(*) AS events_behind,
           coalesce(extract(epoch FROM now() - min(e.recorded_at)), 0)::float8 AS seconds_behind
    FROM events AS e
    WHERE (e.tx_id, e.id) > (s.after_tx_id, s.after_id)
      AND (
          cardinality(s.types) + cardinality(s.type_prefixes) = 0
          OR e.type = ANY(s.types)
          OR EXISTS (
              SELECT 1 FROM unnest(s.type_prefixes) AS p (prefix)
              WHERE starts_with(e.type, p.prefix)
          )
      )
      AND (s.user_id IS NULL OR e.user_id = s.user_id)
      AND (
          s.partition_count = 1
          OR coalesce(get_byte(uuid_send(e.user_id), 15), 0) % s.partition_count
             = s.partition_index
      )
) AS behind
ORDER BY s.name;

-- What holds the stream back: the horizon, how many transaction ids were handed out
-- since, and the age in seconds of the oldest transaction holding an id, in any
-- database of the server (running or prepared); 0 when there is none. Other roles'
-- running transactions are visible in pg_stat_activity only to members of
-- pg_read_all_stats (and superusers).
-- name: StreamHorizonStatus :one
SELECT pg_snapshot_xmin(snap)::text::bigint AS horizon,
       (pg_snapshot_xmax(snap)::text::bigint - pg_snapshot_xmin(snap)::text::bigint) AS xids_held,
       coalesce(extract(epoch FROM clock_timestamp() - least(
           (SELECT min(a.xact_start) FROM pg_catalog.pg_stat_activity AS a
            WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_backend_pid()),
           (SELECT min(x.prepared) FROM pg_catalog.pg_prepared_xacts AS x)
       )), 0)::float8 AS oldest_transaction_seconds
FROM pg_current_snapshot() AS snap;
