"""identity_store.pytest_plugin, as an application uses it: a pytest run of its own in a
folder that has nothing of this repository, with DATABASE_URL naming the server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest

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
    (tmp_path / "test_app.py").write_text(textwrap.dedent(APP_TESTS))
    seen_file = tmp_path / "seen.json"
    env = {
        **os.environ,
        "DATABASE_URL": admin_url,
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
            "identity_store.pytest_plugin",
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
