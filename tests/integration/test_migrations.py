"""Atlas applies migrations/ to an empty database, building what schema.sql describes,
once, and refuses tampered files."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import ROOT, atlas

pytestmark = pytest.mark.integration

MakeDatabase = Callable[[str], Awaitable[str]]


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


_CATALOG = {
    "columns": """
        SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default,
               is_identity, identity_generation
          FROM information_schema.columns WHERE table_schema = 'public'""",
    "constraints": """
        SELECT conrelid::regclass::text AS on_table, conname, contype::text AS contype,
               pg_get_constraintdef(oid) AS def
          FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "enums": """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
          FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname""",
}


async def _catalog(url: str) -> dict[str, set[tuple[object, ...]]]:
    """Columns, constraints, indexes and enums of ``public``, as comparable sets."""
    catalog: dict[str, set[tuple[object, ...]]] = {}
    for what, sql in _CATALOG.items():
        catalog[what] = {
            tuple(tuple(v) if isinstance(v, list) else v for v in row.values())
            for row in await _fetch(url, sql)
        }
    return catalog


async def test_apply_builds_what_schema_sql_describes(make_database: MakeDatabase) -> None:
    """migrations/ applied by Atlas give the columns, types, nullability, defaults,
    constraints, indexes and enums of a database built by running schema.sql: the
    expectation is schema.sql itself, so adding a column needs no edit here.
    (Column order is checked by `make check`, which names a misplaced column.)"""
    migrated = await make_database("migrate")
    result = atlas("migrate", "apply", "--dir", "file://migrations", "--url", migrated)
    assert result.returncode == 0, result.stderr
    expected = await make_database("schema")
    conn = await asyncpg.connect(expected)
    try:
        await conn.execute((ROOT / "schema.sql").read_text())
    finally:
        await conn.close()

    got, want = await _catalog(migrated), await _catalog(expected)

    assert {t for t, *_ in want["columns"]} >= {"users", "tokens", "events"}
    for what in _CATALOG:
        missing, extra = want[what] - got[what], got[what] - want[what]
        assert not missing and not extra, f"{what}: missing {missing}, unexpected {extra}"


async def test_the_foreign_keys_keep_their_delete_rules(make_database: MakeDatabase) -> None:
    """What the repositories rely on: tokens die with their user, events outlive it."""
    url = await make_database("migrate")
    result = atlas("migrate", "apply", "--dir", "file://migrations", "--url", url)
    assert result.returncode == 0, result.stderr
    fks = {
        (r["on_table"], r["target"]): r["def"]
        for r in await _fetch(
            url,
            """SELECT conrelid::regclass::text AS on_table, confrelid::regclass::text AS target,
                      pg_get_constraintdef(oid) AS def
                 FROM pg_constraint
                WHERE connamespace = 'public'::regnamespace AND contype = 'f'""",
        )
    }
    assert fks[("tokens", "users")].endswith("ON DELETE CASCADE")
    assert fks[("events", "users")].endswith("ON DELETE SET NULL")


async def test_applying_again_is_a_no_op(make_database: MakeDatabase) -> None:
    url = await make_database("migrate")
    first = atlas("migrate", "apply", "--dir", "file://migrations", "--url", url)
    assert first.returncode == 0, first.stderr
    revisions_before = await _fetch(
        url, "SELECT version, executed_at FROM atlas_schema_revisions.atlas_schema_revisions"
    )
    second = atlas("migrate", "apply", "--dir", "file://migrations", "--url", url)
    assert second.returncode == 0, second.stderr
    assert "No migration files to execute" in second.stdout
    revisions_after = await _fetch(
        url, "SELECT version, executed_at FROM atlas_schema_revisions.atlas_schema_revisions"
    )
    assert revisions_after == revisions_before
    assert len(revisions_after) == len(list((ROOT / "migrations").glob("*.sql")))


async def test_an_edited_migration_is_refused_by_its_checksum(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", copy)
    first = sorted(copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\nCREATE TABLE sneaky (id int);\n")
    url = await make_database("tampered")

    result = atlas("migrate", "apply", "--dir", f"file://{copy}", "--url", url)

    assert result.returncode != 0
    assert "checksum" in (result.stdout + result.stderr).lower()
    tables = await _fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert tables == []
