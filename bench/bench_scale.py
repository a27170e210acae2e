"""Every public read at a small and a large size: does any call grow with the data?

Run: ``python -m bench.bench_scale [USERS EVENTS ...]`` (default: 10000 100000 and
1000000 5000000; the embedded server, or the one in ``DATABASE_URL``). For each size
it builds a scratch database with SQL alone (``generate_series``: users, one session
token each, events of 20 types spread over the users, and the counts the appends would
have kept, as the migration backfills them), runs ``VACUUM ANALYZE``, then times each
read through the library on one pooled connection: median µs of ``CALLS`` calls, after
a warm-up. Prints one table with a column per size and the large / small ratio (goal:
none above 2.5). Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench._database import admin_url, create_database, drop_database, with_database
from identity_store import (
    PostgresEventRepository,
    PostgresTokenRepository,
    PostgresUserRepository,
    Settings,
    create_pool,
)
from identity_store.domain.pagination import encode_stream_cursor

CALLS = 200
EVENTS_PER_STATEMENT = 500_000


async def build(url: str, users: int, events: int) -> None:
    pool = await create_pool(Settings(database_url=url, pool_max_size=1, command_timeout=3600))
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO users (email, display_name, created_at, updated_at)"
                " SELECT 'user' || i || '@example.com', 'User ' || i,"
                "  now() - i * interval '1 second', now() - i * interval '1 second'"
                " FROM generate_series(1, $1) AS i",
                users,
            )
            await conn.execute(
                "INSERT INTO tokens (user_id, kind, token_hash, created_at, expires_at)"
                " SELECT id, 'session', sha256(convert_to('secret-' || email, 'UTF8')),"
                "  now(), now() + interval '30 days' FROM users"
            )
            await conn.execute(
                "CREATE TEMPORARY TABLE numbered AS SELECT row_number() OVER () AS n, id FROM users"
            )
            await conn.execute("CREATE UNIQUE INDEX ON numbered (n)")
            # A transaction per statement: the stream has several tx_ids to walk.
            for start in range(0, events, EVENTS_PER_STATEMENT):
                await conn.execute(
                    "INSERT INTO events (event_key, user_id, type, payload, occurred_at,"
                    " recorded_at)"
                    " SELECT gen_random_uuid(), numbered.id, 'user.action_' || (i % 20),"
                    "  jsonb_build_object('i', i, 'ip', '192.0.2.10'), now(), now()"
                    " FROM generate_series($1::bigint, $2::bigint) AS i"
                    " JOIN numbered ON numbered.n = 1 + i % $3",
                    start + 1,
                    min(events, start + EVENTS_PER_STATEMENT),
                    users,
                )
            await conn.execute(
                "INSERT INTO event_type_counts (type, shard, count)"
                " SELECT type, 0, count(*) FROM events GROUP BY type"
            )
            await conn.execute("DROP TABLE numbered")
            await conn.execute("VACUUM ANALYZE")
    finally:
        await pool.close()


async def median_us(call: Callable[[int], Awaitable[Any]], calls: int = CALLS) -> float:
    for n in range(3):
        await call(n)
    times = []
    for n in range(calls):
        start = time.perf_counter()
        await call(n)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


async def measure(url: str, users: int, events: int) -> dict[str, float]:
    pool = await create_pool(Settings(database_url=url, pool_max_size=1, command_timeout=600))
    rng = random.Random(7)  # noqa: S311 - which rows to read, not a secret
    try:
        user_repo = PostgresUserRepository(pool)
        token_repo = PostgresTokenRepository(pool)
        event_repo = PostgresEventRepository(pool)
        picks = [rng.randint(1, users) for _ in range(CALLS + 10)]
        emails = [f"user{i}@example.com" for i in picks]
        ids = [
            row["id"]
            for row in await pool.fetch("SELECT id FROM users WHERE email = ANY($1)", emails)
        ]
        ids = [ids[n % len(ids)] for n in range(CALLS + 10)]
        event_ids = [rng.randint(1, events) for _ in range(CALLS + 10)]
        middle = await pool.fetchrow("SELECT tx_id, id FROM events WHERE id = $1", events // 2)
        cursor = encode_stream_cursor(middle["tx_id"], middle["id"])
        first_page = await user_repo.list_page(limit=50)
        calls: dict[str, Callable[[int], Awaitable[Any]]] = {
            "users.get": lambda n: user_repo.get(ids[n]),
            "users.get_by_email": lambda n: user_repo.get_by_email(emails[n]),
            "users.list_page(50), second page": lambda n: user_repo.list_page(
                limit=50, cursor=first_page.next_cursor
            ),
            "tokens.verify": lambda n: token_repo.verify(f"secret-{emails[n]}"),
            "tokens.list_live_for_user": lambda n: token_repo.list_live_for_user(ids[n]),
            "events.get": lambda n: event_repo.get(event_ids[n]),
            "events.list_for_user(100)": lambda n: event_repo.list_for_user(ids[n], limit=100),
            "events.read_stream(1000) from the middle": lambda n: event_repo.read_stream(
                after=cursor, limit=1000
            ),
            "events.count_by_type()": lambda n: event_repo.count_by_type(),
            "events.count_by_type([one type])": lambda n: event_repo.count_by_type(
                [f"user.action_{n % 20}"]
            ),
            # What count_by_type ran before the counts were kept, for comparison.
            "(before) count(*) of events GROUP BY type": lambda n: pool.fetch(
                "SELECT type, count(*) FROM events GROUP BY type ORDER BY type"
            ),
        }
        found = await token_repo.verify(f"secret-{emails[0]}")
        assert found is not None, "the seeded token secret does not verify"
        assert sum((await event_repo.count_by_type()).values()) == events
        # The log scan takes up to seconds a call: fewer of those.
        return {
            name: await median_us(call, 10 if name.startswith("(before)") else CALLS)
            for name, call in calls.items()
        }
    finally:
        await pool.close()


async def main(sizes: list[tuple[int, int]]) -> None:
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    admin = admin_url()
    results: list[dict[str, float]] = []
    for users, events in sizes:
        name = await create_database(admin, "bench_scale")
        try:
            url = with_database(admin, name)
            start = time.perf_counter()
            await build(url, users, events)
            took = time.perf_counter() - start
            print(f"built {users:,} users and {events:,} events in {took:.0f} s")
            results.append(await measure(url, users, events))
        finally:
            await drop_database(admin, name)
    header = " | ".join(f"{u:,} users, {e:,} events" for u, e in sizes)
    print(f"\nmedian µs per call | {header} | last / first")
    for call in results[0]:
        values = " | ".join(f"{r[call]:,.0f}" for r in results)
        print(f"{call} | {values} | {results[-1][call] / results[0][call]:.1f}")


if __name__ == "__main__":
    args = [int(arg) for arg in sys.argv[1:]] or [10_000, 100_000, 1_000_000, 5_000_000]
    asyncio.run(main(list(zip(args[::2], args[1::2], strict=True))))
