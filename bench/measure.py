"""How ``make bench`` times the workloads: rounds taken in turns, the replayed
server answers, the export, and the contenders on their connections."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bench._compat import init_connection
from bench._database import (
    Data,
    Scale,
    connect,
    create_database,
    drop_database,
    insert_events,
    insert_users,
    sqla_engine,
    wait_for_stream_horizon,
    with_database,
)
from bench.contenders import (
    CONTENDERS,
    SQL_ALL_EVENTS,
    SQL_STREAM,
    Contender,
    repository_stream_page,
)
from bench.workloads import WORKLOADS, Inputs, Workload
from identity_store import (
    Event,
    PostgresEventRepository,
)

# ----------------------------------------------------------------------- measurement

SLICES = 20
"""Slices of a single-row round that the contenders take in turns."""


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
            if (
                workload.kind not in ("read", "write", "page")
                or workload.sync_off  # the same Python as its twin: nothing to replay
                or (wanted and workload.name not in wanted)
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
    """Time every contender on ``workload``, ``rounds`` times after a warm-up round.

    A single-row round is cut into slices that the contenders take in turns (the
    starting one rotating), so that each of them meets the machine's slow and fast
    seconds alike: timed whole, one after the other, rounds of the same contender
    differed by up to 20 % on this 2-CPU machine, more than the ratios to resolve.
    """
    names = [n for n in workload.contenders if n in contenders]
    n = workload.ops(scale)
    bulk = workload.kind == "bulk"
    if not bulk:
        n = n * 2 if concurrency > 1 else n
        n = max(n - n % concurrency, concurrency)
    series = {name: Series(workload.name, concurrency, name, ops=n) for name in names}
    warm_up = max(1, n // 20) if bulk else max(concurrency, n // 4)
    for index in range(rounds + 1):  # round 0 warms up and is not recorded
        size = n if index else warm_up
        # Bulk inputs are made just before their run (100,000 rows each), the others
        # for the whole round, before any of it runs.
        inputs: dict[str, Inputs] = {}
        for name in [] if bulk else names:
            inputs[name] = await workload.inputs(data, admin_conn, name, size, concurrency)
        # Slices of at least 2 calls, 10 per worker when there are several (a slice
        # ends when its slowest worker does); bulk: one slice.
        per_worker = size // concurrency // (10 if concurrency > 1 else 2)
        slices = 1 if bulk else max(1, min(SLICES, per_worker))
        spent = {name: [0.0, 0.0] for name in names}  # wall and CPU seconds
        gc.collect()
        for part in range(slices):
            turn = index + part
            for name in names[turn % len(names) :] + names[: turn % len(names)]:
                if bulk:
                    inputs[name] = await workload.inputs(data, admin_conn, name, size, concurrency)
                    gc.collect()
                share = [
                    items[part * len(items) // slices : (part + 1) * len(items) // slices]
                    for items in inputs[name]
                ]
                elapsed, cpu, latencies = await timed(workload.call, contenders[name], share)
                spent[name][0] += elapsed
                spent[name][1] += cpu
                if index:
                    series[name].latencies_ns.extend(latencies)
                if bulk:
                    del inputs[name], share
        if not index:
            continue
        rates: dict[str, float] = {}
        for name in names:
            done = size if bulk else sum(len(i) for i in inputs[name])
            elapsed, cpu = spent[name]
            rates[name] = done / elapsed
            series[name].round_cpu_us.append(cpu * 1e6 / (1 if bulk else done))
            series[name].round_rates.append(rates[name])
        if "baseline" in rates:
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
