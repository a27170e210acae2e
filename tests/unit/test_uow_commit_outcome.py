"""The unit of work's COMMIT path when the driver fails in a way no real server can be
made to produce on demand: asyncpg reports some connections broken mid-use as an
``InternalClientError`` (not an ``InterfaceError``), and only the connection's own
state (closed) tells that the outcome is unknown. Stand-ins play the pool, the
connection and its transaction; everything else is the real unit of work."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from identity_store.domain.errors import CommitOutcomeUnknown, DatabaseError
from identity_store.infrastructure.persistence.unit_of_work import PostgresUnitOfWork

pytestmark = pytest.mark.unit


class _Transaction:
    def __init__(self, failure: BaseException) -> None:
        self._failure = failure

    async def start(self) -> None:
        return None

    async def commit(self) -> None:
        raise self._failure

    async def rollback(self) -> None:
        return None


class _Connection:
    def __init__(self, failure: BaseException, *, closed: bool) -> None:
        self._failure = failure
        self._closed = closed
        self.terminated = False

    def transaction(self, **_: Any) -> _Transaction:
        return _Transaction(self._failure)

    def is_closed(self) -> bool:
        return self._closed

    def terminate(self) -> None:
        self.terminated = True


class _Pool:
    def __init__(self, connection: _Connection) -> None:
        self.connection = connection
        self.released: list[_Connection] = []

    async def acquire(self, **_: object) -> _Connection:
        return self.connection

    async def release(self, connection: _Connection) -> None:
        self.released.append(connection)


def _unit_of_work(pool: _Pool) -> PostgresUnitOfWork:
    return PostgresUnitOfWork(pool, acquire_timeout=1)  # type: ignore[arg-type]


async def test_a_client_error_at_commit_on_a_closed_connection_is_an_unknown_outcome() -> None:
    connection = _Connection(asyncpg.InternalClientError("cannot switch to state 11"), closed=True)
    pool = _Pool(connection)

    with pytest.raises(CommitOutcomeUnknown) as caught:
        async with _unit_of_work(pool):
            pass

    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert connection.terminated  # it must not serve again
    assert pool.released == [connection]


async def test_the_same_error_on_an_open_connection_is_an_unexpected_database_error() -> None:
    connection = _Connection(asyncpg.InternalClientError("codec"), closed=False)
    pool = _Pool(connection)

    with pytest.raises(DatabaseError) as caught:
        async with _unit_of_work(pool):
            pass

    assert type(caught.value) is DatabaseError
    assert not connection.terminated
    assert pool.released == [connection]
