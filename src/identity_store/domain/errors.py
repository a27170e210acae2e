"""Errors raised by identity-store, one small hierarchy.

Messages name the problem and the offending field, never a secret (no password, no
token secret, no full connection string).
"""

# The error names are the public API the issue specifies (EmailAlreadyRegistered,
# TokenInvalid, ...), read as sentences; an "Error" suffix would add nothing.
# ruff: noqa: N818

from __future__ import annotations


class IdentityStoreError(Exception):
    """Base of every error this package raises on purpose."""


class DatabaseConfigError(IdentityStoreError):
    """The database settings are unusable (unparseable URL, unknown option)."""


class DatabaseUnavailable(IdentityStoreError):
    """The database cannot be reached or refused us (host, port, credentials, name), the
    connection broke, or no server can take the work now (read-only, recovering, no host
    matching ``target_session_attrs`` while a failover is under way)."""


class CommitOutcomeUnknown(DatabaseUnavailable):
    """The connection broke (or the server stopped answering) while a COMMIT was under
    way: the transaction may have committed or not, and nobody can say which.

    Retry only work that is safe to repeat: an event appended with the same
    ``event_key`` is recorded once however often it is retried (``append`` returns the
    recorded one), so read back by that key, or retry the whole unit of work keeping
    every ``event_key``, before doing anything that must happen once.
    """


class DatabaseTimeout(IdentityStoreError):
    """The database did not answer in time, or no pooled connection became free in time.

    ``reason`` says which: ``"statement"`` (statement_timeout, SQLSTATE 57014, or the
    client's command timeout), ``"lock"`` (lock_timeout, SQLSTATE 55P03) or ``"acquire"``
    (the pool stayed exhausted for the acquire timeout). The database is up: this is
    contention or a slow query, not an outage. The transaction was rolled back; retry
    later or with less contention.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DatabaseError(IdentityStoreError):
    """The database failed in a way this package does not expect.

    ``sqlstate`` is the PostgreSQL error code when there is one. The driver's error is
    not chained (its details can quote row data); ``sqlstate`` and the message say
    what happened.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class InvalidInput(IdentityStoreError, ValueError):
    """A value was rejected before reaching the database; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class ConstraintViolation(IdentityStoreError):
    """The database refused a row that broke one of its checks.

    The domain models check the same rules first, so this means a rule exists in the
    schema that the models do not know about; ``constraint`` names it.
    """

    def __init__(self, constraint: str | None) -> None:
        super().__init__(f"the database refused the row: constraint {constraint or 'unknown'}")
        self.constraint = constraint


class UserNotFound(IdentityStoreError):
    """No user has this id."""

    def __init__(self, user_id: object | None = None) -> None:
        super().__init__(
            "the user does not exist" if user_id is None else f"user {user_id} does not exist"
        )
        self.user_id = user_id


class EmailAlreadyRegistered(IdentityStoreError):
    """Another user already has this e-mail address (compared regardless of case).

    The address is kept in ``email`` and left out of the message, which may be logged.
    """

    def __init__(self, email: str | None = None) -> None:
        super().__init__("this e-mail address is already registered")
        self.email = email


class ConcurrencyConflict(IdentityStoreError):
    """The stored version is not the one the change was based on: reload and retry."""

    def __init__(self, user_id: object, *, expected: int, actual: int) -> None:
        super().__init__(
            f"user {user_id} is at version {actual}, the change expected version {expected}"
        )
        self.user_id = user_id
        self.expected = expected
        self.actual = actual


class TransactionConflict(IdentityStoreError):
    """The transaction lost a race (serialization failure or deadlock): retry it whole."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"the transaction conflicted with another one (SQLSTATE {sqlstate})")
        self.sqlstate = sqlstate


class TokenInvalid(IdentityStoreError):
    """The presented token is unknown, expired, revoked, already used or of another kind.

    Deliberately one error for all of these, so a caller cannot tell them apart.
    """

    def __init__(self) -> None:
        super().__init__("the token is invalid")


class EventKeyConflict(IdentityStoreError):
    """An event with this ``event_key`` exists and is not the one being appended."""

    def __init__(self, event_key: object | None = None) -> None:
        where = f" {event_key}" if event_key is not None else ""
        super().__init__(f"event key{where} is already used by a different event")
        self.event_key = event_key


class UnitOfWorkError(IdentityStoreError):
    """A unit of work was used wrongly: entered twice, used outside ``async with``, or
    used after one of its statements failed (:meth:`aborted`)."""

    @classmethod
    def aborted(cls) -> UnitOfWorkError:
        """The error for a statement after a failed one: its transaction is aborted."""
        return cls(
            "an earlier statement of this unit of work failed, which aborted its "
            "transaction: leave the block (it rolls back) and retry the whole unit of work"
        )


class SubscriptionNotFound(IdentityStoreError):
    """No subscription has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"subscription {name!r} does not exist")
        self.name = name


class SubscriptionExists(IdentityStoreError):
    """A subscription with this name exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"subscription {name!r} exists already")
        self.name = name


class SubscriptionStopped(IdentityStoreError):
    """The subscription stopped on an event its handler failed on ``max_attempts``
    times (its ``on_failure`` is ``"stop"``): fix the handler, then ``reset`` it (to
    its position, to retry the event; or past the event)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"subscription {name!r} is stopped after repeated handler failures")
        self.name = name


class SubscriptionBehindRetention(IdentityStoreError):
    """The subscription's position is below the retained range of the stream: events
    it has not handled were purged (``purge_events(keep_unconsumed=False)``, or a
    ``reset`` to an older cursor). ``reset`` it (``"beginning"`` is the start of the
    retained range) once what the purged events should have caused is settled."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"subscription {name!r} is positioned below the retained events: "
            "events it has not handled were purged"
        )
        self.name = name
