"""pytest fixtures for applications built on identity-store.

Enable the plugin in the application's own test configuration (it is not loaded
automatically)::

    # pyproject.toml
    [tool.pytest.ini_options]
    addopts = "-p identity_store.dev.pytest_plugin"

    # or, in the root conftest.py
    pytest_plugins = ["identity_store.dev.pytest_plugin"]

and install ``identity-store[pytest]`` (plus ``identity-store[embedded]`` to run without
a server of your own).

Where the databases live: with ``DATABASE_URL`` set, on that server (its role needs
``CREATEDB``; the database in the URL is left alone); otherwise on the embedded
PostgreSQL server under ``$IDENTITY_STORE_DEVDB`` or ``./.devdb``, started on demand
and stopped at the end of the session if the session started it.

Fixtures:

``identity_store_template``
    session: the name of a database created for this test session and migrated with
    the migrations shipped in the package (:func:`~identity_store.dev.apply_migrations`); dropped at
    the end. Tests do not connect to it: it is the template of the per-test clones.
``identity_store_database_url``
    function: the URL of a fresh copy of the template (``CREATE DATABASE ... TEMPLATE``,
    a file copy, milliseconds), dropped after the test. Each test sees an empty,
    migrated database of its own.
``identity_store_settings``
    function: :class:`~identity_store.Settings` for that database.
``identity_store_pool``
    function, async: a pool from :func:`~identity_store.create_pool` on that database,
    closed after the test.
``identity_store_store`` and ``identity_store_fake_uow``
    function: an empty in-memory :class:`~identity_store.dev.Store` and a
    :class:`~identity_store.dev.FakeUnitOfWork` over it, for unit tests of code
    above the ports; no database at all. For code that opens one unit of work per
    call, hand it ``lambda: FakeUnitOfWork(identity_store_store)``.

Async fixtures run on the test's event loop (pytest-asyncio), whatever its scope;
the session-wide work (server, template) runs on a private thread, so it does not
tie the application's tests to a session-scoped loop.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import asyncpg
import pytest
import pytest_asyncio

from identity_store.dev import (
    FakeUnitOfWork,
    Store,
    apply_migrations,
    server_status,
    start_server,
    stop_server,
)
from identity_store.infrastructure.db import Settings, create_pool
from identity_store.infrastructure.settings import parse_database_url

__all__ = [
    "identity_store_database_url",
    "identity_store_fake_uow",
    "identity_store_pool",
    "identity_store_settings",
    "identity_store_store",
    "identity_store_template",
]

T = TypeVar("T")


def _with_database(url: str, database: str) -> str:
    return parse_database_url(url).with_database(database).render()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Admin:
    """One maintenance connection on a private event loop in its own thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="identity-store-pytest-admin", daemon=True
        )
        self._thread.start()
        self._conn: asyncpg.Connection | None = None
        self._lock: asyncio.Lock | None = None

    def submit(self, make: Callable[[], Awaitable[T]]) -> Future[T]:
        """Start ``make()`` on the private loop; the future holds its result."""

        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self._loop)

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 120.0) -> T:
        return self.submit(make).result(timeout)

    async def execute_async(self, sql: str) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(self.url)
            await self._conn.execute(sql)

    def execute(self, sql: str) -> None:
        self.run(lambda: self.execute_async(sql))

    def close(self) -> None:
        async def go() -> None:
            if self._conn is not None:
                await self._conn.close()

        try:
            self.run(go, timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()


@pytest.fixture(scope="session")
def _identity_store_admin() -> Iterator[_Admin]:
    configured = os.environ.get("DATABASE_URL") or os.environ.get("DB_URL")
    we_started = False
    if configured:
        url = _with_database(configured, "postgres")
    else:  # the embedded server: needs identity-store[embedded]
        we_started = server_status() is None
        url = start_server().url("postgres")
    admin = _Admin(url)
    try:
        yield admin
    finally:
        admin.close()
        if we_started:
            stop_server()


@pytest.fixture(scope="session")
def identity_store_template(_identity_store_admin: _Admin) -> Iterator[str]:
    """The name of this session's migrated template database (dropped at the end)."""
    admin = _identity_store_admin
    name = f"identity_store_template_{secrets.token_hex(4)}"
    admin.execute(f"CREATE DATABASE {_ident(name)}")
    try:
        admin.run(lambda: apply_migrations(_with_database(admin.url, name)))
        yield name
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")


@pytest.fixture
def identity_store_database_url(
    _identity_store_admin: _Admin, identity_store_template: str
) -> Iterator[str]:
    """The URL of a fresh, migrated database for this test only (dropped after it)."""
    admin = _identity_store_admin
    name = f"identity_store_test_{secrets.token_hex(6)}"
    # FILE_COPY: a copy of the template's files, faster than WAL_LOG for a small
    # database (measured in the note of issue 10).
    admin.execute(
        f"CREATE DATABASE {_ident(name)} TEMPLATE {_ident(identity_store_template)} "
        "STRATEGY FILE_COPY"
    )
    try:
        yield _with_database(admin.url, name)
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {_ident(name)} WITH (FORCE)")


@pytest.fixture
def identity_store_settings(identity_store_database_url: str) -> Settings:
    """Settings for this test's database, as the application's start-up would read them."""
    return Settings(database_url=identity_store_database_url, pool_min_size=1, pool_max_size=5)


@pytest_asyncio.fixture
async def identity_store_pool(
    identity_store_settings: Settings,
) -> AsyncIterator[asyncpg.Pool[Any]]:
    """A pool on this test's database, closed after the test."""
    pool = await create_pool(identity_store_settings)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def identity_store_store() -> Store:
    """An empty in-memory store for the fakes of the ports."""
    return Store()


@pytest.fixture
def identity_store_fake_uow(identity_store_store: Store) -> FakeUnitOfWork:
    """An in-memory unit of work over ``identity_store_store``, for unit tests."""
    return FakeUnitOfWork(identity_store_store)
