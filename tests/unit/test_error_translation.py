"""Driver errors become domain errors by SQLSTATE and constraint name, never by text."""

from __future__ import annotations

import asyncio
import traceback
import uuid
from typing import Any

import asyncpg
import asyncpg.exceptions
import pytest

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
from identity_store.infrastructure._errors import (
    translate_commit_error,
    translate_error,
    translate_errors,
)
from identity_store.infrastructure._pool import AcquireTimeoutError
from identity_store.infrastructure.persistence.unit_of_work import PostgresUnitOfWork

pytestmark = pytest.mark.unit


def server_error(sqlstate: str, *, constraint: str | None = None, **extra: str) -> Exception:
    fields = {"C": sqlstate, "M": "the server's message, which we never parse", **extra}
    if constraint is not None:
        fields["n"] = constraint
    return asyncpg.PostgresError.new(fields)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (server_error("23505", constraint="users_email_key_key"), EmailAlreadyRegistered),
        (server_error("23505", constraint="events_event_key_key"), EventKeyConflict),
        (server_error("23505", constraint="tokens_token_hash_key"), ConstraintViolation),
        (server_error("23503", constraint="tokens_user_id_fkey"), UserNotFound),
        (server_error("23503", constraint="events_user_id_fkey"), UserNotFound),
        (server_error("23514", constraint="users_email_length"), ConstraintViolation),
        (server_error("23502"), ConstraintViolation),
        (server_error("40001"), TransactionConflict),
        (server_error("40P01"), TransactionConflict),
        (server_error("25P02"), UnitOfWorkError),
        (server_error("08006"), DatabaseUnavailable),
        (server_error("57P01"), DatabaseUnavailable),
        (server_error("57P03"), DatabaseUnavailable),
        (server_error("53300"), DatabaseUnavailable),
        (server_error("25006"), DatabaseUnavailable),
        (asyncpg.TargetServerAttributeNotMatched("no host"), DatabaseUnavailable),
        (server_error("57014"), DatabaseTimeout),
        (server_error("55P03"), DatabaseTimeout),
        (server_error("22021", c="display_name"), InvalidInput),
        (server_error("22P05"), InvalidInput),
        (server_error("54000"), DatabaseError),
        (server_error("42P01"), DatabaseError),
        (asyncpg.exceptions.ConnectionDoesNotExistError("gone"), DatabaseUnavailable),
        (asyncpg.InterfaceError("pool is closing"), DatabaseUnavailable),
        (ConnectionRefusedError(111, "refused"), DatabaseUnavailable),
        (OSError("network unreachable"), DatabaseUnavailable),
        (TimeoutError(), DatabaseTimeout),
        (AcquireTimeoutError(0.5), DatabaseTimeout),
        (asyncpg.InternalClientError("codec"), DatabaseError),
    ],
)
def test_each_driver_error_has_its_domain_error(
    error: Exception, expected: type[IdentityStoreError]
) -> None:
    translated = translate_error(error)

    assert type(translated) is expected
    assert "never parse" not in str(translated)


def test_a_client_side_encoding_error_is_invalid_input_not_an_outage() -> None:
    error = asyncpg.exceptions._base.DataError("invalid input for query argument $1")

    assert isinstance(translate_error(error), InvalidInput)


def test_errors_that_are_not_the_drivers_pass_through_untouched() -> None:
    assert translate_error(KeyError("x")) is None
    assert translate_error(UserNotFound()) is None

    with pytest.raises(KeyError), translate_errors():
        raise KeyError("x")


def test_the_translation_carries_no_trace_of_the_drivers_error() -> None:
    # PostgreSQL's detail quotes the row: the address here, a password hash elsewhere.
    address = "ada" + "@x.io"  # not spelled out on a line the traceback quotes
    original = server_error(
        "23505", constraint="users_email_key_key", D=f"Key (email_key)=({address}) exists."
    )

    with pytest.raises(EmailAlreadyRegistered) as caught, translate_errors(email=address):
        raise original

    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert caught.value.email == address
    assert address not in str(caught.value) and address not in repr(caught.value)
    logged = "".join(traceback.format_exception(caught.value))
    assert address not in logged and "Key (" not in logged


def test_no_trace_of_the_drivers_error_even_inside_an_except_block() -> None:
    try:
        raise ValueError("an application error holding a secret")
    except ValueError:
        with pytest.raises(DatabaseTimeout) as caught, translate_errors():
            raise server_error("55P03", D="Failing row contains (secret-hash)")  # noqa: B904

    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert caught.value.reason == "lock"


def test_a_missing_user_is_named_when_known() -> None:
    user_id = uuid.uuid4()

    with pytest.raises(UserNotFound) as caught, translate_errors(user_id=user_id):
        raise server_error("23503", constraint="tokens_user_id_fkey")

    assert caught.value.user_id == user_id and str(user_id) in str(caught.value)


