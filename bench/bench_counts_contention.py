"""Concurrent appends of one event type: what keeping the counts costs writers.

Run: ``python -m bench.bench_counts_contention [WRITERS]`` (default 16; the embedded
server, or the one in ``DATABASE_URL``). WRITERS connections each run transactions of
``PER_TRANSACTION`` appends of the same type, all at once, with three statements:

- ``log only``: the append as it was before the counts (``INSERT ... ON CONFLICT DO
  NOTHING RETURNING *``);
- ``one counter row``: the library's append with every writer on shard 0, so each
  waits for the one row until the writer ahead of it commits;
- ``sharded counts``: the library's append (``generated/events.py``: shard = backend
  pid modulo 32).

Prints appends per second of each (median of ``ROUNDS`` rounds, order rotating) and
its ratio to ``log only``. Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from uuid import uuid4

from bench._database import admin_url, connect, create_database, drop_database, with_database
from identity_store._generated import events as generated

PER_TRANSACTION = 5
TRANSACTIONS = 40
ROUNDS = 3
SHARDED = generated.APPEND_EVENT
ONE_ROW = SHARDED.replace("pg_backend_pid() % 32", "0")
LOG_ONLY = (
    "INSERT INTO events (event_key, user_id, type, payload, occurred_at, recorded_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_key) DO NOTHING RETURNING *"
)
STATEMENTS = {"log only": LOG_ONLY, "one counter row": ONE_ROW, "sharded counts": SHARDED}


async def run(url: str, sql: str, writers: int) -> float:
    conns = [await connect(url) for _ in range(writers)]
    try:
        start_line = asyncio.Barrier(writers)

        async def write(conn: object) -> None:
            await start_line.wait()
            for _ in range(TRANSACTIONS):
                async with conn.transaction():  # type: ignore[attr-defined]
                    for _ in range(PER_TRANSACTION):
                        now = datetime.now(UTC)
                        await conn.fetchrow(  # type: ignore[attr-defined]
                            sql, uuid4(), None, "user.contended", {"n": 1}, now, now
                        )

        start = time.perf_counter()
        await asyncio.gather(*(write(conn) for conn in conns))
        elapsed = time.perf_counter() - start
    finally:
        for conn in conns:
            await conn.close()
    return writers * TRANSACTIONS * PER_TRANSACTION / elapsed


async def main(writers: int) -> None:
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    assert ONE_ROW != SHARDED, "the append no longer names its shard as expected"
    admin = admin_url()
    name = await create_database(admin, "bench_contention")
    try:
        url = with_database(admin, name)
        rates: dict[str, list[float]] = {label: [] for label in STATEMENTS}
        labels = list(STATEMENTS)
        for round_ in range(ROUNDS):
            for label in labels[round_ % 3 :] + labels[: round_ % 3]:
                rates[label].append(await run(url, STATEMENTS[label], writers))
        base = statistics.median(rates["log only"])
        print(f"{writers} writers, transactions of {PER_TRANSACTION} appends of one type:")
        for label, values in rates.items():
            rate = statistics.median(values)
            print(f"  {label:16} {rate:8,.0f} appends/s  {rate / base:.2f} of log only")
    finally:
        await drop_database(admin, name)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if sys.argv[1:] else 16))
