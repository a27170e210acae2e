"""Durable subscriptions and their consumers (identity_store.infrastructure.consumer)
on a real server.

Handlers write their effects as events of a type their subscription does not match,
each with a fresh event key (so a second delivery would be a second row, not an
idempotent no-op), and the tests count those rows with plain SQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import uuid
from asyncio.subprocess import PIPE
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from identity_store import (
    BatchResult,
    Event,
    InvalidInput,
    NewEvent,
    NewUser,
    PostgresUnitOfWork,
    Settings,
    SubscriptionExists,
    SubscriptionNotFound,
    SubscriptionStopped,
    consume,
    create_pool,
    run_once,
)
from identity_store._generated import subscriptions as subscriptions_queries
from identity_store.domain.pagination import encode_stream_cursor
from identity_store.infrastructure.consumer import NOTIFY_CHANNEL

if TYPE_CHECKING:
    import asyncpg

    from tests.pgbouncer import PgBouncer

    Pool = asyncpg.Pool[Any]

pytestmark = pytest.mark.integration

# Bounds, not expectations: a test fails on reaching one rather than waiting on.
PATIENCE_SECONDS = 60.0
MAX_RUNS = 10_000


def unique(prefix: str = "c") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


async def create(pool: Pool, name: str, **options: Any) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        await uow.subscriptions.create(name, **options)


async def append(pool: Pool, event_type: str, count: int, **fields: Any) -> list[int]:
    ids = []
    async with PostgresUnitOfWork(pool) as uow:
        for number in range(count):
            event = await uow.events.append(
                NewEvent(type=event_type, payload={"n": number}, **fields)
            )
            ids.append(event.id)
    return ids


def recorder(handled_type: str) -> Any:
    """A handler whose database effect is one ``handled_type`` event per event."""

    async def handle(events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        for event in events:
            await uow.events.append(NewEvent(type=handled_type, payload={"source": event.id}))

    return handle


async def handled_counts(pool: Pool, handled_type: str) -> dict[int, int]:
    found = await pool.fetch(
        "SELECT (payload->>'source')::bigint AS source, count(*) AS n FROM events "
        "WHERE type = $1 GROUP BY 1",
        handled_type,
    )
    return {row["source"]: row["n"] for row in found}


async def position_of(pool: Pool, name: str) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT after_tx_id, after_id FROM subscriptions WHERE name = $1", name
    )
    assert row is not None
    return row["after_tx_id"], row["after_id"]


async def drain(pool: Pool, name: str, handler: Any, **options: Any) -> list[BatchResult]:
    results = []
    for _ in range(MAX_RUNS):
        result = await run_once(pool, name, handler, **options)
        results.append(result)
        if not (result.more or result.failed or result.retry_in):
            return results
        if result.retry_in:
            await asyncio.sleep(result.retry_in)
    raise AssertionError("the subscription did not drain")


async def test_handler_writes_and_the_position_commit_together_exactly_once(pool: Pool) -> None:
    topic, name = unique(), unique("s")
    ids = await append(pool, f"{topic}.created", 25)
    await create(pool, name, types=[f"{topic}.created"])

    results = await drain(pool, name, recorder(f"{topic}.handled"), batch_size=10)

    assert [result.handled for result in results] == [10, 10, 5]
    assert await handled_counts(pool, f"{topic}.handled") == dict.fromkeys(ids, 1)
    # Nothing new: another run hands the handler nothing and writes nothing.
    assert await run_once(pool, name, recorder(f"{topic}.handled")) == BatchResult()
    assert await handled_counts(pool, f"{topic}.handled") == dict.fromkeys(ids, 1)


def scanned_rows(plan: dict[str, Any], relation: str) -> int:
    """Rows the plan's scans of ``relation`` produced (EXPLAIN ANALYZE, JSON)."""
    own = plan["Actual Rows"] * plan["Actual Loops"] if plan.get("Relation Name") == relation else 0
    return int(own) + sum(scanned_rows(child, relation) for child in plan.get("Plans", []))


