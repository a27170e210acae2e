"""Consumers under crashes, on a crash-safe server (issue 17's crash figures).

Four worker processes (``tests/reliability/consumer_worker.py``) consume one
subscription while 16 writers append. Eight times, at seeded random moments, one worker
is killed with SIGKILL and started again; the server is stopped and started twice
(``fast``, then ``immediate``). When the writers have stopped and the subscription has
caught up, with plain SQL and the workers' effect files:

- every committed event was handled (one ``crash_handled`` row names it);
- database effects exactly once: no event is named by two ``crash_handled`` rows;
- external effects at least once: every committed event has a line in an effect file;
- duplicates only for batches in flight at a failure: a line whose batch did not commit
  (the committed row names another instance or batch) is the last batch of a killed
  worker, or a batch written around a server restart.

Bounded: 8 kills, 2 restarts, each wait at most ``_WAIT_S``; every writer stops after
``_MAX_APPENDS_PER_WRITER``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from identity_store import (
    IdentityStoreError,
    NewEvent,
    PostgresUnitOfWork,
    Settings,
    create_pool,
)
from tests.conftest import Deployment
from tests.durable_server import DurableServer, StopMode
from tests.reliability.conftest import FIGURES
from tests.reliability.consumer_worker import HANDLED_TYPE

pytestmark = pytest.mark.reliability

_WORKERS = 4
_WRITERS = 16
_KILLS = 8
_RESTART_AFTER_KILL: dict[int, StopMode] = {3: "fast", 6: "immediate"}
_SEED = 17
_WAIT_S = 60.0
_MAX_APPENDS_PER_WRITER = 2_000
_WRITTEN_TYPE = "reliability.crash_written"
_SUBSCRIPTION = "crash-figures"
_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Worker:
    instance: str
    process: subprocess.Popen[str]


@dataclass
class Run:
    effects: Path
    url: str
    started: int = 0
    killed: list[str] = field(default_factory=list)
    exited: list[tuple[str, int]] = field(default_factory=list)
    restarts: list[tuple[float, float]] = field(default_factory=list)

    def stderr_of(self, instance: str) -> Path:
        return self.effects.parent / f"{instance}.stderr"

    def last_words(self, instance: str) -> str:
        lines = self.stderr_of(instance).read_text(errors="replace").strip().splitlines()
        return lines[-1][:200] if lines else "(nothing on stderr)"

    def spawn(self, slot: int) -> Worker:
        self.started += 1
        instance = f"w{slot}.{self.started}"
        env = {
            **os.environ,
            "CRASH_DATABASE_URL": self.url,
            "CRASH_SUBSCRIPTION": _SUBSCRIPTION,
            "CRASH_INSTANCE": instance,
            "CRASH_EFFECTS": str(self.effects),
            "PYTHONPATH": os.pathsep.join([str(_ROOT), str(_ROOT / "src")]),
        }
        # Each worker's stderr is kept, so a worker that dies on its own says why.
        with self.stderr_of(instance).open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.reliability.consumer_worker"],
                cwd=_ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready", f"worker {instance} did not start"
        return Worker(instance, process)


async def writer(pool: asyncpg.Pool, acknowledged: list[uuid.UUID], stop: asyncio.Event) -> None:
    for _ in range(_MAX_APPENDS_PER_WRITER):
        if stop.is_set():
            return
        key = uuid.uuid4()
        try:
            async with PostgresUnitOfWork(pool) as uow:
                await uow.events.append(NewEvent(type=_WRITTEN_TYPE, event_key=key))
        except IdentityStoreError:
            await asyncio.sleep(0.02)  # the server is away: do not spin
        else:
            acknowledged.append(key)


async def until_true(check: object, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + _WAIT_S
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {_WAIT_S:.0f} s")
        await asyncio.sleep(0.2)


async def test_killed_workers_and_restarts_handle_every_event_once_in_the_database(
    durable: Deployment, durable_server: DurableServer, tmp_path: Path
) -> None:
    rng = random.Random(_SEED)
    pool = await create_pool(
        Settings(
            database_url=durable.app_url,
            pool_min_size=_WRITERS,
            pool_max_size=_WRITERS,
            command_timeout=10,
            connect_timeout=5,
        )
    )
    async with PostgresUnitOfWork(pool) as uow:
        await uow.subscriptions.create(_SUBSCRIPTION, types=[_WRITTEN_TYPE], start="now")
    run = Run(effects=tmp_path / "effects.txt", url=durable.app_url)
    workers = [run.spawn(slot) for slot in range(_WORKERS)]
    acknowledged: list[uuid.UUID] = []
    stop = asyncio.Event()
    started = time.monotonic()
    writers = [asyncio.create_task(writer(pool, acknowledged, stop)) for _ in range(_WRITERS)]

    async def caught_up() -> bool:
        conn = await asyncpg.connect(durable.admin_url)
        try:
            return bool(
                await conn.fetchval(
                    "SELECT (SELECT count(*) FROM events WHERE type = $1)"
                    " = (SELECT count(DISTINCT payload->>'source') FROM events WHERE type = $2)",
                    _WRITTEN_TYPE,
                    HANDLED_TYPE,
                )
            )
        finally:
            await conn.close()

    try:
        for kill in range(1, _KILLS + 1):
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            slot = rng.randrange(_WORKERS)
            victim = workers[slot]
            victim.process.send_signal(signal.SIGKILL)
            victim.process.wait(timeout=_WAIT_S)
            run.killed.append(victim.instance)
            workers[slot] = await asyncio.to_thread(run.spawn, slot)
            for other in range(_WORKERS):
                code = workers[other].process.poll()
                if code is not None:  # died on its own: counted, and replaced
                    run.exited.append((workers[other].instance, code))
                    workers[other] = await asyncio.to_thread(run.spawn, other)
            mode = _RESTART_AFTER_KILL.get(kill)
            if mode is not None:
                began = time.time()
                await asyncio.to_thread(durable_server.stop, mode)
                await asyncio.to_thread(durable_server.start)
                run.restarts.append((began, time.time()))
                FIGURES[f"consumer crash test: server restarts ({mode} stop)"] += 1
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*writers), timeout=_WAIT_S)
        await until_true(caught_up, "the workers catching up")
    finally:
        stop.set()
        for worker in workers:
            if worker.process.poll() is None:
                assert worker.process.stdin is not None
                worker.process.stdin.close()
        for worker in workers:
            try:
                code = worker.process.wait(timeout=_WAIT_S)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                code = worker.process.wait()
            if code != 0:
                run.exited.append((worker.instance, code))
        await pool.close()
    elapsed = time.monotonic() - started

    admin = await asyncpg.connect(durable.admin_url)
    try:
        written = {
            row["id"]: row["event_key"]
            for row in await admin.fetch(
                "SELECT id, event_key FROM events WHERE type = $1", _WRITTEN_TYPE
            )
        }
        handled = await admin.fetch(
            "SELECT (payload->>'source')::bigint AS source, payload->>'instance' AS instance,"
            " (payload->>'batch')::int AS batch FROM events WHERE type = $1",
            HANDLED_TYPE,
        )
        duplicated_in_database = await admin.fetchval(
            "SELECT count(*) FROM (SELECT payload->>'source' FROM events WHERE type = $1"
            " GROUP BY 1 HAVING count(*) > 1) AS twice",
            HANDLED_TYPE,
        )
    finally:
        await admin.close()

    committed = {row["source"]: (row["instance"], row["batch"]) for row in handled}
    lines: dict[int, list[tuple[str, int]]] = defaultdict(list)
    last_batch: dict[str, int] = {}
    for line in run.effects.read_text().splitlines():
        instance, batch, event_id = line.split()
        lines[int(event_id)].append((instance, int(batch)))
        last_batch[instance] = max(last_batch.get(instance, 0), int(batch))
    uncommitted = {
        delivery
        for event_id, deliveries in lines.items()
        for delivery in deliveries
        if delivery != committed.get(event_id)
    }
    at_a_kill = {(i, b) for (i, b) in uncommitted if i in run.killed and b == last_batch[i]}
    duplicates = Counter(len(deliveries) - 1 for deliveries in lines.values())

    FIGURES["consumer crash test: events committed by writers"] += len(written)
    FIGURES["consumer crash test: events acknowledged to writers"] += len(acknowledged)
    FIGURES["consumer crash test: events handled (database, distinct)"] += len(committed)
    FIGURES["consumer crash test: database effects twice"] += duplicated_in_database
    FIGURES["consumer crash test: workers killed (SIGKILL)"] += len(run.killed)
    FIGURES["consumer crash test: workers exited on their own"] += len(run.exited)
    for instance, code in run.exited:  # seen once in CI, not reproduced: say why next time
        FIGURES[f"consumer crash test: {instance} exited {code}: {run.last_words(instance)}"] += 1
    FIGURES["consumer crash test: external effects (lines)"] += sum(map(len, lines.values()))
    FIGURES["consumer crash test: external duplicates (extra lines)"] += sum(
        n * count for n, count in duplicates.items()
    )
    FIGURES["consumer crash test: uncommitted batches, in flight at a kill"] += len(at_a_kill)
    FIGURES["consumer crash test: uncommitted batches, around a server restart"] += len(
        uncommitted - at_a_kill
    )
    FIGURES["consumer crash test: seconds"] += round(elapsed)

    assert set(acknowledged) <= set(written.values()), "an acknowledged append is missing"
    assert len(run.killed) == _KILLS
    assert duplicated_in_database == 0
    assert set(committed) == set(written), "a committed event was not handled (or one twice)"
    assert set(lines) >= set(written), "a handled event has no external effect"
    assert set(lines) <= set(written)
    # A delivery that did not commit happened in a batch cut off by a kill or by the
    # server going away: never otherwise (the handler does not raise).
    # The subscription's row lock lets one batch be in progress at a time: at most one
    # is cut off by each restart.
    unexplained = uncommitted - at_a_kill
    assert len(unexplained) <= len(run.restarts), sorted(unexplained)
