"""identity_store.dev.pytest_plugin, as an application uses it: a pytest run of its own in a
folder that has nothing of this repository, with DATABASE_URL naming the server."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest

from identity_store import Settings, create_pool
from identity_store.infrastructure.settings import parse_database_url

pytestmark = pytest.mark.integration

APP_TESTS = """
import json
import os
from pathlib import Path

import pytest

from identity_store import NewUser, PostgresUnitOfWork

SEEN = Path(os.environ["SEEN_FILE"])


def remember(**values):
    seen = json.loads(SEEN.read_text()) if SEEN.exists() else []
    SEEN.write_text(json.dumps(seen + [values]))


@pytest.mark.parametrize("attempt", [1, 2, 3])
async def test_each_test_gets_an_empty_migrated_database(
    identity_store_pool, identity_store_database_url, identity_store_template, attempt
):
    async with PostgresUnitOfWork(identity_store_pool) as uow:
        assert await uow.users.get_by_email("same@example.com") is None
        await uow.users.register(NewUser(email="same@example.com", display_name="Ada"))
    remember(database=identity_store_database_url.rsplit("/", 1)[1].split("?")[0],
             template=identity_store_template)
"""


async def test_an_application_gets_one_fresh_database_per_test(
    admin_url: str, tmp_path: Path
) -> None:
    await _run_application_tests(admin_url, admin_url, tmp_path)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_multi_host_url_with_a_password_full_of_delimiters_works_and_is_logged_by_host(
    admin_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The first host refuses connections: libpq and asyncpg go on to the next one.
    role = f"multi_host_{secrets.token_hex(4)}"
    password = f"p/?#@:w{secrets.token_hex(4)}"
    admin = parse_database_url(admin_url)
    dead = ("127.0.0.1", _closed_port())
    url = replace(
        admin.with_database("postgres", user=role, password=password),
        hosts=(dead, *admin.hosts),
        query=(("target_session_attrs", "read-write"), *admin.query),
    ).render()
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{password}'")
        caplog.set_level(logging.INFO, logger="identity_store")
        pool = await create_pool(Settings(database_url=url, pool_min_size=1, pool_max_size=1))
        await pool.close()
        await _run_application_tests(url, admin_url, tmp_path)
    finally:
        await conn.execute(f"DROP ROLE IF EXISTS {role}")
        await conn.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "identity_store"]
    hosts = ",".join(f"{host}:{port}" for host, port in (dead, *admin.hosts))
    assert f"database pool created: {hosts}/postgres (1 to 1 connections)" in messages
    for text in (password, quote(password, safe="")):
        assert all(text not in m for m in messages)


async def _run_application_tests(url: str, admin_url: str, tmp_path: Path) -> None:
    """Run APP_TESTS with ``DATABASE_URL=url`` in a pytest of their own; check that each
    test had a database of its own and that none is left (seen through ``admin_url``)."""
    (tmp_path / "test_app.py").write_text(textwrap.dedent(APP_TESTS))
    seen_file = tmp_path / "seen.json"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SEEN_FILE": str(seen_file),
        "PYTHONPATH": "",
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "identity_store.dev.pytest_plugin",
            "-o",
            "asyncio_mode=auto",
            "-q",
            "test_app.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
    seen = json.loads(seen_file.read_text())
    databases = {entry["database"] for entry in seen}
    templates = {entry["template"] for entry in seen}
    assert len(databases) == 3 and len(templates) == 1
    conn = await asyncpg.connect(admin_url)
    try:
        remaining = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])",
            sorted(databases | templates),
        )
    finally:
        await conn.close()
    assert remaining == [], "the plugin left databases behind"