async def test_reading_a_batch_scans_from_the_position_not_from_the_start_of_the_stream(
    pool: Pool,
) -> None:
    topic, name = unique(), unique("s")
    await append(pool, f"{topic}.created", 60)
    await create(pool, name, types=[f"{topic}.created"])
    await drain(pool, name, recorder(f"{topic}.handled"), batch_size=50)
    total = await pool.fetchval("SELECT count(*) FROM events")
    async with pool.acquire() as conn:
        row = await subscriptions_queries.get_subscription(conn, name=name)
        assert row is not None
        sql = subscriptions_queries.READ_SUBSCRIPTION_BATCH
        arguments = (
            row.after_tx_id,
            row.after_id,
            2**62,
            row.types,
            row.type_prefixes,
            None,
            1,
            0,
            5,
        )
        explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *arguments)
    (plan,) = json.loads(explained) if isinstance(explained, str) else explained
    # Every event of the session's database is before the position: none is scanned.
    assert total > 60 and scanned_rows(plan["Plan"], "events") < 10


async def test_a_handler_that_raises_after_writing_leaves_no_write_and_the_position_put(
    pool: Pool,
) -> None:
    topic, name = unique(), unique("s")
    await append(pool, f"{topic}.created", 3)
    await create(pool, name, types=[f"{topic}.created"], max_attempts=3)
    before = await position_of(pool, name)
    write = recorder(f"{topic}.handled")

    async def crash_before_commit(events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        await write(events, uow)
        raise RuntimeError("the process died here")

    instant = [datetime.now(UTC)]  # a clock the test moves: no race with the backoff

    def clock() -> datetime:
        return instant[0]

    result = await run_once(pool, name, crash_before_commit, backoff=30, clock=clock)

    assert result.failed and result.handled == 0 and result.retry_in == 30
    assert await handled_counts(pool, f"{topic}.handled") == {}
    assert await position_of(pool, name) == before
    async with PostgresUnitOfWork(pool) as uow:
        subscription = await uow.subscriptions.get(name)
    assert subscription is not None and subscription.failures == 1
    # Before the backoff ends nothing is delivered; after it, a working handler gets
    # the events one at a time until it is past the failed batch.
    instant[0] += timedelta(seconds=29)
    assert (await run_once(pool, name, write, clock=clock)).retry_in == pytest.approx(1)
    instant[0] += timedelta(seconds=1)
    results = await drain(pool, name, write, clock=clock)
    assert [result.handled for result in results] == [1, 1, 1, 0]
    assert sorted((await handled_counts(pool, f"{topic}.handled")).values()) == [1, 1, 1]


async def test_a_poison_event_is_parked_after_max_attempts_and_the_others_are_handled(
    pool: Pool,
) -> None:
    topic, name = unique(), unique("s")
    ids = await append(pool, f"{topic}.created", 5)
    poison = ids[2]
    await create(pool, name, types=[f"{topic}.created"], max_attempts=2)
    write = recorder(f"{topic}.handled")

    async def fails_on_the_poison(events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        if any(event.id == poison for event in events):
            raise ValueError("cannot handle the event")
        await write(events, uow)

    results = await drain(pool, name, fails_on_the_poison, backoff=0.01)

    assert [result.parked for result in results if result.parked] == [poison]
    assert await handled_counts(pool, f"{topic}.handled") == {
        event_id: 1 for event_id in ids if event_id != poison
    }
    async with PostgresUnitOfWork(pool) as uow:
        parked = await uow.subscriptions.list_parked(name)
    assert [(p.event_id, p.error_class, p.error_message, p.attempts) for p in parked] == [
        (poison, "ValueError", "cannot handle the event", 2)
    ]
    assert parked[0].model_dump().keys().isdisjoint({"payload"})


async def test_the_stop_policy_stops_on_a_poison_event_until_reset(pool: Pool) -> None:
    topic, name = unique(), unique("s")
    ids = await append(pool, f"{topic}.created", 2)
    await create(pool, name, types=[f"{topic}.created"], max_attempts=1, on_failure="stop")
    write = recorder(f"{topic}.handled")

    async def fails(events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        raise KeyError("x")

    with pytest.raises(SubscriptionStopped):
        await drain(pool, name, fails, backoff=0.01)
    with pytest.raises(SubscriptionStopped):
        await consume(pool, name, write, listen=False)
    async with PostgresUnitOfWork(pool) as uow:
        lag = await uow.subscriptions.lag()
        stopped = await uow.subscriptions.get(name)
    assert stopped is not None and stopped.stopped_at is not None
    mine = [entry for entry in lag.subscriptions if entry.name == name]
    assert mine[0].stopped and mine[0].events_behind == 2

    async with PostgresUnitOfWork(pool) as uow:
        await uow.subscriptions.reset(name, to=stopped.position)
    await drain(pool, name, write)
    assert await handled_counts(pool, f"{topic}.handled") == dict.fromkeys(ids, 1)


async def test_filters_by_type_prefix_and_by_user(pool: Pool) -> None:
    topic = unique()
    async with PostgresUnitOfWork(pool) as uow:
        user = await uow.users.register(
            NewUser(email=f"{unique()}@example.test", display_name="Filtered")
        )
    wanted = await append(pool, f"{topic}.user.created", 2, user_id=user.id)
    await append(pool, f"{topic}.user.created", 2)  # another user's (none)
    exact = await append(pool, f"{topic}.other", 1, user_id=user.id)
    await append(pool, f"{topic}x.user.created", 1, user_id=user.id)  # not a word prefix
    by_user, by_type = unique("s"), unique("s")
    await create(pool, by_user, types=[f"{topic}.user.*", f"{topic}.other"], user_id=user.id)
    await create(pool, by_type, types=[f"{topic}.other"])

    await drain(pool, by_user, recorder(f"{topic}.handled.user"))
    await drain(pool, by_type, recorder(f"{topic}.handled.type"))

    assert set(await handled_counts(pool, f"{topic}.handled.user")) == {*wanted, *exact}
    assert set(await handled_counts(pool, f"{topic}.handled.type")) == set(exact)


async def test_several_consumers_share_one_subscription_and_handle_every_event_once(
    pool: Pool, pgbouncer: PgBouncer | None
) -> None:
    topic, name = unique(), unique("s")
    await create(pool, name, types=[f"{topic}.created"])
    writers, units, per_unit = 8, 25, 3
    handled_type = f"{topic}.handled"
    stop = asyncio.Event()
    workers = [
        asyncio.create_task(
            consume(
                pool,
                name,
                recorder(handled_type),
                batch_size=20,
                listen=pgbouncer is None,
                poll_interval=0.2,
                stop=stop,
            )
        )
        for _ in range(3)
    ]

    async def writer() -> list[int]:
        written = []
        for _ in range(units):
            written += await append(pool, f"{topic}.created", per_unit)
        return written

    try:
        written = [
            i for ids in await asyncio.gather(*(writer() for _ in range(writers))) for i in ids
        ]
        deadline = time.monotonic() + PATIENCE_SECONDS
        while time.monotonic() < deadline:
            counts = await handled_counts(pool, handled_type)
            if len(counts) >= len(written):
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), PATIENCE_SECONDS)

    assert len(written) == writers * units * per_unit
    assert await handled_counts(pool, handled_type) == dict.fromkeys(written, 1)


async def test_partitioned_subscriptions_share_the_work_and_keep_each_users_order(
    pool: Pool, pgbouncer: PgBouncer | None
) -> None:
    topic, count = unique(), 4
    names = [unique("s") for _ in range(count)]
    for index, name in enumerate(names):
        await create(pool, name, types=[f"{topic}.created"], partition=(index, count))
    async with PostgresUnitOfWork(pool) as uow:
        users = [
            await uow.users.register(NewUser(email=f"{unique()}@example.test", display_name="P"))
            for _ in range(12)
        ]
    handled_type = f"{topic}.handled"
    stop = asyncio.Event()
    # Two "processes", each running a consumer of every partition.
    workers = [
        asyncio.create_task(
            consume(
                pool,
                name,
                recorder(handled_type),
                batch_size=7,
                listen=pgbouncer is None,
                poll_interval=0.2,
                stop=stop,
            )
        )
        for _ in range(2)
        for name in names
    ]

    async def writer(number: int) -> None:
        for unit in range(20):
            user = users[(number * 7 + unit) % len(users)]
            await append(pool, f"{topic}.created", 2, user_id=user.id)

    try:
        await asyncio.gather(*(writer(n) for n in range(8)))
        await append(pool, f"{topic}.created", 3)  # no user: partition 0
        deadline = time.monotonic() + PATIENCE_SECONDS
        while time.monotonic() < deadline:
            if len(await handled_counts(pool, handled_type)) >= 8 * 20 * 2 + 3:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), PATIENCE_SECONDS)

    written = await pool.fetch(
        "SELECT id, user_id FROM events WHERE type = $1 ORDER BY tx_id, id", f"{topic}.created"
    )
    assert await handled_counts(pool, handled_type) == {row["id"]: 1 for row in written}
    handled = await pool.fetch(
        "SELECT source.id, source.user_id FROM events AS h"
        " JOIN events AS source ON source.id = (h.payload->>'source')::bigint"
        " WHERE h.type = $1 ORDER BY h.id",
        handled_type,
    )

    def per_user(rows: Sequence[Any]) -> dict[Any, list[int]]:
        grouped: dict[Any, list[int]] = {}
        for row in rows:
            grouped.setdefault(row["user_id"], []).append(row["id"])
        return grouped

    assert per_user(handled) == per_user(written)  # the stream's order, user by user
    async with PostgresUnitOfWork(pool) as uow:
        lag = await uow.subscriptions.lag()
        first = await uow.subscriptions.get(names[1])
    assert first is not None and first.partition == (1, count)
    behind = {entry.name: entry.events_behind for entry in lag.subscriptions}
    assert [behind[name] for name in names] == [0] * count


