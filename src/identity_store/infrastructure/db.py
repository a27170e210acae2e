"""Connection settings, the asyncpg pool, a framework dependency and a health check.

Settings (:mod:`identity_store.infrastructure.settings`) come from the environment,
``.env`` and ``.env.local``::

    DATABASE_URL=postgresql://app:secret@db.internal:5432/identity   # or DB_URL
    DB_POOL_MIN_SIZE=1
    DB_POOL_MAX_SIZE=10
    DB_COMMAND_TIMEOUT=30
    DB_STATEMENT_CACHE_SIZE=100    # 0 behind PgBouncer in transaction mode
    DB_CONNECT_TIMEOUT=10
    DB_ACQUIRE_TIMEOUT=10          # seconds to wait for a free pooled connection
    DB_SLOW_STATEMENT_SECONDS=1    # log statements at least this slow (0: off)
    DATABASE_READ_URL=...          # replicas, for create_pool(settings.for_reads())

Nothing connects at import time: the application calls :func:`create_pool` at start-up
and closes the pool at shutdown.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from identity_store._generated import health as health_queries
from identity_store._generated import subscriptions as subscription_queries
from identity_store._generated.db import init_connection
from identity_store.domain.errors import DatabaseConfigError, DatabaseUnavailable
from identity_store.infrastructure._errors import translate_errors
from identity_store.infrastructure._observe import PoolObserver, logger
from identity_store.infrastructure._pool import acquire_timeout_of, open_pool
from identity_store.infrastructure._telemetry import instrument_pool
from identity_store.infrastructure.settings import Settings, describe_url, load_settings

__all__ = [
    "Settings",
    "check_health",
    "create_pool",
    "describe_url",
    "get_db",
    "instrument_pool",
    "replica_lag",
]

REPLICA_LAG_WARNING_SECONDS = 30.0
"""A replica further behind than this makes :func:`check_health` log a warning."""
HORIZON_WARNING_SECONDS = 60.0
"""A transaction older than this holding the event stream back makes
:func:`check_health` log a warning."""


async def create_pool(settings: Settings | None = None) -> asyncpg.Pool:
    """Open a connection pool and check that the server answers.

    Every connection gets the JSON codecs of the generated layer. When the application
    has set an OpenTelemetry tracer or meter provider, the pool reports traces and
    metrics (:func:`instrument_pool`, docs/telemetry.md).

    Raises:
        DatabaseConfigError: the settings are invalid (message names the setting).
        DatabaseUnavailable: the server cannot be reached, refuses the credentials, the
            database does not exist, or no host matches ``target_session_attrs`` (a
            failover under way). The message carries the URL without password.
    """
    settings = settings or load_settings()
    url = settings.database_url.get_secret_value()
    where = describe_url(url)
    observer = PoolObserver(
        settings.parsed_url, slow_statement_seconds=settings.slow_statement_seconds
    )
    try:
        pool = await open_pool(
            url,
            connect=observer.connect,
            on_close=observer.closed,
            acquire_timeout=settings.acquire_timeout,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            command_timeout=settings.command_timeout,
            statement_cache_size=settings.statement_cache_size,
            timeout=settings.connect_timeout,
            init=init_connection,
        )
    except asyncpg.InvalidPasswordError:
        raise DatabaseUnavailable(f"{where}: password authentication failed") from None
    except asyncpg.InvalidCatalogNameError:
        raise DatabaseUnavailable(f"{where}: the database does not exist") from None
    except asyncpg.InvalidAuthorizationSpecificationError:
        raise DatabaseUnavailable(f"{where}: the server rejected this role") from None
    except socket.gaierror:
        raise DatabaseUnavailable(f"{where}: unknown host") from None
    except (TimeoutError, OSError):
        raise DatabaseUnavailable(f"{where}: cannot connect (server down or unreachable)") from None
    except asyncpg.PostgresError as exc:
        raise DatabaseUnavailable(f"{where}: refused ({exc.sqlstate})") from None
    except asyncpg.TargetServerAttributeNotMatched:
        raise DatabaseUnavailable(
            f"{where}: no host accepts this session now (target_session_attrs)"
        ) from None
    except (asyncpg.InterfaceError, ValueError) as exc:
        # asyncpg's own URL parsing (bad option values) ends up here; its message does
        # not include the password, but the URL might: keep only the class of problem.
        raise DatabaseConfigError(
            f"{where}: invalid connection options ({type(exc).__name__})"
        ) from None
    assert pool is not None
    observer.created(min_size=settings.pool_min_size, max_size=settings.pool_max_size)
    instrument_pool(pool)
    return pool


async def get_db(pool: asyncpg.Pool) -> AsyncIterator[PoolConnectionProxy]:
    """Yield one pooled connection for the duration of a request.

    For FastAPI, wrap it in a dependency that finds the application's pool, with
    ``scope="function"`` so the connection goes back to the pool when the endpoint
    returns rather than after the response has been sent::

        async def db(request: Request) -> AsyncIterator[asyncpg.Connection]:
            async for conn in get_db(request.app.state.pool):
                yield conn

        Db = Annotated[asyncpg.Connection, Depends(db, scope="function")]

    Waiting for the connection is bounded by the pool's acquire timeout
    (``DB_ACQUIRE_TIMEOUT``): :class:`DatabaseTimeout` after it,
    :class:`DatabaseUnavailable` when no connection can be opened.
    """
    timeout = acquire_timeout_of(pool)
    with translate_errors(acquire_timeout=timeout):
        conn = await pool.acquire(timeout=timeout)
    try:
        yield conn
    finally:
        await pool.release(conn)


async def check_health(
    pool: asyncpg.Pool,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109
    max_replica_lag: float = REPLICA_LAG_WARNING_SECONDS,
    max_transaction_age: float = HORIZON_WARNING_SECONDS,
) -> bool:
    """Return True when the database answers within ``timeout`` seconds. On a replica
    further behind its primary than ``max_replica_lag`` seconds it still answers True
    and logs a warning with the lag (:func:`replica_lag` gives the figure). Likewise
    when a transaction open longer than ``max_transaction_age`` seconds holds the event
    stream's horizon back (subscriptions wait for it; ``uow.subscriptions.lag()`` gives
    the figures). Another role's transactions count only if the pool's role is a
    member of ``pg_read_all_stats``."""
    try:
        async with pool.acquire(timeout=timeout) as conn:
            lag = await health_queries.replica_lag(conn)
            horizon = await subscription_queries.stream_horizon_status(conn)
    except (TimeoutError, OSError, asyncpg.InterfaceError, asyncpg.PostgresError):
        return False
    held = 0.0 if horizon is None else horizon.oldest_transaction_seconds
    if held > max_transaction_age:
        logger.warning(
            "a transaction open for %.0f s (threshold %.0f s) holds back the event "
            "stream: subscriptions wait until it ends (see pg_stat_activity)",
            held,
            max_transaction_age,
        )
    if lag is not None and lag > max_replica_lag:
        logger.warning(
            "replica lag %.1f s (threshold %.1f s): reads there miss recent writes",
            lag,
            max_replica_lag,
        )
    return True


async def replica_lag(pool: asyncpg.Pool) -> float | None:
    """Return how many seconds the server behind ``pool`` is behind its primary in
    replaying (0 when it has replayed all it received), or None when it is a primary.

    Raises:
        DatabaseTimeout, DatabaseUnavailable: as any statement on the pool.
    """
    timeout = acquire_timeout_of(pool)
    with translate_errors(acquire_timeout=timeout):
        return await health_queries.replica_lag(pool)
