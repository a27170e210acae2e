"""The application's connection: settings, pool, framework dependency, health check."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace

import asyncpg
import pytest

from identity_store.domain.errors import DatabaseConfigError, DatabaseUnavailable
from identity_store.infrastructure.db import Settings, check_health, create_pool, get_db
from identity_store.infrastructure.settings import parse_database_url
from tests.conftest import Deployment

pytestmark = pytest.mark.integration

MakeDatabase = Callable[[str], Awaitable[str]]


def _replace(url: str, **parts: object) -> str:
    """Return ``url`` with the DatabaseURL fields ``parts`` replaced."""
    return replace(parse_database_url(url), **parts).render()  # type: ignore[arg-type]


def _host(url: str) -> str:
    return parse_database_url(url).hosts[0][0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_select_one_through_create_pool(database_url: str) -> None:
    pool = await create_pool(Settings(database_url=database_url))
    try:
        assert await pool.fetchval("SELECT 1") == 1
        assert await check_health(pool) is True
    finally:
        await pool.close()


async def test_health_check_warns_of_a_transaction_holding_the_stream_back(
    pool: asyncpg.Pool, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="identity_store")

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "holds back the event" in r.getMessage()]

    assert await check_health(pool, max_transaction_age=3600) is True
    assert warnings() == []
    holder = await asyncpg.connect(database_url)  # the application's role, as the pool's
    try:
        async with holder.transaction():
            await holder.fetchval("SELECT pg_current_xact_id()")  # holds an xid
            await asyncio.sleep(0.2)
            assert await check_health(pool, max_transaction_age=0.1) is True
            assert await check_health(pool, max_transaction_age=3600) is True
    finally:
        await holder.close()
    assert len(warnings()) == 1
    assert "holds back the event stream" in warnings()[0]


async def test_select_one_through_get_db(pool: asyncpg.Pool) -> None:
    seen = []
    async for conn in get_db(pool):
        seen.append(await conn.fetchval("SELECT 1"))
    assert seen == [1]


async def test_health_check_reports_a_closed_pool_as_unhealthy(database_url: str) -> None:
    pool = await create_pool(Settings(database_url=database_url))
    await pool.close()
    assert await check_health(pool) is False


async def test_settings_accept_db_url_as_an_alias(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DB_URL", database_url)
    monkeypatch.setenv("DB_POOL_MAX_SIZE", "3")
    settings = Settings()
    assert settings.database_url.get_secret_value() == database_url
    assert settings.pool_max_size == 3
    assert "@" not in repr(settings)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url at all", "must start with postgresql://"),
        ("mysql://u:hunter2@localhost/db", "must start with postgresql:// or postgres://"),
        ("postgresql://u:hunter2@localhost:99999/db", "out of range 1-65535"),
    ],
)
def test_unparseable_urls_are_rejected_without_echoing_the_password(
    url: str, expected: str
) -> None:
    with pytest.raises(ValueError, match=expected) as caught:
        Settings(database_url=url)
    assert "hunter2" not in str(caught.value)


async def test_missing_database_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DB_URL", raising=False)
    monkeypatch.chdir("/")  # no .env file there
    with pytest.raises(DatabaseConfigError, match="DATABASE_URL \\(or DB_URL\\) is not set"):
        await create_pool()


async def test_bad_url_from_the_environment_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2@localhost:notaport/db")
    with pytest.raises(DatabaseConfigError) as caught:
        await create_pool()
    message = str(caught.value)
    assert "DATABASE_URL" in message
    assert "hunter2" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda u: _replace(u, database="no_such_database_here"), "the database does not exist"),
        (lambda u: _replace(u, password="wrong-password"), "password authentication failed"),
        (lambda u: _replace(u, hosts=((_host(u), _closed_port()),)), "cannot connect"),
        (
            lambda u: _replace(u, hosts=(("no-such-host.invalid", None),)),
            "unknown host|cannot connect",
        ),
    ],
    ids=["database-missing", "wrong-password", "nothing-listening", "unknown-host"],
)
async def test_unreachable_databases_give_one_line_naming_the_problem(
    deployment: Deployment, mutate: Callable[[str], str], expected: str
) -> None:
    # The server's own answers, even with --pgbouncer: PgBouncer reports a missing
    # database and a wrong password alike, as a protocol error (08P01).
    bad = mutate(deployment.app_url)
    secret = parse_database_url(bad).password or ""
    with pytest.raises(DatabaseUnavailable, match=expected) as caught:
        await create_pool(Settings(database_url=bad, connect_timeout=5))
    message = str(caught.value)
    assert "\n" not in message
    assert secret and secret not in message
    assert caught.value.__cause__ is None or not isinstance(
        caught.value.__cause__, asyncpg.PostgresError
    )