@pytest.mark.parametrize("listen", [True, False], ids=["notifications", "polling"])
async def test_consumers_wake_on_notifications_and_fall_back_to_polling(
    pool: Pool, listen: bool, pgbouncer: PgBouncer | None
) -> None:
    if listen and pgbouncer is not None:
        pytest.skip("PgBouncer in transaction mode does not carry LISTEN: consume(listen=False)")
    topic, name = unique(), unique("s")
    await create(pool, name, types=[f"{topic}.created"])
    # With notifications the poll is far off: delivery in time proves the wake-up.
    poll_interval = 60.0 if listen else 0.5
    seen: list[float] = []
    arrived = asyncio.Event()

    async def note(events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        seen.extend(time.monotonic() for _ in events)
        arrived.set()

    stop = asyncio.Event()
    worker = asyncio.create_task(
        consume(pool, name, note, listen=listen, poll_interval=poll_interval, stop=stop)
    )
    latencies = []
    try:
        await asyncio.sleep(0.3)  # LISTEN in place, first (empty) read done
        for _ in range(5):
            arrived.clear()
            committed = time.monotonic()
            await append(pool, f"{topic}.created", 1)
            await asyncio.wait_for(arrived.wait(), 10.0)
            latencies.append(seen[-1] - committed)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10.0)
    print(
        f"\nwake-up latency ({'notifications' if listen else f'polling every {poll_interval} s'}):"
        f" {', '.join(f'{1000 * s:.1f}' for s in latencies)} ms"
    )
    assert len(seen) == 5


