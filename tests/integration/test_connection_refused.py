"""A server that refuses new connections makes the database unavailable, whatever
SQLSTATE it gives: the request itself was never wrong."""

from __future__ import annotations

import asyncpg
import pytest

from identity_store.domain.errors import DatabaseUnavailable
from identity_store.infrastructure.db import get_db
from identity_store.infrastructure.persistence.unit_of_work import PostgresUnitOfWork
from tests.conftest import MakeDatabase

pytestmark = pytest.mark.integration


async def refusing_database(make_database: MakeDatabase, admin_url: str) -> str:
    url = await make_database("closed")
    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    conn = await asyncpg.connect(admin_url)
    try:
        # SQLSTATE 55000 at connect: "database ... is not currently accepting connections".
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    finally:
        await conn.close()
    return url


async def test_a_unit_of_work_on_a_database_refusing_connections_is_unavailable(
    make_database: MakeDatabase, admin_url: str
) -> None:
    url = await refusing_database(make_database, admin_url)
    pool = await asyncpg.create_pool(url, min_size=0, max_size=1)
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            async with PostgresUnitOfWork(pool):
                pytest.fail("the unit of work must not start")
        assert "55000" in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None
        assert pool.get_size() == 0
    finally:
        await pool.close()


async def test_get_db_on_a_database_refusing_connections_is_unavailable(
    make_database: MakeDatabase, admin_url: str
) -> None:
    url = await refusing_database(make_database, admin_url)
    pool = await asyncpg.create_pool(url, min_size=0, max_size=1)
    try:
        with pytest.raises(DatabaseUnavailable, match="55000"):
            async for _ in get_db(pool):
                pytest.fail("no connection must be handed out")
    finally:
        await pool.close()
