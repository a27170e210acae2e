"""The contenders: five ways to do the same work against the same database.

Every contender takes the same, already validated inputs (``NewUser``, ``NewEvent``,
...) and returns the same pydantic models the repositories return (the generated
layer returns its own row models, which is what calling it directly gives you), so
that the only difference measured is the layer in between:

- ``baseline``: hand-written SQL on asyncpg, building the domain models with
  ``Model.model_validate(dict(row))``; what a careful hand-written data layer does;
- ``generated``: the sqlc-generated functions called directly;
- ``repository``: the identity-store repositories (validation of arguments, error
  translation, the clock, conversion to domain models);
- ``sqla_orm``: SQLAlchemy 2 async ORM on asyncpg, one session per operation,
  converting the ORM objects to the same domain models;
- ``sqla_core``: SQLAlchemy 2 async Core on asyncpg, one connection checkout per
  operation, converting rows to the same domain models.

Each contender is built over one "executor": an asyncpg connection (concurrency 1) or
pool (concurrency 16); for SQLAlchemy an engine whose pool holds 1 or 16 connections.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from bench._compat import gen_events, gen_tokens, gen_users
from identity_store import (
    Event,
    NewEvent,
    NewUser,
    PostgresEventRepository,
    PostgresTokenRepository,
    PostgresUserRepository,
    Token,
    TokenInvalid,
    TokenKind,
    User,
    UserUpdate,
)
from identity_store.domain.clock import Clock, utc_now
from identity_store.domain.validation import email_key

__all__ = [
    "CONTENDERS",
    "BaselineContender",
    "Contender",
    "GeneratedContender",
    "RepositoryContender",
    "SqlaCoreContender",
    "SqlaOrmContender",
    "StreamPosition",
]


@dataclass(frozen=True, slots=True)
class StreamPosition:
    """Where a page of the event stream starts: the repository's opaque cursor, and the
    id of the last event before it for the layers that page by id."""

    cursor: str | None
    after_tx_id: int
    after_id: int


EVENT_COLUMNS = ("event_key", "user_id", "type", "payload", "occurred_at", "recorded_at")


def event_records(events: Iterable[NewEvent], now: datetime) -> Iterator[tuple[Any, ...]]:
    """The rows of ``events`` as tuples in ``EVENT_COLUMNS`` order, drawn as they are read."""
    return ((e.event_key, e.user_id, e.type, e.payload, e.occurred_at or now, now) for e in events)


async def repository_stream_page(
    repo: PostgresEventRepository, cursor: Any, limit: int
) -> tuple[list[Any], Any]:
    """One page of the repository's stream and the cursor after it (None at the end)."""
    page = await repo.read_stream(after=cursor, limit=limit)
    events = list(page.events)
    return events, (page.next_cursor if len(events) == limit else None)


def reveal(secret: Any) -> str | None:
    """The text of a password hash held in a ``SecretStr`` (or None)."""
    return None if secret is None else secret.get_secret_value()


def columns_of(model: NewUser | UserUpdate, mapped: Any = None) -> dict[str, Any]:
    """A new user's or an update's fields as column values (the hash revealed); with
    ``mapped`` (an SQLAlchemy table), only the columns it maps."""
    return {
        name: reveal(value) if name == "password_hash" else value
        for name, value in model
        if mapped is None or name in mapped.c
    }


