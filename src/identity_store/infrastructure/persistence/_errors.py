"""Translation of driver errors into domain errors, by SQLSTATE and constraint name.

Every call into the generated layer runs inside :func:`translate_errors`, so no
asyncpg exception leaves this package. Messages never quote the driver's message
(which can echo values); the original error stays available as ``__cause__``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from uuid import UUID

import asyncpg
import asyncpg.exceptions

from identity_store.domain.errors import (
    ConstraintViolation,
    DatabaseError,
    DatabaseUnavailable,
    EmailAlreadyRegistered,
    EventKeyConflict,
    IdentityStoreError,
    InvalidInput,
    TransactionConflict,
    UserNotFound,
)

__all__ = ["translate_error", "translate_errors"]

_EMAIL_UNIQUE = "users_email_lower_key"
_EVENT_KEY_UNIQUE = "events_event_key_key"
_USER_FOREIGN_KEYS = frozenset({"tokens_user_id_fkey", "events_user_id_fkey"})

# SQLSTATEs meaning the server went away, is starting or stopping, is full, or gave up
# waiting: the database is unavailable rather than the request wrong.
_UNAVAILABLE_SQLSTATES = frozenset(
    {"53300", "57014", "57P01", "57P02", "57P03", "57P04", "57P05", "3D000", "28000", "28P01"}
)
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
) -> IdentityStoreError | None:
    """Return the domain error for a driver or socket error, or None if ``exc`` is
    neither (it then propagates unchanged).

    ``email`` and ``user_id`` only fill in the returned error's attributes.
    ``executor`` is the connection or pool the failed call used: when it has been
    closed, any client-side error (asyncpg reports some broken connections as an
    ``InternalClientError``) means the database is unavailable.
    """
    if isinstance(exc, IdentityStoreError):
        return None
    if isinstance(exc, asyncpg.PostgresError):
        return _from_sqlstate(exc, email=email, user_id=user_id)
    from_driver = type(exc).__module__.startswith("asyncpg")
    if from_driver and executor is not None and _connection_lost(executor):
        return DatabaseUnavailable("the connection to the database was lost")
    if isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError):
        # asyncpg refused to encode an argument before sending it.
        return InvalidInput("value", "the database driver could not encode a value")
    if isinstance(exc, asyncpg.InterfaceError | OSError):
        # Closed connection or pool, refused or reset socket, timeout (TimeoutError is
        # an OSError).
        return DatabaseUnavailable("the database is unreachable or did not answer in time")
    if from_driver:
        return DatabaseError(f"unexpected database client error ({type(exc).__name__})")
    return None


def _from_sqlstate(
    exc: asyncpg.PostgresError, *, email: str | None, user_id: UUID | None
) -> IdentityStoreError:
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    constraint = getattr(exc, "constraint_name", None)
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        if constraint == _EMAIL_UNIQUE:
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
    if isinstance(exc, asyncpg.exceptions.PostgresConnectionError) or (
        sqlstate in _UNAVAILABLE_SQLSTATES
    ):
        return DatabaseUnavailable(f"the database is unavailable (SQLSTATE {sqlstate})")
    if isinstance(exc, asyncpg.exceptions.DataError):
        column = getattr(exc, "column_name", None)
        return InvalidInput(column or "value", f"rejected by the database (SQLSTATE {sqlstate})")
    return DatabaseError(f"unexpected database error (SQLSTATE {sqlstate})", sqlstate=sqlstate)


@contextlib.contextmanager
def translate_errors(
    *, email: str | None = None, user_id: UUID | None = None, executor: object | None = None
) -> Iterator[None]:
    """Re-raise driver and socket errors inside the block as domain errors (see
    :func:`translate_error` for the arguments).

    Raises:
        IdentityStoreError: the translation, chained ``from`` the original error.
    """
    try:
        yield
    except Exception as exc:
        translated = translate_error(exc, email=email, user_id=user_id, executor=executor)
        if translated is None:
            raise
        raise translated from exc