async def test_appends_notify_once_per_committed_transaction_and_never_on_rollback(
    pool: Pool, pgbouncer: PgBouncer | None
) -> None:
    if pgbouncer is not None:
        pytest.skip("PgBouncer in transaction mode does not carry LISTEN")
    topic = unique()
    received: list[str] = []
    async with pool.acquire() as listener:

        def note(connection: Any, pid: int, channel: str, payload: object) -> None:
            received.append(str(payload))

        await listener.add_listener(NOTIFY_CHANNEL, note)
        await append(pool, f"{topic}.created", 3)  # one transaction, three events
        async with PostgresUnitOfWork(pool) as uow:
            await uow.events.append_many(
                NewEvent(type=f"{topic}.created", payload={"n": n}) for n in range(4)
            )
        with pytest.raises(RuntimeError):
            async with PostgresUnitOfWork(pool) as uow:
                await uow.events.append(NewEvent(type=f"{topic}.created"))
                raise RuntimeError("roll back")
        # A marker after them: when it has arrived, everything before it has too.
        await pool.execute("SELECT pg_notify($1, 'marker')", NOTIFY_CHANNEL)
        for _ in range(200):  # at most 10 s
            if "marker" in received:
                break
            await asyncio.sleep(0.05)
        await listener.remove_listener(NOTIFY_CHANNEL, note)
    assert received == ["", "", "marker"]


