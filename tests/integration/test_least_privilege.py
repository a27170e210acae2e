"""The two roles of scripts/create_roles.py: the application may change rows, not schema.

The whole integration suite runs as the application role (see tests/conftest.py);
these tests show what that role may *not* do, and that the script keeps it so.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from identity_store.domain.models import NewEvent, NewUser
from identity_store.infrastructure.db import create_pool
from identity_store.infrastructure.persistence.event_repo import PostgresEventRepository
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository
from tests.conftest import (
    Deploy,
    Deployment,
    MakeDatabase,
    Roles,
    app_settings,
    atlas,
    create_roles,
    with_credentials,
    with_database,
)
from tests.durable_server import DurableServer

pytestmark = pytest.mark.integration


FORBIDDEN_TO_THE_APPLICATION = [
    "CREATE TABLE intruder (id int)",
    "CREATE TEMPORARY TABLE intruder (id int)",
    "CREATE SCHEMA intruder",
    "CREATE INDEX intruder ON users (display_name)",
    "ALTER TABLE users ADD COLUMN intruder int",
    "ALTER TABLE events DISABLE TRIGGER ALL",
    "DROP TABLE events",
    "TRUNCATE users CASCADE",
    "TRUNCATE tokens",
    "TRUNCATE events",
    "UPDATE events SET type = 'tampered.event'",
    "DELETE FROM events",
    "DELETE FROM event_type_counts",
    "TRUNCATE event_type_counts",
    "INSERT INTO event_retention VALUES (true, 1, 1, now())",
    "UPDATE event_retention SET purged_id = 0",
    "SELECT * FROM atlas_schema_revisions.atlas_schema_revisions",
    "DELETE FROM atlas_schema_revisions.atlas_schema_revisions",
    "CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
]

# What the queries need, table by table (queries/*.sql), and nothing more.
EXPECTED = {
    "users": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    "tokens": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    "events": {"SELECT", "INSERT"},
    "subscriptions": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    "subscription_parked_events": {"SELECT", "INSERT"},
    "event_type_counts": {"SELECT", "INSERT", "UPDATE"},
    "event_retention": {"SELECT"},
}
ALL_TABLE_PRIVILEGES = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]


async def table_privileges(admin_url: str, role: str) -> dict[str, set[str]]:
    conn = await asyncpg.connect(admin_url)
    try:
        tables = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind = 'r'"
        )
        held: dict[str, set[str]] = {}
        for row in tables:
            # A privilege held on some columns only (INSERT: not on events.tx_id) counts.
            held[row["relname"]] = {
                privilege
                for privilege in ALL_TABLE_PRIVILEGES
                if await conn.fetchval(
                    "SELECT has_table_privilege($1, $2, $3) OR ($3 IN "
                    "('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') "
                    "AND has_any_column_privilege($1, $2, $3))",
                    role,
                    f"public.{row['relname']}",
                    privilege,
                )
            }
        return held
    finally:
        await conn.close()


@pytest.mark.parametrize("statement", FORBIDDEN_TO_THE_APPLICATION)
async def test_the_application_role_cannot_change_the_schema_or_history(
    deployment: Deployment, statement: str
) -> None:
    conn = await asyncpg.connect(deployment.app_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_application_role_holds_exactly_the_dml_the_queries_need(
    deployment: Deployment, roles: Roles
) -> None:
    assert await table_privileges(deployment.admin_url, roles.app) == EXPECTED


async def test_the_application_role_is_no_superuser_and_not_the_owner(
    deployment: Deployment, roles: Roles
) -> None:
    conn = await asyncpg.connect(deployment.admin_url)
    try:
        row = await conn.fetchrow(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, "
            "pg_has_role($1, $2, 'MEMBER') AS member_of_owner FROM pg_roles WHERE rolname = $1",
            roles.app,
            roles.owner,
        )
        owners = await conn.fetch(
            "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class "
            "WHERE relnamespace IN ('public'::regnamespace, "
            "'atlas_schema_revisions'::regnamespace) AND relkind IN ('r', 'S', 'i')"
        )
    finally:
        await conn.close()
    assert row is not None
    assert not any(row.values())
    assert {r["owner"] for r in owners} == {roles.owner}


async def test_the_server_stores_a_scram_verifier_and_the_output_names_no_password(
    deploy: Deploy, roles: Roles
) -> None:
    deployment = await deploy("roles_secret")
    result = create_roles(deployment.admin_url, roles)
    assert result.returncode == 0, result.stderr
    assert roles.app_password not in result.stdout + result.stderr
    assert roles.owner_password not in result.stdout + result.stderr
    conn = await asyncpg.connect(deployment.admin_url)
    try:
        if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            pytest.skip("only a superuser may read pg_authid (a managed service's admin may not)")
        stored = await conn.fetchval(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1", roles.app
        )
    finally:
        await conn.close()
    assert stored.startswith("SCRAM-SHA-256$")


async def test_running_the_script_again_and_concurrently_changes_nothing(
    deploy: Deploy, roles: Roles
) -> None:
    deployment = await deploy("roles_again")
    before = await table_privileges(deployment.admin_url, roles.app)
    results = await asyncio.gather(
        *(asyncio.to_thread(create_roles, deployment.admin_url, roles) for _ in range(3))
    )
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert await table_privileges(deployment.admin_url, roles.app) == before == EXPECTED


async def test_tables_a_later_migration_creates_are_append_only_until_listed(
    deploy: Deploy, roles: Roles
) -> None:
    deployment = await deploy("roles_future")
    owner = await asyncpg.connect(deployment.owner_url)
    try:
        # What a later migration would do: a table with a serial and one with identity.
        await owner.execute("CREATE TABLE audit_notes (id serial PRIMARY KEY, note text)")
        await owner.execute(
            "CREATE TABLE audit_marks (id bigint GENERATED ALWAYS AS IDENTITY, mark text)"
        )
    finally:
        await owner.close()
    app = await asyncpg.connect(deployment.app_url)
    try:
        await app.execute("INSERT INTO audit_notes (note) VALUES ('a')")
        await app.execute("INSERT INTO audit_marks (mark) VALUES ('b')")
        assert await app.fetchval("SELECT count(*) FROM audit_notes") == 1
        for statement in (
            "UPDATE audit_notes SET note = 'x'",
            "DELETE FROM audit_marks",
            "TRUNCATE audit_notes",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(statement)
    finally:
        await app.close()
    assert create_roles(deployment.admin_url, roles).returncode == 0
    held = await table_privileges(deployment.admin_url, roles.app)
    assert held["audit_notes"] == held["audit_marks"] == {"SELECT", "INSERT"}


async def test_a_database_migrated_before_the_roles_existed_is_handed_to_the_owner(
    make_database: MakeDatabase, roles: Roles
) -> None:
    admin = await make_database("roles_adopt")
    applied = atlas("migrate", "apply", "--dir", "file://migrations", "--url", admin)
    assert applied.returncode == 0, applied.stderr
    result = create_roles(admin, roles)
    assert result.returncode == 0, result.stderr
    assert "handed" in result.stdout
    owner_url = with_credentials(admin, roles.owner, roles.owner_password)
    status = atlas("migrate", "status", "--dir", "file://migrations", "--url", owner_url)
    assert status.returncode == 0, status.stderr
    assert await table_privileges(admin, roles.app) == EXPECTED
    app = await asyncpg.connect(with_credentials(admin, roles.app, roles.app_password))
    try:
        user_id = await app.fetchval(
            "INSERT INTO users (email, display_name, created_at, updated_at) "
            "VALUES ($1, 'Adopted', now(), now()) RETURNING id",
            f"{uuid.uuid4().hex}@example.com",
        )
        assert user_id is not None
    finally:
        await app.close()


# Issue 20 item 3: an event inserted with a hand-written tx_id below a reader's cursor
# would never be delivered. Only the column's DEFAULT may fill it (and the identity
# sequence the id).
WRITES_OF_THE_STREAM_ORDER = [
    "INSERT INTO events (event_key, type, occurred_at, recorded_at, tx_id) "
    "VALUES (gen_random_uuid(), 'user.tampered', now(), now(), 1)",
    "INSERT INTO events (id, event_key, type, occurred_at, recorded_at) OVERRIDING SYSTEM VALUE "
    "VALUES (1, gen_random_uuid(), 'user.tampered', now(), now())",
]


@pytest.mark.parametrize("statement", WRITES_OF_THE_STREAM_ORDER)
async def test_the_application_role_cannot_write_the_stream_order(
    deployment: Deployment, statement: str
) -> None:
    conn = await asyncpg.connect(deployment.app_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.copy_records_to_table(
                "events",
                records=[(uuid.uuid4(), "user.tampered", datetime.now(UTC), datetime.now(UTC), 1)],
                columns=["event_key", "type", "occurred_at", "recorded_at", "tx_id"],
            )
    finally:
        await conn.close()


async def test_the_application_role_appends_one_event_and_many_through_copy(
    pool: asyncpg.Pool,
) -> None:
    # The session's pool connects as the application role (tests/conftest.py).
    events = PostgresEventRepository(pool)
    kind = f"privilege.checked_{secrets.token_hex(4)}"
    one = await events.append(NewEvent(type=kind))
    assert await events.append_many([NewEvent(type=kind) for _ in range(3)]) == 3
    written = await pool.fetch("SELECT id, tx_id FROM events WHERE type = $1", kind)
    assert one.id in {row["id"] for row in written}
    assert len(written) == 4
    assert all(row["tx_id"] > 1 for row in written)  # filled by the column's default


async def test_a_column_a_later_migration_adds_is_insertable_after_the_script_runs_again(
    deploy: Deploy, roles: Roles
) -> None:
    deployment = await deploy("roles_new_column")
    owner = await asyncpg.connect(deployment.owner_url)
    try:
        await owner.execute("ALTER TABLE events ADD COLUMN origin text")
    finally:
        await owner.close()
    assert create_roles(deployment.admin_url, roles).returncode == 0
    app = await asyncpg.connect(deployment.app_url)
    try:
        await app.execute(
            "INSERT INTO events (event_key, type, occurred_at, recorded_at, origin) "
            "VALUES (gen_random_uuid(), 'user.migrated', now(), now(), 'later')"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute(WRITES_OF_THE_STREAM_ORDER[0])
    finally:
        await app.close()


async def test_apply_creates_the_database_the_admin_url_names_when_missing(
    admin_url: str, roles: Roles
) -> None:
    # Issue 20 item 7: it connected to that database first and failed with 3D000.
    name = f"roles_missing_{secrets.token_hex(6)}"
    try:
        result = create_roles(with_database(admin_url, name), roles)
        assert result.returncode == 0, result.stderr
        conn = await asyncpg.connect(admin_url)
        try:
            owner = await conn.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name
            )
        finally:
            await conn.close()
        assert owner == roles.owner
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture(params=["session server", "PostgreSQL 15"])
def server_admin_url(
    request: pytest.FixtureRequest, admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A URL of the maintenance database as the server's administrator: the session's
    (a superuser, or the admin of a managed service), or the superuser of a PostgreSQL
    15 of its own (Debian's binaries) when installed."""
    if request.param == "session server":
        yield admin_url
        return
    if not (DEBIAN_15 / "postgres").exists():
        pytest.skip(f"no PostgreSQL 15 binaries in {DEBIAN_15}")
    monkeypatch.setenv("IDENTITY_STORE_PG_BIN", str(DEBIAN_15))
    server = DurableServer.create()
    try:
        server.start()
        yield server.url()
    finally:
        server.destroy()


