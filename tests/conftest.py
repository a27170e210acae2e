"""Fixtures shared by every test: the PostgreSQL server and a migrated database.

Without ``DATABASE_URL`` (read as the library reads it: environment, ``.env``,
``.env.local``, ``DB_URL``) the session starts the embedded server under ``.devdb`` (or
reuses a running one) and, when it started it, stops it at the end. With
``DATABASE_URL`` set, tests create their databases on that server instead; its role
needs CREATEDB and CREATEROLE (no superuser; see README, "Which PostgreSQL").

``database_url`` is a fresh database per test session, set up as a deployment sets one
up: ``scripts/create_roles.py`` creates an owner and an application role (named for the
session, dropped at the end), Atlas applies ``migrations/`` as the owner, and the URL
is the **application role's**, which may read and write rows but change no schema.
Tests isolate themselves with random ids, never by truncating tables.

``IDENTITY_STORE_TEST_DEPLOY_CACHE=1`` (set by ``make mutation``, which runs the suite
once per mutant) keeps each kind of deployment as a template database on the server,
keyed by the migrations, ``scripts/create_roles.py`` and the database options, and
clones it instead of deploying again: the roles then have fixed names (new passwords
each session) and stay. Nothing the mutated modules do runs during a deployment.

``--pgbouncer`` (or ``IDENTITY_STORE_TEST_PGBOUNCER=1``) puts a PgBouncer in
transaction mode, started by the session on loopback, between the application role's
connections and the server, with ``statement_cache_size=0`` as the README says.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from identity_store import dev
from identity_store.infrastructure.db import Settings, create_pool
from identity_store.infrastructure.settings import database_url as configured_database_url
from identity_store.infrastructure.settings import parse_database_url
from tests.pgbouncer import PgBouncer, PgBouncerUnavailable

ROOT = Path(__file__).resolve().parent.parent
ATLAS = os.environ.get("ATLAS") or str(ROOT / ".tools" / "bin" / "atlas")
CREATE_ROLES = ROOT / "scripts" / "create_roles.py"

DEPLOY_CACHE = os.environ.get("IDENTITY_STORE_TEST_DEPLOY_CACHE") == "1"

MakeDatabase = Callable[..., Awaitable[str]]
Deploy = Callable[..., Awaitable["Deployment"]]


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at ``database`` instead (multi-host URLs too)."""
    return parse_database_url(url).with_database(database).render()


def with_credentials(url: str, user: str, password: str) -> str:
    """Return ``url`` logging in as ``user`` with ``password`` instead."""
    parsed = parse_database_url(url)
    return parsed.with_database(parsed.database or "", user=user, password=password).render()


@dataclass(frozen=True)
class Roles:
    """The owner and application roles of this test session, with their passwords."""

    owner: str
    owner_password: str
    app: str
    app_password: str


@dataclass(frozen=True)
class Deployment:
    """A database set up as production sets one up: roles, then migrations as owner."""

    admin_url: str
    owner_url: str
    app_url: str


