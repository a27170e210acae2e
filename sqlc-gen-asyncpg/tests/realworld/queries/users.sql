-- name: CreateUser :one
INSERT INTO users (org_id, email, full_name, role, tags, attrs)
VALUES (@org_id, @email, @full_name, @role, @tags, sqlc.narg(attrs))
RETURNING *;

-- name: GetUser :one
SELECT * FROM users WHERE id = $1;

-- name: GetUserByEmail :one
SELECT * FROM users WHERE org_id = @org_id AND email = @email;

-- name: ListUsers :many
SELECT * FROM users WHERE org_id = @org_id ORDER BY full_name, id;

-- name: ListUsersByIds :many
SELECT id, email, full_name FROM users WHERE id = ANY(@ids::uuid[]) ORDER BY email;

-- name: ListUsersBySlice :many
SELECT id, full_name FROM users WHERE id IN (sqlc.slice(ids)) ORDER BY full_name;

-- name: ListUsersNotInRoles :many
SELECT id, role FROM users WHERE org_id = @org_id AND role NOT IN (sqlc.slice(roles));

-- name: SearchUsers :many
SELECT id, email, full_name FROM users
WHERE org_id = @org_id AND (full_name ILIKE '%' || @term::text || '%' OR email ILIKE '%' || @term::text || '%')
ORDER BY full_name
LIMIT 20;

-- name: UpdateUserRole :one
UPDATE users SET role = @role WHERE id = @id RETURNING role;

-- name: TouchUser :exec
UPDATE users SET last_seen_at = now() WHERE id = $1;

-- name: DeactivateUsersNotSeenSince :execrows
UPDATE users SET is_active = false WHERE last_seen_at < @cutoff AND is_active;

-- name: AddUserTag :exec
UPDATE users SET tags = array_append(tags, @tag::text) WHERE id = @id AND NOT (@tag::text = ANY(tags));

-- name: UsersWithTag :many
SELECT id, tags FROM users WHERE tags @> ARRAY[@tag::text] ORDER BY id;

-- name: UserAttribute :one
SELECT attrs -> @name::text AS value FROM users WHERE id = @id;

-- name: UserAttributes :one
SELECT attrs FROM users WHERE id = $1;

-- name: CountUsersByRole :many
SELECT role, count(*) AS members, count(*) FILTER (WHERE is_active) AS active
FROM users WHERE org_id = $1 GROUP BY role ORDER BY role;

-- name: UserRoles :many
SELECT DISTINCT role FROM users WHERE org_id = $1;

-- name: List :many
-- A query named like a builtin: its function must not shadow list.
SELECT id, email FROM users ORDER BY email LIMIT 10;

-- name: Type :one
SELECT "type" FROM settings WHERE key = $1;

-- name: Date :one
SELECT created_at::date AS day FROM users WHERE id = $1;

-- name: DeleteInactiveUsers :many
DELETE FROM users WHERE NOT is_active AND org_id = $1 RETURNING id;

-- name: CopyUsers :copyfrom
INSERT INTO users (org_id, email, full_name, role, tags) VALUES ($1, $2, $3, $4, $5);

-- name: BatchDeactivate :batchexec
UPDATE users SET is_active = false WHERE id = $1;

-- name: BatchUserEmail :batchone
SELECT email FROM users WHERE id = $1;
