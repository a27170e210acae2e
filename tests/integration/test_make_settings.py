"""`.env`, `.env.local` and `DB_URL` reach `make migrate` and `make demo`, and with a
database URL configured nothing embedded starts (not even for Atlas's dev database)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import ATLAS, ROOT, MakeDatabase

pytestmark = pytest.mark.integration

VENV = Path(sys.executable).parent.parent
# Not linked: what holds local state or settings (the test writes its own .env files).
UNLINKED = (
    ".venv",
    ".tools",
    ".devdb",
    ".env",
    ".git",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder that looks like the project to make, with no settings of its own."""
    folder = tmp_path / "project"
    folder.mkdir()
    for entry in ROOT.iterdir():
        if not entry.name.startswith(UNLINKED):
            (folder / entry.name).symlink_to(entry)
    return folder


def _make(project: Path, target: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "DB_URL"}}
    clean["IDENTITY_STORE_DEVDB"] = str(project / ".devdb")  # where an embedded one would go
    clean.update(env)
    return subprocess.run(
        ["make", "--no-print-directory", f"VENV={VENV}", f"ATLAS={ATLAS}", target],
        cwd=project,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_no_embedded_server(project: Path) -> None:
    # .devdb/roles may hold the role passwords (scripts/create_roles.py); a cluster, or
    # the state of a started server, must not be there.
    for name in ("data", "server.json", "password"):
        assert not (project / ".devdb" / name).exists(), f"an embedded server was started ({name})"


async def _count(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def _assert_migrated_and_demoed(url: str, project: Path, **env: str) -> None:
    migrate = _make(project, "migrate", **env)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    migrations = len(list((ROOT / "migrations").glob("*.sql")))
    applied = "SELECT count(*) FROM atlas_schema_revisions.atlas_schema_revisions"
    assert await _count(url, applied) == migrations

    demo = _make(project, "demo", **env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "registered ada." in demo.stdout
    assert await _count(url, "SELECT count(*) FROM users") == 1
    assert await _count(url, "SELECT count(*) FROM events") > 0
    assert_no_embedded_server(project)


async def test_dotenv_reaches_make_migrate_and_make_demo(
    project: Path, make_database: MakeDatabase
) -> None:
    url = await make_database("make_dotenv")
    (project / ".env").write_text(f"DATABASE_URL={url}\n")
    await _assert_migrated_and_demoed(url, project)


async def test_env_local_overrides_dotenv(project: Path, make_database: MakeDatabase) -> None:
    url = await make_database("make_envlocal")
    unreachable = "postgresql://nobody:wrong@127.0.0.1:1/nothing"
    (project / ".env").write_text(f"DATABASE_URL={unreachable}\n")
    (project / ".env.local").write_text(f"DB_URL={url}\n")
    await _assert_migrated_and_demoed(url, project)


async def test_db_url_in_the_environment_reaches_make(
    project: Path, make_database: MakeDatabase
) -> None:
    url = await make_database("make_db_url")
    await _assert_migrated_and_demoed(url, project, DB_URL=url)


def test_a_bad_url_stops_make_demo_with_the_precise_reason(project: Path) -> None:
    secret = "Pq7wSecret"
    demo = _make(project, "demo", DB_URL=f"postgresql://app:{secret}@127.0.0.1:99999/identity")
    assert demo.returncode != 0
    assert "out of range 1-65535" in demo.stderr
    assert secret not in demo.stdout + demo.stderr
    assert_no_embedded_server(project)
