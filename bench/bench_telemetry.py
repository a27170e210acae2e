"""What telemetry costs: ``python bench/bench_telemetry.py [--before REV]``.

Times three calls, this process's CPU time per call (``time.process_time``: the
server's work and other processes do not count, so the ratios are the client's own
cost and stricter than wall time), best of several rounds, the variants taking turns:

- ``users.get`` on a repository over the pool;
- ``users.get`` inside a unit of work (BEGIN, the query, COMMIT);
- ``events.append`` inside a unit of work.

Variants, in one process: telemetry **off** (no provider: ``pool.telemetry`` is None),
**on** with the SDK and an exporter that drops everything, and **on** with the SDK's
in-memory span exporter and metric reader. With ``--before REV`` (default: the commit
before telemetry), the same calls also run on that revision's ``src/`` in a child
process, and so does today's code with telemetry off in another child process: the
"before" and "off (child)" columns compare like with like. Ratios are printed; nothing
is asserted. Uses the embedded server, or ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 10
CALLS = 200
BEFORE = "a48d4f6"  # the last commit without telemetry


async def calls(pool: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    """The timed calls on ``pool``, with a user to read."""
    from identity_store import NewEvent, NewUser, PostgresUnitOfWork, PostgresUserRepository

    users = PostgresUserRepository(pool)
    user = await users.register(
        NewUser(email=f"bench-{uuid.uuid4().hex[:8]}@example.com", display_name="Bench")
    )

    async def get() -> Any:
        return await users.get(user.id)

    async def uow_get() -> Any:
        async with PostgresUnitOfWork(pool) as uow:
            return await uow.users.get(user.id)

    async def uow_append() -> Any:
        async with PostgresUnitOfWork(pool) as uow:
            return await uow.events.append(
                NewEvent(type="bench.telemetry", user_id=user.id, payload={"n": 1})
            )

    return {"users.get": get, "uow + users.get": uow_get, "uow + events.append": uow_append}


async def without_database() -> Callable[[], Awaitable[Any]]:
    """A unit of work and ``users.get`` on a pool and connection that answer at once:
    the library's own Python work, with nothing the server or the network adds."""
    from identity_store import PostgresUnitOfWork

    class Transaction:
        async def start(self) -> None:
            pass

        async def commit(self) -> None:
            pass

    class Connection:
        def transaction(self, *, isolation: str) -> Transaction:
            return Transaction()

        async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> None:  # noqa: ASYNC109
            return None

    class Pool:
        async def acquire(self, *, timeout: float | None = None) -> Connection:  # noqa: ASYNC109
            return Connection()

        async def release(self, connection: Connection) -> None:
            pass

    pool: Any = Pool()
    user_id = uuid.UUID(int=1)

    async def uow_get() -> Any:
        async with PostgresUnitOfWork(pool) as uow:
            return await uow.users.get(user_id)

    return uow_get


async def one_round(variants: dict[str, Callable[[], Awaitable[Any]]]) -> dict[str, float]:
    """Per-call CPU time (``<call>``) and wall time (``<call> [wall]``) of each call."""
    times = {}
    for label, fn in variants.items():
        await fn()  # warm
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(CALLS):
            await fn()
        times[label] = (time.process_time() - cpu) / CALLS
        times[f"{label} [wall]"] = (time.perf_counter() - wall) / CALLS
    return times


async def open_pool(url: str) -> Any:
    from identity_store import Settings, create_pool

    return await create_pool(Settings(database_url=url, pool_min_size=2, pool_max_size=2))


async def worker(url: str) -> None:
    """Child process: time the calls on this ``identity_store`` (no provider set), one
    round per line read from stdin, answering with one JSON line."""
    import identity_store

    del url
    pool = await open_pool(os.environ["BENCH_DATABASE_URL"])
    print(json.dumps({"from": identity_store.__file__}), flush=True)
    try:
        variants = await calls(pool)
        variants["uow + users.get, no database"] = await without_database()
        for _ in sys.stdin:
            print(json.dumps(await one_round(variants)), flush=True)
    finally:
        await pool.close()


def before_tree(rev: str, into: Path) -> Path:
    """Extract ``src`` and ``generated`` of ``rev`` into ``into``; return its ``src``."""
    archive = subprocess.run(  # noqa: S603 - our own git, our own revision
        ["git", "archive", rev, "src", "generated"],  # noqa: S607
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="tar")
    return into / "src"


