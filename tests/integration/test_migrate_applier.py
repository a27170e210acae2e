"""identity_store.dev.apply_migrations: the shipped migrations, applied without Atlas,
leave a database Atlas reads as current, and the other way round."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from identity_store.dev._migrate import (
    MigrationError,
    apply_migrations,
    migration_files,
    migrations_dir,
    split_statements,
)
from tests.conftest import ROOT, atlas

pytestmark = pytest.mark.integration

MakeDatabase = Callable[[str], Awaitable[str]]

_SCHEMA = """
SELECT 'column' AS kind, table_name || '.' || column_name || ' ' || data_type || ' '
       || is_nullable || ' ' || coalesce(column_default, '') AS item
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'type', t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
  FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname
ORDER BY 1, 2
"""

_REVISIONS = """
SELECT version, description, type, applied, total, hash, error, error_stmt, partial_hashes
  FROM atlas_schema_revisions.atlas_schema_revisions ORDER BY version
"""


async def _fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


def test_the_package_ships_the_repository_migrations() -> None:
    shipped = migrations_dir()
    names = sorted(p.name for p in (ROOT / "migrations").iterdir())
    assert sorted(p.name for p in shipped.iterdir()) == names
    for name in names:
        assert (shipped / name).read_bytes() == (ROOT / "migrations" / name).read_bytes()
    assert [f.name for f in migration_files()] == [n for n in names if n.endswith(".sql")]


async def test_applied_schema_and_revisions_match_atlas(make_database: MakeDatabase) -> None:
    ours = await make_database("applier")
    theirs = await make_database("applier_atlas")
    applied = await apply_migrations(ours)
    assert applied == [f.name for f in migration_files()]
    result = atlas("migrate", "apply", "--dir", "file://migrations", "--url", theirs)
    assert result.returncode == 0, result.stderr

    assert await _fetch(ours, _SCHEMA) == await _fetch(theirs, _SCHEMA)
    # The same revision rows, but for the time taken and who wrote them.
    assert await _fetch(ours, _REVISIONS) == await _fetch(theirs, _REVISIONS)


async def test_atlas_finds_nothing_to_apply_after_the_applier(make_database: MakeDatabase) -> None:
    url = await make_database("applier_then_atlas")
    await apply_migrations(url)
    status = atlas("migrate", "status", "--dir", "file://migrations", "--url", url)
    assert status.returncode == 0, status.stderr
    assert "Already at latest version" in status.stdout
    again = atlas("migrate", "apply", "--dir", "file://migrations", "--url", url)
    assert again.returncode == 0 and "No migration files to execute" in again.stdout


async def test_the_applier_finds_nothing_to_apply_after_atlas(make_database: MakeDatabase) -> None:
    url = await make_database("atlas_then_applier")
    assert atlas("migrate", "apply", "--dir", "file://migrations", "--url", url).returncode == 0
    assert await apply_migrations(url) == []
    assert await apply_migrations(url) == []


async def test_applying_logs_each_file_and_nothing_else(
    make_database: MakeDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    url = await make_database("applier_logs")
    with caplog.at_level(logging.DEBUG, logger="identity_store"):
        await apply_migrations(url)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("identity_store")]
    assert messages == [f"applied migration {f.name}" for f in migration_files()]


async def test_edited_files_are_refused_before_touching_the_database(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\nCREATE TABLE sneaky (id int);\n")
    url = await make_database("applier_tampered")
    with pytest.raises(MigrationError, match=r"do not match atlas\.sum"):
        await apply_migrations(url, folder=folder)
    tables = await _fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert tables == []


async def test_a_failing_file_records_nothing(make_database: MakeDatabase, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "1_ok.sql").write_text("CREATE TABLE a (id int);\n")
    (folder / "2_bad.sql").write_text("CREATE TABLE b (id int);\nCREATE TABLE a (id int);\n")
    hashed = atlas("migrate", "hash", "--dir", f"file://{folder}")
    assert hashed.returncode == 0, hashed.stderr
    url = await make_database("applier_failing")
    with pytest.raises(MigrationError, match=r"2_bad.sql failed \(SQLSTATE 42P07\)"):
        await apply_migrations(url, folder=folder)
    assert await _fetch(
        url, "SELECT version FROM atlas_schema_revisions.atlas_schema_revisions"
    ) == [("1",)]
    assert await _fetch(url, "SELECT to_regclass('public.b') IS NULL") == [(True,)]


@pytest.mark.parametrize(
    ("sql", "count"),
    [
        ("SELECT 1;", 1),
        ("-- only a comment;\n", 0),
        ("SELECT 'a;b'; SELECT \"c;d\";", 2),
        ("SELECT E'it\\'s;'; SELECT 2;", 2),
        ("CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;", 1),
        ("/* a; /* nested; */ still; */ SELECT 1; SELECT 2", 2),
    ],
)
def test_statements_are_split_as_atlas_counts_them(sql: str, count: int) -> None:
    assert len(split_statements(sql)) == count
