"""The unit of work: one transaction on one pooled connection.

::

    async with PostgresUnitOfWork(pool) as uow:
        user = await uow.users.register(NewUser(email=..., display_name=...))
        await uow.events.append(NewEvent(type="user.registered", user_id=user.id))

Both rows commit together when the block ends normally; any exception rolls both
back. For web frameworks, :func:`get_uow` is a dependency yielding a unit of work.

The contract (commit, roll back, :class:`CommitOutcomeUnknown`) is the
:class:`~identity_store.domain.ports.UnitOfWork` port's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Literal, Self

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from asyncpg.transaction import Transaction

from identity_store.domain.clock import Clock, utc_now
from identity_store.domain.errors import CommitOutcomeUnknown, UnitOfWorkError
from identity_store.infrastructure._errors import (
    raise_clean,
    translate_commit_error,
    translate_error,
    translate_errors,
)
from identity_store.infrastructure._pool import acquire_timeout_of
from identity_store.infrastructure._telemetry import (
    COMMITTED,
    OUTCOME_UNKNOWN,
    ROLLED_BACK,
    Telemetry,
    Unit,
    telemetry_of,
)
from identity_store.infrastructure.persistence.event_repo import PostgresEventRepository
from identity_store.infrastructure.persistence.subscription_repo import (
    PostgresSubscriptionRepository,
)
from identity_store.infrastructure.persistence.token_repo import PostgresTokenRepository
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository

__all__ = ["IsolationLevel", "PostgresUnitOfWork", "get_uow"]

IsolationLevel = Literal["read_committed", "repeatable_read", "serializable"]


class _Active:
    __slots__ = (
        "connection",
        "events",
        "failed",
        "outcome",
        "subscriptions",
        "tokens",
        "transaction",
        "unit",
        "users",
    )

    def __init__(
        self,
        connection: PoolConnectionProxy[Any],
        transaction: Transaction,
        clock: Clock,
        unit: Unit | None,
    ) -> None:
        self.connection = connection
        self.transaction = transaction
        self.failed = False
        self.outcome = ROLLED_BACK
        self.unit = unit
        db = connection if unit is None else unit.traced(connection)
        self.users = PostgresUserRepository(db, clock=clock, on_server_error=self._fail)
        self.tokens = PostgresTokenRepository(db, clock=clock, on_server_error=self._fail)
        self.events = PostgresEventRepository(db, clock=clock, on_server_error=self._fail)
        self.subscriptions = PostgresSubscriptionRepository(
            db, clock=clock, on_server_error=self._fail
        )

    def _fail(self) -> None:
        self.failed = True


class PostgresUnitOfWork:
    """The :class:`~identity_store.domain.ports.UnitOfWork` on an asyncpg pool.

    ``async with uow:`` takes a connection from the pool and starts a transaction;
    leaving the block commits it, or rolls it back when an exception escapes, and
    returns the connection. The same object may be entered again afterwards, but not
    while it is active: nesting raises :class:`UnitOfWorkError` instead of quietly
    opening a second transaction.

    A domain error the database raised inside the block (``EmailAlreadyRegistered``,
    a ``UserNotFound`` from a foreign key, ...) aborts the transaction, as PostgreSQL
    does, even when the block catches it: the unit of work's later calls raise
    :class:`UnitOfWorkError`, and leaving the block rolls back (nothing of the block
    is committed). Check first (``get_by_email``) or use a new unit of work to write
    more after such an error.

    Taking the connection waits at most ``acquire_timeout`` seconds (default: the
    pool's ``DB_ACQUIRE_TIMEOUT``, 10 s), then raises :class:`DatabaseTimeout`.
    """

    __slots__ = (
        "_acquire_timeout",
        "_active",
        "_clock",
        "_isolation",
        "_pool",
        "_readonly",
        "_telemetry",
    )

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        clock: Clock = utc_now,
        isolation: IsolationLevel = "read_committed",
        acquire_timeout: float | None = None,
        readonly: bool = False,
    ) -> None:
        self._pool = pool
        self._acquire_timeout = (
            acquire_timeout_of(pool) if acquire_timeout is None else acquire_timeout
        )
        self._clock = clock
        self._isolation: IsolationLevel = isolation
        self._readonly = readonly
        self._active: _Active | None = None
        self._telemetry: Telemetry | None = telemetry_of(pool)

    @property
    def active(self) -> bool:
        """Whether a transaction is open (inside ``async with``)."""
        return self._active is not None

    def _require_active(self) -> _Active:
        if self._active is None:
            raise UnitOfWorkError("use the repositories of a unit of work inside `async with`")
        return self._active

    @property
    def users(self) -> PostgresUserRepository:
        return self._require_active().users

    @property
    def tokens(self) -> PostgresTokenRepository:
        return self._require_active().tokens

    @property
    def events(self) -> PostgresEventRepository:
        return self._require_active().events

    @property
    def subscriptions(self) -> PostgresSubscriptionRepository:
        """The event stream's subscriptions, on this unit of work's transaction."""
        return self._require_active().subscriptions

    async def __aenter__(self) -> Self:
        """Take a connection and begin the transaction.

        Raises:
            UnitOfWorkError: this unit of work is already active.
            DatabaseTimeout: no pooled connection became free within the acquire
                timeout (``reason == "acquire"``).
            DatabaseUnavailable: no connection could be had.
        """
        if self._active is not None:
            raise UnitOfWorkError(
                "this unit of work is already active; nested units of work are not supported"
            )
        unit = None if self._telemetry is None else self._telemetry.unit()
        timeout = self._acquire_timeout
        try:
            with translate_errors(acquire_timeout=timeout):
                if unit is None:
                    connection = await self._pool.acquire(timeout=timeout)
                else:
                    connection = await unit.acquire(self._pool, timeout)
            try:
                transaction = connection.transaction(
                    isolation=self._isolation, readonly=self._readonly
                )
                with translate_errors(executor=connection):
                    await transaction.start()
            except BaseException:
                await self._release(connection)
                raise
        except BaseException as exc:
            if unit is not None:
                unit.finish(None, exc)
            raise
        self._active = _Active(connection, transaction, self._clock, unit)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Commit when the block succeeded, else roll back; always return the connection.

        Raises:
            TransactionConflict: the commit lost a serialization race (it did not
                happen); retry the work.
            CommitOutcomeUnknown: COMMIT got no answer (see that class).

        When a statement failed inside the block and the block caught its domain error
        (say, to answer 409 to a duplicate address), the transaction is already
        aborted: it is rolled back here, nothing of the block is committed.
        """
        active = self._require_active()
        self._active = None
        try:
            if exc_type is None and not active.failed:
                active.outcome = OUTCOME_UNKNOWN
                try:
                    await active.transaction.commit()
                except Exception as failure:
                    translated = translate_commit_error(failure, executor=active.connection)
                    if translated is None:
                        raise
                    if isinstance(translated, CommitOutcomeUnknown):
                        # Whatever state the connection is in, it must not serve again
                        # (asyncpg may already have detached it from the pool).
                        with contextlib.suppress(Exception):
                            active.connection.terminate()
                    else:
                        active.outcome = ROLLED_BACK
                    raise_clean(translated)
                active.outcome = COMMITTED
            else:
                await self._rollback_quietly(active.transaction)
        except BaseException as raised:
            if active.unit is not None:
                active.unit.finish(active.outcome, raised)
            raise
        finally:
            await self._release(active.connection)
        if active.unit is not None:
            active.unit.finish(active.outcome, exc)

    @staticmethod
    async def _rollback_quietly(transaction: Transaction) -> None:
        # The block's own exception is the one to report; a rollback on a broken
        # connection fails too, and the server rolls back when the connection closes.
        try:
            await transaction.rollback()
        except Exception as exc:
            if translate_error(exc) is None:
                raise

    async def _release(self, connection: PoolConnectionProxy[Any]) -> None:
        with contextlib.suppress(Exception):
            await self._pool.release(connection)


async def get_uow(
    pool: asyncpg.Pool[Any], *, clock: Clock = utc_now, acquire_timeout: float | None = None
) -> AsyncIterator[PostgresUnitOfWork]:
    """Yield an active unit of work, committed after the caller is done with it.

    A dependency for FastAPI or any framework with generator dependencies: an
    exception raised by the endpoint is thrown back in here and rolls the work back.
    Endpoints that turn an error into a response without raising still commit, so
    raise to undo.

    With FastAPI, declare it with ``scope="function"`` (FastAPI 0.121+): a plain
    yield dependency is finished *after* the response is sent, so a failed COMMIT
    would follow a 200 for work that was lost. ``examples/fastapi`` does this::

        async def uow(request: Request) -> AsyncIterator[PostgresUnitOfWork]:
            async for unit in get_uow(request.app.state.pool):
                yield unit

        Uow = Annotated[UnitOfWork, Depends(uow, scope="function")]

        @app.post("/users")
        async def register(body: RegisterBody, uow: Uow) -> UserOut: ...
    """
    async with PostgresUnitOfWork(pool, clock=clock, acquire_timeout=acquire_timeout) as uow:
        yield uow
