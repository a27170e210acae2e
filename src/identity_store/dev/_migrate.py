"""Apply the migrations shipped inside the package, without Atlas.

An application that installs identity-store does not have this project's repository,
so the package carries its migrations: ``identity_store/migrations/`` holds the same
files as the repository's ``migrations/`` (the folder is a symbolic link there; the
wheel stores the files themselves). Deploys apply them with the official
``atlas migrate apply --dir file://<that folder>``; :func:`migrations_dir` says where
it is. Development and test tooling (the pytest plugin, ``python -m
identity_store.dev migrate``) apply them with :func:`apply_migrations`, which needs nothing
but asyncpg and does what ``atlas migrate apply`` does, so either can take over from
the other:

- refuses a folder whose files do not match ``atlas.sum`` (Atlas's hash format);
- takes Atlas's advisory lock (``atlas_migrate_execute``) for the whole run;
- applies each pending file in its own transaction (``-- atlas:txmode none`` at the
  top of a file: statement by statement, outside a transaction);
- records each file in ``atlas_schema_revisions.atlas_schema_revisions`` with Atlas's
  columns and values, so ``atlas migrate status`` reads the database as current.

It logs each applied file to the ``identity_store`` logger (version and name only).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import logging
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import asyncpg

from identity_store.domain.errors import DatabaseUnavailable, IdentityStoreError

__all__ = [
    "MigrationError",
    "MigrationFile",
    "apply_migrations",
    "main",
    "migration_files",
    "migrations_dir",
    "split_statements",
]

logger = logging.getLogger("identity_store")

REVISIONS_SCHEMA = "atlas_schema_revisions"
OPERATOR_VERSION = "identity-store applier"
_APPLY_LOCK_NAME = "atlas_migrate_execute"
_REVISION_TYPE_EXECUTE = 2
_TXMODE = re.compile(r"^--\s*atlas:txmode\s+(\S+)\s*$", re.MULTILINE)


class MigrationError(IdentityStoreError):
    """The shipped migrations are inconsistent, or one of them failed to apply."""


@dataclass(frozen=True, slots=True)
class MigrationFile:
    """One versioned migration file, as Atlas names and hashes it."""

    name: str
    text: str
    hash: str
    """The file's cumulative hash from ``atlas.sum`` (base64, without ``h1:``)."""

    @property
    def version(self) -> str:
        """The part of the name before the first ``_``."""
        return self.name.removesuffix(".sql").split("_", 1)[0]

    @property
    def description(self) -> str:
        """The part of the name after the first ``_``."""
        parts = self.name.removesuffix(".sql").split("_", 1)
        return parts[1] if len(parts) == 2 else ""

    @property
    def in_transaction(self) -> bool:
        """False when the file asks for ``-- atlas:txmode none``."""
        header = self.text.split("\n\n", 1)[0]
        match = _TXMODE.search(header)
        return match is None or match.group(1) != "none"


def migrations_dir() -> Path:
    """Return the folder of the shipped migrations (``*.sql`` and ``atlas.sum``)."""
    folder = Path(str(resources.files("identity_store") / "migrations"))
    if not (folder / "atlas.sum").is_file():
        raise MigrationError(f"the package holds no migrations in {folder} (broken install?)")
    return folder


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def migration_files(folder: Path | None = None) -> list[MigrationFile]:
    """Return the migration files of ``folder`` (default: the shipped ones) in order,
    after checking them against its ``atlas.sum`` exactly as Atlas does.

    Raises:
        MigrationError: a file was added, removed or changed without ``atlas.sum``.
    """
    folder = folder or migrations_dir()
    names = sorted(p.name for p in folder.glob("*.sql"))
    running = hashlib.sha256()
    files: list[MigrationFile] = []
    for name in names:
        raw = (folder / name).read_bytes()
        running.update(name.encode())
        running.update(raw)
        files.append(MigrationFile(name, raw.decode("utf-8"), _b64(running.copy().digest())))
    lines = (folder / "atlas.sum").read_text().splitlines()
    expected = [tuple(line.split(" h1:", 1)) for line in lines[1:] if line.strip()]
    total = hashlib.sha256()
    for name, digest in expected:
        total.update(name.encode())
        total.update(digest.encode())
    if not lines or lines[0] != f"h1:{_b64(total.digest())}":
        raise MigrationError(f"{folder}/atlas.sum is corrupt: its first line is not its sum")
    if [(f.name, f.hash) for f in files] != expected:
        raise MigrationError(
            f"the migration files in {folder} do not match atlas.sum "
            "(a file was added, removed or edited after `atlas migrate hash`)"
        )
    return files


def split_statements(sql: str) -> list[str]:
    """Split a migration file into its statements, as Atlas counts them.

    Knows quoted strings and identifiers, ``E''`` escapes, dollar quoting, line and
    (nested) block comments; a statement ends with ``;``. Comment-only text is no
    statement.
    """
    statements: list[str] = []
    start = i = 0
    n = len(sql)
    has_code = False
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if c == "/" and sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        if c in "'\"":
            escapes = c == "'" and i > 0 and sql[i - 1] in "eE"
            i += 1
            while i < n:
                if escapes and sql[i] == "\\":
                    i += 2
                    continue
                if sql[i] == c:
                    if sql.startswith(c * 2, i):
                        i += 2
                        continue
                    break
                i += 1
            i += 1
            has_code = True
            continue
        if c == "$":
            tag = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if tag is not None:
                close = sql.find(tag.group(0), i + len(tag.group(0)))
                i = n if close < 0 else close + len(tag.group(0))
                has_code = True
                continue
        if c == ";":
            if has_code:
                statements.append(sql[start : i + 1].strip())
            start, i, has_code = i + 1, i + 1, False
            continue
        if not c.isspace():
            has_code = True
        i += 1
    if has_code:
        statements.append(sql[start:].strip())
    return statements


