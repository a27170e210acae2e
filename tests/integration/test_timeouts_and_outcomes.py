"""Waiting has bounds and each bound its own error; a broken COMMIT says its outcome is
unknown; no error carries the driver's details (which quote row data)."""

from __future__ import annotations

import asyncio
import traceback
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from identity_store._generated.db import init_connection
from identity_store.domain.errors import (
    CommitOutcomeUnknown,
    DatabaseTimeout,
    DatabaseUnavailable,
    EmailAlreadyRegistered,
    EventKeyConflict,
)
from identity_store.domain.models import NewEvent, NewUser, UserUpdate
from identity_store.infrastructure.db import Settings, create_pool, get_db
from identity_store.infrastructure.persistence.event_repo import PostgresEventRepository
from identity_store.infrastructure.persistence.unit_of_work import PostgresUnitOfWork
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository
from tests.conftest import Deployment

if TYPE_CHECKING:
    Pool = asyncpg.Pool[Any]

pytestmark = pytest.mark.integration


def new_user() -> NewUser:
    return NewUser(email=f"to-{uuid.uuid4().hex[:12]}@example.test", display_name="Timeouts")


@pytest.fixture
async def one_connection_pool(database_url: str) -> AsyncIterator[Pool]:
    pool = await create_pool(
        Settings(database_url=database_url, pool_min_size=0, pool_max_size=1, acquire_timeout=0.3)
    )
    yield pool
    await pool.close()


async def test_a_unit_of_work_on_an_exhausted_pool_raises_database_timeout(
    one_connection_pool: Pool,
) -> None:
    async with PostgresUnitOfWork(one_connection_pool):
        with pytest.raises(DatabaseTimeout) as caught:
            async with PostgresUnitOfWork(one_connection_pool):
                pass

    assert caught.value.reason == "acquire"
    assert "0.3 s" in str(caught.value)
    assert not isinstance(caught.value, DatabaseUnavailable)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    # The pool serves again once the connection is back.
    async with PostgresUnitOfWork(one_connection_pool) as uow:
        assert await uow.users.get(uuid.uuid4()) is None


async def test_every_way_to_a_connection_is_bounded_and_says_it_waited_for_the_pool(
    one_connection_pool: Pool,
) -> None:
    async with PostgresUnitOfWork(one_connection_pool):
        # A repository on the pool waits inside pool.fetch(), where asyncpg raises the
        # same TimeoutError for the acquire as for the statement: still "acquire".
        with pytest.raises(DatabaseTimeout) as on_the_pool:
            await PostgresUserRepository(one_connection_pool).get(uuid.uuid4())
        with pytest.raises(DatabaseTimeout) as from_get_db:
            async for _ in get_db(one_connection_pool):
                pass
        with pytest.raises(DatabaseTimeout) as from_a_unit:
            async with PostgresUnitOfWork(one_connection_pool):
                pass
    for caught in (on_the_pool, from_get_db, from_a_unit):
        assert caught.value.reason == "acquire"
        assert "0.3 s" in str(caught.value)


async def test_a_server_that_does_not_answer_is_unavailable_not_an_exhausted_pool() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, never answers, until the client goes

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = Settings(
        database_url=f"postgresql://app:pw@127.0.0.1:{port}/nowhere?sslmode=disable",
        pool_min_size=0,
        connect_timeout=0.3,
        acquire_timeout=3,
    )
    try:
        with pytest.raises(DatabaseUnavailable):
            await create_pool(settings.model_copy(update={"pool_min_size": 1}))
        pool = await create_pool(settings)
        try:
            with pytest.raises(DatabaseUnavailable):
                async with PostgresUnitOfWork(pool):
                    pass
            with pytest.raises(DatabaseUnavailable):
                await PostgresUserRepository(pool).get(uuid.uuid4())
            with pytest.raises(DatabaseUnavailable):
                async for _ in get_db(pool):
                    pass
        finally:
            pool.terminate()
    finally:
        server.close()
        await server.wait_closed()


