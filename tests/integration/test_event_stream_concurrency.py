"""The event stream under concurrent writers: a polling consumer sees every committed
event exactly once.

Each writer's unit of work registers a user (which gives its transaction an xid) and
only then appends its event, after a short random pause. Transactions therefore take
their xids in one order and their event ids in another, and commit in a third: the
condition under which a stream paged by event id alone lost 5-6% of the events.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from identity_store.domain.models import Event, NewEvent, NewUser
from identity_store.infrastructure.persistence.event_repo import PostgresEventRepository
from identity_store.infrastructure.persistence.unit_of_work import PostgresUnitOfWork
from tests.integration.test_event_repo import stream_end

if TYPE_CHECKING:
    import asyncpg

    Pool = asyncpg.Pool[Any]

pytestmark = pytest.mark.integration

WRITERS = 16
UNITS_PER_WRITER = 40
PAGE = 25
# Bounds, not expectations: the test fails on reaching either rather than waiting on.
PATIENCE_SECONDS = 120.0
AFTER_WRITERS_SECONDS = 5.0
MAX_POLLS = 200_000


async def test_a_polling_consumer_sees_every_committed_event_once_under_concurrent_writers(
    pool: Pool,
) -> None:
    event_type = f"test_{uuid.uuid4().hex[:12]}.stream"
    rng = random.Random(8)
    pauses = [[rng.uniform(0, 0.003) for _ in range(UNITS_PER_WRITER)] for _ in range(WRITERS)]
    committed: list[int] = []
    writers_done = asyncio.Event()

    async def writer(number: int) -> None:
        for unit in range(UNITS_PER_WRITER):
            async with PostgresUnitOfWork(pool) as uow:
                user = await uow.users.register(
                    NewUser(
                        email=f"s{number}-{uuid.uuid4().hex[:10]}@example.test", display_name="W"
                    )
                )
                await asyncio.sleep(pauses[number][unit])
                event = await uow.events.append(
                    NewEvent(type=event_type, user_id=user.id, payload={"w": number, "u": unit})
                )
            committed.append(event.id)

    async def writers() -> None:
        try:
            await asyncio.gather(*(writer(n) for n in range(WRITERS)))
        finally:
            writers_done.set()

    reader = PostgresEventRepository(pool)
    cursor = await stream_end(pool)
    delivered: list[Event] = []
    polls = 0
    writing = asyncio.create_task(writers())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE_SECONDS
    try:
        while polls < MAX_POLLS and loop.time() < deadline:
            polls += 1
            page = await reader.read_stream(after=cursor, limit=PAGE)
            cursor = page.next_cursor
            delivered.extend(event for event in page.events if event.type == event_type)
            if writers_done.is_set():
                if len(delivered) >= len(committed):
                    break
                # Every writer has ended: what is still missing is owed by the stream,
                # which gets a few seconds to catch up before the test fails.
                deadline = min(deadline, loop.time() + AFTER_WRITERS_SECONDS)
            if not page.events:
                await asyncio.sleep(0.002)
    finally:
        await writing  # a writer's failure fails the test here

    delivered_ids = [event.id for event in delivered]
    print(  # the figures for the notes: pytest -s shows them
        f"\n{WRITERS} writers committed {len(committed)} events; the consumer got "
        f"{len(delivered_ids)} ({len(set(delivered_ids))} distinct) in {polls} polls"
    )
    assert len(committed) == WRITERS * UNITS_PER_WRITER
    assert len(delivered_ids) == len(set(delivered_ids)), "an event was delivered twice"
    missing = set(committed) - set(delivered_ids)
    assert not missing, f"{len(missing)} of {len(committed)} committed events never delivered"
    assert set(delivered_ids) == set(committed)
