"""The one place where driver errors become domain errors, by SQLSTATE and constraint.

Every call into the generated layer, every pool acquire and every COMMIT runs inside
:func:`translate_errors`, so no asyncpg exception leaves this package. Messages never
quote the driver's message, and the driver's exception is not chained either (no
``__cause__``, no ``__context__``): PostgreSQL's details quote row data ("Key
(lower(email))=(...) already exists", "Failing row contains (...)" with a password
hash), which a ``logger.exception`` would print. The domain error carries what a caller
can act on: its type, the constraint or SQLSTATE, the field.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Literal, NoReturn
from uuid import UUID

import asyncpg
import asyncpg.exceptions

from identity_store.domain.errors import (
    CommitOutcomeUnknown,
    ConstraintViolation,
    DatabaseError,
    DatabaseTimeout,
    DatabaseUnavailable,
    EmailAlreadyRegistered,
    EventKeyConflict,
    IdentityStoreError,
    InvalidInput,
    TransactionConflict,
    UnitOfWorkError,
    UserNotFound,
)
from identity_store.infrastructure._pool import AcquireTimeoutError

__all__ = [
    "raise_clean",
    "translate_commit_error",
    "translate_error",
    "translate_errors",
]

_EMAIL_UNIQUE = frozenset({"users_email_key_key"})
_EVENT_KEY_UNIQUE = "events_event_key_key"
_USER_FOREIGN_KEYS = frozenset({"tokens_user_id_fkey", "events_user_id_fkey"})

# SQLSTATEs meaning the server went away, is starting, stopping or recovering, is full,
# refused us, or cannot take writes now (25006: a standby, or a primary being demoted in
# a failover): the database is unavailable rather than the request wrong.
_UNAVAILABLE_SQLSTATES = frozenset(
    {"53300", "57P01", "57P02", "57P03", "57P04", "57P05", "3D000", "28000", "28P01", "25006"}
)
# The server gave up waiting: the database is up, the request met contention.
_TIMEOUT_SQLSTATES = {"57014": "statement", "55P03": "lock"}
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def _connection_lost(executor: object) -> bool:
    try:
        if callable(is_closed := getattr(executor, "is_closed", None)):
            return bool(is_closed())
        if callable(is_closing := getattr(executor, "is_closing", None)):
            return bool(is_closing())
    except Exception:  # a released pooled connection refuses even this question
        return True
    return False


def translate_error(
    exc: BaseException,
    *,
    email: str | None = None,
    user_id: UUID | None = None,
    executor: object | None = None,
    acquire_timeout: float | None = None,
) -> IdentityStoreError | None:
    """Return the domain error for a driver or socket error, or None if ``exc`` is
    neither (it then propagates unchanged).

    ``email`` and ``user_id`` only fill in the returned error's attributes.
    ``executor`` is the connection or pool the failed call used: when it has been
    closed, any client-side error (asyncpg reports some broken connections as an
    ``InternalClientError``) means the database is unavailable. ``acquire_timeout`` is
    set while waiting for a pooled connection: a timeout then means the pool stayed
    exhausted, and any server error means the server refused the new connection.
    """
    if isinstance(exc, IdentityStoreError):
        return None
    if isinstance(exc, asyncpg.PostgresError):
        if acquire_timeout is not None:
            # Refused while opening a connection (no such database, bad password, too
            # many clients, not accepting connections): whatever the SQLSTATE, the
            # database is unavailable to us, not the request wrong.
            return DatabaseUnavailable(
                f"the database refused a new connection (SQLSTATE {_code(exc)})"
            )
        return _from_sqlstate(exc, email=email, user_id=user_id)
    if isinstance(exc, TimeoutError):
        # A repository on the pool waits for a connection inside pool.fetch(): its
        # acquire timeout arrives there as an AcquireTimeoutError, not a statement's timeout.
        waited = exc.timeout if isinstance(exc, AcquireTimeoutError) else acquire_timeout
        if waited is not None:
            return DatabaseTimeout(
                f"no database connection became free within {waited:g} s "
                "(the pool is exhausted: more concurrent work than DB_POOL_MAX_SIZE)",
                reason="acquire",
            )
        return DatabaseTimeout(
            "the database did not answer within the command timeout", reason="statement"
        )
    if isinstance(exc, asyncpg.TargetServerAttributeNotMatched):
        # A multi-host URL's target_session_attrs matched no host: a failover under way.
        return DatabaseUnavailable(
            "no host of the database URL accepts this session now (target_session_attrs)"
        )
    from_driver = type(exc).__module__.startswith("asyncpg")
    if from_driver and executor is not None and _connection_lost(executor):
        return DatabaseUnavailable("the connection to the database was lost")
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        # asyncpg refused to encode an argument before sending it.
        return InvalidInput("value", "the database driver could not encode a value")
    if isinstance(exc, asyncpg.InterfaceError | OSError):
        # Closed connection or pool, refused or reset socket.
        return DatabaseUnavailable("the database is unreachable or the connection broke")
    if from_driver:
        return DatabaseError(f"unexpected database client error ({type(exc).__name__})")
    return None


def _from_sqlstate(
    exc: asyncpg.PostgresError, *, email: str | None, user_id: UUID | None
) -> IdentityStoreError:
    sqlstate = exc.sqlstate  # None only for an error the server sent without a code
    constraint = exc.constraint_name
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        if constraint in _EMAIL_UNIQUE:
            return EmailAlreadyRegistered(email)
        if constraint == _EVENT_KEY_UNIQUE:
            return EventKeyConflict()
        return ConstraintViolation(constraint)
    if isinstance(exc, asyncpg.exceptions.ForeignKeyViolationError):
        if constraint in _USER_FOREIGN_KEYS:
            return UserNotFound(user_id)
        return ConstraintViolation(constraint)
    if isinstance(exc, asyncpg.exceptions.IntegrityConstraintViolationError):
        return ConstraintViolation(constraint)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return TransactionConflict(sqlstate)
    if sqlstate == "25P02":
        return UnitOfWorkError.aborted()
    if sqlstate in _TIMEOUT_SQLSTATES:
        reason = _TIMEOUT_SQLSTATES[sqlstate]
        return DatabaseTimeout(
            f"the database gave up waiting ({reason} timeout, SQLSTATE {sqlstate})",
            reason=reason,
        )
    if isinstance(exc, asyncpg.exceptions.PostgresConnectionError) or (
        sqlstate in _UNAVAILABLE_SQLSTATES
    ):
        return DatabaseUnavailable(f"the database is unavailable (SQLSTATE {_code(exc)})")
    if isinstance(exc, asyncpg.exceptions.DataError):
        return InvalidInput(
            exc.column_name or "value", f"rejected by the database (SQLSTATE {_code(exc)})"
        )
    return DatabaseError(f"unexpected database error (SQLSTATE {_code(exc)})", sqlstate=sqlstate)


def _code(exc: asyncpg.PostgresError) -> str:
    return exc.sqlstate or "missing"


def translate_commit_error(exc: BaseException, *, executor: object) -> IdentityStoreError | None:
    """Return the domain error for a failed COMMIT, or None if ``exc`` is not a driver
    or socket error.

    An error the server sent in answer to COMMIT (a serialization failure, a deferred
    constraint) means the transaction was rolled back. No answer at all (the
    connection broke, the server was shut down, the client gave up waiting) means
    nobody knows: :class:`CommitOutcomeUnknown`.
    """
    translated = translate_error(exc, executor=executor)
    if isinstance(translated, DatabaseUnavailable | DatabaseTimeout):
        return CommitOutcomeUnknown(
            "the connection failed while committing: the transaction may or may not have "
            "committed (outcome unknown); retry only idempotent work, keeping event keys"
        )
    return translated


def raise_clean(error: BaseException) -> NoReturn:
    """Raise ``error`` with no ``__cause__`` and no ``__context__``, even from inside an
    ``except`` block or ``__exit__``, so the driver's error (and the row data its
    details may quote) is not attached to it."""
    try:
        raise error from None
    finally:
        error.__context__ = None


class translate_errors:  # noqa: N801 - used like a function: `with translate_errors():`
    """Re-raise driver and socket errors inside the block as domain errors (see
    :func:`translate_error` for the arguments), without chaining the original.

    Raises:
        IdentityStoreError: the translation.
    """

    __slots__ = ("_acquire_timeout", "_email", "_executor", "_on_server_error", "_user_id")

    def __init__(
        self,
        *,
        email: str | None = None,
        user_id: UUID | None = None,
        executor: object | None = None,
        acquire_timeout: float | None = None,
        on_server_error: Callable[[], None] | None = None,
    ) -> None:
        self._on_server_error = on_server_error
        self._email = email
        self._user_id = user_id
        self._executor = executor
        self._acquire_timeout = acquire_timeout

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if not isinstance(exc, Exception):  # no exception, or a cancellation or exit
            return False
        if self._on_server_error is not None and isinstance(exc, asyncpg.PostgresError):
            # The server refused a statement: its transaction (if any) is aborted.
            self._on_server_error()
        translated = translate_error(
            exc,
            email=self._email,
            user_id=self._user_id,
            executor=self._executor,
            acquire_timeout=self._acquire_timeout,
        )
        if translated is None:
            return False
        raise_clean(translated)
