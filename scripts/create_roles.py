"""Create the two database roles of identity-store and give each only what it needs.

- The **owner** role (default ``identity_owner``) owns the database, the ``public``
  schema's objects and Atlas's ``atlas_schema_revisions``: ``atlas migrate apply``
  runs as this role, and nothing else does.
- The **application** role (default ``identity_app``) is what the service connects
  as. It may read and write rows, and only that: ``SELECT`` on every table, ``INSERT``
  on every column but those only a default may fill (``events.tx_id``, the stream's
  order, and identity ALWAYS columns), ``UPDATE, DELETE`` only where a query needs
  them (``users``, ``tokens``, ``subscriptions``; never ``events``, which is
  append-only; ``UPDATE`` alone on ``event_type_counts``, which the appends upsert),
  ``USAGE, SELECT`` on sequences; no ``TRUNCATE``,
  no DDL (no ``CREATE`` on the database or a schema, no ``TEMPORARY``), no access to
  ``atlas_schema_revisions``. Default privileges give tables a later migration
  creates ``SELECT, INSERT`` (and their sequences ``USAGE, SELECT``) at once; run
  this script again after a migration so tables named in ``UPDATE_DELETE`` and
  ``UPDATE_ONLY`` get the rest and INSERT is granted column by column again (a column
  added since is not insertable until then). Identity columns need no grant on their
  sequence; ``serial`` ones do.

Run it as a superuser or as the admin role of a managed service (``CREATEDB`` and
``CREATEROLE``, no superuser: the script makes it a member of the owner role), against
the database to set up; it is idempotent and safe to run again, also concurrently (an
advisory lock serialises runs)::

    DATABASE_URL=postgresql://postgres:...@db:5432/identity python scripts/create_roles.py apply
    DATABASE_URL=... python scripts/create_roles.py exec --as owner -- \
        atlas migrate apply --env prod
    DATABASE_URL=... python scripts/create_roles.py apply      # after every migration
    DATABASE_URL=... python scripts/create_roles.py url app    # the service's DATABASE_URL

The admin URL comes from the project's one settings loader (``DATABASE_URL`` /
``DB_URL``, ``.env``). ``apply`` creates the database when missing, owned by the
owner; on a database whose tables another role owns (one migrated by a superuser
before roles existed), it hands them to the owner.

Passwords: ``IDENTITY_STORE_OWNER_PASSWORD`` / ``IDENTITY_STORE_APP_PASSWORD`` when
set; otherwise ``<passwords dir>/<role>.password`` (default ``.devdb/roles``, mode
0600), generated on first use. The server receives a SCRAM verifier, never the
password. Role names: ``--owner`` / ``--app`` or ``IDENTITY_STORE_OWNER_ROLE`` /
``IDENTITY_STORE_APP_ROLE``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg

from identity_store.domain.errors import DatabaseConfigError
from identity_store.infrastructure.db import describe_url
from identity_store.infrastructure.settings import load_settings, parse_database_url

ROOT = Path(__file__).resolve().parent.parent
REVISIONS_SCHEMA = "atlas_schema_revisions"

# Tables whose rows the queries change or delete (queries/*.sql: UPDATE users,
# DELETE FROM users, UPDATE tokens, DELETE FROM tokens ... FOR UPDATE SKIP LOCKED,
# UPDATE subscriptions, DELETE FROM subscriptions, ... FOR UPDATE).
# Every other table in public gets SELECT and INSERT only: append-only unless named here
# (subscription_parked_events too: its rows go with their subscription's, by cascade).
UPDATE_DELETE = frozenset({"users", "tokens", "subscriptions"})
# Tables whose rows the queries change but never delete: the event counts, which the
# append queries upsert (INSERT ... ON CONFLICT DO UPDATE).
UPDATE_ONLY = frozenset({"event_type_counts"})

# Tables the application only reads: event_retention is written by purge_events, which
# runs as the owner (the application may not delete events either).
SELECT_ONLY = frozenset({"event_retention"})

# Columns only their DEFAULT may fill: the event stream's order (a reader already past a
# tx_id written by hand would never see that row). INSERT is granted column by column,
# on the table's columns at the time of the run less these and identity ALWAYS ones.
PROTECTED_COLUMNS = {"events": frozenset({"tx_id"})}

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_LOCK_KEY = 0x1D5_0C_5707  # pg_advisory_xact_lock key: one run at a time per server
_SCRAM_ITERATIONS = 4096


class RolesError(Exception):
    """The roles could not be set up; the message says why (never a password)."""


@dataclass(frozen=True)
class Role:
    name: str
    password: str


def ident(name: str) -> str:
    """Quote an identifier we validated ourselves."""
    if not _NAME.match(name):
        raise RolesError(f"{name!r} is not a plain lower-case SQL name ([a-z_][a-z0-9_]*)")
    return f'"{name}"'


def scram_verifier(password: str) -> str:
    """Return PostgreSQL's SCRAM-SHA-256 verifier of ``password`` (what CREATE ROLE stores)."""
    normalised = unicodedata.normalize("NFKC", password).encode()
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", normalised, salt, _SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