def create_roles(admin_database_url: str, roles: Roles) -> subprocess.CompletedProcess[str]:
    """Run ``scripts/create_roles.py apply`` on the database of ``admin_database_url``."""
    env = dict(
        os.environ,
        DATABASE_URL=admin_database_url,
        IDENTITY_STORE_OWNER_PASSWORD=roles.owner_password,
        IDENTITY_STORE_APP_PASSWORD=roles.app_password,
    )
    env.pop("DB_URL", None)
    return subprocess.run(
        [sys.executable, str(CREATE_ROLES), "apply", "--owner", roles.owner, "--app", roles.app],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pgbouncer",
        action="store_true",
        default=os.environ.get("IDENTITY_STORE_TEST_PGBOUNCER", "") not in ("", "0"),
        help="run the application role's connections through PgBouncer (transaction mode)",
    )
    parser.addoption(
        "--reliability",
        action="store_true",
        default=os.environ.get("IDENTITY_STORE_TEST_RELIABILITY", "") not in ("", "0"),
        help="also collect tests/reliability (fault and property tests; slow)",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """tests/reliability (slow: servers restarted under load, properties) runs only with
    ``--reliability``, as ``make check-reliability`` does."""
    if collection_path.name == "reliability" and not config.getoption("--reliability"):
        return True
    return None


def atlas(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the project's Atlas binary from the project root."""
    env = dict(os.environ, ATLAS_NO_UPDATE_NOTIFIER="1")
    return subprocess.run(
        [ATLAS, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """A URL of the server's maintenance database; starts the embedded server if needed."""
    configured = configured_database_url()  # environment, .env, .env.local; DB_URL too
    if configured:
        yield with_database(configured, "postgres")
        return
    was_running = dev.server_status() is not None
    server = dev.start_server()
    yield server.url("postgres")
    if not was_running:
        dev.stop_server()


@pytest.fixture(scope="session")
async def roles(admin_url: str) -> AsyncIterator[Roles]:
    """Names and passwords of this session's two roles; dropped after its databases."""
    suffix = "cached" if DEPLOY_CACHE else secrets.token_hex(4)
    session_roles = Roles(
        owner=f"identity_owner_{suffix}",
        owner_password=secrets.token_urlsafe(18),
        app=f"identity_app_{suffix}",
        app_password=secrets.token_urlsafe(18),
    )
    if DEPLOY_CACHE:
        await _set_passwords(admin_url, session_roles)
        yield session_roles  # the cached templates belong to these roles: they stay
        return
    yield session_roles
    conn = await asyncpg.connect(admin_url)
    try:
        for name in (session_roles.app, session_roles.owner):
            await conn.execute(f'DROP ROLE IF EXISTS "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def make_database(admin_url: str, roles: Roles) -> AsyncIterator[MakeDatabase]:
    """A factory of empty databases (``await make_database(prefix)`` → URL), all dropped.

    ``options`` go to ``CREATE DATABASE`` as they are (``TEMPLATE template0 LOCALE ...``).
    """
    created: list[str] = []

    async def make(prefix: str, options: str = "") -> str:
        name = f"{prefix}_{secrets.token_hex(6)}"
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" {options}')
        finally:
            await conn.close()
        created.append(name)
        return with_database(admin_url, name)

    yield make
    conn = await asyncpg.connect(admin_url)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def deploy(admin_url: str, make_database: MakeDatabase, roles: Roles) -> Deploy:
    """A factory of databases set up like production (``await deploy(prefix)``): roles by
    ``scripts/create_roles.py``, ``migrations/`` applied by Atlas as the owner, the
    script run again for the new tables. ``options`` as for ``make_database``."""

    async def make(prefix: str, options: str = "") -> Deployment:
        if DEPLOY_CACHE:
            template = await _cached_deployment(admin_url, roles, options)
            admin = await make_database(prefix, f'TEMPLATE "{template}"')
        else:
            admin = await make_database(prefix, options)
            set_up_database(admin, roles)
        owner = with_credentials(admin, roles.owner, roles.owner_password)
        return Deployment(admin, owner, with_credentials(admin, roles.app, roles.app_password))

    return make


def set_up_database(admin_database_url: str, roles: Roles) -> None:
    """Set up an empty database as a deployment does: roles, ``migrations/`` applied by
    Atlas as the owner, grants for the new tables."""
    owner = with_credentials(admin_database_url, roles.owner, roles.owner_password)
    _succeeded("roles", create_roles(admin_database_url, roles))
    _succeeded("migrate", atlas("migrate", "apply", "--dir", "file://migrations", "--url", owner))
    _succeeded("grants", create_roles(admin_database_url, roles))


def _succeeded(step: str, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{step} failed:\n{result.stdout}{result.stderr}"


def _deployment_key(roles: Roles, options: str) -> str:
    digest = hashlib.sha256(f"{roles.owner}\0{roles.app}\0{options}".encode())
    for path in [CREATE_ROLES, *sorted((ROOT / "migrations").iterdir())]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


async def _cached_deployment(admin_url: str, roles: Roles, options: str) -> str:
    """The name of a template database deployed with ``options``; deployed when missing."""
    name = f"deploy_cache_{_deployment_key(roles, options)}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtext($1))", name)
        exists = await conn.fetchval("SELECT true FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}_partial" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}_partial" {options}')
            set_up_database(with_database(admin_url, f"{name}_partial"), roles)
            # Only a complete deployment gets the name that is looked up.
            await conn.execute(f'ALTER DATABASE "{name}_partial" RENAME TO "{name}"')
    finally:
        await conn.close()  # also releases the advisory lock
    return name


async def _set_passwords(admin_url: str, roles: Roles) -> None:
    """Give the cached roles this session's passwords (nothing when they do not exist yet:
    deploying the first template creates them with these passwords)."""
    conn = await asyncpg.connect(admin_url)
    try:
        for name, password in (
            (roles.owner, roles.owner_password),
            (roles.app, roles.app_password),
        ):
            if await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", name):
                statement = await conn.fetchval(
                    "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", name, password
                )
                await conn.execute(statement)
    finally:
        await conn.close()


# The character locales tests that compare text run under. The embedded server
# initialises with C; official PostgreSQL images and most installations use a UTF-8
# locale, where lower() and case-insensitive comparison follow Unicode.
DATABASE_LOCALES = {
    "C": "TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'",
    "C.UTF-8": "TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8'",
    "builtin-C.UTF-8": (
        "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER builtin"
        " BUILTIN_LOCALE 'C.UTF-8' LOCALE 'C.UTF-8'"
    ),
}


async def deploy_with_locale(deploy: Deploy, locale: str) -> Deployment:
    """A deployment (see ``deploy``) whose database has ``locale``, a key of
    DATABASE_LOCALES. Skips only the builtin provider on a server older than
    PostgreSQL 17, which lacks it."""
    try:
        return await deploy("locale", DATABASE_LOCALES[locale])
    except asyncpg.PostgresError as exc:
        if locale.startswith("builtin") and "builtin" in str(exc):
            pytest.skip("this server has no builtin locale provider (PostgreSQL 17+)")
        raise


@pytest.fixture(scope="session")
async def deployment(deploy: Deploy) -> Deployment:
    """This session's database, set up like production."""
    return await deploy("test")


@pytest.fixture(scope="session")
def pgbouncer(
    request: pytest.FixtureRequest, admin_url: str, roles: Roles
) -> Iterator[PgBouncer | None]:
    """The session's PgBouncer (transaction mode, loopback) with ``--pgbouncer``, else None."""
    if not request.config.getoption("--pgbouncer"):
        yield None
        return
    # Not under pytest's temporary folder: as root, PgBouncer runs as another user,
    # who must be able to reach its files.
    folder = Path(tempfile.mkdtemp(prefix="identity-store-pgbouncer-"))
    try:
        bouncer = PgBouncer.start(
            folder,
            server_url=admin_url,
            users={roles.app: roles.app_password, roles.owner: roles.owner_password},
        )
    except PgBouncerUnavailable as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get("CI") == "true":
            pytest.fail(f"--pgbouncer in CI: {exc}")
        pytest.skip(f"--pgbouncer: {exc}")
    yield bouncer
    bouncer.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(deployment: Deployment, pgbouncer: PgBouncer | None) -> str:
    """The application role's URL of this session's database (through PgBouncer with
    ``--pgbouncer``): rows yes, schema no."""
    if pgbouncer is None:
        return deployment.app_url
    routed = pgbouncer.route(deployment.app_url)
    assert parse_database_url(routed).hosts == (("127.0.0.1", pgbouncer.port),)
    return routed


def app_settings(url: str, *, through_pgbouncer: bool, **overrides: object) -> Settings:
    """Settings as the application would configure them for ``url``."""
    if through_pgbouncer:
        overrides.setdefault("statement_cache_size", 0)
    return Settings(database_url=url, **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str, pgbouncer: PgBouncer | None) -> Settings:
    """The application's settings for this session's database (pool of 60)."""
    return app_settings(database_url, through_pgbouncer=pgbouncer is not None, pool_max_size=60)


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the session's migrated database, as the application creates it."""
    pool = await create_pool(settings)
    yield pool
    await pool.close()