def _fnv1_32(text: str) -> int:
    value = 0x811C9DC5
    for byte in text.encode():
        value = (value * 0x01000193) % 2**32
        value ^= byte
    return value


_CREATE_REVISIONS = f"""
CREATE SCHEMA IF NOT EXISTS "{REVISIONS_SCHEMA}";
CREATE TABLE IF NOT EXISTS "{REVISIONS_SCHEMA}"."atlas_schema_revisions" (
  "version" character varying NOT NULL,
  "description" character varying NOT NULL,
  "type" bigint NOT NULL DEFAULT 2,
  "applied" bigint NOT NULL DEFAULT 0,
  "total" bigint NOT NULL DEFAULT 0,
  "executed_at" timestamptz NOT NULL,
  "execution_time" bigint NOT NULL,
  "error" text NULL,
  "error_stmt" text NULL,
  "hash" character varying NOT NULL,
  "partial_hashes" jsonb NULL,
  "operator_version" character varying NOT NULL,
  PRIMARY KEY ("version")
);
"""

_RECORD = f"""
INSERT INTO "{REVISIONS_SCHEMA}"."atlas_schema_revisions"
  ("version", "description", "type", "applied", "total", "executed_at", "execution_time",
   "error", "error_stmt", "hash", "partial_hashes", "operator_version")
VALUES ($1, $2, $3, $4, $4, $5, $6, '', '', $7, 'null'::jsonb, $8)
"""  # noqa: S608 - constant schema name


async def _applied_versions(conn: asyncpg.Connection) -> dict[str, tuple[int, int]]:
    rows = await conn.fetch(
        f'SELECT "version", "applied", "total" FROM "{REVISIONS_SCHEMA}".'  # noqa: S608
        '"atlas_schema_revisions" WHERE "version" <> \'.atlas_cloud_identifier\''
    )
    return {row["version"]: (row["applied"], row["total"]) for row in rows}


async def _apply_file(conn: asyncpg.Connection, migration: MigrationFile) -> None:
    statements = split_statements(migration.text)
    started = datetime.now(UTC)
    clock = time.monotonic()
    try:
        if migration.in_transaction:
            async with conn.transaction():
                for statement in statements:
                    await conn.execute(statement)
                await _record(conn, migration, len(statements), started, clock)
        else:
            for statement in statements:
                await conn.execute(statement)
            await _record(conn, migration, len(statements), started, clock)
    except asyncpg.PostgresError as exc:
        raise MigrationError(
            f"migration {migration.name} failed (SQLSTATE {exc.sqlstate}); nothing of it "
            "was recorded" + ("" if migration.in_transaction else ", statements may remain")
        ) from exc


async def _record(
    conn: asyncpg.Connection,
    migration: MigrationFile,
    total: int,
    started: datetime,
    clock: float,
) -> None:
    await conn.execute(
        _RECORD,
        migration.version,
        migration.description,
        _REVISION_TYPE_EXECUTE,
        total,
        started,
        int((time.monotonic() - clock) * 1e9),
        migration.hash,
        OPERATOR_VERSION,
    )


async def apply_migrations(
    url: str,
    *,
    folder: Path | None = None,
    lock_timeout: float = 10.0,
) -> list[str]:
    """Apply the pending migrations of ``folder`` (default: the shipped ones) to the
    database at ``url``; return the names of the files applied, oldest first.

    Raises:
        MigrationError: the files do not match ``atlas.sum``, the database holds a
            partially applied or unknown revision, another migration run holds the
            lock for ``lock_timeout`` seconds, or a statement failed.
        DatabaseUnavailable: the database cannot be reached.
    """
    files = migration_files(folder)
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to apply migrations ({type(exc).__name__})"
        ) from None
    try:
        lock = _fnv1_32(_APPLY_LOCK_NAME)
        deadline = time.monotonic() + lock_timeout
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock):
            if time.monotonic() >= deadline:
                raise MigrationError("another migration run holds the lock; try again later")
            await asyncio.sleep(0.1)
        try:
            await conn.execute(_CREATE_REVISIONS)
            done = await _applied_versions(conn)
            known = {f.version for f in files}
            for version, (applied, total) in done.items():
                if applied != total:
                    raise MigrationError(
                        f"revision {version} is partially applied: finish it with Atlas"
                    )
                if version not in known:
                    raise MigrationError(
                        f"the database has revision {version}, which these migrations do "
                        "not know: it is newer than this package"
                    )
            applied_now: list[str] = []
            for migration in files:
                if migration.version in done:
                    continue
                await _apply_file(conn, migration)
                applied_now.append(migration.name)
                logger.info("applied migration %s", migration.name)
            return applied_now
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock)
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m identity_store.dev migrate [--url URL]``: apply the shipped migrations
    to ``--url``, else ``DATABASE_URL``."""
    parser = argparse.ArgumentParser(
        prog="python -m identity_store.dev migrate",
        description="Apply identity-store's migrations (what `atlas migrate apply` does).",
    )
    parser.add_argument("--url", default=None, help="database URL (default: $DATABASE_URL)")
    parser.add_argument("--print-dir", action="store_true", help="print the migrations folder")
    args = parser.parse_args(argv)
    if args.print_dir:
        print(migrations_dir())
        return 0
    url = args.url or os.environ.get("DATABASE_URL") or os.environ.get("DB_URL")
    if not url:
        print("migrate: set DATABASE_URL or pass --url", file=sys.stderr)
        return 2
    try:
        applied = asyncio.run(apply_migrations(url))
    except IdentityStoreError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s)" if applied else "already at the latest version")
    return 0
