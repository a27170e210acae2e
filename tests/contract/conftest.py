"""The contract suite: one set of behavioural tests of the ports, run against the fakes
of :mod:`identity_store.dev` and against the PostgreSQL adapters.

Every test takes ``backend`` (parametrised ``fake`` / ``postgres``): a factory of units
of work over one store, and the clock they all read. The PostgreSQL side runs on a
database of its own (set up like production, as the application role), so a test can
reason about everything in it that is later than its own clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from identity_store.dev import FakeUnitOfWork, Store
from identity_store.domain.ports import UnitOfWork
from identity_store.infrastructure.db import create_pool
from identity_store.infrastructure.persistence.unit_of_work import PostgresUnitOfWork
from tests.conftest import Deploy, app_settings


@dataclass
class MovableClock:
    """A clock tests move by hand; every unit of work of a backend reads it."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@dataclass
class Backend:
    """A store behind the ports: ``uow()`` opens a unit of work on it."""

    name: str
    clock: MovableClock
    uow: Callable[[], UnitOfWork]


@pytest.fixture(scope="session")
async def contract_pool(
    deploy: Deploy,
) -> AsyncIterator[asyncpg.Pool[Any]]:
    deployment = await deploy("contract")
    pool = await create_pool(
        app_settings(deployment.app_url, through_pgbouncer=False, pool_max_size=10)
    )
    yield pool
    await pool.close()


@pytest.fixture(params=["fake", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    clock = MovableClock()
    if request.param == "fake":
        store = Store()
        return Backend("fake", clock, lambda: FakeUnitOfWork(store, clock=clock))
    pool: asyncpg.Pool[Any] = request.getfixturevalue("contract_pool")
    return Backend("postgres", clock, lambda: PostgresUnitOfWork(pool, clock=clock))
