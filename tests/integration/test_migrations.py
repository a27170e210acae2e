"""Atlas applies migrations/ to an empty database, once, and refuses tampered files."""

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


async def test_apply_creates_the_tables_columns_constraints_and_indexes(
    make_database: MakeDatabase,
) -> None:
    url = await make_database("migrate")
    result = atlas("migrate", "apply", "--dir", "file://migrations", "--url", url)
    assert result.returncode == 0, result.stderr

    columns = await _fetch(
        url,
        """SELECT table_name, column_name, data_type, is_nullable
             FROM information_schema.columns WHERE table_schema = 'public'
            ORDER BY table_name, ordinal_position""",
    )
    by_table: dict[str, list[tuple[str, str, str]]] = {}
    for row in columns:
        by_table.setdefault(row["table_name"], []).append(
            (row["column_name"], row["data_type"], row["is_nullable"])
        )
    assert sorted(by_table) == ["events", "tokens", "users"]
    assert by_table["users"] == [
        ("id", "uuid", "NO"),
        ("email", "text", "NO"),
        ("display_name", "text", "NO"),
        ("password_hash", "text", "YES"),
        ("status", "USER-DEFINED", "NO"),
        ("version", "integer", "NO"),
        ("created_at", "timestamp with time zone", "NO"),
        ("updated_at", "timestamp with time zone", "NO"),
        ("email_key", "text", "NO"),
    ]
    assert [c[0] for c in by_table["tokens"]] == [
        "id",
        "user_id",
        "kind",
        "token_hash",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    assert [c[0] for c in by_table["events"]] == [
        "id",
        "event_key",
        "user_id",
        "type",
        "payload",
        "occurred_at",
        "recorded_at",
        "tx_id",
    ]

    constraints = {
        (r["conname"], r["contype"], r["def"])
        for r in await _fetch(
            url,
            """SELECT conname, contype::text AS contype, pg_get_constraintdef(oid) AS def
                 FROM pg_constraint
                WHERE connamespace = 'public'::regnamespace""",
        )
    }
    names = {c[0] for c in constraints}
    assert {
        "users_pkey",
        "tokens_pkey",
        "events_pkey",
        "tokens_user_id_fkey",
        "events_user_id_fkey",
        "tokens_expires_after_created",
    } <= names
    fks = {c[0]: c[2] for c in constraints if c[1] == "f"}
    assert fks["tokens_user_id_fkey"].endswith("ON DELETE CASCADE")
    assert fks["events_user_id_fkey"].endswith("ON DELETE SET NULL")

    indexes = {
        r["indexname"]: r["indexdef"]
        for r in await _fetch(
            url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        )
    }
    assert "UNIQUE" in indexes["users_email_key_key"]
    assert "(email_key)" in indexes["users_email_key_key"]
    assert "WHERE (revoked_at IS NULL)" in indexes["tokens_user_id_live_idx"]
    assert "UNIQUE" in indexes["events_event_key_key"]

    enums = await _fetch(
        url,
        """SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
             FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname
            ORDER BY t.typname""",
    )
    assert [(r["typname"], r["labels"]) for r in enums] == [
        ("token_kind", ["session", "refresh", "api_key", "email_verification", "password_reset"]),
        ("user_status", ["active", "disabled"]),
    ]
    identity = await _fetch(
        url,
        "SELECT is_identity, identity_generation FROM information_schema.columns "
        "WHERE table_name = 'events' AND column_name = 'id'",
    )
    assert (identity[0]["is_identity"], identity[0]["identity_generation"]) == ("YES", "ALWAYS")


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
