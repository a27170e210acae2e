"""The read-only unit of work, for a read pool on replicas (``Settings.for_reads()``)."""

from __future__ import annotations

import functools
import weakref
from types import TracebackType
from typing import Any, Self, cast

import asyncpg

from identity_store.domain.clock import Clock, utc_now
from identity_store.domain.errors import UnitOfWorkError
from identity_store.domain.ports import EventReader, TokenReader, UserReader
from identity_store.infrastructure._observe import logger
from identity_store.infrastructure.db import replica_lag
from identity_store.infrastructure.persistence.unit_of_work import (
    IsolationLevel,
    PostgresUnitOfWork,
)

__all__ = ["PostgresReadUnitOfWork"]

_TOLD: weakref.WeakSet[asyncpg.Pool[Any]] = weakref.WeakSet()
"""The pools already checked for being on a primary (said once per pool)."""


def _first_use(pool: asyncpg.Pool[Any]) -> bool:
    try:
        if pool in _TOLD:
            return False
        _TOLD.add(pool)
    except TypeError:  # not create_pool's: no weak reference, nothing said
        return False
    return True


@functools.cache
def _reads_of(port: type) -> frozenset[str]:
    """The methods of a reader port (read once per port, not on every property access)."""
    return frozenset(name for name in vars(port) if not name.startswith("_"))


class _Reads:
    """A repository seen through a reader port: its reads pass, anything else is refused
    before it reaches the database."""

    __slots__ = ("_port", "_reads", "_repository")

    def __init__(self, repository: object, port: type) -> None:
        self._repository = repository
        self._port = port.__name__
        self._reads = _reads_of(port)

    def __getattr__(self, name: str) -> Any:
        if name in self._reads:
            return getattr(self._repository, name)
        raise UnitOfWorkError(
            f"{name} is not a read: a read-only unit of work offers the {self._port} "
            f"methods only ({', '.join(sorted(self._reads))})"
        )


class PostgresReadUnitOfWork:
    """The :class:`~identity_store.domain.ports.ReadUnitOfWork`: one ``BEGIN READ ONLY``
    transaction on ``pool`` (a read pool: ``create_pool(settings.for_reads())``), whose
    repositories offer the reader ports only. Which reads may go to a replica: the
    reader ports' docstrings.

    On a pool that reaches a primary (a read URL naming the primary, or
    ``prefer-standby`` with no standby up) it works the same, and says so once per pool
    in the log.
    """

    __slots__ = ("_pool", "_uow")

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        *,
        clock: Clock = utc_now,
        isolation: IsolationLevel = "read_committed",
        acquire_timeout: float | None = None,
    ) -> None:
        self._pool = pool
        self._uow = PostgresUnitOfWork(
            pool, clock=clock, isolation=isolation, acquire_timeout=acquire_timeout, readonly=True
        )

    @property
    def users(self) -> UserReader:
        return cast(UserReader, _Reads(self._uow.users, UserReader))

    @property
    def tokens(self) -> TokenReader:
        return cast(TokenReader, _Reads(self._uow.tokens, TokenReader))

    @property
    def events(self) -> EventReader:
        return cast(EventReader, _Reads(self._uow.events, EventReader))

    async def __aenter__(self) -> Self:
        if _first_use(self._pool) and await replica_lag(self._pool) is None:
            logger.info("a read pool reaches a primary: its reads see every committed write")
        await self._uow.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._uow.__aexit__(exc_type, exc, tb)
