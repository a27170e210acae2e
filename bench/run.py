"""Side-by-side benchmark of identity-store against hand-written asyncpg and SQLAlchemy.

``make bench`` (or ``python -m bench``) runs every contender of every workload in one
run, on one server and one database, taking turns round by round, and prints ops/s,
p50/p99 latency and the ratio to hand-written asyncpg + pydantic. Before timing
anything it checks that every contender returns the same results for the same inputs,
and exits non-zero when one does not. Nothing about speed is asserted.

Options: ``--quick`` (a few seconds: tiny data, two rounds), ``--json FILE`` (every
number, for tools), ``--docs`` (rewrite the results part of docs/benchmarks.md and
docs/benchmarks.png), ``--only a,b`` (some workloads), ``--rounds N``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import secrets
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from bench._compat import init_connection
from bench.contenders import (
    CONTENDERS,
    EVENT_COLUMNS,
    SQL_ALL_EVENTS,
    SQL_STREAM,
    Contender,
    StreamPosition,
    digest,
    event_records,
    repository_stream_page,
)
from identity_store import (
    Event,
    NewEvent,
    NewUser,
    PostgresEventRepository,
    Token,
    User,
    UserUpdate,
)
from identity_store.domain.clock import utc_now
from identity_store.domain.pagination import decode_stream_cursor
from identity_store.infrastructure.settings import parse_database_url

ROOT = Path(__file__).resolve().parent.parent
SINGLE = ("baseline", "generated", "repository", "sqla_orm", "sqla_core")
BULK = ("baseline", "executemany", "generated", "repository", "sqla_orm")
LABELS = {
    "baseline": "hand-written asyncpg + pydantic",
    "generated": "generated functions",
    "repository": "repositories",
    "sqla_orm": "SQLAlchemy ORM",
    "sqla_core": "SQLAlchemy Core",
    "executemany": "asyncpg executemany",
}
BULK_LABELS = {**LABELS, "baseline": "raw COPY (copy_records_to_table)"}
PAYLOAD = {"ip": "192.0.2.10", "agent": "bench/1.0", "ok": True}


@dataclass(frozen=True)
class Scale:
    users: int
    events: int
    rounds: int
    ops: int  # single-row operations per contender per round at concurrency 1
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
    from identity_store.dev.devdb import start

    url: str = start().url("postgres")
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


# ------------------------------------------------------------------------- workloads

Inputs = list[list[Any]]  # one list of inputs per worker


@dataclass
class Workload:
    name: str
    title: str
    kind: str  # "read", "write" (single row), "page", "bulk"
    contenders: tuple[str, ...]
    call: Callable[[Contender, Any], Awaitable[Any]]
    inputs: Callable[[Data, asyncpg.Connection, str, int, int], Awaitable[Inputs]]
    ops: Callable[[Scale], int]


def split(items: list[Any], workers: int) -> Inputs:
    return [items[w::workers] for w in range(workers)]


def single_ops(scale: Scale) -> int:
    return scale.ops


async def pick_ids(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split([data.rng.choice(data.user_ids) for _ in range(n)], workers)


async def pick_emails(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    # Another case than stored: the lookup ignores case.
    return split([data.rng.choice(data.emails).upper() for _ in range(n)], workers)


async def make_new_users(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    tag = secrets.token_hex(4)
    return split(
        [
            NewUser(email=f"{who}.{tag}.{i}@bench.example", display_name="New User")
            for i in range(n)
        ],
        workers,
    )


async def make_updates(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    # Each worker updates a user of its own, so versions never conflict.
    owned = await insert_users(
        conn, [f"upd.{who}.{secrets.token_hex(4)}.{w}@bench.example" for w in range(workers)]
    )
    for user_id in owned:
        data.versions[user_id] = 1
    return [
        [(owned[w], UserUpdate(display_name=f"Name {w}.{i}")) for i in range(n // workers)]
        for w in range(workers)
    ]


async def pick_secrets(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split([data.rng.choice(data.token_secrets) for _ in range(n)], workers)


async def make_consumable(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    fresh = [f"consume-{secrets.token_hex(12)}" for _ in range(n)]
    await insert_tokens(
        conn, [data.rng.choice(data.user_ids) for _ in fresh], fresh, "email_verification"
    )
    return split(fresh, workers)


async def make_events(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split(new_events(n, data.user_ids), workers)


async def make_recorded_events(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    events = new_events(n, data.user_ids)
    await conn.copy_records_to_table(
        "events", records=event_records(events, datetime.now(UTC)), columns=EVENT_COLUMNS
    )
    return split(events, workers)


async def make_bulk(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return [[new_events(n, data.event_user_ids)]]


async def pick_event_users(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split([data.rng.choice(data.event_user_ids) for _ in range(n)], workers)


async def pick_positions(data: Data, conn: Any, who: str, n: int, workers: int) -> Inputs:
    return split([data.rng.choice(data.positions) for _ in range(n)], workers)


async def call_update(c: Contender, inp: tuple[UUID, UserUpdate]) -> Any:
    user_id, changes = inp
    # versions lives on the contender's Data, set by make_updates.
    versions: dict[UUID, int] = c.versions  # type: ignore[attr-defined]
    user = await c.update_user(user_id, changes, versions[user_id])
    versions[user_id] = user.version
    return user


WORKLOADS = [
    Workload(
        "get_user",
        "get user by id",
        "read",
        SINGLE,
        lambda c, x: c.get_user(x),
        pick_ids,
        single_ops,
    ),
    Workload(
        "get_user_by_email",
        "get user by e-mail",
        "read",
        SINGLE,
        lambda c, x: c.get_user_by_email(x),
        pick_emails,
        single_ops,
    ),
    Workload(
        "register",
        "register user",
        "write",
        SINGLE,
        lambda c, x: c.register(x),
        make_new_users,
        single_ops,
    ),
    Workload(
        "update_user",
        "update user (expected version)",
        "write",
        SINGLE,
        call_update,
        make_updates,
        single_ops,
    ),
    Workload(
        "verify_token",
        "verify token",
        "read",
        SINGLE,
        lambda c, x: c.verify_token(x),
        pick_secrets,
        single_ops,
    ),
    Workload(
        "consume_token",
        "consume token",
        "write",
        SINGLE,
        lambda c, x: c.consume_token(x),
        make_consumable,
        single_ops,
    ),
    Workload(
        "append_event",
        "append one event",
        "write",
        SINGLE,
        lambda c, x: c.append_event(x),
        make_events,
        single_ops,
    ),
    Workload(
        "append_event_again",
        "append one event, key already recorded (idempotent path)",
        "write",
        SINGLE,
        lambda c, x: c.append_event(x),
        make_recorded_events,
        single_ops,
    ),
    Workload(
        "list_user_events",
        "list a user's events (100)",
        "page",
        SINGLE,
        lambda c, x: c.list_user_events(x, 100),
        pick_event_users,
        lambda s: s.page_ops * 5,
    ),
    Workload(
        "stream_page",
        "read the event stream, one page of 1,000",
        "page",
        SINGLE,
        lambda c, x: c.stream_page(x, 1000),
        pick_positions,
        lambda s: s.page_ops,
    ),
    Workload(
        "append_bulk",
        "append events in bulk",
        "bulk",
        BULK,
        lambda c, x: c.append_events(x),
        make_bulk,
        lambda s: s.bulk_rows,
    ),
]


# ----------------------------------------------------------------------- measurement


@dataclass
class Series:
    """One contender's numbers on one workload at one concurrency."""

    workload: str
    concurrency: int
    contender: str
    ops: int = 0  # operations per round (rows per op for bulk)
    round_rates: list[float] = field(default_factory=list)  # ops/s of each round
    round_cpu_us: list[float] = field(default_factory=list)  # client CPU µs per op
    latencies_ns: list[int] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ns)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] / 1000 if lat else float("nan")

        return {
            "workload": self.workload,
            "concurrency": self.concurrency,
            "contender": self.contender,
            "ops_per_round": self.ops,
            "rounds": len(self.round_rates),
            "ops_per_s": statistics.median(self.round_rates) if self.round_rates else None,
            "round_ops_per_s": [round(r, 1) for r in self.round_rates],
            "p50_us": pct(0.50),
            "p99_us": pct(0.99),
            "ratio": statistics.median(self.ratios) if self.ratios else None,
            "cpu_us_per_op": statistics.median(self.round_cpu_us) if self.round_cpu_us else None,
            "round_ratios": [round(r, 3) for r in self.ratios],
        }