def test_the_sqlstate_of_an_unexpected_error_is_kept() -> None:
    translated = translate_error(server_error("42P01"))

    assert isinstance(translated, DatabaseError) and translated.sqlstate == "42P01"
    assert "42P01" in str(translated)


class ClosedConnection:
    def is_closed(self) -> bool:
        return True


class OpenConnection:
    def is_closed(self) -> bool:
        return False


def test_a_client_error_on_a_closed_connection_means_the_database_is_unavailable() -> None:
    # asyncpg reports some connections killed mid-use as an InternalClientError.
    error = asyncpg.InternalClientError("cannot switch to state 11")

    assert isinstance(translate_error(error, executor=ClosedConnection()), DatabaseUnavailable)
    assert type(translate_error(error, executor=OpenConnection())) is DatabaseError


class RefusingConnection:
    """A released pooled connection: asking it anything raises."""

    def is_closed(self) -> bool:
        raise RuntimeError("this connection has been released back to the pool")


def test_a_client_error_on_a_connection_that_refuses_even_is_closed_means_unavailable() -> None:
    error = asyncpg.InternalClientError("cannot switch to state 11")

    assert isinstance(translate_error(error, executor=RefusingConnection()), DatabaseUnavailable)
    # Neither is_closed nor is_closing: nothing says the connection was lost.
    assert type(translate_error(error, executor=object())) is DatabaseError


def test_a_refused_new_connection_names_the_sqlstate() -> None:
    translated = translate_error(server_error("53300"), acquire_timeout=1)

    assert isinstance(translated, DatabaseUnavailable)
    assert str(translated) == "the database refused a new connection (SQLSTATE 53300)"


def test_an_error_the_server_sent_without_a_code_is_unexpected_with_no_sqlstate() -> None:
    translated = translate_error(asyncpg.PostgresError.new({"M": "no code"}))

    assert type(translated) is DatabaseError
    assert translated.sqlstate is None
    assert str(translated) == "unexpected database error (SQLSTATE missing)"


@pytest.mark.parametrize(
    ("sqlstate", "constraint"),
    [("23505", "some_other_key"), ("23503", "some_other_fkey"), ("23514", "some_check")],
)
def test_a_constraint_this_package_does_not_know_is_named_in_the_violation(
    sqlstate: str, constraint: str
) -> None:
    translated = translate_error(server_error(sqlstate, constraint=constraint))

    assert type(translated) is ConstraintViolation
    assert translated.constraint == constraint
    assert str(translated) == f"the database refused the row: constraint {constraint}"


class OpenPool:
    """What a pool offers to the check: ``is_closing``, no ``is_closed``."""

    def is_closing(self) -> bool:
        return False


class ClosingPool:
    def is_closing(self) -> bool:
        return True


def test_a_client_error_through_a_pool_depends_on_whether_the_pool_is_closing() -> None:
    encoding = asyncpg.exceptions._base.DataError("invalid input for query argument $1")
    internal = asyncpg.InternalClientError("cannot switch to state 11")

    assert isinstance(translate_error(encoding, executor=OpenPool()), InvalidInput)
    assert type(translate_error(internal, executor=OpenPool())) is DatabaseError
    assert isinstance(translate_error(internal, executor=ClosingPool()), DatabaseUnavailable)


def test_a_client_error_at_commit_on_a_closed_connection_is_an_unknown_outcome() -> None:
    error = asyncpg.InternalClientError("cannot switch to state 11")

    translated = translate_commit_error(error, executor=ClosedConnection())

    assert type(translated) is CommitOutcomeUnknown
    assert str(translated) == (
        "the connection failed while committing: the transaction may or may not have "
        "committed (outcome unknown); retry only idempotent work, keeping event keys"
    )
    assert type(translate_commit_error(error, executor=OpenConnection())) is DatabaseError


# --- the unit of work's COMMIT, with stand-ins for the driver ---------------------------
# asyncpg reports some connections broken mid-use as an InternalClientError (not an
# InterfaceError), and only the connection's own state (closed) tells that the outcome
# is unknown; no real server can be made to produce that on demand. Stand-ins play the
# pool, the connection and its transaction; everything else is the real unit of work.


class _Transaction:
    def __init__(self, failure: BaseException, *, at_begin: bool = False) -> None:
        self._failure = failure
        self._at_begin = at_begin

    async def start(self) -> None:
        if self._at_begin:
            raise self._failure

    async def commit(self) -> None:
        raise self._failure

    async def rollback(self) -> None:
        return None