async def test_reset_moves_to_the_beginning_now_or_a_cursor(pool: Pool) -> None:
    topic, name = unique(), unique("s")
    first = await append(pool, f"{topic}.created", 2)
    await create(pool, name, types=[f"{topic}.created"], start="now")
    later = await append(pool, f"{topic}.created", 1)
    handled = f"{topic}.handled"

    await drain(pool, name, recorder(handled))
    assert set(await handled_counts(pool, handled)) == set(later)

    async with PostgresUnitOfWork(pool) as uow:
        await uow.subscriptions.reset(name, to="beginning")
    await drain(pool, name, recorder(handled))
    assert await handled_counts(pool, handled) == {first[0]: 1, first[1]: 1, later[0]: 2}

    async with PostgresUnitOfWork(pool) as uow:
        page = await uow.events.read_stream(limit=1)
        assert page.events
        moved = await uow.subscriptions.reset(name, to="now")
        assert moved.position != page.next_cursor
        await uow.subscriptions.reset(name, to=page.next_cursor)
        assert (await uow.subscriptions.get(name)).position == page.next_cursor  # type: ignore[union-attr]


async def test_lag_shows_events_behind_and_the_transaction_holding_the_stream(pool: Pool) -> None:
    topic, name = unique(), unique("s")
    await create(pool, name, types=[f"{topic}.created"])
    async with pool.acquire() as holder:
        # An unrelated open transaction with an xid holds back every subscription.
        transaction = holder.transaction()
        await transaction.start()
        try:
            await holder.fetchval("SELECT pg_current_xact_id()")
            await asyncio.sleep(0.2)
            await append(pool, f"{topic}.created", 3)
            assert (await run_once(pool, name, recorder(f"{topic}.handled"))).handled == 0
            async with PostgresUnitOfWork(pool) as uow:
                lag = await uow.subscriptions.lag()
        finally:
            await transaction.rollback()
    mine = [entry for entry in lag.subscriptions if entry.name == name]
    assert mine[0].events_behind == 3 and mine[0].seconds_behind >= 0
    assert lag.oldest_transaction_seconds >= 0.2 and lag.xids_held >= 1
    assert (await run_once(pool, name, recorder(f"{topic}.handled"))).handled == 3