async def measure(url: str, before: str | None) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from identity_store import instrument_pool

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    off, noop, memory = [await open_pool(url) for _ in range(3)]
    dropping = TracerProvider()
    dropping.add_span_processor(SimpleSpanProcessor(Dropping()))
    instrument_pool(noop, tracer_provider=dropping, meter_provider=MeterProvider(), lag_interval=0)
    spans = InMemorySpanExporter()
    kept = TracerProvider()
    kept.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    instrument_pool(
        memory,
        tracer_provider=kept,
        meter_provider=MeterProvider(metric_readers=[reader]),
        lag_interval=0,
    )
    assert off.telemetry is None and noop.telemetry and memory.telemetry
    pools = {"off": off, "on, dropped": noop, "on, in memory": memory}
    variants = {name: await calls(pool) for name, pool in pools.items()}
    children: dict[str, subprocess.Popen[str]] = {}
    if before is not None:
        tree = Path(tempfile.mkdtemp(prefix="bench-telemetry-"))
        for name, src in (("before", before_tree(before, tree)), ("off (child)", ROOT / "src")):
            children[name] = child = subprocess.Popen(  # noqa: S603, ASYNC220 - set-up
                [sys.executable, __file__, "--worker", "-"],
                env={**os.environ, "PYTHONPATH": str(src), "BENCH_DATABASE_URL": url},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert child.stdout is not None
            origin = json.loads(child.stdout.readline())["from"]
            assert origin.startswith(str(src)), origin
    best: dict[str, dict[str, float]] = {}
    try:
        for turn in range(ROUNDS):
            # Each round starts with another variant, so that none always runs first.
            names = list(variants)
            names = names[turn % len(names) :] + names[: turn % len(names)]
            rounds = {name: await one_round(variants[name]) for name in names}
            for name, child in sorted(children.items(), reverse=turn % 2 == 1):
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write("\n")
                child.stdin.flush()
                rounds[name] = json.loads(child.stdout.readline())
            for name, times in rounds.items():
                for label, t in times.items():
                    mine = best.setdefault(name, {})
                    mine[label] = min(mine.get(label, float("inf")), t)
            spans.clear()
    finally:
        for child in children.values():
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=60)
        if before is not None:
            shutil.rmtree(tree, ignore_errors=True)
        for pool in pools.values():
            await pool.close()
    print(
        f"telemetry cost per call, best of {ROUNDS} rounds of {CALLS}, taking turns;"
        " client CPU time, and [wall] time (the server's work included)"
    )
    for base, columns in (
        ("before", ("before", "off (child)")),
        ("off", ("off", "on, dropped", "on, in memory")),
    ):
        if base not in best:
            continue
        print(f"  {'call':<36}" + "".join(f"{c:>18}" for c in columns) + f"   (ratio to {base})")
        for label in best[base]:
            cells = "".join(
                f"{best[c][label] * 1e6:9.1f} us {best[c][label] / best[base][label]:5.3f}"
                for c in columns
            )
            print(f"  {label:<36}{cells}")
    await per_statement(noop)


async def per_statement(pool: Any) -> None:
    """The Python side alone, with no database: a generated function on an executor
    that answers at once, plain and through the telemetry of each kind."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from identity_store._generated import users
    from identity_store.infrastructure._telemetry import Telemetry, traced

    class Answers:
        async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> None:  # noqa: ASYNC109
            return None

    class Dropping(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    spans = TracerProvider()
    spans.add_span_processor(SimpleSpanProcessor(Dropping()))
    kinds = {
        "no telemetry": None,
        "spans only": (spans.get_tracer("bench"), None),
        "metrics only": (None, MeterProvider().get_meter("bench")),
        "spans and metrics": (spans.get_tracer("bench"), MeterProvider().get_meter("bench")),
        "spans not sampled": (TracerProvider(sampler=ALWAYS_OFF).get_tracer("bench"), None),
    }
    print("one statement without a database (GetUserById on an executor answering at once):")
    for label, kind in kinds.items():
        executor: Any = Answers()
        if kind is not None:
            pool.telemetry = Telemetry(
                pool, tracer=kind[0], meter=kind[1], capture_statements=False, lag_interval=0
            )
            executor = traced(pool)
            executor._db = Answers()
        best = float("inf")
        for _ in range(ROUNDS):
            start = time.process_time()
            for _ in range(5000):
                await users.get_user_by_id(executor, id=uuid.UUID(int=0))
            best = min(best, (time.process_time() - start) / 5000)
        print(f"  {label:<20} {best * 1e6:7.1f} us CPU")


async def main(before: str | None) -> None:
    # Imported here: a --worker child runs this file against another tree's package.
    sys.path.insert(0, str(ROOT))
    from bench._database import admin_url, migrated_database

    async with migrated_database(admin_url(), "telemetry_bench") as url:
        await measure(url, before)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help="revision to compare ('': none)")
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker))
    else:
        asyncio.run(main(args.before or None))
