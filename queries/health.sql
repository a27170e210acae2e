-- name: ReplicaLag :one
-- Seconds this server's replay is behind its primary: NULL on a primary, 0 when it
-- has replayed all it received, else the age of the last transaction it replayed.
SELECT (CASE
          WHEN NOT pg_is_in_recovery() THEN NULL
          WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
          ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())
        END)::float8 AS lag_seconds;
