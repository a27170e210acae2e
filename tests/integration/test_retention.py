"""purge_events: events every subscription has passed are deleted by age, as the owner.

Each test has a database of its own (a purge of the session's database would pull the
stream from under the other tests' subscriptions).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from identity_store import (
    DatabaseError,
    Event,
    InvalidInput,
    NewEvent,
    PostgresUnitOfWork,
    Settings,
    SubscriptionBehindRetention,
    create_pool,
    purge_events,
    run_once,
)
from tests.conftest import Deploy, Deployment

pytestmark = pytest.mark.integration

_OLD = datetime(2026, 1, 1, tzinfo=UTC)
_CUT = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
async def deployment(deploy: Deploy) -> Deployment:
    return await deploy("retention")


@pytest.fixture
async def app_pool(deployment: Deployment) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(Settings(database_url=deployment.app_url, pool_max_size=3))
    yield pool
    await pool.close()


@pytest.fixture
async def owner_pool(deployment: Deployment) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(Settings(database_url=deployment.owner_url, pool_max_size=2))
    yield pool
    await pool.close()


async def append(
    pool: asyncpg.Pool, count: int, *, at: datetime, kind: str = "retention.kept"
) -> None:
    async with PostgresUnitOfWork(pool, clock=lambda: at) as uow:
        await uow.events.append_many([NewEvent(type=kind) for _ in range(count)])


async def stored(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


class Handled:
    def __init__(self) -> None:
        self.ids: list[int] = []

    async def __call__(self, events: Sequence[Event], uow: PostgresUnitOfWork) -> None:
        self.ids.extend(event.id for event in events)


async def drain(pool: asyncpg.Pool, name: str, handled: Handled) -> None:
    for _ in range(100):
        result = await run_once(pool, name, handled, batch_size=10)
        if not result.more:
            return


async def test_only_old_events_every_subscription_passed_are_deleted_in_bounded_batches(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    async with PostgresUnitOfWork(app_pool) as uow:
        await uow.subscriptions.create("ahead")
        await uow.subscriptions.create("behind")
    await append(app_pool, 6, at=_OLD)
    await drain(app_pool, "ahead", Handled())
    handled = Handled()
    for _ in range(2):  # "behind" handles the first 4 events only
        await run_once(app_pool, "behind", handled, batch_size=2)
    await append(app_pool, 3, at=_CUT + timedelta(days=1))  # young: kept
    await drain(app_pool, "ahead", Handled())

    # One batch of 3: the oldest 3 of the 4 events both subscriptions have passed.
    assert await purge_events(owner_pool, before=_CUT, batch_size=3, max_batches=1) == 3
    assert await stored(app_pool) == 6
    assert await purge_events(owner_pool, before=_CUT, batch_size=3) == 1
    assert await stored(app_pool) == 5  # 2 old ones "behind" has not handled, 3 young

    later = Handled()
    await drain(app_pool, "behind", later)  # no error: nothing it needs was deleted
    assert len(later.ids) == 5


async def test_purging_unconsumed_events_makes_the_subscription_fail_loudly_until_reset(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    async with PostgresUnitOfWork(app_pool) as uow:
        await uow.subscriptions.create("slow")
    await append(app_pool, 4, at=_OLD)
    await append(app_pool, 2, at=_CUT + timedelta(days=1))

    assert await purge_events(owner_pool, before=_CUT, keep_unconsumed=False) == 4
    handled = Handled()
    with pytest.raises(SubscriptionBehindRetention) as raised:
        await run_once(app_pool, "slow", handled)
    assert raised.value.name == "slow"
    assert handled.ids == []

    # "beginning" now means the start of the retained range, for new subscriptions too.
    async with PostgresUnitOfWork(app_pool) as uow:
        await uow.subscriptions.reset("slow", to="beginning")
        await uow.subscriptions.create("fresh", start="beginning")
    await drain(app_pool, "slow", handled)
    fresh = Handled()
    await drain(app_pool, "fresh", fresh)
    assert len(handled.ids) == len(fresh.ids) == 2


async def test_the_application_role_cannot_purge(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    await append(app_pool, 2, at=_OLD)
    with pytest.raises(DatabaseError) as raised:
        await purge_events(app_pool, before=_CUT, keep_unconsumed=False)
    assert raised.value.sqlstate == "42501"
    assert await stored(app_pool) == 2
    assert await purge_events(owner_pool, before=_CUT) == 2


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"before": datetime(2026, 1, 1)}, "before"),  # no time zone
        ({"before": "2026-01-01"}, "before"),
        ({"before": _CUT, "keep_unconsumed": "no"}, "keep_unconsumed"),
        ({"before": _CUT, "batch_size": 0}, "batch_size"),
        ({"before": _CUT, "batch_size": 10**9}, "batch_size"),
        ({"before": _CUT, "max_batches": 0}, "max_batches"),
    ],
)
async def test_bad_arguments_name_the_argument_and_delete_nothing(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, arguments: dict[str, object], field: str
) -> None:
    await append(app_pool, 2, at=_OLD)
    with pytest.raises(InvalidInput) as raised:
        await purge_events(owner_pool, **arguments)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert await stored(app_pool) == 2
