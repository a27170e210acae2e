-- Append an event unless one with the same event_key exists; no row back then, and
-- the caller reads the existing one with GetEventByKey. The same statement adds the
-- event to its type's count (event_type_counts, on this backend's shard): a replayed
-- key inserts nothing, so it counts nothing. A recorded event also wakes the consumers
-- LISTENing on identity_store_events (identity_store.consume): the server delivers the
-- notification at COMMIT (none on rollback), once per transaction however many events
-- it appends (same channel, same empty payload).
-- name: AppendEvent :one
WITH appended AS (
    INSERT INTO events (event_key, user_id, type, payload, occurred_at, recorded_at)
    VALUES (@event_key, sqlc.narg(user_id), @type, @payload, @occurred_at, @recorded_at)
    ON CONFLICT (event_key) DO NOTHING
    RETURNING *
), counted AS (
    INSERT INTO event_type_counts (type, shard, count)
    SELECT appended.type, pg_backend_pid() % 32, 1 FROM appended
    ON CONFLICT (type, shard) DO UPDATE SET count = event_type_counts.count + 1
)
SELECT appended.*
FROM appended
CROSS JOIN LATERAL (SELECT pg_notify('identity_store_events', '')) AS wake;

-- Bulk append through COPY, streamed from the parameter sets; the caller runs it,
-- AddEventTypeCounts and NotifyEventsAppended (COPY cannot notify) in one transaction.
-- name: AppendEvents :copyfrom
INSERT INTO events (event_key, user_id, type, payload, occurred_at, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6);

-- Wake the consumers at COMMIT, as AppendEvent does.
-- name: NotifyEventsAppended :exec
SELECT pg_notify('identity_store_events', '');

-- Add what a bulk append wrote to the counts: @types[i] gained @counts[i] events. The
-- caller sorts @types, so that two writers on one shard lock the rows in one order.
-- name: AddEventTypeCounts :exec
INSERT INTO event_type_counts (type, shard, count)
SELECT unnest(@types::text[]), pg_backend_pid() % 32, unnest(@counts::bigint[])
ON CONFLICT (type, shard) DO UPDATE SET count = event_type_counts.count + EXCLUDED.count;

-- Return the event with this id.
-- name: GetEventById :one
SELECT * FROM events
WHERE id = @id;

-- Return the event with this idempotency key.
-- name: GetEventByKey :one
SELECT * FROM events
WHERE event_key = @event_key;

-- A user's events in id order, strictly after @after_id (uses events_user_id_id_idx).
-- name: ListEventsForUser :many
SELECT * FROM events
WHERE user_id = @user_id::uuid AND id > @after_id
ORDER BY id
LIMIT @max_rows;

-- The global stream after the position (@after_tx_id, @after_id), in (tx_id, id) order.
-- Only rows of transactions older than every running one are returned: every such
-- transaction has ended, so no row can still appear below that horizon and the
-- (tx_id, id) order of what is returned only grows. (Paging by id alone skips rows: a
-- transaction that took its xid early may take its ids after a later one committed.)
-- The row comparison walks events_tx_id_id_idx.
-- name: ReadEventStream :many
SELECT * FROM events
WHERE (tx_id, id) > (@after_tx_id::bigint, @after_id::bigint)
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
ORDER BY tx_id, id
LIMIT @max_rows;

-- How many events there are of each type, optionally only of the given types: the sum
-- of each type's shards in event_type_counts, which the append queries keep.
-- name: CountEventsByType :many
SELECT type, sum(count)::bigint AS count
FROM event_type_counts
WHERE sqlc.narg(types)::text[] IS NULL OR type = ANY(sqlc.narg(types)::text[])
GROUP BY type
HAVING sum(count) > 0
ORDER BY type;

-- How far the stream's horizon (see ReadEventStream) holds events
-- back: the committed events at or above it (at most @max_rows
-- counted), the age of the oldest of them, and the age of the oldest
-- running transaction with an id (it holds the horizon there; other
-- roles' sessions count only with pg_read_all_stats).
-- name: GetStreamLag :one
WITH waiting AS (
    SELECT recorded_at FROM events
    WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint
    LIMIT @max_rows
)
SELECT
    (SELECT count(*) FROM waiting)::bigint AS pending_events,
    coalesce(extract(epoch FROM now() - (SELECT min(recorded_at) FROM waiting)), 0)::float8
        AS pending_seconds,
    coalesce((
        SELECT extract(epoch FROM now() - min(xact_start)) FROM pg_catalog.pg_stat_activity
        WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
    ), 0)::float8 AS oldest_transaction_seconds;
