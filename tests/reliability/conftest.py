"""Fixtures of the reliability tests (``make check-reliability``, ``pytest --reliability``).

``durable`` is a PostgreSQL server of this session with crash-safe settings
(tests/durable_server.py), set up like production: roles by scripts/create_roles.py,
migrations applied by Atlas as the owner. Tests may stop, kill and restart it.

Every test adds what it did to ``FIGURES``; the session prints them at the end, so the
numbers in the closing notes come from a run anyone can repeat.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.conftest import Deployment, Roles, set_up_database, with_credentials
from tests.durable_server import DurableServer

FIGURES: Counter[str] = Counter()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for name, value in sorted(FIGURES.items()):
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def durable_server() -> Iterator[DurableServer]:
    """A started crash-safe server of this session, removed at the end."""
    server = DurableServer.create()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
async def durable(durable_server: DurableServer, roles: Roles) -> AsyncIterator[Deployment]:
    """A database on the crash-safe server, set up like production."""
    admin = durable_server.url("postgres")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute('CREATE DATABASE "identity_faults"')
    finally:
        await conn.close()
    admin = durable_server.url("identity_faults")
    set_up_database(admin, roles)
    conn = await asyncpg.connect(admin)
    try:
        settings = dict(
            await conn.fetch(
                "SELECT name, setting FROM pg_settings "
                "WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')"
            )
        )
    finally:
        await conn.close()
    assert settings == {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
    owner = with_credentials(admin, roles.owner, roles.owner_password)
    yield Deployment(admin, owner, with_credentials(admin, roles.app, roles.app_password))