async def timed(
    call: Callable[[Contender, Any], Awaitable[Any]], contender: Contender, inputs: Inputs
) -> tuple[float, float, list[int]]:
    """Run the inputs; return wall seconds, this process's CPU seconds, latencies (ns).

    The CPU time is the client's share of the work (the server's is the same SQL for
    every contender); unlike the wall time it hardly moves with the machine's load.
    """
    latencies: list[int] = []
    clock = time.perf_counter_ns

    async def worker(items: list[Any]) -> None:
        for item in items:
            start = clock()
            await call(contender, item)
            latencies.append(clock() - start)

    cpu = time.process_time()
    start = time.perf_counter()
    if len(inputs) == 1:
        await worker(inputs[0])
    else:
        await asyncio.gather(*(worker(items) for items in inputs))
    return time.perf_counter() - start, time.process_time() - cpu, latencies


class Replay:
    """An executor that asks the server once per statement and then answers every call
    with that first answer, instantly: what remains of a call's time is the Python
    code of the layer around the driver (building arguments and models, checks, error
    translation), with neither the network nor the server in it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self._canned: dict[tuple[str, str], Any] = {}

    async def _answer(self, method: str, query: str, args: tuple[Any, ...]) -> Any:
        key = (method, query)
        if key not in self._canned:
            self._canned[key] = await getattr(self._conn, method)(query, *args)
        return self._canned[key]

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return await self._answer("fetchrow", query, args)

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return await self._answer("fetch", query, args)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return await self._answer("execute", query, args)

    async def fetchval(self, query: str, *args: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return await self._answer("fetchval", query, args)

    def is_closed(self) -> bool:
        return False


REPLAYED = ("baseline", "generated", "repository")


async def run_replay(
    data: Data, conn: asyncpg.Connection, scale: Scale, rounds: int, wanted: Any
) -> list[dict[str, Any]]:
    """The client-side cost of each single-row call, the server's answers replayed."""
    replay_conn = await connect(data.url)
    try:
        out: list[dict[str, Any]] = []
        for workload in WORKLOADS:
            if workload.kind not in ("read", "write", "page") or (
                wanted and workload.name not in wanted
            ):
                continue
            contenders = {n: CONTENDERS[n](Replay(replay_conn)) for n in REPLAYED}
            for contender in contenders.values():
                contender.versions = data.versions  # type: ignore[attr-defined]
            n = workload.ops(scale) * (2 if workload.kind == "page" else 10)
            per_call: dict[str, list[float]] = {name: [] for name in REPLAYED}
            for index in range(max(rounds, 5) + 1):
                for name in REPLAYED[index % 3 :] + REPLAYED[: index % 3]:
                    # One input, repeated: every call then matches the canned answer.
                    (first,) = (await workload.inputs(data, conn, name, 1, 1))[0]
                    gc.collect()
                    _, cpu, _ = await timed(workload.call, contenders[name], [[first] * n])
                    if index:
                        per_call[name].append(cpu * 1e6 / n)
            # CPU time, and the best round: this is pure computation, and anything
            # above its least is the machine's other work.
            base = min(per_call["baseline"])
            for name in REPLAYED:
                us = min(per_call[name])
                out.append(
                    {
                        "workload": workload.name,
                        "contender": name,
                        "us_per_call": us,
                        "extra_us": us - base,
                    }
                )
        return out
    finally:
        await replay_conn.close()


