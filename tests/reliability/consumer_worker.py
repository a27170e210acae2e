"""One consumer worker process of ``test_consumer_crashes`` (run as
``python -m tests.reliability.consumer_worker``; the test kills it with SIGKILL).

It consumes the subscription named in ``CRASH_SUBSCRIPTION`` on the database at
``CRASH_DATABASE_URL`` (the environment, not argv: the URL holds a password). Its handler
has both kinds of effect, for every event of a batch:

- a database effect: it appends a ``reliability.crash_handled`` event whose payload names
  the source event, this process (``CRASH_INSTANCE``) and the batch number, in the
  batch's unit of work (so it commits with the subscription's position, or not at all);
- an external effect: it writes the line ``<instance> <batch> <event id>`` to the file
  ``CRASH_EFFECTS`` (opened O_APPEND, one ``write`` per batch, no user-space buffer:
  what was written survives a SIGKILL of this process), then waits ``EXTERNAL_CALL_S``
  as a call to another system would, so that kills find batches in flight.

It prints ``ready`` once its pool is up, and exits 0 when stdin closes.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

from identity_store import NewEvent, PostgresUnitOfWork, Settings, consume, create_pool
from identity_store.domain.models import Event

HANDLED_TYPE = "reliability.crash_handled"
BATCH_SIZE = 20
EXTERNAL_CALL_S = 0.05


async def main() -> None:
    name = os.environ["CRASH_SUBSCRIPTION"]
    instance = os.environ["CRASH_INSTANCE"]
    effects = os.open(os.environ["CRASH_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    batches = 0

    async def handle(events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        nonlocal batches
        batches += 1
        await uow.events.append_many(
            [
                NewEvent(
                    type=HANDLED_TYPE,
                    payload={"source": event.id, "instance": instance, "batch": batches},
                )
                for event in events
            ]
        )
        lines = "".join(f"{instance} {batches} {event.id}\n" for event in events)
        os.write(effects, lines.encode())
        await asyncio.sleep(EXTERNAL_CALL_S)  # as if waiting for the other system's answer

    pool = await create_pool(
        Settings(
            database_url=os.environ["CRASH_DATABASE_URL"],
            pool_min_size=1,
            pool_max_size=3,
            command_timeout=10,
            connect_timeout=5,
        )
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    print("ready", flush=True)
    try:
        await consume(pool, name, handle, batch_size=BATCH_SIZE, poll_interval=0.2, stop=stop)
    finally:
        os.close(effects)
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
