"""The unit of work's failure paths, each checked by what can be observed afterwards:
the error's attributes, the rows (none written), the pool's connections (all back)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from identity_store._generated.db import init_connection
from identity_store.domain.errors import (
    DatabaseTimeout,
    DatabaseUnavailable,
    EmailAlreadyRegistered,
    TransactionConflict,
    UnitOfWorkError,
)
from identity_store.domain.models import NewEvent, NewToken, NewUser, TokenKind
from identity_store.infrastructure.persistence.unit_of_work import PostgresUnitOfWork, get_uow
from tests.conftest import Deployment

if TYPE_CHECKING:
    Pool = asyncpg.Pool[Any]

pytestmark = pytest.mark.integration


def new_user(tag: str = "fp") -> NewUser:
    return NewUser(email=f"{tag}-{uuid.uuid4().hex[:12]}@example.test", display_name=tag)


async def users_named(pool: Pool, display_name: str) -> int:
    return int(
        await pool.fetchval("SELECT count(*) FROM users WHERE display_name = $1", display_name)
    )


@pytest.fixture
async def small_pool(database_url: str) -> AsyncIterator[Pool]:
    """One connection, always open: a connection not given back is plain to see."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    yield pool
    await pool.close()


async def test_a_serialization_failure_at_commit_is_a_conflict_and_writes_nothing(
    pool: Pool,
) -> None:
    # Write skew: each transaction counts the rows of a tag, then adds one. Under
    # SERIALIZABLE the first COMMIT wins and the second fails AT COMMIT (40001).
    tag = f"skew-{uuid.uuid4().hex[:10]}"
    first = PostgresUnitOfWork(pool, isolation="serializable")
    second = PostgresUnitOfWork(pool, isolation="serializable")
    body_finished = False

    with pytest.raises(TransactionConflict) as caught:
        async with second:
            await second.users._db.fetchval(  # type: ignore[attr-defined]
                "SELECT count(*) FROM users WHERE display_name = $1", tag
            )
            async with first:
                await first.users._db.fetchval(  # type: ignore[attr-defined]
                    "SELECT count(*) FROM users WHERE display_name = $1", tag
                )
                await first.users.register(new_user(tag))
                await second.users.register(new_user(tag))
            body_finished = True

    assert body_finished, "the conflict must come from COMMIT, not from a statement"
    assert caught.value.sqlstate == "40001"
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert not second.active
    assert await users_named(pool, tag) == 1  # the first one's; the second wrote nothing


async def test_a_connection_dropped_at_commit_returns_no_connection_to_serve_again(
    small_pool: Pool, pool: Pool
) -> None:
    user = new_user()
    with pytest.raises(DatabaseUnavailable) as caught:
        async with PostgresUnitOfWork(small_pool) as uow:
            await uow.users.register(user)
            pid = await uow.users._db.fetchval("SELECT pg_backend_pid()")  # type: ignore[attr-defined]
            await pool.execute("SELECT pg_terminate_backend($1)", pid)
            # The server side is gone once pg_terminate_backend returned true and the
            # process left pg_stat_activity; wait for that, bounded.
            for _ in range(200):
                if not await pool.fetchval(
                    "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid
                ):
                    break
                await asyncio.sleep(0.01)

    assert "outcome unknown" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    # The pool's one connection came back (a fresh one): the next unit of work gets it.
    async with PostgresUnitOfWork(small_pool, acquire_timeout=5) as again:
        assert await again.users.get_by_email(user.email) is None
        assert await again.users._db.fetchval("SELECT pg_backend_pid()") != pid  # type: ignore[attr-defined]