async def run_workload(
    workload: Workload,
    contenders: dict[str, Contender],
    data: Data,
    admin_conn: asyncpg.Connection,
    scale: Scale,
    concurrency: int,
    rounds: int,
) -> list[Series]:
    names = [n for n in workload.contenders if n in contenders]
    n = workload.ops(scale)
    bulk = workload.kind == "bulk"
    if not bulk:
        n = n * 2 if concurrency > 1 else n
        n = max(n - n % concurrency, concurrency)
    series = {name: Series(workload.name, concurrency, name, ops=n) for name in names}
    for index in range(rounds + 1):  # round 0 warms up and is not recorded
        order = names[index % len(names) :] + names[: index % len(names)]
        rates: dict[str, float] = {}
        for name in order:
            warm_up = max(1, n // 20) if bulk else max(concurrency, n // 4)
            size = n if index else warm_up
            inputs = await workload.inputs(data, admin_conn, name, size, concurrency)
            gc.collect()
            elapsed, cpu, latencies = await timed(workload.call, contenders[name], inputs)
            if index:
                done = size if bulk else sum(len(i) for i in inputs)
                rates[name] = done / elapsed
                series[name].round_cpu_us.append(cpu * 1e6 / (1 if bulk else done))
                series[name].round_rates.append(rates[name])
                series[name].latencies_ns.extend(latencies)
        if index and "baseline" in rates:
            for name, rate in rates.items():
                series[name].ratios.append(rate / rates["baseline"])
    return [series[name] for name in names]


# ---------------------------------------------------------------------------- export


async def export_stream(kind: str, conn: asyncpg.Connection) -> tuple[int, int]:
    """Read every event once; return (count, sum of ids) so contenders can be compared."""
    count = 0
    total = 0
    if kind == "repository":
        repo = PostgresEventRepository(conn)
        cursor: Any = None
        while True:
            events, cursor = await repository_stream_page(repo, cursor, 1000)
            for event in events:
                count += 1
                total += event.id
            if cursor is None:
                break
    elif kind == "baseline_pages":
        after_tx_id, after_id = 0, 0
        while True:
            rows = await conn.fetch(SQL_STREAM, after_tx_id, after_id, 1000)
            for event in [Event.model_validate(dict(row)) for row in rows]:
                count += 1
                total += event.id
            if len(rows) < 1000:
                break
            after_tx_id, after_id = rows[-1]["tx_id"], rows[-1]["id"]
    elif kind == "fetch_all":
        everything = [Event.model_validate(dict(row)) for row in await conn.fetch(SQL_ALL_EVENTS)]
        for event in everything:
            count += 1
            total += event.id
        del everything
    else:
        raise ValueError(kind)
    return count, total


EXPORT_KINDS = {
    "repository": "repositories, stream in pages of 1,000",
    "baseline_pages": "hand-written asyncpg, pages of 1,000",
    "fetch_all": "hand-written asyncpg, fetch everything at once",
}


async def run_export(admin: str, scale: Scale) -> list[dict[str, Any]]:
    name = await create_database(admin, "bench_export")
    try:
        url = with_database(admin, name)
        conn = await connect(url)
        try:
            users = await insert_users(conn, [f"x{i}@bench.example" for i in range(100)])
            await insert_events(conn, scale.export_events, users)
            await conn.execute("VACUUM ANALYZE")
            await wait_for_stream_horizon(conn)
            results = []
            for kind, label in EXPORT_KINDS.items():
                gc.collect()
                start = time.perf_counter()
                count, total = await export_stream(kind, conn)
                elapsed = time.perf_counter() - start
                gc.collect()
                tracemalloc.start()
                tracemalloc.reset_peak()
                traced = await export_stream(kind, conn)
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                results.append(
                    {
                        "contender": kind,
                        "label": label,
                        "events": count,
                        "id_sum": total,
                        "same_as_traced_run": traced == (count, total),
                        "seconds": elapsed,
                        "events_per_s": count / elapsed,
                        "peak_mib": peak / 2**20,
                    }
                )
            return results
        finally:
            await conn.close()
    finally:
        await drop_database(admin, name)


# ----------------------------------------------------------------------- equivalence


def norm(value: Any) -> Any:
    """A comparable form of what a contender returned, whatever its model class."""
    if value is None or isinstance(value, bool | int | float | str | bytes | datetime):
        return value.value if hasattr(value, "value") else value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [norm(v) for v in value]
    fields = USER_FIELDS if hasattr(value, "email") else None
    if fields is None:
        fields = TOKEN_FIELDS if hasattr(value, "expires_at") else EVENT_FIELDS
    return {name: norm(getattr(value, name)) for name in fields}


# What the equivalence checks compare: the models' fields (a user's secret hash aside).
USER_FIELDS = tuple(name for name, info in User.model_fields.items() if not info.exclude)
TOKEN_FIELDS = tuple(Token.model_fields)
EVENT_FIELDS = tuple(Event.model_fields)


def without(value: Any, *names: str) -> Any:
    return {k: v for k, v in value.items() if k not in names}


async def check_equivalence(
    url: str, data: Data, contenders: dict[str, Contender], conn: asyncpg.Connection
) -> dict[str, str]:
    """Give every contender the same inputs and compare what comes back.

    Writes are undone between contenders so each starts from the same rows; values
    the database generates (ids of new rows) are left out of the comparison of writes.
    """
    now = datetime.now(UTC) + timedelta(minutes=1)
    for contender in contenders.values():
        contender.set_clock(lambda: now)
    outcome: dict[str, str] = {}

    async def compare(name: str, make: Callable[[Contender], Awaitable[Any]], names: Any) -> None:
        results = {}
        for who in names:
            results[who] = await make(contenders[who])
        first = results[names[0]]
        bad = [who for who, got in results.items() if got != first]
        outcome[name] = "same" if not bad else f"DIFFERENT: {', '.join(bad)} vs {names[0]}"

    sample_ids = [*data.user_ids[:3], uuid4()]
    await compare(
        "get_user", lambda c: _all(c.get_user, sample_ids), [n for n in SINGLE if n in contenders]
    )
    sample_emails = [data.emails[0].upper(), data.emails[1], "nobody@bench.example"]
    await compare(
        "get_user_by_email",
        lambda c: _all(c.get_user_by_email, sample_emails),
        [n for n in SINGLE if n in contenders],
    )

    async def register(c: Contender) -> Any:
        email = "check.register@bench.example"
        await conn.execute("DELETE FROM users WHERE email_key = $1", email)
        got = norm(await c.register(NewUser(email=email, display_name="Check")))
        return without(got, "id")

    await compare("register", register, [n for n in SINGLE if n in contenders])

    (update_id,) = await insert_users(conn, ["check.update@bench.example"])

    async def update(c: Contender) -> Any:
        await conn.execute(
            "UPDATE users SET display_name = 'Before', version = 3, updated_at = created_at"
            " WHERE id = $1",
            update_id,
        )
        return norm(await c.update_user(update_id, UserUpdate(display_name="After"), 3))

    await compare("update_user", update, [n for n in SINGLE if n in contenders])
    await compare(
        "verify_token",
        lambda c: _all(c.verify_token, [*data.token_secrets[:3], "unknown"]),
        [n for n in SINGLE if n in contenders],
    )
    token_id = uuid4()

    async def consume(c: Contender) -> Any:
        secret = "check-consume"
        await conn.execute("DELETE FROM tokens WHERE id = $1", token_id)
        await conn.execute(
            "INSERT INTO tokens (id, user_id, kind, token_hash, created_at, expires_at)"
            " VALUES ($1, $2, 'email_verification', $3, $4, $5)",
            token_id,
            data.user_ids[0],
            digest(secret),
            now - timedelta(hours=1),
            now + timedelta(hours=1),
        )
        first = norm(await c.consume_token(secret))
        again = await c.consume_token(secret)
        return first, again

    await compare("consume_token", consume, [n for n in SINGLE if n in contenders])
    new = NewEvent(type="user.checked", payload={"n": 1, "tags": ["a"]}, user_id=data.user_ids[1])

    async def append(c: Contender) -> Any:
        await conn.execute("DELETE FROM events WHERE event_key = $1", new.event_key)
        return without(norm(await c.append_event(new)), "id")

    await compare("append_event", append, [n for n in SINGLE if n in contenders])
    again = NewEvent(type="user.checked", payload={"n": 2}, user_id=data.user_ids[2])
    await contenders["baseline"].append_event(again)
    await compare(
        "append_event_again",
        lambda c: _norm_call(c.append_event(again)),
        [n for n in SINGLE if n in contenders],
    )
    batch = new_events(200, data.user_ids)
    keys = [e.event_key for e in batch]

    async def bulk(c: Contender) -> Any:
        await conn.execute("DELETE FROM events WHERE event_key = ANY($1::uuid[])", keys)
        count = await c.append_events(batch)
        rows = await conn.fetch(
            "SELECT event_key, user_id, type, payload, occurred_at, recorded_at FROM events"
            " WHERE event_key = ANY($1::uuid[]) ORDER BY event_key",
            keys,
        )
        return count, [norm(dict(row)) for row in rows]

    await compare("append_bulk", bulk, [n for n in BULK if n in contenders])
    await compare(
        "list_user_events",
        lambda c: _norm_call(c.list_user_events(data.event_user_ids[0], 100)),
        [n for n in SINGLE if n in contenders],
    )
    await compare(
        "stream_page",
        lambda c: _all(lambda p: c.stream_page(p, 1000), data.positions[:2]),
        [n for n in SINGLE if n in contenders],
    )
    for contender in contenders.values():
        contender.set_clock(utc_now)
    return outcome


async def _norm_call(awaitable: Awaitable[Any]) -> Any:
    return norm(await awaitable)


async def _all(fn: Callable[[Any], Awaitable[Any]], inputs: Sequence[Any]) -> list[Any]:
    return [norm(await fn(x)) for x in inputs]


# --------------------------------------------------------------------------- running


async def build_contenders(
    url: str, concurrency: int, data: Data, names: Sequence[str]
) -> dict[str, Contender]:
    if concurrency == 1:
        executor: Any = await connect(url)
    else:
        executor = await asyncpg.create_pool(
            url, min_size=concurrency, max_size=concurrency, init=init_connection
        )
    contenders: dict[str, Contender] = {}
    for name in names:
        if name.startswith("sqla"):
            engine = sqla_engine(url, concurrency)
            contender = CONTENDERS[name](engine)
        else:
            contender = CONTENDERS[name](executor)
        contender.versions = data.versions  # type: ignore[attr-defined]
        contenders[name] = contender
    return contenders


async def close_contenders(contenders: dict[str, Contender]) -> None:
    executors = set()
    for contender in contenders.values():
        await contender.close()
        if not contender.name.startswith("sqla"):
            executors.add(contender.db)
    for executor in executors:
        await executor.close()


async def server_facts(conn: asyncpg.Connection) -> dict[str, Any]:
    version = await conn.fetchval("SHOW server_version")
    return {
        "postgresql": version,
        "python": platform.python_version(),
        "asyncpg": asyncpg.__version__,
        "pydantic": _version("pydantic"),
        "sqlalchemy": _version("sqlalchemy"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "cpu": _cpu_model(),
        "load_average_at_start": os.getloadavg(),
    }


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_series(workload: Workload, concurrency: int, rows: list[dict[str, Any]]) -> None:
    bulk = workload.kind == "bulk"
    first = rows[0]
    unit = f"{first['ops_per_round']:,} rows per op" if bulk else f"{first['ops_per_round']} ops"
    print(
        f"\n{workload.title} — concurrency {concurrency}"
        f" ({first['rounds']} rounds x {unit}, after a warm-up round)"
    )
    head = "rows/s" if bulk else "ops/s"
    cpu_head = "client CPU/op"
    print(f"  {'contender':<34} {head:>10} {'p50':>10} {'p99':>10}   ratio {cpu_head:>14}")
    labels = BULK_LABELS if bulk else LABELS
    for row in rows:
        scale = 1000.0 if bulk else 1.0
        unit_lat = "ms" if bulk else "µs"
        ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}"
        print(
            f"  {labels[row['contender']]:<34} {row['ops_per_s']:>10,.0f}"
            f" {row['p50_us'] / scale:>8.1f}{unit_lat} {row['p99_us'] / scale:>8.1f}{unit_lat}"
            f"   {ratio:>5} {row['cpu_us_per_op'] / scale:>12.1f}{unit_lat}"
        )


def ratio_of(results: list[dict[str, Any]], workload: str, contender: str, c: int) -> Any:
    for row in results:
        if (
            row["workload"] == workload
            and row["contender"] == contender
            and row["concurrency"] == c
        ):
            return row["ratio"]
    return None


def rate_of(results: list[dict[str, Any]], workload: str, contender: str, c: int) -> Any:
    for row in results:
        if (
            row["workload"] == workload
            and row["contender"] == contender
            and row["concurrency"] == c
        ):
            return row["ops_per_s"]
    return None


def targets(results: list[dict[str, Any]], export: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target of issue 11 with the measured value (concurrency 1 ratios)."""
    out: list[dict[str, Any]] = []

    def add(what: str, value: Any, goal: float, *, below: bool = False) -> None:
        met = None if value is None else (value < goal if below else value >= goal)
        out.append({"target": what, "value": value, "goal": goal, "met": met})

    kinds = {w.name: w.kind for w in WORKLOADS}
    for name, kind in kinds.items():
        if kind in ("read", "write"):
            goal = 0.95 if kind == "read" else 0.90
            add(f"repositories / baseline, {name}", ratio_of(results, name, "repository", 1), goal)
    for name, kind in kinds.items():
        if kind in ("read", "write"):
            add(f"generated / baseline, {name}", ratio_of(results, name, "generated", 1), 0.97)
    for name, goal in (("get_user", 3.0), ("register", 2.0)):
        ours = rate_of(results, name, "repository", 1)
        orm = rate_of(results, name, "sqla_orm", 1)
        add(f"repositories / SQLAlchemy ORM, {name}", ours / orm if ours and orm else None, goal)
    add("bulk append / raw COPY", ratio_of(results, "append_bulk", "repository", 1), 0.90)
    ours = rate_of(results, "append_bulk", "repository", 1)
    many = rate_of(results, "append_bulk", "executemany", 1)
    add("bulk append / executemany", ours / many if ours and many else None, 1.5)
    for row in export:
        if row["contender"] == "repository":
            add(
                f"stream export of {row['events']:,} events, peak MiB",
                row["peak_mib"],
                50,
                below=True,
            )
    return out


async def profile(args: argparse.Namespace) -> int:
    """Run one contender on one workload (concurrency 1) under pyinstrument."""
    from pyinstrument import Profiler

    who, _, what = args.profile.partition(":")
    (workload,) = [w for w in WORKLOADS if w.name == what]
    admin = admin_url()
    name = await create_database(admin, "bench_profile")
    try:
        url = with_database(admin, name)
        conn = await connect(url)
        try:
            scale = QUICK if args.quick else FULL
            data = Data(url=url)
            await seed(conn, data, scale)
            contenders = await build_contenders(url, 1, data, [who])
            try:
                n = workload.ops(scale) if workload.kind == "bulk" else 2000
                warm = await workload.inputs(data, conn, who, min(n, 50), 1)
                await timed(workload.call, contenders[who], warm)
                inputs = await workload.inputs(data, conn, who, n, 1)
                profiler = Profiler(interval=0.0001, async_mode="disabled")
                profiler.start()
                await timed(workload.call, contenders[who], inputs)
                profiler.stop()
                print(profiler.output_text(unicode=True, show_all=False, color=False))
            finally:
                await close_contenders(contenders)
        finally:
            await conn.close()
    finally:
        await drop_database(admin, name)
    return 0


async def main_async(args: argparse.Namespace) -> int:
    if args.profile:
        return await profile(args)
    scale = QUICK if args.quick else FULL
    rounds = args.rounds or scale.rounds
    wanted = set(args.only.split(",")) if args.only else None
    admin = admin_url()
    name = await create_database(admin, "bench")
    url = with_database(admin, name)
    report: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        conn = await connect(url)
        try:
            report["facts"] = await server_facts(conn)
            report["scale"] = scale.__dict__ | {"rounds": rounds, "quick": args.quick}
            started = time.perf_counter()
            data = Data(url=url)
            await seed(conn, data, scale)
            print(
                f"identity-store benchmark — PostgreSQL {report['facts']['postgresql']},"
                f" Python {report['facts']['python']}, {report['facts']['machine']},"
                f" load {report['facts']['load_average_at_start'][0]:.1f}"
            )
            print(
                f"data: {scale.users:,} users with a token each, {scale.events:,} events"
                f" (seeded in {time.perf_counter() - started:.1f}s)"
            )
            names = list(dict.fromkeys(SINGLE + BULK))
            contenders = await build_contenders(url, 1, data, names)
            try:
                same = await check_equivalence(url, data, contenders, conn)
            finally:
                await close_contenders(contenders)
            report["equivalence"] = same
            print("same results for the same inputs:", end=" ")
            print(", ".join(f"{k} {v}" for k, v in same.items()))
            if any(v != "same" for v in same.values()):
                print("contenders disagree: not timing anything", file=sys.stderr)
                return 1
            results: list[dict[str, Any]] = []
            for concurrency in (1, scale.pool):
                contenders = await build_contenders(url, concurrency, data, names)
                try:
                    for workload in WORKLOADS:
                        if wanted and workload.name not in wanted:
                            continue
                        if workload.kind == "bulk" and concurrency > 1:
                            continue
                        wrounds = scale.bulk_rounds if workload.kind == "bulk" else rounds
                        series = await run_workload(
                            workload, contenders, data, conn, scale, concurrency, wrounds
                        )
                        rows = [s.summary() for s in series]
                        print_series(workload, concurrency, rows)
                        results.extend(rows)
                finally:
                    await close_contenders(contenders)
            report["results"] = results
            replayed = await run_replay(data, conn, scale, rounds, wanted)
            report["replay"] = replayed
            print(
                "\nPython-side cost per call, the server's answers replayed"
                " (µs; extra = over hand-written):"
            )
            for row in replayed:
                print(
                    f"  {row['workload']:<20} {LABELS[row['contender']]:<34}"
                    f" {row['us_per_call']:>8.1f} µs  extra {row['extra_us']:>+7.1f} µs"
                )
        finally:
            await conn.close()
        export: list[dict[str, Any]] = []
        if not wanted or "export" in wanted:
            export = await run_export(admin, scale)
            print(
                f"\nexport of {scale.export_events:,} events (one pass each; peak by tracemalloc)"
            )
            for row in export:
                print(
                    f"  {row['label']:<48} {row['events_per_s']:>10,.0f} events/s"
                    f" {row['seconds']:>7.2f}s  peak {row['peak_mib']:>8.1f} MiB"
                )
            if len({(row["events"], row["id_sum"]) for row in export}) != 1 or not all(
                row["same_as_traced_run"] for row in export
            ):
                print("export contenders read different events", file=sys.stderr)
                report["equivalence"]["export"] = "DIFFERENT"
                return 1
            report["equivalence"]["export"] = "same"
        report["export"] = export
        report["targets"] = targets(results, export)
        report["facts"]["load_average_at_end"] = os.getloadavg()
        print("\ntargets (ratios at concurrency 1, median of per-round ratios):")
        for t in report["targets"]:
            mark = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
            value = "—" if t["value"] is None else f"{t['value']:.2f}"
            print(f"  {t['target']:<52} {value:>8}  goal {t['goal']:<5} {mark}")
        print(f"\nload average at end: {report['facts']['load_average_at_end'][0]:.1f}")
    finally:
        await drop_database(admin, name)
    if args.json:
        await asyncio.to_thread(
            Path(args.json).write_text, json.dumps(report, indent=1, default=str) + "\n"
        )
    if args.docs:
        from bench.docs import write_docs

        write_docs(report, ROOT / "docs")
    return 0


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    parser.add_argument("--json", metavar="FILE", help="write every number to FILE")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/benchmarks.{md,png}")
    parser.add_argument("--only", metavar="A,B", help="run only these workloads (and export)")
    parser.add_argument("--rounds", type=int, help="measured rounds per workload")
    parser.add_argument(
        "--profile",
        metavar="CONTENDER:WORKLOAD",
        help="profile one contender on one workload with pyinstrument instead",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main_async(parse(argv)))
