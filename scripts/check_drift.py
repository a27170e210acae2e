"""Drift and integrity checks run by `make check` (and so by CI).

1. migrations/ and atlas.sum agree (`atlas migrate validate`).
2. schema.sql has no change that migrations/ lacks (`atlas migrate diff` into a scratch
   copy of migrations/ writes nothing).
3. generated/ is what sqlc and the plugin make of queries/ today (`sqlc diff`).
4. Equivalence: a database built by applying migrations/ with Atlas and one built by
   running schema.sql directly have identical schemas. Atlas Community Edition drops
   views, functions, triggers, extensions and more from its diffs without a word; a
   schema-only pg_dump of both databases sees them, so the difference is named here.

Runs on the embedded server (its dev database for Atlas and two scratch databases).
Exits non-zero naming the first failed check.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from identity_store import devdb

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
        raise CheckError(
            f"`{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(args))}`"
            f" failed:\n{output}"
        )
    return proc.stdout


def check_validate(server: devdb.DevServer) -> None:
    devdb.recreate_database(server, devdb.DEV_DATABASE)
    run(
        [
            ATLAS,
            "migrate",
            "validate",
            "--dir",
            "file://migrations",
            "--dev-url",
            server.url(devdb.DEV_DATABASE),
        ]
    )


def check_no_pending_diff(server: devdb.DevServer) -> None:
    devdb.recreate_database(server, devdb.DEV_DATABASE)
    with tempfile.TemporaryDirectory(prefix="migrations-") as scratch:
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
                server.url(devdb.DEV_DATABASE),
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


def _dump(server: devdb.DevServer, database: str) -> list[str]:
    pg_dump = devdb.bin_dir() / "pg_dump"
    env = dict(os.environ, PGPASSWORD=server.password)
    text = run(
        [
            str(pg_dump),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-schema=atlas_schema_revisions",
            "--host",
            server.host,
            "--port",
            str(server.port),
            "--username",
            server.user,
            database,
        ],
        env=env,
    )
    # Drop comments, blank lines and session settings: only objects are compared.
    lines = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("--") or re.match(r"^(SET|SELECT pg_catalog)", line):
            continue
        if line.startswith("\\"):  # psql meta-commands pg_dump 17+ adds (\restrict)
            continue
        lines.append(line)
    return lines


def check_equivalence(server: devdb.DevServer) -> None:
    from_migrations, from_schema = "check_from_migrations", "check_from_schema"
    for name in (from_migrations, from_schema):
        devdb.recreate_database(server, name)
    try:
        run(
            [
                ATLAS,
                "migrate",
                "apply",
                "--dir",
                "file://migrations",
                "--url",
                server.url(from_migrations),
            ]
        )
        psql = devdb.bin_dir() / "psql"
        run(
            [
                str(psql),
                "--no-psqlrc",
                "--quiet",
                "--set",
                "ON_ERROR_STOP=1",
                "--file",
                "schema.sql",
                server.url(from_schema),
            ]
        )
        left, right = _dump(server, from_migrations), _dump(server, from_schema)
        if left != right:
            diff = "\n".join(
                difflib.unified_diff(
                    left, right, "built from migrations/", "built from schema.sql", lineterm=""
                )
            )
            raise CheckError(
                "a database built from migrations/ differs from one built from schema.sql "
                "(Atlas's open-source engine drops views, functions, triggers and extensions "
                "silently):\n" + diff
            )
    finally:
        for name in (from_migrations, from_schema):
            devdb.drop_database(server, name)


def main() -> int:
    server = devdb.start()
    checks: list[tuple[str, Callable[[], None]]] = [
        ("migrations/ match atlas.sum", lambda: check_validate(server)),
        ("schema.sql has no unmigrated change", lambda: check_no_pending_diff(server)),
        ("generated/ matches queries/", check_generated),
        ("migrations/ and schema.sql build identical schemas", lambda: check_equivalence(server)),
    ]
    for title, check in checks:
        try:
            check()
        except CheckError as exc:
            print(f"FAIL  {title}\n{exc}", file=sys.stderr)
            return 1
        print(f"ok    {title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
