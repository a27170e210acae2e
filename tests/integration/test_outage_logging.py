"""A server outage reads as a few lines, one per state change, with no traceback: lost,
still unavailable (now and then), recovered. The server is a real one of the test's
own, stopped and started again (tests/durable_server.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import pytest

from identity_store import DatabaseUnavailable, PostgresUnitOfWork, Settings, create_pool
from identity_store.infrastructure import _observe
from identity_store.infrastructure.settings import database_url as configured_database_url
from tests.durable_server import DurableServer

pytestmark = pytest.mark.integration

if configured_database_url():
    pytest.skip(
        "DATABASE_URL is set: no server of the test's own is started",
        allow_module_level=True,
    )

_DOWN_S = 4.5
_UP_WAIT_S = 30.0


@pytest.fixture
def server() -> Iterator[DurableServer]:
    server = DurableServer.create()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


async def test_an_outage_is_logged_once_per_state_change_without_tracebacks(
    server: DurableServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_observe, "STILL_UNAVAILABLE_EVERY_SECONDS", 1.5)
    caplog.set_level(logging.DEBUG)
    # Two connections kept open: asyncpg's pool tries to restore them all through the
    # outage (after 1, 2, 4 ... s), and requests keep trying too.
    pool = await create_pool(Settings(database_url=server.url(), pool_min_size=2, pool_max_size=4))
    refused = 0
    try:
        server.stop("fast")
        down_since = time.monotonic()
        while time.monotonic() - down_since < _DOWN_S:
            with pytest.raises(DatabaseUnavailable):
                async with PostgresUnitOfWork(pool):
                    pass
            refused += 1
            await asyncio.sleep(0.1)
        server.start()
        deadline = time.monotonic() + _UP_WAIT_S
        while True:
            try:
                async with PostgresUnitOfWork(pool):
                    break
            except DatabaseUnavailable:
                assert time.monotonic() < deadline, "the pool did not serve again"
                await asyncio.sleep(0.1)
    finally:
        await pool.close()

    assert refused >= 10
    with_traceback = [r for r in caplog.records if r.exc_info]
    assert not with_traceback, [(r.name, r.getMessage()) for r in with_traceback]
    ours = [r.getMessage() for r in caplog.records if r.name == "identity_store"]
    outage = [m for m in ours if not m.startswith("database pool ")]
    assert outage[0].startswith("database connection lost ("), ours
    assert outage[-1].startswith("database connection recovered after "), ours
    still = outage[1:-1]
    # One at most every 1.5 s of the 4.5 s or so the server was down.
    assert 1 <= len(still) <= 4, ours
    assert all(m.startswith("database still unavailable after ") for m in still), ours
    others = [
        r for r in caplog.records if r.name != "identity_store" and r.levelno >= logging.WARNING
    ]
    assert not others, [(r.name, r.getMessage()) for r in others]
