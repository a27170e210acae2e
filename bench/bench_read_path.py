"""Benchmark of the library's read path: repository calls against hand-written asyncpg.

Run: ``python bench/bench_read_path.py [--profile]`` (uses the embedded PostgreSQL server, or the
one in ``DATABASE_URL``). It migrates a scratch database with Atlas, stores 1000 users
and 1000 events of one user, then times, in one run with the two sides taking turns:

- the repository call (``PostgresUserRepository.get`` / ``.list_page``,
  ``PostgresEventRepository.list_for_user``), which returns domain models;
- hand-written asyncpg running the same SQL and validating each row once into the
  same domain model (``Model.model_validate(dict(record))``).

It prints per-call times and the ratio repository / hand-written: how much the
library's way from a row to the caller costs over one validation. Times are this
process's CPU time (``time.process_time``), so neither the server's work nor other
processes competing for the machine count; best of several rounds; nothing is
asserted.
"""

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from identity_store import (
    Event,
    NewEvent,
    NewUser,
    PostgresEventRepository,
    PostgresUserRepository,
    Settings,
    User,
    create_pool,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._database import admin_url, migrated_database  # noqa: E402

ROWS = 1000
ROUNDS = 20
USER_SQL = (
    "SELECT id, email, display_name, password_hash, status, version, created_at, updated_at"
    " FROM users"
)


async def best_of(
    variants: list[tuple[str, Callable[[], Awaitable[Any]]]], calls: int
) -> dict[str, float]:
    """Return each variant's best per-call time, the variants taking turns every round."""
    best = {label: float("inf") for label, _ in variants}
    for _ in range(ROUNDS):
        for label, fn in variants:
            start = time.process_time()
            for _ in range(calls):
                await fn()
            best[label] = min(best[label], (time.process_time() - start) / calls)
    return best


async def run(url: str) -> None:
    pool = await create_pool(Settings(database_url=url, pool_min_size=1, pool_max_size=2))
    users = PostgresUserRepository(pool)
    events = PostgresEventRepository(pool)
    try:
        tag = uuid.uuid4().hex[:8]
        first = await users.register(NewUser(email=f"u0-{tag}@example.com", display_name="U 0"))
        for i in range(1, ROWS):
            await users.register(NewUser(email=f"u{i}-{tag}@example.com", display_name=f"User {i}"))
        await events.append_many(
            [
                NewEvent(type="bench.read", user_id=first.id, payload={"n": i, "tag": "x" * 20})
                for i in range(ROWS)
            ]
        )
        one_sql = f"{USER_SQL} WHERE id = $1"
        many_sql = f"{USER_SQL} ORDER BY created_at, id LIMIT $1"
        events_sql = (
            "SELECT id, event_key, user_id, type, payload, occurred_at, recorded_at FROM events"
            " WHERE user_id = $1 AND id > 0 ORDER BY id LIMIT $2"
        )

        async def hand_get() -> User | None:
            async with pool.acquire() as conn:
                row = await conn.fetchrow(one_sql, first.id)
            return None if row is None else User.model_validate(dict(row))

        async def hand_list() -> list[User]:
            async with pool.acquire() as conn:
                rows = await conn.fetch(many_sql, ROWS + 1)
            return [User.model_validate(dict(row)) for row in rows[:ROWS]]

        async def hand_events() -> list[Event]:
            async with pool.acquire() as conn:
                rows = await conn.fetch(events_sql, first.id, ROWS)
            return [Event.model_validate(dict(row)) for row in rows]

        # The physical limit: the same fetch, asyncpg's bare Records, no model at all.
        async def raw_get() -> Any:
            async with pool.acquire() as conn:
                return await conn.fetchrow(one_sql, first.id)

        async def raw_list() -> Any:
            async with pool.acquire() as conn:
                return (await conn.fetch(many_sql, ROWS + 1))[:ROWS]

        async def raw_events() -> Any:
            async with pool.acquire() as conn:
                return await conn.fetch(events_sql, first.id, ROWS)

        async def repo_get() -> User | None:
            return await users.get(first.id)

        async def repo_list() -> Any:
            return await users.list_page(limit=ROWS)

        async def repo_events() -> list[Event]:
            return await events.list_for_user(first.id, limit=ROWS)

        print(
            f"identity-store read path: {ROWS} rows, client CPU time, best of {ROUNDS} rounds,"
            " taking turns"
        )
        print(
            "(ratio = repository call / hand-written asyncpg + one model_validate per row;"
            " raw = asyncpg's bare Records, no model: the limit)"
        )
        for label, hand, repo, raw, calls in (
            ("users.get", hand_get, repo_get, raw_get, 400),
            ("users.list_page(1000)", hand_list, repo_list, raw_list, 8),
            ("events.list_for_user(1000)", hand_events, repo_events, raw_events, 8),
        ):
            t = await best_of([("hand", hand), ("repo", repo), ("raw", raw)], calls)
            print(
                f"  {label:<28} hand {t['hand'] * 1e6:9.1f} us   repository "
                f"{t['repo'] * 1e6:9.1f} us   raw {t['raw'] * 1e6:9.1f} us"
                f"   ratio {t['repo'] / t['hand']:.3f}   repository/raw {t['repo'] / t['raw']:.3f}"
            )
        await _conversion(pool)
        if "--profile" in sys.argv:
            await _profile(repo_get)
    finally:
        await pool.close()


async def _profile(call: Callable[[], Awaitable[Any]]) -> None:
    """cProfile of 2000 calls of ``users.get`` through the repository: where the time
    goes around the fetch (``--profile``)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(2000):
        await call()
    profiler.disable()
    print("\nprofile of 2000 users.get calls (cProfile, by own time):")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(12)
    print("the library's own frames, by cumulative time:")
    stats.sort_stats("cumulative").print_stats("identity_store|pydantic", 15)


async def _conversion(pool: Any) -> None:
    """The Python side alone, on 1000 fetched rows: validating them into domain Users in
    one ``TypeAdapter`` call (what the generated ``:many`` functions do, now that their
    rows are the domain's models), against the hand-written loop of ``model_validate``."""
    adapter = TypeAdapter(list[User])
    async with pool.acquire() as conn:
        records = await conn.fetch("SELECT * FROM users ORDER BY created_at, id LIMIT $1", ROWS)

    def one_call() -> object:
        return adapter.validate_python(map(dict, records))

    def per_row() -> object:
        return [User.model_validate(dict(record)) for record in records]

    variants: list[tuple[str, Callable[[], object]]] = [
        ("one TypeAdapter call for the list [generated]", one_call),
        ("model_validate per row (hand-written)", per_row),
    ]
    best = {label: float("inf") for label, _ in variants}
    for _ in range(ROUNDS):
        for label, fn in variants:
            start = time.process_time()
            for _ in range(5):
                fn()
            best[label] = min(best[label], (time.process_time() - start) / 5)
    base = best[variants[1][0]]
    print(f"building {ROWS} domain Users from fetched rows (ratio to one validation a row):")
    for label, _ in variants:
        print(f"  {label:<46} {best[label] * 1e3:8.2f} ms   ratio {best[label] / base:.3f}")


async def main() -> None:
    async with migrated_database(admin_url(), "read_bench") as url:
        await run(url)


if __name__ == "__main__":
    asyncio.run(main())
