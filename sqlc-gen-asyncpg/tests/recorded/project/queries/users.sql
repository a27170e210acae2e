-- name: GetUserByEmail :one
-- Return the user with this e-mail address.
SELECT * FROM users WHERE email = @email;

-- name: ListUserEmails :many
SELECT id, email FROM users WHERE status = $1 ORDER BY id;

-- name: DisableUser :execrows
UPDATE users SET status = 'disabled' WHERE id = @id;
