"""What the package logs, all through ``logging.getLogger("identity_store")``.

Nothing is configured here or anywhere in the package: no handler, no level. The
application decides where records go (``logging.basicConfig``, its framework's config).

Records, and what they never contain:

============================================  =========  ==================================
message                                       level      extra attributes
============================================  =========  ==================================
``database pool created: <where> ...``        INFO       ``db_where``
``database pool closed: <where>``             INFO       ``db_where``
``database connection lost (<error class>)``  WARNING    ``db_where``, ``error_class``
``database still unavailable after <s> s``    WARNING    ``db_where``, ``error_class``,
                                                         ``outage_seconds``
``database connection recovered after <s>``   INFO       ``db_where``, ``outage_seconds``
``slow statement <QueryName>: <s> s``         WARNING    ``query_name``, ``elapsed_seconds``
``applied migration <file>``                  INFO       (:mod:`identity_store.dev`)
============================================  =========  ==================================

``<where>`` is every host and port and the database name (``DatabaseURL.location``):
no role, no password. A statement is named by its sqlc query name (``-- name:
CreateUser``) or, for other SQL, by its first keyword (``BEGIN``, ``SELECT``); never
by its text, and never with its parameters, which carry e-mail addresses, password
hashes and token digests.

An outage is told in state changes: lost, still unavailable (at most once every
:data:`STILL_UNAVAILABLE_EVERY_SECONDS`, when an attempt to connect failed again), and
recovered. asyncpg's pool logs a warning with a traceback for every failed attempt to
restore its minimum size (``asyncpg.pool``: "Failed to restore the pool connection
floor"); for a failure these records have told already, a filter on that logger drops
it, installed when the first pool is created. Other pools' records pass.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from identity_store.infrastructure.settings import DatabaseURL

__all__ = [
    "DEFAULT_SLOW_STATEMENT_SECONDS",
    "STILL_UNAVAILABLE_EVERY_SECONDS",
    "ObservedConnection",
    "PoolObserver",
    "logger",
    "query_name",
]

logger = logging.getLogger("identity_store")

DEFAULT_SLOW_STATEMENT_SECONDS = 1.0
"""Statements taking at least this long are logged (``DB_SLOW_STATEMENT_SECONDS``; 0
turns the timing off, and with it asyncpg's per-statement query-logger call)."""

STILL_UNAVAILABLE_EVERY_SECONDS = 60.0
"""During an outage, a failed attempt to connect is logged at most this often."""

_NAME = re.compile(r"\A\s*--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)")
_KEYWORD = re.compile(r"[A-Za-z]+")
_LOST_SQLSTATE_PREFIXES = ("08", "57P")


def query_name(sql: object) -> str:
    """Return a name for ``sql`` that is safe to log: the sqlc query name, else the
    first SQL keyword in capitals, else ``statement``."""
    if not isinstance(sql, str):
        return "statement"
    named = _NAME.match(sql)
    if named:
        return named.group(1)
    for line in sql.splitlines():
        code = line.split("--", 1)[0].strip()
        if code:
            keyword = _KEYWORD.match(code)
            return keyword.group(0).upper() if keyword else "statement"
    return "statement"


def _is_connection_loss(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):  # a statement timeout: the connection is fine
        return False
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return sqlstate.startswith(_LOST_SQLSTATE_PREFIXES)
    return isinstance(
        exc, asyncpg.ConnectionDoesNotExistError | asyncpg.PostgresConnectionError | OSError
    )


_REPORTED = "_identity_store_reported"


class _DropReported(logging.Filter):
    """Drops a record whose exception a :class:`PoolObserver` has reported already."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, _REPORTED, False)


_DROP_REPORTED = _DropReported()


def _reported(exc: BaseException) -> None:
    with contextlib.suppress(AttributeError, TypeError):  # an exception without __dict__
        setattr(exc, _REPORTED, True)


class ObservedConnection(asyncpg.Connection):
    """An asyncpg connection that knows whether it was closed on purpose (by the pool
    or the application) or lost (the server or the network ended it)."""

    __slots__ = ("_closed_on_purpose",)

    async def close(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 - asyncpg's
        self._closed_on_purpose = True
        await super().close(timeout=timeout)

    def terminate(self) -> None:
        self._closed_on_purpose = True
        super().terminate()

    @property
    def closed_on_purpose(self) -> bool:
        return bool(getattr(self, "_closed_on_purpose", False))


class PoolObserver:
    """Logs one pool's life: created, closed, connections lost and recovered, slow
    statements. ``connect`` and ``init`` are handed to the pool."""

    __slots__ = ("_lost_at", "_open", "_said_at", "_slow", "where")

    def __init__(self, url: DatabaseURL, *, slow_statement_seconds: float) -> None:
        self.where = url.location()
        self._slow = slow_statement_seconds
        self._lost_at: float | None = None
        self._said_at = 0.0  # when the outage was last logged
        self._open = False  # failures while opening are create_pool's error to report

    def created(self, *, min_size: int, max_size: int) -> None:
        self._open = True
        pool_log = logging.getLogger("asyncpg.pool")
        if _DROP_REPORTED not in pool_log.filters:
            pool_log.addFilter(_DROP_REPORTED)
        logger.info(
            "database pool created: %s (%d to %d connections)",
            self.where,
            min_size,
            max_size,
            extra={"db_where": self.where},
        )

    def closed(self) -> None:
        self._open = False
        logger.info("database pool closed: %s", self.where, extra={"db_where": self.where})

    def lost(self, exc: BaseException) -> None:
        """Note that a connection broke or could not be made: logged when the outage
        begins, then at most every :data:`STILL_UNAVAILABLE_EVERY_SECONDS`."""
        if not self._open:
            return
        now = time.monotonic()
        error_class = type(exc).__name__
        if self._lost_at is None:
            self._lost_at = self._said_at = now
            logger.warning(
                "database connection lost (%s): %s",
                error_class,
                self.where,
                extra={"db_where": self.where, "error_class": error_class},
            )
        elif now - self._said_at >= STILL_UNAVAILABLE_EVERY_SECONDS:
            self._said_at = now
            outage = now - self._lost_at
            logger.warning(
                "database still unavailable after %.0f s (%s): %s",
                outage,
                error_class,
                self.where,
                extra={
                    "db_where": self.where,
                    "error_class": error_class,
                    "outage_seconds": round(outage, 3),
                },
            )

    def working(self) -> None:
        """Note that the database answered; ends an outage."""
        if self._lost_at is None:
            return
        outage = time.monotonic() - self._lost_at
        self._lost_at = None
        logger.info(
            "database connection recovered after %.1f s: %s",
            outage,
            self.where,
            extra={"db_where": self.where, "outage_seconds": round(outage, 3)},
        )

    def on_query(self, record: Any) -> None:
        """asyncpg's query logger: called after every statement on the pool's connections.

        Reads only ``query`` (for its name), ``elapsed`` and ``exception``; ``args`` is
        never touched.
        """
        exc = record.exception
        if exc is not None:
            if _is_connection_loss(exc):
                self.lost(exc)
            return
        self.working()
        if record.elapsed >= self._slow:
            name = query_name(record.query)
            logger.warning(
                "slow statement %s: %.3f s (threshold %.3f s)",
                name,
                record.elapsed,
                self._slow,
                extra={"query_name": name, "elapsed_seconds": round(record.elapsed, 6)},
            )

    async def connect(self, *args: Any, **kwargs: Any) -> asyncpg.Connection:
        """The pool's ``connect``: asyncpg's, noting failures and recoveries, and
        watching the new connection for statements and its end."""
        kwargs["connection_class"] = ObservedConnection
        try:
            conn: asyncpg.Connection = await asyncpg.connect(*args, **kwargs)
        except TimeoutError:
            # No answer within DB_CONNECT_TIMEOUT: the server is unreachable. Raised as a
            # connection error: a TimeoutError out of the pool's acquire means the pool
            # stayed exhausted (AcquireTimeoutError), which this is not.
            failure = ConnectionError("the server did not answer within the connect timeout")
            self.lost(failure)
            _reported(failure)
            raise failure from None
        except Exception as exc:
            self.lost(exc)  # the server is down, refuses us, or the database is gone
            _reported(exc)
            raise
        self.working()
        if self._slow > 0:
            conn.add_query_logger(self.on_query)
        # asyncpg hands the listener a pool proxy while the connection is in use: keep
        # the connection itself.
        conn.add_termination_listener(lambda _ref: self.on_terminated(conn))
        return conn

    def on_terminated(self, conn: asyncpg.Connection) -> None:
        """A connection ended, on purpose or not."""
        if isinstance(conn, ObservedConnection) and not conn.closed_on_purpose:
            self.lost(ConnectionResetError("the server or the network closed the connection"))
