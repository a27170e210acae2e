"""Fixtures of the plugin tests: sqlc runs, a compiled corpus, scratch databases.

sqlc's plugin calls are answered in this process (:func:`codegen_support.plugin_in_process`).
The tests that run generated code need a PostgreSQL server: the one of
``SQLC_GEN_ASYNCPG_TEST_DSN``, else ``DATABASE_URL`` (its role needs CREATEDB; each
session creates its databases and drops them at the end). Without either they skip,
saying so; ``make test-plugin`` in the identity-store repository passes its embedded
server's URL.
"""

import contextlib
import importlib
import os
import secrets
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TypedDict

import asyncpg
import pytest
from codegen_support import CORPUS, plugin_in_process, run_sqlc


class Target(TypedDict):
    """Where asyncpg connects (``asyncpg.connect(**target)``): the configured URL as it
    is, and the database to use instead of the one it names. asyncpg's ``database``
    argument wins over the URL's, so no URL is ever taken apart here."""

    dsn: str
    database: str


MakeDatabase = Callable[[str], Awaitable[Target]]
DSN_VARIABLES = ("SQLC_GEN_ASYNCPG_TEST_DSN", "DATABASE_URL")


@pytest.fixture(scope="session", autouse=True)
def plugin_command() -> Iterator[None]:
    """sqlc's plugin, answered by this process for the whole session."""
    with plugin_in_process():
        yield


@pytest.fixture(scope="session")
def admin() -> Target:
    """The server's maintenance database."""
    for variable in DSN_VARIABLES:
        configured = os.environ.get(variable)
        if configured:
            return {"dsn": configured, "database": "postgres"}
    pytest.skip(
        "no PostgreSQL server to run generated code on: set SQLC_GEN_ASYNCPG_TEST_DSN or "
        "DATABASE_URL (a role with CREATEDB)"
    )


@pytest.fixture(scope="session")
async def make_database(admin: Target) -> AsyncIterator[MakeDatabase]:
    """A factory of empty databases (``await make_database(prefix)``), all dropped."""
    created: list[str] = []

    async def make(prefix: str) -> Target:
        name = f"{prefix}_{secrets.token_hex(6)}"
        conn = await asyncpg.connect(**admin)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return {"dsn": admin["dsn"], "database": name}

    yield make
    conn = await asyncpg.connect(**admin)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def imported(root: Path, package: str) -> Iterator[ModuleType]:
    """``package`` imported from ``root``, forgotten afterwards."""
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(package)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]


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
    with imported(compiled_corpus, "gencorpus") as package:
        yield package


@pytest.fixture(scope="session")
async def corpus_database(make_database: MakeDatabase) -> Target:
    """A fresh database with the corpus schema (dropped at the end)."""
    target = await make_database("codegen")
    setup = await asyncpg.connect(**target)
    try:
        await setup.execute((CORPUS / "schema.sql").read_text())
    finally:
        await setup.close()
    return target


@pytest.fixture
async def conn(corpus_database: Target, gencorpus: ModuleType) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the corpus database, set up with the generated ``init_connection``."""
    db = importlib.import_module("gencorpus.db")
    connection = await asyncpg.connect(**corpus_database)
    await db.init_connection(connection)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def pool(corpus_database: Target, gencorpus: ModuleType) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the corpus database, each connection set up by ``init_connection``."""
    db = importlib.import_module("gencorpus.db")
    created = await asyncpg.create_pool(
        **corpus_database, min_size=1, max_size=2, init=db.init_connection
    )
    try:
        yield created
    finally:
        await created.close()
