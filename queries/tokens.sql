-- Store a new token and return the stored row.
-- name: CreateToken :one
INSERT INTO tokens (user_id, kind, token_hash, scopes, created_at, expires_at)
VALUES (@user_id, @kind, @token_hash, @scopes::text[], @now::timestamptz, @expires_at::timestamptz)
RETURNING *;

-- Return the token with this id, live or not.
-- name: GetTokenById :one
SELECT * FROM tokens
WHERE id = @id;

-- Return the live token with this hash: one lookup on tokens_token_hash_key, the same
-- work whether the token is unknown, expired or revoked.
-- name: GetLiveTokenByHash :one
SELECT * FROM tokens
WHERE token_hash = @token_hash
  AND revoked_at IS NULL
  AND expires_at > @now::timestamptz;

-- A user's live tokens, oldest first (uses tokens_user_id_live_idx).
-- name: ListLiveTokensForUser :many
SELECT * FROM tokens
WHERE user_id = @user_id
  AND revoked_at IS NULL
  AND expires_at > @now::timestamptz
ORDER BY created_at, id;

-- Record that a token was used; returns 1 when the token exists.
-- name: TouchToken :execrows
UPDATE tokens
SET last_used_at = greatest(last_used_at, @now::timestamptz)
WHERE id = @id;

-- Revoke one token; returns 1 when it was live and is now revoked.
-- name: RevokeToken :execrows
UPDATE tokens
SET revoked_at = @now::timestamptz
WHERE id = @id AND revoked_at IS NULL;

-- Revoke every live token of a user; returns how many were revoked.
-- name: RevokeLiveTokensForUser :execrows
UPDATE tokens
SET revoked_at = @now::timestamptz
WHERE user_id = @user_id
  AND revoked_at IS NULL
  AND expires_at > @now::timestamptz;

-- Use up a single-use token in one statement: of many concurrent callers, the first
-- to lock the row revokes it and gets it back; the others re-check the WHERE clause
-- after that commit and get nothing.
-- name: ConsumeToken :one
UPDATE tokens
SET revoked_at   = @now::timestamptz,
    last_used_at = @now::timestamptz
WHERE token_hash = @token_hash
  AND kind = @kind
  AND kind IN ('email_verification', 'password_reset')
  AND revoked_at IS NULL
  AND expires_at > @now::timestamptz
RETURNING *;

-- Delete at most @batch_size tokens that expired before @cutoff; rows locked by
-- another purge are skipped, so purges can run side by side. Returns the count.
-- name: PurgeExpiredTokens :execrows
DELETE FROM tokens
WHERE id IN (
    SELECT id FROM tokens
    WHERE expires_at <= @cutoff::timestamptz
    ORDER BY expires_at
    LIMIT @batch_size
    FOR UPDATE SKIP LOCKED
);
