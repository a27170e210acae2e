"""The ``identity_store`` logger: what the package says about its pool, its connections
and slow statements, and that no record carries a secret or personal data."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import uuid
from datetime import timedelta

import asyncpg
import pytest

from identity_store import (
    NewToken,
    NewUser,
    PostgresUnitOfWork,
    Settings,
    TokenKind,
    UserUpdate,
    create_pool,
)
from identity_store.infrastructure import _observe
from identity_store.infrastructure._observe import PoolObserver, query_name
from identity_store.infrastructure.settings import parse_database_url

pytestmark = pytest.mark.integration

PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


def _ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.split(".")[0] == "identity_store"]


def _everything_in(record: logging.LogRecord) -> str:
    """The message and every attribute a handler or formatter could print."""
    return " ".join([record.getMessage(), *(repr(v) for v in vars(record).values())])


def test_importing_the_package_configures_no_logging() -> None:
    code = (
        "import logging, identity_store, identity_store.fastapi, identity_store.dev\n"
        "log = logging.getLogger('identity_store')\n"
        "root = logging.getLogger()\n"
        "print(log.handlers, log.level, log.propagate, root.handlers, root.level)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert out == "[] 0 True [] 30"


async def test_a_whole_life_cycle_logs_no_secret_and_no_personal_data(
    identity_store_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="identity_store")
    email = f"Grace.{uuid.uuid4().hex[:8]}@example.com"
    # Every statement counts as slow: each one is logged, by name only.
    settings = identity_store_settings.model_copy(update={"slow_statement_seconds": 1e-9})
    pool = await create_pool(settings)
    try:
        async with PostgresUnitOfWork(pool) as uow:
            user = await uow.users.register(
                NewUser(email=email, display_name="Grace Hopper", password_hash=PASSWORD_HASH)
            )
            issued = await uow.tokens.issue(
                NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
            )
        secret = issued.secret.get_secret_value()
        async with PostgresUnitOfWork(pool) as uow:
            assert await uow.tokens.verify(secret) is not None
            await uow.users.update(
                user.id, UserUpdate(display_name="G. Hopper"), expected_version=1
            )
    finally:
        await pool.close()

    ours = _ours(caplog)
    text = "\n".join(_everything_in(r) for r in ours)
    for private in (email, email.lower(), "Grace Hopper", "G. Hopper", PASSWORD_HASH, secret):
        assert private not in text
    assert settings.database_url.get_secret_value() not in text
    assert str(settings.parsed_url.password) not in text

    messages = [r.getMessage() for r in ours]
    assert messages[0].startswith("database pool created: ")
    assert messages[-1].startswith("database pool closed: ")
    slow = {getattr(r, "query_name", None) for r in ours if "slow statement" in r.getMessage()}
    assert {"CreateUser", "CreateToken", "UpdateUser", "BEGIN", "COMMIT"} <= slow, slow
    assert all(r.levelno == logging.WARNING for r in ours if "slow statement" in r.getMessage())


async def test_nothing_is_slow_below_the_threshold(
    identity_store_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="identity_store")
    pool = await create_pool(identity_store_settings)
    try:
        async with PostgresUnitOfWork(pool) as uow:
            await uow.users.get(uuid.uuid4())
    finally:
        await pool.close()
    assert not [r for r in _ours(caplog) if "slow statement" in r.getMessage()]


def _maintenance(url: str) -> str:
    return parse_database_url(url).with_database("postgres").render()


async def test_a_lost_connection_is_logged_once_then_its_recovery(
    identity_store_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="identity_store")
    url = identity_store_settings.database_url.get_secret_value()
    pool = await create_pool(identity_store_settings)
    admin = await asyncpg.connect(_maintenance(url))
    try:
        async with pool.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            running = asyncio.ensure_future(conn.fetchval("SELECT pg_sleep(30)"))
            for _ in range(500):
                state = await admin.fetchval(
                    "SELECT state FROM pg_stat_activity WHERE pid = $1", pid
                )
                if state == "active":
                    break
                await asyncio.sleep(0.01)
            # The server ends the session under a running statement (waits up to 10 s).
            assert await admin.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
                await running
        async with PostgresUnitOfWork(pool) as uow:
            await uow.users.get(uuid.uuid4())
        async with PostgresUnitOfWork(pool) as uow:
            await uow.users.get(uuid.uuid4())
    finally:
        await admin.close()
        await pool.close()

    messages = [r.getMessage() for r in _ours(caplog)]
    lost = [m for m in messages if m.startswith("database connection lost")]
    recovered = [m for m in messages if m.startswith("database connection recovered")]
    assert len(lost) == 1 and len(recovered) == 1, messages
    assert messages.index(lost[0]) < messages.index(recovered[0])
    assert all(str(parse_database_url(url).password) not in m for m in messages)


@pytest.mark.parametrize(
    ("sql", "name"),
    [
        ("-- name: CreateUser :one\nINSERT INTO users VALUES ($1)", "CreateUser"),
        ("SELECT 1", "SELECT"),
        ("  -- a comment\n  begin isolation level serializable", "BEGIN"),
        ("SELECT 'ada@example.com'", "SELECT"),
        ("", "statement"),
        (None, "statement"),
    ],
)
def test_statements_are_named_never_quoted(sql: str | None, name: str) -> None:
    assert query_name(sql) == name


async def test_a_zero_threshold_turns_statement_timing_off(
    identity_store_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="identity_store")
    settings = identity_store_settings.model_copy(update={"slow_statement_seconds": 0})
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn:
            assert not conn._con._query_loggers  # type: ignore[attr-defined]
            await conn.fetchval("SELECT pg_sleep(0.01)")
    finally:
        await pool.close()
    assert not [r for r in _ours(caplog) if "slow statement" in r.getMessage()]


def test_only_failures_a_pool_of_ours_reported_are_dropped_from_asyncpgs_log() -> None:
    PoolObserver(parse_database_url("postgresql://h:5432/d"), slow_statement_seconds=0).created(
        min_size=1, max_size=1
    )
    pool_log = logging.getLogger("asyncpg.pool")
    ours, theirs = ConnectionRefusedError(111, "refused"), ConnectionRefusedError(111, "refused")
    _observe._reported(ours)

    def record(exc: BaseException) -> logging.LogRecord:
        return pool_log.makeRecord(
            "asyncpg.pool", logging.WARNING, __file__, 1, "retrying", (), (type(exc), exc, None)
        )

    assert not pool_log.filter(record(ours))
    assert pool_log.filter(record(theirs))
    assert pool_log.filter(record(RuntimeError("no pool of ours")))
