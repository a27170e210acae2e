"""The asyncpg pool :func:`~identity_store.infrastructure.db.create_pool` returns: an
``asyncpg.Pool`` whose every acquire waits at most ``acquire_timeout`` seconds.

asyncpg's own pool waits for a free connection forever unless each caller passes a
timeout; with all connections busy (a burst, a leak, a slow query holding them), a
request would hang with no error. Here the bound applies everywhere: units of work,
``get_db``, repositories on the pool, ``pool.fetch(...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
from asyncpg.pool import PoolAcquireContext

__all__ = ["DEFAULT_ACQUIRE_TIMEOUT", "BoundedPool", "acquire_timeout_of", "open_pool"]

DEFAULT_ACQUIRE_TIMEOUT = 10.0
"""Seconds to wait for a free pooled connection (``DB_ACQUIRE_TIMEOUT``)."""


class BoundedPool(asyncpg.Pool):
    """An ``asyncpg.Pool`` whose ``acquire()`` defaults to ``acquire_timeout``."""

    __slots__ = ("acquire_timeout", "on_close", "telemetry")

    acquire_timeout: float
    on_close: Callable[[], None] | None
    telemetry: Any  # identity_store.infrastructure._telemetry.Telemetry | None
    _connect_args: tuple[Any, ...]  # asyncpg's: (dsn,)

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext[Any]:
        """Take a connection, waiting at most ``timeout`` (default ``acquire_timeout``)
        seconds; raises ``TimeoutError`` when none became free."""
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)

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


async def open_pool(
    dsn: str,
    *,
    acquire_timeout: float,
    min_size: int,
    max_size: int,
    on_close: Callable[[], None] | None = None,
    **connect_kwargs: Any,
) -> BoundedPool:
    """Open a :class:`BoundedPool`, as ``asyncpg.create_pool(dsn, ...)`` opens a pool;
    ``on_close`` is called once when it is closed or terminated."""
    pool = BoundedPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        **connect_kwargs,
    )
    pool.acquire_timeout = acquire_timeout
    pool.on_close = on_close
    pool.telemetry = None
    await pool
    return pool
