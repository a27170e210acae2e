"""Tokens on PostgreSQL, through the generated queries of ``queries/tokens.sql``.

Only the SHA-256 of a secret is stored. Checking a presented secret always costs one
hash and one lookup on the unique index of ``token_hash``, whether the token is
unknown, expired or revoked, and the answer in each of those cases is the same.
"""

from __future__ import annotations

from uuid import UUID

from pydantic import SecretStr

from identity_store._generated import tokens as queries
from identity_store.domain.arguments import (
    MAX_BATCH,
    check_instance,
    check_single_use_kind,
    check_token_kind,
    check_uuid,
)
from identity_store.domain.errors import DatabaseError, InvalidInput, TokenInvalid
from identity_store.domain.models import (
    IssuedToken,
    NewToken,
    Token,
    TokenKind,
)
from identity_store.domain.token_secrets import hash_secret, new_secret
from identity_store.domain.validation import TIMESTAMP_MAX
from identity_store.infrastructure.persistence._base import Repository, check_limit

__all__ = ["PostgresTokenRepository"]


def _digest_of(secret: object) -> bytes:
    # A non-string is hashed as the empty string: same work, and it matches nothing
    # because no stored token has that digest's secret.
    return hash_secret(secret if isinstance(secret, str) else "")


class PostgresTokenRepository(Repository):
    """The :class:`~identity_store.domain.ports.TokenRepository` on PostgreSQL."""

    __slots__ = ()

    async def issue(self, new: NewToken) -> IssuedToken:
        check_instance(new, NewToken, "new")
        secret = new_secret()
        now = self._now()
        if now > TIMESTAMP_MAX - new.ttl:
            raise InvalidInput("ttl", "the token would expire after 9999-12-30T23:59:59.999999Z")
        with self._errors(user_id=new.user_id):
            token = await queries.create_token(
                self._db,
                user_id=new.user_id,
                kind=new.kind,
                token_hash=hash_secret(secret),
                scopes=list(new.scopes),
                now=now,
                expires_at=now + new.ttl,
            )
        if token is None:
            raise DatabaseError("the insert returned no row")
        return IssuedToken(token=token, secret=SecretStr(secret))

    async def get(self, token_id: UUID) -> Token | None:
        check_uuid(token_id, "token_id")
        with self._errors():
            return await queries.get_token_by_id(self._db, id=token_id)

    async def verify(self, secret: str, *, kind: TokenKind | None = None) -> Token | None:
        wanted = None if kind is None else check_token_kind(kind)
        digest = _digest_of(secret)
        now = self._now()
        with self._errors():
            token = await queries.get_live_token_by_hash(self._db, token_hash=digest, now=now)
        if token is None or (wanted is not None and token.kind is not wanted):
            return None
        return token

    async def touch(self, token_id: UUID) -> bool:
        check_uuid(token_id, "token_id")
        now = self._now()
        with self._errors():
            touched = await queries.touch_token(self._db, now=now, id=token_id)
        return touched > 0

    async def revoke(self, token_id: UUID) -> bool:
        check_uuid(token_id, "token_id")
        now = self._now()
        with self._errors():
            revoked = await queries.revoke_token(self._db, now=now, id=token_id)
        return revoked > 0

    async def revoke_all_for_user(self, user_id: UUID) -> int:
        check_uuid(user_id, "user_id")
        now = self._now()
        with self._errors():
            return await queries.revoke_live_tokens_for_user(self._db, now=now, user_id=user_id)

    async def list_live_for_user(self, user_id: UUID) -> list[Token]:
        check_uuid(user_id, "user_id")
        now = self._now()
        with self._errors():
            return await queries.list_live_tokens_for_user(self._db, user_id=user_id, now=now)

    async def consume(self, secret: str, *, kind: TokenKind) -> Token:
        wanted = check_single_use_kind(kind)
        digest = _digest_of(secret)
        now = self._now()
        with self._errors():
            token = await queries.consume_token(self._db, now=now, token_hash=digest, kind=wanted)
        if token is None:
            raise TokenInvalid()
        return token

    async def purge_expired(self, *, batch_size: int = 1000, max_batches: int = 100) -> int:
        check_limit(batch_size, field="batch_size", maximum=MAX_BATCH)
        check_limit(max_batches, field="max_batches", maximum=MAX_BATCH)
        cutoff = self._now()
        total = 0
        for _ in range(max_batches):
            with self._errors():
                deleted = await queries.purge_expired_tokens(
                    self._db, cutoff=cutoff, batch_size=batch_size
                )
            total += deleted
            if deleted < batch_size:
                break
        return total
