"""Faults a deployment meets, injected for real: a backend terminated mid-transaction,
a statement timeout set on the application role, two ``atlas migrate apply`` at once,
tampered and broken migrations. (Server restarts under load: tests/reliability.)

Each fault ends in a domain error or a refusal, leaves no partial write, and the pool
serves the next unit of work without help.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from identity_store import (
    DatabaseTimeout,
    DatabaseUnavailable,
    NewEvent,
    NewToken,
    NewUser,
    PostgresUnitOfWork,
    Settings,
    TokenKind,
    create_pool,
)
from tests.conftest import (
    ATLAS,
    ROOT,
    Deploy,
    Deployment,
    MakeDatabase,
    Roles,
    atlas,
    create_roles,
    with_credentials,
)

pytestmark = pytest.mark.integration

_WAIT_S = 20.0


def a_new_user() -> NewUser:
    return NewUser(email=f"fault-{uuid.uuid4().hex}@example.test", display_name="Fault")


@pytest.fixture(scope="module")
async def faults_db(deploy: Deploy) -> Deployment:
    """A database of its own: the tests below watch its sessions and change its settings."""
    return await deploy("faults")


@pytest.fixture
async def app_pool(faults_db: Deployment) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(Settings(database_url=faults_db.app_url, pool_max_size=4))
    yield pool
    await pool.close()


async def rows_for(admin_url: str, email: str) -> int:
    conn = await asyncpg.connect(admin_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT (SELECT count(*) FROM users WHERE email = $1)"
                " + (SELECT count(*) FROM tokens t JOIN users u ON u.id = t.user_id"
                "     WHERE u.email = $1)",
                email,
            )
        )
    finally:
        await conn.close()


async def backend_of_the_app(admin: asyncpg.Connection, role: str, *, state: str) -> int:
    """The pid of the application's session in ``state`` (bounded wait)."""
    deadline = time.monotonic() + _WAIT_S
    while time.monotonic() < deadline:
        pid = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()"
            " AND (state = $2 OR wait_event_type = $2) ORDER BY xact_start LIMIT 1",
            role,
            state,
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.02)
    pytest.fail(f"no application session in state {state!r} within {_WAIT_S:.0f} s")


async def works(pool: asyncpg.Pool) -> None:
    """One whole unit of work on ``pool``: what 'serving again' means."""
    async with PostgresUnitOfWork(pool) as uow:
        user = await uow.users.register(a_new_user())
        await uow.events.append(NewEvent(type="fault.recovered", user_id=user.id))


async def test_a_backend_terminated_between_statements_rolls_the_unit_back(
    faults_db: Deployment, roles: Roles, app_pool: asyncpg.Pool
) -> None:
    new = a_new_user()
    admin = await asyncpg.connect(faults_db.admin_url)
    try:
        with pytest.raises(DatabaseUnavailable):
            async with PostgresUnitOfWork(app_pool) as uow:
                await uow.users.register(new)
                pid = await backend_of_the_app(admin, roles.app, state="idle in transaction")
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
                user = await uow.users.get_by_email(new.email)
                assert user is None, "the terminated session answered"
    finally:
        await admin.close()
    assert await rows_for(faults_db.admin_url, new.email) == 0
    await works(app_pool)


async def test_a_backend_terminated_while_its_statement_waits_rolls_the_unit_back(
    faults_db: Deployment, roles: Roles, app_pool: asyncpg.Pool
) -> None:
    new = a_new_user()
    admin = await asyncpg.connect(faults_db.admin_url)
    try:
        async with admin.transaction():
            await admin.execute("LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE")

            async def unit() -> None:
                async with PostgresUnitOfWork(app_pool) as uow:
                    user = await uow.users.register(new)
                    await uow.tokens.issue(
                        NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
                    )

            task = asyncio.create_task(unit())
            pid = await backend_of_the_app(admin, roles.app, state="Lock")
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            with pytest.raises(DatabaseUnavailable):
                await asyncio.wait_for(task, timeout=_WAIT_S)
    finally:
        await admin.close()
    assert await rows_for(faults_db.admin_url, new.email) == 0
    await works(app_pool)


async def test_a_statement_timeout_on_the_application_role_is_a_timeout(
    faults_db: Deployment, roles: Roles
) -> None:
    admin = await asyncpg.connect(faults_db.admin_url)
    database = faults_db.admin_url.rsplit("/", 1)[1].split("?")[0]
    new = a_new_user()
    try:
        # How an operator bounds the service's statements: on its role, in its database.
        await admin.execute(
            f'ALTER ROLE "{roles.app}" IN DATABASE "{database}" SET statement_timeout = 300'
        )
        pool = await create_pool(Settings(database_url=faults_db.app_url, pool_max_size=2))
        try:
            async with admin.transaction():
                await admin.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
                with pytest.raises(DatabaseTimeout) as caught:
                    async with PostgresUnitOfWork(pool) as uow:
                        user = await uow.users.register(new)
                        await uow.events.append(NewEvent(type="fault.slow", user_id=user.id))
            assert caught.value.reason == "statement"
            assert not isinstance(caught.value, DatabaseUnavailable)
            await works(pool)
        finally:
            await pool.close()
    finally:
        await admin.execute(f'ALTER ROLE "{roles.app}" IN DATABASE "{database}" RESET ALL')
        await admin.close()
    assert await rows_for(faults_db.admin_url, new.email) == 0


