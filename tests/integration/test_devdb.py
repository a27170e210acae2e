"""The embedded development server: idempotent start, clean stop, nothing left behind."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from identity_store import devdb
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

if os.environ.get("DATABASE_URL"):
    pytest.skip("DATABASE_URL is set: the embedded server is not in use", allow_module_level=True)


@pytest.fixture
def scratch_root() -> Iterator[Path]:
    # Beside the project (not under /tmp/pytest-of-root, which the unprivileged
    # server user cannot enter when the tests run as root).
    root = ROOT / f".devdb-selftest-{secrets.token_hex(4)}"
    yield root
    devdb.stop(root)
    shutil.rmtree(root, ignore_errors=True)


async def test_up_twice_reuses_one_server_and_down_stops_it(scratch_root: Path) -> None:
    first = devdb.start(scratch_root)
    second = devdb.start(scratch_root)
    assert (second.pid, second.port) == (first.pid, first.port)
    assert first.host == "127.0.0.1"

    conn = await asyncpg.connect(first.url(devdb.APP_DATABASE))
    try:
        assert await conn.fetchval("SELECT 1") == 1
        names = await conn.fetch("SELECT datname FROM pg_database")
        assert {devdb.APP_DATABASE, devdb.DEV_DATABASE} <= {r["datname"] for r in names}
        listen = await conn.fetchval("SHOW listen_addresses")
        assert listen == "127.0.0.1"
    finally:
        await conn.close()

    assert devdb.stop(scratch_root) is True
    assert not devdb._alive(first.pid)
    assert devdb.status(scratch_root) is None
    assert devdb.stop(scratch_root) is False


async def test_the_password_is_required_and_kept_private(scratch_root: Path) -> None:
    server = devdb.start(scratch_root)
    assert (scratch_root / "password").stat().st_mode & 0o077 == 0
    wrong = server.url(devdb.APP_DATABASE).replace(server.password, "not-the-password")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_a_restart_keeps_the_data(scratch_root: Path) -> None:
    server = devdb.start(scratch_root)
    conn = await asyncpg.connect(server.url(devdb.APP_DATABASE))
    await conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
    await conn.close()
    devdb.stop(scratch_root)

    again = devdb.start(scratch_root)
    conn = await asyncpg.connect(again.url(devdb.APP_DATABASE))
    try:
        assert await conn.fetchval("SELECT x FROM kept") == 42
    finally:
        await conn.close()