async def test_a_failed_begin_gives_the_connection_back(database_url: str) -> None:
    # A connection handed out still inside a transaction (as a broken pool setup hook
    # would leave it) cannot BEGIN: the unit of work must give it back all the same.
    setups: list[int] = []

    async def leave_a_transaction_open_once(connection: Any) -> None:
        if not setups:
            await connection.execute("BEGIN")
        setups.append(1)

    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=1, setup=leave_a_transaction_open_once
    )
    try:
        assert pool.get_idle_size() == 1
        with pytest.raises(DatabaseUnavailable) as caught:
            async with PostgresUnitOfWork(pool, acquire_timeout=5):
                pytest.fail("the block must not run when BEGIN failed")
        assert caught.value.__cause__ is None and caught.value.__context__ is None

        assert pool.get_idle_size() == 1
        # Bounded: were the connection kept, this would be a DatabaseTimeout after 2 s.
        async with PostgresUnitOfWork(pool, acquire_timeout=2) as uow:
            assert await uow.users.get(uuid.uuid4()) is None
        assert pool.get_idle_size() == 1
    finally:
        await pool.close()


async def test_an_acquire_timeout_leaves_the_waiting_unit_of_work_inactive(
    small_pool: Pool,
) -> None:
    async with PostgresUnitOfWork(small_pool) as holder:
        waiting = PostgresUnitOfWork(small_pool, acquire_timeout=0.2)
        with pytest.raises(DatabaseTimeout) as caught:
            async with waiting:
                pass
        assert caught.value.reason == "acquire"
        assert "within 0.2 s" in str(caught.value)
        assert not waiting.active
        assert holder.active
    assert small_pool.get_idle_size() == 1


async def test_the_acquire_timeout_given_to_the_dependency_is_the_one_it_waits(
    small_pool: Pool,
) -> None:
    async with PostgresUnitOfWork(small_pool):
        dependency = get_uow(small_pool, acquire_timeout=0.2)
        with pytest.raises(DatabaseTimeout) as caught:
            await anext(dependency)

    assert caught.value.reason == "acquire"
    assert "within 0.2 s" in str(caught.value)
    assert small_pool.get_idle_size() == 1


async def test_entering_an_active_unit_of_work_again_fails_and_leaves_the_outer_one_working(
    small_pool: Pool,
) -> None:
    # The guard is tested on its own: the outer block goes on, commits, and returns its
    # connection. Without the guard the inner `async with` would wait for a second
    # connection of this one-connection pool, and then replace the outer transaction.
    uow = PostgresUnitOfWork(small_pool, acquire_timeout=1)
    user = new_user()

    async with uow:
        with pytest.raises(UnitOfWorkError) as caught:
            async with uow:
                pytest.fail("a nested block must not run")
        assert str(caught.value) == (
            "this unit of work is already active; nested units of work are not supported"
        )
        assert uow.active
        registered = await uow.users.register(user)

    assert not uow.active
    assert small_pool.get_idle_size() == 1
    async with PostgresUnitOfWork(small_pool) as check:
        assert await check.users.get(registered.id) == registered


async def test_leaving_a_unit_of_work_that_was_never_entered_is_an_error(pool: Pool) -> None:
    uow = PostgresUnitOfWork(pool)

    with pytest.raises(UnitOfWorkError) as caught:
        await uow.__aexit__(None, None, None)

    assert str(caught.value) == "use the repositories of a unit of work inside `async with`"


async def test_a_clock_given_to_a_unit_of_work_reaches_all_three_repositories(
    pool: Pool,
) -> None:
    fixed = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)

    async with PostgresUnitOfWork(pool, clock=lambda: fixed) as uow:
        user = await uow.users.register(new_user())
        issued = await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=2))
        )
        event = await uow.events.append(NewEvent(type="user.registered", user_id=user.id))

    assert user.created_at == fixed and user.updated_at == fixed
    assert issued.token.created_at == fixed
    assert issued.token.expires_at == fixed + timedelta(hours=2)
    assert event.recorded_at == fixed and event.occurred_at == fixed


async def test_a_clock_given_to_the_dependency_reaches_the_repositories(pool: Pool) -> None:
    fixed = datetime(2032, 1, 2, 3, 4, 5, tzinfo=UTC)
    dependency = get_uow(pool, clock=lambda: fixed)
    uow = await anext(dependency)
    user = await uow.users.register(new_user())
    with pytest.raises(StopAsyncIteration):
        await anext(dependency)

    assert user.created_at == fixed
    assert await pool.fetchval("SELECT created_at FROM users WHERE id = $1", user.id) == fixed


