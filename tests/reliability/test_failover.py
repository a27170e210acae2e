"""Failovers under load, on a real HA cluster: etcd and three Patroni nodes
(scripts/ha_cluster.py, synchronous replication), through the library's public API.

16 workers repeat the restart test's unit of work (register, issue a token, append an
event with a key chosen beforehand) through one pool on the cluster's multi-host URL with
``target_session_attrs=read-write``, and a reader follows ``read_stream`` with its cursor,
while the cluster goes through, in order:

1. a planned switchover (Patroni hands the leader role to the synchronous standby);
2. an unplanned failover (the primary's Patroni and postmaster killed with SIGKILL;
   the synchronous standby is promoted once the leader lease expires);
3. the killed node coming back (it rejoins as a standby, rewound if needed).

Afterwards, with plain SQL on the new primary: every acknowledged unit is there, whole;
every failure was a domain error and left nothing (an unknown outcome is all or nothing);
the reader saw every committed event exactly once. The longest write gap of each phase is
printed with the other figures (``make check-reliability``), not asserted.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from identity_store import (
    CommitOutcomeUnknown,
    IdentityStoreError,
    NewUser,
    PostgresReadUnitOfWork,
    PostgresUnitOfWork,
    Settings,
    check_health,
    create_pool,
    replica_lag,
)
from tests.conftest import Roles, set_up_database, with_credentials
from tests.reliability.conftest import FIGURES
from tests.reliability.test_restarts import _EVENT_TYPE, Attempt, one_unit, stored

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import itertools

import ha_cluster

pytestmark = pytest.mark.reliability

_WORKERS = 16
_UNITS_PER_PHASE = 300
_WAIT_S = 90.0
_MAX_UNITS_PER_WORKER = 5_000


@pytest.fixture(scope="module")
def cluster() -> Iterator[ha_cluster.State]:
    missing = [tool for tool in ("etcd", "patroni") if shutil.which(tool) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (make setup-ha)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    pg_bin = os.environ.get("HA_PG_BIN") or "/usr/lib/postgresql/15/bin"
    if not Path(pg_bin, "postgres").exists():
        pytest.skip(f"no PostgreSQL server binaries in {pg_bin}")
    ha_cluster.down()
    try:
        yield ha_cluster.up(pg_bin)
    finally:
        ha_cluster.down()


@dataclass
class Run:
    acknowledged: list[tuple[float, Attempt]] = field(default_factory=list)
    unknown: list[Attempt] = field(default_factory=list)
    failed: list[Attempt] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    leaks: list[str] = field(default_factory=list)
    streamed: list[Any] = field(default_factory=list)

    def fail(self, attempt: Attempt, exc: BaseException) -> None:
        name = type(exc).__name__
        self.failures[name] = self.failures.get(name, 0) + 1
        (self.unknown if isinstance(exc, CommitOutcomeUnknown) else self.failed).append(attempt)


async def _worker(pool: asyncpg.Pool, run: Run, stop: asyncio.Event, index: int) -> None:
    for n in range(_MAX_UNITS_PER_WORKER):
        if stop.is_set():
            return
        attempt = Attempt(f"f-{index}-{n}-{time.monotonic_ns()}@example.test", uuid.uuid4())
        try:
            await one_unit(pool, attempt)
        except IdentityStoreError as exc:
            run.fail(attempt, exc)
            await asyncio.sleep(0.05)  # no primary yet: do not spin
        except Exception as exc:  # the defect this test exists to catch
            run.leaks.append(f"{type(exc).__module__}.{type(exc).__name__}")
            await asyncio.sleep(0.05)
        else:
            run.acknowledged.append((time.monotonic(), attempt))


async def _reader(pool: asyncpg.Pool, run: Run, stop: asyncio.Event) -> None:
    """Follow the stream through every failover; after ``stop``, drain it."""
    cursor: str | None = None
    quiet = 0
    while quiet < 3:
        try:
            async with PostgresUnitOfWork(pool) as uow:
                page = await uow.events.read_stream(after=cursor, limit=500)
        except IdentityStoreError:
            await asyncio.sleep(0.2)
            continue
        run.streamed.extend(e.event_key for e in page.events if e.type == _EVENT_TYPE)
        cursor = page.next_cursor
        if not page.events:
            quiet = quiet + 1 if stop.is_set() else 0
            await asyncio.sleep(0.2)


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {_WAIT_S:.0f} s")
        await asyncio.sleep(0.05)


def _longest_gap(times: list[float], start: float, end: float) -> float:
    window = [start, *sorted(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(window))


@pytest.fixture(scope="module")
def app_url(cluster: ha_cluster.State, roles: Roles) -> str:
    """The application role's multi-host URL on the cluster, deployed through it."""
    admin = cluster.url()
    set_up_database(admin, roles)
    return with_credentials(admin, roles.app, roles.app_password)