# An event as a caller holds it before building a NewEvent: (event_key, user_id, type, payload).
PlainEvent = tuple[UUID, UUID | None, str, dict[str, Any]]


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class Contender:
    """One way of doing each workload; ``NotImplemented`` workloads are left out."""

    name = ""
    label = ""

    def __init__(self, db: Any, *, clock: Clock = utc_now) -> None:
        self.db = db
        self.clock = clock

    def set_clock(self, clock: Clock) -> None:
        self.clock = clock

    async def get_user(self, user_id: UUID) -> Any:
        raise NotImplementedError

    async def get_user_by_email(self, email: str) -> Any:
        raise NotImplementedError

    async def register(self, new: NewUser) -> Any:
        raise NotImplementedError

    async def update_user(self, user_id: UUID, changes: UserUpdate, expected_version: int) -> Any:
        raise NotImplementedError

    async def verify_token(self, secret: str) -> Any:
        raise NotImplementedError

    async def consume_token(self, secret: str) -> Any:
        raise NotImplementedError

    async def append_event(self, new: NewEvent) -> Any:
        raise NotImplementedError

    async def append_events(self, events: Iterable[NewEvent]) -> int:
        raise NotImplementedError

    async def list_user_events(self, user_id: UUID, limit: int) -> list[Any]:
        raise NotImplementedError

    async def stream_page(self, position: StreamPosition, limit: int) -> list[Any]:
        raise NotImplementedError

    # End to end (issue 21): the caller's plain values in; each contender builds its own
    # inputs from them. The library's way is to build NewUser / UserUpdate / NewEvent,
    # which check every value; hand-written asyncpg (below) sends tuples unchecked. Bulk
    # inputs are built as they are sent (a generator), where the contender's call takes
    # one: a COPY then overlaps the caller's work with the server's.

    async def register_plain(self, email: str, display_name: str) -> Any:
        return await self.register(NewUser(email=email, display_name=display_name))

    async def update_user_plain(
        self, user_id: UUID, display_name: str, expected_version: int
    ) -> Any:
        changes = UserUpdate(display_name=display_name)
        return await self.update_user(user_id, changes, expected_version)

    async def append_event_plain(self, event: PlainEvent) -> Any:
        key, user_id, type_, payload = event
        return await self.append_event(
            NewEvent(event_key=key, user_id=user_id, type=type_, payload=payload)
        )

    async def append_events_plain(self, events: Sequence[PlainEvent]) -> int:
        return await self.append_events(
            NewEvent(event_key=k, user_id=u, type=t, payload=p) for k, u, t, p in events
        )

    async def close(self) -> None:
        return None


# ---------------------------------------------------------------------------- baseline

# What the domain models read, plus what the contenders need besides (a token's hash to
# compare, an event's transaction id for the stream's position).
_USER_COLUMNS = ", ".join(User.model_fields)
_TOKEN_COLUMNS = ", ".join([*Token.model_fields, "token_hash"])
_EVENT_COLUMNS = ", ".join([*Event.model_fields, "tx_id"])