def role_url(admin_url: str, role: Role, database: str | None = None) -> str:
    """Return ``admin_url`` with the role's credentials (and ``database``, if given).

    Multi-host URLs keep every host (the settings loader's parser)."""
    parsed = replace(parse_database_url(admin_url), user=role.name, password=role.password)
    return (parsed.with_database(database) if database else parsed).render()


def database_of(url: str) -> str:
    name = parse_database_url(url).database
    if not name:
        raise RolesError("the admin URL names no database: add /<database> or pass --database")
    return name


def with_database(url: str, database: str) -> str:
    return parse_database_url(url).with_database(database).render()


def password_for(kind: str, name: str, folder: Path, *, create: bool) -> str:
    configured = os.environ.get(f"IDENTITY_STORE_{kind.upper()}_PASSWORD")
    if configured:
        return configured
    path = folder / f"{name}.password"
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise RolesError(
            f"no password for role {name}: set IDENTITY_STORE_{kind.upper()}_PASSWORD "
            f"or run `create_roles.py apply` first (it writes {path})"
        )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password)
    return password


# What each role must not hold, as pg_roles names it and as ALTER ROLE takes it back.
_WITHHELD = {
    "rolsuper": "NOSUPERUSER",
    "rolcreatedb": "NOCREATEDB",
    "rolcreaterole": "NOCREATEROLE",
    "rolreplication": "NOREPLICATION",
    "rolbypassrls": "NOBYPASSRLS",
}


async def _ensure_role(conn: asyncpg.Connection, role: Role) -> None:
    # The verifier is our own output (base64 and '$:'), safe between quotes.
    password = f"LOGIN INHERIT PASSWORD '{scram_verifier(role.password)}'"
    held = await conn.fetchrow(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
        "FROM pg_roles WHERE rolname = $1",
        role.name,
    )
    if held is None:
        attributes = " ".join(_WITHHELD.values())
        await conn.execute(f"CREATE ROLE {ident(role.name)} {attributes} {password}")
        return
    # Only what the role holds is taken back: naming SUPERUSER, REPLICATION or BYPASSRLS
    # at all needs a superuser, which a managed service's admin role is not.
    attributes = " ".join(word for column, word in _WITHHELD.items() if held[column])
    await conn.execute(f"ALTER ROLE {ident(role.name)} {attributes} {password}")


async def _act_as_owner(conn: asyncpg.Connection, owner: Role) -> None:
    """Make the connected admin a member of the owner role unless it is a superuser or
    one already: creating the database for the owner, setting its default privileges and
    handing it objects need that. A role with CREATEROLE may grant it to itself (on
    PostgreSQL 16+ it holds ADMIN on the roles it created; on 15 CREATEROLE suffices)."""
    if await conn.fetchval(
        "SELECT rolsuper OR pg_has_role(current_user, $1, 'USAGE') FROM pg_roles "
        "WHERE rolname = current_user",
        owner.name,
    ):
        return
    grant = f"GRANT {ident(owner.name)} TO CURRENT_USER"
    if await conn.fetchval("SELECT current_setting('server_version_num')::int >= 160000"):
        grant += " WITH INHERIT TRUE, SET TRUE"
    await conn.execute(grant)


async def _connect_to_server(admin_url: str) -> asyncpg.Connection:
    """A connection to the admin URL's database or, while that one does not exist yet
    (``apply`` creates it), to the server's maintenance database ``postgres``."""
    try:
        return await asyncpg.connect(admin_url)
    except asyncpg.InvalidCatalogNameError:
        return await asyncpg.connect(with_database(admin_url, "postgres"))


