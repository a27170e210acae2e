"""The event log against a real PostgreSQL, checked with plain SQL of our own."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from identity_store._generated import events as generated_events
from identity_store.domain.errors import EventKeyConflict, InvalidInput, UserNotFound
from identity_store.domain.models import Event, NewEvent, NewUser, User
from identity_store.domain.pagination import STREAM_START, encode_stream_cursor
from identity_store.infrastructure.persistence.event_repo import PostgresEventRepository
from identity_store.infrastructure.persistence.user_repo import PostgresUserRepository

if TYPE_CHECKING:
    import asyncpg

    Pool = asyncpg.Pool[Any]

pytestmark = pytest.mark.integration


def unique_type(action: str = "happened") -> str:
    return f"test_{uuid.uuid4().hex[:12]}.{action}"


def a_new_user() -> NewUser:
    return NewUser(email=f"events-{uuid.uuid4().hex[:12]}@example.test", display_name="Eve")


async def a_user(pool: Pool) -> User:
    return await PostgresUserRepository(pool).register(a_new_user())


async def stream_end(pool: Pool, *, patience: float = 10.0) -> str:
    """A stream cursor just after every event committed so far.

    Waits (bounded) until no committed event is held back by a transaction still open
    somewhere on the server: such events sit above the horizon, so they would come
    after a cursor taken now, ahead of the events the test appends next.
    """
    deadline = asyncio.get_running_loop().time() + patience
    while await pool.fetchval(
        "SELECT count(*) FROM events"
        " WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
    ):
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"a transaction open on the server held the stream back for {patience} s")
        await asyncio.sleep(0.05)
    row = await pool.fetchrow(
        "SELECT tx_id, id FROM events"
        " WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
        " ORDER BY tx_id DESC, id DESC LIMIT 1"
    )
    return encode_stream_cursor(*((row["tx_id"], row["id"]) if row else STREAM_START))


async def read_until(
    events: PostgresEventRepository, after: str, count: int, *, patience: float = 10.0
) -> list[Event]:
    """Poll the stream like a consumer, following ``next_cursor``, until ``count``
    events after ``after`` show (or ``patience`` seconds pass).

    The horizon is server-wide: a transaction open elsewhere on the same server can hold
    the stream back for a moment, so wait rather than read once.
    """
    deadline = asyncio.get_running_loop().time() + patience
    found: list[Event] = []
    while True:
        page = await events.read_stream(after=after, limit=1000)
        found.extend(page.events)
        after = page.next_cursor
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        if not page.events:
            await asyncio.sleep(0.05)


async def test_appending_records_the_event_as_given(pool: Pool) -> None:
    user = await a_user(pool)
    occurred = datetime(2029, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    recorded = datetime(2029, 2, 3, 4, 5, 7, tzinfo=UTC)
    new = NewEvent(
        type="user.registered",
        user_id=user.id,
        payload={"plan": "free", "seats": 3, "tags": ["a", "b"], "ok": True, "none": None},
        occurred_at=occurred,
    )

    event = await PostgresEventRepository(pool, clock=lambda: recorded).append(new)

    row = await pool.fetchrow("SELECT * FROM events WHERE id = $1", event.id)
    assert row is not None
    assert (row["event_key"], row["user_id"], row["type"]) == (new.event_key, user.id, new.type)
    assert row["payload"] == new.payload == event.payload
    assert (row["occurred_at"], row["recorded_at"]) == (occurred, recorded)
    assert (event.occurred_at, event.recorded_at) == (occurred, recorded)


async def test_occurred_at_defaults_to_the_time_of_the_append(pool: Pool) -> None:
    at = datetime(2029, 9, 9, tzinfo=UTC)

    event = await PostgresEventRepository(pool, clock=lambda: at).append(
        NewEvent(type=unique_type())
    )

    assert event.occurred_at == event.recorded_at == at
    assert event.user_id is None


async def test_a_retried_append_returns_the_original_and_writes_nothing(pool: Pool) -> None:
    events = PostgresEventRepository(pool)
    new = NewEvent(type=unique_type(), payload={"n": 1})

    first = await events.append(new)
    retried = await events.append(new)

    assert retried == first
    count = await pool.fetchval("SELECT count(*) FROM events WHERE event_key = $1", new.event_key)
    assert count == 1


async def test_concurrent_retries_of_one_append_record_exactly_one_event(pool: Pool) -> None:
    events = PostgresEventRepository(pool)
    new = NewEvent(type=unique_type(), payload={"attempt": "same"})

    results = await asyncio.gather(*(events.append(new) for _ in range(20)))

    assert len({event.id for event in results}) == 1
    count = await pool.fetchval("SELECT count(*) FROM events WHERE event_key = $1", new.event_key)
    assert count == 1


async def test_reusing_an_event_key_for_a_different_event_is_a_conflict(pool: Pool) -> None:
    events = PostgresEventRepository(pool)
    original = await events.append(NewEvent(type=unique_type(), payload={"v": 1}))

    with pytest.raises(EventKeyConflict) as caught:
        await events.append(
            NewEvent(type=original.type, payload={"v": 2}, event_key=original.event_key)
        )

    assert caught.value.event_key == original.event_key

    stored = await pool.fetchval("SELECT payload FROM events WHERE id = $1", original.id)
    assert stored == {"v": 1}


async def test_appending_for_an_unknown_user_raises_user_not_found(pool: Pool) -> None:
    new = NewEvent(type=unique_type(), user_id=uuid.uuid4())

    with pytest.raises(UserNotFound):
        await PostgresEventRepository(pool).append(new)

    count = await pool.fetchval("SELECT count(*) FROM events WHERE event_key = $1", new.event_key)
    assert count == 0


async def test_append_many_writes_every_event_in_one_copy(pool: Pool) -> None:
    user = await a_user(pool)
    kind = unique_type("imported")
    batch = [
        NewEvent(type=kind, user_id=user.id if n % 2 else None, payload={"n": n})
        for n in range(500)
    ]

    assert await PostgresEventRepository(pool).append_many(batch) == 500

    rows = await pool.fetch("SELECT event_key, user_id, payload FROM events WHERE type = $1", kind)
    stored = {row["event_key"]: (row["user_id"], row["payload"]) for row in rows}
    assert stored == {new.event_key: (new.user_id, new.payload) for new in batch}


async def test_append_many_with_a_recorded_key_writes_none_of_the_batch(pool: Pool) -> None:
    events = PostgresEventRepository(pool)
    kind = unique_type()
    recorded = await events.append(NewEvent(type=kind))
    batch = [NewEvent(type=kind), NewEvent(type=kind, event_key=recorded.event_key)]

    with pytest.raises(EventKeyConflict):
        await events.append_many(batch)

    assert await pool.fetchval("SELECT count(*) FROM events WHERE type = $1", kind) == 1


async def test_append_many_refuses_a_key_repeated_within_the_batch(pool: Pool) -> None:
    key = uuid.uuid4()
    batch = [NewEvent(type=unique_type(), event_key=key) for _ in range(2)]

    with pytest.raises(InvalidInput):
        await PostgresEventRepository(pool).append_many(batch)

    assert await pool.fetchval("SELECT count(*) FROM events WHERE event_key = $1", key) == 0
    assert await PostgresEventRepository(pool).append_many([]) == 0


async def test_get_finds_an_event_by_id_and_answers_none_otherwise(pool: Pool) -> None:
    events = PostgresEventRepository(pool)
    event = await events.append(NewEvent(type=unique_type()))

    assert await events.get(event.id) == event
    assert await events.get(2**62) is None


async def test_a_users_events_come_100_at_a_time_unless_asked_otherwise(pool: Pool) -> None:
    user = await a_user(pool)
    events = PostgresEventRepository(pool)
    await events.append_many([NewEvent(type="user.step", user_id=user.id) for _ in range(101)])

    first = await events.list_for_user(user.id)

    ids = await pool.fetch("SELECT id FROM events WHERE user_id = $1 ORDER BY id", user.id)
    assert [event.id for event in first] == [row["id"] for row in ids][:100]


async def test_a_users_events_come_in_id_order_after_the_cursor(pool: Pool) -> None:
    user = await a_user(pool)
    other = await a_user(pool)
    events = PostgresEventRepository(pool)
    mine = [await events.append(NewEvent(type="user.step", user_id=user.id)) for _ in range(5)]
    await events.append(NewEvent(type="user.step", user_id=other.id))

    assert await events.list_for_user(user.id) == mine
    assert await events.list_for_user(user.id, after_id=mine[1].id, limit=2) == mine[2:4]
    ids = await pool.fetch("SELECT id FROM events WHERE user_id = $1 ORDER BY id", user.id)
    assert [row["id"] for row in ids] == [event.id for event in mine]


async def test_the_stream_returns_events_after_the_cursor_in_order_up_to_the_limit(
    pool: Pool,
) -> None:
    events = PostgresEventRepository(pool)
    cursor = await stream_end(pool)
    appended = [await events.append(NewEvent(type=unique_type())) for _ in range(5)]

    everything = await read_until(events, cursor, 5)
    first_two = await events.read_stream(after=cursor, limit=2)
    rest = await events.read_stream(after=first_two.next_cursor, limit=100)
    nothing_more = await events.read_stream(after=rest.next_cursor, limit=100)

    assert everything == appended
    assert list(first_two.events) == appended[:2]
    assert list(rest.events) == appended[2:]
    assert nothing_more.events == ()
    assert nothing_more.next_cursor == rest.next_cursor


async def test_a_stream_page_holds_100_events_unless_asked_otherwise(pool: Pool) -> None:
    events = PostgresEventRepository(pool)
    cursor = await stream_end(pool)
    kind = unique_type()
    assert (
        await events.append_many([NewEvent(type=kind, payload={"n": n}) for n in range(101)]) == 101
    )

    page = await events.read_stream(after=cursor)

    assert [(event.type, event.payload) for event in page.events] == [
        (kind, {"n": n}) for n in range(100)
    ]


async def test_an_event_still_being_written_holds_back_later_events_until_it_commits(
    pool: Pool,
) -> None:
    reader = PostgresEventRepository(pool)
    cursor = await stream_end(pool)
    async with pool.acquire() as slow:
        transaction = slow.transaction()
        await transaction.start()
        early = await PostgresEventRepository(slow).append(NewEvent(type=unique_type("early")))
        late = await reader.append(NewEvent(type=unique_type("late")))
        assert early.id < late.id

        # The late event is committed, but a consumer that took it now would move its
        # cursor past the early one, which is not committed yet, and never see it.
        while_open = await reader.read_stream(after=cursor)
        await transaction.commit()

    assert [event.id for event in while_open.events if event.id >= early.id] == []
    after_commit = await read_until(reader, while_open.next_cursor, 2)
    assert [event.id for event in after_commit] == [early.id, late.id]


async def test_a_transaction_that_took_its_xid_first_but_its_event_id_last_is_not_skipped(
    pool: Pool,
) -> None:
    """Two transactions reproduce what paging by id alone lost: the older transaction
    (smaller xid) commits an event with a larger id first, while the younger one still
    holds an event with a smaller id. Its event must still be delivered."""
    reader = PostgresEventRepository(pool)
    cursor = await stream_end(pool)
    async with pool.acquire() as older_conn, pool.acquire() as younger_conn:
        older, younger = older_conn.transaction(), younger_conn.transaction()
        await older.start()
        await younger.start()
        # Each transaction takes its xid with its first write, the older one first.
        await PostgresUserRepository(older_conn).register(a_new_user())
        await PostgresUserRepository(younger_conn).register(a_new_user())
        held = await PostgresEventRepository(younger_conn).append(
            NewEvent(type=unique_type("held"))
        )
        first = await PostgresEventRepository(older_conn).append(
            NewEvent(type=unique_type("first"))
        )
        assert held.id < first.id
        await older.commit()

        # Polled, bounded: a transaction open elsewhere on the server may hold even
        # the older one's event back for a moment; the held one cannot show meanwhile.
        deadline = asyncio.get_running_loop().time() + 10.0
        while not (seen := await reader.read_stream(after=cursor)).events:
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        await younger.commit()

    assert [event.id for event in seen.events] == [first.id]
    # A consumer reads on from where it stopped, and still gets the held event.
    then = await read_until(reader, seen.next_cursor, 1)
    assert [event.id for event in then] == [held.id]


async def test_a_rolled_back_event_leaves_a_gap_that_the_stream_then_passes(pool: Pool) -> None:
    reader = PostgresEventRepository(pool)
    cursor = await stream_end(pool)
    async with pool.acquire() as slow:
        transaction = slow.transaction()
        await transaction.start()
        lost = await PostgresEventRepository(slow).append(NewEvent(type=unique_type()))
        kept = await reader.append(NewEvent(type=unique_type()))
        assert (await reader.read_stream(after=cursor)).events == ()
        await transaction.rollback()

    after = await read_until(reader, cursor, 1)
    assert [event.id for event in after] == [kept.id]
    assert await pool.fetchval("SELECT count(*) FROM events WHERE id = $1", lost.id) == 0


async def test_counting_by_type_counts_each_type_asked_for(pool: Pool) -> None:
    events = PostgresEventRepository(pool)
    one, two, absent = unique_type("one"), unique_type("two"), unique_type("absent")
    await events.append_many([NewEvent(type=one) for _ in range(3)])
    await events.append(NewEvent(type=two))

    assert await events.count_by_type([one, two, absent]) == {one: 3, two: 1}
    # A name PostgreSQL could not store (NUL) matches nothing rather than failing.
    assert await events.count_by_type([f"{one}\x00", one]) == {one: 3}
    everything = await events.count_by_type()
    assert everything[one] == 3 and everything[two] == 1
    total = await pool.fetchval("SELECT count(*) FROM events")
    assert sum(everything.values()) == total


async def test_events_outlive_their_user(pool: Pool) -> None:
    user = await a_user(pool)
    events = PostgresEventRepository(pool)
    event = await events.append(NewEvent(type="user.registered", user_id=user.id))

    await PostgresUserRepository(pool).delete(user.id)

    kept = await events.get(event.id)
    assert kept is not None and kept.user_id is None and kept.type == "user.registered"
    # A retry of the original append still finds its event rather than conflicting.
    retried = await events.append(
        NewEvent(type="user.registered", user_id=user.id, event_key=event.event_key)
    )
    assert retried.id == event.id


@pytest.mark.parametrize(
    "payload",
    [
        {"sql": "'; DROP TABLE events; --", "quote": "\"'`", "backslash": "\\u0000"},
        {"unicode": "Zoë 李 🦄 \u202e", "newline": "a\nb\tc\r", "key with spaces": 1},
        {"numbers": [0, -1, 2**70, 1.5, -0.25, 1e-7, 0.1], "nested": {"a": {"b": {"c": [[]]}}}},
        {"big": "x" * 60_000},
    ],
)
async def test_payloads_are_stored_and_read_back_verbatim(
    pool: Pool, payload: dict[str, Any]
) -> None:
    events = PostgresEventRepository(pool)

    event = await events.append(NewEvent(type=unique_type(), payload=payload))

    assert event.payload == payload
    assert (await events.get(event.id)) == event
    assert await pool.fetchval("SELECT payload FROM events WHERE id = $1", event.id) == payload


async def test_the_api_offers_no_way_to_change_or_delete_an_event() -> None:
    # Its public methods (mutmut's copies, named x«class»method__mutmut_N, aside) ...
    verbs = {
        name
        for name, member in vars(PostgresEventRepository).items()
        if callable(member) and not name.startswith("_") and "\u01c1" not in name
    }
    # ... and every statement it can send: none updates, deletes or truncates an event
    # (the one update there is adds to a count of event_type_counts, on a conflict).
    counted = re.compile(
        r"ON CONFLICT \(type, shard\) DO UPDATE SET count = event_type_counts\.count \+ "
        r"(1|EXCLUDED\.count)\)?$",
        re.MULTILINE,
    )
    statements = {
        name: value
        for name, value in vars(generated_events).items()
        if name.isupper() and isinstance(value, str) and value.startswith("-- name:")
    }
    code = {
        name: counted.sub(
            "", "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
        )
        for name, sql in statements.items()
    }

    assert verbs == {
        "append",
        "append_many",
        "count_by_type",
        "get",
        "list_for_user",
        "read_stream",
    }
    assert len(statements) >= 6
    assert sum(bool(counted.search(sql)) for sql in statements.values()) == 2
    for name, sql in code.items():
        assert not re.search(r"\b(UPDATE|DELETE|TRUNCATE|MERGE)\b", sql, re.IGNORECASE), name


@pytest.mark.parametrize("limit", [0, 1001, -1])
async def test_stream_limits_out_of_range_are_rejected(pool: Pool, limit: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        await PostgresEventRepository(pool).read_stream(limit=limit)

    assert caught.value.field == "limit"


@pytest.mark.parametrize(
    "after", ["", "0", "' OR 1=1 --", "A" * 23, "A" * 500, encode_stream_cursor(1, 2) + "="]
)
async def test_a_stream_cursor_we_did_not_make_is_rejected(pool: Pool, after: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await PostgresEventRepository(pool).read_stream(after=after, limit=10)

    assert caught.value.field == "after"


async def test_an_event_recorded_later_may_have_occurred_earlier(pool: Pool) -> None:
    occurred = datetime.now(UTC) - timedelta(days=30)

    event = await PostgresEventRepository(pool).append(
        NewEvent(type=unique_type(), occurred_at=occurred)
    )

    assert event.occurred_at == occurred < event.recorded_at