class _Connection:
    def __init__(self, failure: BaseException, *, closed: bool, at_begin: bool = False) -> None:
        self._failure = failure
        self._closed = closed
        self._at_begin = at_begin
        self.terminated = False

    def transaction(self, **_: Any) -> _Transaction:
        return _Transaction(self._failure, at_begin=self._at_begin)

    def is_closed(self) -> bool:
        return self._closed

    def terminate(self) -> None:
        self.terminated = True


class _Pool:
    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.released: list[_Connection] = []

    async def acquire(self, **_: object) -> _Connection:
        return self.connection

    async def release(self, connection: _Connection) -> None:
        self.released.append(connection)


def _unit_of_work(pool: _Pool) -> PostgresUnitOfWork:
    return PostgresUnitOfWork(pool, acquire_timeout=1)  # type: ignore[arg-type]


async def test_the_unit_of_work_calls_a_client_error_at_commit_when_closed_unknown() -> None:
    connection = _Connection(asyncpg.InternalClientError("cannot switch to state 11"), closed=True)
    pool = _Pool(connection)

    with pytest.raises(CommitOutcomeUnknown) as caught:
        async with _unit_of_work(pool):
            pass

    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert connection.terminated  # it must not serve again
    assert pool.released == [connection]


async def test_the_unit_of_work_reports_the_same_error_on_an_open_connection_as_unexpected() -> (
    None
):
    connection = _Connection(asyncpg.InternalClientError("codec"), closed=False)
    pool = _Pool(connection)

    with pytest.raises(DatabaseError) as caught:
        async with _unit_of_work(pool):
            pass

    assert type(caught.value) is DatabaseError
    assert not connection.terminated
    assert pool.released == [connection]


async def test_a_client_error_at_begin_on_a_closed_connection_means_unavailable() -> None:
    error = asyncpg.InternalClientError("cannot switch to state 11")
    connection = _Connection(error, closed=True, at_begin=True)
    pool = _Pool(connection)
    uow = _unit_of_work(pool)

    with pytest.raises(DatabaseUnavailable):
        async with uow:
            pytest.fail("the block must not run when BEGIN failed")

    assert not uow.active
    assert pool.released == [connection]


# --- what each client-side failure becomes, in full -------------------------------------


@pytest.mark.parametrize(
    ("error", "executor", "expected", "message"),
    [
        (
            TimeoutError(),
            None,
            DatabaseTimeout,
            "the database did not answer within the command timeout",
        ),
        (
            asyncpg.InternalClientError("cannot switch to state 11"),
            ClosedConnection(),
            DatabaseUnavailable,
            "the connection to the database was lost",
        ),
        (
            asyncpg.exceptions._base.DataError("invalid input for query argument $1"),
            OpenConnection(),
            InvalidInput,
            "value: the database driver could not encode a value",
        ),
        (
            asyncpg.InterfaceError("connection is closed"),
            None,
            DatabaseUnavailable,
            "the database is unreachable or the connection broke",
        ),
        (
            ConnectionResetError("reset by peer"),
            None,
            DatabaseUnavailable,
            "the database is unreachable or the connection broke",
        ),
        (
            asyncpg.InternalClientError("codec"),
            OpenConnection(),
            DatabaseError,
            "unexpected database client error (InternalClientError)",
        ),
        (
            asyncpg.TargetServerAttributeNotMatched("None of the hosts match"),
            None,
            DatabaseUnavailable,
            "no host of the database URL accepts this session now (target_session_attrs)",
        ),
    ],
)
def test_each_client_side_failure_becomes_one_domain_error_with_its_message(
    error: BaseException, executor: object, expected: type[Exception], message: str
) -> None:
    translated = translate_error(error, executor=executor)

    assert type(translated) is expected
    assert str(translated) == message
    if isinstance(translated, DatabaseTimeout):
        assert translated.reason == "statement"
    if isinstance(translated, InvalidInput):
        assert (translated.field, translated.problem) == (
            "value",
            "the database driver could not encode a value",
        )
    with pytest.raises(expected) as caught, translate_errors(executor=executor):
        raise error
    assert str(caught.value) == message


@pytest.mark.parametrize("stop", [asyncio.CancelledError(), KeyboardInterrupt(), SystemExit(3)])
def test_a_cancellation_or_exit_inside_the_block_goes_through_untranslated(
    stop: BaseException,
) -> None:
    with pytest.raises(type(stop)), translate_errors(executor=ClosedConnection()):
        raise stop


def test_the_pools_acquire_timeout_is_an_acquire_timeout_wherever_it_is_raised() -> None:
    translated = translate_error(AcquireTimeoutError(0.5))
    assert isinstance(translated, DatabaseTimeout)
    assert translated.reason == "acquire"
    assert str(translated) == (
        "no database connection became free within 0.5 s "
        "(the pool is exhausted: more concurrent work than DB_POOL_MAX_SIZE)"
    )