async def test_the_isolation_level_asked_for_is_the_one_the_transaction_has(pool: Pool) -> None:
    for level, shown in (
        ("read_committed", "read committed"),
        ("repeatable_read", "repeatable read"),
        ("serializable", "serializable"),
    ):
        async with PostgresUnitOfWork(pool, isolation=level) as uow:  # type: ignore[arg-type]
            current = await uow.users._db.fetchval("SHOW transaction_isolation")  # type: ignore[attr-defined]
        assert current == shown
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.users._db.fetchval("SHOW transaction_isolation") == "read committed"  # type: ignore[attr-defined]


async def test_a_connection_that_fails_to_reset_on_release_does_not_undo_the_commit(
    database_url: str,
) -> None:
    # asyncpg resets a connection as it goes back to the pool; when that fails it closes
    # the connection and raises. The unit of work has committed by then: leaving the
    # block must report success, and the pool must serve again with a new connection.
    resets: list[int] = []

    async def fail_the_first_reset(connection: Any) -> None:
        resets.append(1)
        if len(resets) == 1:
            raise ConnectionResetError("the reset failed")

    pool = await asyncpg.create_pool(
        database_url, min_size=1, max_size=1, reset=fail_the_first_reset
    )
    try:
        async with PostgresUnitOfWork(pool, acquire_timeout=5) as uow:
            user = await uow.users.register(new_user("reset"))

        assert resets == [1]
        async with PostgresUnitOfWork(pool, acquire_timeout=5) as uow:
            assert await uow.users.get(user.id) == user
    finally:
        await pool.close()


class _NoResetPool:
    """One real connection, handed out and taken back exactly as it is: a pool that,
    unlike asyncpg's, does not roll back what a caller left open on release."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def acquire(self, *, timeout: float | None = None) -> asyncpg.Connection:  # noqa: ASYNC109 - asyncpg's signature
        return self.connection

    async def release(self, connection: asyncpg.Connection) -> None:
        assert connection is self.connection


@pytest.fixture
async def no_reset_pool(deployment: Deployment) -> AsyncIterator[Any]:
    connection = await asyncpg.connect(deployment.app_url)
    await init_connection(connection)
    yield _NoResetPool(connection)
    await connection.close()


class _Boom(Exception):
    pass


async def test_a_unit_left_by_an_exception_rolls_back_itself_not_the_pool(
    no_reset_pool: Any, pool: Pool
) -> None:
    lost, kept = new_user("rolled-back"), new_user("rolled-back-next")
    with pytest.raises(_Boom):
        async with PostgresUnitOfWork(no_reset_pool) as uow:
            await uow.users.register(lost)
            raise _Boom

    assert not no_reset_pool.connection.is_in_transaction()
    async with PostgresUnitOfWork(no_reset_pool) as uow:  # the next user of the connection
        await uow.users.register(kept)
    assert await pool.fetchval("SELECT count(*) FROM users WHERE email = $1", lost.email) == 0
    assert await pool.fetchval("SELECT count(*) FROM users WHERE email = $1", kept.email) == 1


async def test_a_unit_whose_statement_failed_rolls_back_itself_though_the_block_caught_it(
    no_reset_pool: Any, pool: Pool
) -> None:
    taken, lost, kept = new_user("taken"), new_user("rolled-back"), new_user("rolled-back-next")
    async with PostgresUnitOfWork(no_reset_pool) as uow:
        await uow.users.register(taken)
    async with PostgresUnitOfWork(no_reset_pool) as uow:
        await uow.users.register(lost)
        with pytest.raises(EmailAlreadyRegistered):
            await uow.users.register(taken)  # aborts the transaction; the block goes on

    assert not no_reset_pool.connection.is_in_transaction()
    async with PostgresUnitOfWork(no_reset_pool) as uow:
        await uow.users.register(kept)
    assert await pool.fetchval("SELECT count(*) FROM users WHERE email = $1", lost.email) == 0
    assert await pool.fetchval("SELECT count(*) FROM users WHERE email = $1", kept.email) == 1
