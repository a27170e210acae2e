-- Insert a new active user at version 1 and return the stored row.
-- name: CreateUser :one
INSERT INTO users (email, display_name, password_hash, status, version, created_at, updated_at)
VALUES (@email, @display_name, sqlc.narg(password_hash), 'active', 1, @now::timestamptz, @now::timestamptz)
RETURNING *;

-- Return the user with this id.
-- name: GetUserById :one
SELECT * FROM users
WHERE id = @id;

-- Return the user with this e-mail key (identity_store.domain.validation.email_key,
-- computed by the caller; uses users_email_key_key).
-- name: GetUserByEmail :one
SELECT * FROM users
WHERE email_key = @email_key::text;

-- Apply the given changes (NULL keeps a column) if the stored version is still
-- @expected_version; the version goes up by one. No row back: missing or stale.
-- updated_at never goes back: @now comes from the calling host's clock, which may be
-- behind the one that wrote the row (and users_updated_after_created must hold).
-- name: UpdateUser :one
UPDATE users
SET email         = coalesce(sqlc.narg(email), email),
    display_name  = coalesce(sqlc.narg(display_name), display_name),
    password_hash = coalesce(sqlc.narg(password_hash), password_hash),
    status        = coalesce(sqlc.narg(new_status)::user_status, status),
    version       = version + 1,
    updated_at    = greatest(updated_at, @now::timestamptz)
WHERE id = @id AND version = @expected_version
RETURNING *;

-- Disable an active user (the version goes up by one; updated_at never goes back, as
-- in UpdateUser). No row back: missing or already disabled.
-- name: DisableUser :one
UPDATE users
SET status     = 'disabled',
    version    = version + 1,
    updated_at = greatest(updated_at, @now::timestamptz)
WHERE id = @id AND status = 'active'
RETURNING *;

-- Delete a user; its tokens go with it and its events keep a NULL user_id.
-- name: DeleteUser :execrows
DELETE FROM users
WHERE id = @id;

-- One page of users in (created_at, id) order, strictly after the cursor; the row
-- comparison walks users_created_at_id_idx, so every page costs the same.
-- name: ListUsers :many
SELECT * FROM users
WHERE (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @max_rows;
