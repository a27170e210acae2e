-- name: AddComment :one
INSERT INTO comments (task_id, author_id, body) VALUES ($1, $2, $3) RETURNING id, created_at;

-- name: ListComments :many
SELECT c.id, c.body, c.created_at, c.edited_at, u.full_name AS author
FROM comments c JOIN users u ON u.id = c.author_id
WHERE c.task_id = $1
ORDER BY c.created_at;

-- name: EditComment :one
UPDATE comments SET body = @body, edited_at = now() WHERE id = @id AND author_id = @author_id
RETURNING *;

-- name: DeleteComment :execrows
DELETE FROM comments WHERE id = @id AND author_id = @author_id;

-- name: CommentCounts :many
SELECT task_id, count(*) AS comments, max(created_at) AS last_at
FROM comments WHERE task_id = ANY(@task_ids::bigint[]) GROUP BY task_id;

-- name: SearchComments :many
SELECT id, ts_headline('english', body, plainto_tsquery('english', @query)) AS snippet,
       ts_rank(to_tsvector('english', body), plainto_tsquery('english', @query)) AS score
FROM comments
WHERE to_tsvector('english', body) @@ plainto_tsquery('english', @query)
ORDER BY score DESC
LIMIT 10;

-- name: RecordTaskEvent :exec
INSERT INTO task_events (task_id, actor_id, kind, payload) VALUES ($1, $2, $3, $4);

-- name: TaskEvents :many
SELECT id, kind, payload, at FROM task_events WHERE task_id = $1 ORDER BY at, id;

-- name: TaskEventsOfKind :many
SELECT id, payload -> 'from' AS from_state, payload ->> 'to' AS to_state FROM task_events
WHERE task_id = $1 AND kind = $2 ORDER BY id;

-- name: TaskEventsWithPayloadKey :many
SELECT id, payload FROM task_events WHERE payload ? @key::text ORDER BY id;

-- name: TaskEventsMatching :many
SELECT id FROM task_events WHERE payload @> @filter::jsonb ORDER BY id;

-- name: TaskEventKinds :many
SELECT kind, count(*) AS events, min(at) AS first_at, max(at) AS last_at
FROM task_events GROUP BY kind HAVING count(*) >= @min_events ORDER BY events DESC;

-- name: PurgeTaskEvents :execrows
DELETE FROM task_events WHERE at < $1;

-- name: CommentsJson :one
SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'body', body) ORDER BY id), '[]'::jsonb) AS comments
FROM comments WHERE task_id = $1;
