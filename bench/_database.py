"""The benchmark's server side: scratch databases, connections and the seeded data."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from bench._compat import init_connection
from bench.contenders import (
    EVENT_COLUMNS,
    StreamPosition,
    digest,
    repository_stream_page,
)
from identity_store import (
    NewEvent,
    PostgresEventRepository,
)
from identity_store.domain.pagination import decode_stream_cursor
from identity_store.infrastructure.settings import parse_database_url

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = {"ip": "192.0.2.10", "agent": "bench/1.0", "ok": True}


@dataclass(frozen=True)
class Scale:
    users: int
    events: int
    rounds: int
    ops: int  # single-row writes per contender per round at concurrency 1
    read_ops: int  # single-row reads: ten times as many, to resolve a few per cent
    page_ops: int  # page reads per contender per round
    bulk_rows: int
    bulk_rounds: int
    export_events: int
    pool: int  # connections of the concurrent runs


FULL = Scale(
    users=10_000,
    events=100_000,
    rounds=5,
    ops=200,
    read_ops=2_000,
    page_ops=10,
    bulk_rows=100_000,
    bulk_rounds=2,
    export_events=1_000_000,
    pool=16,
)
QUICK = Scale(
    users=200,
    events=3_000,
    rounds=1,
    ops=12,
    read_ops=12,
    page_ops=2,
    bulk_rows=1_000,
    bulk_rounds=1,
    export_events=5_000,
    pool=4,
)


# --------------------------------------------------------------------------- database


def admin_url() -> str:
    configured = os.environ.get("DATABASE_URL") or os.environ.get("DB_URL")
    if configured:
        return with_database(configured, "postgres")
    from identity_store.dev import start_server  # only without a server of our own

    url: str = start_server().url("postgres")
    return url


def with_database(url: str, name: str) -> str:
    return parse_database_url(url).with_database(name).render()


async def create_database(admin: str, prefix: str) -> str:
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(admin, name)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute((ROOT / "schema.sql").read_text())
    finally:
        await conn.close()
    return name


@contextlib.asynccontextmanager
async def migrated_database(admin: str, prefix: str) -> AsyncIterator[str]:
    """Yield the URL of a scratch database on ``admin``'s server with ``migrations/``
    applied by Atlas (the deployed schema; :func:`create_database` runs ``schema.sql``);
    dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(admin, name)
    try:
        atlas = os.environ.get("ATLAS") or str(ROOT / ".tools" / "bin" / "atlas")
        await asyncio.to_thread(
            subprocess.run,
            [atlas, "migrate", "apply", "--dir", "file://migrations", "--url", url],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        yield url
    finally:
        await drop_database(admin, name)


async def drop_database(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await init_connection(conn)
    return conn


def sqla_engine(url: str, size: int) -> Any:
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    parsed = make_url(url).set(drivername="postgresql+asyncpg")
    query = dict(parsed.query)
    # asyncpg takes libpq's sslmode values as its `ssl` argument; SQLAlchemy would pass
    # `sslmode` through unchanged, which asyncpg.connect() refuses.
    ssl = query.pop("sslmode", None)
    return create_async_engine(
        parsed.set(query=query),
        pool_size=size,
        max_overflow=0,
        connect_args={} if ssl is None else {"ssl": ssl},
    )


# ------------------------------------------------------------------------------- data


@dataclass
class Data:
    """What the seed wrote, for the workloads to pick inputs from."""

    url: str
    user_ids: list[UUID] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    token_secrets: list[str] = field(default_factory=list)
    event_user_ids: list[UUID] = field(default_factory=list)
    positions: list[StreamPosition] = field(default_factory=list)
    versions: dict[UUID, int] = field(default_factory=dict)
    rng: Any = None


async def insert_users(conn: asyncpg.Connection, emails: Sequence[str]) -> list[UUID]:
    now = datetime.now(UTC)
    rows = await conn.fetch(
        "INSERT INTO users (email, display_name, created_at, updated_at)"
        " SELECT e, 'Bench User', $2, $2 FROM unnest($1::text[]) AS t(e) RETURNING id",
        list(emails),
        now,
    )
    return [row["id"] for row in rows]


async def insert_tokens(
    conn: asyncpg.Connection, user_ids: Sequence[UUID], secrets_: Sequence[str], kind: str
) -> None:
    now = datetime.now(UTC)
    await conn.execute(
        "INSERT INTO tokens (user_id, kind, token_hash, created_at, expires_at)"
        " SELECT u, $3::token_kind, h, $4, $5 FROM unnest($1::uuid[], $2::bytea[]) AS t(u, h)",
        list(user_ids),
        [digest(s) for s in secrets_],
        kind,
        now - timedelta(seconds=1),
        now + timedelta(days=1),
    )


def new_events(n: int, user_ids: Sequence[UUID]) -> list[NewEvent]:
    return [
        NewEvent(type="user.signed_in", payload=PAYLOAD, user_id=user_ids[i % len(user_ids)])
        for i in range(n)
    ]


async def insert_events(conn: asyncpg.Connection, n: int, user_ids: Sequence[UUID]) -> None:
    now = datetime.now(UTC)
    chunk = 50_000
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        records = [
            (uuid4(), user_ids[(start + i) % len(user_ids)], "user.signed_in", PAYLOAD, now, now)
            for i in range(count)
        ]
        await conn.copy_records_to_table("events", records=records, columns=EVENT_COLUMNS)


async def wait_for_stream_horizon(conn: asyncpg.Connection, *, seconds: float = 120) -> None:
    """Wait until the stream can deliver every seeded event.

    The stream returns only events of transactions older than every transaction still
    running on the server, in any database: one left open elsewhere (another client of
    the same server) would hold back every seeded event, and the stream workloads and
    the export would read nothing. Bounded; says so when the wait is in vain.
    """
    deadline = time.monotonic() + seconds
    while True:
        held = await conn.fetchval(
            "SELECT max(tx_id) >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint FROM events"
        )
        if not held:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                "a transaction left open on this server holds back the event stream;"
                " the stream workloads would read nothing"
            )
        await asyncio.sleep(0.2)


async def seed(conn: asyncpg.Connection, data: Data, scale: Scale) -> None:
    import random

    data.rng = random.Random(11)  # noqa: S311 - picks benchmark inputs
    data.emails = [f"user{i}@bench.example" for i in range(scale.users)]
    data.user_ids = await insert_users(conn, data.emails)
    data.token_secrets = [f"verify-{i}-{secrets.token_hex(8)}" for i in range(scale.users)]
    await insert_tokens(conn, data.user_ids, data.token_secrets, "session")
    # A user in every 200 events has 200 of them (list_user_events reads 100).
    data.event_user_ids = data.user_ids[: max(1, scale.events // 200)]
    await insert_events(conn, scale.events, data.event_user_ids)
    await conn.execute("VACUUM ANALYZE")
    await wait_for_stream_horizon(conn)
    repo = PostgresEventRepository(conn)
    cursor: Any = None
    after = (0, 0)
    while True:
        data.positions.append(StreamPosition(cursor, *after))
        _, cursor = await repository_stream_page(repo, cursor, 1000)
        if cursor is None or len(data.positions) >= 200:
            break
        after = decode_stream_cursor(cursor)