async def test_a_consumer_warns_when_a_long_transaction_holds_the_stream_back(
    pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("s")
    await create(pool, name, start="now")
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="identity_store.consumer")
    async with pool.acquire() as holder:
        transaction = holder.transaction()
        await transaction.start()
        try:
            await holder.fetchval("SELECT pg_current_xact_id()")
            worker = asyncio.create_task(
                consume(
                    pool,
                    name,
                    recorder(f"{unique()}.handled"),
                    listen=False,
                    poll_interval=0.05,
                    horizon_warning_seconds=0.3,
                    stop=stop,
                )
            )
            for _ in range(100):  # at most 5 s
                if "held back" in caplog.text:
                    break
                await asyncio.sleep(0.05)
        finally:
            await transaction.rollback()
            stop.set()
    await asyncio.wait_for(worker, 10.0)
    warnings = [r.getMessage() for r in caplog.records if "held back" in r.getMessage()]
    assert warnings and name in warnings[0]


# A worker process that takes a batch, writes in its transaction, says so, and hangs.
HANGING_WORKER = """
import asyncio, sys
from identity_store import NewEvent, consume, create_pool

async def main():
    pool = await create_pool()

    async def handle(events, uow):
        for event in events:
            await uow.events.append(NewEvent(type=sys.argv[2], payload={"source": event.id}))
        print("handling", len(events), flush=True)
        await asyncio.sleep(3600)

    await consume(pool, sys.argv[1], handle, listen=False, batch_size=5)

asyncio.run(main())
"""


async def test_a_worker_killed_mid_batch_loses_its_lock_and_its_writes_and_another_takes_over(
    pool: Pool, settings: Settings
) -> None:
    topic, name = unique(), unique("s")
    ids = await append(pool, f"{topic}.created", 8)
    await create(pool, name, types=[f"{topic}.created"])
    handled = f"{topic}.handled"
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "DB_STATEMENT_CACHE_SIZE": str(settings.statement_cache_size),  # 0 behind PgBouncer
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HANGING_WORKER, name, handled, stdout=PIPE, env=env
    )
    try:
        line = await asyncio.wait_for(worker.stdout.readline(), PATIENCE_SECONDS)  # type: ignore[union-attr]
        assert line.split() == [b"handling", b"5"]
        assert (await run_once(pool, name, recorder(handled))).busy
    finally:
        worker.kill()
        await worker.wait()
    for _ in range(200):  # the server notices the closed connection at once; 10 s at most
        if not (await run_once(pool, name, recorder(handled), batch_size=5)).busy:
            break
        await asyncio.sleep(0.05)
    await drain(pool, name, recorder(handled))
    assert await handled_counts(pool, handled) == dict.fromkeys(ids, 1)


BAD_CREATE = [
    ({"name": ""}, "name"),
    ({"name": "Upper"}, "name"),
    ({"name": "a" * 64}, "name"),
    ({"name": "x; drop table"}, "name"),
    ({"name": 7}, "name"),
    ({"types": "user.created"}, "types"),
    ({"types": ["user"]}, "types"),
    ({"types": ["User.*"]}, "types"),
    ({"types": ["user.*.x"]}, "types"),
    ({"types": ["*"]}, "types"),
    ({"types": [None]}, "types"),
    ({"types": ["a.b"] * 101}, "types"),
    ({"user_id": "not-a-uuid"}, "user_id"),
    ({"partition": (4, 4)}, "partition"),
    ({"partition": (-1, 2)}, "partition"),
    ({"partition": (0, 257)}, "partition"),
    ({"partition": [0, 2]}, "partition"),
    ({"partition": (True, 2)}, "partition"),
    ({"on_failure": "retry"}, "on_failure"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"max_attempts": 10**9}, "max_attempts"),
    ({"start": "yesterday"}, "start"),
]


@pytest.mark.parametrize(("arguments", "field"), BAD_CREATE)
async def test_bad_subscription_arguments_name_the_argument_and_write_nothing(
    pool: Pool, arguments: dict[str, Any], field: str
) -> None:
    options = {"name": unique("s"), **arguments}
    before = await pool.fetchval("SELECT count(*) FROM subscriptions")
    async with PostgresUnitOfWork(pool) as uow:
        with pytest.raises(InvalidInput) as caught:
            await uow.subscriptions.create(**options)
    assert caught.value.field == field
    assert await pool.fetchval("SELECT count(*) FROM subscriptions") == before


