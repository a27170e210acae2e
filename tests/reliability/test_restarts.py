"""Server restarts under load, on a crash-safe server (fsync and synchronous_commit on).

16 workers each repeat one unit of work — register a user, issue a session token,
append an event with a key chosen beforehand — while the server is stopped (``fast``:
sessions terminated, checkpoint; ``immediate``: killed, recovery from the WAL at the
next start) and started again, several times. Afterwards, with plain SQL:

- every unit of work the API acknowledged is present and whole (user, token, event);
- every failure was a domain error; a failure other than ``CommitOutcomeUnknown`` left
  nothing behind; an unknown outcome is settled by the event key: all three rows or none;
- no user exists without its token and event (no partial unit);
- the same pool served again after each restart, without being recreated.

Bounded: a fixed number of restarts, each waiting at most ``_WAIT_S`` for the pool to
serve again, and every worker stops after ``_MAX_UNITS_PER_WORKER``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import asyncpg
import pytest

from identity_store import (
    CommitOutcomeUnknown,
    IdentityStoreError,
    NewEvent,
    NewToken,
    NewUser,
    PostgresUnitOfWork,
    Settings,
    TokenKind,
    create_pool,
)
from tests.conftest import Deployment
from tests.durable_server import DurableServer, StopMode
from tests.reliability.conftest import FIGURES

pytestmark = pytest.mark.reliability

_WORKERS = 16
_RESTARTS: list[StopMode] = ["fast", "immediate"] * 4
_WARM_UP_UNITS = 100
_UNITS_AFTER_EACH_RESTART = 150
_WAIT_S = 60.0
_MAX_UNITS_PER_WORKER = 5_000
_EVENT_TYPE = "reliability.unit_of_work"


@dataclass(frozen=True)
class Attempt:
    email: str
    event_key: UUID


@dataclass
class Ledger:
    acknowledged: list[Attempt] = field(default_factory=list)
    unknown: list[Attempt] = field(default_factory=list)
    failed: list[Attempt] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    leaks: list[str] = field(default_factory=list)


async def one_unit(pool: asyncpg.Pool, attempt: Attempt) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        user = await uow.users.register(NewUser(email=attempt.email, display_name="Restart"))
        await uow.tokens.issue(
            NewToken(user_id=user.id, kind=TokenKind.SESSION, ttl=timedelta(hours=1))
        )
        await uow.events.append(
            NewEvent(
                type=_EVENT_TYPE,
                user_id=user.id,
                event_key=attempt.event_key,
                payload={"email": attempt.email},
            )
        )


async def worker(pool: asyncpg.Pool, ledger: Ledger, stop: asyncio.Event) -> None:
    for _ in range(_MAX_UNITS_PER_WORKER):
        if stop.is_set():
            return
        attempt = Attempt(f"r-{uuid.uuid4().hex}@example.test", uuid.uuid4())
        try:
            await one_unit(pool, attempt)
        except CommitOutcomeUnknown:
            ledger.unknown.append(attempt)
            ledger.failures["CommitOutcomeUnknown"] += 1
        except IdentityStoreError as exc:
            ledger.failed.append(attempt)
            ledger.failures[type(exc).__name__] += 1
            await asyncio.sleep(0.02)  # the server is away: do not spin
        except Exception as exc:
            ledger.leaks.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.02)
        else:
            ledger.acknowledged.append(attempt)


async def until(condition: object, what: str) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    assert callable(condition)
    deadline = time.monotonic() + _WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {_WAIT_S:.0f} s")
        await asyncio.sleep(0.05)


async def stored(admin: asyncpg.Connection, attempt: Attempt) -> tuple[int, int, int]:
    """How many users, tokens and events the attempt left: (1, 1, 1) or (0, 0, 0)."""
    row = await admin.fetchrow(
        """
        SELECT (SELECT count(*) FROM users WHERE email = $1) AS users,
               (SELECT count(*) FROM tokens t JOIN users u ON u.id = t.user_id
                 WHERE u.email = $1) AS tokens,
               (SELECT count(*) FROM events e JOIN users u ON u.id = e.user_id
                 WHERE e.event_key = $2 AND u.email = $1) AS events
        """,
        attempt.email,
        attempt.event_key,
    )
    assert row is not None
    return (row["users"], row["tokens"], row["events"])


async def test_restarts_under_load_lose_no_acknowledged_unit_of_work(
    durable: Deployment, durable_server: DurableServer
) -> None:
    pool = await create_pool(
        Settings(
            database_url=durable.app_url,
            pool_min_size=_WORKERS,
            pool_max_size=_WORKERS,
            command_timeout=10,
            connect_timeout=5,
        )
    )
    ledger = Ledger()
    stop = asyncio.Event()
    started = time.monotonic()
    workers = [asyncio.create_task(worker(pool, ledger, stop)) for _ in range(_WORKERS)]
    served_again: list[int] = []
    try:
        await until(lambda: len(ledger.acknowledged) >= _WARM_UP_UNITS, "warm-up")
        for mode in _RESTARTS:
            await asyncio.sleep(0.2)  # let units be in flight, some of them committing
            await asyncio.to_thread(durable_server.stop, mode)
            await asyncio.to_thread(durable_server.start)
            FIGURES[f"restarts ({mode} stop)"] += 1
            after = len(ledger.acknowledged)
            await until(
                lambda after=after: len(ledger.acknowledged) >= after + _UNITS_AFTER_EACH_RESTART,
                f"the pool serving again after a {mode} stop",
            )
            served_again.append(len(ledger.acknowledged) - after)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), timeout=_WAIT_S)
        await pool.close()
    elapsed = time.monotonic() - started

    assert ledger.leaks == [], ledger.leaks[:5]
    assert all(count >= _UNITS_AFTER_EACH_RESTART for count in served_again)

    admin = await asyncpg.connect(durable.admin_url)
    try:
        missing = [a for a in ledger.acknowledged if await stored(admin, a) != (1, 1, 1)]
        left_behind = [a for a in ledger.failed if await stored(admin, a) != (0, 0, 0)]
        unknown_outcomes = [await stored(admin, a) for a in ledger.unknown]
        partial_units = await admin.fetchval(
            """
            SELECT count(*) FROM users u
             WHERE u.email LIKE 'r-%@example.test'
               AND ((SELECT count(*) FROM tokens t WHERE t.user_id = u.id) <> 1
                 OR (SELECT count(*) FROM events e WHERE e.user_id = u.id) <> 1)
            """
        )
        users = await admin.fetchval("SELECT count(*) FROM users WHERE email LIKE 'r-%'")
    finally:
        await admin.close()

    committed_unknown = unknown_outcomes.count((1, 1, 1))
    FIGURES["restart test: units attempted"] += (
        len(ledger.acknowledged) + len(ledger.unknown) + len(ledger.failed)
    )
    FIGURES["restart test: units acknowledged"] += len(ledger.acknowledged)
    FIGURES["restart test: acknowledged units lost"] += len(missing)
    FIGURES["restart test: failures (domain errors)"] += len(ledger.failed) + len(ledger.unknown)
    FIGURES["restart test: commit outcome unknown"] += len(ledger.unknown)
    FIGURES["restart test: commit outcome unknown, had committed"] += committed_unknown
    FIGURES["restart test: seconds under load"] += round(elapsed)
    for name, count in ledger.failures.items():
        FIGURES[f"restart test: failures as {name}"] += count

    assert missing == [], f"{len(missing)} acknowledged units are missing or partial"
    assert left_behind == [], f"{len(left_behind)} failed units left rows behind"
    assert all(outcome in ((1, 1, 1), (0, 0, 0)) for outcome in unknown_outcomes)
    assert partial_units == 0
    assert users == len(ledger.acknowledged) + committed_unknown