@pytest.mark.parametrize("history", ["new database", "migrated by the admin first"])
async def test_an_admin_with_createdb_and_createrole_but_no_superuser_deploys(
    server_admin_url: str, history: str
) -> None:
    # Issue 20 item 8: the admin role of RDS, Cloud SQL or Azure is no superuser; apply
    # stopped with 42501 "must be able to SET ROLE" / "must be member of role", and on a
    # database the admin had migrated, "permission denied for schema
    # atlas_schema_revisions" (its table was handed over before the schema).
    suffix = secrets.token_hex(4)
    admin, admin_password = f"managed_admin_{suffix}", secrets.token_urlsafe(18)
    roles = Roles(
        f"managed_owner_{suffix}",
        secrets.token_urlsafe(18),
        f"managed_app_{suffix}",
        secrets.token_urlsafe(18),
    )
    database = f"managed_{suffix}"
    conn = await asyncpg.connect(server_admin_url)
    try:
        await conn.execute(
            f"CREATE ROLE {admin} LOGIN CREATEDB CREATEROLE PASSWORD '{admin_password}'"
        )
    finally:
        await conn.close()
    admin_database = with_credentials(
        with_database(server_admin_url, database), admin, admin_password
    )
    try:
        if history != "new database":
            conn = await asyncpg.connect(with_database(admin_database, "postgres"))
            try:
                await conn.execute(f'CREATE DATABASE "{database}"')
            finally:
                await conn.close()
            migrated = atlas(
                "migrate", "apply", "--dir", "file://migrations", "--url", admin_database
            )
            assert migrated.returncode == 0, migrated.stderr
        for step in ("roles and the database", "grants again"):
            result = create_roles(admin_database, roles)
            assert result.returncode == 0, f"{step}: {result.stderr}"
            if step == "roles and the database" and history == "new database":
                owner = with_credentials(admin_database, roles.owner, roles.owner_password)
                migrated = atlas("migrate", "apply", "--dir", "file://migrations", "--url", owner)
                assert migrated.returncode == 0, migrated.stderr
        assert await table_privileges(admin_database, roles.app) == EXPECTED
        app_url = with_credentials(admin_database, roles.app, roles.app_password)
        pool = await create_pool(app_settings(app_url, through_pgbouncer=False))
        try:
            user = await PostgresUserRepository(pool).register(
                NewUser(email=f"{suffix}@managed.example.com", display_name="Managed")
            )
            events = PostgresEventRepository(pool)
            assert await events.append_many([NewEvent(type="user.seen", user_id=user.id)]) == 1
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await pool.execute(WRITES_OF_THE_STREAM_ORDER[0])
        finally:
            await pool.close()
        conn = await asyncpg.connect(server_admin_url)
        try:
            assert await conn.fetchval(
                "SELECT NOT rolsuper FROM pg_roles WHERE rolname = $1", admin
            )
        finally:
            await conn.close()
    finally:
        # Each role is dropped by the one that created it: the session's own may be an
        # admin that holds no rights on the roles created by another (PostgreSQL 16+).
        conn = await asyncpg.connect(with_database(admin_database, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            for role in (roles.app, roles.owner):
                await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await conn.close()
        conn = await asyncpg.connect(server_admin_url)
        try:
            await conn.execute(f'DROP ROLE IF EXISTS "{admin}"')
        finally:
            await conn.close()
