"""Benchmark of the event consumers (identity_store.infrastructure.consumer).

Run: ``python -m bench.bench_consumers`` (the embedded server, or ``DATABASE_URL``'s;
``--quick`` for a smaller run). On a scratch database built from ``schema.sql`` it
prints:

- **throughput** of one consumer with batches of 1,000: a no-op handler, and a
  handler with database effects (one row per event, appended with one COPY per batch
  in the consumer's transaction);
- **delivery latency** from COMMIT to handler, p50 / p99, with 16 writers appending
  at full speed, with notifications (LISTEN) and with polling only (every second).

Wall-clock times on a shared machine: compare the lines of one run; nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

from bench.run import admin_url, create_database, drop_database, with_database
from identity_store import (
    Event,
    NewEvent,
    PostgresUnitOfWork,
    Settings,
    consume,
    create_pool,
    run_once,
)

WRITERS = 16


async def throughput(pool: Any, events: int) -> None:
    topic = f"b{uuid.uuid4().hex[:8]}"
    async with PostgresUnitOfWork(pool) as uow:
        for start in range(0, events, 10_000):
            await uow.events.append_many(
                NewEvent(type=f"{topic}.created", payload={"n": n})
                for n in range(start, min(events, start + 10_000))
            )

    async def nothing(batch: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        return None

    async def one_row_each(batch: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        await uow.events.append_many(
            NewEvent(type=f"{topic}.handled", payload={"source": event.id}) for event in batch
        )

    timings = {}
    for label, handler in (("no-op handler", nothing), ("one row per event", one_row_each)):
        name = f"bench-{len(timings)}-{uuid.uuid4().hex[:6]}"
        async with PostgresUnitOfWork(pool) as uow:
            await uow.subscriptions.create(name, types=[f"{topic}.created"])
        handled = 0
        began = time.perf_counter()
        while handled < events:
            handled += (await run_once(pool, name, handler, batch_size=1000)).handled
        timings[label] = time.perf_counter() - began
        print(
            f"  {label:<20} {events:>7} events in {timings[label]:6.2f} s: "
            f"{events / timings[label]:>9,.0f} events/s"
        )
    extra = (timings["one row per event"] - timings["no-op handler"]) / events
    print(f"  database effects cost {extra * 1e6:.1f} us per event over the no-op handler")


async def latency(pool: Any, seconds: float, *, listen: bool) -> None:
    topic = f"l{uuid.uuid4().hex[:8]}"
    name = f"bench-latency-{uuid.uuid4().hex[:6]}"
    async with PostgresUnitOfWork(pool) as uow:
        await uow.subscriptions.create(name, types=[f"{topic}.created"], start="now")
    committed: dict[uuid.UUID, float] = {}
    arrived: dict[uuid.UUID, float] = {}
    expected: list[int] = []
    all_in = asyncio.Event()

    async def note(batch: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        now = time.perf_counter()
        for event in batch:
            arrived[event.event_key] = now
        if expected and len(arrived) >= expected[0]:
            all_in.set()

    stop = asyncio.Event()
    worker = asyncio.create_task(
        consume(pool, name, note, batch_size=1000, listen=listen, poll_interval=1.0, stop=stop)
    )
    await asyncio.sleep(0.5)
    deadline = time.perf_counter() + seconds

    async def writer() -> None:
        while time.perf_counter() < deadline:
            event = NewEvent(type=f"{topic}.created", payload={"w": 1})
            async with PostgresUnitOfWork(pool) as uow:
                await uow.events.append(event)
            committed[event.event_key] = time.perf_counter()

    await asyncio.gather(*(writer() for _ in range(WRITERS)))
    expected.append(len(committed))
    if len(arrived) >= len(committed):
        all_in.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_in.wait(), 10)
    stop.set()
    await worker
    delays = sorted(arrived[key] - committed[key] for key in committed if key in arrived)
    quantiles = statistics.quantiles(delays, n=100)
    print(
        f"  {'notifications' if listen else 'polling only (1 s)':<20} {len(committed):>6} events"
        f" ({len(committed) / seconds:,.0f}/s), delivered {len(delays)}: "
        f"p50 {quantiles[49] * 1e3:7.1f} ms, p99 {quantiles[98] * 1e3:7.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events, shorter runs")
    options = parser.parse_args()
    admin = admin_url()
    database = await create_database(admin, "consumer_bench")
    try:
        pool = await create_pool(
            Settings(database_url=with_database(admin, database), pool_max_size=WRITERS + 4)
        )
        try:
            events = 20_000 if options.quick else 100_000
            print(f"one consumer, batches of 1,000, {events} events:")
            await throughput(pool, events)
            seconds = 3.0 if options.quick else 10.0
            print(f"delivery latency from COMMIT to handler, {WRITERS} writers, {seconds} s:")
            await latency(pool, seconds, listen=True)
            await latency(pool, seconds, listen=False)
        finally:
            await pool.close()
    finally:
        await drop_database(admin, database)


if __name__ == "__main__":
    asyncio.run(main())