async def test_bad_consumer_arguments_and_unknown_names_are_domain_errors(
    pool: Pool, settings: Settings
) -> None:
    topic, name = unique(), unique("s")
    await append(pool, f"{topic}.created", 1)
    await create(pool, name, types=[f"{topic}.created"])
    write = recorder(f"{topic}.handled")
    before = await position_of(pool, name)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 10**9}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"backoff": -1}, "backoff"),
    ]
    for options, field in bad:
        with pytest.raises(InvalidInput) as caught:
            await run_once(pool, name, write, **options)
        assert caught.value.field == field
    with pytest.raises(InvalidInput) as caught:
        await consume(pool, name, write, poll_interval=0)
    assert caught.value.field == "poll_interval"
    single = await create_pool(settings.model_copy(update={"pool_min_size": 1, "pool_max_size": 1}))
    try:
        with pytest.raises(InvalidInput) as caught:
            await consume(single, name, write)
        assert caught.value.field == "listen"
    finally:
        await single.close()
    with pytest.raises(InvalidInput) as caught:
        await run_once(pool, "Bad Name", write)
    assert caught.value.field == "name"
    with pytest.raises(InvalidInput) as caught:
        await run_once(pool, name, "not a handler")  # type: ignore[arg-type]
    assert caught.value.field == "handler"

    def synchronous(events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        return None

    async def returns_something(events: Sequence[Event], uow: PostgresUnitOfWork) -> Any:
        await write(events, uow)
        return 1

    for wrong in (synchronous, returns_something):
        with pytest.raises(InvalidInput) as caught:
            await run_once(pool, name, wrong)  # type: ignore[arg-type]
        assert caught.value.field == "handler"
    assert await position_of(pool, name) == before
    assert await handled_counts(pool, f"{topic}.handled") == {}

    missing = unique("s")
    with pytest.raises(SubscriptionNotFound):
        await run_once(pool, missing, write)
    with pytest.raises(SubscriptionNotFound):
        await consume(pool, missing, write, listen=False)
    async with PostgresUnitOfWork(pool) as uow:
        with pytest.raises(SubscriptionNotFound):
            await uow.subscriptions.reset(missing)
        assert await uow.subscriptions.get(missing) is None
        assert await uow.subscriptions.delete(missing) is False
    with pytest.raises(SubscriptionExists):
        await create(pool, name)


@pytest.mark.parametrize(
    "cursor",
    ["", "garbage", "x" * 23, encode_stream_cursor(2**62, 1)],
    ids=["empty", "garbage", "not-base64-of-ours", "past-the-end"],
)
async def test_reset_to_a_garbage_cursor_names_the_argument_and_moves_nothing(
    pool: Pool, cursor: str
) -> None:
    name = unique("s")
    await create(pool, name)
    before = await position_of(pool, name)
    async with PostgresUnitOfWork(pool) as uow:
        with pytest.raises(InvalidInput) as caught:
            await uow.subscriptions.reset(name, to=cursor)
    assert caught.value.field == "to"
    assert await position_of(pool, name) == before


async def test_deleting_a_subscription_deletes_its_parked_events(pool: Pool) -> None:
    topic, name = unique(), unique("s")
    await append(pool, f"{topic}.created", 1)
    await create(pool, name, types=[f"{topic}.created"], max_attempts=1)

    async def fails(events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        raise RuntimeError("no")

    await drain(pool, name, fails, backoff=0.01)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM subscription_parked_events WHERE subscription = $1", name
        )
        == 1
    )
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.subscriptions.delete(name) is True
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM subscription_parked_events WHERE subscription = $1", name
        )
        == 0
    )