async def test_the_acquire_timeout_is_a_setting_with_a_default(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    assert Settings(database_url=database_url).acquire_timeout == 10.0
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DB_ACQUIRE_TIMEOUT", "2.5")
    assert Settings().acquire_timeout == 2.5


async def _pool_with(database_url: str, **server_settings: str) -> Pool:
    return await asyncpg.create_pool(
        database_url, min_size=0, max_size=2, init=init_connection, server_settings=server_settings
    )


@pytest.mark.parametrize(
    ("setting", "reason"), [("lock_timeout", "lock"), ("statement_timeout", "statement")]
)
async def test_waiting_for_a_lock_too_long_is_a_timeout_not_an_outage(
    pool: Pool, deployment: Deployment, setting: str, reason: str
) -> None:
    user = await PostgresUserRepository(pool).register(new_user())
    # Straight to the server even with --pgbouncer: PgBouncer refuses startup
    # parameters such as lock_timeout (behind it, set them on the role instead).
    impatient = await _pool_with(deployment.app_url, **{setting: "200"})
    try:
        async with PostgresUnitOfWork(pool) as holder:
            await holder.users.update(user.id, UserUpdate(display_name="A"), expected_version=1)
            with pytest.raises(DatabaseTimeout) as caught:
                async with PostgresUnitOfWork(impatient) as waiter:
                    await waiter.users.update(
                        user.id, UserUpdate(display_name="B"), expected_version=1
                    )
    finally:
        await impatient.close()

    assert caught.value.reason == reason
    assert not isinstance(caught.value, DatabaseUnavailable)
    assert (await PostgresUserRepository(pool).get(user.id)).display_name == "A"  # type: ignore[union-attr]


async def test_a_connection_lost_before_commit_answers_raises_commit_outcome_unknown(
    pool: Pool,
) -> None:
    new = new_user()
    key = uuid.uuid4()

    with pytest.raises(CommitOutcomeUnknown) as caught:
        async with PostgresUnitOfWork(pool) as uow:
            user = await uow.users.register(new)
            await uow.events.append(
                NewEvent(type="user.registered", user_id=user.id, event_key=key)
            )
            pid = await uow.users._db.fetchval("SELECT pg_backend_pid()")  # type: ignore[attr-defined]
            await pool.execute("SELECT pg_terminate_backend($1)", pid)
            # COMMIT goes out once the server process is gone (bounded wait).
            for _ in range(100):
                gone = await pool.fetchval(
                    "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $1)", pid
                )
                if gone:
                    break
                await asyncio.sleep(0.02)

    assert isinstance(caught.value, DatabaseUnavailable)
    assert "outcome unknown" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    # Retrying with the same event key is safe whatever happened.
    async with PostgresUnitOfWork(pool) as retry:
        found = await retry.users.get_by_email(new.email)
        user = found or await retry.users.register(new)
        again = await retry.events.append(
            NewEvent(type="user.registered", user_id=user.id, event_key=key)
        )
    assert again.event_key == key
    assert await pool.fetchval("SELECT count(*) FROM events WHERE event_key = $1", key) == 1


async def test_a_duplicate_address_leaves_no_trace_of_it_in_the_error(pool: Pool) -> None:
    new = new_user()
    users = PostgresUserRepository(pool)
    await users.register(new)

    with pytest.raises(EmailAlreadyRegistered) as caught:
        await users.register(new.model_copy(update={"email": new.email.upper()}))

    assert caught.value.__cause__ is None and caught.value.__context__ is None
    logged = "".join(traceback.format_exception(caught.value)).lower()
    assert new.email.lower() not in logged


async def test_a_refused_batch_leaves_no_trace_of_the_drivers_error(pool: Pool) -> None:
    user = await PostgresUserRepository(pool).register(new_user())
    events = PostgresEventRepository(pool)
    recorded = await events.append(NewEvent(type="user.seen", user_id=user.id))

    # Appending the recorded key again in one COPY fails the whole batch.
    with pytest.raises(EventKeyConflict) as caught:
        await events.append_many(
            [NewEvent(type="user.seen", user_id=user.id, event_key=recorded.event_key)]
        )

    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert "Key (" not in "".join(traceback.format_exception(caught.value))