SQL_USER_BY_ID = f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1"
SQL_USER_BY_EMAIL = f"SELECT {_USER_COLUMNS} FROM users WHERE email_key = $1"
SQL_REGISTER = (
    "INSERT INTO users (email, display_name, password_hash, status, version, created_at,"
    " updated_at) VALUES ($1, $2, $3, 'active', 1, $4, $4)"
    f" RETURNING {_USER_COLUMNS}"
)
SQL_UPDATE = (
    "UPDATE users SET email = coalesce($1, email), display_name = coalesce($2, display_name),"
    " password_hash = coalesce($3, password_hash),"
    " status = coalesce($4::user_status, status), version = version + 1,"
    " updated_at = greatest(updated_at, $5)"
    f" WHERE id = $6 AND version = $7 RETURNING {_USER_COLUMNS}"
)
SQL_VERIFY = (
    f"SELECT {_TOKEN_COLUMNS} FROM tokens"
    " WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2"
)
SQL_CONSUME = (
    "UPDATE tokens SET revoked_at = $1, last_used_at = $1"
    " WHERE token_hash = $2 AND kind = $3 AND revoked_at IS NULL AND expires_at > $1"
    f" RETURNING {_TOKEN_COLUMNS}"
)
SQL_APPEND = (
    "INSERT INTO events (event_key, user_id, type, payload, occurred_at, recorded_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_key) DO NOTHING"
    f" RETURNING {_EVENT_COLUMNS}"
)
SQL_EVENT_BY_KEY = f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_key = $1"
SQL_APPEND_MANY = (
    "INSERT INTO events (event_key, user_id, type, payload, occurred_at, recorded_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
SQL_USER_EVENTS = (
    f"SELECT {_EVENT_COLUMNS} FROM events WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3"
)
STREAM_HORIZON = "tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
SQL_STREAM = (
    f"SELECT {_EVENT_COLUMNS} FROM events WHERE (tx_id, id) > ($1, $2) AND {STREAM_HORIZON}"
    " ORDER BY tx_id, id LIMIT $3"
)
SQL_ALL_EVENTS = f"SELECT {_EVENT_COLUMNS} FROM events WHERE {STREAM_HORIZON} ORDER BY tx_id, id"


def _same_event(row: Any, new: NewEvent) -> bool:
    same_user = row["user_id"] is None or row["user_id"] == new.user_id
    return same_user and row["type"] == new.type and row["payload"] == new.payload


class BaselineContender(Contender):
    name = "baseline"
    label = "hand-written asyncpg + pydantic"

    async def get_user(self, user_id: UUID) -> User | None:
        row = await self.db.fetchrow(SQL_USER_BY_ID, user_id)
        return None if row is None else User.model_validate(dict(row))

    async def get_user_by_email(self, email: str) -> User | None:
        row = await self.db.fetchrow(SQL_USER_BY_EMAIL, email_key(email))
        return None if row is None else User.model_validate(dict(row))

    async def register(self, new: NewUser) -> User:
        row = await self.db.fetchrow(
            SQL_REGISTER, new.email, new.display_name, reveal(new.password_hash), self.clock()
        )
        return User.model_validate(dict(row))

    async def update_user(self, user_id: UUID, changes: UserUpdate, expected_version: int) -> User:
        row = await self.db.fetchrow(
            SQL_UPDATE,
            changes.email,
            changes.display_name,
            reveal(changes.password_hash),
            changes.status,
            self.clock(),
            user_id,
            expected_version,
        )
        if row is None:
            raise RuntimeError("stale version")
        return User.model_validate(dict(row))

    async def verify_token(self, secret: str) -> Token | None:
        row = await self.db.fetchrow(SQL_VERIFY, digest(secret), self.clock())
        return None if row is None else Token.model_validate(dict(row))

    async def consume_token(self, secret: str) -> Token | None:
        row = await self.db.fetchrow(
            SQL_CONSUME, self.clock(), digest(secret), TokenKind.EMAIL_VERIFICATION.value
        )
        return None if row is None else Token.model_validate(dict(row))

    async def append_event(self, new: NewEvent) -> Event:
        now = self.clock()
        row = await self.db.fetchrow(
            SQL_APPEND,
            new.event_key,
            new.user_id,
            new.type,
            new.payload,
            new.occurred_at or now,
            now,
        )
        if row is None:
            row = await self.db.fetchrow(SQL_EVENT_BY_KEY, new.event_key)
            if row is None or not _same_event(row, new):
                raise RuntimeError("event key conflict")
        return Event.model_validate(dict(row))

    async def append_events(self, events: Iterable[NewEvent]) -> int:
        status = await self.db.copy_records_to_table(
            "events", records=event_records(events, self.clock()), columns=EVENT_COLUMNS
        )
        return int(status.rpartition(" ")[2])

    async def list_user_events(self, user_id: UUID, limit: int) -> list[Event]:
        rows = await self.db.fetch(SQL_USER_EVENTS, user_id, 0, limit)
        return [Event.model_validate(dict(row)) for row in rows]

    async def stream_page(self, position: StreamPosition, limit: int) -> list[Event]:
        rows = await self.db.fetch(SQL_STREAM, position.after_tx_id, position.after_id, limit)
        return [Event.model_validate(dict(row)) for row in rows]

    async def register_plain(self, email: str, display_name: str) -> User:
        row = await self.db.fetchrow(SQL_REGISTER, email, display_name, None, self.clock())
        return User.model_validate(dict(row))

    async def update_user_plain(
        self, user_id: UUID, display_name: str, expected_version: int
    ) -> User:
        row = await self.db.fetchrow(
            SQL_UPDATE, None, display_name, None, None, self.clock(), user_id, expected_version
        )
        if row is None:
            raise RuntimeError("stale version")
        return User.model_validate(dict(row))

    async def append_event_plain(self, event: PlainEvent) -> Event:
        key, user_id, type_, payload = event
        now = self.clock()
        row = await self.db.fetchrow(SQL_APPEND, key, user_id, type_, payload, now, now)
        if row is None:
            row = await self.db.fetchrow(SQL_EVENT_BY_KEY, key)
            same_user = row is not None and row["user_id"] in (None, user_id)
            if not same_user or row["type"] != type_ or row["payload"] != payload:
                raise RuntimeError("event key conflict")
        return Event.model_validate(dict(row))

    async def append_events_plain(self, events: Sequence[PlainEvent]) -> int:
        now = self.clock()
        status = await self.db.copy_records_to_table(
            "events", records=((*e, now, now) for e in events), columns=EVENT_COLUMNS
        )
        return int(status.rpartition(" ")[2])


class ExecutemanyContender(BaselineContender):
    """Bulk append only: the same rows through one prepared INSERT per row."""

    name = "executemany"
    label = "asyncpg executemany"

    async def append_events(self, events: Iterable[NewEvent]) -> int:
        rows = list(event_records(events, self.clock()))
        await self.db.executemany(SQL_APPEND_MANY, rows)
        return len(rows)

    async def append_events_plain(self, events: Sequence[PlainEvent]) -> int:
        now = self.clock()
        await self.db.executemany(SQL_APPEND_MANY, ((*e, now, now) for e in events))
        return len(events)


# --------------------------------------------------------------------------- generated


class GeneratedContender(Contender):
    name = "generated"
    label = "sqlc-generated functions"

    async def get_user(self, user_id: UUID) -> Any:
        return await gen_users.get_user_by_id(self.db, id=user_id)

    async def get_user_by_email(self, email: str) -> Any:
        return await gen_users.get_user_by_email(self.db, email_key=email_key(email))

    async def register(self, new: NewUser) -> Any:
        return await gen_users.create_user(self.db, **columns_of(new), now=self.clock())

    async def update_user(self, user_id: UUID, changes: UserUpdate, expected_version: int) -> Any:
        values = columns_of(changes)
        values["new_status"] = values.pop("status")
        row = await gen_users.update_user(
            self.db,
            **values,
            now=self.clock(),
            id=user_id,
            expected_version=expected_version,
        )
        if row is None:
            raise RuntimeError("stale version")
        return row

    async def verify_token(self, secret: str) -> Any:
        return await gen_tokens.get_live_token_by_hash(
            self.db, token_hash=digest(secret), now=self.clock()
        )

    async def consume_token(self, secret: str) -> Any:
        return await gen_tokens.consume_token(
            self.db,
            now=self.clock(),
            token_hash=digest(secret),
            kind=TokenKind.EMAIL_VERIFICATION,
        )

    async def append_event(self, new: NewEvent) -> Any:
        now = self.clock()
        row = await gen_events.append_event(
            self.db,
            event_key=new.event_key,
            user_id=new.user_id,
            type=new.type,
            payload=new.payload,
            occurred_at=new.occurred_at or now,
            recorded_at=now,
        )
        if row is None:
            row = await gen_events.get_event_by_key(self.db, event_key=new.event_key)
            if row is None:
                raise RuntimeError("event key conflict")
        return row

    async def append_events(self, events: Iterable[NewEvent]) -> int:
        now = self.clock()
        return await gen_events.append_events(
            self.db,
            params=(
                gen_events.AppendEventsParams(
                    event_key=e.event_key,
                    user_id=e.user_id,
                    type=e.type,
                    payload=e.payload,
                    occurred_at=e.occurred_at or now,
                    recorded_at=now,
                )
                for e in events
            ),
        )

    async def list_user_events(self, user_id: UUID, limit: int) -> list[Any]:
        return await gen_events.list_events_for_user(
            self.db, user_id=user_id, after_id=0, max_rows=limit
        )

    async def stream_page(self, position: StreamPosition, limit: int) -> list[Any]:
        return await gen_events.read_event_stream(
            self.db, after_tx_id=position.after_tx_id, after_id=position.after_id, max_rows=limit
        )


# -------------------------------------------------------------------------- repository


class RepositoryContender(Contender):
    name = "repository"
    label = "identity-store repositories"

    def __init__(self, db: Any, *, clock: Clock = utc_now) -> None:
        super().__init__(db, clock=clock)
        self.set_clock(clock)

    def set_clock(self, clock: Clock) -> None:
        self.clock = clock
        self.users = PostgresUserRepository(self.db, clock=clock)
        self.tokens = PostgresTokenRepository(self.db, clock=clock)
        self.events = PostgresEventRepository(self.db, clock=clock)

    async def get_user(self, user_id: UUID) -> Any:
        return await self.users.get(user_id)

    async def get_user_by_email(self, email: str) -> Any:
        return await self.users.get_by_email(email)

    async def register(self, new: NewUser) -> Any:
        return await self.users.register(new)

    async def update_user(self, user_id: UUID, changes: UserUpdate, expected_version: int) -> Any:
        return await self.users.update(user_id, changes, expected_version=expected_version)

    async def verify_token(self, secret: str) -> Any:
        return await self.tokens.verify(secret)

    async def consume_token(self, secret: str) -> Any:
        # The port raises where the other layers return None (free when nothing is raised).
        try:
            return await self.tokens.consume(secret, kind=TokenKind.EMAIL_VERIFICATION)
        except TokenInvalid:
            return None

    async def append_event(self, new: NewEvent) -> Any:
        return await self.events.append(new)

    async def append_events(self, events: Iterable[NewEvent]) -> int:
        return await self.events.append_many(events)

    async def list_user_events(self, user_id: UUID, limit: int) -> list[Any]:
        return list(await self.events.list_for_user(user_id, limit=limit))

    async def stream_page(self, position: StreamPosition, limit: int) -> list[Any]:
        events, _ = await repository_stream_page(self.events, position.cursor, limit)
        return events


# -------------------------------------------------------------------------- SQLAlchemy


class _Sqla(Contender):
    """Shared by the two SQLAlchemy contenders: ``db`` is an ``AsyncEngine``."""

    def __init__(self, db: Any, *, clock: Clock = utc_now) -> None:
        from sqlalchemy.ext.asyncio import async_sessionmaker

        super().__init__(db, clock=clock)
        self.sessions = async_sessionmaker(db, expire_on_commit=False)

    async def close(self) -> None:
        await self.db.dispose()


class SqlaOrmContender(_Sqla):
    name = "sqla_orm"
    label = "SQLAlchemy 2 async ORM"

    async def get_user(self, user_id: UUID) -> User | None:
        from bench.sqla import UserRow

        async with self.sessions() as session:
            found = await session.get(UserRow, user_id)
            return None if found is None else User.model_validate(found)

    async def get_user_by_email(self, email: str) -> User | None:
        from sqlalchemy import select

        from bench.sqla import UserRow

        query = select(UserRow).where(UserRow.email_key == email_key(email))
        async with self.sessions() as session:
            found = (await session.scalars(query)).one_or_none()
            return None if found is None else User.model_validate(found)

    async def register(self, new: NewUser) -> User:
        from bench.sqla import UserRow

        now = self.clock()
        row = UserRow(
            **columns_of(new, UserRow.__table__),
            status="active",
            version=1,
            created_at=now,
            updated_at=now,
        )
        async with self.sessions.begin() as session:
            session.add(row)
            await session.flush()
            return User.model_validate(row)

    async def update_user(self, user_id: UUID, changes: UserUpdate, expected_version: int) -> User:
        from sqlalchemy import func, update

        from bench.sqla import UserRow

        values: dict[str, Any] = {
            "version": UserRow.version + 1,
            "updated_at": func.greatest(UserRow.updated_at, self.clock()),
        }
        values.update(
            (name, value)
            for name, value in columns_of(changes, UserRow.__table__).items()
            if value is not None
        )
        query = (
            update(UserRow)
            .where(UserRow.id == user_id, UserRow.version == expected_version)
            .values(values)
            .returning(UserRow)
        )
        async with self.sessions.begin() as session:
            found = (await session.scalars(query)).one_or_none()
            if found is None:
                raise RuntimeError("stale version")
            return User.model_validate(found)

    async def verify_token(self, secret: str) -> Token | None:
        from sqlalchemy import select

        from bench.sqla import TokenRow

        query = select(TokenRow).where(
            TokenRow.token_hash == digest(secret),
            TokenRow.revoked_at.is_(None),
            TokenRow.expires_at > self.clock(),
        )
        async with self.sessions() as session:
            found = (await session.scalars(query)).one_or_none()
            return None if found is None else Token.model_validate(found)

    async def consume_token(self, secret: str) -> Token | None:
        from sqlalchemy import update

        from bench.sqla import TokenRow

        now = self.clock()
        query = (
            update(TokenRow)
            .where(
                TokenRow.token_hash == digest(secret),
                TokenRow.kind == TokenKind.EMAIL_VERIFICATION.value,
                TokenRow.revoked_at.is_(None),
                TokenRow.expires_at > now,
            )
            .values(revoked_at=now, last_used_at=now)
            .returning(TokenRow)
        )
        async with self.sessions.begin() as session:
            found = (await session.scalars(query)).one_or_none()
            return None if found is None else Token.model_validate(found)

    async def append_event(self, new: NewEvent) -> Event:
        from sqlalchemy import select
        from sqlalchemy.dialects.postgresql import insert

        from bench.sqla import EventRow

        now = self.clock()
        query = (
            insert(EventRow)
            .values(
                event_key=new.event_key,
                user_id=new.user_id,
                type=new.type,
                payload=new.payload,
                occurred_at=new.occurred_at or now,
                recorded_at=now,
            )
            .on_conflict_do_nothing(index_elements=[EventRow.event_key])
            .returning(EventRow)
        )
        async with self.sessions.begin() as session:
            found = (await session.scalars(query)).one_or_none()
            if found is None:
                by_key = select(EventRow).where(EventRow.event_key == new.event_key)
                found = (await session.scalars(by_key)).one_or_none()
                if found is None or not _same_event(vars(found), new):
                    raise RuntimeError("event key conflict")
            return Event.model_validate(found)

    async def append_events(self, events: Iterable[NewEvent]) -> int:
        from sqlalchemy import insert

        from bench.sqla import EventRow

        now = self.clock()
        rows = [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in event_records(events, now)]
        async with self.sessions.begin() as session:
            await session.execute(insert(EventRow), rows)
        return len(rows)

    async def list_user_events(self, user_id: UUID, limit: int) -> list[Event]:
        from sqlalchemy import select

        from bench.sqla import EventRow

        query = (
            select(EventRow)
            .where(EventRow.user_id == user_id, EventRow.id > 0)
            .order_by(EventRow.id)
            .limit(limit)
        )
        async with self.sessions() as session:
            return [Event.model_validate(found) for found in await session.scalars(query)]

    async def stream_page(self, position: StreamPosition, limit: int) -> list[Event]:
        from sqlalchemy import select, text, tuple_

        from bench.sqla import EventRow

        after = tuple_(EventRow.tx_id, EventRow.id) > (position.after_tx_id, position.after_id)
        query = (
            select(EventRow)
            .where(after, text(STREAM_HORIZON))
            .order_by(EventRow.tx_id, EventRow.id)
            .limit(limit)
        )
        async with self.sessions() as session:
            return [Event.model_validate(found) for found in await session.scalars(query)]


class SqlaCoreContender(_Sqla):
    name = "sqla_core"
    label = "SQLAlchemy 2 async Core"

    async def _one(self, query: Any, model: Any, *, write: bool = False) -> Any:
        opener = self.db.begin() if write else self.db.connect()
        async with opener as conn:
            row = (await conn.execute(query)).first()
            return None if row is None else model.model_validate(row._mapping)

    async def get_user(self, user_id: UUID) -> User | None:
        from sqlalchemy import select

        from bench.sqla import UserRow

        users = UserRow.__table__
        return await self._one(select(users).where(users.c.id == user_id), User)

    async def get_user_by_email(self, email: str) -> User | None:
        from sqlalchemy import select

        from bench.sqla import UserRow

        users = UserRow.__table__
        query = select(users).where(users.c.email_key == email_key(email))
        return await self._one(query, User)

    async def register(self, new: NewUser) -> User:
        from sqlalchemy import insert

        from bench.sqla import UserRow

        users = UserRow.__table__
        now = self.clock()
        query = (
            insert(users)
            .values(
                **columns_of(new, users),
                status="active",
                version=1,
                created_at=now,
                updated_at=now,
            )
            .returning(users)
        )
        return await self._one(query, User, write=True)

    async def update_user(self, user_id: UUID, changes: UserUpdate, expected_version: int) -> User:
        from sqlalchemy import func, update

        from bench.sqla import UserRow

        users = UserRow.__table__
        values: dict[str, Any] = {
            "version": users.c.version + 1,
            "updated_at": func.greatest(users.c.updated_at, self.clock()),
        }
        values.update(
            (name, value)
            for name, value in columns_of(changes, UserRow.__table__).items()
            if value is not None
        )
        query = (
            update(users)
            .where(users.c.id == user_id, users.c.version == expected_version)
            .values(values)
            .returning(users)
        )
        found = await self._one(query, User, write=True)
        if found is None:
            raise RuntimeError("stale version")
        return found  # type: ignore[no-any-return]

    async def verify_token(self, secret: str) -> Token | None:
        from sqlalchemy import select

        from bench.sqla import TokenRow

        tokens = TokenRow.__table__
        query = select(tokens).where(
            tokens.c.token_hash == digest(secret),
            tokens.c.revoked_at.is_(None),
            tokens.c.expires_at > self.clock(),
        )
        return await self._one(query, Token)

    async def consume_token(self, secret: str) -> Token | None:
        from sqlalchemy import update

        from bench.sqla import TokenRow

        tokens = TokenRow.__table__
        now = self.clock()
        query = (
            update(tokens)
            .where(
                tokens.c.token_hash == digest(secret),
                tokens.c.kind == TokenKind.EMAIL_VERIFICATION.value,
                tokens.c.revoked_at.is_(None),
                tokens.c.expires_at > now,
            )
            .values(revoked_at=now, last_used_at=now)
            .returning(tokens)
        )
        return await self._one(query, Token, write=True)

    async def append_event(self, new: NewEvent) -> Event:
        from sqlalchemy import select
        from sqlalchemy.dialects.postgresql import insert

        from bench.sqla import EventRow

        events = EventRow.__table__
        now = self.clock()
        query = (
            insert(events)
            .values(
                event_key=new.event_key,
                user_id=new.user_id,
                type=new.type,
                payload=new.payload,
                occurred_at=new.occurred_at or now,
                recorded_at=now,
            )
            .on_conflict_do_nothing(index_elements=[events.c.event_key])
            .returning(events)
        )
        async with self.db.begin() as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                by_key = select(events).where(events.c.event_key == new.event_key)
                row = (await conn.execute(by_key)).first()
                if row is None or not _same_event(row._mapping, new):
                    raise RuntimeError("event key conflict")
            return Event.model_validate(row._mapping)

    async def append_events(self, events: Iterable[NewEvent]) -> int:
        from sqlalchemy import insert

        from bench.sqla import EventRow

        now = self.clock()
        rows = [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in event_records(events, now)]
        async with self.db.begin() as conn:
            await conn.execute(insert(EventRow.__table__), rows)
        return len(rows)

    async def list_user_events(self, user_id: UUID, limit: int) -> list[Event]:
        from sqlalchemy import select

        from bench.sqla import EventRow

        events = EventRow.__table__
        query = (
            select(events)
            .where(events.c.user_id == user_id, events.c.id > 0)
            .order_by(events.c.id)
            .limit(limit)
        )
        async with self.db.connect() as conn:
            return [Event.model_validate(row._mapping) for row in await conn.execute(query)]

    async def stream_page(self, position: StreamPosition, limit: int) -> list[Event]:
        from sqlalchemy import select, text, tuple_

        from bench.sqla import EventRow

        events = EventRow.__table__
        after = tuple_(events.c.tx_id, events.c.id) > (position.after_tx_id, position.after_id)
        query = (
            select(events)
            .where(after, text(STREAM_HORIZON))
            .order_by(events.c.tx_id, events.c.id)
            .limit(limit)
        )
        async with self.db.connect() as conn:
            return [Event.model_validate(row._mapping) for row in await conn.execute(query)]


CONTENDERS: dict[str, Callable[..., Contender]] = {
    "baseline": BaselineContender,
    "generated": GeneratedContender,
    "repository": RepositoryContender,
    "sqla_orm": SqlaOrmContender,
    "sqla_core": SqlaCoreContender,
    "executemany": ExecutemanyContender,
}
