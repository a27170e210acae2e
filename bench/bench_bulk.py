"""Bulk append end to end: ``append_many`` with the caller building its ``NewEvent``s,
against raw ``COPY`` and ``executemany`` of tuples built beforehand.

Run: ``python -m bench.bench_bulk [N ...]`` (default 100000 1000000; the embedded
server, or the one in ``DATABASE_URL``). On a scratch database, for each N, the
contenders take turns (the first one rotating per round), each committing its events
and the table emptied after it:

- ``library``: ``uow.events.append_many(NewEvent(...) for i in ...)``, the events built
  from plain values inside the timing, in one unit of work (calls of at most
  ``MAX_APPEND_MANY`` from one generator);
- ``hand``: hand-written ``copy_records_to_table`` of tuples made from ``NewEvent``s
  built inside the timing from the same plain values: the same work without the
  library, so ``hand / library`` is what the library itself costs, and ``copy / hand``
  the most any code that takes validated ``NewEvent``s can reach here;
- ``copy``: ``copy_records_to_table`` of tuples built before the timing;
- ``executemany``: ``executemany`` of the INSERT with the same tuples.

Prints the median wall time of each (and the client process's CPU time: on a busy
machine the wall time stretches every CPU second, the client's and the server's), the
ratios copy / library (goal ≥ 0.85) and executemany / library (goal ≥ 2), and the
growth of this process's resident memory while each ran. Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from uuid import UUID, uuid4

from bench._database import (
    PAYLOAD,
    admin_url,
    connect,
    create_database,
    drop_database,
    with_database,
)
from identity_store import NewEvent, PostgresUnitOfWork, Settings, create_pool
from identity_store.domain.arguments import MAX_APPEND_MANY

COLUMNS = ["event_key", "user_id", "type", "payload", "occurred_at", "recorded_at"]
INSERT = (
    "INSERT INTO events (event_key, user_id, type, payload, occurred_at, recorded_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
)
TYPE = "user.bulk_tested"


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def measured(run: Callable[[], Awaitable[Any]]) -> tuple[float, float, int]:
    """Wall time of ``run``, this process's CPU time, and the most its memory grew."""
    start_rss = peak = rss_bytes()
    done = False

    async def sample() -> None:
        nonlocal peak
        while not done:
            peak = max(peak, rss_bytes())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    start, cpu = time.perf_counter(), time.process_time()
    await run()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    done = True
    await sampler
    return elapsed, cpu, max(peak, rss_bytes()) - start_rss


async def bench(url: str, n: int, rounds: int) -> None:
    conn = await connect(url)
    pool = await create_pool(Settings(database_url=url, pool_max_size=2, command_timeout=3600))
    try:
        users: list[UUID] = [
            row["id"]
            for row in await conn.fetch(
                "INSERT INTO users (email, display_name, created_at, updated_at)"
                " SELECT 'bulk' || $1 || '.' || i || '@example.com', 'Bulk', now(), now()"
                " FROM generate_series(1, 100) AS i RETURNING id",
                str(n),
            )
        ]

        def tuples() -> list[tuple[Any, ...]]:
            now = datetime.now(UTC)
            return [(uuid4(), users[i % 100], TYPE, dict(PAYLOAD), now, now) for i in range(n)]

        async def library() -> None:
            source = (
                NewEvent(type=TYPE, user_id=users[i % 100], payload=dict(PAYLOAD)) for i in range(n)
            )
            async with PostgresUnitOfWork(pool) as uow:
                while await uow.events.append_many(islice(source, MAX_APPEND_MANY)):
                    pass

        async def hand() -> None:
            now = datetime.now(UTC)
            built = (
                NewEvent(type=TYPE, user_id=users[i % 100], payload=dict(PAYLOAD)) for i in range(n)
            )
            rows = ((e.event_key, e.user_id, e.type, e.payload, now, now) for e in built)
            async with conn.transaction():
                await conn.copy_records_to_table("events", records=rows, columns=COLUMNS)

        async def copy(records: list[tuple[Any, ...]]) -> None:
            async with conn.transaction():
                await conn.copy_records_to_table("events", records=records, columns=COLUMNS)

        async def executemany(records: list[tuple[Any, ...]]) -> None:
            async with conn.transaction():
                await conn.executemany(INSERT, records)

        names = ["library", "hand", "copy", "executemany"]
        times: dict[str, list[float]] = {name: [] for name in names}
        cpus: dict[str, list[float]] = {name: [] for name in names}
        memory: dict[str, int] = dict.fromkeys(names, 0)
        for round_ in range(rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                if name in ("library", "hand"):
                    elapsed, cpu, grown = await measured(library if name == "library" else hand)
                else:
                    records = tuples()
                    run = copy if name == "copy" else executemany
                    elapsed, cpu, grown = await measured(lambda r=records, f=run: f(r))  # type: ignore[misc]
                    del records
                written = await conn.fetchval("SELECT count(*) FROM events")
                assert written == n, (name, written)
                await conn.execute("TRUNCATE events, event_type_counts")
                times[name].append(elapsed)
                cpus[name].append(cpu)
                memory[name] = max(memory[name], grown)
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"\n{n:,} events, {rounds} round(s), median wall time:")
        for name in names:
            print(
                f"  {name:12} {median[name]:8.2f} s  {n / median[name]:10,.0f} events/s"
                f"  client CPU {statistics.median(cpus[name]):6.2f} s"
                f"  memory +{memory[name] / 2**20:6.0f} MiB"
            )
        print(f"  copy / library        {median['copy'] / median['library']:.2f}  (goal ≥ 0.85)")
        print(f"  copy / hand           {median['copy'] / median['hand']:.2f}  (NewEvents)")
        print(f"  hand / library        {median['hand'] / median['library']:.2f}  (the library's)")
        print(
            f"  executemany / library {median['executemany'] / median['library']:.2f}  (goal ≥ 2)"
        )
    finally:
        await pool.close()
        await conn.close()


async def main(sizes: list[int]) -> None:
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    admin = admin_url()
    name = await create_database(admin, "bench_bulk")
    try:
        for n in sizes:
            await bench(with_database(admin, name), n, rounds=3 if n <= 100_000 else 1)
    finally:
        await drop_database(admin, name)


if __name__ == "__main__":
    asyncio.run(main([int(arg) for arg in sys.argv[1:]] or [100_000, 1_000_000]))
