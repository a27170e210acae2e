"""count_by_type answers from event_type_counts, which the append queries keep in the
appending transaction: exact under concurrent writers, rollbacks and replayed keys,
and backfilled by its migration from the events recorded before it."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from identity_store.domain.errors import EventKeyConflict
from identity_store.domain.models import NewEvent
from identity_store.infrastructure.db import Settings, create_pool
from identity_store.infrastructure.persistence.event_repo import PostgresEventRepository
from identity_store.infrastructure.persistence.unit_of_work import PostgresUnitOfWork
from tests.conftest import ROOT, MakeDatabase, atlas

pytestmark = pytest.mark.integration

WRITERS = 16


def unique_type(action: str) -> str:
    return f"count_{uuid.uuid4().hex[:12]}.{action}"


async def counted_in_the_log(pool: asyncpg.Pool, types: list[str]) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT type, count(*) AS n FROM events WHERE type = ANY($1) GROUP BY type", types
    )
    return {row["type"]: row["n"] for row in rows}


class Abandon(Exception):
    pass


async def test_counts_are_exact_under_concurrent_writers_rollbacks_and_replays(
    database_url: str,
) -> None:
    pool = await create_pool(
        Settings(database_url=database_url, pool_min_size=WRITERS, pool_max_size=WRITERS)
    )
    try:
        one, other = unique_type("one"), unique_type("other")
        recorded = [NewEvent(type=one, payload={"n": n}) for n in range(5)]
        await PostgresEventRepository(pool).append_many(recorded)
        all_open = asyncio.Barrier(WRITERS)

        async def write(writer: int) -> None:
            async with PostgresUnitOfWork(pool) as uow:
                # Every transaction is open before any appends: they overlap.
                await all_open.wait()
                for n in range(10):
                    await uow.events.append(NewEvent(type=other if n % 2 else one))
                    await asyncio.sleep(0)
                for new in recorded:  # replays count nothing
                    await uow.events.append(new)
                await uow.events.append_many(NewEvent(type=one) for _ in range(30))
                await uow.events.append_many([NewEvent(type=other), NewEvent(type=one)])
                if writer == 0:
                    raise Abandon  # rolled back: its appends count nothing

        outcomes = await asyncio.gather(
            *(write(writer) for writer in range(WRITERS)), return_exceptions=True
        )
        assert [type(o) for o in outcomes] == [Abandon] + [type(None)] * (WRITERS - 1)

        committed = WRITERS - 1
        expected = {one: 5 + committed * (5 + 30 + 1), other: committed * (5 + 1)}
        assert await counted_in_the_log(pool, [one, other]) == expected
        assert await PostgresEventRepository(pool).count_by_type([one, other]) == expected
        # The writers spread over shards rather than queueing on one row.
        shards = await pool.fetchval("SELECT count(*) FROM event_type_counts WHERE type = $1", one)
        assert shards > 1
    finally:
        await pool.close()


async def test_a_failed_bulk_append_counts_nothing_and_leaves_the_transaction_usable(
    pool: asyncpg.Pool,
) -> None:
    kind = unique_type("bulk")
    events = PostgresEventRepository(pool)
    recorded = NewEvent(type=kind)
    await events.append(recorded)
    # The conflict comes in the second COPY of the call: the first is undone with it.
    batch = [NewEvent(type=kind) for _ in range(7_000)] + [recorded]
    with pytest.raises(EventKeyConflict):
        await events.append_many(batch)

    assert await events.count_by_type([kind]) == {kind: 1}
    assert await counted_in_the_log(pool, [kind]) == {kind: 1}


async def test_the_migration_counts_the_events_recorded_before_it(
    make_database: MakeDatabase,
) -> None:
    names = sorted(path.name for path in (ROOT / "migrations").glob("*.sql"))
    before = str(next(i for i, name in enumerate(names) if name.endswith("_event_type_counts.sql")))
    url = await make_database("eventcounts")
    applied = atlas("migrate", "apply", "--dir", "file://migrations", "--url", url, before)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO events (event_key, type, occurred_at, recorded_at)"
            " SELECT gen_random_uuid(), 'old.kind_' || (n % 3), now(), now()"
            " FROM generate_series(1, 1000) AS n"
        )
    finally:
        await conn.close()

    rest = atlas("migrate", "apply", "--dir", "file://migrations", "--url", url)
    assert rest.returncode == 0, rest.stdout + rest.stderr

    pool = await create_pool(Settings(database_url=url, pool_max_size=2))
    try:
        events = PostgresEventRepository(pool)
        assert await events.count_by_type() == {
            "old.kind_0": 333,
            "old.kind_1": 334,
            "old.kind_2": 333,
        }
        await events.append(NewEvent(type="old.kind_0"))
        assert await events.count_by_type(["old.kind_0"]) == {"old.kind_0": 334}
    finally:
        await pool.close()
