"""Pooling at scale: 1,000 clients doing units of work through PgBouncer (transaction
mode, 20 server connections) beside the same clients sharing one direct pool of 20.

    python bench/bench_pgbouncer.py [--clients 1000] [--server-connections 20] [--seconds 60]

Each client repeats one unit of work (register a user, append an event) for the given
time. "direct": the clients are tasks sharing one asyncpg pool of ``--server-connections``
connections (how one application process pools). "pgbouncer": every client opens its own
connection (a pool of one, ``statement_cache_size=0``) to a PgBouncer that multiplexes
them onto ``--server-connections`` server connections (how many processes share a
server). Printed: units per second, p50/p99 latency of a unit (waits included), errors
by class. Needs Debian's pgbouncer (``make setup-pgbouncer``); uses the embedded server
unless ``DATABASE_URL`` is set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._database import admin_url, create_database, drop_database, with_database  # noqa: E402
from identity_store import (  # noqa: E402
    IdentityStoreError,
    NewEvent,
    NewUser,
    PostgresUnitOfWork,
    Settings,
    create_pool,
)
from identity_store.infrastructure.settings import parse_database_url  # noqa: E402
from tests.pgbouncer import PgBouncer  # noqa: E402


async def _unit(pool: asyncpg.Pool[Any]) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        user = await uow.users.register(
            NewUser(email=f"b-{uuid.uuid4().hex}@example.test", display_name="Bench")
        )
        await uow.events.append(NewEvent(type="bench.pgbouncer", user_id=user.id))


async def _client(
    pool: asyncpg.Pool[Any], until: float, latencies: list[float], errors: Counter[str]
) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            await _unit(pool)
        except IdentityStoreError as exc:
            errors[type(exc).__name__] += 1
            await asyncio.sleep(0.05)
        except Exception as exc:  # counted: a non-domain exception is a defect
            errors[f"non-domain {type(exc).__name__}"] += 1
            await asyncio.sleep(0.05)
        else:
            latencies.append(time.monotonic() - started)


def _report(name: str, seconds: float, latencies: list[float], errors: Counter[str]) -> float:
    rate = len(latencies) / seconds
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    print(
        f"{name:10} {rate:9.0f} units/s   p50 {1000 * cuts[49]:7.1f} ms   "
        f"p99 {1000 * cuts[98]:7.1f} ms   errors {dict(errors) or 0}"
    )
    return rate


async def _direct(url: str, clients: int, size: int, seconds: float) -> float:
    pool = await create_pool(
        Settings(
            database_url=url,
            pool_min_size=size,
            pool_max_size=size,
            acquire_timeout=60,
            slow_statement_seconds=0,
        )
    )
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    try:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_client(pool, until, latencies, errors) for _ in range(clients)))
    finally:
        await pool.close()
    return _report("direct", seconds, latencies, errors)


async def _through_bouncer(url: str, clients: int, seconds: float) -> float:
    settings = Settings(
        database_url=url,
        pool_min_size=1,
        pool_max_size=1,
        statement_cache_size=0,
        acquire_timeout=60,
        slow_statement_seconds=0,
    )
    pools: list[asyncpg.Pool[Any]] = []
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    try:
        for start in range(0, clients, 50):  # connect in waves: SCRAM costs CPU
            pools.extend(
                await asyncio.gather(
                    *(create_pool(settings) for _ in range(start, min(clients, start + 50)))
                )
            )
        until = time.monotonic() + seconds
        await asyncio.gather(*(_client(pool, until, latencies, errors) for pool in pools))
    finally:
        await asyncio.gather(*(pool.close() for pool in pools), return_exceptions=True)
    return _report("pgbouncer", seconds, latencies, errors)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--server-connections", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)

    admin = admin_url()
    name = await create_database(admin, "bench_pgbouncer")
    url = with_database(admin, name)
    login = parse_database_url(admin)
    folder = Path(tempfile.mkdtemp(prefix="identity-store-bench-pgbouncer-"))
    bouncer = PgBouncer.start(
        folder,
        server_url=url,
        users={str(login.user): str(login.password)},
        pool_size=args.server_connections,
    )
    try:
        print(
            f"{args.clients} clients, {args.server_connections} server connections, "
            f"{args.seconds:.0f} s each; load average {os.getloadavg()[0]:.1f}"
        )
        direct = await _direct(url, args.clients, args.server_connections, args.seconds)
        pooled = await _through_bouncer(bouncer.route(url), args.clients, args.seconds)
        print(f"pgbouncer / direct throughput: {pooled / direct:.2f}")
    finally:
        bouncer.stop()
        await drop_database(admin, name)


if __name__ == "__main__":
    asyncio.run(main())
