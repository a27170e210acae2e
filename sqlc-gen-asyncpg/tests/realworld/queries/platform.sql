-- name: CreateApiKey :one
INSERT INTO api_keys (org_id, name, key_hash, scopes, created_ip, expires_at)
VALUES (@org_id, @name, @key_hash, @scopes, sqlc.narg(created_ip), sqlc.narg(expires_at))
RETURNING id, name, scopes, expires_at;

-- name: ApiKeyByHash :one
SELECT id, org_id, scopes FROM api_keys
WHERE key_hash = $1 AND (expires_at IS NULL OR expires_at > now());

-- name: ApiKeysWithScope :many
SELECT id, name FROM api_keys WHERE @scope::text = ANY(scopes) ORDER BY name;

-- name: RevokeApiKey :execrows
DELETE FROM api_keys WHERE id = $1;

-- name: ApiKeysFromNetwork :many
SELECT id, created_ip FROM api_keys WHERE created_ip << @network::cidr ORDER BY id;

-- name: RecordPageView :exec
INSERT INTO page_views (path, method, user_id, ip, duration_ms) VALUES ($1, $2, $3, $4, $5);

-- name: SlowestPaths :many
SELECT path, method, count(*) AS views,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95_ms
FROM page_views WHERE viewed_at > @since
GROUP BY path, method
ORDER BY p95_ms DESC
LIMIT 20;

-- name: ViewsPerHour :many
SELECT h AS hour, count(v.id) AS views
FROM generate_series(date_trunc('hour', @since::timestamptz), date_trunc('hour', now()), interval '1 hour') AS h
LEFT JOIN page_views v ON date_trunc('hour', v.viewed_at) = h
GROUP BY h ORDER BY h;

-- name: PageViewsByMethod :many
SELECT method, count(*) AS views FROM page_views GROUP BY method ORDER BY method;

-- name: DistinctVisitors :one
SELECT count(DISTINCT user_id) AS visitors, count(DISTINCT ip) AS addresses FROM page_views WHERE viewed_at > $1;

-- name: GetSetting :one
SELECT value FROM settings WHERE key = $1;

-- name: PutSetting :exec
INSERT INTO settings (key, value, "type") VALUES (@key, @value, @type)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "type" = EXCLUDED."type";

-- name: AllSettings :many
SELECT * FROM settings ORDER BY key;

-- name: Now :one
SELECT now()::timestamptz AS now;

-- name: ServerVersion :one
SELECT current_setting('server_version_num')::int AS version;

-- name: RandomUuid :one
SELECT gen_random_uuid() AS id;

-- name: Ping :one
SELECT 1 AS ok;

-- name: CountEverything :one
SELECT (SELECT count(*) FROM organizations) AS organizations,
       (SELECT count(*) FROM users) AS users,
       (SELECT count(*) FROM tasks) AS tasks,
       (SELECT count(*) FROM orders) AS orders;

-- name: UnionOfNames :many
SELECT name FROM organizations
UNION
SELECT full_name FROM users
ORDER BY 1;

-- name: RecentActivity :many
SELECT 'comment' AS kind, c.id, c.created_at AS at FROM comments c
UNION ALL
SELECT 'event', e.id, e.at FROM task_events e
ORDER BY at DESC
LIMIT 50;

-- name: SettingsForKeys :many
SELECT s.key, s.value FROM settings s WHERE s.key = ANY(@keys::text[]) ORDER BY s.key;
