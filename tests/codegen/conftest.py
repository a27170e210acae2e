"""Fixtures of the plugin tests: sqlc runs, a compiled corpus, scratch databases.

Databases live on the server named by ``DATABASE_URL`` when it is set, else on the
embedded development server (started if needed, never stopped here). Each session
creates its own ``codegen_<hex>`` database and drops it at the end.
"""

import importlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
VENV_BIN = Path(sys.executable).parent
SQLC = VENV_BIN / "sqlc"


def run_sqlc(project: Path) -> subprocess.CompletedProcess[str]:
    """Run ``sqlc generate`` in ``project`` with the plugin's console script on PATH."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(SQLC), "generate"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def admin_url() -> str:
    """Return a URL of the server's maintenance database."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    from identity_store.devdb import start

    return start().url("postgres")


def database_url(url: str, database: str) -> str:
    """Return ``url`` pointing at ``database`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def compiled_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus project, compiled by the real sqlc and the plugin into ``gencorpus/``."""
    project = tmp_path_factory.mktemp("codegen") / "project"
    shutil.copytree(CORPUS, project)
    result = run_sqlc(project)
    assert result.returncode == 0, result.stderr
    return project


@pytest.fixture(scope="session")
def gencorpus(compiled_corpus: Path) -> Iterator[ModuleType]:
    """The generated package, imported."""
    sys.path.insert(0, str(compiled_corpus))
    try:
        yield importlib.import_module("gencorpus")
    finally:
        sys.path.remove(str(compiled_corpus))
        for name in [n for n in sys.modules if n == "gencorpus" or n.startswith("gencorpus.")]:
            del sys.modules[name]


@pytest.fixture(scope="session")
async def corpus_database() -> AsyncIterator[str]:
    """A fresh database with the corpus schema; dropped at the end of the session."""
    admin = admin_url()
    name = f"codegen_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = database_url(admin, name)
    try:
        setup = await asyncpg.connect(url)
        try:
            await setup.execute((CORPUS / "schema.sql").read_text())
        finally:
            await setup.close()
        yield url
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
async def conn(corpus_database: str, gencorpus: ModuleType) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the corpus database, set up with the generated ``init_connection``."""
    db = importlib.import_module("gencorpus.db")
    connection = await asyncpg.connect(corpus_database)
    await db.init_connection(connection)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def pool(corpus_database: str, gencorpus: ModuleType) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the corpus database, each connection set up by ``init_connection``."""
    db = importlib.import_module("gencorpus.db")
    created = await asyncpg.create_pool(
        corpus_database, min_size=1, max_size=2, init=db.init_connection
    )
    try:
        yield created
    finally:
        await created.close()
