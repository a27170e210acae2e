"""Benchmark of the event consumers (identity_store.infrastructure.consumer).

Run: ``python -m bench.bench_consumers`` (the embedded server, or ``DATABASE_URL``'s;
``--quick`` for a smaller run). On a scratch database built from ``schema.sql`` it
prints:

- **throughput** of one consumer with batches of 1,000: a no-op handler, and a
  handler with database effects (one row per event, appended with one COPY per batch
  in the consumer's transaction);
- **delivery latency** from sending COMMIT to the handler, p50 / p99, with 16 writers appending
  at full speed (in a process of their own), with notifications (LISTEN) and with
  polling only (every second);
- an unrelated transaction open for 30 s while an event is appended: the lag reported,
  and the delay from its end to the handler.

Wall-clock times on a shared machine: compare the lines of one run; nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._database import admin_url, create_database, drop_database, with_database
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
ROOT = Path(__file__).resolve().parent.parent


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

    timings: dict[str, float] = {}
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


async def write(url: str, topic: str, seconds: float) -> None:
    """The writers of the latency run, in a process of their own: print each event's
    key and the wall-clock time its COMMIT was sent, as JSON."""
    pool = await create_pool(Settings(database_url=url, pool_max_size=WRITERS))
    committed: dict[str, float] = {}
    deadline = time.monotonic() + seconds

    async def writer() -> None:
        while time.monotonic() < deadline:
            event = NewEvent(type=f"{topic}.created", payload={"w": 1})
            async with PostgresUnitOfWork(pool) as uow:
                await uow.events.append(event)
                # Just before COMMIT is sent: taken after it returns, a busy event loop
                # here made some "latencies" negative.
                committed[str(event.event_key)] = time.time()

    try:
        await asyncio.gather(*(writer() for _ in range(WRITERS)))
    finally:
        await pool.close()
    print(json.dumps(committed))


async def latency(pool: Any, url: str, seconds: float, *, listen: bool) -> None:
    topic = f"l{uuid.uuid4().hex[:8]}"
    name = f"bench-latency-{uuid.uuid4().hex[:6]}"
    async with PostgresUnitOfWork(pool) as uow:
        await uow.subscriptions.create(name, types=[f"{topic}.created"], start="now")
    arrived: dict[str, float] = {}

    async def note(batch: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        now = time.time()
        for event in batch:
            arrived[str(event.event_key)] = now

    stop = asyncio.Event()
    worker = asyncio.create_task(
        consume(pool, name, note, batch_size=1000, listen=listen, poll_interval=1.0, stop=stop)
    )
    writers = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.bench_consumers",
        "--write",
        url,
        topic,
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, _ = await writers.communicate()
    committed: dict[str, float] = json.loads(out)
    for _ in range(100):  # at most 10 s for the last events
        if len(arrived) >= len(committed):
            break
        await asyncio.sleep(0.1)
    stop.set()
    await worker
    delays = sorted(arrived[key] - committed[key] for key in committed if key in arrived)
    quantiles = statistics.quantiles(delays, n=100)
    print(
        f"  {'notifications' if listen else 'polling only (1 s)':<20} {len(committed):>6} events"
        f" ({len(committed) / seconds:,.0f}/s), delivered {len(delays)}: "
        f"p50 {quantiles[49] * 1e3:7.1f} ms, p99 {quantiles[98] * 1e3:7.1f} ms"
    )


async def held_back(pool: Any, seconds: float) -> None:
    """An unrelated transaction holds an id for ``seconds`` while an event is appended:
    the lag it reports, and how long after its end the event arrives."""
    topic = f"h{uuid.uuid4().hex[:8]}"
    name = f"bench-held-{uuid.uuid4().hex[:6]}"
    async with PostgresUnitOfWork(pool) as uow:
        await uow.subscriptions.create(name, types=[f"{topic}.created"], start="now")
    arrived = asyncio.Event()
    arrived_at: list[float] = []

    async def note(batch: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        arrived_at.append(time.perf_counter())
        arrived.set()

    stop = asyncio.Event()
    worker = asyncio.create_task(consume(pool, name, note, poll_interval=1.0, stop=stop))
    async with pool.acquire() as holder:
        transaction = holder.transaction()
        await transaction.start()
        await holder.fetchval("SELECT pg_current_xact_id()")
        async with PostgresUnitOfWork(pool) as uow:
            await uow.events.append(NewEvent(type=f"{topic}.created"))
        await asyncio.sleep(seconds)
        async with PostgresUnitOfWork(pool) as uow:
            lag = await uow.subscriptions.lag()
        ended = time.perf_counter()
        await transaction.rollback()
    await asyncio.wait_for(arrived.wait(), 30)
    stop.set()
    await worker
    mine = next(entry for entry in lag.subscriptions if entry.name == name)
    print(
        f"  after {seconds:.0f} s: lag {mine.events_behind} event(s), {mine.seconds_behind:.1f} s;"
        f" oldest transaction {lag.oldest_transaction_seconds:.1f} s; delivered"
        f" {(arrived_at[0] - ended) * 1e3:.0f} ms after it ended (poll interval 1 s)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events, shorter runs")
    parser.add_argument(
        "--write", nargs=3, metavar=("URL", "TOPIC", "SECONDS"), help=argparse.SUPPRESS
    )
    options = parser.parse_args()
    if options.write:
        url, topic, seconds = options.write
        await write(url, topic, float(seconds))
        return
    admin = admin_url()
    database = await create_database(admin, "consumer_bench")
    try:
        url = with_database(admin, database)
        pool = await create_pool(Settings(database_url=url, pool_max_size=4))
        try:
            events = 20_000 if options.quick else 100_000
            print(f"one consumer, batches of 1,000, {events} events:")
            await throughput(pool, events)
            seconds = 3.0 if options.quick else 10.0
            print(f"delivery latency from COMMIT to handler, {WRITERS} writers, {seconds} s:")
            await latency(pool, url, seconds, listen=True)
            await latency(pool, url, seconds, listen=False)
            hold = 3.0 if options.quick else 30.0
            print(f"an unrelated transaction holding an id open for {hold:.0f} s:")
            await held_back(pool, hold)
        finally:
            await pool.close()
    finally:
        await drop_database(admin, database)


if __name__ == "__main__":
    asyncio.run(main())