async def _prepare_server(admin_url: str, database: str, owner: Role, app: Role) -> None:
    """Roles and the database: things done from any database of the server."""
    conn = await _connect_to_server(admin_url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            await _ensure_role(conn, owner)
            await _ensure_role(conn, app)
            await _act_as_owner(conn, owner)
            # The application must never act as the owner, even if someone granted it.
            if await conn.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", app.name, owner.name):
                await conn.execute(f"REVOKE {ident(owner.name)} FROM {ident(app.name)}")
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            # A concurrent run may have created it since.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f"CREATE DATABASE {ident(database)} OWNER {ident(owner.name)}")
    finally:
        await conn.close()


async def _owned_by_others(conn: asyncpg.Connection, owner: str) -> list[tuple[str, str]]:
    """Objects in public and the revisions schema that the owner role does not own."""
    rows = await conn.fetch(
        """
        SELECT 'TABLE' AS kind, format('%I.%I', n.nspname, c.relname) AS name
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('public', $2) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
           AND pg_get_userbyid(c.relowner) <> $1
        UNION ALL
        SELECT 'SEQUENCE', format('%I.%I', n.nspname, c.relname)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('public', $2) AND c.relkind = 'S'
           AND pg_get_userbyid(c.relowner) <> $1
           AND NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                              AND d.deptype IN ('a', 'i'))
        UNION ALL
        SELECT 'TYPE', format('%I.%I', n.nspname, t.typname)
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname IN ('public', $2) AND t.typtype IN ('e', 'd', 'c')
           AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
           AND pg_get_userbyid(t.typowner) <> $1
        UNION ALL
        SELECT 'SCHEMA', format('%I', n.nspname)
          FROM pg_namespace n
         WHERE n.nspname = $2 AND pg_get_userbyid(n.nspowner) <> $1
        """,
        owner,
        REVISIONS_SCHEMA,
    )
    return [(row["kind"], row["name"]) for row in rows]


async def _insertable_columns(conn: asyncpg.Connection, table: str) -> list[str]:
    """The columns of ``table`` the application may name in an INSERT: all but the
    protected ones and identity ALWAYS columns (whose values only the sequence gives)."""
    rows = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = format('public.%I', $1::text)::regclass"
        " AND attnum > 0 AND NOT attisdropped AND attidentity <> 'a' AND attgenerated = ''"
        " ORDER BY attnum",
        table,
    )
    withheld = PROTECTED_COLUMNS.get(table, frozenset())
    return [str(row["attname"]) for row in rows if row["attname"] not in withheld]


async def _grant(db_url: str, database: str, owner: Role, app: Role) -> list[str]:
    """Privileges inside the database. Returns what it reports to the operator."""
    report: list[str] = []
    o, a, d = ident(owner.name), ident(app.name), ident(database)
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            await conn.execute(f"ALTER DATABASE {d} OWNER TO {o}")
            # PUBLIC (every role) may neither connect nor create temporary tables here.
            await conn.execute(f"REVOKE ALL ON DATABASE {d} FROM PUBLIC")
            await conn.execute(f"REVOKE ALL ON DATABASE {d} FROM {a}")
            await conn.execute(f"GRANT CONNECT ON DATABASE {d} TO {a}")
            await conn.execute(f"GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {d} TO {o}")
            # PostgreSQL < 15 lets PUBLIC create in public; no one but the owner may.
            await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            await conn.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {o}")
            await conn.execute(f"REVOKE ALL ON SCHEMA public FROM {a}")
            await conn.execute(f"GRANT USAGE ON SCHEMA public TO {a}")

            adopted = await _owned_by_others(conn, owner.name)
            # Schemas first: a table's new owner needs CREATE on its schema (a superuser
            # is not asked; a managed service's admin is).
            for kind, name in sorted(adopted, key=lambda found: found[0] != "SCHEMA"):
                await conn.execute(f"ALTER {kind} {name} OWNER TO {o}")
            if adopted:
                report.append(f"handed {len(adopted)} existing objects to {owner.name}")

            # Tables and sequences a later migration creates.
            for statement in (
                f"REVOKE ALL ON TABLES FROM {a}",
                f"GRANT SELECT, INSERT ON TABLES TO {a}",
                f"REVOKE ALL ON SEQUENCES FROM {a}",
                f"GRANT USAGE, SELECT ON SEQUENCES TO {a}",
            ):
                await conn.execute(
                    f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public {statement}"
                )

            tables = [
                str(name)
                for name in await conn.fetchval(
                    "SELECT coalesce(array_agg(relname ORDER BY relname), '{}') FROM pg_class "
                    "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')"
                )
            ]
            for table in tables:
                privileges = "SELECT"
                if table in UPDATE_DELETE:
                    privileges += ", UPDATE, DELETE"
                elif table in UPDATE_ONLY:
                    privileges += ", UPDATE"
                await conn.execute(f"REVOKE ALL ON TABLE public.{ident(table)} FROM {a}")
                await conn.execute(f"GRANT {privileges} ON TABLE public.{ident(table)} TO {a}")
                insertable = [] if table in SELECT_ONLY else await _insertable_columns(conn, table)
                if insertable:
                    columns = ", ".join(ident(column) for column in insertable)
                    await conn.execute(
                        f"GRANT INSERT ({columns}) ON TABLE public.{ident(table)} TO {a}"
                    )
                withheld = PROTECTED_COLUMNS.get(table, frozenset())
                note = f" (not {', '.join(sorted(withheld))})" if withheld else ""
                insert = f", INSERT{note}" if insertable else ""
                report.append(f"{app.name}: {privileges}{insert} on {table}")
            await conn.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {a}")
            await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {a}")

            if await conn.fetchval(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1", REVISIONS_SCHEMA
            ):
                schema = ident(REVISIONS_SCHEMA)
                await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
                await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM {a}")
                await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC")
                await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {a}")
    finally:
        await conn.close()
    missing = sorted((UPDATE_DELETE | UPDATE_ONLY) - set(tables))
    if missing and tables:
        report.append(f"not yet created (granted on the next run): {', '.join(missing)}")
    if not tables:
        report.append("no tables yet: migrate as the owner, then run this again")
    return report


