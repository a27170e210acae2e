"""Drift and integrity checks run by `make check` (and so by CI).

1. migrations/ and atlas.sum agree (`atlas migrate validate`).
2. schema.sql has no change that migrations/ lacks (`atlas migrate diff` into a scratch
   copy of migrations/ writes nothing).
3. generated/ is what sqlc and the plugin make of queries/ today (`sqlc diff`).
4. Equivalence: a database built by applying migrations/ with Atlas and one built by
   running schema.sql directly have identical schemas. Column order is compared on its
   own and reported by name (PostgreSQL appends a column that a migration adds, so a
   column written in the middle of a table in schema.sql ends up last); the rest is
   compared as schema-only pg_dump text with column order set aside, which also sees
   what Atlas Community Edition drops from its diffs without a word (views, functions,
   triggers, extensions).

Settings are read as the library reads them (environment, .env, .env.local). With a
database URL configured, every database used here is a scratch database created on
that server and dropped afterwards (the role needs CREATEDB), and nothing embedded
starts; otherwise the embedded server is used the same way.
Exits non-zero naming the first failed check.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import asyncpg

from identity_store import dev
from identity_store.infrastructure.settings import database_url, describe_url, parse_database_url

ROOT = Path(__file__).resolve().parent.parent
ATLAS = os.environ.get("ATLAS") or str(ROOT / ".tools" / "bin" / "atlas")
SQLC = str(Path(sys.executable).parent / "sqlc")


class CheckError(Exception):
    pass


def run(args: list[str], *, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(  # noqa: S603
        args, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        shown = [Path(args[0]).name, *(_redact(a) for a in args[1:])]
        for arg in args[1:]:
            if "://" in arg:
                output = output.replace(arg, _redact(arg))
        raise CheckError(f"`{' '.join(shown)}` failed:\n{output}")
    return proc.stdout


def _redact(arg: str) -> str:
    """Arguments as shown in messages: database URLs without their password."""
    return describe_url(arg) if arg.startswith(("postgres://", "postgresql://")) else arg


def check_validate(server: str) -> None:
    with dev.scratch_database(server, "drift_dev") as dev_url:
        run([ATLAS, "migrate", "validate", "--dir", "file://migrations", "--dev-url", dev_url])


def check_no_pending_diff(server: str) -> None:
    with (
        dev.scratch_database(server, "drift_dev") as dev_url,
        tempfile.TemporaryDirectory(prefix="migrations-") as scratch,
    ):
        copy = Path(scratch) / "migrations"
        shutil.copytree(ROOT / "migrations", copy)
        before = sorted(p.name for p in copy.iterdir())
        run(
            [
                ATLAS,
                "migrate",
                "diff",
                "drift_check",
                "--dir",
                f"file://{copy}",
                "--to",
                "file://schema.sql",
                "--dev-url",
                dev_url,
            ]
        )
        after = sorted(p.name for p in copy.iterdir())
        if after != before:
            added = next(copy / name for name in after if name not in before)
            raise CheckError(
                "schema.sql has changes that migrations/ lacks; run "
                "`make migration name=<what_changed>`. Atlas would write:\n" + added.read_text()
            )


def check_generated() -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    try:
        run([SQLC, "diff"], env=env)
    except CheckError as exc:
        raise CheckError(
            f"generated/ differs from what `make generate` writes; run it and commit:\n{exc}"
        ) from None


def _dump(url: str) -> list[str]:
    text = run(
        [
            str(dev.server_bin_dir() / "pg_dump"),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-schema=atlas_schema_revisions",
            "--dbname",
            url,
        ]
    )
    # Drop comments, blank lines and session settings: only objects are compared.
    lines = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("--") or re.match(r"^(SET|SELECT pg_catalog)", line):
            continue
        if line.startswith("\\"):  # psql meta-commands pg_dump 17+ adds (\restrict)
            continue
        lines.append(line)
    return _without_column_order(lines)


def _without_column_order(lines: list[str]) -> list[str]:
    """Sort the column lines of each CREATE TABLE (column order is checked apart)."""
    out: list[str] = []
    body: list[str] | None = None
    for line in lines:
        if body is None:
            out.append(line)
            if line.startswith("CREATE TABLE ") and line.rstrip().endswith("("):
                body = []
        elif line.startswith(")"):
            out.extend(sorted(entry.rstrip().rstrip(",") for entry in body))
            out.append(line)
            body = None
        else:
            body.append(line)
    return out


_COLUMNS = """
SELECT c.relname AS table_name, a.attname AS column_name
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY c.relname, a.attnum
"""


def _columns(url: str) -> dict[str, list[str]]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url, timeout=15)
        try:
            return list(await conn.fetch(_COLUMNS))
        finally:
            await conn.close()

    tables: dict[str, list[str]] = {}
    for row in asyncio.run(fetch()):
        tables.setdefault(row["table_name"], []).append(row["column_name"])
    return tables


def _ordinal(position: int, count: int) -> str:
    if position == count:
        return "last"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(
        position % 10 if position % 100 not in (11, 12, 13) else 0, "th"
    )
    return f"{position}{suffix}"


def _moved(left: list[str], right: list[str]) -> list[str]:
    """Columns outside the longest common subsequence of two orders: the moved ones."""
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    kept = {left[block.a + i] for block in matcher.get_matching_blocks() for i in range(block.size)}
    return [name for name in right if name not in kept]


def column_order_problems(
    migrated: dict[str, list[str]], from_schema: dict[str, list[str]]
) -> list[str]:
    """Name each column whose position differs while the table has the same columns."""
    problems = []
    for table in sorted(set(migrated) & set(from_schema)):
        left, right = migrated[table], from_schema[table]
        if left == right or sorted(left) != sorted(right):
            continue  # same order, or different columns (the dump comparison names those)
        for column in _moved(left, right):
            where_schema = _ordinal(right.index(column) + 1, len(right))
            where_migrated = _ordinal(left.index(column) + 1, len(left))
            advice = (
                "PostgreSQL appends new columns; move it to the end of the table in schema.sql"
                if where_migrated == "last"
                else "the migrations create the columns in another order; make schema.sql "
                "list them as the migrated database has them"
            )
            problems.append(
                f"{table}.{column} is {where_schema} in schema.sql but {where_migrated} "
                f"in the migrated database: {advice}"
            )
    return problems


def check_equivalence(server: str) -> None:
    with (
        dev.scratch_database(server, "drift_from_migrations") as from_migrations,
        dev.scratch_database(server, "drift_from_schema") as from_schema,
    ):
        run([ATLAS, "migrate", "apply", "--dir", "file://migrations", "--url", from_migrations])
        run(
            [
                str(dev.server_bin_dir() / "psql"),
                "--no-psqlrc",
                "--quiet",
                "--set",
                "ON_ERROR_STOP=1",
                "--file",
                "schema.sql",
                "--dbname",
                from_schema,
            ]
        )
        problems = column_order_problems(_columns(from_migrations), _columns(from_schema))
        left, right = _dump(from_migrations), _dump(from_schema)
        if left != right:
            diff = "\n".join(
                difflib.unified_diff(
                    left, right, "built from migrations/", "built from schema.sql", lineterm=""
                )
            )
            problems.append(
                "the schemas differ (column order aside):\n"
                + diff
                + "\n(Atlas Community Edition drops views, functions, triggers and extensions "
                "from its diffs: schema.sql may hold only tables, columns, indexes, foreign "
                "keys, checks, enums and identity columns.)"
            )
        if problems:
            raise CheckError(
                "a database built from migrations/ differs from one built from schema.sql:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )


def _server() -> str:
    """The URL of the server to make scratch databases on (the configured one, or ours)."""
    configured = database_url()
    if configured:
        return parse_database_url(configured).render()
    return dev.start_server().url("postgres")


def main() -> int:
    try:
        server = _server()
    except (dev.DevServerError, ValueError) as exc:
        print(f"FAIL  a server for the checks\n{exc}", file=sys.stderr)
        return 1
    checks: list[tuple[str, Callable[[], None]]] = [
        ("migrations/ match atlas.sum", lambda: check_validate(server)),
        ("schema.sql has no unmigrated change", lambda: check_no_pending_diff(server)),
        ("generated/ matches queries/", check_generated),
        ("migrations/ and schema.sql build identical schemas", lambda: check_equivalence(server)),
    ]
    for title, check in checks:
        try:
            check()
        except (CheckError, dev.DevServerError) as exc:
            print(f"FAIL  {title}\n{exc}", file=sys.stderr)
            return 1
        print(f"ok    {title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
