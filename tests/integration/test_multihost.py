"""A multi-host URL against two real servers, a primary and its streaming standby:
``target_session_attrs`` picks the right one, as libpq and asyncpg define it."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from identity_store.dev import _devdb as devdb
from identity_store.infrastructure.db import Settings, create_pool
from identity_store.infrastructure.settings import database_url as configured_database_url

pytestmark = pytest.mark.integration

if configured_database_url():
    pytest.skip(
        "DATABASE_URL is set: no embedded servers are started (this test needs two)",
        allow_module_level=True,
    )


@dataclass(frozen=True)
class Pair:
    primary: devdb.DevServer
    standby_port: int


def _start_standby(primary: devdb.DevServer, root: Path) -> tuple[Path, int]:
    """Clone ``primary`` with pg_basebackup -R into ``root`` and start it as a standby."""
    owner = devdb.server_user()
    root.mkdir(mode=0o700, parents=True)
    area = devdb._prepare_area(root, owner)
    data = area / "data"
    binaries = devdb.server_bin_dir(owner)
    devdb._pg(
        binaries,
        [
            "pg_basebackup",
            "--pgdata",
            str(data),
            "--write-recovery-conf",
            "--wal-method=stream",
            "--checkpoint=fast",
            "--host",
            primary.host,
            "--port",
            str(primary.port),
            "--username",
            primary.user,
        ],
        owner,
        timeout=120,
        extra_env={"PGPASSWORD": primary.password},
    )
    port = devdb._free_port()
    devdb._pg(
        binaries,
        [
            "pg_ctl",
            "start",
            "--wait",
            "--timeout",
            "60",
            "--pgdata",
            str(data),
            "--log",
            str(area / "server.log"),
            "-o",
            f"-p {port}",
        ],
        owner,
        timeout=70,
    )
    return data, port


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    private = tmp_path_factory.mktemp("multihost")
    os.chmod(private, 0o700)
    primary_root = private / "primary"
    standby_root = private / "standby"
    primary = devdb.start(primary_root)
    standby_data: Path | None = None
    try:
        standby_data, standby_port = _start_standby(primary, standby_root)
        yield Pair(primary, standby_port)
    finally:
        if standby_data is not None:
            devdb._pg(
                devdb.server_bin_dir(),
                ["pg_ctl", "stop", "--wait", "--mode", "fast", "--pgdata", str(standby_data)],
                devdb.server_user(),
                check=False,
            )
        devdb.destroy(standby_root)
        devdb.destroy(primary_root)
        shutil.rmtree(private, ignore_errors=True)


def _url(pair: Pair, first: int, second: int, attrs: str) -> str:
    p = pair.primary
    return (
        f"postgresql://{p.user}:{p.password}@127.0.0.1:{first},127.0.0.1:{second}"
        f"/{devdb.APP_DATABASE}?target_session_attrs={attrs}"
    )


async def _where(url: str) -> tuple[int, bool]:
    """Connect as the application does; return (server port, in recovery)."""
    pool = await create_pool(Settings(database_url=url, pool_min_size=1, pool_max_size=1))
    try:
        async with pool.acquire() as conn:
            row = await conn.fetchrow("SELECT inet_server_port() AS port, pg_is_in_recovery() AS r")
            assert row is not None
            return int(row["port"]), bool(row["r"])
    finally:
        await pool.close()


async def test_read_write_finds_the_primary_even_when_the_standby_is_listed_first(
    pair: Pair,
) -> None:
    assert await _where(_url(pair, pair.standby_port, pair.primary.port, "read-write")) == (
        pair.primary.port,
        False,
    )
    assert await _where(_url(pair, pair.primary.port, pair.standby_port, "read-write")) == (
        pair.primary.port,
        False,
    )


async def test_standby_finds_the_standby_even_when_the_primary_is_listed_first(
    pair: Pair,
) -> None:
    assert await _where(_url(pair, pair.primary.port, pair.standby_port, "standby")) == (
        pair.standby_port,
        True,
    )


async def test_a_write_on_the_primary_reaches_the_standby_through_the_same_url(pair: Pair) -> None:
    marker = secrets.token_hex(8)
    write = await create_pool(
        Settings(database_url=_url(pair, pair.standby_port, pair.primary.port, "read-write"))
    )
    read = await create_pool(
        Settings(database_url=_url(pair, pair.primary.port, pair.standby_port, "read-only"))
    )
    try:
        await write.execute("CREATE TABLE IF NOT EXISTS replicated (marker text)")
        await write.execute("INSERT INTO replicated VALUES ($1)", marker)
        # The insert position: with synchronous_commit=off the commit may not be written yet.
        lsn = await write.fetchval("SELECT pg_current_wal_insert_lsn()::text")
        replayed = False
        for _ in range(200):  # bounded: at most 200 polls of 50 ms
            if await read.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", lsn):
                replayed = True
                break
            await asyncio.sleep(0.05)
        assert replayed, "the standby did not replay the write within 10 s"
        assert await read.fetchval("SELECT count(*) FROM replicated WHERE marker = $1", marker) == 1
        assert await read.fetchval("SELECT pg_is_in_recovery()") is True
    finally:
        await write.close()
        await read.close()