async def apply(admin_url: str, database: str, owner: Role, app: Role) -> list[str]:
    """Create or update both roles and their privileges on ``database``."""
    if owner.name == app.name:
        raise RolesError("the owner and the application role must be different roles")
    ident(database)
    await _prepare_server(admin_url, database, owner, app)
    return await _grant(with_database(admin_url, database), database, owner, app)


def _admin_url() -> str:
    try:
        return load_settings().database_url.get_secret_value()
    except DatabaseConfigError as exc:
        raise RolesError(
            f"{exc} (DATABASE_URL must be an admin's postgresql:// URL: a superuser, "
            "or a role with CREATEDB and CREATEROLE)"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="create_roles.py",
        description="Create identity-store's owner and application roles (idempotent).",
    )
    parser.add_argument("command", choices=["apply", "url", "exec"])
    parser.add_argument("--as", dest="as_role", choices=["owner", "app"], help="for exec")
    parser.add_argument("--database", help="default: the admin URL's database")
    parser.add_argument(
        "--owner", default=os.environ.get("IDENTITY_STORE_OWNER_ROLE", "identity_owner")
    )
    parser.add_argument("--app", default=os.environ.get("IDENTITY_STORE_APP_ROLE", "identity_app"))
    parser.add_argument(
        "--passwords",
        type=Path,
        default=Path(os.environ.get("IDENTITY_STORE_DEVDB") or ROOT / ".devdb") / "roles",
        help="folder of generated passwords (default .devdb/roles)",
    )
    # Our options come first; the rest is `url`'s role or `exec`'s command. Split by
    # hand: a wrapper in front of us (devdb exec) may already have eaten the `--`.
    argv = list(sys.argv[1:] if argv is None else argv)
    options = {"--as", "--database", "--owner", "--app", "--passwords"}
    split = 1
    while split + 1 < len(argv) and argv[split] in options:
        split += 2
    rest = argv[split:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    args = parser.parse_args(argv[:split])
    try:
        admin_url = _admin_url()
        database = args.database or database_of(admin_url)
        create = args.command == "apply"
        owner = Role(args.owner, password_for("owner", args.owner, args.passwords, create=create))
        app = Role(args.app, password_for("app", args.app, args.passwords, create=create))
        roles = {"owner": owner, "app": app}
        if args.command == "apply":
            if rest:
                raise RolesError(f"apply takes no arguments, got {rest[0]!r}")
            for line in asyncio.run(apply(admin_url, database, owner, app)):
                print(line)
            print(f"roles ready on {describe_url(with_database(admin_url, database))}")
        elif args.command == "url":
            if rest not in (["owner"], ["app"]):
                raise RolesError("usage: create_roles.py url owner|app")
            print(role_url(admin_url, roles[rest[0]], database))
        else:
            if args.as_role is None or not rest:
                raise RolesError("usage: create_roles.py exec --as owner|app -- COMMAND ...")
            env = dict(os.environ, DATABASE_URL=role_url(admin_url, roles[args.as_role], database))
            env.pop("DB_URL", None)
            return subprocess.run(rest, env=env, check=False).returncode  # noqa: S603
    except (RolesError, OSError) as exc:
        print(f"create_roles: {exc}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:
        print(f"create_roles: the server refused ({exc.sqlstate}): {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
