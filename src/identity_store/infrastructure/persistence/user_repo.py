"""Users on PostgreSQL, through the generated queries of ``queries/users.sql``."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from pydantic import SecretStr

from identity_store._generated import users as queries
from identity_store.domain.arguments import MAX_VERSION, check_instance, check_uuid
from identity_store.domain.errors import (
    ConcurrencyConflict,
    DatabaseError,
    UserNotFound,
)
from identity_store.domain.models import NewUser, User, UserPage, UserUpdate
from identity_store.domain.pagination import decode_user_cursor, encode_user_cursor
from identity_store.domain.validation import email_key
from identity_store.infrastructure.persistence._base import Repository, check_limit

__all__ = ["PostgresUserRepository"]

_BEFORE_EVERY_USER = (datetime(1, 1, 1, tzinfo=UTC), UUID(int=0))


def _storable(text: object) -> bool:
    if not isinstance(text, str) or "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


class PostgresUserRepository(Repository):
    """The :class:`~identity_store.domain.ports.UserRepository` on PostgreSQL."""

    __slots__ = ()

    async def register(self, new: NewUser) -> User:
        check_instance(new, NewUser, "new")
        now = self._now()
        with self._errors(email=new.email):
            user = await queries.create_user(
                self._db,
                email=new.email,
                display_name=new.display_name,
                password_hash=_reveal(new.password_hash),
                now=now,
            )
        if user is None:
            raise DatabaseError("the insert returned no row")
        return user

    async def get(self, user_id: UUID) -> User | None:
        check_uuid(user_id, "user_id")
        with self._errors():
            return await queries.get_user_by_id(self._db, id=user_id)

    async def get_by_email(self, email: str) -> User | None:
        if not _storable(email):
            # No stored address can equal text PostgreSQL could not have stored.
            return None
        with self._errors():
            return await queries.get_user_by_email(self._db, email_key=email_key(email))

    async def update(self, user_id: UUID, changes: UserUpdate, *, expected_version: int) -> User:
        check_uuid(user_id, "user_id")
        check_instance(changes, UserUpdate, "changes")
        check_limit(expected_version, field="expected_version", maximum=MAX_VERSION)
        now = self._now()
        with self._errors(email=changes.email):
            updated = await queries.update_user(
                self._db,
                email=changes.email,
                display_name=changes.display_name,
                password_hash=_reveal(changes.password_hash),
                new_status=changes.status,
                now=now,
                id=user_id,
                expected_version=expected_version,
            )
            if updated is not None:
                return updated
            current = await queries.get_user_by_id(self._db, id=user_id)
        if current is None:
            raise UserNotFound(user_id)
        raise ConcurrencyConflict(user_id, expected=expected_version, actual=current.version)

    async def disable(self, user_id: UUID) -> User:
        check_uuid(user_id, "user_id")
        now = self._now()
        with self._errors():
            user = await queries.disable_user(self._db, now=now, id=user_id)
            if user is None:
                user = await queries.get_user_by_id(self._db, id=user_id)
        if user is None:
            raise UserNotFound(user_id)
        return user

    async def delete(self, user_id: UUID) -> bool:
        check_uuid(user_id, "user_id")
        with self._errors():
            deleted = await queries.delete_user(self._db, id=user_id)
        return deleted > 0

    async def list_page(self, *, limit: int = 50, cursor: str | None = None) -> UserPage:
        # Keyset pagination on (created_at, id): one index range scan per page, however deep.
        check_limit(limit)
        after_created_at, after_id = (
            _BEFORE_EVERY_USER if cursor is None else decode_user_cursor(cursor)
        )
        with self._errors():
            found = await queries.list_users(
                self._db,
                after_created_at=after_created_at,
                after_id=after_id,
                max_rows=limit + 1,
            )
        items = tuple(found[:limit])
        next_cursor = (
            encode_user_cursor(items[-1].created_at, items[-1].id) if len(found) > limit else None
        )
        return UserPage(items=items, next_cursor=next_cursor)
