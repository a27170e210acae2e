"""The asyncpg pool :func:`~identity_store.infrastructure.db.create_pool` returns: an
``asyncpg.Pool`` whose every acquire waits at most ``acquire_timeout`` seconds.

asyncpg's own pool waits for a free connection forever unless each caller passes a
timeout; with all connections busy (a burst, a leak, a slow query holding them), a
request would hang with no error. Here the bound applies everywhere: units of work,
``get_db``, repositories on the pool, ``pool.fetch(...)``. Running out of that wait
raises :class:`AcquireTimeoutError`, so that it is told apart from a statement's timeout
(asyncpg raises ``TimeoutError`` for both, from ``pool.fetch(...)`` alike).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy

__all__ = [
    "DEFAULT_ACQUIRE_TIMEOUT",
    "AcquireTimeoutError",
    "BoundedPool",
    "acquire_timeout_of",
    "open_pool",
]

DEFAULT_ACQUIRE_TIMEOUT = 10.0
"""Seconds to wait for a free pooled connection (``DB_ACQUIRE_TIMEOUT``)."""


class AcquireTimeoutError(TimeoutError):
    """No pooled connection became free within ``timeout`` seconds."""

    def __init__(self, timeout: float | None) -> None:
        super().__init__(f"no pooled connection became free within {timeout} s")
        self.timeout = timeout


if TYPE_CHECKING:
    _AcquireContext = PoolAcquireContext[Any]
else:  # generic in asyncpg's stubs only
    _AcquireContext = PoolAcquireContext


class _Acquire(_AcquireContext):
    """asyncpg's acquire, raising :class:`AcquireTimeoutError` when the wait runs out."""

    async def __aenter__(self) -> PoolConnectionProxy[Any]:
        try:
            return await super().__aenter__()
        except TimeoutError:
            raise AcquireTimeoutError(self.timeout) from None

    def __await__(self) -> Generator[Any, None, PoolConnectionProxy[Any]]:
        try:
            return (yield from super().__await__())
        except TimeoutError:
            raise AcquireTimeoutError(self.timeout) from None


class BoundedPool(asyncpg.Pool):
    """An ``asyncpg.Pool`` whose ``acquire()`` defaults to ``acquire_timeout``."""

    __slots__ = ("__weakref__", "acquire_timeout", "on_close", "telemetry")

    acquire_timeout: float
    on_close: Callable[[], None] | None
    telemetry: Any  # identity_store.infrastructure._telemetry.Telemetry | None
    _connect_args: tuple[Any, ...]  # asyncpg's: (dsn,)

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext[Any]:
        """Take a connection, waiting at most ``timeout`` (default ``acquire_timeout``)
        seconds; raises :class:`AcquireTimeoutError` when none became free."""
        return _Acquire(self, self.acquire_timeout if timeout is None else timeout)

    async def close(self) -> None:
        """Close every connection, waiting for those in use to be released."""
        await super().close()
        self._report_closed()

    def terminate(self) -> None:
        """Close every connection at once."""
        super().terminate()
        self._report_closed()

    def _report_closed(self) -> None:
        if self.telemetry is not None:
            self.telemetry.stop()
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()


def acquire_timeout_of(pool: object) -> float:
    """Return the acquire timeout of ``pool``: its own if it is a :class:`BoundedPool`,
    else :data:`DEFAULT_ACQUIRE_TIMEOUT`."""
    timeout = getattr(pool, "acquire_timeout", None)
    return float(timeout) if isinstance(timeout, int | float) else DEFAULT_ACQUIRE_TIMEOUT


def _create_pool_defaults() -> dict[str, Any]:
    """``asyncpg.create_pool``'s keyword defaults (``max_queries``, ``loop``, ...), which
    ``asyncpg.Pool`` itself requires: read from asyncpg, so they follow its releases."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(asyncpg.create_pool).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
        and parameter.default is not inspect.Parameter.empty
    }


async def open_pool(
    dsn: str,
    *,
    acquire_timeout: float,
    on_close: Callable[[], None] | None = None,
    **pool_kwargs: Any,
) -> BoundedPool:
    """Open a :class:`BoundedPool` as ``asyncpg.create_pool(dsn, **pool_kwargs)`` opens
    a pool (same arguments, same defaults); ``on_close`` is called once when it is
    closed or terminated."""
    pool = BoundedPool(dsn, **{**_create_pool_defaults(), **pool_kwargs})
    pool.acquire_timeout = acquire_timeout
    pool.on_close = on_close
    pool.telemetry = None
    await pool
    return pool