async def test_a_read_pool_reads_from_a_standby_and_reports_its_lag(app_url: str) -> None:
    settings = Settings(database_url=app_url, connect_timeout=3)
    pool = await create_pool(settings)
    read_pool = await create_pool(settings.for_reads())
    try:
        lag = await replica_lag(read_pool)
        assert lag is not None, "prefer-standby reached the primary"
        assert lag >= 0
        assert await check_health(read_pool)
        async with PostgresUnitOfWork(pool) as uow:
            user = await uow.users.register(
                NewUser(email=f"replica-{uuid.uuid4().hex[:8]}@example.test", display_name="R")
            )
        deadline = time.monotonic() + _WAIT_S
        seen = None
        while seen is None and time.monotonic() < deadline:
            async with PostgresReadUnitOfWork(read_pool) as ro:
                seen = await ro.users.get(user.id)
            await asyncio.sleep(0.05)
        assert seen == user
    finally:
        await read_pool.close()
        await pool.close()


async def test_failovers_under_load_lose_nothing_and_answer_only_domain_errors(
    cluster: ha_cluster.State, app_url: str
) -> None:
    pool = await create_pool(
        Settings(
            database_url=app_url,
            pool_min_size=_WORKERS,
            pool_max_size=_WORKERS + 2,
            command_timeout=10,
            connect_timeout=3,
        )
    )
    run = Run()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_worker(pool, run, stop, i)) for i in range(_WORKERS)]
    reader = asyncio.create_task(_reader(pool, run, stop))
    phases: list[tuple[str, float, float, str]] = []

    async def phase(name: str, action: Callable[[], str], *, whole: bool = True) -> None:
        # Each fault starts from a whole cluster: with synchronous replication, a primary
        # lost before its successor has a synchronous standby leaves no node that may be
        # promoted without losing acknowledged commits, and Patroni (rightly) waits.
        if whole:
            await asyncio.to_thread(
                ha_cluster._wait, "a whole cluster", lambda: ha_cluster.healthy(cluster)
            )
        before = len(run.acknowledged)
        started = time.monotonic()
        detail = await asyncio.to_thread(action)
        await _until(
            lambda: len(run.acknowledged) >= before + _UNITS_PER_PHASE,
            f"units acknowledged again after the {name}",
        )
        phases.append((name, started, time.monotonic(), detail))

    def kill_and_wait() -> str:
        killed = ha_cluster.kill_primary(cluster)
        new = ha_cluster._wait(
            "a new leader",
            lambda: (lambda name: name if name not in (None, killed) else None)(
                ha_cluster.leader(cluster)
            ),
        )
        return f"{killed} killed, {new} promoted"

    try:
        await _until(lambda: len(run.acknowledged) >= _UNITS_PER_PHASE, "warm-up")
        await phase(
            "planned switchover", lambda: "{} -> {}".format(*ha_cluster.switchover(cluster))
        )
        await phase("unplanned failover", kill_and_wait)
        await phase(
            "old primary rejoins", lambda: ", ".join(ha_cluster.rejoin(cluster)), whole=False
        )
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=_WAIT_S)
        await asyncio.wait_for(reader, timeout=_WAIT_S)
        await pool.close()

    assert run.leaks == [], f"non-domain exceptions: {run.leaks[:5]}"
    conn = await asyncpg.connect(ha_cluster.primary_url(cluster))
    try:
        units = [a for _, a in run.acknowledged]
        missing = [a for a in units if await stored(conn, a) != (1, 1, 1)]
        left_behind = [a for a in run.failed if await stored(conn, a) != (0, 0, 0)]
        unknown = [await stored(conn, a) for a in run.unknown]
        rows = await conn.fetch("SELECT event_key FROM events WHERE type = $1", _EVENT_TYPE)
    finally:
        await conn.close()
    committed_keys = {row["event_key"] for row in rows}

    times = [t for t, _ in run.acknowledged]
    for name, started, ended, detail in phases:
        FIGURES[f"failover: {name} ({detail}): longest write gap, ms"] = round(
            1000 * _longest_gap(times, started, ended)
        )
    FIGURES["failover: units acknowledged"] = len(units)
    FIGURES["failover: acknowledged units lost"] = len(missing)
    FIGURES["failover: non-domain exceptions"] = len(run.leaks)
    FIGURES["failover: commit outcome unknown"] = len(run.unknown)
    FIGURES["failover: commit outcome unknown, had committed"] = unknown.count((1, 1, 1))
    for name, count in run.failures.items():
        FIGURES[f"failover: failures as {name}"] = count
    FIGURES["failover: events streamed"] = len(run.streamed)

    assert missing == [], f"{len(missing)} acknowledged units are missing or partial"
    assert left_behind == []
    assert all(outcome in ((1, 1, 1), (0, 0, 0)) for outcome in unknown)
    assert len(run.streamed) == len(set(run.streamed)), "an event was delivered twice"
    assert set(run.streamed) == committed_keys, "the stream missed committed events"