async def test_the_clients_command_timeout_is_a_timeout_too(faults_db: Deployment) -> None:
    new = a_new_user()
    pool = await create_pool(
        Settings(database_url=faults_db.app_url, pool_max_size=2, command_timeout=0.3)
    )
    admin = await asyncpg.connect(faults_db.admin_url)
    try:
        async with admin.transaction():
            await admin.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(DatabaseTimeout):
                async with PostgresUnitOfWork(pool) as uow:
                    await uow.users.register(new)
        await works(pool)
    finally:
        await admin.close()
        await pool.close()
    assert await rows_for(faults_db.admin_url, new.email) == 0


def _atlas_apply(url: str, directory: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ATLAS, "migrate", "apply", "--dir", f"file://{directory}", "--url", url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def test_concurrent_migrate_applies_apply_each_migration_once(
    make_database: MakeDatabase, roles: Roles
) -> None:
    admin = await make_database("concurrent")
    assert create_roles(admin, roles).returncode == 0
    owner = with_credentials(admin, roles.owner, roles.owner_password)
    runs = [_atlas_apply(owner, ROOT / "migrations") for _ in range(4)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]

    assert [run.returncode for run in runs] == [0, 0, 0, 0], outputs
    files = sorted(p.name.split("_", 1)[0] for p in (ROOT / "migrations").glob("*.sql"))
    revisions = await fetch(
        admin,
        "SELECT version FROM atlas_schema_revisions.atlas_schema_revisions ORDER BY version",
    )
    assert [r["version"] for r in revisions] == files
    applied_by = [out for out in outputs if "No migration files to execute" not in out]
    assert len(applied_by) == 1, outputs


def _copy_migrations(tmp_path: Path) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", copy)
    return copy


async def test_an_applied_migration_edited_afterwards_is_refused_and_changes_nothing(
    deploy: Deploy, tmp_path: Path
) -> None:
    deployment = await deploy("tampered_applied")
    copy = _copy_migrations(tmp_path)
    first = sorted(copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\nALTER TABLE users ADD COLUMN backdoor text;\n")
    query = "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
    before = await fetch(deployment.admin_url, query)

    refused = atlas("migrate", "apply", "--dir", f"file://{copy}", "--url", deployment.owner_url)
    assert refused.returncode != 0
    assert "checksum" in (refused.stdout + refused.stderr).lower()

    # Re-hashed by whoever edited it: Atlas applies by version, so an applied file is
    # never run again (the official CLI does the same); the edit reaches no database.
    rehashed = atlas("migrate", "hash", "--dir", f"file://{copy}")
    assert rehashed.returncode == 0, rehashed.stderr
    again = atlas("migrate", "apply", "--dir", f"file://{copy}", "--url", deployment.owner_url)
    assert again.returncode == 0, again.stderr
    assert await fetch(deployment.admin_url, query) == before


async def test_a_migration_that_fails_halfway_leaves_no_part_of_itself(
    make_database: MakeDatabase, roles: Roles, tmp_path: Path
) -> None:
    admin = await make_database("broken_migration")
    assert create_roles(admin, roles).returncode == 0
    owner = with_credentials(admin, roles.owner, roles.owner_password)
    copy = _copy_migrations(tmp_path)
    newest = sorted(copy.glob("*.sql"))[-1]
    created = re.findall(r'CREATE TABLE (?:"?\w+"?\.)?"?(\w+)"?', newest.read_text())
    its_tables = {*created, "half_done"}
    newest.write_text(newest.read_text() + "\nCREATE TABLE half_done (id int);\nSELECT 1/0;\n")
    assert atlas("migrate", "hash", "--dir", f"file://{copy}").returncode == 0

    failed = atlas("migrate", "apply", "--dir", f"file://{copy}", "--url", owner)

    assert failed.returncode != 0
    tables = await fetch(admin, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    found = {t["tablename"] for t in tables}
    assert {"users", "tokens", "events"} <= found
    assert not found & its_tables, "the failed migration left part of itself"
    # The good migrations, applied as they stand, bring the database up to date.
    fixed = atlas("migrate", "apply", "--dir", "file://migrations", "--url", owner)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    status = atlas("migrate", "status", "--dir", "file://migrations", "--url", owner)
    assert "Already at latest version" in status.stdout, status.stdout
