"""A server that is there but cannot take the work now is unavailable, not a bug.

During a failover no host accepts writes for a few seconds: with
``target_session_attrs=read-write`` asyncpg refuses every host at connect, and a session
that landed on a read-only server is refused its first write (SQLSTATE 25006). Both
must read as :class:`DatabaseUnavailable` (retry later; a web service answers 503),
from ``create_pool`` as from units of work, repositories on the pool and ``get_db``.
A read-only database stands in for the cluster here: asyncpg decides ``read-write`` by
the session's ``default_transaction_read_only`` before it asks about recovery.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from identity_store import (
    CommitOutcomeUnknown,
    DatabaseUnavailable,
    NewUser,
    PostgresUnitOfWork,
    PostgresUserRepository,
    Settings,
    create_pool,
)
from identity_store.fastapi import add_error_handlers
from identity_store.infrastructure.db import get_db
from tests.conftest import Deploy, Deployment

pytestmark = pytest.mark.integration


def a_new_user() -> NewUser:
    return NewUser(email=f"ro-{uuid.uuid4().hex}@example.test", display_name="Read only")


def read_write(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}target_session_attrs=read-write"


@pytest.fixture(scope="module")
async def ro_db(deploy: Deploy) -> Deployment:
    """A database of its own: the tests below make it read-only."""
    return await deploy("read_only")


async def _set_read_only(deployment: Deployment, on: bool) -> None:
    database = deployment.admin_url.rsplit("/", 1)[1].split("?")[0]
    # As the database's owner (no superuser needed), in a session that stays writable,
    # or it could not undo this.
    admin = await asyncpg.connect(
        deployment.owner_url, server_settings={"default_transaction_read_only": "off"}
    )
    try:
        if on:
            await admin.execute(
                f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'
            )
        else:
            await admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
    finally:
        await admin.close()


@pytest.fixture
async def read_only(ro_db: Deployment) -> AsyncIterator[Deployment]:
    """The database, read-only for every new session until the test ends."""
    await _set_read_only(ro_db, True)
    try:
        yield ro_db
    finally:
        await _set_read_only(ro_db, False)


async def users_named(deployment: Deployment, email: str) -> int:
    conn = await asyncpg.connect(deployment.admin_url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", email))
    finally:
        await conn.close()


async def test_the_first_write_on_a_read_only_server_is_unavailable_and_nothing_is_written(
    read_only: Deployment,
) -> None:
    new = a_new_user()
    pool = await create_pool(Settings(database_url=read_only.app_url, pool_max_size=2))
    try:
        with pytest.raises(DatabaseUnavailable) as in_a_unit:
            async with PostgresUnitOfWork(pool) as uow:
                assert await uow.users.get_by_email(new.email) is None  # reading works
                await uow.users.register(new)
        with pytest.raises(DatabaseUnavailable) as on_the_pool:
            await PostgresUserRepository(pool).register(new)
    finally:
        await pool.close()

    for caught in (in_a_unit, on_the_pool):
        assert not isinstance(caught.value, CommitOutcomeUnknown)
        assert "25006" in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert await users_named(read_only, new.email) == 0


async def test_no_host_accepting_writes_is_unavailable_everywhere_then_the_pool_serves_again(
    ro_db: Deployment,
) -> None:
    url = read_write(ro_db.app_url)
    with_no_connection = Settings(database_url=url, pool_min_size=0, pool_max_size=2)
    pool = await create_pool(with_no_connection)
    new = a_new_user()
    try:
        await _set_read_only(ro_db, True)
        try:
            with pytest.raises(DatabaseUnavailable):
                await create_pool(Settings(database_url=url))
            with pytest.raises(DatabaseUnavailable):
                async with PostgresUnitOfWork(pool) as uow:
                    await uow.users.register(new)
            with pytest.raises(DatabaseUnavailable):
                await PostgresUserRepository(pool).register(new)
            with pytest.raises(DatabaseUnavailable):
                async for _ in get_db(pool):
                    pass
        finally:
            await _set_read_only(ro_db, False)
        # The cluster has a primary again: the same pool writes without help.
        async with PostgresUnitOfWork(pool) as uow:
            await uow.users.register(new)
    finally:
        await pool.close()
    assert await users_named(ro_db, new.email) == 1


async def test_a_web_service_answers_503_with_retry_after_while_no_host_takes_writes(
    ro_db: Deployment,
) -> None:
    pool = await create_pool(
        Settings(database_url=read_write(ro_db.app_url), pool_min_size=0, pool_max_size=2)
    )
    app = FastAPI()
    add_error_handlers(app, retry_after=3)

    @app.post("/users", status_code=201)
    async def register() -> None:
        async with PostgresUnitOfWork(pool) as uow:
            await uow.users.register(a_new_user())

    try:
        await _set_read_only(ro_db, True)
        try:
            transport = ASGITransport(app=app)
            async with AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.post("/users")
        finally:
            await _set_read_only(ro_db, False)
    finally:
        await pool.close()
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "3"
    assert response.headers["Content-Type"].startswith("application/problem+json")
