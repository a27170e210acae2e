-- Retention of the event stream: see identity_store.purge_events.

-- Every subscription's position, the rows locked until the transaction ends: batches
-- in progress finish first, and none starts (or is reset) while events are deleted.
-- name: LockSubscriptionPositions :many
SELECT after_tx_id, after_id FROM subscriptions
ORDER BY name
FOR UPDATE;

-- Delete up to @max_rows events recorded before @before, in stream order, at or before
-- the position (@upto_tx_id, @upto_id), take them off their types' counts, and move
-- the start of the retained range up to the last one deleted; return how many were
-- deleted.
-- name: PurgeEvents :one
WITH doomed AS (
    SELECT ev.id FROM events AS ev
    WHERE ev.recorded_at < @before
      AND (ev.tx_id, ev.id) <= (@upto_tx_id::bigint, @upto_id::bigint)
    ORDER BY ev.tx_id, ev.id
    LIMIT @max_rows
), deleted AS (
    DELETE FROM events AS e
    USING doomed
    WHERE e.id = doomed.id
    RETURNING e.tx_id, e.id, e.type
), uncounted AS (
    INSERT INTO event_type_counts (type, shard, count)
    SELECT deleted.type, pg_backend_pid() % 32, -count(*) FROM deleted
    GROUP BY deleted.type
    ORDER BY deleted.type
    ON CONFLICT (type, shard) DO UPDATE SET count = event_type_counts.count + EXCLUDED.count
), last_deleted AS (
    SELECT tx_id, id FROM deleted
    ORDER BY tx_id DESC, id DESC
    LIMIT 1
), moved AS (
    INSERT INTO event_retention (singleton, purged_tx_id, purged_id, purged_at)
    SELECT true, tx_id, id, @now FROM last_deleted
    ON CONFLICT (singleton) DO UPDATE
    SET purged_tx_id = excluded.purged_tx_id,
        purged_id = excluded.purged_id,
        purged_at = excluded.purged_at
    WHERE (excluded.purged_tx_id, excluded.purged_id)
        > (event_retention.purged_tx_id, event_retention.purged_id)
    RETURNING 1
)
SELECT count(*) AS deleted FROM deleted;

-- The start of the retained range: events at or before it may have been purged
-- ((0, 0): nothing purged).
-- name: RetainedFrom :one
SELECT coalesce(max(purged_tx_id), 0)::bigint AS purged_tx_id,
       coalesce(max(purged_id), 0)::bigint AS purged_id
FROM event_retention;
