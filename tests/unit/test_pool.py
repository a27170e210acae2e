"""The pool create_pool opens: asyncpg's own, with asyncpg's arguments and defaults."""

from __future__ import annotations

import inspect

import asyncpg
import pytest

from identity_store.infrastructure._pool import BoundedPool, open_pool

pytestmark = pytest.mark.unit

# min_size=0: the pool opens no connection, so no server is needed.
NOWHERE = "postgresql://nobody@127.0.0.1:1/none"


def _default(name: str) -> object:
    return inspect.signature(asyncpg.create_pool).parameters[name].default


async def test_asyncpg_pool_arguments_pass_through() -> None:
    pool = await open_pool(
        NOWHERE,
        acquire_timeout=2.0,
        min_size=0,
        max_size=3,
        max_queries=7,
        max_inactive_connection_lifetime=12.5,
    )
    try:
        assert isinstance(pool, BoundedPool) and pool.acquire_timeout == 2.0
        assert (pool._maxsize, pool._max_queries, pool._max_inactive_connection_lifetime) == (
            3,
            7,
            12.5,
        )
    finally:
        await pool.close()


async def test_what_is_not_passed_has_asyncpgs_own_defaults() -> None:
    pool = await open_pool(NOWHERE, acquire_timeout=1.0, min_size=0)
    try:
        assert pool._maxsize == _default("max_size")
        assert pool._max_queries == _default("max_queries")
        assert pool._max_inactive_connection_lifetime == _default(
            "max_inactive_connection_lifetime"
        )
    finally:
        await pool.close()
