"""Fixtures shared by every test: the PostgreSQL server and a migrated database.

Without ``DATABASE_URL`` the session starts the embedded server under ``.devdb`` (or
reuses a running one) and, when it started it, stops it at the end. With
``DATABASE_URL`` set, tests create their databases on that server instead; its role
needs CREATEDB.

``database_url`` is a fresh database per test session with ``migrations/`` applied by
Atlas, dropped at the end; tests isolate themselves with random ids, never by
truncating tables.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from identity_store import devdb
from identity_store.infrastructure.db import Settings, create_pool

ROOT = Path(__file__).resolve().parent.parent
ATLAS = os.environ.get("ATLAS") or str(ROOT / ".tools" / "bin" / "atlas")

MakeDatabase = Callable[[str], Awaitable[str]]


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at ``database`` instead."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def atlas(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the project's Atlas binary from the project root."""
    env = dict(os.environ, ATLAS_NO_UPDATE_NOTIFIER="1")
    return subprocess.run(
        [ATLAS, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """A URL of the server's maintenance database; starts the embedded server if needed."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield with_database(configured, "postgres")
        return
    was_running = devdb.status() is not None
    server = devdb.start()
    yield server.url("postgres")
    if not was_running:
        devdb.stop()


@pytest.fixture(scope="session")
async def make_database(admin_url: str) -> AsyncIterator[MakeDatabase]:
    """A factory of empty databases (``await make_database(prefix)`` → URL), all dropped."""
    created: list[str] = []

    async def make(prefix: str) -> str:
        name = f"{prefix}_{secrets.token_hex(6)}"
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return with_database(admin_url, name)

    yield make
    conn = await asyncpg.connect(admin_url)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url(make_database: MakeDatabase) -> str:
    """A fresh database of this session, migrated by ``atlas migrate apply``."""
    url = await make_database("test")
    result = atlas("migrate", "apply", "--dir", "file://migrations", "--url", url)
    assert result.returncode == 0, f"atlas migrate apply failed:\n{result.stdout}{result.stderr}"
    return url


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the session's migrated database, as the application creates it."""
    pool = await create_pool(Settings(database_url=database_url, pool_max_size=60))
    yield pool
    await pool.close()
