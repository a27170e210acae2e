"""Fixtures of the plugin tests: sqlc runs, a compiled corpus, scratch databases.

The corpus database comes from the shared ``make_database`` fixture (tests/conftest.py):
on ``DATABASE_URL``'s server when set, else on the embedded server, dropped at the end.
"""

import importlib
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType

import asyncpg
import pytest
from codegen_support import CORPUS, run_sqlc


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
async def corpus_database(make_database: Callable[[str], Awaitable[str]]) -> str:
    """A fresh database with the corpus schema (the session's server; dropped at the end)."""
    url = await make_database("codegen")
    setup = await asyncpg.connect(url)
    try:
        await setup.execute((CORPUS / "schema.sql").read_text())
    finally:
        await setup.close()
    return url


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
