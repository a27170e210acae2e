"""The read-only unit of work and the read pool's settings, on a real server (a primary
here; tests/reliability/test_failover.py reads from a real standby)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from identity_store import (
    NewEvent,
    NewToken,
    NewUser,
    PostgresReadUnitOfWork,
    PostgresUnitOfWork,
    ReadUnitOfWork,
    Settings,
    TokenKind,
    UnitOfWorkError,
    check_health,
    create_pool,
    replica_lag,
)
from identity_store.domain import ports

if TYPE_CHECKING:
    Pool = asyncpg.Pool[Any]

pytestmark = pytest.mark.integration


def _reads(port: type) -> set[str]:
    return {name for name in vars(port) if not name.startswith("_")}


def test_each_repository_port_is_its_reader_plus_writes() -> None:
    assert _reads(ports.UserReader) == {"get", "get_by_email", "list_page"}
    assert _reads(ports.TokenReader) == {"get", "verify", "list_live_for_user"}
    assert _reads(ports.EventReader) == {"get", "list_for_user", "read_stream", "count_by_type"}
    for reader, repository in [
        (ports.UserReader, ports.UserRepository),
        (ports.TokenReader, ports.TokenRepository),
        (ports.EventReader, ports.EventRepository),
    ]:
        assert reader in repository.__mro__


async def test_a_read_unit_of_work_reads_what_was_committed(pool: Pool) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        user = await uow.users.register(
            NewUser(email=f"read-{uuid.uuid4().hex[:12]}@example.test", display_name="R")
        )
        issued = await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
        )
        event = await uow.events.append(NewEvent(type="read.tested", user_id=user.id))

    reader: ReadUnitOfWork = PostgresReadUnitOfWork(pool)
    async with reader as ro:
        assert await ro.users.get(user.id) == user
        assert await ro.users.get_by_email(user.email) == user
        assert (await ro.tokens.verify(issued.secret.get_secret_value())) == issued.token
        assert await ro.tokens.list_live_for_user(user.id) == [issued.token]
        assert await ro.events.list_for_user(user.id) == [event]
        assert (await ro.events.count_by_type(["read.tested"]))["read.tested"] >= 1


@pytest.mark.parametrize(
    ("repository", "method"),
    [("users", "register"), ("users", "delete"), ("tokens", "touch"), ("events", "append")],
)
async def test_a_write_through_a_read_unit_of_work_is_refused_naming_it(
    pool: Pool, repository: str, method: str
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM users")
    async with PostgresReadUnitOfWork(pool) as ro:
        with pytest.raises(UnitOfWorkError, match=rf"^{method} is not a read"):
            getattr(getattr(ro, repository), method)
    assert await pool.fetchval("SELECT count(*) FROM users") == before


async def test_its_transaction_is_read_only_on_the_server(pool: Pool) -> None:
    async with PostgresReadUnitOfWork(pool) as ro:
        # The server refuses writes too, whatever reaches it.
        connection = ro._uow._require_active().connection
        assert await connection.fetchval("SHOW transaction_read_only") == "on"


async def test_settings_for_reads_use_the_read_url_or_prefer_a_standby() -> None:
    settings = Settings(database_url="postgresql://app:p%40ss@db1:5432,db2:5432/identity")
    reads = settings.for_reads().parsed_url
    assert dict(reads.query)["target_session_attrs"] == "prefer-standby"
    assert reads.hosts == settings.parsed_url.hosts
    assert reads.password == "p@ss"
    replica = "postgresql://ro:x@replica:5432/identity?target_session_attrs=read-only"
    with_read = Settings(database_url=settings.database_url, read_database_url=replica)
    assert with_read.for_reads().parsed_url.hosts == (("replica", 5432),)
    assert with_read.for_reads().pool_max_size == with_read.pool_max_size


async def test_a_read_pool_on_a_primary_works_and_says_so_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="identity_store")
    read_pool = await create_pool(settings.for_reads())
    try:
        assert await replica_lag(read_pool) is None
        assert await check_health(read_pool)
        for _ in range(3):
            async with PostgresReadUnitOfWork(read_pool) as ro:
                await ro.users.list_page(limit=1)
    finally:
        await read_pool.close()
    told = [r for r in caplog.records if "read pool reaches a primary" in r.getMessage()]
    assert len(told) == 1
