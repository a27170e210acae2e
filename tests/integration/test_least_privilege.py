"""The two roles of scripts/create_roles.py: the application may change rows, not schema.

The whole integration suite runs as the application role (see tests/conftest.py);
these tests show what that role may *not* do, and that the script keeps it so.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from tests.conftest import (
    Deploy,
    Deployment,
    MakeDatabase,
    Roles,
    atlas,
    create_roles,
    with_credentials,
)

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
    "SELECT * FROM atlas_schema_revisions.atlas_schema_revisions",
    "DELETE FROM atlas_schema_revisions.atlas_schema_revisions",
    "CREATE FUNCTION intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
]

# What the queries need, table by table (queries/*.sql), and nothing more.
EXPECTED = {
    "users": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    "tokens": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    "events": {"SELECT", "INSERT"},
    "event_type_counts": {"SELECT", "INSERT", "UPDATE"},
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
            held[row["relname"]] = {
                privilege
                for privilege in ALL_TABLE_PRIVILEGES
                if await conn.fetchval(
                    "SELECT has_table_privilege($1, $2, $3)",
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
